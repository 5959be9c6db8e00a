//! A benchmark's private world (temp state root, configuration file, agent work directory)
//! and timed runs of the release-built `deimos` binary in it.

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use deimos::config::CONFIG_ENV_VAR;
use deimos::state::{ContainerId, Durability, ExitRecord, NewContainer, StateRoot};
use mesos_proto::ecp::{self, ReadOptions};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{BenchError, Result};

/// The binary under test, built with the bench (release) profile by `cargo bench`.
pub(crate) const DEIMOS: &str = env!("CARGO_BIN_EXE_deimos");

/// The local test image (built by scripts/setup).
pub(crate) const IMAGE: &str = "deimos-test/busybox:latest";

/// How long one `deimos` run may take before it is killed and the benchmark fails.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What a run's stdout is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Nothing is expected: stdout is /dev/null.
    Nothing,
    /// Exactly one protocol record (read before the process is waited for).
    Record,
    /// Text until end of file.
    Text,
}

/// One timed run: the whole process, from spawn until it was reaped.
#[derive(Debug)]
pub(crate) struct Run {
    /// Wall time from before `spawn` until `wait` returned.
    pub(crate) elapsed: Duration,
    /// The record payload or text read from stdout.
    pub(crate) stdout: Vec<u8>,
}

/// A temp directory with its own state root, configuration file and agent work directory.
pub(crate) struct BenchEnv {
    temp: tempfile::TempDir,
    config_path: PathBuf,
    work_dir: String,
    runs: Cell<u64>,
}

impl BenchEnv {
    /// Creates the directory and writes the configuration. `name` labels the temp directory.
    pub(crate) fn new(name: &str) -> Result<BenchEnv> {
        BenchEnv::new_in(name, &std::env::temp_dir())
    }

    /// Like [`BenchEnv::new`], in the directory `parent`.
    pub(crate) fn new_in(name: &str, parent: &Path) -> Result<BenchEnv> {
        let temp = tempfile::Builder::new()
            .prefix(&format!("deimos-bench-{name}-"))
            .tempdir_in(parent)
            .map_err(BenchError::io(format!(
                "create the benchmark's temp directory in {}",
                parent.display()
            )))?;
        let base = temp.path().to_path_buf();
        for dir in ["state", "sandboxes", "stderr", "work"] {
            fs::create_dir(base.join(dir)).map_err(BenchError::io(format!(
                "create {}",
                base.join(dir).display()
            )))?;
        }
        let config_path = base.join("deimos.cfg");
        fs::write(&config_path, config_text(&base.join("state")))
            .map_err(BenchError::io(format!("write {}", config_path.display())))?;
        Ok(BenchEnv {
            work_dir: base.join("work").to_string_lossy().into_owned(),
            config_path,
            temp,
            runs: Cell::new(0),
        })
    }

    /// The temp directory.
    pub(crate) fn base(&self) -> &Path {
        self.temp.path()
    }

    /// The configuration file the runs use.
    pub(crate) fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The agent work directory (`MESOS_WORK_DIRECTORY`), the owner of launched containers.
    pub(crate) fn work_dir(&self) -> &str {
        &self.work_dir
    }

    /// The state root, for seeding and checking (without fsync: seeding is not measured).
    pub(crate) fn state(&self) -> StateRoot {
        StateRoot::new(self.base().join("state")).with_durability(Durability::NoSync)
    }

    /// A container's sandbox directory (not created).
    pub(crate) fn sandbox(&self, container_id: &str) -> PathBuf {
        self.base().join("sandboxes").join(container_id)
    }

    /// Creates `count` state directories of exited containers of this agent, as a finished
    /// launch leaves them (`<prefix>-<n>`, not measured).
    pub(crate) fn seed_exited(&self, prefix: &str, count: usize) -> Result<()> {
        let state = self.state();
        for n in 0..count {
            let id =
                ContainerId::new(format!("{prefix}-{n}")).map_err(|e| BenchError::Library {
                    what: format!("make the container id {prefix}-{n}"),
                    reason: e.to_string(),
                })?;
            let new = NewContainer {
                executor_id: format!("task-{n}"),
                task_id: Some(format!("task-{n}")),
                owner: Some(self.work_dir.clone()),
                sandbox: Some(self.sandbox(id.as_str())),
            };
            let (dir, _launch) = state
                .create_container(&id, &new)
                .map_err(BenchError::state(format!("seed the state of {id}")))?
                .into_parts();
            dir.record_docker_id(&format!("{n:064x}"))
                .and_then(|()| dir.record_exit(&ExitRecord::with_code(0)))
                .map_err(BenchError::state(format!("seed the state of {id}")))?;
        }
        Ok(())
    }

