//! The phases of the cluster benchmark, in one run against one eremetic process:
//! 1. a queue of tasks submitted while the cluster has no agent, then the agents join:
//!    launches per second, from the first offer the master sends to the last task an agent
//!    receives;
//! 2. every agent reports TASK_RUNNING then TASK_FINISHED for its tasks at once: updates
//!    stored and acknowledged per second, until the last acknowledgement reaches an agent;
//! 3. 100,000 more tasks run (agents report TASK_RUNNING at once): the service's memory,
//!    then `kill -9`, a restart, and the time until its reconciliation is complete
//!    (`eremetic_mesos_reconcile_unanswered` back to 0 after the first reconciliation).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use mesos_harness::cluster::RunningAgent;
use mesos_harness::master::{AgentSpec, FakeMaster, MasterSetup};

use crate::agents::{BenchAgent, Counters};
use crate::client::{uri, Connection};
use crate::error::{BenchError, Result};
use crate::load::{self, Load, Stop};
use crate::server::{Server, Settings};
use crate::stats::{Row, Target};
use crate::tasks;

/// The sizes.
const AGENTS: usize = 1_000;
const QUEUED: u64 = 10_000;
const RECONCILED: u64 = 100_000;
/// Concurrent submitting clients.
const CLIENTS: usize = 64;

/// The targets.
const TARGET_LAUNCHES_PER_SEC: f64 = 2_000.0;
const TARGET_UPDATES_PER_SEC: f64 = 10_000.0;
const TARGET_RECONCILE_SECS: f64 = 10.0;
const TARGET_RSS_MIB: f64 = 200.0;

/// Per task: small enough for 110,000 tasks on the agents below.
const TASK_CPUS: f64 = 0.1;
const TASK_MEM_MIB: u64 = 32;
const AGENT_CPUS: f64 = 64.0;
const AGENT_MEM_MIB: f64 = 65_536.0;

const MIB: f64 = 1024.0 * 1024.0;

/// How much of the sizes to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    agents: usize,
    queued: u64,
    reconciled: u64,
    /// The full sizes: targets are checked.
    full: bool,
}

impl Scale {
    /// From `CLUSTER_BENCH_SCALE` (a fraction in (0, 1]; 1 when unset).
    pub(crate) fn from_env() -> std::result::Result<Scale, String> {
        let fraction = match std::env::var("CLUSTER_BENCH_SCALE") {
            Err(_) => 1.0,
            Ok(text) => text
                .parse::<f64>()
                .ok()
                .filter(|f| *f > 0.0 && *f <= 1.0)
                .ok_or_else(|| {
                    format!("CLUSTER_BENCH_SCALE={text:?}: expected a fraction in (0, 1]")
                })?,
        };
        let of = |n: f64| ((n * fraction).round() as u64).max(1);
        Ok(Scale {
            agents: of(AGENTS as f64) as usize,
            queued: of(QUEUED as f64),
            reconciled: of(RECONCILED as f64),
            full: fraction == 1.0,
        })
    }

    fn target(&self, target: Target) -> Target {
        if self.full {
            target
        } else {
            Target::None
        }
    }
}

/// The agents and what they count.
struct Cluster {
    master: FakeMaster,
    counters: Arc<Counters>,
    run_at_once: Arc<AtomicBool>,
    agents: Vec<(Arc<BenchAgent>, RunningAgent)>,
}

impl Cluster {
    async fn start() -> Result<Cluster> {
        // A master holding a large cluster keeps no histories (as Mesos bounds them).
        let setup = MasterSetup {
            record_history: false,
            ..MasterSetup::default()
        };
        let master = FakeMaster::start(setup)
            .await
            .map_err(|e| BenchError::Check(format!("start the fake master: {e}")))?;
        Ok(Cluster {
            master,
            counters: Arc::new(Counters::default()),
            run_at_once: Arc::new(AtomicBool::new(false)),
            agents: Vec::new(),
        })
    }

