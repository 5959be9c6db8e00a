//! The queue of tasks waiting for resources, and the choice of which to launch. Pure.
//!
//! Order is submission order (the store's sequence number), also after a restart and after a
//! retry. A task that must wait for resources keeps its place and cannot be starved by smaller
//! tasks behind it: what it needs (CPUs, memory, ports) is reserved for it, and a later task
//! only starts when it fits into what no older waiting task claims. Eremetic's head-of-line
//! blocking (E-5) came from tasks that could never run; those are refused at submission
//! ([`crate::backend::Backend::admissible`]), and tasks in retry back-off hold nobody up.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use crate::backend::{Allocation, Resources};
use crate::task::TaskId;

/// A queued task.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    /// Submission order.
    pub seq: u64,
    /// The task.
    pub id: TaskId,
    /// What it needs.
    pub needs: Resources,
    /// When it was (re)queued, for the launch latency metric.
    pub queued_at: Instant,
    /// Not to be launched before this instant (back-off after a failed start).
    pub not_before: Option<Instant>,
}

/// Tasks waiting for resources, in submission order.
#[derive(Debug, Default)]
pub struct Queue {
    entries: BTreeMap<u64, QueueEntry>,
    seq_of: HashMap<TaskId, u64>,
    /// Back-off deadlines of the entries that have one, so that finding the next one does not
    /// walk the whole queue (the dispatcher asks after every submission).
    backing_off: BTreeSet<(Instant, u64)>,
    /// Entries queued without a back-off that no [`Queue::select`] has seen yet.
    fresh: BTreeSet<u64>,
    /// Delays counted since the last [`Queue::take_delayed`].
    delayed: u64,
}

impl Queue {
    /// Adds a task (replacing an entry of the same task). An entry with a back-off (a task put
    /// back after a failed attempt) counts as delayed at once; any other counts as delayed if
    /// the next [`Queue::select`] does not choose it.
    pub fn push(&mut self, entry: QueueEntry) {
        self.remove(&entry.id);
        self.seq_of.insert(entry.id.clone(), entry.seq);
        match entry.not_before {
            Some(at) => {
                self.backing_off.insert((at, entry.seq));
                self.delayed += 1;
            }
            None => {
                self.fresh.insert(entry.seq);
            }
        }
        self.entries.insert(entry.seq, entry);
    }

    /// How many tasks were delayed since the last call (Eremetic's `scheduler_tasks_delayed`,
    /// see [`crate::metrics::Metrics::tasks_delayed`]): each task put back with a back-off,
    /// and each task that the first selection after its queueing left waiting.
    pub fn take_delayed(&mut self) -> u64 {
        std::mem::take(&mut self.delayed)
    }

    /// Removes a task; `false` when it was not queued.
    pub fn remove(&mut self, id: &TaskId) -> bool {
        let Some(seq) = self.seq_of.remove(id) else {
            return false;
        };
        self.fresh.remove(&seq);
        match self.entries.remove(&seq) {
            Some(entry) => {
                if let Some(at) = entry.not_before {
                    self.backing_off.remove(&(at, seq));
                }
                true
            }
            None => false,
        }
    }

    /// Whether the task is queued.
    pub fn contains(&self, id: &TaskId) -> bool {
        self.seq_of.contains_key(id)
    }

