//! The protocol records an agent sends, as complete records (length prefix and payload).

use std::path::Path;

use mesos_proto::containerizer::{Destroy, Launch, Usage};
use mesos_proto::ecp;
use mesos_proto::mesos::{self, value, CommandInfo, ExecutorInfo, Resource, TaskInfo};

use crate::error::{BenchError, Result};

/// The command every benchmark container runs (through `sh -c`, as for any command task).
pub(crate) const COMMAND: &str = "sleep 30";

fn container_id(id: &str) -> mesos::ContainerId {
    mesos::ContainerId { value: id.into() }
}

fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Resource::default()
    }
}

/// A command task running [`COMMAND`] with 0.1 cpus and 32 MB, in the image of the
/// configuration (the task names none), with `sandbox` as its sandbox.
pub(crate) fn launch_message(id: &str, sandbox: &Path) -> Launch {
    let task_id = format!("task-{id}");
    Launch {
        container_id: container_id(id),
        task_info: Some(TaskInfo {
            name: "bench".into(),
            task_id: mesos::TaskId {
                value: task_id.clone(),
            },
            resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
            command: Some(CommandInfo {
                value: Some(COMMAND.into()),
                ..CommandInfo::default()
            }),
            ..TaskInfo::default()
        }),
        executor_info: Some(ExecutorInfo {
            executor_id: mesos::ExecutorId { value: task_id },
            framework_id: Some(mesos::FrameworkId {
                value: "bench-framework".into(),
            }),
            ..ExecutorInfo::default()
        }),
        directory: Some(sandbox.to_string_lossy().into_owned()),
        ..Launch::default()
    }
}

/// The record of [`launch_message`].
pub(crate) fn launch_record(id: &str, sandbox: &Path) -> Result<Vec<u8>> {
    ecp::encode_record(&launch_message(id, sandbox)).map_err(BenchError::record(format!(
        "encode the Launch record of {id}"
    )))
}

/// A `Usage` record for container `id`.
pub(crate) fn usage_record(id: &str) -> Result<Vec<u8>> {
    let usage = Usage {
        container_id: container_id(id),
    };
    ecp::encode_record(&usage).map_err(BenchError::record(format!(
        "encode the Usage record of {id}"
    )))
}

/// A `Destroy` record for container `id`.
pub(crate) fn destroy_record(id: &str) -> Result<Vec<u8>> {
    let destroy = Destroy {
        container_id: container_id(id),
    };
    ecp::encode_record(&destroy).map_err(BenchError::record(format!(
        "encode the Destroy record of {id}"
    )))
}
