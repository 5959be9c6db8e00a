//! Matching held offers against the demand: oldest run first, each on the first offer whose
//! leftovers fit it (several runs may share an offer); a run that fits nowhere does not hold
//! up the runs behind it.

use std::collections::HashSet;
use std::time::Instant;

use time::OffsetDateTime;

use super::{Placed, State};
use crate::backend::{Placement, Resources};

/// Runs whose waiting reason is worked out in one matching pass (the oldest ones): a reason
/// costs one comparison and one message per offer.
const REASONS_PER_PASS: usize = 1000;

/// Offers named in one waiting reason; the rest are counted.
const OFFERS_PER_REASON: usize = 3;

/// Places what fits; records each placement as outstanding on its offer, and for runs that fit
/// no offer, why (in `state.waiting`).
pub(super) fn place(state: &mut State, now: OffsetDateTime, instant: Instant) -> Vec<Placement> {
    let mut placements = Vec::new();
    let mut explained = 0;
    let State {
        demand,
        offers,
        placed,
        launched,
        agents,
        waiting,
        framework_id,
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
        let mut misfits = Vec::new();
        let mut fitted = false;
        // With an executor, the offer must hold both.
        let together = match &wanted.executor {
            Some(executor) => Resources {
                cpus: wanted.needs.cpus + executor.cpus,
                mem_mib: wanted.needs.mem_mib + executor.mem_mib,
                ports: wanted.needs.ports,
            },
            None => wanted.needs,
        };
        for held in offers.iter_mut() {
            let fits = held
                .leftovers
                .check_needs(&together, &wanted.constraints, now)
                .and_then(|()| {
                    held.leftovers
                        .claim_needs(&wanted.needs, &wanted.constraints, now)
                });
            let claim = match fits {
                Ok(claim) => claim,
                Err(mismatch) => {
                    if explained < REASONS_PER_PASS {
                        misfits.push(format!("{}: {mismatch}", held.leftovers.hostname()));
                    }
                    continue;
                }
            };
            let executor = wanted
                .executor
                .as_ref()
                .and_then(|executor| held.leftovers.claim_needs(executor, &[], now).ok());
            fitted = true;
            waiting.remove(wanted.run.task.as_str());
            held.outstanding.insert(name.clone());
            let agent_id = claim.agent_id.clone();
            placements.push(Placement {
                run: wanted.run.clone(),
                agent_address: agents.get(&agent_id).map(|address| address.url.clone()),
                agent_ip: agents.get(&agent_id).and_then(|address| address.ip.clone()),
                agent_port: agents.get(&agent_id).and_then(|address| address.port),
                framework_id: framework_id.clone(),
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
                    executor,
                },
            );
            break;
        }
        if !fitted && !misfits.is_empty() {
            explained += 1;
            waiting.insert(wanted.run.task.to_string(), no_offer_fits(&misfits));
        }
    }
    placements
}

/// "no offer fits it: host-a: needs 4 cpus, offer has 2; host-b: ... (and 5 more offers)".
fn no_offer_fits(misfits: &[String]) -> String {
    let named = misfits
        .iter()
        .take(OFFERS_PER_REASON)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    match misfits.len().saturating_sub(OFFERS_PER_REASON) {
        0 => format!("no offer fits it: {named}"),
        more => format!("no offer fits it: {named} (and {more} more offers)"),
    }
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
