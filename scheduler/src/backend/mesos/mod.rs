//! The Mesos backend: tasks run on a Mesos cluster through the v1 scheduler HTTP API, behind
//! the asynchronous [`Backend`] interface.
//!
//! - One connection task ([`connection`]) subscribes (with the stored framework id), reads
//!   the event stream and resubscribes with jittered back-off when it breaks.
//! - The queue's demand is kept; offers are matched against it oldest first
//!   ([`crate::mesos::offers::Leftovers::claim_needs`]: cpus, memory, ports, agent
//!   constraints, maintenance), several runs per offer. Placements go to the core, which
//!   stores `TASK_STAGING` and then launches or abandons each; an offer is accepted once every
//!   placement on it is settled (one ACCEPT with all its launches), or declined when none was
//!   launched. Offers nothing was placed on are declined with a filter; an empty demand
//!   suppresses offers, new demand revives them.
//! - No offer is accepted before the framework id the master granted is stored (its
//!   `Connected` event acknowledged).
//! - Status updates become status events; their ACKNOWLEDGE is sent when the core hands the
//!   token back, after the change is committed. Updates of runs this instance does not know
//!   (an implicit reconciliation answer, a run from before a crash) are reported as unknown
//!   runs, which the core kills.
//! - Kills are KILL calls (the core repeats them); reconciliation is an explicit RECONCILE of
//!   the runs the store knows followed by an implicit one.
//! - What is kept between events is in [`state`].

mod connection;
mod matching;
mod sending;
mod state;
mod tokens;
mod view;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mesos_proto::v1::scheduler::Call;
use mesos_proto::v1::OfferId;
use tokio::sync::{mpsc, Notify};

use super::{
    AckToken, Backend, BackendError, ClusterView, Demand, EventSink, KnownRun, LogSource,
    Placement, Resources, RunEnd, RunId, RunStatus,
};
use crate::mesos::calls::{self, FrameworkSettings};
use crate::mesos::client::{ClientSettings, MesosClient};
use crate::mesos::launch_mode::LaunchMode;
use crate::mesos::task_info::{self, LaunchSettings};
use crate::metrics::Metrics;
use crate::task::{NewTask, Task};
use state::{AgentAddress, HeldOffer, Placed, Queued, State, Wanted};

/// Settings of the Mesos backend.
#[derive(Debug, Clone)]
pub struct MesosConfig {
    /// How to reach the master.
    pub client: ClientSettings,
    /// What the framework tells the master about itself.
    pub framework: FrameworkSettings,
    /// What shapes every `TaskInfo`.
    pub launch: LaunchSettings,
    /// How long the resources of a declined offer are not offered again while tasks wait.
    pub refuse: Duration,
    /// The framework id to register with when the store has none (Eremetic's
    /// `framework_id`).
    pub framework_id: Option<String>,
}

/// Runs tasks on a Mesos cluster. See the [module documentation](self). Cheap to clone.
#[derive(Clone)]
pub struct MesosBackend {
    inner: Arc<Inner>,
}

struct Inner {
    config: MesosConfig,
    metrics: Arc<Metrics>,
    client: MesosClient,
    events: OnceLock<EventSink>,
    state: Mutex<State>,
    /// Wakes the connection task to resubscribe at once (the framework was removed).
    reconnect: Notify,
    /// The receiving end of the call queue, taken by the call task at start.
    queued_calls: Mutex<Option<mpsc::UnboundedReceiver<Queued>>>,
    /// The origin of the receive times in acknowledgement tokens.
    epoch: Instant,
}

/// Least time between two REVIVE calls.
const REVIVE_EVERY: Duration = Duration::from_secs(1);

/// While tasks wait and no offer is held, offers are revived again this often (a safety net:
/// a filter may outlive its reason).
const REVIVE_AGAIN: Duration = Duration::from_secs(10);

/// First back-off of an explicit reconciliation that is not fully answered.
const RECONCILE_BACKOFF_INITIAL: Duration = Duration::from_secs(5);

/// Longest back-off of an explicit reconciliation.
const RECONCILE_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// How often everything is reconciled implicitly.
const IMPLICIT_RECONCILE_EVERY: Duration = Duration::from_secs(600);

