//! The free-space floor of the data directory: launches wait while its file system has less
//! free space than configured, so that running tasks, their output and the task store keep
//! room to write.

use std::path::Path;

use crate::config::human_size;

/// Bytes available to unprivileged users on the file system holding `path` (what a task's
/// writes can use), from `statvfs`.
pub(crate) fn free_bytes(path: &Path) -> Result<u64, String> {
    let stats = nix::sys::statvfs::statvfs(path).map_err(|error| error.to_string())?;
    // The field types differ between platforms (u32 on some, u64 on Linux).
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (
        u64::from(stats.blocks_available()),
        u64::from(stats.fragment_size()),
    );
    Ok(blocks.saturating_mul(size))
}

/// Why launches must wait, or `None` when `free` bytes (or the error reading them) allow
/// launches under a floor of `floor` bytes (0: no floor).
pub(crate) fn floor_reason(
    data_dir: &Path,
    free: Result<u64, String>,
    floor: u64,
) -> Option<String> {
    if floor == 0 {
        return None;
    }
    match free {
        Ok(free) if free >= floor => None,
        Ok(free) => Some(format!(
            "waiting: data_dir {} has {} free, below the floor of {} (data_dir_min_free)",
            data_dir.display(),
            human_size(free),
            human_size(floor)
        )),
        Err(error) => Some(format!(
            "waiting: the free space of data_dir {} cannot be read ({error}), so the floor of \
             {} (data_dir_min_free) cannot be checked",
            data_dir.display(),
            human_size(floor)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launches_wait_only_below_the_floor() {
        let dir = Path::new("/x");
        let reason = floor_reason(dir, Ok(512 << 20), 1 << 30).unwrap();
        assert_eq!(
            reason,
            "waiting: data_dir /x has 512 MiB free, below the floor of 1 GiB (data_dir_min_free)"
        );
        assert_eq!(floor_reason(dir, Ok(1 << 30), 1 << 30), None);
        assert_eq!(floor_reason(dir, Ok(0), 0), None);
        assert_eq!(floor_reason(dir, Err("gone".into()), 0), None);
        let reason = floor_reason(dir, Err("No such file".into()), 1 << 30).unwrap();
        assert!(reason.contains("cannot be read (No such file)"), "{reason}");
    }

    #[test]
    fn free_bytes_reads_the_real_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
