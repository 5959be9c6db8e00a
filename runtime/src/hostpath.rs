//! Which host paths a task may reach: bind mounts ([`crate::policy`]) and local files copied
//! by a fetch ([`crate::fetch`]). Shared by `deimos`, `deimos-executor` and `eremetic`.
//!
//! A path is allowed when it is absolute, has no `..`, lies under one of the allowed
//! directories as written (checked without touching the file system, so a refused path is not
//! even probed for existence), and still lies under one of them once resolved (symbolic links
//! followed, on both sides): otherwise a link planted inside an allowed directory would reach
//! any file of the host.

use std::path::{Component, Path, PathBuf};

/// Directories under which host paths are allowed, and the setting that lists them (named in
/// refusals, so the operator knows what to change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPaths {
    dirs: Vec<PathBuf>,
    setting: String,
}

impl AllowedPaths {
    /// Paths under `dirs`, configured by `setting` (e.g. `[uris] allowed_local_paths`).
    pub fn new(dirs: impl IntoIterator<Item = PathBuf>, setting: impl Into<String>) -> Self {
        Self {
            dirs: dirs.into_iter().collect(),
            setting: setting.into(),
        }
    }

    /// No path at all (the setting is named in refusals).
    pub fn none(setting: impl Into<String>) -> Self {
        Self::new(Vec::new(), setting)
    }

    /// The allowed directories, as configured.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The setting that lists the directories.
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// The check on the path as written, without I/O: absolute, no `..`, under an allowed
    /// directory. The error is the reason, starting with the path.
    pub fn check_requested(&self, path: &Path) -> Result<(), String> {
        if !path.is_absolute() {
            return Err(format!("{} is not an absolute path", path.display()));
        }
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!("{} contains '..'", path.display()));
        }
        if self.dirs.iter().any(|dir| path.starts_with(dir)) {
            Ok(())
        } else {
            Err(self.not_under(path))
        }
    }

    /// The check on a path already resolved (e.g. the path of an opened file): under an
    /// allowed directory once that is resolved too. `requested` is the path as written.
    pub fn check_resolved(&self, requested: &Path, real: &Path) -> Result<(), String> {
        let inside = self.dirs.iter().any(|dir| {
            // A directory that cannot be resolved (missing) cannot contain anything real.
            std::fs::canonicalize(dir).is_ok_and(|dir| real.starts_with(dir))
        });
        if inside {
            Ok(())
        } else {
            Err(format!(
                "{} resolves to {}, which {}",
                requested.display(),
                real.display(),
                self.not_under_reason()
            ))
        }
    }

    /// Both checks, resolving `path` on this host: returns the resolved path.
    pub fn resolve(&self, path: &Path) -> Result<PathBuf, String> {
        self.check_requested(path)?;
        let real = std::fs::canonicalize(path).map_err(|error| {
            format!(
                "{} cannot be resolved on this host: {error}",
                path.display()
            )
        })?;
        self.check_resolved(path, &real)?;
        Ok(real)
    }

    fn not_under(&self, path: &Path) -> String {
        format!("{} {}", path.display(), self.not_under_reason())
    }

    fn not_under_reason(&self) -> String {
        if self.dirs.is_empty() {
            return format!("is not allowed: {} is empty", self.setting);
        }
        let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        format!(
            "is not under a directory allowed by {} ({})",
            self.setting,
            dirs.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_paths_must_be_absolute_clean_and_under_an_allowed_directory() {
        let allowed =
            AllowedPaths::new([PathBuf::from("/srv/files")], "[uris] allowed_local_paths");
        assert_eq!(
            allowed.check_requested(Path::new("/srv/files/a.tgz")),
            Ok(())
        );
        for bad in [
            "/srv/filesystem/x",
            "/etc/shadow",
            "relative",
            "/srv/files/../x",
        ] {
            let error = allowed.check_requested(Path::new(bad)).unwrap_err();
            assert!(error.starts_with(bad), "{bad}: {error}");
        }
        let error = allowed
            .check_requested(Path::new("/etc/shadow"))
            .unwrap_err();
        assert!(
            error.contains("[uris] allowed_local_paths (/srv/files)"),
            "{error}"
        );
        let none = AllowedPaths::none("allowed_host_paths");
        let error = none.check_requested(Path::new("/srv/files/x")).unwrap_err();
        assert!(error.contains("allowed_host_paths is empty"), "{error}");
    }

    #[test]
    fn a_link_inside_an_allowed_directory_pointing_outside_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let share = root.path().join("share");
        std::fs::create_dir(&share).unwrap();
        std::fs::write(share.join("ok.txt"), "ok").unwrap();
        std::fs::write(root.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), share.join("escape")).unwrap();
        let allowed = AllowedPaths::new([share.clone()], "allowed_host_paths");
        let real = allowed.resolve(&share.join("ok.txt")).unwrap();
        assert_eq!(real, std::fs::canonicalize(share.join("ok.txt")).unwrap());
        let error = allowed.resolve(&share.join("escape")).unwrap_err();
        assert!(error.contains("resolves to"), "{error}");
        assert!(
            error.contains("is not under a directory allowed by"),
            "{error}"
        );
        let error = allowed.resolve(&share.join("missing")).unwrap_err();
        assert!(error.contains("cannot be resolved"), "{error}");
    }
}
