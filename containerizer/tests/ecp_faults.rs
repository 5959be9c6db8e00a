//! End-to-end: the containerizer under faults: a state root that is full for real while a
//! watcher starts.
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

use ecp_support::{docker_inspect, wait_until, HttpServer, Reply, Setup, CALL_TIMEOUT};

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
