//! Eremetic-compatible scheduler for one-shot Docker tasks.
//!
//! This crate reimplements the REST API of Eremetic (the Go Mesos framework): clients submit a
//! task (an image, a command, resources), the scheduler queues it, runs it once in a container
//! and keeps its status history.
//!
//! - [`task`] and [`api`] (re-exported from the `eremetic-model` crate): the task model — states ([`task::TaskState`]) and the composite list filter
//!   ([`task::StateFilter`]), status history, ids and generated names, the validated request
//!   ([`task::NewTask`]) and the stored record ([`task::Task`]).
//! - [`api`]: submit bodies (v1 and deprecated v0) parsed into a [`task::NewTask`] or a
//!   [`api::ValidationErrors`] listing every problem; task documents ([`api::TaskV1`],
//!   [`api::TaskV0`]) with secret environment values masked; Eremetic's error document.
//! - [`service`]: the contract between the HTTP layer and the scheduler core.
//! - [`engine`]: the scheduler core (queue, dispatch, supervision, retries, recovery).
//! - [`store`]: the durable SQLite task store and callback outbox ([`outbox`]).
//! - [`backend`]: where tasks run; the local Docker backend through `deimos_runtime::runtime`.
//! - [`mesos`]: the Mesos scheduler protocol (master URLs, offer matching, `TaskInfo`s, calls,
//!   status updates, the v1 scheduler API client) for the coming Mesos backend.
//! - [`callback`]: signed, retried callback delivery.
//! - [`http`]: the REST API, server-sent events, web UI and OpenAPI description.
//! - [`config`], [`logging`], [`metrics`], [`server`]: configuration, logs, Prometheus metrics
//!   and the wiring of the `eremetic` binary; [`data_dir`]: the data directory's mode (0700).
//!
//! Differences from Eremetic are deliberate fixes of its sharp edges (numbered E-n in the seed
//! behaviour document): requests are validated (E-17), `TASK_ERROR` is terminal (E-8), unknown
//! `state` filter tokens are errors, bodies over 1 MiB are rejected as too large (E-31).

/// The task model and request validation live in the `eremetic-model` crate (shared with the
/// `hermit` client); re-exported here so that `eremetic::task` and `eremetic::api` keep working.
pub use eremetic_model::{api, task};

pub mod backend;
pub mod callback;
pub mod config;
pub mod data_dir;
pub mod engine;
pub mod http;
pub mod logging;
pub mod mesos;
pub mod metrics;
pub mod outbox;
pub mod plan;
pub mod server;
pub mod service;
pub mod store;

#[cfg(test)]
mod model_agreement;
