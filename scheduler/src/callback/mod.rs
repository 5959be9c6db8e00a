//! Callback delivery: on every status change of a task with a `callback_uri`, the scheduler
//! POSTs a small JSON document to that URI.
//!
//! Eremetic fired its callback once, for terminal states only, from a goroutine without a
//! timeout, never retried it and never signed it (sharp edge E-11). Here:
//!
//! - the body ([`payload`]) is Eremetic's `{"time", "status", "task_id"}` plus `exit_code` and
//!   `reason` when known; it is fixed when the core enqueues it ([`new_callback`]) in the
//!   durable outbox ([`crate::outbox`]), so pending callbacks survive a restart and a retry
//!   sends the same bytes;
//! - delivery is at-least-once: the [`CallbackWorker`] retries failures with exponential
//!   backoff ([`Backoff`]) until the callback's `give_up_at`, then abandons it. Every request
//!   carries `X-Eremetic-Delivery: <outbox id>`, identical across retries, so a receiver can
//!   drop duplicates;
//! - when a secret is configured, every request carries
//!   `X-Eremetic-Signature: sha256=<hex HMAC-SHA256(secret, body)>` ([`sign`]); receivers check
//!   it with [`verify`] or the equivalent in their language.

mod backoff;
mod delivery;
mod payload;
mod signature;
mod worker;

pub use backoff::{next_delay, Backoff};
pub use payload::{new_callback, payload};
pub use signature::{sign, verify, SIGNATURE_PREFIX};
pub use worker::{CallbackWorker, DEFAULT_ATTEMPT_TIMEOUT, MAX_IN_FLIGHT};

/// The header carrying the body's signature (only when a callback secret is configured).
pub const SIGNATURE_HEADER: &str = "X-Eremetic-Signature";

/// The header carrying the outbox id of the callback, the same on every retry of one callback.
pub const DELIVERY_HEADER: &str = "X-Eremetic-Delivery";

/// The `User-Agent` of callback requests: `eremetic/<version>`.
pub const USER_AGENT: &str = concat!("eremetic/", env!("CARGO_PKG_VERSION"));

/// Why the callback worker could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The HTTP client could not be built (e.g. the system's root certificates could not be
    /// loaded for HTTPS callbacks).
    #[error("cannot create the HTTP client for callbacks: {0}")]
    Client(#[source] reqwest::Error),
}
