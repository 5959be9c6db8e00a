//! The external containerizer protocol: one module per subcommand, on top of the pure
//! [`translate`] of a `Launch` message into a [`translate::LaunchPlan`].
//!
//! Every subcommand reads at most one record from stdin (exactly 4 + N bytes: the agent never
//! closes stdin) and writes at most one to stdout. How a container is followed:
//!
//! - `launch` creates the state directory under `lock.launch` (EX), fetches URIs, creates and
//!   starts the container, then starts a detached watcher (`deimos watch <id>`) that takes
//!   `lock.observe` and `lock.wait` exclusively and reports readiness; only then is
//!   `lock.launch` released. So anybody who got through `lock.launch` (shared) and then gets
//!   `lock.wait` (shared) knows the container has exited and its exit is recorded.
//! - A `wait` that finds no exit record once it holds `lock.wait` knows the watcher died: it
//!   takes `lock.launch` exclusively, starts a new watcher the same way, and waits again.
//! - `wait`, `observe` and `destroy` hold `lock.launch` shared for as long as they use the
//!   state directory (`ContainerDir::hold`), so `deimos state --rm`, which needs it
//!   exclusively, never removes a directory under them; one that finds the directory removed
//!   already treats the container as gone (`destroy` succeeds).
//! - A watcher that cannot get ready says why on the pipe (`failed: <cause>`), and `launch`
//!   then removes the container and the state directory. A watcher that cannot write the exit
//!   record retries until it can, keeping the stopped container (and `lock.wait`) meanwhile.

mod admin;
mod context;
mod destroy;
mod hooks;
mod launch;
mod recover;
mod termination;
mod usage;
mod wait;
mod watcher;

pub use deimos_runtime::mesos::{ports, translate};

pub use admin::{print_config, print_locks, state_command};
pub use context::Context;
pub use destroy::destroy;
pub use launch::launch;
pub use recover::{containers, recover};
pub use termination::termination_of;
pub use usage::{update, usage};
pub use wait::{observe, wait};
pub use watcher::watch;
