//! `deimos locks`: which processes hold or wait for the lock files under the state root.
//!
//! `/proc/locks` lists every file lock on the host by device and inode, e.g.
//!
//! ```text
//! 1: FLOCK  ADVISORY  WRITE 1234 fd:01:123456 0 EOF
//! 1: -> FLOCK  ADVISORY  READ 1240 fd:01:123456 0 EOF
//! 2: OFDLCK ADVISORY  READ  -1 00:05:1234 0 EOF
//! ```
//!
//! (`->` marks a process blocked waiting for lock 1; OFD locks have no pid.) The listing
//! joins these lines with the lock files under the root by inode, preferring an exact device
//! match (overlay file systems may report another device in `/proc/locks` than `stat`).

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::error::StateError;
use super::lock::{LockHolder, LockName};
use super::{files, StateRoot};

/// Where the kernel lists file locks.
const PROC_LOCKS: &str = "/proc/locks";

/// Read (shared) or write (exclusive) lock, as `/proc/locks` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAccess {
    /// `READ`: a shared lock.
    Read,
    /// `WRITE`: an exclusive lock.
    Write,
    /// `UNLCK`: a lock being released or a lease being broken.
    Unlocked,
}

impl fmt::Display for LockAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockAccess::Read => "READ",
            LockAccess::Write => "WRITE",
            LockAccess::Unlocked => "UNLCK",
        })
    }
}

/// One parsed `/proc/locks` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcLock {
    /// The lock's ordinal (the number before `:`).
    pub ordinal: u64,
    /// The line describes a process waiting for the lock (`->`).
    pub blocked: bool,
    /// `FLOCK`, `POSIX`, `OFDLCK`, `LEASE`, ...
    pub class: String,
    /// Read or write.
    pub access: LockAccess,
    /// The holder's pid; `None` for OFD locks (printed as -1).
    pub pid: Option<u32>,
    /// Device (major, minor) of the locked file.
    pub device: (u32, u32),
    /// Inode of the locked file.
    pub inode: u64,
}

/// Parses `/proc/locks` content; lines it does not understand are skipped. Pure.
pub fn parse_proc_locks(text: &str) -> Vec<ProcLock> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<ProcLock> {
    let mut tokens = line.split_whitespace().peekable();
    let ordinal = tokens.next()?.strip_suffix(':')?.parse().ok()?;
    let blocked = tokens.next_if_eq(&"->").is_some();
    let class = tokens.next()?.to_owned();
    let _kind = tokens.next()?;
    let access = match tokens.next()? {
        "READ" => LockAccess::Read,
        "WRITE" => LockAccess::Write,
        "UNLCK" => LockAccess::Unlocked,
        _ => return None,
    };
    let pid: i64 = tokens.next()?.parse().ok()?;
    let mut device_inode = tokens.next()?.split(':');
    let major = u32::from_str_radix(device_inode.next()?, 16).ok()?;
    let minor = u32::from_str_radix(device_inode.next()?, 16).ok()?;
    let inode = device_inode.next()?.parse().ok()?;
    Some(ProcLock {
        ordinal,
        blocked,
        class,
        access,
        pid: u32::try_from(pid).ok(),
        device: (major, minor),
        inode,
    })
}

/// A lock file under the state root, identified as `/proc/locks` identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockFileId {
    /// Device (major, minor).
    pub device: (u32, u32),
    /// Inode.
    pub inode: u64,
    /// The file.
    pub path: PathBuf,
}

/// A lock held on (or waited for on) a lock file under the state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    /// Inode of the lock file.
    pub inode: u64,
    /// Holder (or waiter) pid; `None` for OFD locks.
    pub pid: Option<u32>,
    /// Read or write.
    pub access: LockAccess,
    /// The process is waiting for the lock rather than holding it.
    pub blocked: bool,
    /// The lock file.
    pub path: PathBuf,
}

