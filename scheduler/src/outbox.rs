//! The durable outbox of callbacks: rows the scheduler core writes in the same transaction as
//! the status change that causes them, and the callback worker ([`crate::callback`]) delivers.
//!
//! [`Outbox`] is implemented by the store ([`crate::store::Store`]); the worker depends only on
//! the trait so that its retry logic is testable with an in-memory outbox.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::task::TaskId;

/// A callback to deliver, as the core enqueues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCallback {
    /// The task whose status changed.
    pub task_id: TaskId,
    /// Where to POST (the task's `callback_uri`).
    pub url: String,
    /// The JSON body, fixed at enqueue time so that a retry sends the same bytes.
    pub body: String,
    /// When the status change happened.
    pub created_at: OffsetDateTime,
    /// After this instant the callback is abandoned if it still could not be delivered.
    pub give_up_at: OffsetDateTime,
}

/// A callback waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCallback {
    /// Outbox row id (increasing in enqueue order).
    pub id: i64,
    /// The task whose status changed.
    pub task_id: TaskId,
    /// Where to POST.
    pub url: String,
    /// The JSON body.
    pub body: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the status change happened.
    pub created_at: OffsetDateTime,
    /// When the callback is abandoned.
    pub give_up_at: OffsetDateTime,
    /// Not to be attempted before this instant.
    pub next_attempt_at: OffsetDateTime,
}

/// An outbox failure (the store's error, as text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("callback outbox: {0}")]
pub struct OutboxError(pub String);

/// Durable storage of pending callbacks.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Callbacks whose `next_attempt_at` is at or before `now`, at most `limit`, oldest first,
    /// and never a callback of a task that has an older callback still pending (so a receiver
    /// sees each task's changes in order).
    async fn due(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PendingCallback>, OutboxError>;

    /// The earliest `next_attempt_at` among the callbacks [`Outbox::due`] can return (the
    /// oldest pending one of each task), `None` when there are none.
    async fn next_due(&self) -> Result<Option<OffsetDateTime>, OutboxError>;

    /// The callback was delivered: remove it.
    async fn delivered(&self, id: i64) -> Result<(), OutboxError>;

    /// An attempt failed: record it and when to try again.
    async fn retry_at(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), OutboxError>;

    /// The callback could not be delivered before its `give_up_at`: remove it (the worker logs
    /// and counts it).
    async fn abandon(&self, id: i64, error: &str) -> Result<(), OutboxError>;
}
