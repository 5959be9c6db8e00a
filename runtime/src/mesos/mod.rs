//! From a Mesos launch (the legacy unversioned `Launch`/`TaskInfo` messages) to a
//! [`crate::spec::ContainerSpec`]: the pure [`translate::plan_launch`] and the pairing of
//! allocated host ports with container ports ([`ports`]); the task's command carried to
//! `deimos-executor` in `TaskInfo.data` ([`task_data`]).

pub mod ports;
pub mod task_data;
pub mod translate;
