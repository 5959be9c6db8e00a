//! The operator's policy on what a container may ask of the host, applied to every container
//! `deimos` and `deimos-executor` start (`[policy]` in the configuration): privileged mode,
//! `--volumes-from`, and host paths of bind mounts.
//!
//! Deimos passed task options straight to `docker run` (D-17), so any framework could run a
//! privileged container or mount `/` of the agent. Here both are refused unless the operator
//! allows them. A bind mount's host path must lie under a directory of `allowed_host_paths`
//! or inside the task's own sandbox (Mesos' relative `host_path` volumes), checked as written
//! when the launch is translated ([`ContainerPolicy::check`], no I/O) and again resolved
//! (symbolic links followed) right before the container is created
//! ([`ContainerPolicy::resolve`]); the resolved path is what gets mounted, so a link planted
//! in an allowed directory (or in the sandbox, by a fetched file) cannot widen the mount.

use std::path::Path;

use crate::hostpath::AllowedPaths;
use crate::spec::ContainerSpec;

/// The names of the settings a refusal tells the operator about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySettings {
    /// The setting that allows privileged containers.
    pub privileged: &'static str,
    /// The setting that allows `--volumes-from`.
    pub volumes_from: &'static str,
}

impl PolicySettings {
    /// The keys of `deimos.cfg`.
    pub const DEIMOS_CFG: PolicySettings = PolicySettings {
        privileged: "[policy] allow_privileged",
        volumes_from: "[policy] allow_volumes_from",
    };
}

/// What containers may ask of the host. [`Default`] refuses privileged mode, `--volumes-from`
/// and every host path outside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPolicy {
    /// Whether privileged containers are allowed.
    pub allow_privileged: bool,
    /// Directories under which host paths may be bind-mounted (besides the sandbox).
    pub host_paths: AllowedPaths,
    /// Whether `--volumes-from` is allowed.
    pub allow_volumes_from: bool,
    /// The setting names used in refusals.
    pub settings: PolicySettings,
}

impl Default for ContainerPolicy {
    fn default() -> Self {
        Self {
            allow_privileged: false,
            host_paths: AllowedPaths::none("[policy] allowed_host_paths"),
            allow_volumes_from: false,
            settings: PolicySettings::DEIMOS_CFG,
        }
    }
}

/// Why the policy refuses a container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Privileged mode was asked for and is not allowed.
    #[error(
        "privileged containers are not allowed on this agent (the operator can set {setting}: \
         true)"
    )]
    Privileged {
        /// The setting that would allow it.
        setting: &'static str,
    },
    /// `--volumes-from` was asked for and is not allowed.
    #[error(
        "mounting the volumes of other containers ({containers}) is not allowed on this agent \
         (the operator can set {setting}: true)"
    )]
    VolumesFrom {
        /// The containers named, comma-separated.
        containers: String,
        /// The setting that would allow it.
        setting: &'static str,
    },
    /// A bind mount's host path is not allowed.
    #[error("volume {container_path}: host path {reason}")]
    HostPath {
        /// Where it would be mounted in the container.
        container_path: String,
        /// Why (names the path and the setting).
        reason: String,
    },
}

impl ContainerPolicy {
    /// The checks that need no I/O: privileged mode, `--volumes-from`, and host paths as
    /// written (absolute, no `..`, under an allowed directory or the sandbox).
    pub fn check(&self, spec: &ContainerSpec) -> Result<(), PolicyError> {
        if spec.privileged && !self.allow_privileged {
            return Err(PolicyError::Privileged {
                setting: self.settings.privileged,
            });
        }
        if !spec.volumes_from.is_empty() && !self.allow_volumes_from {
            return Err(PolicyError::VolumesFrom {
                containers: spec.volumes_from.join(", "),
                setting: self.settings.volumes_from,
            });
        }
        for volume in &spec.volumes {
            self.allowed_for(spec, &volume.host_path)
                .check_requested(&volume.host_path)
                .map_err(|reason| PolicyError::HostPath {
                    container_path: volume.container_path.clone(),
                    reason,
                })?;
        }
        Ok(())
    }

