//! `deimos`: the external containerizer for Mesos agents and the shared Docker runtime library.
//!
//! This crate is the single place where a container description ([`spec::ContainerSpec`])
//! becomes Docker Engine API calls ([`runtime`]). The `deimos` binary (an external
//! containerizer program a Mesos agent runs through `--containerizer_path`), the scheduler's
//! local backend and the executor all use it.

pub mod cgroups;
pub mod cli;
pub mod config;
pub mod ecp;
pub mod error;
pub mod fetch;
pub mod hostpath;
pub mod logging;
pub mod options;
pub mod policy;
pub mod runtime;
pub mod spec;
pub mod state;
