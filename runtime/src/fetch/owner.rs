//! The owner of fetched files: the user the task's container runs as, as the Mesos fetcher
//! does (it chowns the sandbox's downloads to the task user).

use std::path::Path;

use nix::unistd::{Group, User};

/// A host uid, and a gid when one is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileOwner {
    /// The user id.
    pub uid: u32,
    /// The group id; `None` keeps the file's group.
    pub gid: Option<u32>,
}

impl FileOwner {
    /// The owner for a container user as docker's `--user` takes it: `uid`, `uid:gid`,
    /// `name` or `name:group`.
    ///
    /// Numeric ids are used as they are (they mean the same inside the container and on the
    /// host); a bare uid gets the primary group of the host's account with that uid, if any.
    /// A name is looked up in the host's user database. `Ok(None)` when the name (or the
    /// group name) does not exist on the host: the user then only exists inside the image, and
    /// whatever uid it has there is unknown here, so the files stay owned by this process and
    /// remain readable through their mode (0644/0755). Errors are lookup failures.
    pub fn for_user(user: &str) -> Result<Option<FileOwner>, String> {
        let (user_part, group_part) = match user.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (user, None),
        };
        let host_user = match user_part.parse::<u32>() {
            Ok(uid) => {
                let account =
                    User::from_uid(uid.into()).map_err(|e| format!("looking up uid {uid}: {e}"))?;
                Some((uid, account.map(|u| u.gid.as_raw())))
            }
            Err(_) => User::from_name(user_part)
                .map_err(|e| format!("looking up user {user_part:?}: {e}"))?
                .map(|u| (u.uid.as_raw(), Some(u.gid.as_raw()))),
        };
        let Some((uid, primary)) = host_user else {
            return Ok(None);
        };
        let gid = match group_part {
            None => primary,
            Some(group) => match group.parse::<u32>() {
                Ok(gid) => Some(gid),
                Err(_) => match Group::from_name(group)
                    .map_err(|e| format!("looking up group {group:?}: {e}"))?
                {
                    Some(found) => Some(found.gid.as_raw()),
                    None => return Ok(None),
                },
            },
        };
        Ok(Some(FileOwner { uid, gid }))
    }

    /// The owner for fetched files of a container running as `user` (`None`: the image's
    /// user, unknown here): [`FileOwner::for_user`], with the case of a user unknown on this
    /// host (or a failed lookup) logged; the files then stay owned by this process.
    pub fn for_container(user: Option<&str>) -> Option<FileOwner> {
        let user = user?;
        match FileOwner::for_user(user) {
            Ok(Some(owner)) => Some(owner),
            Ok(None) => {
                log::info!(
                    "user {user:?} does not exist on this host: fetched files keep this \
                     process' owner (mode 0644, or 0755 when executable)"
                );
                None
            }
            Err(error) => {
                log::warn!("fetched files keep this process' owner: {error}");
                None
            }
        }
    }

    /// Gives `path` (not what a symbolic link points to) to this owner.
    pub fn apply(&self, path: &Path) -> std::io::Result<()> {
        std::os::unix::fs::lchown(path, Some(self.uid), self.gid)
    }

    /// Gives `dir` and everything below it to this owner, never following symbolic links.
    pub fn apply_tree(&self, dir: &Path) -> std::io::Result<()> {
        self.apply(dir)?;
        if !std::fs::symlink_metadata(dir)?.is_dir() {
            return Ok(());
        }
        for entry in std::fs::read_dir(dir)? {
            self.apply_tree(&entry?.path())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_users_are_taken_as_they_are() {
        assert_eq!(
            FileOwner::for_user("4321:8765"),
            Ok(Some(FileOwner {
                uid: 4321,
                gid: Some(8765)
            }))
        );
        // uid 0 exists everywhere, with group 0.
        assert_eq!(
            FileOwner::for_user("0"),
            Ok(Some(FileOwner {
                uid: 0,
                gid: Some(0)
            }))
        );
    }

    #[test]
    fn names_are_looked_up_on_the_host_and_unknown_ones_give_no_owner() {
        assert_eq!(
            FileOwner::for_user("root"),
            Ok(Some(FileOwner {
                uid: 0,
                gid: Some(0)
            }))
        );
        assert_eq!(FileOwner::for_user("no-such-user-deimos-test"), Ok(None));
        assert_eq!(FileOwner::for_user("root:no-such-group-deimos"), Ok(None));
    }
}
