//! The operator's policy on what a task may ask of the host: which host paths it may
//! bind-mount and whether it may run privileged. Pure; checked at submission (HTTP 403).

use std::path::{Component, Path, PathBuf};

use crate::task::NewTask;

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
    /// `Ok` when the request is within the policy, else the first violation, naming the field,
    /// the value and the rule.
    pub fn check(&self, task: &NewTask) -> Result<(), String> {
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
        for (index, volume) in task.volumes.iter().enumerate() {
            let host_path = Path::new(&volume.host_path);
            if !self.allows(host_path) {
                return Err(format!(
                    "volumes[{index}].host_path: {} is not under a directory the operator allows \
                     to mount ({})",
                    volume.host_path,
                    self.allowed_list()
                ));
            }
        }
        Ok(())
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

    #[test]
    fn default_policy_refuses_privileged_and_every_host_path() {
        let policy = Policy::default();
        let privileged = request(r#"{"image":"busybox","cpu":1,"mem":64,"privileged":true}"#);
        assert!(policy
            .check(&privileged)
            .unwrap_err()
            .starts_with("privileged:"));
        let mount = request(
            r#"{"image":"busybox","cpu":1,"mem":64,
                "volumes":[{"host_path":"/etc","container_path":"/x"}]}"#,
        );
        let error = policy.check(&mount).unwrap_err();
        assert!(error.contains("volumes[0].host_path: /etc"), "{error}");
        assert!(error.contains("allowed_host_paths is empty"), "{error}");
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
        assert_eq!(allowing.check(&request), Ok(()));
    }

    #[test]
    fn allowed_directory_admits_paths_below_it_but_not_siblings_or_climbs() {
        let policy = Policy {
            allowed_host_paths: vec![PathBuf::from("/srv/data")],
            allow_privileged: true,
            allow_volumes_from: false,
        };
        let mount = |path: &str| {
            request(&format!(
                r#"{{"image":"busybox","cpu":1,"mem":64,
                    "volumes":[{{"host_path":"{path}","container_path":"/x"}}]}}"#
            ))
        };
        assert_eq!(policy.check(&mount("/srv/data")), Ok(()));
        assert_eq!(policy.check(&mount("/srv/data/in")), Ok(()));
        assert!(policy.check(&mount("/srv/database")).is_err());
        assert!(policy.check(&mount("/srv/data/../../etc")).is_err());
        let privileged = request(r#"{"image":"busybox","cpu":1,"mem":64,"privileged":true}"#);
        assert_eq!(policy.check(&privileged), Ok(()));
    }
}
