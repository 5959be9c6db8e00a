//! `deimos-executor`: a Mesos executor speaking the v1 HTTP executor API that runs each task's
//! Docker container through the `deimos` runtime library and reports its status to the agent.
//!
//! | Module | What |
//! |---|---|
//! | [`env`] | the agent-provided environment as typed [`env::Settings`] |
//! | [`task`] | a `TaskInfo` as a container plan (pure) |
//! | [`agent`] | HTTP client of the agent's executor API (SUBSCRIBE stream, UPDATE calls) |
//! | [`run`] | the process: machine, agent, Docker runtime and timers wired together |
//! | [`protocol`] | the protocol state machine: events and container outcomes → actions (pure) |
//! | [`watchdog`] | the process that removes the executor's containers should it die |

pub mod agent;
pub mod env;
pub mod error;
pub mod protocol;
pub mod run;
pub mod task;
pub mod watchdog;

pub use error::Error;
