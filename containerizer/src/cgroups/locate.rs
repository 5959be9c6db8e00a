//! Finding a container's cgroup directories: from its init process' `/proc/<pid>/cgroup`
//! (works for any cgroup driver and parent), else by searching where Docker puts them.

use std::path::{Path, PathBuf};

use super::parse::{parse_proc_cgroup, ProcCgroupEntry};

/// The v1 controllers whose statistics are read.
pub(super) const V1_CONTROLLERS: [&str; 4] = ["memory", "cpu", "cpuacct", "pids"];

/// Where a container's statistics live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLocation {
    /// cgroup v1: one directory per controller, each possibly missing.
    V1(V1Dirs),
    /// cgroup v2: the container's directory in the unified hierarchy.
    V2(PathBuf),
}

/// A container's cgroup v1 directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V1Dirs {
    /// `memory` controller directory.
    pub memory: Option<PathBuf>,
    /// `cpu` controller directory (possibly the combined `cpu,cpuacct` one).
    pub cpu: Option<PathBuf>,
    /// `cpuacct` controller directory (possibly the combined `cpu,cpuacct` one).
    pub cpuacct: Option<PathBuf>,
    /// `pids` controller directory.
    pub pids: Option<PathBuf>,
}

impl V1Dirs {
    fn slot(&mut self, controller: &str) -> Option<&mut Option<PathBuf>> {
        match controller {
            "memory" => Some(&mut self.memory),
            "cpu" => Some(&mut self.cpu),
            "cpuacct" => Some(&mut self.cpuacct),
            "pids" => Some(&mut self.pids),
            _ => None,
        }
    }

    fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpu.is_none() && self.cpuacct.is_none() && self.pids.is_none()
    }
}

/// Whether the hierarchy mounted at `cgroup_root` is the cgroup v2 unified one.
pub(super) fn is_unified(cgroup_root: &Path) -> bool {
    cgroup_root.join("cgroup.controllers").is_file()
}

/// Locates the container's cgroups. `proc_cgroup` is the text of `/proc/<pid>/cgroup` when
/// known; entries whose path does not mention the container id are ignored (the pid may have
/// been reused by another process). Returns the location, or the directories searched.
pub(super) fn locate(
    cgroup_root: &Path,
    container_id: &str,
    proc_cgroup: Option<&str>,
) -> Result<CgroupLocation, Vec<PathBuf>> {
    let entries: Vec<ProcCgroupEntry> = proc_cgroup
        .map(parse_proc_cgroup)
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| entry.path.contains(container_id))
        .collect();
    let mut searched = Vec::new();
    if is_unified(cgroup_root) {
        let from_proc = entries
            .iter()
            .filter(|entry| entry.hierarchy == 0 && entry.controllers.is_empty())
            .map(|entry| cgroup_root.join(entry.path.trim_start_matches('/')));
        let candidates: Vec<PathBuf> = from_proc
            .chain(v2_search_candidates(cgroup_root, container_id))
            .collect();
        return first_dir(&candidates, &mut searched)
            .map(CgroupLocation::V2)
            .ok_or(searched);
    }
    let mut dirs = V1Dirs::default();
    for controller in V1_CONTROLLERS {
        let candidates: Vec<PathBuf> = v1_proc_candidates(cgroup_root, controller, &entries)
            .into_iter()
            .chain(v1_search_candidates(cgroup_root, controller, container_id))
            .collect();
        if let Some(slot) = dirs.slot(controller) {
            *slot = first_dir(&candidates, &mut searched);
        }
    }
    if dirs.is_empty() {
        return Err(searched);
    }
    Ok(CgroupLocation::V1(dirs))
}

fn first_dir(candidates: &[PathBuf], searched: &mut Vec<PathBuf>) -> Option<PathBuf> {
    for candidate in candidates {
        if candidate.is_dir() {
            return Some(candidate.clone());
        }
        if !searched.contains(candidate) {
            searched.push(candidate.clone());
        }
    }
    None
}

/// Where a v1 controller may be mounted: its own name, or a combined `cpu,cpuacct` mount.
fn v1_mounts(cgroup_root: &Path, controller: &str) -> Vec<PathBuf> {
    let mut mounts = vec![cgroup_root.join(controller)];
    if controller == "cpu" || controller == "cpuacct" {
        mounts.push(cgroup_root.join("cpu,cpuacct"));
        mounts.push(cgroup_root.join("cpuacct,cpu"));
    }
    mounts
}

/// Directories named by `/proc/<pid>/cgroup` for one v1 controller: the hierarchy's mount
/// (named as its controller list, or the controller alone) joined with the cgroup path.
fn v1_proc_candidates(
    cgroup_root: &Path,
    controller: &str,
    entries: &[ProcCgroupEntry],
) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    for entry in entries
        .iter()
        .filter(|e| e.controllers.iter().any(|c| c == controller))
    {
        let relative = entry.path.trim_start_matches('/');
        candidates.push(cgroup_root.join(entry.controllers.join(",")).join(relative));
        candidates.extend(
            v1_mounts(cgroup_root, controller)
                .into_iter()
                .map(|mount| mount.join(relative)),
        );
    }
    candidates
}

/// Where Docker puts a v1 controller's directory with the cgroupfs driver, the systemd driver,
/// and where Deimos looked (`<mount>/<id>`).
fn v1_search_candidates(cgroup_root: &Path, controller: &str, container_id: &str) -> Vec<PathBuf> {
    v1_mounts(cgroup_root, controller)
        .into_iter()
        .flat_map(|mount| {
            [
                mount.join("docker").join(container_id),
                mount
                    .join("system.slice")
                    .join(format!("docker-{container_id}.scope")),
                mount.join(container_id),
            ]
        })
        .collect()
}

/// Where Docker puts a container's v2 directory with the systemd and cgroupfs drivers.
fn v2_search_candidates(cgroup_root: &Path, container_id: &str) -> Vec<PathBuf> {
    vec![
        cgroup_root
            .join("system.slice")
            .join(format!("docker-{container_id}.scope")),
        cgroup_root.join("docker").join(container_id),
    ]
}
