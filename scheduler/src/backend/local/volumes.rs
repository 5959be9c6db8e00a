//! Volumes whose host path is relative: taken inside the task's sandbox, as Mesos does (and
//! as Eremetic's examples rely on to mount fetched files).
//!
//! The request's path was checked lexically at submission
//! ([`crate::task::sandbox_relative_path`]: no `..` above the sandbox). What is in the sandbox
//! is only known at launch, after the fetch: an archive can hold a symbolic link pointing
//! anywhere on the host. So right before the container is created every such path is resolved
//! with its links followed, refused when it leads out of the sandbox, and the resolved path is
//! what gets mounted. A missing path is created as a directory (as Mesos and Docker do), but
//! only below a part that resolved inside the sandbox, so that no directory is ever created
//! through a link elsewhere on the host.

use std::path::{Path, PathBuf};

use crate::task::{sandbox_relative_path, Volume};

/// `volumes` with every sandbox-relative host path replaced by its resolved absolute path
/// inside `sandbox` (absolute host paths are kept: the operator's policy handled them). The
/// error names the volume (`volumes[i].host_path`) and says why.
pub(crate) fn resolve_in_sandbox(
    volumes: &[Volume],
    sandbox: &Path,
) -> Result<Vec<Volume>, String> {
    let root = std::fs::canonicalize(sandbox).map_err(|error| {
        format!(
            "the sandbox {} cannot be resolved: {error}",
            sandbox.display()
        )
    })?;
    volumes
        .iter()
        .enumerate()
        .map(|(index, volume)| {
            if !volume.in_sandbox() {
                return Ok(volume.clone());
            }
            let field = format!("volumes[{index}].host_path");
            let real = resolve_one(&root, &volume.host_path)
                .map_err(|reason| format!("{field}: {}: {reason}", volume.host_path))?;
            Ok(Volume {
                container_path: volume.container_path.clone(),
                host_path: real.display().to_string(),
            })
        })
        .collect()
}

/// The resolved path of `relative` below the canonical sandbox `root`, created as a directory
/// when missing.
fn resolve_one(root: &Path, relative: &str) -> Result<PathBuf, String> {
    let joined = root.join(sandbox_relative_path(relative)?);
    // The deepest part that exists (a dangling link exists too, and fails to resolve below).
    let existing = joined
        .ancestors()
        .find(|path| path.symlink_metadata().is_ok())
        .unwrap_or(root);
    let real_existing = inside(root, existing)?;
    let missing = joined.strip_prefix(existing).unwrap_or(Path::new(""));
    if !missing.as_os_str().is_empty() {
        // None of these components exists, so none is a link: the directories are created
        // where the resolved part is, inside the sandbox.
        std::fs::create_dir_all(real_existing.join(missing))
            .map_err(|error| format!("cannot be created in the sandbox: {error}"))?;
    }
    inside(root, &joined)
}

/// `path` with its links followed, when that stays inside `root`.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, String> {
    let real = std::fs::canonicalize(path)
        .map_err(|error| format!("cannot be resolved in the sandbox: {error}"))?;
    if !real.starts_with(root) {
        return Err(format!(
            "leads out of the task's sandbox (to {}) through a symbolic link",
            real.display()
        ));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn volume(host_path: &str) -> Volume {
        Volume {
            container_path: "/mnt".into(),
            host_path: host_path.into(),
        }
    }

    #[test]
    fn relative_paths_are_resolved_and_created_inside_the_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path().join("sandbox");
        std::fs::create_dir_all(sandbox.join("fetched")).unwrap();
        std::fs::write(sandbox.join("fetched/Dockerfile"), "FROM scratch").unwrap();
        symlink("fetched", sandbox.join("link")).unwrap();
        let root = std::fs::canonicalize(&sandbox).unwrap();
        let resolved = resolve_in_sandbox(
            &[
                volume("fetched/Dockerfile"),
                volume("new/dir"),
                volume("link"),
                volume("/srv/absolute"),
            ],
            &sandbox,
        )
        .unwrap();
        let paths: Vec<&str> = resolved.iter().map(|v| v.host_path.as_str()).collect();
        let expected = [
            root.join("fetched/Dockerfile"),
            root.join("new/dir"),
            root.join("fetched"),
        ];
        for (path, expected) in paths.iter().zip(&expected) {
            assert_eq!(Path::new(path), expected);
        }
        assert_eq!(paths[3], "/srv/absolute");
        assert!(root.join("new/dir").is_dir());
    }

    #[test]
    fn links_that_lead_out_of_the_sandbox_are_refused_and_nothing_is_created_outside() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path().join("sandbox");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&sandbox).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, sandbox.join("escape")).unwrap();
        symlink("/nonexistent-target", sandbox.join("dangling")).unwrap();
        for host_path in ["escape", "escape/created", "dangling/x"] {
            let error =
                resolve_in_sandbox(&[volume("ok"), volume(host_path)], &sandbox).unwrap_err();
            assert!(
                error.starts_with(&format!("volumes[1].host_path: {host_path}: ")),
                "{error}"
            );
        }
        assert!(
            !outside.join("created").exists(),
            "no directory made outside"
        );
        assert!(!Path::new("/nonexistent-target").exists());
    }
}