    /// [`ContainerPolicy::check`], then every host path resolved on this host and checked
    /// again; the spec then mounts the resolved paths. Call it right before the container is
    /// created (after the fetch, which may have created sandbox directories).
    pub fn resolve(&self, spec: &mut ContainerSpec) -> Result<(), PolicyError> {
        self.check(spec)?;
        let mut volumes = std::mem::take(&mut spec.volumes);
        for volume in &mut volumes {
            volume.host_path = self
                .allowed_for(spec, &volume.host_path)
                .resolve(&volume.host_path)
                .map_err(|reason| PolicyError::HostPath {
                    container_path: volume.container_path.clone(),
                    reason,
                })?;
        }
        spec.volumes = volumes;
        Ok(())
    }

    /// A path in the task's sandbox must stay in it; any other path must be under an allowed
    /// directory.
    fn allowed_for(&self, spec: &ContainerSpec, host_path: &Path) -> AllowedPaths {
        match &spec.sandbox {
            Some(sandbox) if host_path.starts_with(&sandbox.host_dir) => {
                AllowedPaths::new([sandbox.host_dir.clone()], "the task's sandbox")
            }
            _ => self.host_paths.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::spec::{Sandbox, VolumeMount};

    fn mount(host: &Path) -> VolumeMount {
        VolumeMount {
            host_path: host.to_owned(),
            container_path: "/data".into(),
            read_only: false,
        }
    }

    fn spec_in(sandbox: &Path) -> ContainerSpec {
        ContainerSpec {
            sandbox: Some(Sandbox {
                host_dir: sandbox.to_owned(),
                container_dir: "/mnt/mesos/sandbox".into(),
            }),
            ..ContainerSpec::default()
        }
    }

    #[test]
    fn default_policy_refuses_privileged_volumes_from_and_host_paths() {
        let policy = ContainerPolicy::default();
        let privileged = ContainerSpec {
            privileged: true,
            ..ContainerSpec::default()
        };
        let error = policy.check(&privileged).unwrap_err().to_string();
        assert!(error.contains("[policy] allow_privileged: true"), "{error}");
        let from = ContainerSpec {
            volumes_from: vec!["db".into()],
            ..ContainerSpec::default()
        };
        let error = policy.check(&from).unwrap_err().to_string();
        assert!(
            error.contains("(db)") && error.contains("allow_volumes_from"),
            "{error}"
        );
        let mut root = spec_in(Path::new("/sandbox"));
        root.volumes.push(mount(Path::new("/")));
        let error = policy.check(&root).unwrap_err().to_string();
        assert!(
            error.starts_with("volume /data: host path / is not allowed"),
            "{error}"
        );
        assert!(error.contains("[policy] allowed_host_paths"), "{error}");
    }

    #[test]
    fn sandbox_and_allowed_directories_are_mounted_resolved() {
        let root = tempfile::tempdir().unwrap();
        let (sandbox, data) = (root.path().join("sandbox"), root.path().join("data"));
        std::fs::create_dir_all(sandbox.join("cache")).unwrap();
        std::fs::create_dir_all(data.join("set")).unwrap();
        std::os::unix::fs::symlink("/etc", sandbox.join("etc-link")).unwrap();
        let policy = ContainerPolicy {
            host_paths: AllowedPaths::new([data.clone()], "[policy] allowed_host_paths"),
            ..ContainerPolicy::default()
        };
        let mut spec = spec_in(&sandbox);
        spec.volumes = vec![mount(&sandbox.join("cache")), mount(&data.join("set"))];
        policy.resolve(&mut spec).unwrap();
        let real = |p: PathBuf| std::fs::canonicalize(p).unwrap();
        assert_eq!(spec.volumes[0].host_path, real(sandbox.join("cache")));
        assert_eq!(spec.volumes[1].host_path, real(data.join("set")));

        let mut escape = spec_in(&sandbox);
        escape.volumes = vec![mount(&sandbox.join("etc-link"))];
        assert!(
            policy.check(&escape).is_ok(),
            "as written it is in the sandbox"
        );
        let error = policy.resolve(&mut escape).unwrap_err().to_string();
        assert!(error.contains("resolves to /etc"), "{error}");
    }
}
