//! One invocation of the binary as the agent makes it: [`Call`] (before), [`Running`],
//! [`Finished`] (after), and the agent's way of killing a call's process tree.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mesos_proto::ecp::{self, ReadOptions};
use prost::Message;

use super::{CALL_TIMEOUT, DEIMOS};

/// One invocation of the binary, before it is started.
#[derive(Clone, Debug)]
pub struct Call {
    args: Vec<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    remove_env: Vec<String>,
    input: Option<Vec<u8>>,
    close_stdin: bool,
}

impl Call {
    /// A call with `args`, in `cwd`, with `env` added to the agent's environment.
    pub(super) fn new(args: &[&str], cwd: &Path, env: Vec<(String, String)>) -> Call {
        Call {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            cwd: cwd.to_path_buf(),
            env,
            remove_env: Vec::new(),
            input: None,
            close_stdin: false,
        }
    }

    /// The working directory.
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = dir.to_path_buf();
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, name: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.remove_env.push(name.to_owned());
        self
    }

    /// The bytes written on stdin (exactly these; stdin then stays open).
    pub fn input(mut self, bytes: Vec<u8>) -> Self {
        self.input = Some(bytes);
        self
    }

    /// Closes stdin after writing the input (the agent never does; for truncated records).
    pub fn close_stdin(mut self) -> Self {
        self.close_stdin = true;
        self
    }

    /// Starts the process.
    pub fn spawn(&self) -> Running {
        let mut command = Command::new("setsid");
        command
            .arg(DEIMOS)
            .args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars() {
            if name.starts_with("MESOS_") || name.starts_with("LIBPROCESS_") {
                command.env_remove(name);
            }
        }
        command.env_remove("DEIMOS_CONFIG");
        for name in &self.remove_env {
            command.env_remove(name);
        }
        command.envs(self.env.iter().map(|(n, v)| (n, v)));
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {DEIMOS}: {e}"));
        let mut stdin = child.stdin.take();
        if let (Some(pipe), Some(bytes)) = (stdin.as_mut(), &self.input) {
            // The process may exit before reading (bad arguments): EPIPE is not our failure.
            let _ = pipe.write_all(bytes).and_then(|()| pipe.flush());
        }
        if self.close_stdin {
            stdin = None;
        }
        let stdout = child.stdout.take().expect("stdout pipe");
        let stderr = child.stderr.take().expect("stderr pipe");
        Running {
            child,
            stdin,
            stdout: Some(std::thread::spawn(move || read_all(stdout))),
            stderr: Some(std::thread::spawn(move || read_all(stderr))),
            args: self.args.clone(),
            started: Instant::now(),
            status: None,
        }
    }

    /// Starts the process and waits for it (at most [`CALL_TIMEOUT`]).
    pub fn run(&self) -> Finished {
        self.spawn().finish(CALL_TIMEOUT)
    }
}

fn read_all(mut pipe: impl Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes);
    bytes
}

/// A started call. Its stdin stays open until it has exited.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    args: Vec<String>,
    started: Instant,
    status: Option<ExitStatus>,
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// True once the process has exited (it is reaped then).
    pub fn has_exited(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.is_some()
    }

    /// Waits for the process to exit, at most `timeout`; a test failure otherwise (the process
    /// group is killed first).
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        while !self.has_exited() {
            if Instant::now() > deadline {
                self.kill_tree();
                let finished = self.collect();
                panic!(
                    "`deimos {}` did not finish within {timeout:?}; stderr: {}",
                    finished.args.join(" "),
                    finished.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.collect()
    }

    /// Kills the call as the agent kills a `wait` after `destroy` (stout `os::killtree` with
    /// groups and sessions): SIGKILL to the process, all its descendants, and every process in
    /// the process groups and sessions of those; then reaps it.
    pub fn kill(mut self) -> Finished {
        self.kill_tree();
        self.collect()
    }

    fn kill_tree(&mut self) {
        if self.status.is_none() {
            for pid in agent_kill_set(self.pid()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            self.status = Some(self.child.wait().expect("reap"));
        }
    }

    fn collect(mut self) -> Finished {
        let status = match self.status {
            Some(status) => status,
            None => self.child.wait().expect("reap"),
        };
        drop(self.stdin.take());
        let join = |handle: Option<JoinHandle<Vec<u8>>>| {
            handle
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default()
        };
        Finished {
            status,
            stdout: join(self.stdout.take()),
            stderr: String::from_utf8_lossy(&join(self.stderr.take())).into_owned(),
            args: self.args.clone(),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test failed while this call ran: do not leave it behind.
        self.kill_tree();
    }
}

/// `(pid, ppid, pgrp, session)` of every process.
fn process_table() -> Vec<(i32, i32, i32, i32)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, rest) = stat.rsplit_once(") ")?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let number = |i: usize| fields.get(i)?.parse::<i32>().ok();
            Some((pid, number(1)?, number(2)?, number(3)?))
        })
        .collect()
}

