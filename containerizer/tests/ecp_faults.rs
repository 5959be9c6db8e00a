//! End-to-end: the containerizer under faults. A state root that is full for real while a
//! watcher starts or records an exit, and `deimos state --rm` running while agent calls or
//! the observer executor still need a container's state.
//!
//! "State root full" is a real full file system: a small tmpfs mounted for the test and
//! filled to its last block. Mounting needs root, which these tests have locally and in CI;
//! without it they fail with a message saying so (never skip). Every step that must happen
//! at a given point of a call is held there by a lock or a gate the test controls, and the
//! test waits for conditions it can observe (files, `/proc/locks`), never for time.
//!
//! Needs Docker and the local test images: run `scripts/setup` first.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod ecp_support;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use deimos::state::{parse_proc_locks, LockAccess};
use ecp_support::{
    docker_inspect, wait_until, Agent, HttpServer, Reply, Setup, TestContainer, CALL_TIMEOUT,
};
use mesos_proto::containerizer::Termination;
use nix::sys::signal::Signal;

/// How long a call may take to reach the point a test waits for.
const REACH_TIMEOUT: Duration = Duration::from_secs(20);

/// A small tmpfs mounted on a temporary directory: a state root that can really be filled.
/// Unmounted on drop (lazily, in case a process killed by the test still holds a descriptor).
struct SmallTmpfs {
    dir: tempfile::TempDir,
}

impl SmallTmpfs {
    fn mount() -> SmallTmpfs {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test fills a state root for real by mounting a small tmpfs, which needs \
             root: run it as root (as CI does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("deimos-full-root-")
            .tempdir()
            .unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            mounted.status.success(),
            "mount -t tmpfs on {}: {}",
            dir.path().display(),
            String::from_utf8_lossy(&mounted.stderr)
        );
        SmallTmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.dir.path().join("filler")
    }

    /// Fills the file system to its last block. On tmpfs, creating empty files, directories
    /// and short symbolic links (kept in the inode) still works then, and so does appending
    /// to a file within a block it has already; everything else fails with ENOSPC.
    fn fill(&self) {
        let mut filler = File::create(self.filler()).unwrap();
        let block = [0u8; 4096];
        loop {
            match filler.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", self.filler().display()),
            }
        }
    }

    fn free(&self) {
        fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
        if !matches!(unmounted, Ok(status) if status.success()) {
            eprintln!("cleanup: umount -l {} failed", self.dir.path().display());
        }
    }
}

/// A command that prints `started`, waits for the `go` file, then exits `code`.
fn until_go(code: i32) -> String {
    format!("echo started; while [ ! -e /mnt/mesos/sandbox/go ]; do sleep 0.05; done; exit {code}")
}

fn go(c: &TestContainer) {
    fs::write(c.sandbox.join("go"), "").unwrap();
}

fn wait_started(c: &TestContainer) {
    wait_until(REACH_TIMEOUT, "the container to start", || {
        c.sandbox_file("stdout").contains("started")
    });
}

/// Takes a flock(2) lock on an existing lock file, as another process would; released when
/// the file is dropped.
fn lock_file(path: &Path, exclusive: bool) -> File {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    match exclusive {
        true => fs2::FileExt::lock_exclusive(&file).unwrap(),
        false => fs2::FileExt::lock_shared(&file).unwrap(),
    }
    file
}

/// Whether `/proc/locks` shows `pid` holding (or, with `blocked`, waiting for) a lock on the
/// file with inode `inode`, in mode `access`.
fn proc_lock(pid: i32, inode: u64, access: LockAccess, blocked: bool) -> bool {
    let text = fs::read_to_string("/proc/locks").unwrap();
    parse_proc_locks(&text).iter().any(|l| {
        l.pid == u32::try_from(pid).ok()
            && l.inode == inode
            && l.access == access
            && l.blocked == blocked
    })
}

