//! Matching held offers against the demand: oldest run first, each on the first offer whose
//! leftovers fit it (several runs may share an offer); a run that fits nowhere does not hold
//! up the runs behind it.

use std::collections::HashSet;
use std::time::Instant;

use time::OffsetDateTime;

use super::{Placed, State};
use crate::backend::Placement;

/// Places what fits; records each placement as outstanding on its offer.
pub(super) fn place(state: &mut State, now: OffsetDateTime, instant: Instant) -> Vec<Placement> {
    let mut placements = Vec::new();
    let State {
        demand,
        offers,
        placed,
        launched,
        agents,
        ..
    } = state;
    for wanted in demand.iter() {
        if wanted.not_before.is_some_and(|at| at > instant) {
            continue;
        }
        let name = wanted.run.name();
        if placed.contains_key(&name) || launched.contains_key(&name) {
            continue;
        }
        for held in offers.iter_mut() {
            let Ok(claim) = held
                .leftovers
                .claim_needs(&wanted.needs, &wanted.constraints, now)
            else {
                continue;
            };
            held.outstanding.insert(name.clone());
            let agent_id = claim.agent_id.clone();
            placements.push(Placement {
                run: wanted.run.clone(),
                agent_address: agents.get(&agent_id).cloned(),
                agent_id,
                hostname: held.leftovers.hostname().to_owned(),
                host_ports: claim.host_ports.clone(),
                cpus: wanted.needs.cpus,
                mem_mib: wanted.needs.mem_mib,
                sandbox: None,
            });
            placed.insert(
                name.clone(),
                Placed {
                    offer_id: held.leftovers.offer_id().to_owned(),
                    claim,
                },
            );
            break;
        }
    }
    placements
}

/// The runs placed on offers that are gone (rescinded, or the connection was lost): their
/// placements can no longer be launched.
pub(super) fn placements_on(state: &State, offer_ids: &HashSet<String>) -> Vec<String> {
    state
        .placed
        .iter()
        .filter(|(_, placed)| offer_ids.contains(&placed.offer_id))
        .map(|(name, _)| name.clone())
        .collect()
}
