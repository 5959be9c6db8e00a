//! Choosing which queued runs to place on one host's free resources. Pure.
//!
//! The demand is walked oldest first. A run that must wait keeps its place and cannot be
//! starved by smaller runs behind it: what it needs (CPUs, memory, ports) is claimed for it,
//! and a later run is only placed when it fits into what no older waiting run claims.
//! Eremetic's head-of-line blocking (E-5) came from tasks that could never run; those are
//! refused at submission, and runs in retry back-off hold nobody up.

use std::time::Instant;

use super::{Allocation, Demand, Resources, RunId};

/// Places runs of `demand` oldest first while they fit into `free`, reserving each with
/// `place` (which may still say no, e.g. when a host port turns out to be taken). Runs for
/// which `already_placed` holds are skipped without claiming anything (their resources are
/// no longer free); runs in back-off at `now` likewise.
pub fn place_in_order<'a>(
    demand: &mut dyn Iterator<Item = Demand<'a>>,
    now: Instant,
    free: Resources,
    already_placed: impl Fn(&RunId) -> bool,
    mut place: impl FnMut(&Demand<'a>) -> Option<Allocation>,
) -> Vec<(RunId, Allocation)> {
    let mut unclaimed = free;
    let mut chosen = Vec::new();
    for wanted in demand {
        if wanted.not_before.is_some_and(|at| at > now) || already_placed(wanted.run) {
            continue;
        }
        if fits(wanted.needs, &unclaimed) {
            if let Some(allocation) = place(&wanted) {
                unclaimed = subtract(&unclaimed, wanted.needs);
                chosen.push((wanted.run.clone(), allocation));
                continue;
            }
        }
        // It waits, and what it needs is claimed for it.
        unclaimed = subtract(&unclaimed, wanted.needs);
        // Every task needs some CPU and memory: once either is all claimed, nothing behind
        // can be placed (entries in back-off before that point were already skipped).
        if unclaimed.cpus <= EPSILON || unclaimed.mem_mib <= EPSILON {
            break;
        }
    }
    chosen
}

// A small tolerance absorbs floating-point sums of fractional CPUs.
const EPSILON: f64 = 1e-9;

fn fits(needs: &Resources, free: &Resources) -> bool {
    needs.cpus <= free.cpus + EPSILON
        && needs.mem_mib <= free.mem_mib + EPSILON
        && needs.ports <= free.ports
}

fn subtract(from: &Resources, needs: &Resources) -> Resources {
    Resources {
        cpus: (from.cpus - needs.cpus).max(0.0),
        mem_mib: (from.mem_mib - needs.mem_mib).max(0.0),
        ports: from.ports.saturating_sub(needs.ports),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::task::TaskId;

    static EMPTY: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();

    struct Wanted {
        run: RunId,
        seq: u64,
        needs: Resources,
        not_before: Option<Instant>,
    }

    fn wanted(seq: u64, cpus: f64, mem_mib: f64) -> Wanted {
        Wanted {
            run: RunId::new(TaskId::generate([seq as u8; 16]), 0),
            seq,
            needs: Resources {
                cpus,
                mem_mib,
                ports: 0,
            },
            not_before: None,
        }
    }

    /// A capacity model standing in for a host.
    struct Host(Resources);

    impl Host {
        fn place(&mut self, needs: &Resources) -> Option<Allocation> {
            if !fits(needs, &self.0) {
                return None;
            }
            self.0 = subtract(&self.0, needs);
            Some(Allocation {
                cpus: needs.cpus,
                mem_mib: needs.mem_mib,
                host_ports: Vec::new(),
            })
        }
    }

    fn free(cpus: f64, mem_mib: f64) -> Resources {
        Resources {
            cpus,
            mem_mib,
            ports: 100,
        }
    }

    /// Runs `place_in_order` over `queue` on `host`; returns the placed sequence numbers.
    fn place(queue: &[Wanted], host: &mut Host, placed_before: &[u64]) -> Vec<u64> {
        let mut demand = queue.iter().map(|w| Demand {
            run: &w.run,
            seq: w.seq,
            needs: &w.needs,
            constraints: &[],
            labels: &EMPTY,
            not_before: w.not_before,
        });
        let free = host.0;
        let already = |run: &RunId| {
            queue
                .iter()
                .any(|w| &w.run == run && placed_before.contains(&w.seq))
        };
        let chosen = place_in_order(&mut demand, Instant::now(), free, already, |d| {
            host.place(d.needs)
        });
        chosen
            .iter()
            .map(|(run, _)| queue.iter().find(|w| &w.run == run).map_or(0, |w| w.seq))
            .collect()
    }

    #[test]
    fn runs_are_placed_in_submission_order_while_they_fit() {
        let queue = [
            wanted(1, 1.0, 100.0),
            wanted(2, 1.0, 100.0),
            wanted(3, 1.0, 100.0),
        ];
        let placed = place(&queue, &mut Host(free(2.0, 1000.0)), &[]);
        assert_eq!(placed, vec![1, 2]);
    }

    #[test]
    fn a_waiting_run_only_holds_what_it_needs_so_others_can_use_the_rest() {
        let mut needs_a_port = wanted(2, 1.0, 100.0);
        needs_a_port.needs.ports = 1; // every host port is taken right now
        let queue = [wanted(1, 1.0, 100.0), needs_a_port, wanted(3, 0.5, 100.0)];
        let mut host = Host(Resources {
            cpus: 4.0,
            mem_mib: 1000.0,
            ports: 0,
        });
        assert_eq!(place(&queue, &mut host, &[]), vec![1, 3]);
    }

    #[test]
    fn a_waiting_large_run_is_not_starved_by_later_small_ones() {
        // 1 needs both CPUs, one is busy; 2 would fit now, but only by taking the claimed CPU.
        let queue = [wanted(1, 2.0, 100.0), wanted(2, 1.0, 100.0)];
        let placed = place(&queue, &mut Host(free(1.0, 1000.0)), &[]);
        assert!(
            placed.is_empty(),
            "the small run must wait behind the large one"
        );
        // Once the busy CPU is released the large run goes first.
        assert_eq!(place(&queue, &mut Host(free(2.0, 1000.0)), &[]), vec![1]);
    }

    #[test]
    fn runs_in_back_off_are_skipped_and_claim_nothing() {
        let mut backing_off = wanted(1, 2.0, 100.0);
        backing_off.not_before = Some(Instant::now() + Duration::from_secs(60));
        let queue = [backing_off, wanted(2, 2.0, 100.0)];
        assert_eq!(place(&queue, &mut Host(free(2.0, 1000.0)), &[]), vec![2]);
    }

    #[test]
    fn runs_already_placed_are_not_placed_twice_and_claim_nothing() {
        let queue = [wanted(1, 2.0, 100.0), wanted(2, 2.0, 100.0)];
        // 1 holds its placement already (its launch is on the way): the free 2 CPUs are 2's.
        assert_eq!(place(&queue, &mut Host(free(2.0, 1000.0)), &[1]), vec![2]);
    }
}
