//! The queue of tasks waiting to be placed, in submission order. Pure.
//!
//! Order is submission order (the store's sequence number), also after a restart and after a
//! retry. The queue is handed to the backend as demand ([`Queue::offer`]); how placements are
//! chosen is the backend's business (the local one never lets a waiting task be starved by
//! smaller ones behind it: [`crate::backend::placement::place_in_order`]). Tasks that could
//! never run are refused at submission ([`crate::backend::Backend::admissible`]), and tasks
//! in retry back-off hold nobody up.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crate::backend::{Demand, Placement, Resources, RunId};
use crate::task::{AgentConstraint, TaskId};

/// A queued task.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    /// Submission order.
    pub seq: u64,
    /// The run its next launch starts (the task and its next attempt number).
    pub run: RunId,
    /// What it needs.
    pub needs: Resources,
    /// Agent attributes it requires.
    pub constraints: Arc<[AgentConstraint]>,
    /// The task's labels.
    pub labels: Arc<BTreeMap<String, String>>,
    /// When it was (re)queued, for the launch latency metric.
    pub queued_at: Instant,
    /// Not to be launched before this instant (back-off after a failed start).
    pub not_before: Option<Instant>,
}

impl QueueEntry {
    /// The task.
    pub fn id(&self) -> &TaskId {
        &self.run.task
    }
}

/// Placements for queued runs, and those that no longer match a queued run.
#[derive(Debug, Default)]
pub struct Offered {
    /// Placements of queued runs, taken out of the queue.
    pub placed: Vec<(QueueEntry, Placement)>,
    /// Placements of runs no longer queued (killed meanwhile): to be abandoned.
    pub stale: Vec<Placement>,
}

/// Tasks waiting for resources, in submission order.
#[derive(Debug, Default)]
pub struct Queue {
    entries: BTreeMap<u64, QueueEntry>,
    seq_of: HashMap<TaskId, u64>,
    /// Back-off deadlines of the entries that have one, so that finding the next one does not
    /// walk the whole queue (the dispatcher asks after every submission).
    backing_off: BTreeSet<(Instant, u64)>,
    /// Entries queued without a back-off that no [`Queue::offer`] has seen yet.
    fresh: BTreeSet<u64>,
    /// Delays counted since the last [`Queue::take_delayed`].
    delayed: u64,
}

