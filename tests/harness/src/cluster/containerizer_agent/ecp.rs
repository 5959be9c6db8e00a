//! Running the external containerizer program as the 1.0 agent does
//! (`ExternalContainerizerProcess::invoke`, reference §1.2–1.3): `sh -c
//! '<path> <subcommand>'` in a session of its own (util-linux `setsid`,
//! which execs in place), one framed record written on stdin and stdin kept
//! open until the process is reaped, one framed record read from stdout for
//! `wait`, `usage` and `containers`, stderr appended to `<sandbox>/stderr`
//! (else `/dev/null`). Every call is recorded for the tests.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// One ECP call as the agent made it.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `launch`, `wait`, `update`, `usage`, `destroy`, `containers`, `recover`.
    pub subcommand: String,
    /// The container the call is about, if any.
    pub container_id: Option<String>,
    /// The framed record written on stdin (empty for none).
    pub input: Vec<u8>,
    /// The working directory.
    pub cwd: PathBuf,
    /// The environment it was given.
    pub env: Vec<(String, String)>,
    /// When it started.
    pub started: SystemTime,
    /// When it was reaped, and how it ended (`None` while it runs).
    pub finished: Option<(SystemTime, ExitStatus)>,
}

/// The agent's log of ECP calls, in start order.
#[derive(Debug, Clone, Default)]
pub struct InvocationLog(Arc<Mutex<Vec<Invocation>>>);

impl InvocationLog {
    fn push(&self, invocation: Invocation) -> usize {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.push(invocation);
        log.len() - 1
    }

    fn finish(&self, index: usize, status: ExitStatus) {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = log.get_mut(index) {
            entry.finished = Some((SystemTime::now(), status));
        }
    }

    /// Every call so far.
    pub fn all(&self) -> Vec<Invocation> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One call to make.
#[derive(Debug, Clone)]
pub struct EcpCall {
    /// The subcommand.
    pub subcommand: &'static str,
    /// The container it concerns.
    pub container_id: Option<String>,
    /// The framed input record, if the call has one.
    pub input: Option<Vec<u8>>,
    /// The container's sandbox, when known: cwd and `stderr` file.
    pub sandbox: Option<PathBuf>,
    /// The agent's own working directory (used without a sandbox).
    pub agent_cwd: PathBuf,
    /// The environment.
    pub env: Vec<(String, String)>,
    /// Whether one framed record is read from stdout.
    pub reads_output: bool,
}

/// How a call ended.
#[derive(Debug, Clone)]
pub struct EcpOutcome {
    /// The raw exit status.
    pub status: ExitStatus,
    /// The payload of the record read from stdout (`None`: no record or a
    /// truncated one).
    pub output: Option<Vec<u8>>,
}

/// A call in progress: its session can be killed as the agent kills the
/// `wait` process tree after a `destroy`.
#[derive(Debug, Clone, Copy)]
pub struct SessionHandle(Option<Pid>);

impl SessionHandle {
    /// SIGKILL to the call's process group (the session leader's group).
    pub fn kill(&self) {
        if let Some(pid) = self.0 {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

/// Starts `call`; returns its session handle and a future of its outcome.
pub fn invoke(
    containerizer_path: &Path,
    call: EcpCall,
    log: &InvocationLog,
) -> std::io::Result<(
    SessionHandle,
    tokio::task::JoinHandle<std::io::Result<EcpOutcome>>,
)> {
    let cwd = call
        .sandbox
        .clone()
        .unwrap_or_else(|| call.agent_cwd.clone());
    let stderr = match &call.sandbox {
        Some(sandbox) => Stdio::from(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(sandbox.join("stderr"))?,
        ),
        None => Stdio::null(),
    };
    let mut command = Command::new("setsid");
    command
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "{} {}",
            containerizer_path.display(),
            call.subcommand
        ))
        .current_dir(&cwd)
        .env_clear()
        .envs(call.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(false);
    let mut child = command.spawn()?;
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(Pid::from_raw);
    let index = log.push(Invocation {
        subcommand: call.subcommand.to_owned(),
        container_id: call.container_id.clone(),
        input: call.input.clone().unwrap_or_default(),
        cwd,
        env: call.env.clone(),
        started: SystemTime::now(),
        finished: None,
    });
    let log = log.clone();
    let outcome = tokio::spawn(async move {
        // Kept until the process is reaped: the agent never closes stdin.
        let mut stdin = child.stdin.take();
        if let (Some(input), Some(pipe)) = (&call.input, stdin.as_mut()) {
            // A process that exits without reading gets EPIPE here: not ours to report.
            let _ = pipe.write_all(input).await;
            let _ = pipe.flush().await;
        }
        let mut stdout = child.stdout.take();
        let output = match (call.reads_output, stdout.as_mut()) {
            (true, Some(pipe)) => read_record(pipe).await,
            _ => None,
        };
        let status = child.wait().await?;
        drop(stdin);
        log.finish(index, status);
        Ok(EcpOutcome { status, output })
    });
    Ok((SessionHandle(pid), outcome))
}

/// Reads a native-endian `u32` length and that many bytes; `None` on EOF
/// before or inside the record.
async fn read_record(pipe: &mut tokio::process::ChildStdout) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    pipe.read_exact(&mut size).await.ok()?;
    let mut payload = vec![0u8; u32::from_ne_bytes(size) as usize];
    pipe.read_exact(&mut payload).await.ok()?;
    Some(payload)
}