    /// Runs `deimos <args>` with `input` written to its stdin, which stays open until the
    /// process exited (as the agent does), and times the whole process.
    pub(crate) fn run(&self, args: &[&str], input: &[u8], reply: Reply) -> Result<Run> {
        let command_line = args.join(" ");
        let run_number = self.runs.get() + 1;
        self.runs.set(run_number);
        let stderr_path = self
            .base()
            .join("stderr")
            .join(format!("{run_number}-{}", args.first().unwrap_or(&"none")));
        let stderr = File::create(&stderr_path)
            .map_err(BenchError::io(format!("create {}", stderr_path.display())))?;
        let mut command = Command::new(DEIMOS);
        command
            .args(args)
            .current_dir(self.base())
            .env(CONFIG_ENV_VAR, &self.config_path)
            .env("MESOS_WORK_DIRECTORY", &self.work_dir)
            .stdin(Stdio::piped())
            .stdout(match reply {
                Reply::Nothing => Stdio::null(),
                Reply::Record | Reply::Text => Stdio::piped(),
            })
            .stderr(stderr);

        let watchdog = Watchdog::arm(RUN_LIMIT);
        let start = Instant::now();
        let mut child = command
            .spawn()
            .map_err(BenchError::io(format!("start {DEIMOS} {command_line}")))?;
        watchdog.watch(child.id());
        // Taken out of `child`: `Child::wait` would close it first.
        let stdin = child.stdin.take();
        let exchanged = exchange(&mut child, stdin.as_ref(), input, reply);
        let status = child
            .wait()
            .map_err(BenchError::io(format!("wait for deimos {command_line}")));
        let elapsed = start.elapsed();
        let hung = watchdog.disarm();
        drop(stdin);

        if hung {
            return Err(BenchError::Hung {
                command: command_line,
                limit: RUN_LIMIT,
            });
        }
        check_status(status?, &command_line, &stderr_path)?;
        Ok(Run {
            elapsed,
            stdout: exchanged?,
        })
    }
}

/// Writes the request and reads the reply while the process runs.
fn exchange(
    child: &mut Child,
    stdin: Option<&ChildStdin>,
    input: &[u8],
    reply: Reply,
) -> Result<Vec<u8>> {
    if let Some(mut stdin) = stdin {
        if !input.is_empty() {
            stdin
                .write_all(input)
                .and_then(|()| stdin.flush())
                .map_err(BenchError::io("write the request record to deimos' stdin"))?;
        }
    }
    let Some(stdout) = child.stdout.as_mut() else {
        return Ok(Vec::new());
    };
    match reply {
        Reply::Nothing => Ok(Vec::new()),
        Reply::Record => ecp::read_record(stdout, ReadOptions::NON_EMPTY).map_err(
            BenchError::record("read deimos' reply record from its stdout"),
        ),
        Reply::Text => {
            let mut text = Vec::new();
            stdout
                .read_to_end(&mut text)
                .map_err(BenchError::io("read deimos' stdout"))?;
            Ok(text)
        }
    }
}

fn check_status(status: ExitStatus, command_line: &str, stderr_path: &Path) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    Err(BenchError::Deimos {
        command: command_line.to_owned(),
        status,
        stderr_path: stderr_path.to_path_buf(),
        stderr: fs::read_to_string(stderr_path).unwrap_or_default(),
    })
}

/// The configuration of every benchmark: its own state root, the test image as default, no
/// logging (the agent's defaults would log to syslog), no observer executor (there is no
/// agent to register with), and an immediate SIGKILL on destroy (`sh` as PID 1 ignores
/// SIGTERM, so a grace period would only slow the untimed clean-up down).
fn config_text(state_root: &Path) -> String {
    format!(
        "[state]\nroot: {}\n\n[containers.image]\ndefault: {IMAGE}\n\n[containers]\n\
         stop_grace_period: 0s\n\n[observer]\nenabled: false\n\n[log]\nconsole: off\n\
         syslog: off\n",
        state_root.display()
    )
}

/// Kills a run that takes longer than the limit, so that a hung `deimos` fails the
/// benchmark instead of stalling it. The thread is started before the timer.
struct Watchdog {
    pid: Sender<u32>,
    done: Sender<()>,
    fired: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl Watchdog {
    fn arm(limit: Duration) -> Watchdog {
        let (pid_tx, pid_rx) = mpsc::channel::<u32>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        let thread = thread::spawn(move || {
            let Ok(pid) = pid_rx.recv() else { return };
            if let Err(RecvTimeoutError::Timeout) = done_rx.recv_timeout(limit) {
                if let Ok(raw) = i32::try_from(pid) {
                    flag.store(true, Ordering::SeqCst);
                    let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
                }
            }
        });
        Watchdog {
            pid: pid_tx,
            done: done_tx,
            fired,
            thread,
        }
    }

    fn watch(&self, pid: u32) {
        let _ = self.pid.send(pid);
    }

    /// Stops watching; whether the process had to be killed.
    fn disarm(self) -> bool {
        let _ = self.done.send(());
        drop(self.pid);
        let _ = self.thread.join();
        self.fired.load(Ordering::SeqCst)
    }
}
