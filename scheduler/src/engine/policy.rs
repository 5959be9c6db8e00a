//! The operator's policy on what a task may ask of the host: which host paths it may
//! bind-mount and whether it may run privileged. Checked at submission (HTTP 403) and again
//! right before a launch.
//!
//! Host paths are resolved (symbolic links followed) before they are compared with the allowed
//! directories, and the resolved path is what gets mounted: otherwise a task able to write into
//! an allowed directory could plant a link to `/etc` there and have a later task mount it.
//!
//! Local files to fetch (`file://` URLs and absolute paths in `uris`/`fetch`) follow the same
//! rule ([`Policy::local_files`]): the service copies them with its own privileges, so
//! otherwise any client could read the database, the configuration or `/etc/shadow`. The fetch
//! checks the file it opens once more.

use std::path::{Component, Path, PathBuf};

use deimos_runtime::hostpath::AllowedPaths;

use crate::task::{NewTask, Volume};

/// What tasks may ask of the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Absolute directories under which host paths may be bind-mounted (none by default).
    pub allowed_host_paths: Vec<PathBuf>,
    /// Whether `privileged: true` is allowed (no by default).
    pub allow_privileged: bool,
    /// Whether `volumes_from` is allowed (no by default: another container's volumes may be
    /// host directories outside `allowed_host_paths`).
    pub allow_volumes_from: bool,
}

impl Policy {
    /// The task's volumes with their host paths resolved when the request is within the
    /// policy, else the first violation, naming the field, the value and the rule. Reads the
    /// file system only for requests that mount host paths.
    pub fn check(&self, task: &NewTask) -> Result<Vec<Volume>, String> {
        if task.privileged && !self.allow_privileged {
            return Err(
                "privileged: privileged containers are not allowed on this server \
                 (the operator can set allow_privileged: true)"
                    .to_owned(),
            );
        }
        if !task.volumes_from.is_empty() && !self.allow_volumes_from {
            return Err(format!(
                "volumes_from: mounting the volumes of other containers ({}) is not allowed on \
                 this server (the operator can set allow_volumes_from: true)",
                task.volumes_from.join(", ")
            ));
        }
        self.check_fetch(task)?;
        let mut resolved = Vec::with_capacity(task.volumes.len());
        for (index, volume) in task.volumes.iter().enumerate() {
            // Inside the task's own sandbox: no host directory is involved. The backend
            // resolves it (links included) when it launches the task.
            if volume.in_sandbox() {
                resolved.push(volume.clone());
                continue;
            }
            let refused = || {
                format!(
                    "volumes[{index}].host_path: {} is not under a directory the operator allows \
                     to mount ({})",
                    volume.host_path,
                    self.allowed_list()
                )
            };
            let host_path = Path::new(&volume.host_path);
            if !self.allows(host_path) {
                return Err(refused());
            }
            let real = std::fs::canonicalize(host_path).map_err(|error| {
                format!(
                    "volumes[{index}].host_path: {} cannot be resolved on this host: {error}",
                    volume.host_path
                )
            })?;
            if !self.allows_resolved(&real) {
                return Err(refused());
            }
            resolved.push(Volume {
                container_path: volume.container_path.clone(),
                host_path: real.display().to_string(),
            });
        }
        Ok(resolved)
    }

    /// Where local files may be fetched from: under `allowed_host_paths`.
    pub fn local_files(&self) -> AllowedPaths {
        AllowedPaths::new(self.allowed_host_paths.clone(), "allowed_host_paths")
    }

    /// Local files among the task's fetch URIs must resolve under `allowed_host_paths`.
    fn check_fetch(&self, task: &NewTask) -> Result<(), String> {
        let allowed = self.local_files();
        for (index, uri) in task.fetch.iter().enumerate() {
            let field = if index < task.uris_count {
                format!("uris[{index}]")
            } else {
                format!("fetch[{}].uri", index - task.uris_count)
            };
            let path = deimos_runtime::fetch::local_file_path(&uri.uri)
                .map_err(|reason| format!("{field}: {reason}"))?;
            if let Some(path) = path {
                allowed
                    .resolve(&path)
                    .map_err(|reason| format!("{field}: local file refused: {reason}"))?;
            }
        }
        Ok(())
    }

    /// Whether a resolved path is under a resolved allowed directory.
    fn allows_resolved(&self, real: &Path) -> bool {
        self.allowed_host_paths.iter().any(|allowed| {
            let allowed = std::fs::canonicalize(allowed).unwrap_or_else(|_| allowed.clone());
            real.starts_with(allowed)
        })
    }

    fn allows(&self, host_path: &Path) -> bool {
        // `..` could climb out of an allowed directory; such paths are refused outright.
        let climbs = host_path
            .components()
            .any(|component| matches!(component, Component::ParentDir));
        !climbs
            && host_path.is_absolute()
            && self
                .allowed_host_paths
                .iter()
                .any(|allowed| host_path.starts_with(allowed))
    }

