//! The Eremetic task model and request validation, without I/O.
//!
//! Shared by the `eremetic` service (which re-exports [`task`] and [`api`] under its own name)
//! and the `hermit` command-line client, so that installing the client builds neither the
//! service's store nor its Docker client nor its HTTP server.
//!
//! - [`task`]: the task model — states ([`task::TaskState`]) and the composite list filter
//!   ([`task::StateFilter`]), status history, ids and generated names, the validated request
//!   ([`task::NewTask`]) and the stored record ([`task::Task`]).
//! - [`api`]: submit bodies (v1 and deprecated v0) parsed into a [`task::NewTask`] or a
//!   [`api::ValidationErrors`] listing every problem; task documents ([`api::TaskV1`],
//!   [`api::TaskV0`]) with secret environment values masked; Eremetic's error document.
//! - [`fetch_uri`]: which local file a fetch URI names, checked at submission.

pub mod api;
pub mod fetch_uri;
pub mod task;