impl Queue {
    /// Adds a task (replacing an entry of the same task). An entry with a back-off (a task put
    /// back after a failed attempt) counts as delayed at once; any other counts as delayed if
    /// the next [`Queue::offer`] does not place it at once.
    pub fn push(&mut self, entry: QueueEntry) {
        self.remove(entry.id());
        self.seq_of.insert(entry.id().clone(), entry.seq);
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
    /// and each task that the first offer after its queueing did not place at once.
    pub fn take_delayed(&mut self) -> u64 {
        std::mem::take(&mut self.delayed)
    }

    /// Removes a task; `false` when it was not queued.
    pub fn remove(&mut self, id: &TaskId) -> bool {
        self.take(id).is_some()
    }

    fn take(&mut self, id: &TaskId) -> Option<QueueEntry> {
        let seq = self.seq_of.remove(id)?;
        self.fresh.remove(&seq);
        let entry = self.entries.remove(&seq)?;
        if let Some(at) = entry.not_before {
            self.backing_off.remove(&(at, seq));
        }
        Some(entry)
    }

    /// Takes out the entry of `run` for its placement; `None` when the task is no longer
    /// queued or waits for another attempt.
    pub fn take_placed(&mut self, run: &RunId) -> Option<QueueEntry> {
        let seq = *self.seq_of.get(&run.task)?;
        if self.entries.get(&seq)?.run != *run {
            return None;
        }
        self.take(&run.task)
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

    /// Hands the queue, oldest first, to `place` (the backend's
    /// [`crate::backend::Backend::offer_demand`]) and takes out the entries it placed at once.
    pub fn offer(
        &mut self,
        place: impl FnOnce(&mut dyn Iterator<Item = Demand<'_>>) -> Vec<Placement>,
    ) -> Offered {
        let placements = {
            let mut demand = self.entries.values().map(|entry| Demand {
                run: &entry.run,
                seq: entry.seq,
                needs: &entry.needs,
                constraints: &entry.constraints,
                labels: &entry.labels,
                not_before: entry.not_before,
            });
            place(&mut demand)
        };
        let mut offered = Offered::default();
        for placement in placements {
            match self.take_placed(&placement.run) {
                Some(entry) => offered.placed.push((entry, placement)),
                None => offered.stale.push(placement),
            }
        }
        // Whatever this offer saw first and left behind waits.
        self.delayed += self.fresh.len() as u64;
        self.fresh.clear();
        offered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> TaskId {
        TaskId::generate([n; 16])
    }

    fn entry(seq: u64) -> QueueEntry {
        QueueEntry {
            seq,
            run: RunId::new(id(seq as u8), 0),
            needs: Resources {
                cpus: 1.0,
                mem_mib: 100.0,
                ports: 0,
            },
            constraints: Arc::from(Vec::new()),
            labels: Arc::default(),
            queued_at: Instant::now(),
            not_before: None,
        }
    }

    fn placement(run: &RunId) -> Placement {
        Placement {
            run: run.clone(),
            agent_id: "local".to_owned(),
            hostname: "host".to_owned(),
            agent_address: None,
            agent_ip: None,
            agent_port: None,
            framework_id: None,
            host_ports: Vec::new(),
            cpus: 1.0,
            mem_mib: 100.0,
            sandbox: None,
        }
    }

    /// A backend that places the first `n` runs it is shown.
    fn first(n: usize) -> impl FnOnce(&mut dyn Iterator<Item = Demand<'_>>) -> Vec<Placement> {
        move |demand| demand.take(n).map(|d| placement(d.run)).collect()
    }

    fn seqs(offered: &Offered) -> Vec<u64> {
        offered.placed.iter().map(|(entry, _)| entry.seq).collect()
    }

    #[test]
    fn demand_is_offered_in_submission_order_and_placed_entries_leave_the_queue() {
        let mut queue = Queue::default();
        for seq in [3, 1, 2] {
            queue.push(entry(seq));
        }
        let offered = queue.offer(first(2));
        assert_eq!(seqs(&offered), vec![1, 2]);
        assert!(offered.stale.is_empty());
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn a_placement_of_a_run_no_longer_queued_is_stale() {
        let mut queue = Queue::default();
        queue.push(entry(1));
        let killed = entry(2);
        let offered = queue.offer(|_| vec![placement(&killed.run)]);
        assert!(offered.placed.is_empty());
        assert_eq!(offered.stale.len(), 1);
        // A placement for another attempt of a queued task does not take it out either.
        let mut other_attempt = entry(1).run;
        other_attempt.attempt = 7;
        assert!(queue.take_placed(&other_attempt).is_none());
        assert!(queue.contains(&id(1)));
        assert!(queue.take_placed(&entry(1).run).is_some());
    }

    #[test]
    fn back_off_deadlines_are_offered_with_the_demand() {
        let mut queue = Queue::default();
        let now = Instant::now();
        let mut backing_off = entry(1);
        backing_off.not_before = Some(now + std::time::Duration::from_secs(60));
        queue.push(backing_off);
        let mut seen = Vec::new();
        queue.offer(|demand| {
            seen = demand.map(|d| d.not_before.is_some()).collect();
            Vec::new()
        });
        assert_eq!(seen, vec![true]);
        assert!(queue.next_wakeup(now).is_some());
    }

    #[test]
    fn removing_a_task_takes_it_out_of_the_order() {
        let mut queue = Queue::default();
        queue.push(entry(1));
        queue.push(entry(2));
        assert!(queue.remove(&id(1)));
        assert!(!queue.remove(&id(1)));
        let offered = queue.offer(first(8));
        assert_eq!(seqs(&offered), vec![2]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_task_counts_as_delayed_once_per_wait_and_on_every_requeue() {
        let mut queue = Queue::default();
        queue.push(entry(1));
        queue.push(entry(2));
        queue.push(entry(3));
        let offered = queue.offer(first(1));
        assert_eq!(seqs(&offered), [1]);
        assert_eq!(queue.take_delayed(), 2, "2 and 3 wait");
        let offered = queue.offer(first(0));
        assert!(offered.placed.is_empty());
        assert_eq!(queue.take_delayed(), 0, "a wait is counted once");
        let mut retried = entry(1);
        retried.not_before = Some(Instant::now() + std::time::Duration::from_secs(60));
        queue.push(retried);
        assert_eq!(
            queue.take_delayed(),
            1,
            "a requeue with back-off is a delay"
        );
        queue.push(entry(4));
        let offered = queue.offer(first(4));
        assert_eq!(seqs(&offered), [1, 2, 3, 4]);
        assert_eq!(queue.take_delayed(), 0, "4 was placed at once");
    }
}