    fn allowed_list(&self) -> String {
        if self.allowed_host_paths.is_empty() {
            return "allowed_host_paths is empty: no host path may be mounted".to_owned();
        }
        let paths: Vec<String> = self
            .allowed_host_paths
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        format!("allowed_host_paths: {}", paths.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_v1;

    fn request(body: &str) -> NewTask {
        parse_v1(body.as_bytes()).expect("valid request")
    }

    fn mount(path: &Path) -> NewTask {
        request(&format!(
            r#"{{"image":"busybox","cpu":1,"mem":64,
                "volumes":[{{"host_path":"{}","container_path":"/x"}}]}}"#,
            path.display()
        ))
    }

    #[test]
    fn default_policy_refuses_privileged_and_every_host_path() {
        let policy = Policy::default();
        let privileged = request(r#"{"image":"busybox","cpu":1,"mem":64,"privileged":true}"#);
        assert!(policy
            .check(&privileged)
            .unwrap_err()
            .starts_with("privileged:"));
        let error = policy.check(&mount(Path::new("/etc"))).unwrap_err();
        assert!(error.contains("volumes[0].host_path: /etc"), "{error}");
        assert!(error.contains("allowed_host_paths is empty"), "{error}");
    }

    #[test]
    fn sandbox_relative_host_paths_need_no_allowed_host_path() {
        let request = request(
            r#"{"image":"busybox","cpu":1,"mem":64,
                "volumes":[{"host_path":"fetched/conf","container_path":"/conf"}]}"#,
        );
        assert_eq!(
            Policy::default().check(&request),
            Ok(request.volumes.clone())
        );
    }

    #[test]
    fn volumes_from_needs_the_operator_s_consent() {
        let request =
            request(r#"{"image":"busybox","cpu":1,"mem":64,"volumes_from":["data-container"]}"#);
        let error = Policy::default().check(&request).unwrap_err();
        assert!(error.starts_with("volumes_from:"), "{error}");
        assert!(error.contains("data-container"), "{error}");
        let allowing = Policy {
            allow_volumes_from: true,
            ..Policy::default()
        };
        assert_eq!(allowing.check(&request), Ok(Vec::new()));
    }

    #[test]
    fn allowed_directory_admits_paths_below_it_but_not_siblings_or_climbs() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(data.join("in")).unwrap();
        std::fs::create_dir_all(root.path().join("database")).unwrap();
        let policy = Policy {
            allowed_host_paths: vec![data.clone()],
            allow_privileged: true,
            allow_volumes_from: false,
        };
        let real = std::fs::canonicalize(&data).unwrap();
        let resolved = policy.check(&mount(&data)).unwrap();
        assert_eq!(resolved[0].host_path, real.display().to_string());
        assert!(policy.check(&mount(&data.join("in"))).is_ok());
        assert!(policy.check(&mount(&root.path().join("database"))).is_err());
        assert!(policy.check(&mount(&data.join("../database"))).is_err());
        assert!(policy
            .check(&mount(&data.join("missing")))
            .unwrap_err()
            .contains("cannot be resolved"));
        let privileged = request(r#"{"image":"busybox","cpu":1,"mem":64,"privileged":true}"#);
        assert_eq!(policy.check(&privileged), Ok(Vec::new()));
    }

    #[test]
    fn local_files_to_fetch_must_resolve_under_an_allowed_directory() {
        let root = tempfile::tempdir().unwrap();
        let share = root.path().join("share");
        std::fs::create_dir_all(&share).unwrap();
        std::fs::write(share.join("tool.sh"), "echo").unwrap();
        std::fs::write(root.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), share.join("link")).unwrap();
        let body = |uris: &str, fetch: &str| {
            request(&format!(
                r#"{{"image":"busybox","cpu":1,"mem":64,"uris":[{uris}],"fetch":[{fetch}]}}"#
            ))
        };
        let error = Policy::default()
            .check(&body(r#""http://h/a","/etc/shadow""#, ""))
            .unwrap_err();
        assert!(
            error.starts_with("uris[1]: local file refused: /etc/shadow"),
            "{error}"
        );
        assert!(error.contains("allowed_host_paths is empty"), "{error}");
        let policy = Policy {
            allowed_host_paths: vec![share.clone()],
            ..Policy::default()
        };
        let ok = format!(r#"{{"uri":"file://{}"}}"#, share.join("tool.sh").display());
        assert!(policy.check(&body("", &ok)).is_ok());
        let linked = format!(
            r#"{{"uri":"http://h/x"}},{{"uri":"{}"}}"#,
            share.join("link").display()
        );
        let error = policy.check(&body(r#""http://h/y""#, &linked)).unwrap_err();
        assert!(
            error.starts_with("fetch[1].uri: local file refused:"),
            "{error}"
        );
        assert!(error.contains("resolves to"), "{error}");
    }

    #[test]
    fn a_link_inside_an_allowed_directory_to_outside_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let share = root.path().join("share");
        std::fs::create_dir_all(&share).unwrap();
        std::os::unix::fs::symlink("/etc", share.join("escape")).unwrap();
        let policy = Policy {
            allowed_host_paths: vec![share.clone()],
            ..Policy::default()
        };
        let error = policy.check(&mount(&share.join("escape"))).unwrap_err();
        assert!(error.contains("is not under a directory"), "{error}");
    }
}