/// Longest time an offer is held while the core stores its placements: then the placements
/// still outstanding are given up (their launch reports that it did not happen, and the tasks
/// wait for the next offer) and the offer is accepted with what is ready, or declined.
const OFFER_HOLD_MAX: Duration = Duration::from_secs(30);

/// How often the reconciliation timers are looked at.
const RECONCILE_TICK: Duration = Duration::from_secs(1);

/// The filter of declined offers while nothing waits: the task that comes revives them.
const IDLE_REFUSE: Duration = Duration::from_secs(3600);

impl MesosBackend {
    /// A backend for `config` counting into `metrics`; nothing is sent before the core starts
    /// it.
    pub fn new(config: MesosConfig, metrics: Arc<Metrics>) -> Result<MesosBackend, BackendError> {
        let client = MesosClient::new(config.client.clone())?;
        let (calls, queued) = mpsc::unbounded_channel();
        Ok(MesosBackend {
            inner: Arc::new(Inner {
                config,
                metrics,
                client,
                events: OnceLock::new(),
                state: Mutex::new(State {
                    calls: Some(calls),
                    ..State::default()
                }),
                queued_calls: Mutex::new(Some(queued)),
                reconnect: Notify::new(),
                epoch: Instant::now(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn sink(&self) -> Option<&EventSink> {
        self.inner.events.get()
    }

    /// Queues a call to the master (sent in order on the current subscription; dropped with
    /// a log line when there is none: what matters is sent again — kills by the core, updates
    /// by the master until acknowledged, offers after resubscription).
    fn call_in_background(&self, call: Call) {
        self.state().send(call);
    }

    /// Accepts (or declines) the offer of a settled placement once nothing is outstanding
    /// on it.
    fn settle(&self, state: &mut State, offer_id: &str) {
        let Some(index) = state
            .offers
            .iter()
            .position(|held| held.leftovers.offer_id() == offer_id)
        else {
            return;
        };
        if !state.offers[index].outstanding.is_empty() {
            return;
        }
        let held = state.offers.remove(index);
        let Some(framework_id) = state.framework_id.clone() else {
            return;
        };
        let offer_ids = vec![OfferId {
            value: offer_id.to_owned(),
        }];
        let refuse = self.inner.config.refuse;
        let call = if held.ready.is_empty() {
            self.inner.metrics.mesos_offers("declined", 1);
            calls::decline(&framework_id, offer_ids, refuse)
        } else {
            self.inner.metrics.mesos_offers("used", 1);
            calls::accept(&framework_id, offer_ids, held.ready, refuse)
        };
        state.send(call);
    }

    /// Matches the held offers against the demand; declines offers nothing was placed on.
    /// A queued run as matching needs it.
    fn wanted(&self, item: &Demand<'_>, round: u64) -> Wanted {
        let launch = &self.inner.config.launch;
        // A bad label was refused at submission; the service's mode stands in.
        let mode = LaunchMode::of_task(item.labels, launch.mode).unwrap_or(launch.mode);
        Wanted {
            run: item.run.clone(),
            name: item.run.name(),
            needs: *item.needs,
            constraints: item.constraints.to_vec(),
            not_before: item.not_before,
            executor: (mode == LaunchMode::DeimosExecutor).then_some(Resources {
                cpus: launch.executor.cpus,
                mem_mib: launch.executor.mem_mib,
                ports: 0,
            }),
            seen: round,
        }
    }

    fn match_offers(&self, state: &mut State) -> Vec<Placement> {
        if !state.id_stored || state.session.is_none() {
            return Vec::new();
        }
        let placements = matching::place(state, time::OffsetDateTime::now_utc(), Instant::now());
        let unused: Vec<String> = state
            .offers
            .iter()
            .filter(|held| held.outstanding.is_empty() && held.ready.is_empty())
            .map(|held| held.leftovers.offer_id().to_owned())
            .collect();
        if !unused.is_empty() {
            let refuse = if state.demand.is_empty() {
                IDLE_REFUSE
            } else {
                self.inner.config.refuse
            };
            state
                .offers
                .retain(|held| !unused.iter().any(|id| id == held.leftovers.offer_id()));
            self.inner
                .metrics
                .mesos_offers("declined", unused.len() as u64);
            if let Some(framework_id) = state.framework_id.clone() {
                let offer_ids = unused.into_iter().map(|value| OfferId { value }).collect();
                state.send(calls::decline(&framework_id, offer_ids, refuse));
            }
        }
        placements
    }

    /// SUPPRESS when nothing waits; REVIVE (at most every [`REVIVE_EVERY`]) when a run
    /// appears in the demand that was not there before, or anything waits while suppressed.
    fn steer_offers(&self, state: &mut State, new_run: bool) {
        let Some(framework_id) = state.framework_id.clone() else {
            return;
        };
        let roles = vec![self.inner.config.framework.role.clone()];
        if state.demand.is_empty() {
            if !state.suppressed && state.placed.is_empty() {
                state.suppressed = true;
                state.send(calls::suppress(&framework_id, &roles));
            }
            return;
        }
        let since = state.last_revive.map(|at| at.elapsed());
        let due = since.is_none_or(|since| since >= REVIVE_EVERY);
        let starving = state.offers.is_empty() && since.is_none_or(|since| since >= REVIVE_AGAIN);
        if ((state.suppressed || new_run) && due) || starving {
            state.suppressed = false;
            state.last_revive = Some(Instant::now());
            state.send(calls::revive(&framework_id, &roles));
        }
    }

    /// Starts a reconciliation (after every subscription): every launched run explicitly,
    /// asked again with back-off until each is answered (a master that just failed over stays
    /// silent about agents that have not re-registered), then everything implicitly (the
    /// runs this instance does not know come back as unknown runs).
    fn start_reconciliation(&self, state: &mut State) {
        state.unanswered = state.launched.keys().cloned().collect();
        let asked = state.unanswered.len() as i64;
        self.inner.metrics.mesos_reconcile_unanswered.set(asked);
        state.reconcile_backoff = RECONCILE_BACKOFF_INITIAL;
        self.ask_unanswered(state);
        if let Some(framework_id) = state.framework_id.clone() {
            state.send(calls::reconcile_all(&framework_id));
            self.inner.metrics.mesos_reconciliations.inc();
            state.last_implicit = Some(Instant::now());
        }
    }

    /// The explicit RECONCILE of the unanswered runs; schedules the next one.
    fn ask_unanswered(&self, state: &mut State) {
        let Some(framework_id) = state.framework_id.clone() else {
            return;
        };
        // A run without an agent was never launched on Mesos: the master would answer it
        // lost although it is still to be launched (E-15); `launched` only holds runs with
        // an agent.
        let targets: Vec<calls::ReconcileTarget> = state
            .unanswered
            .iter()
            .filter_map(|name| {
                Some(calls::ReconcileTarget {
                    mesos_task_id: name.clone(),
                    agent_id: state.agent_of(name)?,
                })
            })
            .collect();
        match calls::reconcile(&framework_id, &targets) {
            Some(call) => {
                state.send(call);
                self.inner.metrics.mesos_reconciliations.inc();
                state.next_reconcile = Some(Instant::now() + state.reconcile_backoff);
                state.reconcile_backoff = (state.reconcile_backoff * 2).min(RECONCILE_BACKOFF_MAX);
            }
            None => state.next_reconcile = None,
        }
    }

    /// Settles the offers held longer than [`OFFER_HOLD_MAX`].
    fn release_overdue_offers(&self, state: &mut State, now: Instant) {
        let overdue: Vec<String> = state
            .offers
            .iter()
            .filter(|held| now.duration_since(held.received) >= OFFER_HOLD_MAX)
            .map(|held| held.leftovers.offer_id().to_owned())
            .collect();
        for offer_id in overdue {
            let Some(held) = state
                .offers
                .iter_mut()
                .find(|held| held.leftovers.offer_id() == offer_id)
            else {
                continue;
            };
            let given_up: Vec<String> = held.outstanding.drain().collect();
            if !given_up.is_empty() {
                tracing::warn!(
                    offer = offer_id,
                    runs = given_up.len(),
                    "an offer was held too long while its placements were stored; giving it up"
                );
            }
            for run in given_up {
                state.unplace(&run);
            }
            self.settle(state, &offer_id);
        }
    }

    /// Gives up offers held too long, asks again about unanswered runs when their back-off is
    /// over, and about everything every [`IMPLICIT_RECONCILE_EVERY`]; forever.
    async fn reconcile_loop(&self) {
        let mut tick = tokio::time::interval(RECONCILE_TICK);
        loop {
            tick.tick().await;
            let mut state = self.state();
            if state.session.is_none() {
                continue;
            }
            let now = Instant::now();
            self.release_overdue_offers(&mut state, now);
            if state.next_reconcile.is_some_and(|at| at <= now) {
                let waiting = state.unanswered.len();
                tracing::info!(
                    waiting,
                    "asking the master again about runs it has not answered for"
                );
                self.ask_unanswered(&mut state);
            }
            let implicit_due = state
                .last_implicit
                .is_none_or(|at| now.duration_since(at) >= IMPLICIT_RECONCILE_EVERY);
            if implicit_due {
                if let Some(framework_id) = state.framework_id.clone() {
                    state.send(calls::reconcile_all(&framework_id));
                    self.inner.metrics.mesos_reconciliations.inc();
                    state.last_implicit = Some(now);
                }
            }
        }
    }
}

#[async_trait]
impl Backend for MesosBackend {
    fn name(&self) -> &'static str {
        "mesos"
    }

    fn admissible(&self, task: &NewTask) -> Result<(), String> {
        // Resources and constraints: any agent of the cluster may fit it; one that no agent
        // can ever satisfy waits with its reason in its document. The launch mode must exist
        // and be able to run the task.
        let mode = LaunchMode::of_task(&task.labels, self.inner.config.launch.mode)?;
        mode.check(task)
    }

    fn total(&self) -> Resources {
        self.free()
    }

    fn free(&self) -> Resources {
        let state = self.state();
        state.offers.iter().map(|held| held.leftovers.free()).fold(
            Resources {
                cpus: 0.0,
                mem_mib: 0.0,
                ports: 0,
            },
            |sum, free| Resources {
                cpus: sum.cpus + free.cpus,
                mem_mib: sum.mem_mib + free.mem_mib,
                ports: sum.ports + free.ports,
            },
        )
    }

    async fn start(
        &self,
        events: EventSink,
        framework_id: Option<String>,
    ) -> Result<(), BackendError> {
        if self.inner.events.set(events).is_err() {
            return Ok(());
        }
        {
            let mut state = self.state();
            // The stored id wins over the configured one: it is the one the master granted.
            state.framework_id = framework_id.or_else(|| self.inner.config.framework_id.clone());
        }
        let queued = self
            .inner
            .queued_calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(queued) = queued {
            let this = self.clone();
            tokio::spawn(async move { this.call_loop(queued).await });
        }
        let this = self.clone();
        tokio::spawn(async move { this.connection_loop().await });
        let this = self.clone();
        tokio::spawn(async move { this.reconcile_loop().await });
        Ok(())
    }

    fn offer_demand(&self, demand: &mut dyn Iterator<Item = Demand<'_>>) -> Vec<Placement> {
        let mut state = self.state();
        state.demand_round += 1;
        let round = state.demand_round;
        let mut new_run = false;
        for item in demand {
            if let Some(known) = state.demand.get_mut(&item.seq) {
                if known.run == *item.run {
                    known.seen = round;
                    known.not_before = item.not_before;
                    continue;
                }
            }
            new_run = true;
            let wanted = self.wanted(&item, round);
            state.demand.insert(item.seq, wanted);
        }
        let mut gone = Vec::new();
        state.demand.retain(|_, wanted| {
            let current = wanted.seen == round;
            if !current {
                gone.push(wanted.run.task.to_string());
            }
            current
        });
        for task in gone {
            state.waiting.remove(&task);
        }
        self.steer_offers(&mut state, new_run);
        self.match_offers(&mut state)
    }

    fn launch(&self, placement: Placement, task: Task) {
        let name = placement.run.name();
        let mut state = self.state();
        let Some(placed) = state.unplace(&name) else {
            drop(state);
            let reason = "its offer was rescinded or the connection to the master was lost \
                          before the launch"
                .to_owned();
            if let Some(sink) = self.sink() {
                sink.status(placement.run, RunStatus::NotLaunched { reason }, None);
            }
            return;
        };
        let built = task_info::task_info(
            &task,
            placement.run.attempt,
            &placed.claim,
            placed.executor.as_ref(),
            &self.inner.config.launch,
        );
        let offer_id = placed.offer_id.clone();
        match built {
            Ok(info) => {
                state.launched_on(name.clone(), &placed.claim.agent_id);
                if let Some(held) = state
                    .offers
                    .iter_mut()
                    .find(|held| held.leftovers.offer_id() == offer_id)
                {
                    held.outstanding.remove(&name);
                    held.ready.push(info);
                }
            }
            Err(error) => {
                if let Some(held) = state
                    .offers
                    .iter_mut()
                    .find(|held| held.leftovers.offer_id() == offer_id)
                {
                    held.outstanding.remove(&name);
                }
                if let Some(sink) = self.sink() {
                    let end = RunEnd::NotStarted {
                        reason: error.to_string(),
                    };
                    sink.status(placement.run, RunStatus::Ended(end), None);
                }
            }
        }
        self.settle(&mut state, &offer_id);
    }

    fn abandon(&self, placement: Placement) {
        let name = placement.run.name();
        let mut state = self.state();
        let Some(placed) = state.unplace(&name) else {
            return;
        };
        if let Some(held) = state
            .offers
            .iter_mut()
            .find(|held| held.leftovers.offer_id() == placed.offer_id)
        {
            held.outstanding.remove(&name);
        }
        self.settle(&mut state, &placed.offer_id);
    }

    fn kill(&self, run: &RunId, grace: Duration) {
        let name = run.name();
        let (framework_id, agent) = {
            let state = self.state();
            (state.framework_id.clone(), state.agent_of(&name))
        };
        let Some(framework_id) = framework_id else {
            return;
        };
        let call = calls::kill(&framework_id, &name, agent.as_deref(), Some(grace));
        self.call_in_background(call);
    }

    fn acknowledge(&self, ack: AckToken) {
        if let Some(framework_id) = ack.0.strip_prefix("framework\n") {
            let placements = {
                let mut state = self.state();
                if state.framework_id.as_deref() != Some(framework_id) {
                    return;
                }
                state.id_stored = true;
                self.match_offers(&mut state)
            };
            if let Some(sink) = self.sink() {
                for placement in placements {
                    sink.send(super::BackendEvent::Placed(placement));
                }
            }
            return;
        }
        let Some((status, received)) = tokens::acknowledged_status(&ack.0, self.inner.epoch) else {
            tracing::warn!(token = %ack.0, "an acknowledgement token this backend did not make");
            return;
        };
        let state = self.state();
        if let Some(call) = state
            .framework_id
            .as_deref()
            .and_then(|framework_id| calls::acknowledge(framework_id, &status))
        {
            state.send_acknowledge(call, received);
        }
    }

    async fn reconcile(&self, runs: Vec<KnownRun>) -> Result<(), BackendError> {
        let mut state = self.state();
        for known in &runs {
            if let Some(agent) = &known.agent_id {
                state.launched_on(known.run.name(), agent);
            }
        }
        // Subscribed already: asked now; else at the subscription, which reconciles every
        // launched run.
        if state.session.is_some() {
            self.start_reconciliation(&mut state);
        }
        Ok(())
    }

    fn waiting_reason(&self, task: &crate::task::TaskId) -> Option<String> {
        let state = self.state();
        state.session.as_ref()?;
        Some(
            state
                .waiting
                .get(task.as_str())
                .cloned()
                .unwrap_or_else(|| "waiting for an offer from the Mesos master".to_owned()),
        )
    }

    fn cluster_view(&self) -> ClusterView {
        let detected = self.inner.client.detected_leader();
        let state = self.state();
        ClusterView::Mesos(state.view.view(
            &self.inner.config.client.master,
            detected,
            state.framework_id.clone(),
            state.launched.values().map(|run| &*run.agent),
        ))
    }

    fn log_source(&self, task: &Task) -> Option<LogSource> {
        let state = self.state();
        let framework_id = state.framework_id.as_deref()?;
        let agent = task.agent_id.as_deref()?;
        // The agent's address from its offers; after a restart, before any offer from it,
        // the stored host and port (the agent's default port without one).
        let url = state
            .agents
            .get(agent)
            .map(|address| address.url.clone())
            .or_else(|| {
                task.hostname
                    .as_ref()
                    .map(|host| format!("http://{host}:{}", task.agent_port.unwrap_or(5051)))
            })?;
        let run = crate::plan::run_id(&task.id, task.current_attempt());
        Some(LogSource::Agent {
            url,
            path: format!("/frameworks/{framework_id}/executors/{run}/runs/latest"),
        })
    }
}
