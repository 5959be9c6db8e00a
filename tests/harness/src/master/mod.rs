//! [`FakeMaster`]: the scheduler side of a Mesos master's v1 HTTP API
//! (`POST /api/v1/scheduler`, also `/master/api/v1/scheduler`), faithful to
//! `Master::Http::scheduler` and the master's framework, offer and task
//! handling (protocol reference §2 and §3).
//!
//! Request rules, in the master's order: 404 for other paths; with
//! [`MasterSetup::http_framework_credentials`] 401 (`WWW-Authenticate:
//! Basic realm="mesos-master-scheduler"`) without valid Basic credentials;
//! 307 to the leader (`Location: //<leader hostname>:<port><path>[?query]`)
//! or 503 `No leader elected` when this master does not lead
//! ([`FakeMaster::set_leader`], [`FakeMaster::set_leader_named`]); 405
//! (with `Allow: POST`) for other methods; 400 without `Content-Type`; 415
//! unless it is exactly `application/json` or `application/x-protobuf`; 400
//! for an undecodable body or missing required fields; 400 for
//! `validation::scheduler::call::validate` failures; for SUBSCRIBE 406 when
//! `Accept` allows neither type and 400 when it carries `Mesos-Stream-Id`;
//! for other calls 400 `Framework cannot be found`, 403 `Framework is not
//! subscribed` (disconnected), 400 without or with another `Mesos-Stream-Id`,
//! 501 for UNKNOWN, else 202.
//!
//! SUBSCRIBE answers 200 with `Mesos-Stream-Id` and a RecordIO stream (JSON
//! if acceptable, else protobuf): SUBSCRIBED (new framework id
//! `<master id>-NNNN`, or the given one on re-subscription), a HEARTBEAT at
//! once and every [`MasterSetup::heartbeat_interval`], OFFERS for the free
//! resources of the agents added with [`FakeMaster::add_agent`]. A second
//! SUBSCRIBE with the same id fails the old stream over (`ERROR "Framework
//! failed over"`); a removed framework gets `ERROR "Framework has been
//! removed"`. When the stream drops ([`FakeMaster::disconnect_framework`] or
//! the client closes it) the framework's offers go and its
//! `failover_timeout` starts; re-subscribing in time keeps its tasks,
//! otherwise it is removed and its tasks killed.
//!
//! TaskInfos are validated as `validation::task::validate` does (texts in
//! TASK_ERROR updates, `validation.rs`); a DOCKER command task whose run
//! options the docker executor cannot build gets TASK_STARTING then
//! TASK_FAILED from it. Agents can become unreachable, be marked gone and
//! re-register ([`FakeMaster::mark_unreachable`], [`FakeMaster::mark_gone`],
//! [`FakeMaster::reregister_agent`]) with the updates, RESCINDs and FAILUREs
//! the master sends; offers time out after [`MasterSetup::offer_timeout`].
//! `/state` and `/redirect` (also under `/master/`) answer as the master's.
//!
//! Tasks launched by ACCEPT are TASK_STAGING; the test plays the agent and
//! executor with [`FakeMaster::update_task`]: updates carry a uuid, are
//! delivered one at a time per task and retried with doubling backoff until
//! ACKNOWLEDGEd. Master-made updates (invalid offers, invalid tasks,
//! reconciliation) have no uuid.

mod agents;
mod auth;
mod endpoints;
mod http;
mod index;
#[cfg(test)]
mod index_tests;
mod link;
mod offers;
mod reconcile;
mod resources;
mod rules;
mod setup;
mod state;
mod task_table;
mod tasks;
mod validation;
mod zk;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use mesos_proto::v1::scheduler::{call, Call, Event};
use mesos_proto::v1::{task_status, Offer, TaskState, TaskStatus};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use crate::common::codec::{ContentType, APPLICATION_JSON, APPLICATION_PROTOBUF};
pub use crate::common::http::Rejection;
pub use http::MESOS_STREAM_ID;
pub use link::{AgentLink, AgentMessage, AgentReporter};
pub use setup::{Acknowledgement, AgentSpec, KillRequest, MasterSetup, TaskView};
pub use zk::{ZooKeeperElection, MASTER_INFO_JSON_LABEL};