    fn add_agents(&mut self, count: usize) -> Result<()> {
        for index in 0..count {
            let agent_id = format!("bench-agent-{index:05}");
            let spec = AgentSpec {
                cpus: AGENT_CPUS,
                mem: AGENT_MEM_MIB,
                ..AgentSpec::new(agent_id.clone(), format!("agent-{index}.bench"))
            };
            let failed = |e: mesos_harness::HarnessError| {
                BenchError::Check(format!("add agent {agent_id}: {e}"))
            };
            self.master.add_agent(spec).map_err(failed)?;
            let link = self.master.attach_agent(&agent_id).map_err(failed)?;
            let mode = Arc::new(BenchAgent::new(
                Arc::clone(&self.counters),
                Arc::clone(&self.run_at_once),
            ));
            let running = RunningAgent::start(link, mode.clone());
            self.agents.push((mode, running));
        }
        Ok(())
    }

    /// Waits until `counter` reaches `goal`, printing progress.
    async fn wait_for(
        &self,
        what: &str,
        counter: impl Fn(&Counters) -> &AtomicU64,
        goal: u64,
        limit: Duration,
    ) -> Result<()> {
        let start = Instant::now();
        let mut last_report = start;
        loop {
            let now = counter(&self.counters).load(Ordering::Relaxed);
            if now >= goal {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(BenchError::Timeout(format!(
                    "{what}: {now} of {goal} after {limit:?}"
                )));
            }
            if last_report.elapsed() >= Duration::from_secs(10) {
                eprintln!("bench: {what}: {now} of {goal}");
                last_report = Instant::now();
            }
            let notified = self.counters.changed.notified();
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }
}

/// Runs every phase; returns the rows and notes.
pub(crate) async fn bench(scale: Scale) -> Result<(Vec<Row>, Vec<String>)> {
    let mut cluster = Cluster::start().await?;
    let master_url = format!("http://{}", cluster.master.endpoint());
    let settings = Settings {
        name: "cluster",
        cpus: 1.0,
        mem_mib: 1024,
    };
    let extra = vec![("MASTER", master_url), ("LOGLEVEL", "warn".to_owned())];
    let mut server = Server::start_with_env(settings, extra).await?;
    cluster
        .master
        .wait_subscribed(Duration::from_secs(60))
        .await
        .map_err(|e| server.failure(format!("did not subscribe to the master: {e}")))?;
    let mut rows = Vec::new();
    let mut notes = vec![format!(
        "{} agents, {} queued tasks, {} tasks reconciled; the fake master and its agents \
         run in the benchmark's process on the same cores as eremetic",
        scale.agents, scale.queued, scale.reconciled
    )];

    // 1. Launches from a queue.
    eprintln!("bench: queueing {} tasks with no agent ...", scale.queued);
    submit(&server, scale.queued).await?;
    eprintln!("bench: {} agents join ...", scale.agents);
    cluster.add_agents(scale.agents)?;
    let offered = first_offer(&cluster.master).await?;
    let limit = Duration::from_secs(600);
    cluster
        .wait_for("tasks launched", |c| &c.launched, scale.queued, limit)
        .await?;
    let (_, last) = cluster
        .counters
        .take_launch_times()
        .ok_or_else(|| BenchError::Check("no launch was timed".to_owned()))?;
    // From the moment eremetic could launch (the first offer is out) to the last launch.
    let launch_rate = scale.queued as f64 / (last - offered).as_secs_f64();
    rows.push(
        Row::value(
            format!(
                "launches/s, queue of {} tasks, {} agents",
                scale.queued, scale.agents
            ),
            scale.queued,
            launch_rate,
            "/s",
        )
        .target(scale.target(Target::AtLeast(TARGET_LAUNCHES_PER_SEC))),
    );

    // 2. Updates stored and acknowledged.
    eprintln!("bench: every task reports TASK_RUNNING and TASK_FINISHED ...");
    let start = Instant::now();
    let mut sent = 0;
    for (mode, running) in &cluster.agents {
        sent += mode.finish_held(running.uplink());
    }
    cluster
        .wait_for("updates acknowledged", |c| &c.acknowledged, sent, limit)
        .await?;
    let update_rate = sent as f64 / start.elapsed().as_secs_f64();
    rows.push(
        Row::value(
            "status updates stored and acknowledged/s",
            sent,
            update_rate,
            "/s",
        )
        .target(scale.target(Target::AtLeast(TARGET_UPDATES_PER_SEC))),
    );

    // 3. Many tasks on the cluster; memory; restart and reconciliation.
    eprintln!("bench: {} tasks run on the cluster ...", scale.reconciled);
    cluster.run_at_once.store(true, Ordering::Relaxed);
    let acknowledged_before = cluster.counters.acknowledged.load(Ordering::Relaxed);
    submit(&server, scale.reconciled).await?;
    let limit = Duration::from_secs(1800);
    let goal = scale.queued + scale.reconciled;
    cluster
        .wait_for("tasks launched", |c| &c.launched, goal, limit)
        .await?;
    let goal = acknowledged_before + scale.reconciled;
    cluster
        .wait_for(
            "TASK_RUNNING acknowledged",
            |c| &c.acknowledged,
            goal,
            limit,
        )
        .await?;
    if let Some((first, last)) = cluster.counters.take_launch_times() {
        let rate = scale.reconciled.saturating_sub(1) as f64 / (last - first).as_secs_f64();
        notes.push(format!(
            "launches/s while {} tasks were submitted and started: {rate:.0}",
            scale.reconciled
        ));
    }
    let (rss, _) = server.memory()?;
    rows.push(
        Row::value(
            format!("eremetic RSS, {} tasks on the cluster", scale.reconciled),
            1,
            rss as f64 / MIB,
            "MiB",
        )
        .target(scale.target(Target::AtMost(TARGET_RSS_MIB))),
    );
    eprintln!("bench: kill -9 and restart; reconciliation ...");
    let start = Instant::now();
    server.kill_and_restart().await?;
    let reconciled = reconciliation_complete(&server, Duration::from_secs(600)).await?;
    let elapsed = reconciled - start;
    rows.push(
        Row::value(
            format!(
                "restart to reconciliation complete, {} tasks",
                scale.reconciled
            ),
            scale.reconciled,
            elapsed.as_secs_f64(),
            "s",
        )
        .target(scale.target(Target::AtMost(TARGET_RECONCILE_SECS))),
    );
    let (rss, peak) = server.memory()?;
    notes.push(format!(
        "after the restart and reconciliation: RSS {:.1} MiB, peak {:.1} MiB",
        rss as f64 / MIB,
        peak as f64 / MIB
    ));
    drop(server);
    cluster.master.stop().await;
    Ok((rows, notes))
}

/// When the master's first offer after the agents joined is out (polled every millisecond).
async fn first_offer(master: &FakeMaster) -> Result<Instant> {
    let start = Instant::now();
    while master.offers_outstanding().is_empty() {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(BenchError::Timeout(
                "no offer within 60 s of the agents joining".to_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(Instant::now())
}

/// Submits `count` tasks with [`CLIENTS`] concurrent clients.
async fn submit(server: &Server, count: u64) -> Result<()> {
    let body = tasks::body("sleep 3600", TASK_CPUS, TASK_MEM_MIB)?;
    let submit = Load {
        method: Method::POST,
        uri: uri("/api/v1/task")?,
        body: Some(body),
        expect: 202,
    };
    let outcome = load::run(server.addr(), CLIENTS, &submit, Stop::Count(count)).await?;
    if outcome.succeeded < count {
        return Err(server.failure(format!(
            "accepted {} of {count} submissions ({} errors: {:?})",
            outcome.succeeded, outcome.errors, outcome.error_samples
        )));
    }
    Ok(())
}

/// Polls `/metrics` until the restarted service has reconciled and every run it asked
/// about is answered; returns when.
async fn reconciliation_complete(server: &Server, limit: Duration) -> Result<Instant> {
    let start = Instant::now();
    let mut connection = Connection::open(server.addr()).await?;
    loop {
        let asked = tasks::metric(&mut connection, "eremetic_mesos_reconciliations_total").await?;
        let unanswered =
            tasks::metric(&mut connection, "eremetic_mesos_reconcile_unanswered").await?;
        if asked.unwrap_or(0.0) >= 1.0 && unanswered == Some(0.0) {
            return Ok(Instant::now());
        }
        if start.elapsed() > limit {
            return Err(server.failure(format!(
                "reconciliation not complete after {limit:?} (unanswered: {unanswered:?})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