    /// Number of queued tasks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The earliest back-off deadline still in the future, to know when to look again.
    pub fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        self.backing_off
            .iter()
            .map(|(at, _)| *at)
            .find(|at| *at > now)
    }

    /// Takes the tasks to launch now, oldest first, given the backend's `free` capacity and a
    /// `place` function that reserves resources (returning `None` when they are not available
    /// after all). Entries in back-off are skipped without reserving anything.
    pub fn select(
        &mut self,
        now: Instant,
        free: Resources,
        mut place: impl FnMut(&Resources) -> Option<Allocation>,
    ) -> Vec<(QueueEntry, Allocation)> {
        let mut unclaimed = free;
        let mut chosen = Vec::new();
        for entry in self.entries.values() {
            if entry.not_before.is_some_and(|at| at > now) {
                continue;
            }
            if fits(&entry.needs, &unclaimed) {
                if let Some(allocation) = place(&entry.needs) {
                    unclaimed = subtract(&unclaimed, &entry.needs);
                    chosen.push((entry.clone(), allocation));
                    continue;
                }
            }
            // It waits, and what it needs is reserved for it.
            unclaimed = subtract(&unclaimed, &entry.needs);
            // Every task needs some CPU and memory: once either is all claimed, nothing behind
            // can start (entries in back-off before that point were already skipped).
            if unclaimed.cpus <= EPSILON || unclaimed.mem_mib <= EPSILON {
                break;
            }
        }
        for (entry, _) in &chosen {
            self.remove(&entry.id);
        }
        // Whatever this pass saw first and left behind waits for resources.
        self.delayed += self.fresh.len() as u64;
        self.fresh.clear();
        chosen
    }
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
    use super::*;

    fn id(n: u8) -> TaskId {
        TaskId::generate([n; 16])
    }

    fn entry(seq: u64, cpus: f64, mem_mib: f64) -> QueueEntry {
        QueueEntry {
            seq,
            id: id(seq as u8),
            needs: Resources {
                cpus,
                mem_mib,
                ports: 0,
            },
            queued_at: Instant::now(),
            not_before: None,
        }
    }

    /// A capacity model standing in for a backend.
    struct Capacity(Resources);

    impl Capacity {
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

    fn seqs(chosen: &[(QueueEntry, Allocation)]) -> Vec<u64> {
        chosen.iter().map(|(entry, _)| entry.seq).collect()
    }

    #[test]
    fn tasks_start_in_submission_order_while_they_fit() {
        let mut queue = Queue::default();
        for seq in [3, 1, 2] {
            queue.push(entry(seq, 1.0, 100.0));
        }
        let mut capacity = Capacity(free(2.0, 1000.0));
        let chosen = queue.select(Instant::now(), capacity.0, |n| capacity.place(n));
        assert_eq!(seqs(&chosen), vec![1, 2]);
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn a_waiting_task_only_holds_what_it_needs_so_others_can_use_the_rest() {
        let mut queue = Queue::default();
        queue.push(entry(1, 1.0, 100.0));
        let mut needs_a_port = entry(2, 1.0, 100.0);
        needs_a_port.needs.ports = 1; // every host port is taken right now
        queue.push(needs_a_port);
        queue.push(entry(3, 0.5, 100.0));
        let mut capacity = Capacity(Resources {
            cpus: 4.0,
            mem_mib: 1000.0,
            ports: 0,
        });
        let chosen = queue.select(Instant::now(), capacity.0, |n| capacity.place(n));
        assert_eq!(seqs(&chosen), vec![1, 3]);
        assert!(queue.contains(&id(2)));
    }

    #[test]
    fn a_waiting_large_task_is_not_starved_by_later_small_ones() {
        let mut queue = Queue::default();
        queue.push(entry(1, 2.0, 100.0)); // needs both CPUs, one is busy
        queue.push(entry(2, 1.0, 100.0)); // would fit now, but only by taking the reserved CPU
        let mut capacity = Capacity(free(1.0, 1000.0));
        let chosen = queue.select(Instant::now(), capacity.0, |n| capacity.place(n));
        assert!(
            chosen.is_empty(),
            "the small task must wait behind the large one"
        );
        // Once the busy CPU is released the large task starts first.
        let mut capacity = Capacity(free(2.0, 1000.0));
        let chosen = queue.select(Instant::now(), capacity.0, |n| capacity.place(n));
        assert_eq!(seqs(&chosen), vec![1]);
    }

    #[test]
    fn entries_in_back_off_are_skipped_and_reserve_nothing() {
        let mut queue = Queue::default();
        let now = Instant::now();
        let mut backing_off = entry(1, 2.0, 100.0);
        backing_off.not_before = Some(now + std::time::Duration::from_secs(60));
        queue.push(backing_off);
        queue.push(entry(2, 2.0, 100.0));
        let mut capacity = Capacity(free(2.0, 1000.0));
        let chosen = queue.select(now, capacity.0, |n| capacity.place(n));
        assert_eq!(seqs(&chosen), vec![2]);
        assert!(queue.next_wakeup(now).is_some());
    }

    #[test]
    fn removing_a_task_takes_it_out_of_the_order() {
        let mut queue = Queue::default();
        queue.push(entry(1, 1.0, 1.0));
        queue.push(entry(2, 1.0, 1.0));
        assert!(queue.remove(&id(1)));
        assert!(!queue.remove(&id(1)));
        let mut capacity = Capacity(free(8.0, 1000.0));
        let chosen = queue.select(Instant::now(), capacity.0, |n| capacity.place(n));
        assert_eq!(seqs(&chosen), vec![2]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_task_counts_as_delayed_once_per_wait_and_on_every_requeue() {
        let mut queue = Queue::default();
        let mut capacity = Capacity(free(1.0, 100.0));
        queue.push(entry(1, 1.0, 100.0));
        queue.push(entry(2, 1.0, 100.0));
        queue.push(entry(3, 1.0, 100.0));
        let chosen = queue.select(Instant::now(), capacity.0, |n| capacity.place(n));
        assert_eq!(seqs(&chosen), [1]);
        assert_eq!(
            queue.take_delayed(),
            2,
            "2 and 3 wait, 3 behind a full backend too"
        );
        let chosen = queue.select(Instant::now(), capacity.0, |n| capacity.place(n));
        assert!(chosen.is_empty());
        assert_eq!(queue.take_delayed(), 0, "a wait is counted once");
        let mut retried = entry(1, 1.0, 100.0);
        retried.not_before = Some(Instant::now() + std::time::Duration::from_secs(60));
        queue.push(retried);
        assert_eq!(
            queue.take_delayed(),
            1,
            "a requeue with back-off is a delay"
        );
        let mut room = Capacity(free(4.0, 400.0));
        queue.push(entry(4, 1.0, 100.0));
        let chosen = queue.select(Instant::now(), room.0, |n| room.place(n));
        assert_eq!(seqs(&chosen), [2, 3, 4]);
        assert_eq!(queue.take_delayed(), 0, "4 started at once");
    }
}
