//! An in-memory `TaskService`: tasks in a map, recorded submissions, a configurable submit
//! error, log locations set by the test, and a broadcast sender the test can send events on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use eremetic::backend::Resources;
use eremetic::service::{
    Accepted, ClusterStatus, DeleteError, KillError, LogLocation, LogStream, ReadError, Submission,
    SubmitError, TaskEvent, TaskService, TaskUsage,
};
use eremetic::task::{StateFilter, Task, TaskId, TaskState};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::broadcast;

#[derive(Default)]
pub(crate) struct FakeState {
    pub(crate) tasks: HashMap<TaskId, Task>,
    pub(crate) order: Vec<TaskId>,
    pub(crate) submissions: Vec<Submission>,
    pub(crate) by_key: HashMap<String, TaskId>,
    pub(crate) submit_error: Option<SubmitError>,
    pub(crate) logs: HashMap<TaskId, LogLocation>,
}

pub(crate) struct Fake {
    state: Mutex<FakeState>,
    pub(crate) events: broadcast::Sender<TaskEvent>,
    counter: AtomicU8,
}

impl Fake {
    pub(crate) fn new() -> Arc<Fake> {
        Arc::new(Fake {
            state: Mutex::new(FakeState::default()),
            events: broadcast::channel(16).0,
            counter: AtomicU8::new(1),
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    fn next_id(&self) -> TaskId {
        TaskId::generate([self.counter.fetch_add(1, Ordering::SeqCst); 16])
    }

    /// Stores a task made from a v1 body, with `states` appended after TASK_QUEUED.
    pub(crate) fn insert(&self, body: Value, states: &[TaskState]) -> TaskId {
        let request = eremetic::api::parse_v1(body.to_string().as_bytes()).unwrap();
        let id = self.next_id();
        let mut task = Task::new(
            id.clone(),
            "fake".into(),
            request,
            OffsetDateTime::now_utc(),
        );
        for state in states {
            task.push_status(*state, OffsetDateTime::now_utc());
        }
        let mut guard = self.lock();
        guard.tasks.insert(id.clone(), task);
        guard.order.push(id.clone());
        id
    }
}

#[async_trait]
impl TaskService for Fake {
    async fn submit(&self, submission: Submission) -> Result<Accepted, SubmitError> {
        let mut state = self.lock();
        state.submissions.push(submission.clone());
        if let Some(error) = state.submit_error.clone() {
            return Err(error);
        }
        if let Some(existing) = submission
            .idempotency_key
            .as_ref()
            .and_then(|key| state.by_key.get(key))
        {
            return Ok(Accepted {
                id: existing.clone(),
                created: false,
            });
        }
        let id = self.next_id();
        let name = submission
            .task
            .name
            .clone()
            .unwrap_or_else(|| "generated".into());
        let task = Task::new(id.clone(), name, submission.task, OffsetDateTime::now_utc());
        state.tasks.insert(id.clone(), task);
        state.order.push(id.clone());
        if let Some(key) = submission.idempotency_key {
            state.by_key.insert(key, id.clone());
        }
        Ok(Accepted { id, created: true })
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, ReadError> {
        Ok(self.lock().tasks.get(id).cloned())
    }

    async fn list(&self, filter: StateFilter, name: Option<&str>) -> Result<Vec<Task>, ReadError> {
        let state = self.lock();
        Ok(state
            .order
            .iter()
            .filter_map(|id| state.tasks.get(id))
            .filter(|task| filter.matches(task.current_state()))
            .filter(|task| name.is_none_or(|name| task.name == name))
            .cloned()
            .collect())
    }

    async fn kill(&self, id: &TaskId) -> Result<(), KillError> {
        let mut state = self.lock();
        let task = state
            .tasks
            .get_mut(id)
            .ok_or_else(|| KillError::NotFound(id.clone()))?;
        if let (true, Some(current)) = (task.is_terminal(), task.current_state()) {
            return Err(KillError::AlreadyTerminal {
                id: id.clone(),
                state: current,
            });
        }
        task.push_status(TaskState::Killed, OffsetDateTime::now_utc());
        Ok(())
    }

    async fn delete(&self, id: &TaskId) -> Result<(), DeleteError> {
        let mut state = self.lock();
        let task = state
            .tasks
            .get(id)
            .ok_or_else(|| DeleteError::NotFound(id.clone()))?;
        if let (false, Some(current)) = (task.is_terminal(), task.current_state()) {
            return Err(DeleteError::NotTerminal {
                id: id.clone(),
                state: current,
            });
        }
        state.tasks.remove(id);
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.events.subscribe()
    }

    fn cluster(&self) -> ClusterStatus {
        let nothing = Resources {
            cpus: 0.0,
            mem_mib: 0.0,
            ports: 0,
        };
        ClusterStatus {
            backend: "fake".to_owned(),
            total: nothing,
            free: nothing,
            queued: 0,
            running: 0,
            view: eremetic::backend::ClusterView::Local(eremetic::backend::view::LocalView {
                docker_host: None,
                instance_id: "test".into(),
                port_range: [31000, 32000],
                user_network: None,
            }),
        }
    }

    async fn usage(&self, _id: &TaskId) -> Result<Option<TaskUsage>, ReadError> {
        Ok(None)
    }

    async fn log_location(
        &self,
        id: &TaskId,
        _stream: LogStream,
    ) -> Result<Option<LogLocation>, ReadError> {
        let state = self.lock();
        if !state.tasks.contains_key(id) {
            return Ok(None);
        }
        Ok(Some(
            state
                .logs
                .get(id)
                .cloned()
                .unwrap_or(LogLocation::NotStarted),
        ))
    }
}
