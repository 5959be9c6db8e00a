//! End-to-end: the containerizer under faults: a state root that is full for real while a
//! watcher starts or records an exit.
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
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
