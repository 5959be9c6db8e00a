//! `deimos-runtime`: the container runtime library shared by the `deimos` external
//! containerizer, `deimos-executor` and `eremetic`.
//!
//! This crate is the single place where a container description ([`spec::ContainerSpec`])
//! becomes Docker Engine API calls ([`runtime`]). Around it: the pure translation of a Mesos
//! launch into a spec ([`mesos`]), docker-run options ([`options`]), URI fetching into the
//! sandbox ([`fetch`]), the operator's limits on what a container may ask of the host
//! ([`policy`], [`hostpath`]) and the `deimos.cfg` sections the programs built on it share
//! ([`config`]). The programs themselves (command lines, state directories, syslog) live in
//! their own crates, so that linking this library does not pull them in.

pub mod config;
pub mod console;
pub mod fetch;
pub mod hostpath;
pub mod mesos;
pub mod options;
pub mod policy;
pub mod runtime;
pub mod size;
pub mod spec;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
