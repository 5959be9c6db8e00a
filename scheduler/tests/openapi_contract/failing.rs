//! A task service whose store is broken: every read and write fails. Served by the real router,
//! it reaches the documented 500 answers, which a healthy server never gives.

use async_trait::async_trait;
use eremetic::backend::Resources;
use eremetic::service::{
    Accepted, ClusterStatus, DeleteError, KillError, LogLocation, LogStream, ReadError, Submission,
    SubmitError, TaskEvent, TaskService, TaskUsage,
};
use eremetic::task::{StateFilter, Task, TaskId};
use tokio::sync::broadcast;

/// The error every call reports.
pub(crate) const STORE_FAILURE: &str = "database disk image is malformed";

/// The service with the broken store.
pub(crate) struct BrokenStore {
    events: broadcast::Sender<TaskEvent>,
}

impl BrokenStore {
    /// A broken store.
    pub(crate) fn new() -> BrokenStore {
        BrokenStore {
            events: broadcast::channel(1).0,
        }
    }
}

fn nothing() -> Resources {
    Resources {
        cpus: 0.0,
        mem_mib: 0.0,
        ports: 0,
    }
}

#[async_trait]
impl TaskService for BrokenStore {
    async fn submit(&self, _submission: Submission) -> Result<Accepted, SubmitError> {
        Err(SubmitError::Internal(STORE_FAILURE.to_owned()))
    }

    async fn get(&self, _id: &TaskId) -> Result<Option<Task>, ReadError> {
        Err(ReadError(STORE_FAILURE.to_owned()))
    }

    async fn list(
        &self,
        _filter: StateFilter,
        _name: Option<&str>,
    ) -> Result<Vec<Task>, ReadError> {
        Err(ReadError(STORE_FAILURE.to_owned()))
    }

    async fn kill(&self, _id: &TaskId) -> Result<(), KillError> {
        Err(KillError::Internal(STORE_FAILURE.to_owned()))
    }

    async fn delete(&self, _id: &TaskId) -> Result<(), DeleteError> {
        Err(DeleteError::Internal(STORE_FAILURE.to_owned()))
    }

    fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.events.subscribe()
    }

    fn cluster(&self) -> ClusterStatus {
        ClusterStatus {
            backend: "broken".to_owned(),
            total: nothing(),
            free: nothing(),
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
        Err(ReadError(STORE_FAILURE.to_owned()))
    }

    async fn log_location(
        &self,
        _id: &TaskId,
        _stream: LogStream,
    ) -> Result<Option<LogLocation>, ReadError> {
        Err(ReadError(STORE_FAILURE.to_owned()))
    }
}
