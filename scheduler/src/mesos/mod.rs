//! The Mesos protocol layer of the future Mesos backend: pure translations between the task
//! model and the Mesos v1 scheduler API, and an HTTP client for that API.
//!
//! - [`master_url`]: the `master` configuration value (HTTP master or ZooKeeper target).
//! - [`detector`]: the leading master of a ZooKeeper election, followed through its changes.
//! - [`offers`]: what an offer holds, whether a task fits, which resources and host ports to
//!   claim, packing several tasks into one offer.
//! - [`task_info`]: a task's attempt as a v1 `TaskInfo` (Docker container, command, env).
//! - [`calls`]: builders of scheduler `Call`s.
//! - [`updates`]: a v1 `TaskStatus` read into our task model.
//! - [`client`]: the HTTP client (subscription stream, calls, leader redirects, heartbeats).
//!
//! Mesos task ids are run ids, `<task id>.<attempt>` (see [`task_info::mesos_task_id`]).

pub mod calls;
pub mod client;
pub mod detector;
mod error;
pub mod launch_mode;
pub mod master_url;
pub mod offers;
pub mod task_info;
pub mod updates;

pub use error::MesosError;
pub use master_url::MasterUrl;

#[cfg(test)]
mod test_support;