// For the agent modes of `crate::cluster`: the docker executor's run-option
// rules and the uuids the master uses.
pub(crate) use validation::docker_run_options;

use crate::common::http::ServerHandle;
use crate::error::HarnessError;
use setup::Leadership;
use state::MasterState;

/// How often timers (heartbeats, retries, failover timeouts, allocation)
/// and closed streams are checked.
const TICK: Duration = Duration::from_millis(10);

/// State shared by the server tasks, the ticker and the test-facing handle.
#[derive(Debug)]
struct Shared {
    state: Mutex<MasterState>,
    changed: watch::Sender<()>,
}

impl Shared {
    /// Locks the state; poisoning is ignored (see the agent's `Shared`).
    fn lock(&self) -> MutexGuard<'_, MasterState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self) {
        self.changed.send_replace(());
    }
}

/// A fake Mesos master serving the v1 scheduler API on
/// `127.0.0.1:<ephemeral port>`.
#[derive(Debug)]
pub struct FakeMaster {
    shared: Arc<Shared>,
    address: SocketAddr,
    /// `https` with [`MasterSetup::tls`], else `http`.
    scheme: &'static str,
    server: Option<ServerHandle>,
    ticker: JoinHandle<()>,
    /// The ZooKeeper membership ([`MasterSetup::zookeeper`]).
    contender: Option<zk::Contender>,
}

