//! Facts about the host that some defaults depend on.

use super::values::parse_meminfo_total_mib;

/// The host facts used by defaults: `cpus`, `mem` and `data_dir` (root or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFacts {
    /// Effective user id of this process.
    pub uid: u32,
    /// CPUs available to this process, if known.
    pub cpus: Option<usize>,
    /// Total memory in MiB (`MemTotal` of `/proc/meminfo`), if known.
    pub mem_mib: Option<u64>,
}

impl HostFacts {
    /// Reads the facts of the running system.
    pub fn detect() -> Self {
        Self {
            uid: nix::unistd::geteuid().as_raw(),
            cpus: std::thread::available_parallelism()
                .ok()
                .map(std::num::NonZeroUsize::get),
            mem_mib: std::fs::read_to_string("/proc/meminfo")
                .ok()
                .as_deref()
                .and_then(parse_meminfo_total_mib),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_finds_cpus_and_memory_on_linux() {
        let facts = HostFacts::detect();
        assert!(facts.cpus.is_some_and(|cpus| cpus >= 1), "{facts:?}");
        assert!(facts.mem_mib.is_some_and(|mem| mem > 0), "{facts:?}");
    }
}
