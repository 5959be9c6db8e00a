//! Locating and reading cgroups in fixture trees built in temporary directories.

use std::fs;
use std::path::Path;

use super::*;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn fs(&self) -> CgroupFs {
        CgroupFs {
            cgroup_root: self.dir.path().join("cgroup"),
            proc_root: self.dir.path().join("proc"),
            clock_ticks_per_sec: 100,
        }
    }

    /// Writes `files` (name, content) into `cgroup/<relative>`, creating it.
    fn cgroup(&self, relative: &str, files: &[(&str, &str)]) -> &Self {
        let dir = self.dir.path().join("cgroup").join(relative);
        fs::create_dir_all(&dir).unwrap();
        for (name, content) in files {
            fs::write(dir.join(name), content).unwrap();
        }
        self
    }

    fn unified(&self) -> &Self {
        self.cgroup("", &[("cgroup.controllers", "cpu memory pids\n")])
    }

    fn proc_cgroup(&self, pid: u32, content: &str) -> &Self {
        let dir = self.dir.path().join("proc").join(pid.to_string());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cgroup"), content).unwrap();
        self
    }

    fn path(&self, relative: &str) -> std::path::PathBuf {
        self.dir.path().join("cgroup").join(relative)
    }
}

fn v2_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("cpu.max", "50000 100000\n"),
        ("cpu.weight", "20\n"),
        ("cpu.stat", "usage_usec 3500000\nuser_usec 2500000\nsystem_usec 1000000\nnr_periods 40\nnr_throttled 4\nthrottled_usec 250000\n"),
        ("memory.current", "10485760\n"),
        ("memory.max", "67108864\n"),
        ("memory.low", "0\n"),
        ("memory.swap.current", "4096\n"),
        ("memory.stat", "anon 6291456\nfile 2097152\nfile_mapped 1048576\nunevictable 0\nsock 0\n"),
        ("pids.current", "3\n"),
        ("cgroup.procs", "101\n102\n"),
    ]
}

#[test]
fn v2_systemd_scope_is_found_by_search_and_fully_read() {
    let fixture = Fixture::new();
    let scope = format!("system.slice/docker-{ID}.scope");
    fixture.unified().cgroup(&scope, &v2_files());
    let usage = fixture.fs().read_usage(ID, None).unwrap();
    let expected = ResourceUsage {
        processes: Some(2),
        threads: Some(3),
        cpus_user_time_secs: Some(2.5),
        cpus_system_time_secs: Some(1.0),
        cpus_limit: Some(0.5),
        cpus_nr_periods: Some(40),
        cpus_nr_throttled: Some(4),
        cpus_throttled_time_secs: Some(0.25),
        mem_total_bytes: Some(10_485_760),
        mem_total_memsw_bytes: Some(10_489_856),
        mem_limit_bytes: Some(67_108_864),
        mem_soft_limit_bytes: None,
        mem_file_bytes: Some(2_097_152),
        mem_anon_bytes: Some(6_291_456),
        mem_cache_bytes: Some(2_097_152),
        mem_rss_bytes: Some(6_291_456),
        mem_mapped_file_bytes: Some(1_048_576),
        mem_swap_bytes: Some(4096),
        mem_unevictable_bytes: Some(0),
    };
    assert_eq!(usage, expected);
}

#[test]
fn v2_cgroupfs_layout_without_quota_uses_weight_and_unlimited_memory() {
    let fixture = Fixture::new();
    let dir = format!("docker/{ID}");
    fixture.unified().cgroup(
        &dir,
        &[
            ("cpu.max", "max 100000\n"),
            ("cpu.weight", "39\n"),
            ("memory.max", "max\n"),
        ],
    );
    let usage = fixture.fs().read_usage(ID, None).unwrap();
    let cpus = usage.cpus_limit.unwrap();
    assert!((cpus - 1.0).abs() < 0.03, "{cpus}");
    assert_eq!(usage.mem_limit_bytes, None);
    assert_eq!(usage.mem_total_bytes, None);
}

#[test]
fn v2_custom_parent_is_found_through_the_init_pid() {
    let fixture = Fixture::new();
    let dir = format!("batch.slice/job-{ID}");
    fixture
        .unified()
        .cgroup(&dir, &[("memory.max", "1048576\n")])
        .proc_cgroup(42, &format!("0::/{dir}\n"));
    assert_eq!(
        fixture.fs().locate(ID, Some(42)).unwrap(),
        CgroupLocation::V2(fixture.path(&dir))
    );
    assert_eq!(
        fixture
            .fs()
            .read_usage(ID, Some(42))
            .unwrap()
            .mem_limit_bytes,
        Some(1_048_576)
    );
}

