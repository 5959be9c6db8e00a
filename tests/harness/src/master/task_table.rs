//! [`TaskTable`]: the tasks the master holds, in launch order, found by
//! task id and by agent, with each agent's resources in use cached until
//! a task there may change. Pure.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::{Index, IndexMut};

use super::resources::Resources;
use super::tasks::Task;

/// A task's place in the table; keys grow with every task added, so key
/// order is launch order.
pub(crate) type TaskKey = u64;

/// The master's tasks (live, unreachable and removed-but-remembered).
///
/// Every mutable access to a task ([`TaskTable::get_mut`], `table[key]` in
/// a mutable place, [`TaskTable::insert`], [`TaskTable::remove`]) drops
/// the cached resources in use of the task's agent: what a task holds
/// depends on its state, so any change may change it. A task's agent and
/// id never change once it is in the table.
#[derive(Debug, Default)]
pub(crate) struct TaskTable {
    tasks: BTreeMap<TaskKey, Task>,
    next_key: TaskKey,
    /// Keys per task id, in launch order (tasks of several frameworks, and
    /// removed ones, may share an id).
    by_id: HashMap<String, Vec<TaskKey>>,
    by_agent: HashMap<String, BTreeSet<TaskKey>>,
    /// Resources in use per agent, as last computed.
    in_use: RefCell<HashMap<String, Resources>>,
}

impl TaskTable {
    /// Adds a task last; returns its key.
    pub(crate) fn insert(&mut self, task: Task) -> TaskKey {
        let key = self.next_key;
        self.next_key += 1;
        self.invalidate(&task.agent_id);
        self.by_id
            .entry(task.info.task_id.value.clone())
            .or_default()
            .push(key);
        self.by_agent
            .entry(task.agent_id.clone())
            .or_default()
            .insert(key);
        self.tasks.insert(key, task);
        key
    }

    /// Forgets a task entirely.
    pub(crate) fn remove(&mut self, key: TaskKey) -> Option<Task> {
        let task = self.tasks.remove(&key)?;
        self.invalidate(&task.agent_id);
        let id = &task.info.task_id.value;
        if let Some(keys) = self.by_id.get_mut(id) {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                self.by_id.remove(id);
            }
        }
        if let Some(keys) = self.by_agent.get_mut(&task.agent_id) {
            keys.remove(&key);
            if keys.is_empty() {
                self.by_agent.remove(&task.agent_id);
            }
        }
        Some(task)
    }

    pub(crate) fn get(&self, key: TaskKey) -> Option<&Task> {
        self.tasks.get(&key)
    }

    pub(crate) fn get_mut(&mut self, key: TaskKey) -> Option<&mut Task> {
        let task = self.tasks.get_mut(&key)?;
        self.in_use.get_mut().remove(&task.agent_id);
        Some(task)
    }

    /// Every task in launch order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Task> + '_ {
        self.tasks.values()
    }

    /// Every key in launch order.
    pub(crate) fn keys(&self) -> Vec<TaskKey> {
        self.tasks.keys().copied().collect()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    /// The tasks with this id (any framework, removed ones included), in
    /// launch order.
    pub(crate) fn with_id<'a>(
        &'a self,
        task_id: &str,
    ) -> impl DoubleEndedIterator<Item = (TaskKey, &'a Task)> + 'a {
        let keys = self.by_id.get(task_id).map_or(&[][..], Vec::as_slice);
        keys.iter()
            .filter_map(|key| self.tasks.get(key).map(|task| (*key, task)))
    }

    /// The tasks on this agent (removed ones included), in launch order.
    pub(crate) fn on_agent<'a>(
        &'a self,
        agent_id: &str,
    ) -> impl Iterator<Item = (TaskKey, &'a Task)> + 'a {
        let keys = self.by_agent.get(agent_id);
        keys.into_iter()
            .flatten()
            .filter_map(|key| self.tasks.get(key).map(|task| (*key, task)))
    }

    /// The keys of the tasks on this agent for which `select` holds.
    pub(crate) fn keys_on_agent(
        &self,
        agent_id: &str,
        select: impl Fn(&Task) -> bool,
    ) -> Vec<TaskKey> {
        let on_agent = self.on_agent(agent_id).filter(|(_, task)| select(task));
        on_agent.map(|(key, _)| key).collect()
    }

    /// The agent's resources in use as last stored, unless a task there
    /// may have changed since.
    pub(crate) fn cached_in_use(&self, agent_id: &str) -> Option<Resources> {
        self.in_use.borrow().get(agent_id).cloned()
    }

    /// Stores the agent's resources in use (computed from its tasks).
    pub(crate) fn store_in_use(&self, agent_id: &str, used: Resources) {
        self.in_use.borrow_mut().insert(agent_id.to_owned(), used);
    }

    /// Drops the agent's cached resources in use (something they depend on
    /// outside the table changed, e.g. an executor exited).
    pub(crate) fn invalidate(&mut self, agent_id: &str) {
        self.in_use.get_mut().remove(agent_id);
    }
}

impl Index<TaskKey> for TaskTable {
    type Output = Task;

    /// Panics when the key is not in the table (a key is only used while
    /// its task is known to be there).
    fn index(&self, key: TaskKey) -> &Task {
        &self.tasks[&key]
    }
}

impl IndexMut<TaskKey> for TaskTable {
    fn index_mut(&mut self, key: TaskKey) -> &mut Task {
        match self.get_mut(key) {
            Some(task) => task,
            None => panic!("task key {key} is not in the table"),
        }
    }
}