impl fmt::Display for LockEntry {
    /// Deimos' line format: `<inode> <pid> <READ|WRITE> <path>` (`-` for no pid, and
    /// ` (waiting)` appended for blocked waiters).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(
                f,
                "{} {pid} {} {}",
                self.inode,
                self.access,
                self.path.display()
            )?,
            None => write!(
                f,
                "{} - {} {}",
                self.inode,
                self.access,
                self.path.display()
            )?,
        }
        if self.blocked {
            f.write_str(" (waiting)")?;
        }
        Ok(())
    }
}

/// Joins parsed locks with lock files by inode (exact device match preferred; an inode-only
/// match is accepted when it is unambiguous). Sorted by path, then pid. Pure.
pub fn join_locks(locks: &[ProcLock], lock_files: &[LockFileId]) -> Vec<LockEntry> {
    let mut entries: Vec<LockEntry> = locks
        .iter()
        .filter_map(|lock| {
            let same_inode: Vec<&LockFileId> = lock_files
                .iter()
                .filter(|f| f.inode == lock.inode)
                .collect();
            let unambiguous = match same_inode.as_slice() {
                [only] => Some(only),
                _ => None,
            };
            let file = same_inode
                .iter()
                .find(|f| f.device == lock.device)
                .or(unambiguous)?;
            Some(LockEntry {
                inode: lock.inode,
                pid: lock.pid,
                access: lock.access,
                blocked: lock.blocked,
                path: file.path.clone(),
            })
        })
        .collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path).then(a.pid.cmp(&b.pid)));
    entries
}

/// The process holding an exclusive (`WRITE`) lock on the file `device`:`inode`, if any.
/// An exact device match wins; an inode-only match (overlay file systems report another
/// device) is accepted only when it is the only exclusive holder of that inode. Pure.
pub fn exclusive_holder(locks: &[ProcLock], device: (u32, u32), inode: u64) -> Option<u32> {
    let holders: Vec<&ProcLock> = locks
        .iter()
        .filter(|l| l.inode == inode && !l.blocked && l.access == LockAccess::Write)
        .collect();
    let exact = holders.iter().find(|l| l.device == device);
    match (exact, holders.as_slice()) {
        (Some(lock), _) | (None, [lock]) => lock.pid,
        _ => None,
    }
}

/// Who holds the lock file at `path` exclusively, read from `/proc/locks`; `None` when nobody
/// does, or when it cannot be told (diagnostics only, e.g. "another `deimos state --rm` is
/// running (pid N)").
pub fn read_holder(path: &Path) -> Option<LockHolder> {
    let file = lock_file_id(path.to_owned())?;
    let text = fs::read_to_string(PROC_LOCKS).ok()?;
    exclusive_holder(&parse_proc_locks(&text), file.device, file.inode)
        .map(|pid| LockHolder { pid })
}

/// The device and inode of `path`; `None` when it does not exist (any more).
fn lock_file_id(path: PathBuf) -> Option<LockFileId> {
    let meta = fs::metadata(&path).ok()?;
    let dev = meta.dev();
    Some(LockFileId {
        device: (libc::major(dev), libc::minor(dev)),
        inode: meta.ino(),
        path,
    })
}

impl StateRoot {
    /// The locks currently held or awaited on lock files under this root (`deimos locks`).
    pub fn lock_listing(&self) -> Result<Vec<LockEntry>, StateError> {
        let text = fs::read_to_string(PROC_LOCKS).map_err(StateError::io("read", PROC_LOCKS))?;
        Ok(join_locks(&parse_proc_locks(&text), &self.lock_files()?))
    }

