//! The external containerizer protocol: one module per subcommand, on top of the pure
//! [`translate`] of a `Launch` message into a [`translate::LaunchPlan`].

pub mod ports;
pub mod translate;
