//! Test harness: a protocol-faithful fake Mesos agent for executor tests and
//! a fake Mesos master for scheduler tests.
//!
//! [`master::FakeMaster`] serves the scheduler side of the master's v1 HTTP
//! API (`POST /api/v1/scheduler`): the master's status codes, Content-Type,
//! Accept and `Mesos-Stream-Id` rules, SUBSCRIBED / HEARTBEAT / OFFERS /
//! UPDATE / RESCIND / FAILURE / ERROR streams in JSON or protobuf, offers
//! from scripted agents (with `--offer_timeout`), ACCEPT/LAUNCH validation
//! with the master's texts, DECLINE filters, reliable status updates with
//! acknowledgement and retry, KILL, reconciliation, framework failover,
//! agents becoming unreachable, gone or re-registering, HTTP framework
//! authentication, `/state`, `/redirect` and leader redirects by host name;
//! with [`master::MasterSetup::zookeeper`] it contends for leadership in a
//! real ZooKeeper ([`zk::ZooKeeperServer`]) as a Mesos master does.
//! Tests play the agents and executors (`update_task`) and inspect the
//! decoded calls.
//!
//! [`agent::FakeAgent`] serves the executor side of the agent's v1 HTTP API
//! on `127.0.0.1:<ephemeral port>` exactly as a real agent answers it
//! (status codes, Content-Type and Accept rules, RecordIO event streams in
//! JSON or protobuf, call validation, agent restart and executor
//! re-subscription). Tests push events (LAUNCH, KILL, ACKNOWLEDGED,
//! MESSAGE, SHUTDOWN, ERROR, ...) and inspect the decoded calls the executor
//! sent.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mesos_harness::HarnessError> {
//! use std::time::Duration;
//! use mesos_harness::agent::{AgentSetup, FakeAgent};
//!
//! let agent = FakeAgent::start(AgentSetup::new("fw-1", "exec-1", "agent-1", "cont-1")).await?;
//! let env = agent.executor_env(std::path::Path::new("/tmp/sandbox"));
//! // ... spawn the executor with `env` ...
//! let subscribe = agent.wait_subscribed(Duration::from_secs(10)).await?;
//! assert!(subscribe.unacknowledged_updates.is_empty());
//! # let _ = env;
//! # Ok(())
//! # }
//! ```

pub mod agent;
pub mod cluster;
mod common;
mod error;
pub mod master;
pub mod tls;
pub mod zk;

pub use error::HarnessError;
