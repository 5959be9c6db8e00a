//! Admission of a submission: an idempotency key used before answers with the task it
//! created; a new task is stored (with its key, in one transaction) and queued.

use time::OffsetDateTime;

use super::{QueueEntry, Scheduler};
use crate::service::{Accepted, SubmitError, TaskEvent};
use crate::store::InsertOutcome;
use crate::task::{generate_name, Task, TaskId, TaskState};

impl Scheduler {
    /// Stores a new task and queues it, giving back the queue slot reserved by `submit`.
    pub(super) async fn admit(
        &self,
        request: crate::task::NewTask,
        idempotency_key: Option<String>,
    ) -> Result<Accepted, SubmitError> {
        let result = self.store_new(request, idempotency_key).await;
        let mut core = self.core();
        core.admitting -= 1;
        let (accepted, entry) = result?;
        if let Some(entry) = entry {
            core.queue.push(entry);
            let depth = core.queue.len();
            drop(core);
            self.inner.metrics.queue_depth.set(depth as i64);
            self.inner.metrics.submissions.inc();
            self.inner.metrics.tasks_in(TaskState::Queued).inc();
            self.inner.wake.notify_one();
        }
        Ok(accepted)
    }

    /// The answer to a submission whose idempotency key was used before: the task the first
    /// request created, or a conflict when this request differs; `None` when the key is new.
    pub(super) async fn earlier_submission(
        &self,
        key: &Option<String>,
        request: &crate::task::NewTask,
    ) -> Option<Result<Accepted, SubmitError>> {
        let key = key.as_deref()?;
        match self.inner.store.find_idempotency_key(key).await {
            Ok(Some(InsertOutcome::Existing {
                task_id,
                fingerprint,
            })) => Some(match request_fingerprint(request) {
                Ok(current) if current == fingerprint => Ok(Accepted {
                    id: task_id,
                    created: false,
                }),
                Ok(_) => Err(SubmitError::IdempotencyConflict {
                    key: key.to_owned(),
                    existing: task_id,
                }),
                Err(error) => Err(error),
            }),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!("looking up idempotency key {key:?}: {error}");
                None
            }
        }
    }

    /// Stores a new task (or finds the one an earlier submission with the same idempotency key
    /// created) and returns the queue entry to add, if any.
    async fn store_new(
        &self,
        mut request: crate::task::NewTask,
        idempotency_key: Option<String>,
    ) -> Result<(Accepted, Option<QueueEntry>), SubmitError> {
        // Fingerprint the request as the client sent it, before defaults are filled in; only
        // needed to compare with an earlier request under the same idempotency key.
        let idempotency = match idempotency_key {
            Some(key) => Some((key, request_fingerprint(&request)?)),
            None => None,
        };
        request
            .retries
            .get_or_insert(self.inner.config.default_retries);
        // One read of the system's random source for both the id and a generated name.
        let random: [u8; 24] = random_bytes().map_err(SubmitError::Internal)?;
        let (id_bytes, name_bytes) = random.split_at(16);
        let id = TaskId::generate(id_bytes.try_into().unwrap_or_default());
        let name = match &request.name {
            Some(name) => name.clone(),
            None => generate_name(name_bytes.try_into().unwrap_or_default()),
        };
        let task = Task::new(id, name, request, OffsetDateTime::now_utc());
        let (key, fingerprint) = idempotency.clone().unzip();
        match self.inner.store.insert(&task, idempotency).await {
            Ok(InsertOutcome::Inserted { seq }) => {
                let entry = self.queue_entry(seq, &task, None);
                let _ = self.inner.events.send(TaskEvent {
                    task_id: task.id.clone(),
                    name: task.name.clone(),
                    status: TaskState::Queued,
                    time: task
                        .status
                        .last()
                        .map_or_else(OffsetDateTime::now_utc, |entry| entry.time),
                    exit_code: None,
                    reason: None,
                });
                let accepted = Accepted {
                    id: task.id,
                    created: true,
                };
                Ok((accepted, Some(entry)))
            }
            Ok(InsertOutcome::Existing {
                task_id,
                fingerprint: existing,
            }) => {
                if Some(&existing) == fingerprint.as_ref() {
                    Ok((
                        Accepted {
                            id: task_id,
                            created: false,
                        },
                        None,
                    ))
                } else {
                    Err(SubmitError::IdempotencyConflict {
                        key: key.unwrap_or_default(),
                        existing: task_id,
                    })
                }
            }
            Err(error) => Err(SubmitError::Store(error.into())),
        }
    }
}

/// SHA-256 of the request as the client sent it (before defaults are filled in), to tell a
/// retried request from a different one under the same idempotency key.
fn request_fingerprint(request: &crate::task::NewTask) -> Result<String, SubmitError> {
    let bytes = serde_json::to_vec(request)
        .map_err(|error| SubmitError::Internal(format!("fingerprinting the request: {error}")))?;
    Ok(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|error| format!("reading random bytes for a task id: {error}"))?;
    Ok(bytes)
}
