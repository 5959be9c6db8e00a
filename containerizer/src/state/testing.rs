//! Test support (this crate's tests and the `test-util` feature; never in the `deimos`
//! program): state directories of exited containers made in bulk.

use super::{ContainerId, ExitRecord, NewContainer, StateError, StateRoot};

/// Creates `count` exited containers named `<prefix>-<n>` (exit code 0) through the normal
/// launch path and releases their locks: each has what a real exited container has
/// (`container.json` with a sandbox, `cid`, `exit`, empty lock files, both index links),
/// without the watcher's `pid` and `watcher.log`. For tests and for benchmarking
/// [`StateRoot::remove_exited_before`]; use a root with [`super::Durability::NoSync`] to
/// keep seeding fast.
pub fn seed_exited_containers(
    root: &StateRoot,
    prefix: &str,
    count: usize,
) -> Result<Vec<ContainerId>, StateError> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let id = ContainerId::new(format!("{prefix}-{n}"))?;
        let new = NewContainer {
            executor_id: format!("executor-{n}"),
            task_id: Some(format!("task-{n}")),
            owner: None,
            sandbox: Some(root.path().join("sandboxes").join(id.as_str())),
        };
        let (dir, _launch) = root.create_container(&id, &new)?.into_parts();
        dir.record_docker_id(&format!("{:064x}", n))?;
        dir.record_exit(&ExitRecord::with_code(0))?;
        ids.push(id);
    }
    Ok(ids)
}
