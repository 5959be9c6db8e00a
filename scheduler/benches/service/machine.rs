//! Where published numbers come from: date, binary, CPU, memory, load and the temp
//! directory's file system.

use std::fs;
use std::path::Path;

use time::format_description::well_known::Rfc3339;

/// Date, CPU, memory and load, so that published numbers say where they come from.
pub(crate) fn description(title: &str) -> String {
    let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|line| line.starts_with(key))
            .and_then(|line| line.split_once(':'))
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    let temp = std::env::temp_dir();
    format!(
        "{title}, {now}\nbinary: {}\ncpu: {} x {}\nmemory: {}\n\
         load average: {}\ndata dir: {} on {}",
        crate::server::BINARY.unwrap_or("(not built)"),
        cpus,
        field(&cpuinfo, "model name"),
        field(&read("/proc/meminfo"), "MemTotal"),
        read("/proc/loadavg").trim(),
        temp.display(),
        mount_of(&temp, &read("/proc/self/mounts")),
    )
}

/// "<type> (<options>)" of the mount holding `path`: the longest mount point that is a
/// prefix of it.
fn mount_of(path: &Path, mounts: &str) -> String {
    mounts
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, point, fs_type, options, ..] if path.starts_with(point) => {
                    Some((point.len(), format!("{fs_type} ({options})")))
                }
                _ => None,
            }
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, description)| description)
        .unwrap_or_else(|| "unknown file system".to_owned())
}
