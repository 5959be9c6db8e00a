//! Scale benchmark of the fake master (issue 12): one process holds a master with
//! `record_history: false`, 1,000 agents attached through links and a scheduler speaking
//! protobuf over real HTTP that launches 100,000 tasks (100 per agent, all running at once),
//! then plays every task RUNNING then FINISHED on its agent and acknowledges each update as a
//! scheduler does. Prints the tasks launched, the launch rate, updates delivered and
//! acknowledged per second, and the process' peak resident memory (`VmHWM`), whose target is
//! ≤ 1 GiB.
//!
//! Run with `scripts/bench` or `cargo bench -p mesos-harness --bench scale`. Exits with status
//! 1 when the memory target is missed and 2 when the run could not complete.

mod scheduler;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mesos_harness::master::{AgentMessage, AgentReporter, AgentSpec, FakeMaster, MasterSetup};
use mesos_proto::v1::{task_status, TaskState, TaskStatus};

/// Agents attached to the master.
const AGENTS: usize = 1_000;
/// Tasks per agent (each takes 1 cpu and 32 MB; the agent has exactly room for them).
const TASKS_PER_AGENT: usize = 100;
/// The target of the process' peak resident memory, in KiB (1 GiB).
const TARGET_PEAK_RSS_KIB: u64 = 1024 * 1024;
/// The whole run must end within this.
const DEADLINE: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; there are no filters.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(async { tokio::time::timeout(DEADLINE, bench()).await }) {
        Ok(Ok(report)) => {
            print!("{}", report.table());
            if report.peak_rss_kib <= TARGET_PEAK_RSS_KIB {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Ok(Err(error)) => {
            eprintln!("bench: {error}");
            ExitCode::from(2)
        }
        Err(_) => {
            eprintln!("bench: the run did not end within {DEADLINE:?}");
            ExitCode::from(2)
        }
    }
}

/// Everything measured.
struct Report {
    launched: u64,
    launch_time: Duration,
    updates: u64,
    update_time: Duration,
    remembered_tasks: usize,
    peak_rss_kib: u64,
    rss_kib: u64,
}

impl Report {
    fn table(&self) -> String {
        let per_second = |count: u64, time: Duration| count as f64 / time.as_secs_f64().max(1e-9);
        let verdict = if self.peak_rss_kib <= TARGET_PEAK_RSS_KIB {
            "ok"
        } else {
            "MISSED"
        };
        format!(
            "fake master at scale: {AGENTS} agents, {} tasks\n\
             tasks launched (RunTask received by agents)  {:>10}  in {:.2} s ({:.0}/s)\n\
             updates delivered and acknowledged           {:>10}  in {:.2} s ({:.0}/s; {} are retries)\n\
             tasks still remembered by the master         {:>10}\n\
             peak RSS (VmHWM)                             {:>10.1} MiB  target <= {} MiB  {verdict}\n\
             RSS at the end (VmRSS)                       {:>10.1} MiB\n",
            AGENTS * TASKS_PER_AGENT,
            self.launched,
            self.launch_time.as_secs_f64(),
            per_second(self.launched, self.launch_time),
            self.updates,
            self.update_time.as_secs_f64(),
            per_second(self.updates, self.update_time),
            self.updates.saturating_sub(2 * (AGENTS * TASKS_PER_AGENT) as u64),
            self.remembered_tasks,
            self.peak_rss_kib as f64 / 1024.0,
            TARGET_PEAK_RSS_KIB / 1024,
            self.rss_kib as f64 / 1024.0,
        )
    }
}

async fn bench() -> Result<Report, String> {
    let setup = MasterSetup {
        record_history: false,
        ..MasterSetup::default()
    };
    let master = FakeMaster::start(setup)
        .await
        .map_err(|e| format!("master: {e}"))?;
    let launched = Arc::new(AtomicU64::new(0));
    let mut agents = Vec::with_capacity(AGENTS);
    for index in 0..AGENTS {
        let agent_id = format!("agent-{index:04}");
        let spec = AgentSpec {
            cpus: TASKS_PER_AGENT as f64,
            mem: (TASKS_PER_AGENT * 32) as f64,
            disk: 0.0,
            ports: Vec::new(),
            ..AgentSpec::new(agent_id.clone(), "127.0.0.1")
        };
        master.add_agent(spec).map_err(|e| format!("agent: {e}"))?;
        let link = master
            .attach_agent(&agent_id)
            .map_err(|e| format!("attach: {e}"))?;
        let (reporter, messages) = link.into_parts();
        agents.push(tokio::spawn(play_agent(
            reporter,
            messages,
            Arc::clone(&launched),
        )));
    }
    let total = (AGENTS * TASKS_PER_AGENT) as u64;
    let outcome = scheduler::run(&master.scheduler_url(), TASKS_PER_AGENT, total, &launched).await;
    let remembered_tasks = master.tasks().len();
    for agent in agents {
        agent.abort();
    }
    master.stop().await;
    let outcome = outcome?;
    let (peak_rss_kib, rss_kib) = memory()?;
    Ok(Report {
        launched: launched.load(Ordering::Relaxed),
        launch_time: outcome.launch_time,
        updates: outcome.updates,
        update_time: outcome.update_time,
        remembered_tasks,
        peak_rss_kib,
        rss_kib,
    })
}

/// An agent whose tasks run at once and finish: RUNNING then FINISHED for every task it is
/// given (its status update manager delivers FINISHED once RUNNING is acknowledged).
async fn play_agent(
    reporter: AgentReporter,
    mut messages: tokio::sync::mpsc::UnboundedReceiver<AgentMessage>,
    launched: Arc<AtomicU64>,
) {
    while let Some(message) = messages.recv().await {
        let AgentMessage::RunTask { task, .. } = message else {
            continue;
        };
        launched.fetch_add(1, Ordering::Relaxed);
        for state in [TaskState::TaskRunning, TaskState::TaskFinished] {
            let status = TaskStatus {
                state: state as i32,
                source: Some(task_status::Source::Executor as i32),
                ..Default::default()
            };
            if let Err(error) = reporter.send_status(&task.task_id.value, status) {
                eprintln!("bench: agent {}: {error}", reporter.agent_id());
            }
        }
    }
}

/// `VmHWM` and `VmRSS` of this process, in KiB.
fn memory() -> Result<(u64, u64), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .ok_or_else(|| format!("no {name} in /proc/self/status"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}
