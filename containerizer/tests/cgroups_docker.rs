//! Reads the statistics of a real container started with known limits (needs Docker; run
//! scripts/setup first).

use std::process::Command;

use deimos::cgroups::{read_usage, CgroupFs, CgroupLocation};

const IMAGE: &str = "deimos-test/busybox:latest";

/// Removes the container when the test ends, whether it passes or not.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap_or_else(|err| {
        panic!("cannot run the docker CLI ({err}); is Docker installed and running? Run scripts/setup")
    });
    assert!(
        output.status.success(),
        "docker {args:?} failed ({}): {}; is Docker running and the test image built? Run scripts/setup",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn start_limited_container() -> ContainerGuard {
    let id = docker(&[
        "run",
        "-d",
        "--memory",
        "64m",
        "--cpu-shares",
        "512",
        IMAGE,
        "sleep",
        "60",
    ]);
    assert_eq!(id.len(), 64, "unexpected container id {id:?}");
    ContainerGuard(id)
}

#[test]
fn limits_of_a_running_container_are_read_back_from_its_cgroup() {
    let container = start_limited_container();
    let pid: u32 = docker(&["inspect", "-f", "{{.State.Pid}}", &container.0])
        .parse()
        .expect("numeric pid");

    let usage = read_usage(&container.0, Some(pid)).expect("statistics via the init pid");
    assert_eq!(usage.mem_limit_bytes, Some(64 * 1024 * 1024));
    let cpus = usage.cpus_limit.expect("a CPU limit");
    assert!((cpus - 0.5).abs() < 0.03, "cpus_limit {cpus}");
    assert!(
        usage.mem_total_bytes.is_some_and(|bytes| bytes > 0),
        "{usage:?}"
    );
    assert!(usage.cpus_user_time_secs.is_some(), "{usage:?}");
    assert!(usage.processes.is_some_and(|n| n >= 1), "{usage:?}");

    let searched = read_usage(&container.0, None).expect("statistics by searching known locations");
    assert_eq!(searched.mem_limit_bytes, usage.mem_limit_bytes);
    assert_eq!(searched.cpus_limit, usage.cpus_limit);
}

#[test]
fn removed_container_has_no_cgroup() {
    let container = start_limited_container();
    let id = container.0.clone();
    drop(container);
    let err = CgroupFs::host()
        .locate(&id, None)
        .expect_err("cgroup of a removed container");
    assert!(err.to_string().contains(&id), "{err}");
}

#[test]
fn located_cgroup_matches_the_host_cgroup_version() {
    let container = start_limited_container();
    let location = CgroupFs::host()
        .locate(&container.0, None)
        .expect("cgroup located");
    let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    match location {
        CgroupLocation::V2(dir) => assert!(unified, "v2 location {dir:?} on a v1 host"),
        CgroupLocation::V1(dirs) => {
            assert!(!unified, "v1 location on a v2 host");
            assert!(
                dirs.memory.is_some() && dirs.cpu.is_some() && dirs.cpuacct.is_some(),
                "{dirs:?}"
            );
        }
    }
}