#[test]
fn v1_combined_cpu_cpuacct_mount_is_read() {
    let fixture = Fixture::new();
    let cpu = format!("cpu,cpuacct/docker/{ID}");
    fixture
        .cgroup(&cpu, &[
            ("cpu.shares", "512\n"),
            ("cpu.cfs_quota_us", "-1\n"),
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.stat", "nr_periods 10\nnr_throttled 1\nthrottled_time 500000000\n"),
            ("cpuacct.stat", "user 250\nsystem 50\n"),
        ])
        .cgroup(&format!("memory/docker/{ID}"), &[
            ("memory.limit_in_bytes", "67108864\n"),
            ("memory.usage_in_bytes", "8388608\n"),
            ("memory.soft_limit_in_bytes", "9223372036854771712\n"),
            ("memory.stat", "cache 100\nrss 200\nmapped_file 50\ntotal_cache 4096\ntotal_rss 8192\ntotal_mapped_file 1024\ntotal_unevictable 0\n"),
            ("cgroup.procs", "7\n"),
            ("tasks", "7\n8\n"),
        ]);
    let usage = fixture.fs().read_usage(ID, None).unwrap();
    assert_eq!(usage.cpus_limit, Some(0.5));
    assert_eq!(usage.cpus_user_time_secs, Some(2.5));
    assert_eq!(usage.cpus_system_time_secs, Some(0.5));
    assert_eq!(usage.cpus_nr_periods, Some(10));
    assert_eq!(usage.cpus_nr_throttled, Some(1));
    assert_eq!(usage.cpus_throttled_time_secs, Some(0.5));
    assert_eq!(usage.mem_limit_bytes, Some(67_108_864));
    assert_eq!(usage.mem_total_bytes, Some(8_388_608));
    assert_eq!(usage.mem_soft_limit_bytes, None);
    assert_eq!(
        usage.mem_rss_bytes,
        Some(8192),
        "hierarchical total preferred"
    );
    assert_eq!(usage.mem_cache_bytes, Some(4096));
    assert_eq!(usage.mem_mapped_file_bytes, Some(1024));
    assert_eq!(usage.mem_swap_bytes, None);
    assert_eq!((usage.processes, usage.threads), (Some(1), Some(2)));
}

#[test]
fn v1_cfs_quota_takes_precedence_over_shares() {
    let fixture = Fixture::new();
    fixture.cgroup(
        &format!("cpu/docker/{ID}"),
        &[
            ("cpu.shares", "1024\n"),
            ("cpu.cfs_quota_us", "150000\n"),
            ("cpu.cfs_period_us", "100000\n"),
        ],
    );
    assert_eq!(
        fixture.fs().read_usage(ID, None).unwrap().cpus_limit,
        Some(1.5)
    );
}

#[test]
fn d9_missing_cgroup_files_leave_fields_unset_instead_of_failing() {
    let fixture = Fixture::new();
    fixture.cgroup(
        &format!("memory/{ID}"),
        &[
            ("memory.limit_in_bytes", "1048576\n"),
            ("memory.usage_in_bytes", "garbage\n"),
        ],
    );
    let usage = fixture.fs().read_usage(ID, None).unwrap();
    assert_eq!(
        usage,
        ResourceUsage {
            mem_limit_bytes: Some(1_048_576),
            ..ResourceUsage::default()
        }
    );
}

#[test]
fn v1_systemd_driver_is_found_through_the_init_pid() {
    let fixture = Fixture::new();
    let scope = format!("system.slice/docker-{ID}.scope");
    fixture
        .cgroup(
            &format!("memory/{scope}"),
            &[("memory.limit_in_bytes", "2097152\n")],
        )
        .cgroup(&format!("pids/{scope}"), &[("pids.current", "5\n")])
        .proc_cgroup(
            7,
            &format!("9:pids:/{scope}\n4:memory:/{scope}\n1:name=systemd:/{scope}\n0::/{scope}\n"),
        );
    let CgroupLocation::V1(dirs) = fixture.fs().locate(ID, Some(7)).unwrap() else {
        panic!("expected v1")
    };
    assert_eq!(dirs.memory, Some(fixture.path(&format!("memory/{scope}"))));
    assert_eq!(dirs.cpu, None);
    let usage = fixture.fs().read_usage(ID, Some(7)).unwrap();
    assert_eq!(
        (usage.mem_limit_bytes, usage.threads),
        (Some(2_097_152), Some(5))
    );
}

#[test]
fn reused_pid_whose_cgroup_does_not_name_the_container_is_ignored() {
    let fixture = Fixture::new();
    fixture
        .cgroup("memory/user.slice", &[("memory.limit_in_bytes", "1\n")])
        .cgroup(
            &format!("memory/docker/{ID}"),
            &[("memory.limit_in_bytes", "4096\n")],
        )
        .proc_cgroup(9, "4:memory:/user.slice\n");
    assert_eq!(
        fixture
            .fs()
            .read_usage(ID, Some(9))
            .unwrap()
            .mem_limit_bytes,
        Some(4096)
    );
}

#[test]
fn missing_cgroup_is_an_error_naming_the_container_and_searched_paths() {
    let fixture = Fixture::new();
    fixture.cgroup("memory", &[]);
    let message = fixture
        .fs()
        .read_usage(ID, Some(5))
        .unwrap_err()
        .to_string();
    assert!(message.contains(ID), "{message}");
    assert!(message.contains("init pid: 5"), "{message}");
    assert!(
        message.contains(&format!("memory/docker/{ID}")),
        "{message}"
    );
}

#[test]
fn missing_v2_cgroup_is_an_error() {
    let fixture = Fixture::new();
    fixture.unified();
    let err = fixture.fs().read_usage(ID, None).unwrap_err();
    assert!(matches!(err, CgroupError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("system.slice/docker-{ID}.scope")),
        "{err}"
    );
}

#[test]
fn short_or_path_like_ids_are_rejected() {
    let fs = Fixture::new().fs();
    for id in ["abc123", "../../etc/passwd", &ID.to_uppercase(), ""] {
        assert!(
            matches!(
                fs.locate(id, None),
                Err(CgroupError::InvalidContainerId { .. })
            ),
            "{id}"
        );
    }
}

#[test]
fn host_clock_tick_rate_is_positive() {
    assert!(CgroupFs::host().clock_ticks_per_sec > 0);
    assert!(Path::new(&CgroupFs::host().cgroup_root).is_absolute());
}
