//! `deimos`: the external containerizer for Mesos agents.
//!
//! The program's own parts live here: the command line ([`cli`]), the external containerizer
//! subcommands ([`ecp`]), the INI configuration ([`config`]), logging to stderr and syslog
//! ([`logging`]), the per-container state directories ([`state`]) and cgroup statistics
//! ([`cgroups`]). Everything that turns a container description into Docker calls is the
//! `deimos-runtime` library, re-exported here under its old paths (`deimos::spec`,
//! `deimos::runtime`, ...) for this crate's own code and tests; other crates depend on
//! `deimos-runtime` directly.

pub mod cgroups;
pub mod cli;
pub mod config;
pub mod ecp;
pub mod error;
pub mod logging;
pub mod state;

pub use deimos_runtime::{fetch, hostpath, options, policy, runtime, spec};