/// What stout's `os::killtree(pid, SIGKILL, true, true)` kills: the tree under `root`, plus
/// every process sharing a process group or session with a process of that tree. Never this
/// test process or its own session (a safety net: calls run in sessions of their own).
fn agent_kill_set(root: i32) -> Vec<i32> {
    let table = process_table();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(table.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    let own_session = nix::unistd::getsid(None).map(|s| s.as_raw()).unwrap_or(-1);
    let in_tree: Vec<&(i32, i32, i32, i32)> =
        table.iter().filter(|p| tree.contains(&p.0)).collect();
    let groups: Vec<i32> = in_tree.iter().map(|p| p.2).collect();
    let sessions: Vec<i32> = in_tree
        .iter()
        .map(|p| p.3)
        .filter(|s| *s != own_session)
        .collect();
    let me = i32::try_from(std::process::id()).unwrap_or(-1);
    let mut set: Vec<i32> = table
        .iter()
        .filter(|p| tree.contains(&p.0) || groups.contains(&p.2) || sessions.contains(&p.3))
        .map(|p| p.0)
        .filter(|pid| *pid != me && *pid > 1)
        .collect();
    set.sort_unstable();
    set.dedup();
    set
}

/// A call that ended.
#[derive(Debug)]
pub struct Finished {
    /// Its raw status.
    pub status: ExitStatus,
    /// Everything it wrote on stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote on stderr.
    pub stderr: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// How long it ran (from spawn to reaping).
    pub elapsed: Duration,
}

impl Finished {
    /// The exit code; `None` when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Fails the test unless the call exited 0.
    pub fn assert_success(&self) {
        assert_eq!(
            self.code(),
            Some(0),
            "`deimos {}` failed ({}); stderr: {}",
            self.args.join(" "),
            self.status,
            self.stderr
        );
    }

    /// Fails the test if the call wrote on stdout (launch, update, destroy, recover).
    pub fn assert_no_output(&self) {
        assert!(
            self.stdout.is_empty(),
            "`deimos {}` wrote {} bytes on stdout",
            self.args.join(" "),
            self.stdout.len()
        );
    }

    /// [`Finished::assert_success`], returning self.
    pub fn success(self) -> Finished {
        self.assert_success();
        self
    }

    /// Fails the test unless the call exited with `code` and wrote exactly one non-empty line
    /// on stderr; returns that line.
    pub fn error_line(&self, code: i32) -> &str {
        assert_eq!(
            self.code(),
            Some(code),
            "`deimos {}`: expected exit {code}, got {}; stderr: {}",
            self.args.join(" "),
            self.status,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "`deimos {}`: expected one line on stderr, got {:?}",
            self.args.join(" "),
            self.stderr
        );
        assert!(!lines[0].trim().is_empty(), "empty error line");
        lines[0]
    }

    /// The one record on stdout (an empty record is a default message).
    pub fn record<M: Message + Default>(&self) -> M {
        let mut reader = &self.stdout[..];
        ecp::read_message(&mut reader, ReadOptions::ALLOW_EMPTY).unwrap_or_else(|e| {
            panic!(
                "`deimos {}` wrote no valid record ({e}); stdout {:?}, stderr: {}",
                self.args.join(" "),
                self.stdout,
                self.stderr
            )
        })
    }

    /// The signal that killed the call, if any.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
}