/// Whether process `pid` has `path` open (a call that has reached a lock it polls for).
fn has_open(pid: i32, path: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

/// Whether some process holds the lock file exclusively (a shared attempt fails).
fn held_exclusively(path: &Path) -> bool {
    let file = File::open(path).unwrap();
    fs2::FileExt::try_lock_shared(&file).is_err()
}

fn docker_state(docker_id: &str) -> Option<String> {
    docker_inspect(docker_id, "{{.State.Status}} {{.State.ExitCode}}")
}

// ------------------------------------------------------------------------------------------
// The state root is full.

#[test]
fn launch_whose_watcher_cannot_start_removes_its_container_and_names_the_cause() {
    let root = SmallTmpfs::mount();
    let agent = Setup::new("watcher-full")
        .state_root_at(root.path())
        .start();
    let gate = agent.scratch("gate").join("open");
    let server = HttpServer::start(vec![(
        "/input.txt",
        Reply::Gated(gate.clone(), b"input\n".to_vec()),
    )]);
    let c = agent
        .executor("exec sleep 300")
        .uri(&server.url("/input.txt"))
        .build();
    let launching = agent.launch_call(&c).spawn();
    // The launch fetches its URI (held at the gate) after creating the state directory.
    let dir = agent.state_dir(&c.id);
    wait_until(REACH_TIMEOUT, "the state directory", || {
        dir.join("container.json").exists()
    });
    // Holding `observe` keeps the watcher, once started, from going further than its locks.
    let observe = lock_file(&dir.join("lock.observe"), false);
    fs::write(&gate, "").unwrap();
    // The Docker id is recorded once the container runs; after it, the launch only creates
    // the docker index link (a short symbolic link: no block) before the watcher starts.
    wait_until(CALL_TIMEOUT, "the Docker id to be recorded", || {
        dir.join("cid").exists()
    });
    let docker_id = agent.docker_id(&c.id);
    root.fill();
    drop(observe);

    let finished = launching.finish(CALL_TIMEOUT);
    let line = finished.error_line(4);
    assert!(
        line.contains("cannot start the watcher")
            && line.contains("/pid")
            && line.contains("No space left on device"),
        "the message must carry the cause: {line}"
    );
    assert_eq!(docker_state(&docker_id), None, "the container was left");
    agent.assert_nothing_left(&c.id);
}

/// With `c` (running `until_go(3)`) launched: fills the state root, lets the container exit,
/// and returns once the watcher has failed to write the exit record (its Docker id).
fn exit_unrecordable(agent: &Agent, root: &SmallTmpfs, c: &TestContainer) -> String {
    wait_started(c);
    let docker_id = agent.docker_id(&c.id);
    let log = agent.state_dir(&c.id).join("watcher.log");
    // Gives the watcher's log a block (see `SmallTmpfs::fill`), so that it can still say
    // what fails once everything else is full.
    let mut appending = OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(appending, "test: filling the state root").unwrap();
    root.fill();
    go(c);
    wait_until(
        CALL_TIMEOUT,
        "the watcher to fail to record the exit",
        || {
            fs::read_to_string(&log)
                .unwrap()
                .contains("No space left on device")
        },
    );
    assert_eq!(
        docker_state(&docker_id).as_deref(),
        Some("exited 3"),
        "the exited container must be kept until its exit is recorded"
    );
    assert!(agent.exit_record(&c.id).is_none());
    docker_id
}

#[test]
fn exit_that_cannot_be_recorded_is_retried_and_the_pending_wait_gets_its_status() {
    let root = SmallTmpfs::mount();
    let agent = Setup::new("exit-full")
        .state_root_at(root.path())
        .set("log", "console", "error")
        .start();
    let c = agent.executor(&until_go(3)).build();
    agent.launch_ok(&c);
    // The agent waits from the start.
    let mut waiting = agent.wait_call(&c).spawn();
    let docker_id = exit_unrecordable(&agent, &root, &c);
    assert!(
        !waiting.has_exited(),
        "`wait` must not answer before the exit is recorded"
    );

    root.free();
    let termination: Termination = waiting.finish(CALL_TIMEOUT).success().record();
    assert_eq!(termination.status, Some(3 << 8));
    assert_eq!(agent.exit_record(&c.id).unwrap()["exit_code"], 3);
    assert_eq!(
        docker_state(&docker_id),
        None,
        "removed once the exit is recorded"
    );
}

#[test]
fn exit_kept_in_the_container_is_recovered_after_the_watcher_dies() {
    let root = SmallTmpfs::mount();
    let agent = Setup::new("exit-full-recover")
        .state_root_at(root.path())
        .set("log", "console", "error")
        .start();
    let c = agent.executor(&until_go(3)).build();
    agent.launch_ok(&c);
    let docker_id = exit_unrecordable(&agent, &root, &c);
    agent.kill_watcher(&c.id, Signal::SIGKILL);
    assert_eq!(docker_state(&docker_id).as_deref(), Some("exited 3"));

    // The agent restarts once the disk has room again.
    root.free();
    agent.recover().assert_success();
    assert_eq!(agent.exit_record(&c.id).unwrap()["exit_code"], 3);
    assert_eq!(agent.wait(&c).status, Some(3 << 8));
    assert_eq!(docker_state(&docker_id), None);
}

// ------------------------------------------------------------------------------------------
// `state --rm` meets agent calls.

#[test]
fn destroy_succeeds_when_state_rm_removes_the_directory_while_it_waits_for_it() {
    let agent = Agent::new("destroy-removed");
    let c = agent.executor("exit 0").build();
    agent.launch_ok(&c);
    assert_eq!(agent.wait(&c).status, Some(0));
    let dir = agent.state_dir(&c.id);
    let launch_lock = dir.join("lock.launch");
    let launch_inode = inode(&launch_lock);

    // `state --rm` holds `lock.launch` exclusively while it removes a directory; the destroy
    // arrives in between and waits for the lock.
    let cleanup = lock_file(&launch_lock, true);
    let destroying = agent.destroy_call(&c).spawn();
    wait_until(REACH_TIMEOUT, "destroy to wait for lock.launch", || {
        proc_lock(destroying.pid(), launch_inode, LockAccess::Read, true)
    });
    fs::remove_dir_all(&dir).unwrap();
    drop(cleanup);

    let finished = destroying.finish(CALL_TIMEOUT);
    finished.assert_success();
    finished.assert_no_output();
    assert!(!dir.exists());
    // And once the state is gone altogether.
    agent.destroy(&c).assert_success();
}

#[test]
fn destroy_waiting_for_another_destroy_succeeds_when_state_rm_removes_the_directory() {
    let agent = Agent::new("destroy-after-cleanup");
    let c = agent.executor("exit 0").build();
    agent.launch_ok(&c);
    assert_eq!(agent.wait(&c).status, Some(0));
    let dir = agent.state_dir(&c.id);
    let destroy_lock = dir.join("lock.destroy");

    // Another destroy of the same container holds `lock.destroy`; ours waits for it.
    let other_destroy = lock_file(&destroy_lock, true);
    let destroying = agent.destroy_call(&c).spawn();
    wait_until(REACH_TIMEOUT, "destroy to open lock.destroy", || {
        has_open(destroying.pid(), &destroy_lock)
    });
    // Meanwhile cron cleans up: the container exited and nobody else uses its state.
    agent
        .call(&["state", "--rm"])
        .env_remove("MESOS_WORK_DIRECTORY")
        .run()
        .assert_success();
    assert!(!dir.exists());
    drop(other_destroy);

    let finished = destroying.finish(CALL_TIMEOUT);
    finished.assert_success();
    finished.assert_no_output();
    assert!(!dir.exists(), "destroy recreated part of the removed state");
}

/// A fake Mesos command executor: runs the command line it was given after `--override`
/// (`deimos observe <id>`), says so in `<out>/observed`, and exits with its code once the test
/// creates `<out>/release` (an executor still reporting the task's end to the agent).
fn slow_reporting_executor(out: &Path) -> String {
    let out = out.display();
    format!(
        "#!/bin/sh\n\
         [ \"$1\" = --override ] && shift\n\
         \"$@\"\n\
         code=$?\n\
         touch {out}/observed\n\
         while [ ! -e {out}/release ]; do sleep 0.05; done\n\
         exit $code\n"
    )
}

#[test]
fn state_rm_keeps_the_state_while_the_observer_reports_and_the_pending_wait_answers() {
    let agent = Agent::new("observer-cleanup");
    let out = agent.scratch("observer");
    agent.install_executor(&slow_reporting_executor(&out));
    let c = agent.command_task("exit 3").build();
    // An agent before Mesos 1.0, so that the observer gets the `--override` command line.
    agent
        .launch_call(&c)
        .env_remove("MESOS_HTTP_COMMAND_EXECUTOR")
        .run()
        .assert_success();
    let waiting = agent.wait_call(&c).spawn();
    let dir = agent.state_dir(&c.id);
    wait_until(CALL_TIMEOUT, "the observer to see the exit", || {
        out.join("observed").exists()
    });

    // From cron, while the observer still reports (the exit is recorded, `wait` released).
    agent
        .call(&["state", "--rm"])
        .env_remove("MESOS_WORK_DIRECTORY")
        .run()
        .assert_success();
    assert!(
        dir.join("exit").exists(),
        "state --rm removed the state while the observer executor was still reporting"
    );
    // The situation of the issue held: the watcher still waited for the observer (it gives
    // it 10 s, far more than the steps above take).
    assert!(held_exclusively(&dir.join("lock.observe")));

    fs::write(out.join("release"), "").unwrap();
    let termination: Termination = waiting.finish(CALL_TIMEOUT).success().record();
    assert_eq!(termination.status, Some(3 << 8));
    agent.call(&["state", "--rm"]).run().assert_success();
    assert!(!dir.exists());
}

#[test]
fn destroys_waiting_for_each_other_let_the_first_restart_a_dead_watcher() {
    let agent = Agent::new("destroy-pair");
    let c = agent.executor(&until_go(0)).build();
    agent.launch_ok(&c);
    wait_started(&c);
    let dir = agent.state_dir(&c.id);
    let destroy_lock = dir.join("lock.destroy");
    agent.kill_watcher(&c.id, Signal::SIGKILL);

    // Both destroys wait for `lock.destroy`; whichever gets it first must restart the watcher
    // (`lock.launch` exclusively) while the other still waits for `lock.destroy`.
    let held = lock_file(&destroy_lock, true);
    let first = agent.destroy_call(&c).spawn();
    let second = agent.destroy_call(&c).spawn();
    wait_until(REACH_TIMEOUT, "both destroys to open lock.destroy", || {
        has_open(first.pid(), &destroy_lock) && has_open(second.pid(), &destroy_lock)
    });
    drop(held);

    for destroying in [first, second] {
        destroying.finish(CALL_TIMEOUT).assert_success();
    }
    assert_eq!(agent.exit_record(&c.id).unwrap()["destroyed"], true);
    assert_eq!(agent.docker_containers(), Vec::<String>::new());
}
