//! The master's lookup structures, so that each operation costs what it
//! touches and not the size of the cluster: [`Keyed`] (entries in
//! insertion order, found by id: agents), [`OfferBook`] (outstanding
//! offers by id and by agent) and [`DueQueue`] (timers in time order: a
//! tick pops only what is due). Pure data structures.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mesos_proto::v1::Offer;
use tokio::time::Instant;

/// Entries kept in insertion order and found by their string id.
#[derive(Debug)]
pub(crate) struct Keyed<V> {
    entries: BTreeMap<u64, (String, V)>,
    positions: HashMap<String, u64>,
    next: u64,
}

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Keyed {
            entries: BTreeMap::new(),
            positions: HashMap::new(),
            next: 0,
        }
    }
}

impl<V> Keyed<V> {
    /// Adds `value` last; an entry with the same id is replaced (and
    /// moves last).
    pub(crate) fn insert(&mut self, id: String, value: V) {
        self.remove(&id);
        let position = self.next;
        self.next += 1;
        self.positions.insert(id.clone(), position);
        self.entries.insert(position, (id, value));
    }

    pub(crate) fn get(&self, id: &str) -> Option<&V> {
        let position = self.positions.get(id)?;
        self.entries.get(position).map(|(_, value)| value)
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.positions.contains_key(id)
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<V> {
        let position = self.positions.remove(id)?;
        self.entries.remove(&position).map(|(_, value)| value)
    }

    /// The values in insertion order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.entries.values().map(|(_, value)| value)
    }

    /// The ids in insertion order.
    #[cfg(test)]
    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.values().map(|(id, _)| id.as_str())
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry; returns them in insertion order.
    pub(crate) fn drain(&mut self) -> Vec<(String, V)> {
        self.positions.clear();
        std::mem::take(&mut self.entries).into_values().collect()
    }
}

/// Outstanding offers in the order they were made, by offer id and by
/// agent.
#[derive(Debug, Default)]
pub(crate) struct OfferBook {
    offers: Keyed<Offer>,
    /// Offer ids per agent, in the order they were made.
    by_agent: HashMap<String, Vec<String>>,
}

impl OfferBook {
    pub(crate) fn insert(&mut self, offer: Offer) {
        let id = offer.id.value.clone();
        self.by_agent
            .entry(offer.agent_id.value.clone())
            .or_default()
            .push(id.clone());
        self.offers.insert(id, offer);
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Offer> {
        self.offers.get(id)
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Offer> {
        let offer = self.offers.remove(id)?;
        let agent_id = &offer.agent_id.value;
        if let Some(ids) = self.by_agent.get_mut(agent_id) {
            ids.retain(|other| other != id);
            if ids.is_empty() {
                self.by_agent.remove(agent_id);
            }
        }
        Some(offer)
    }

    /// The agent's outstanding offers, oldest first.
    pub(crate) fn on_agent<'a>(&'a self, agent_id: &str) -> impl Iterator<Item = &'a Offer> + 'a {
        let ids = self.by_agent.get(agent_id).map_or(&[][..], Vec::as_slice);
        ids.iter().filter_map(|id| self.offers.get(id))
    }

    /// Every outstanding offer, oldest first.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Offer> + '_ {
        self.offers.values()
    }

    /// Removes the offers for which `remove` holds.
    pub(crate) fn remove_where(&mut self, remove: impl Fn(&Offer) -> bool) {
        let ids: Vec<String> = self
            .values()
            .filter(|offer| remove(offer))
            .map(|offer| offer.id.value.clone())
            .collect();
        for id in ids {
            self.remove(&id);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.offers.drain();
        self.by_agent.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.offers.len()
    }
}

/// Timers in time order (ties in key order). Entries are not removed when
/// their timer is cancelled: the owner checks, when one is due, that it
/// still holds (lazy deletion), or removes it itself.
#[derive(Debug)]
pub(crate) struct DueQueue<K: Ord> {
    entries: BTreeSet<(Instant, K)>,
}

impl<K: Ord> Default for DueQueue<K> {
    fn default() -> Self {
        DueQueue {
            entries: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone> DueQueue<K> {
    pub(crate) fn push(&mut self, at: Instant, key: K) {
        self.entries.insert((at, key));
    }

    pub(crate) fn remove(&mut self, at: Instant, key: &K) {
        self.entries.remove(&(at, key.clone()));
    }

    /// Removes and returns the entries due at `now` (at or before it), in
    /// time order; entries pushed while they are handled wait for the next
    /// call, even if due.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Vec<(Instant, K)> {
        let mut due = Vec::new();
        while self.entries.first().is_some_and(|(at, _)| *at <= now) {
            due.extend(self.entries.pop_first());
        }
        due
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mesos_proto::v1::{AgentId, FrameworkId, OfferId};

    use super::*;

    fn offer(id: &str, agent: &str) -> Offer {
        Offer {
            id: OfferId { value: id.into() },
            framework_id: FrameworkId { value: "f".into() },
            agent_id: AgentId {
                value: agent.into(),
            },
            ..Default::default()
        }
    }

    #[test]
    fn keyed_entries_keep_insertion_order_and_a_reinserted_one_moves_last() {
        let mut keyed = Keyed::default();
        keyed.insert("b".to_owned(), 1);
        keyed.insert("a".to_owned(), 2);
        keyed.insert("c".to_owned(), 3);
        assert_eq!(keyed.remove("a"), Some(2));
        keyed.insert("a".to_owned(), 4);
        keyed.insert("b".to_owned(), 5);
        assert_eq!(keyed.ids().collect::<Vec<_>>(), ["c", "a", "b"]);
        assert_eq!(keyed.get("b"), Some(&5));
        assert!(!keyed.contains("d"));
        assert_eq!(keyed.len(), 3);
        let drained: Vec<i32> = keyed.drain().into_iter().map(|(_, v)| v).collect();
        assert_eq!(drained, [3, 4, 5]);
        assert!(keyed.is_empty() && keyed.get("c").is_none());
    }

    #[test]
    fn an_offer_removed_by_id_leaves_its_agents_index() {
        let mut book = OfferBook::default();
        book.insert(offer("o1", "a1"));
        book.insert(offer("o2", "a2"));
        book.insert(offer("o3", "a1"));
        let on_a1 = |book: &OfferBook| -> Vec<String> {
            book.on_agent("a1").map(|o| o.id.value.clone()).collect()
        };
        assert_eq!(on_a1(&book), ["o1", "o3"]);
        assert_eq!(book.remove("o1").map(|o| o.id.value), Some("o1".to_owned()));
        assert_eq!(on_a1(&book), ["o3"]);
        assert!(book.remove("o1").is_none());
        book.remove_where(|o| o.agent_id.value == "a1");
        assert!(on_a1(&book).is_empty());
        assert_eq!(book.len(), 1);
        assert!(book.get("o2").is_some());
        book.clear();
        assert_eq!(book.on_agent("a2").count(), 0);
    }

    #[test]
    fn timers_pop_in_time_order_and_only_when_due() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut queue = DueQueue::default();
        queue.push(at(30), 1);
        queue.push(at(10), 2);
        queue.push(at(20), 3);
        queue.push(at(10), 0);
        assert!(queue.pop_due(at(5)).is_empty());
        assert_eq!(
            queue.pop_due(at(20)),
            [(at(10), 0), (at(10), 2), (at(20), 3)]
        );
        queue.remove(at(30), &1);
        assert_eq!(queue.len(), 0);
        assert!(queue.pop_due(at(1000)).is_empty());
    }
}
