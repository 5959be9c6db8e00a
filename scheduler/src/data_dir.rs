//! The data directory (`data_dir`) before anything is stored in it: it holds the task database
//! (with `masked_env` values in clear) and the sandboxes (task output, fetched files), so only
//! the service user may enter it: mode 0700.
//!
//! A directory that already exists with a looser mode (0755 from `mkdir`, a package or an
//! older systemd unit) is tightened to 0700 at start, with a log line saying so: the service
//! user owns it, so tightening takes nothing from anyone entitled to it. A directory owned by
//! another user is refused, because its owner can loosen it again or read what is stored in
//! it: the operator must hand it to the service user or choose another `data_dir`.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of the data directory.
pub const DATA_DIR_MODE: u32 = 0o700;

/// What is found at the data directory's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Nothing.
    Missing,
    /// Something that is not a directory.
    NotADirectory,
    /// A directory with this owner and permission bits (`st_mode & 0o7777`).
    Directory {
        /// Owner uid.
        owner: u32,
        /// Permission bits.
        mode: u32,
    },
}

/// What to do with the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create it (and missing parents) with mode 0700.
    Create,
    /// Leave it: it is the service user's and closed to others.
    Keep,
    /// Set its mode to 0700 (from the mode given).
    Tighten {
        /// The mode found.
        from: u32,
    },
    /// Do not start; the reason says what is wrong and what to do.
    Refuse(String),
}

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("data_dir {}: {reason}", path.display())]
pub struct DataDirError {
    /// The directory.
    pub path: PathBuf,
    /// What is wrong (and what to do).
    pub reason: String,
}

/// The action for what was `found`, the service running as uid `uid` (pure).
pub fn plan(found: Found, uid: u32) -> Action {
    match found {
        Found::Missing => Action::Create,
        Found::NotADirectory => Action::Refuse("exists but is not a directory".to_owned()),
        Found::Directory { owner, .. } if owner != uid => Action::Refuse(format!(
            "is owned by uid {owner}, not by the service user (uid {uid}); it holds the task \
             database with masked values in clear, so it must belong to the service user: \
             chown it, or choose another data_dir"
        )),
        Found::Directory { mode, .. } if mode & 0o077 != 0 => Action::Tighten { from: mode },
        Found::Directory { .. } => Action::Keep,
    }
}

/// Creates the data directory with mode 0700, or tightens an existing one of the service
/// user to 0700, or refuses it (see the module documentation). Returns the log line to write
/// when the mode was changed.
pub fn prepare(path: &Path) -> Result<Option<String>, DataDirError> {
    let error = |reason: String| DataDirError {
        path: path.to_owned(),
        reason,
    };
    let found = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Found::Directory {
            owner: meta.uid(),
            mode: meta.mode() & 0o7777,
        },
        Ok(_) => Found::NotADirectory,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => Found::Missing,
        Err(source) => return Err(error(format!("cannot be examined: {source}"))),
    };
    match plan(found, nix::unistd::geteuid().as_raw()) {
        Action::Keep => Ok(None),
        Action::Create => DirBuilder::new()
            .recursive(true)
            .mode(DATA_DIR_MODE)
            .create(path)
            .map(|()| None)
            .map_err(|source| error(format!("cannot be created: {source}"))),
        Action::Tighten { from } => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(DATA_DIR_MODE))
                .map_err(|source| {
                    error(format!(
                        "has mode {from:04o}, open to other users, and cannot be set to 0700: \
                         {source}"
                    ))
                })?;
            Ok(Some(format!(
                "data_dir {} had mode {from:04o}, which let other users read the task database \
                 and sandboxes; set it to 0700",
                path.display()
            )))
        }
        Action::Refuse(reason) => Err(error(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_of_the_service_user_open_to_others_is_tightened() {
        let dir = |mode| Found::Directory { owner: 1000, mode };
        assert_eq!(plan(dir(0o755), 1000), Action::Tighten { from: 0o755 });
        assert_eq!(plan(dir(0o750), 1000), Action::Tighten { from: 0o750 });
        assert_eq!(plan(dir(0o701), 1000), Action::Tighten { from: 0o701 });
        assert_eq!(plan(dir(0o700), 1000), Action::Keep);
        assert_eq!(plan(Found::Missing, 1000), Action::Create);
    }

    #[test]
    fn a_directory_of_another_user_or_a_file_is_refused() {
        let foreign = plan(
            Found::Directory {
                owner: 0,
                mode: 0o700,
            },
            1000,
        );
        let Action::Refuse(reason) = foreign else {
            panic!("{foreign:?}");
        };
        assert!(
            reason.contains("owned by uid 0") && reason.contains("uid 1000"),
            "{reason}"
        );
        assert!(matches!(
            plan(Found::NotADirectory, 1000),
            Action::Refuse(_)
        ));
    }

    #[test]
    fn an_existing_0755_directory_is_set_to_0700_and_a_missing_one_created_0700() {
        let root = tempfile::tempdir().unwrap();
        let existing = root.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).unwrap();
        let logged = prepare(&existing).unwrap().unwrap();
        assert!(
            logged.contains("0755") && logged.contains("0700"),
            "{logged}"
        );
        let mode = |path: &Path| std::fs::metadata(path).unwrap().mode() & 0o7777;
        assert_eq!(mode(&existing), 0o700);
        assert_eq!(prepare(&existing).unwrap(), None, "nothing more to do");
        let missing = root.path().join("new/data");
        assert_eq!(prepare(&missing).unwrap(), None);
        assert_eq!(mode(&missing), 0o700);
        let file = root.path().join("file");
        std::fs::write(&file, "").unwrap();
        let error = prepare(&file).unwrap_err().to_string();
        assert!(error.contains("not a directory"), "{error}");
    }
}
