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
    if offers.is_empty() {
        return placements;
    }
    for wanted in demand.values() {
        if wanted.not_before.is_some_and(|at| at > instant) {
            continue;
        }
        let name = &wanted.name;
        if placed.contains_key(name) || launched.contains_key(name) {
            continue;
        }
        let mut misfits = Misfits::default();
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
                        misfits.add(|| format!("{}: {mismatch}", held.leftovers.hostname()));
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
        if !fitted && misfits.count > 0 {
            explained += 1;
            waiting.insert(wanted.run.task.to_string(), misfits.reason());
        }
    }
    placements
}

/// The offers a run did not fit: the first [`OFFERS_PER_REASON`] in words, the rest counted
/// (a reason must not cost a message per offer of a large cluster).
#[derive(Default)]
struct Misfits {
    named: Vec<String>,
    count: usize,
}

impl Misfits {
    fn add(&mut self, describe: impl FnOnce() -> String) {
        if self.named.len() < OFFERS_PER_REASON {
            self.named.push(describe());
        }
        self.count += 1;
    }

    /// "no offer fits it: host-a: needs 4 cpus, offer has 2; host-b: ... (and 5 more offers)".
    fn reason(&self) -> String {
        let named = self.named.join("; ");
        match self.count.saturating_sub(self.named.len()) {
            0 => format!("no offer fits it: {named}"),
            more => format!("no offer fits it: {named} (and {more} more offers)"),
        }
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

#[cfg(test)]
mod tests {
    use super::Misfits;

    #[test]
    fn a_reason_names_the_first_offers_and_counts_the_rest() {
        let mut misfits = Misfits::default();
        let mut described = 0;
        for host in ["a", "b", "c", "d", "e"] {
            misfits.add(|| {
                described += 1;
                format!("{host}: needs 4 cpus, offer has 2")
            });
        }
        assert_eq!(
            misfits.reason(),
            "no offer fits it: a: needs 4 cpus, offer has 2; b: needs 4 cpus, offer has 2; \
             c: needs 4 cpus, offer has 2 (and 2 more offers)"
        );
        // Only the named ones were put in words.
        assert_eq!(described, 3);
    }

    #[test]
    fn a_reason_with_few_offers_names_them_all() {
        let mut misfits = Misfits::default();
        misfits.add(|| "a: lacks attribute rack=b".to_owned());
        assert_eq!(
            misfits.reason(),
            "no offer fits it: a: lacks attribute rack=b"
        );
    }
}