    /// `<root>/cleanup` and every `<root>/mesos/*/lock.*` (or `lock/*` in directories of older
    /// versions) that exists; missing ones are skipped: containers come and go while we look.
    pub fn lock_files(&self) -> Result<Vec<LockFileId>, StateError> {
        let mut paths = vec![self.cleanup_lock_path()];
        for id in self.container_ids()? {
            let dir = self.container_path(&id);
            let legacy_dir = dir.join(files::legacy::LOCK_DIR);
            for name in LockName::ALL {
                paths.push(dir.join(name.file_name()));
                paths.push(legacy_dir.join(name.legacy_file_name()));
            }
        }
        Ok(paths.into_iter().filter_map(lock_file_id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
1: FLOCK  ADVISORY  WRITE 1234 fd:01:123456 0 EOF
1: -> FLOCK  ADVISORY  READ 1240 fd:01:123456 0 EOF
2: POSIX  ADVISORY  READ 5678 08:02:1234 0 EOF
3: OFDLCK ADVISORY  READ  -1 00:05:777 0 EOF
4: LEASE  ACTIVE    UNLCK 99 fe:00:42 0 EOF
5: FLOCK  ADVISORY  WRITE 1 <none>:0 0 EOF
garbage line
";

    #[test]
    fn parses_holders_waiters_and_ofd_locks() {
        let locks = parse_proc_locks(SAMPLE);
        assert_eq!(locks.len(), 5);
        assert_eq!(
            locks[0],
            ProcLock {
                ordinal: 1,
                blocked: false,
                class: "FLOCK".into(),
                access: LockAccess::Write,
                pid: Some(1234),
                device: (0xfd, 0x01),
                inode: 123456,
            }
        );
        assert!(locks[1].blocked);
        assert_eq!(locks[1].access, LockAccess::Read);
        assert_eq!(locks[1].pid, Some(1240));
        assert_eq!(locks[2].class, "POSIX");
        assert_eq!(locks[2].device, (8, 2));
        assert_eq!(locks[3].pid, None);
        assert_eq!(locks[4].access, LockAccess::Unlocked);
        assert_eq!(locks[4].device, (0xfe, 0));
    }

    #[test]
    fn join_matches_by_inode_preferring_the_device() {
        let locks = parse_proc_locks(SAMPLE);
        let files = vec![
            LockFileId {
                device: (0xfd, 0x01),
                inode: 123456,
                path: "/r/mesos/a/lock.wait".into(),
            },
            LockFileId {
                device: (0x08, 0x02),
                inode: 123456,
                path: "/r/mesos/b/lock.wait".into(),
            },
            LockFileId {
                device: (0x00, 0x33),
                inode: 777,
                path: "/r/cleanup".into(),
            },
        ];
        let entries = join_locks(&locks, &files);
        let lines: Vec<String> = entries.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "777 - READ /r/cleanup",
                "123456 1234 WRITE /r/mesos/a/lock.wait",
                "123456 1240 READ /r/mesos/a/lock.wait (waiting)",
            ]
        );
    }

    #[test]
    fn exclusive_holder_prefers_the_device_and_ignores_readers_and_waiters() {
        let locks = parse_proc_locks(SAMPLE);
        assert_eq!(exclusive_holder(&locks, (0xfd, 0x01), 123456), Some(1234));
        // Inode-only: the single writer of that inode (overlay devices differ).
        assert_eq!(exclusive_holder(&locks, (0x00, 0x99), 123456), Some(1234));
        // Shared holders and OFD locks are not exclusive holders with a pid.
        assert_eq!(exclusive_holder(&locks, (8, 2), 1234), None);
        assert_eq!(exclusive_holder(&locks, (0, 5), 777), None);
        assert_eq!(exclusive_holder(&locks, (0xfd, 0x01), 424242), None);
    }

    #[test]
    fn exclusive_holder_refuses_an_ambiguous_inode_only_match() {
        let locks = parse_proc_locks(
            "1: FLOCK  ADVISORY  WRITE 7 01:01:5 0 EOF\n2: FLOCK  ADVISORY  WRITE 8 01:02:5 0 EOF\n",
        );
        assert_eq!(exclusive_holder(&locks, (1, 2), 5), Some(8));
        assert_eq!(exclusive_holder(&locks, (9, 9), 5), None);
    }

    #[test]
    fn join_drops_ambiguous_inode_only_matches() {
        let locks = parse_proc_locks("1: FLOCK  ADVISORY  WRITE 7 01:01:5 0 EOF\n");
        let file = |path: &str, minor| LockFileId {
            device: (9, minor),
            inode: 5,
            path: path.into(),
        };
        assert!(join_locks(&locks, &[file("/a", 1), file("/b", 2)]).is_empty());
        assert_eq!(join_locks(&locks, &[file("/a", 1)]).len(), 1);
    }
}
