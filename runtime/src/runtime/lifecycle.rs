//! One container lifecycle above the Docker calls, shared by the three programs that run
//! containers: `deimos launch` and its watcher, the executor, and eremetic's local backend.
//!
//! What each of them did before (issue 10, item 5), and what they share now:
//!
//! - **Pairing allocated ports with exposed ports.** `deimos launch` and the executor both
//!   pulled the image when needed, inspected it and paired the allocated host ports with its
//!   exposed ports ([`crate::mesos::ports::pair_with_exposed`]); the local backend never pairs
//!   (an Eremetic task names its container ports). Now: [`publish_allocated_ports`].
//! - **Launch, and on a name conflict remove the leftover and launch again.** The executor and
//!   the local backend removed the container holding the name (a leftover of an interrupted
//!   launch: nobody follows it) and launched once more; `deimos launch` failed the launch
//!   instead (and removed the leftover while undoing it, so that the agent's retry worked).
//!   Now all three use [`launch_replacing_leftover`]: the name is derived from an id that is
//!   launched once (Mesos container id, executor container + task, eremetic run id), so a
//!   container already holding it is always a leftover.
//! - **Run to exit while saving the output.** The watcher retried a failed wait forever
//!   (250 ms doubling to 10 s) but never restarted its log stream, so output produced after
//!   a Docker restart was lost; it gave the stream 10 s after the exit. The executor and the
//!   local backend reported a failed wait at once (the task lost) and waited for the log
//!   stream without a bound. Now all three use [`run_to_exit`] under one [`EnginePolicy`]:
//!   - a wait or a log stream that fails because the engine cannot be reached (any failure
//!     other than "no such container" or a sandbox write error) is tried again after a pause
//!     of 250 ms doubling to 10 s, for as long as the policy's `ride_out` allows (counted from
//!     the first failure of an outage; a call that ran longer than the longest pause found
//!     the engine up, so a later failure starts a new outage);
//!   - a resumed log stream replays from the same `since` and skips the bytes already saved
//!     (counted on disk, rotation included), so the files hold each byte once;
//!   - a log stream that ended before the exit while the engine was unreachable may have been
//!     cut by the outage (Docker may close it cleanly when it stops): it is resumed once
//!     more after the exit, in the same way;
//!   - after the exit, the log stream has `drain` (10 s) to finish.
//!
//!   What truly differs is how long to ride out an unreachable engine: the deimos watcher is
//!   the only one who can ever record the exit, and the container survives a Docker restart
//!   with live-restore, so it waits forever ([`EnginePolicy::forever`]); the executor and the
//!   local backend report the run lost after [`DEFAULT_RIDE_OUT`] so that the task is retried
//!   or failed instead of hanging ([`EnginePolicy::default`]).

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::logs::{LogOptions, StreamBytes};
use super::types::{ExitStatus, LogTotals};
use super::{ContainerRuntime, RuntimeError};
use crate::mesos::ports::pair_with_exposed;
use crate::spec::{ContainerSpec, Protocol};

/// How long the executor and the local backend ride out an unreachable engine by default.
pub const DEFAULT_RIDE_OUT: Duration = Duration::from_secs(60);
/// The first pause after a failed call to an unreachable engine.
pub const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause between calls to an unreachable engine.
pub const MAX_PAUSE: Duration = Duration::from_secs(10);
/// How long the log stream may lag behind the exit.
pub const DRAIN: Duration = Duration::from_secs(10);

/// How a follower treats an engine it cannot reach. See the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnginePolicy {
    /// How long the engine may stay unreachable before the wait (or the output) is given up;
    /// `None`: forever.
    pub ride_out: Option<Duration>,
    /// The first pause after a failed call.
    pub first_pause: Duration,
    /// The longest pause between calls (pauses double up to it).
    pub max_pause: Duration,
    /// How long the log stream may lag behind the exit.
    pub drain: Duration,
}

impl Default for EnginePolicy {
    /// Rides out [`DEFAULT_RIDE_OUT`].
    fn default() -> Self {
        EnginePolicy {
            ride_out: Some(DEFAULT_RIDE_OUT),
            first_pause: FIRST_PAUSE,
            max_pause: MAX_PAUSE,
            drain: DRAIN,
        }
    }
}

impl EnginePolicy {
    /// Rides out an unreachable engine for as long as it takes.
    pub fn forever() -> Self {
        EnginePolicy {
            ride_out: None,
            ..EnginePolicy::default()
        }
    }
}

/// Whether a failure may pass once the engine is reachable again: anything but a missing
/// container, a sandbox that cannot be written and a request the engine can never accept.
pub fn is_engine_unreachable(error: &RuntimeError) -> bool {
    matches!(
        error,
        RuntimeError::Connect { .. } | RuntimeError::Docker { .. }
    )
}

