//! Facts about the host the local backend runs on: its CPUs, memory and name.

use std::path::Path;

/// CPUs assumed when the number of usable CPUs cannot be determined.
const FALLBACK_CPUS: f64 = 1.0;
/// Memory assumed (MiB) when `/proc/meminfo` cannot be read.
const FALLBACK_MEM_MIB: f64 = 1024.0;

/// The host's capacity, for configuration defaults: the CPUs this process may use
/// (`std::thread::available_parallelism`, which honours affinity and cgroup quotas) and the
/// total memory in MiB (`MemTotal` of `/proc/meminfo`). Falls back to 1 CPU and 1024 MiB
/// when either cannot be determined.
pub fn host_capacity() -> (f64, f64) {
    let cpus = std::thread::available_parallelism()
        .map(|count| count.get() as f64)
        .unwrap_or(FALLBACK_CPUS);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total_mib(&text))
        .unwrap_or(FALLBACK_MEM_MIB);
    (cpus, mem)
}

/// `MemTotal` of a `/proc/meminfo` text, in MiB.
fn mem_total_mib(meminfo: &str) -> Option<f64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let mut fields = line["MemTotal:".len()..].split_whitespace();
    let amount: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") | None => Some(amount as f64 / 1024.0),
        Some(_) => None,
    }
}

/// The host's name (`/proc/sys/kernel/hostname`, else `/etc/hostname`, else `localhost`).
pub(crate) fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(Path::new(path)).ok())
        .map(|text| text.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_in_mib() {
        let meminfo = "MemTotal:        8039432 kB\nMemFree:          123456 kB\n";
        assert_eq!(mem_total_mib(meminfo), Some(8039432.0 / 1024.0));
        assert_eq!(mem_total_mib("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total_mib("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn host_capacity_is_positive() {
        let (cpus, mem) = host_capacity();
        assert!(cpus >= 1.0 && mem > 0.0, "{cpus} CPUs, {mem} MiB");
        assert!(!hostname().is_empty());
    }
}