impl FakeMaster {
    /// Starts a leading master.
    pub async fn start(setup: MasterSetup) -> Result<FakeMaster, HarnessError> {
        let wildcard = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = crate::common::http::bind(wildcard)?;
        let address = listener.local_addr().map_err(|source| HarnessError::Bind {
            address: wildcard,
            source,
        })?;
        let (changed, _) = watch::channel(());
        let election = setup.zookeeper.clone();
        let tls = setup
            .tls
            .as_ref()
            .map(|identity| identity.acceptor())
            .transpose()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            state: Mutex::new(MasterState::new(setup, address, Instant::now())),
            changed,
        });
        let for_server = Arc::clone(&shared);
        let server = crate::common::http::serve_with(listener, tls, move |request| {
            http::handle(request, Arc::clone(&for_server))
        });
        let ticker = tokio::spawn(tick_loop(Arc::downgrade(&shared)));
        let mut master = FakeMaster {
            shared,
            address,
            scheme,
            server: Some(server),
            ticker,
            contender: None,
        };
        if let Some(election) = election {
            // Nobody is known to lead until the election is read.
            master.shared.lock().leadership = setup::Leadership::None;
            let info = master.shared.lock().master_info();
            let shared = Arc::clone(&master.shared);
            master.contender = Some(zk::Contender::join(election, &info, shared).await?);
        }
        Ok(master)
    }

    /// This master's member znode in ZooKeeper (`json.info_0000000003`),
    /// when it contends ([`MasterSetup::zookeeper`]).
    pub fn zookeeper_node(&self) -> Option<String> {
        self.contender.as_ref().map(|c| c.node().to_owned())
    }

    /// Whether this master leads (alone, or elected in ZooKeeper).
    pub fn is_leading(&self) -> bool {
        self.shared.lock().leadership == setup::Leadership::Leading
    }

    /// Waits until this master leads (elected in ZooKeeper).
    pub async fn wait_leading(&self, timeout: Duration) -> Result<(), HarnessError> {
        self.wait_until("this master to lead", timeout, |state| {
            (state.leadership == setup::Leadership::Leading).then_some(())
        })
        .await
    }

    /// `ip:port` of the master.
    pub fn endpoint(&self) -> SocketAddr {
        self.address
    }

    /// `http://ip:port/api/v1/scheduler` (`https://` with [`MasterSetup::tls`]).
    pub fn scheduler_url(&self) -> String {
        format!("{}://{}/api/v1/scheduler", self.scheme, self.address)
    }

    /// `MasterInfo.id`, the prefix of framework and offer ids.
    pub fn master_id(&self) -> String {
        self.shared.lock().master_id.clone()
    }

    /// Who leads: `Some(self.endpoint())` = this master (the default);
    /// `Some(other)` = requests are redirected (307) there, the leader's
    /// MasterInfo hostname being its IP address (as a master started with
    /// `--hostname=<ip>`; [`FakeMaster::set_leader_named`] gives a host
    /// name); `None` = no leader (503). Losing leadership drops every
    /// subscription stream, as a real master's process ends.
    pub fn set_leader(&self, leader: Option<SocketAddr>) {
        let named = leader.map(|address| (address.ip().to_string(), address));
        self.set_leadership(named);
    }

    /// Another master leads, whose MasterInfo has this `hostname` and
    /// `address`: redirects name it by host name, as `Master::Http::redirect`
    /// does (`//<hostname>:<port><path>`).
    pub fn set_leader_named(&self, hostname: &str, address: SocketAddr) {
        self.set_leadership(Some((hostname.to_owned(), address)));
    }

    fn set_leadership(&self, leader: Option<(String, SocketAddr)>) {
        let mut state = self.shared.lock();
        state.leadership = match leader {
            Some((_, address)) if address == self.address => Leadership::Leading,
            Some((hostname, address)) => Leadership::Other { hostname, address },
            None => Leadership::None,
        };
        if state.leadership != Leadership::Leading {
            state.drop_all_connections(Instant::now());
        }
        drop(state);
        self.shared.notify();
    }

    /// Registers a scripted agent; its resources are offered at once.
    pub fn add_agent(&self, spec: AgentSpec) -> Result<(), HarnessError> {
        let mut state = self.shared.lock();
        let known = state.agents.contains(&spec.agent_id)
            || state.unreachable_agents.contains(&spec.agent_id)
            || state.gone_agents.contains(&spec.agent_id)
            || state.recovered_agents.contains(&spec.agent_id);
        if known {
            return Err(HarnessError::DuplicateAgent {
                agent_id: spec.agent_id,
            });
        }
        state.add_agent(spec, Instant::now());
        drop(state);
        self.shared.notify();
        Ok(())
    }

    /// The agent stops answering the master's health checks and is marked
    /// unreachable (`Master::markUnreachable`): each task the master tracks
    /// there gets TASK_UNREACHABLE (PARTITION_AWARE frameworks) or
    /// TASK_LOST, reason REASON_AGENT_REMOVED, source MASTER, message
    /// "health check timed out", `unreachable_time` set, no uuid; then its
    /// offers are rescinded and every connected framework gets FAILURE with
    /// the agent id. The agent keeps its tasks and unacknowledged updates
    /// ([`FakeMaster::reregister_agent`] brings them back); updates the test
    /// sends meanwhile wait on the agent.
    pub fn mark_unreachable(&self, agent_id: &str) -> Result<(), HarnessError> {
        self.agent_operation("mark unreachable", agent_id, |state| {
            state.mark_unreachable(agent_id)
        })
    }

    /// The operator marks the agent gone (`Master::markGone`). A registered
    /// agent's tasks get TASK_GONE_BY_OPERATOR (REASON_AGENT_REMOVED_BY_OPERATOR)
    /// or, for frameworks that are not PARTITION_AWARE, TASK_LOST
    /// (REASON_AGENT_REMOVED), message "Agent has been marked gone"; offers
    /// are rescinded and FAILURE sent as for an unreachable agent. An
    /// unreachable agent's tasks get the same updates and nothing else. The
    /// agent is shut down: it can never re-register. Marking a gone agent
    /// again does nothing.
    pub fn mark_gone(&self, agent_id: &str) -> Result<(), HarnessError> {
        self.agent_operation("mark gone", agent_id, |state| state.mark_gone(agent_id))
    }

    /// An unreachable agent re-registers (`Master::__reregisterSlave`): each
    /// task it still runs comes back — for every framework, including those
    /// told TASK_LOST — announced by an update in the agent's latest state
    /// (source MASTER, REASON_AGENT_REREGISTERED, "Unreachable agent
    /// re-reregistered", no uuid); then its unacknowledged updates are
    /// re-sent and its free resources offered.
    pub fn reregister_agent(&self, agent_id: &str) -> Result<(), HarnessError> {
        self.agent_operation("re-register", agent_id, |state| {
            state.reregister_agent(agent_id, Instant::now())
        })
    }

    /// This master becomes the leader after a master failover
    /// (`Master::_recover`): every subscription stream ends (schedulers
    /// re-subscribe, with their framework ids), offers are gone, and the
    /// registered agents are known only from the registry until
    /// [`FakeMaster::reregister_agent`]: their tasks are unknown (no
    /// answer to reconciliation naming them, or naming no agent while any
    /// is missing; implicit reconciliation leaves them out), their updates
    /// wait, and after [`MasterSetup::agent_reregister_timeout`] the missing
    /// ones are marked unreachable with FAILURE only. A recovered agent
    /// re-registers silently: its tasks become known without updates.
    pub fn fail_over(&self) {
        self.shared.lock().master_failover(Instant::now());
        self.shared.notify();
    }

    /// The agent reports that custom executor `executor_id` exited with
    /// wait status `status` (`Master::exitedExecutor`): the master forgets
    /// the executor (its resources are free; a later task naming it starts
    /// a new one) and sends FAILURE with the agent id, executor id and
    /// status to its framework. The executor's tasks are untouched: the
    /// test sends their terminal updates as the agent would. Refused for an
    /// agent that is not registered or an executor the master does not
    /// track as running there (command tasks have none).
    pub fn executor_exited(
        &self,
        agent_id: &str,
        executor_id: &str,
        status: i32,
    ) -> Result<(), HarnessError> {
        self.agent_operation("report an exited executor on", agent_id, |state| {
            state.executor_exited(agent_id, executor_id, status)
        })
    }

    fn agent_operation(
        &self,
        operation: &'static str,
        agent_id: &str,
        apply: impl FnOnce(&mut MasterState) -> Result<(), agents::AgentRefusal>,
    ) -> Result<(), HarnessError> {
        let result = apply(&mut self.shared.lock());
        self.shared.notify();
        result.map_err(|refusal| HarnessError::AgentNotApplicable {
            operation,
            agent_id: agent_id.to_owned(),
            reason: match refusal {
                agents::AgentRefusal::Unknown => "the master has no such agent".to_owned(),
                agents::AgentRefusal::WrongState(state) => format!("the agent is {state}"),
                agents::AgentRefusal::NoSuchExecutor => {
                    "the master tracks no running custom executor with that id there".to_owned()
                }
            },
        })
    }

    /// Attaches a running agent (known to this master in any state): from
    /// now on the master sends it [`AgentMessage`]s (launches, kills,
    /// acknowledgements, shutdowns) instead of the test playing its
    /// executors, and it reports through the returned [`AgentLink`]. A
    /// second attachment replaces the first.
    pub fn attach_agent(&self, agent_id: &str) -> Result<AgentLink, HarnessError> {
        let known = {
            let state = self.shared.lock();
            state.agents.contains(agent_id)
                || state.unreachable_agents.contains(agent_id)
                || state.recovered_agents.contains(agent_id)
        };
        if !known {
            return Err(HarnessError::AgentNotApplicable {
                operation: "attach",
                agent_id: agent_id.to_owned(),
                reason: "the master has no such agent (add it first)".to_owned(),
            });
        }
        Ok(AgentLink::attach(&self.shared, agent_id))
    }

    /// The attached agent of `previous` (reporting to this master or to
    /// another one, e.g. the leader before a failover) re-registers here
    /// (`ReregisterSlaveMessage`): with another master, the tasks, their
    /// frameworks and the unacknowledged updates the agent holds are
    /// reported first; then as [`FakeMaster::reregister_agent`] (nothing
    /// happens for an agent this master has registered). Returns the
    /// agent's new link.
    pub fn reregister_with(&self, previous: &AgentReporter) -> Result<AgentLink, HarnessError> {
        let agent_id = previous.agent_id().to_owned();
        if !Weak::ptr_eq(&previous.master(), &Arc::downgrade(&self.shared)) {
            let records = previous.records();
            self.shared.lock().import_agent_records(records);
        }
        let link = self.attach_agent(&agent_id)?;
        if !self.shared.lock().agent_registered(&agent_id) {
            self.reregister_agent(&agent_id)?;
        }
        Ok(link)
    }

    /// Rescinds an outstanding offer (RESCIND event to its framework).
    pub fn rescind(&self, offer_id: &str) -> Result<(), HarnessError> {
        let rescinded = self.shared.lock().rescind(offer_id);
        self.shared.notify();
        if rescinded {
            Ok(())
        } else {
            Err(HarnessError::UnknownOffer {
                offer_id: offer_id.to_owned(),
            })
        }
    }

    /// Plays the task's executor: a status update (SOURCE_EXECUTOR) in
    /// `state`, delivered reliably. Returns its uuid.
    pub fn update_task(
        &self,
        task_id: &str,
        state: TaskState,
        reason: Option<task_status::Reason>,
        message: Option<&str>,
    ) -> Result<Vec<u8>, HarnessError> {
        self.send_status(
            task_id,
            TaskStatus {
                state: state as i32,
                source: Some(task_status::Source::Executor as i32),
                reason: reason.map(|r| r as i32),
                message: message.map(str::to_owned),
                ..Default::default()
            },
        )
    }

    /// A status update as the agent forwards it, with any source, data,
    /// health or container status; `task_id`, `agent_id`, `executor_id`,
    /// `timestamp` and `uuid` are filled in when unset. Returns the uuid.
    pub fn send_status(&self, task_id: &str, status: TaskStatus) -> Result<Vec<u8>, HarnessError> {
        let result = self
            .shared
            .lock()
            .agent_update(task_id, status, Instant::now());
        self.shared.notify();
        result.map_err(|reason| HarnessError::InvalidTaskUpdate {
            task_id: task_id.to_owned(),
            reason,
        })
    }

    /// Sends any event to a connected framework.
    pub fn send_event(&self, framework_id: &str, event: Event) -> Result<(), HarnessError> {
        let sent = self.shared.lock().send_event(framework_id, event);
        self.shared.notify();
        if sent {
            Ok(())
        } else {
            Err(HarnessError::FrameworkNotConnected {
                framework_id: framework_id.to_owned(),
            })
        }
    }

    /// Drops the subscription stream of every connected framework (as a
    /// broken connection): offers go, failover timeouts start. Returns the
    /// framework ids disconnected.
    pub fn disconnect_framework(&self) -> Result<Vec<String>, HarnessError> {
        let mut state = self.shared.lock();
        let connected: Vec<String> = state
            .frameworks
            .iter()
            .filter(|f| f.connection.is_some())
            .map(|f| f.id.clone())
            .collect();
        if connected.is_empty() {
            return Err(HarnessError::FrameworkNotConnected {
                framework_id: "<any>".to_owned(),
            });
        }
        let now = Instant::now();
        for id in &connected {
            state.disconnect(id, now);
        }
        drop(state);
        self.shared.notify();
        Ok(connected)
    }

    /// Ids of the frameworks with an open subscription stream.
    pub fn connected_frameworks(&self) -> Vec<String> {
        let state = self.shared.lock();
        let connected = state.frameworks.iter().filter(|f| f.connection.is_some());
        connected.map(|f| f.id.clone()).collect()
    }

    /// Every call that decoded, in arrival order, including rejected ones.
    /// Empty without [`MasterSetup::record_history`].
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// Every non-2xx answer given, in order.
    /// Empty without [`MasterSetup::record_history`].
    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.lock().rejections.clone()
    }

    /// Every event sent, with the framework id it went to.
    /// Empty without [`MasterSetup::record_history`].
    pub fn events(&self) -> Vec<(String, Event)> {
        self.shared.lock().events.clone()
    }

    /// Offers made and not yet accepted, declined, rescinded or removed.
    pub fn offers_outstanding(&self) -> Vec<Offer> {
        self.shared.lock().offers.values().cloned().collect()
    }

    /// Every task launched, with its latest state (without
    /// [`MasterSetup::record_history`], removed tasks beyond the bounded
    /// completed ones are forgotten).
    pub fn tasks(&self) -> Vec<TaskView> {
        self.shared
            .lock()
            .tasks
            .values()
            .map(tasks::Task::view)
            .collect()
    }

    /// The most recent task with this id.
    pub fn task(&self, task_id: &str) -> Option<TaskView> {
        let state = self.shared.lock();
        let latest = state.tasks.with_id(task_id).next_back();
        latest.map(|(_, task)| task.view())
    }

    /// KILLs forwarded to agents.
    /// Empty without [`MasterSetup::record_history`].
    pub fn kills(&self) -> Vec<KillRequest> {
        self.shared.lock().kills.clone()
    }

    /// ACKNOWLEDGEs received (matched or ignored).
    /// Empty without [`MasterSetup::record_history`].
    pub fn acknowledgements(&self) -> Vec<Acknowledgement> {
        self.shared.lock().acknowledgements.clone()
    }

    /// MESSAGE calls' payloads (framework → executor).
    /// Empty without [`MasterSetup::record_history`].
    pub fn framework_messages(&self) -> Vec<call::Message> {
        self.shared.lock().messages.clone()
    }

    /// SHUTDOWN calls received.
    /// Empty without [`MasterSetup::record_history`].
    pub fn shutdowns(&self) -> Vec<call::Shutdown> {
        self.shared.lock().shutdowns.clone()
    }

    /// The first call (received so far or within `timeout`) for which
    /// `predicate` holds (needs [`MasterSetup::record_history`]: without
    /// it no call is kept and this times out).
    pub async fn wait_for_call<P>(
        &self,
        predicate: P,
        timeout: Duration,
    ) -> Result<Call, HarnessError>
    where
        P: Fn(&Call) -> bool,
    {
        self.wait_until("a matching scheduler call", timeout, |state| {
            state.calls.iter().find(|c| predicate(c)).cloned()
        })
        .await
    }

    /// Waits until task `task_id` exists in `state`.
    pub async fn wait_for_task_state(
        &self,
        task_id: &str,
        state: TaskState,
        timeout: Duration,
    ) -> Result<TaskView, HarnessError> {
        let what = format!("task {task_id} in {}", state.as_str_name());
        self.wait_until(&what, timeout, |master| {
            let (_, task) = master.tasks.with_id(task_id).next_back()?;
            (task.state == state).then(|| task.view())
        })
        .await
    }

    /// Waits until some framework has an open subscription; returns its id.
    pub async fn wait_subscribed(&self, timeout: Duration) -> Result<String, HarnessError> {
        self.wait_until("a subscribed framework", timeout, |state| {
            let framework = state.frameworks.iter().find(|f| f.connection.is_some())?;
            Some(framework.id.clone())
        })
        .await
    }

    /// Stops serving: the ZooKeeper membership is withdrawn (the next member
    /// leads), then the listener, every connection and the timers end.
    pub async fn stop(mut self) {
        if let Some(contender) = self.contender.take() {
            if let Err(error) = contender.withdraw().await {
                // The session's end removes the node all the same.
                eprintln!("fake master: {error}");
            }
        }
        self.ticker.abort();
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&MasterState) -> Option<T>,
    ) -> Result<T, HarnessError> {
        let mut changed = self.shared.changed.subscribe();
        let wait = async {
            loop {
                if let Some(found) = check(&self.shared.lock()) {
                    return found;
                }
                // The sender lives as long as `self`.
                let _ = changed.changed().await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| HarnessError::Timeout {
                what: what.to_owned(),
                timeout,
            })
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

/// Runs the state's timers every [`TICK`] while the master exists.
async fn tick_loop(shared: Weak<Shared>) {
    loop {
        tokio::time::sleep(TICK).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.lock().tick(Instant::now());
        shared.notify();
    }
}