/// Makes sure the image is present (pulling it when missing or when `spec.force_pull` is
/// set, which is then cleared), and publishes the `allocated` host ports paired in order with
/// the ports the image exposes.
pub async fn publish_allocated_ports<R: ContainerRuntime + ?Sized>(
    runtime: &R,
    spec: &mut ContainerSpec,
    allocated: &[u16],
) -> Result<(), RuntimeError> {
    runtime
        .ensure_image(&spec.image, spec.force_pull, spec.registry_auth.as_ref())
        .await?;
    spec.force_pull = false;
    let info = runtime.inspect_image(&spec.image).await?;
    let exposed: Vec<(u16, Protocol)> = info
        .exposed_ports
        .iter()
        .map(|p| (p.port, p.protocol))
        .collect();
    spec.ports = pair_with_exposed(allocated, &exposed);
    Ok(())
}

/// A launched container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// Its Docker id.
    pub id: String,
    /// The name of the leftover container that held the name and was removed first, if any.
    pub replaced_leftover: Option<String>,
}

/// [`ContainerRuntime::launch`]; when the name is taken, removes the container holding it
/// (a leftover of an interrupted launch) and launches once more.
pub async fn launch_replacing_leftover<R: ContainerRuntime + ?Sized>(
    runtime: &R,
    spec: &ContainerSpec,
) -> Result<Launched, RuntimeError> {
    match runtime.launch(spec).await {
        Err(RuntimeError::NameConflict { name, .. }) => {
            runtime.remove(&name).await?;
            let id = runtime.launch(spec).await?;
            Ok(Launched {
                id,
                replaced_leftover: Some(name),
            })
        }
        launched => Ok(Launched {
            id: launched?,
            replaced_leftover: None,
        }),
    }
}

/// How a followed container ended.
#[derive(Debug)]
pub struct RunEnd {
    /// The exit; an error when the container disappeared, or the engine stayed unreachable
    /// longer than the policy rides out.
    pub exit: Result<ExitStatus, RuntimeError>,
    /// What the output stream saved, or why it stopped early.
    pub output: Result<LogTotals, RuntimeError>,
}

/// Waits for the started container `id` to stop while appending its output to the `stdout`
/// and `stderr` files in `dir` (with `options`' `since` and limit), riding out an unreachable
/// engine under `policy`. Does not remove the container.
pub async fn run_to_exit<R: ContainerRuntime + ?Sized>(
    runtime: &R,
    id: &str,
    dir: &Path,
    options: LogOptions,
    policy: &EnginePolicy,
) -> RunEnd {
    let before = StreamBytes::saved_in(dir).await;
    let wait = wait_riding_out(runtime, id, policy);
    let logs = save_output(runtime, id, dir, options, before, policy);
    tokio::pin!(wait, logs);
    let mut output = None;
    let (exit, outage_seen) = loop {
        tokio::select! {
            exit = &mut wait => break exit,
            saved = &mut logs, if output.is_none() => output = Some(saved),
        }
    };
    let drained = async {
        let saved = match output {
            Some(saved) => saved,
            None => logs.await,
        };
        match saved {
            // A stream that ended cleanly while the engine went away may have been cut by
            // the outage rather than by the exit: replay the rest (the container has
            // stopped, so the replay ends at once, and what was saved is skipped). Whether
            // the stream's end or the exit was seen first does not matter (both may be
            // ready at once). Without an exit the engine is gone: keep what was saved.
            Ok(_) if outage_seen && exit.is_ok() => {
                save_output(runtime, id, dir, options, before, policy).await
            }
            saved => saved,
        }
    };
    let output = match tokio::time::timeout(policy.drain, drained).await {
        Ok(saved) => saved,
        Err(_) => Err(RuntimeError::Docker {
            operation: "logs",
            target: id.to_owned(),
            reason: format!(
                "the output stream was still open {:?} after the exit",
                policy.drain
            ),
        }),
    };
    RunEnd { exit, output }
}

/// Waits for the exit, riding out an unreachable engine; also says whether the engine was
/// unreachable at some point.
async fn wait_riding_out<R: ContainerRuntime + ?Sized>(
    runtime: &R,
    id: &str,
    policy: &EnginePolicy,
) -> (Result<ExitStatus, RuntimeError>, bool) {
    let mut outage = Outage::new(*policy);
    loop {
        let started = Instant::now();
        match runtime.wait(id).await {
            Err(error) if is_engine_unreachable(&error) => {
                match outage.failed(started, Instant::now()) {
                    Some(pause) => {
                        log::warn!(
                            "waiting for container {id}: {error}; trying again in {pause:?}"
                        );
                        tokio::time::sleep(pause).await;
                    }
                    None => return (Err(error), true),
                }
            }
            ended => return (ended, outage.since.is_some()),
        }
    }
}

/// Streams the output until it ends, resuming after an outage without saving a byte twice:
/// what the files gained since `before` (when the first stream started) is skipped.
async fn save_output<R: ContainerRuntime + ?Sized>(
    runtime: &R,
    id: &str,
    dir: &Path,
    options: LogOptions,
    before: StreamBytes,
    policy: &EnginePolicy,
) -> Result<LogTotals, RuntimeError> {
    let mut outage = Outage::new(*policy);
    loop {
        let saved = StreamBytes::saved_in(dir).await.since(before);
        let attempt = LogOptions {
            skip: options.skip.plus(saved),
            ..options
        };
        let started = Instant::now();
        match runtime.stream_logs(id, dir, attempt).await {
            Ok(mut totals) => {
                totals.stdout_bytes += saved.stdout;
                totals.stderr_bytes += saved.stderr;
                return Ok(totals);
            }
            Err(error) if is_engine_unreachable(&error) => {
                match outage.failed(started, Instant::now()) {
                    Some(pause) => {
                        log::warn!(
                            "saving the output of container {id}: {error}; resuming in {pause:?}"
                        );
                        tokio::time::sleep(pause).await;
                    }
                    None => return Err(error),
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// The current outage of the engine, as seen by one follower.
#[derive(Debug)]
struct Outage {
    policy: EnginePolicy,
    /// When the outage began; `None` before the first failure.
    since: Option<Instant>,
    pause: Duration,
}

impl Outage {
    fn new(policy: EnginePolicy) -> Self {
        Outage {
            policy,
            since: None,
            pause: policy.first_pause,
        }
    }

    /// A call started at `started` failed at `now`: the pause before the next call, or `None`
    /// when the outage has lasted longer than the policy rides out.
    fn failed(&mut self, started: Instant, now: Instant) -> Option<Duration> {
        // A call that ran longer than the longest pause found the engine up: a new outage.
        let fresh = now.duration_since(started) > self.policy.max_pause;
        let since = match self.since {
            Some(since) if !fresh => since,
            _ => {
                self.pause = self.policy.first_pause;
                *self.since.insert(now)
            }
        };
        if let Some(limit) = self.policy.ride_out {
            if now.duration_since(since) >= limit {
                return None;
            }
        }
        let pause = self.pause;
        self.pause = (pause * 2).min(self.policy.max_pause);
        Some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ride_out: Option<Duration>) -> EnginePolicy {
        EnginePolicy {
            ride_out,
            first_pause: Duration::from_millis(100),
            max_pause: Duration::from_millis(400),
            drain: DRAIN,
        }
    }

    /// The pauses of an outage in which every call fails at once, until it is given up.
    fn pauses(outage: &mut Outage, mut now: Instant, most: usize) -> Vec<u128> {
        let mut pauses = Vec::new();
        while let Some(pause) = outage.failed(now, now) {
            pauses.push(pause.as_millis());
            now += pause;
            if pauses.len() == most {
                break;
            }
        }
        pauses
    }

    #[test]
    fn pauses_double_up_to_the_longest_and_the_outage_ends_after_the_ride_out() {
        let mut outage = Outage::new(policy(Some(Duration::from_secs(1))));
        assert_eq!(
            pauses(&mut outage, Instant::now(), 100),
            [100, 200, 400, 400]
        );
    }

    #[test]
    fn a_call_that_ran_long_starts_a_new_outage() {
        let mut outage = Outage::new(policy(Some(Duration::from_secs(1))));
        let t0 = Instant::now();
        assert_eq!(pauses(&mut outage, t0, 100).len(), 4);
        // A call of 5 s after that: the engine answered meanwhile.
        let started = t0 + Duration::from_secs(2);
        let failed = started + Duration::from_secs(5);
        assert_eq!(
            outage.failed(started, failed),
            Some(Duration::from_millis(100))
        );
    }

    #[test]
    fn a_ride_out_of_zero_gives_up_at_the_first_failure() {
        let mut outage = Outage::new(policy(Some(Duration::ZERO)));
        let now = Instant::now();
        assert_eq!(outage.failed(now, now), None);
    }

    #[test]
    fn riding_out_forever_never_gives_up() {
        let mut outage = Outage::new(policy(None));
        assert_eq!(pauses(&mut outage, Instant::now(), 1000).len(), 1000);
    }

    #[test]
    fn only_engine_failures_are_ridden_out() {
        let docker = RuntimeError::Docker {
            operation: "wait",
            target: "c".into(),
            reason: "connection refused".into(),
        };
        assert!(is_engine_unreachable(&docker));
        assert!(!is_engine_unreachable(&RuntimeError::NoSuchContainer {
            id: "c".into()
        }));
        assert!(!is_engine_unreachable(&RuntimeError::LogFile {
            container: "c".into(),
            path: "/s/stdout".into(),
            reason: "disk full".into(),
        }));
    }
}
