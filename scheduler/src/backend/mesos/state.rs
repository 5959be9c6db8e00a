//! What the Mesos backend keeps between events: the subscription, held offers, the queue's
//! demand, placements, launched runs, reconciliation progress and the calls waiting their
//! turn.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesos_client::calls::CallName;
use mesos_proto::v1::scheduler::Call;
use mesos_proto::v1::TaskInfo;
use tokio::sync::mpsc;

use super::view;
use crate::backend::{Resources, RunId};
use crate::mesos::client::Session;
use crate::mesos::offers::{Claim, Leftovers};
use crate::task::AgentConstraint;

/// A call to the master waiting its turn.
pub(super) struct Queued {
    pub(super) call: Call,
    /// For an ACKNOWLEDGE: when its update was received (the acknowledgement latency).
    pub(super) update_received: Option<Instant>,
}

/// A queued run as the backend keeps it between offers.
#[derive(Debug, Clone)]
pub(super) struct Wanted {
    pub(super) run: RunId,
    /// `run.name()`, the Mesos task id (kept: matching looks it up for every run).
    pub(super) name: String,
    pub(super) needs: Resources,
    pub(super) constraints: Vec<AgentConstraint>,
    pub(super) not_before: Option<Instant>,
    /// What the executor needs on top of the task (launch mode `deimos-executor`).
    pub(super) executor: Option<Resources>,
    /// The last demand round that named it.
    pub(super) seen: u64,
}

/// An offer held while placements on it are being staged by the core.
pub(super) struct HeldOffer {
    pub(super) leftovers: Leftovers,
    /// Runs placed on it whose launch or abandonment has not come yet.
    pub(super) outstanding: HashSet<String>,
    /// `TaskInfo`s of the launched placements.
    pub(super) ready: Vec<TaskInfo>,
    /// When it arrived (an offer is never held longer than [`OFFER_HOLD_MAX`]).
    pub(super) received: Instant,
}

/// Where an agent is, from its offers' `url`.
#[derive(Debug, Clone)]
pub(super) struct AgentAddress {
    /// `http://host:port`.
    pub(super) url: String,
    /// Its IP address, when the master says it.
    pub(super) ip: Option<String>,
    /// Its port.
    pub(super) port: Option<u16>,
}

/// The capacity an emptied table of placements keeps.
pub(super) const SHRUNK_CAPACITY: usize = 64;

/// A run launched on an agent (one per active task: kept small).
#[derive(Debug, Clone)]
pub(super) struct LaunchedRun {
    /// The agent's id, shared with the other runs on that agent.
    pub(super) agent: Arc<str>,
    /// It reported `TASK_RUNNING`.
    pub(super) running: bool,
}

/// A placement handed to the core.
pub(super) struct Placed {
    pub(super) offer_id: String,
    pub(super) claim: Claim,
    /// The executor's resources (launch mode `deimos-executor`).
    pub(super) executor: Option<Claim>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) framework_id: Option<String>,
    /// The framework id is stored by the core: offers may be accepted.
    pub(super) id_stored: bool,
    pub(super) session: Option<Session>,
    pub(super) offers: Vec<HeldOffer>,
    /// The queue's demand by its sequence number (queue order), kept from one round to the
    /// next: a round only adds what is new and drops what left the queue, so its cost does
    /// not grow with a large, unchanged queue.
    pub(super) demand: BTreeMap<u64, Wanted>,
    /// The number of the latest demand round.
    pub(super) demand_round: u64,
    pub(super) suppressed: bool,
    pub(super) last_revive: Option<Instant>,
    pub(super) placed: HashMap<String, Placed>,
    /// Launched runs by Mesos task id: their agents, whether they reported `TASK_RUNNING`.
    pub(super) launched: HashMap<String, LaunchedRun>,
    /// Every agent id a launched run named, once (runs share them).
    pub(super) agent_ids: HashSet<Arc<str>>,
    /// Launched runs asked about in the current reconciliation and not answered yet.
    pub(super) unanswered: HashSet<String>,
    /// When the explicit reconciliation of `unanswered` is asked again.
    pub(super) next_reconcile: Option<Instant>,
    /// The current back-off of the explicit reconciliation.
    pub(super) reconcile_backoff: Duration,
    /// When the last implicit reconciliation was asked.
    pub(super) last_implicit: Option<Instant>,
    /// Agents' HTTP addresses, from their offers.
    pub(super) agents: HashMap<String, AgentAddress>,
    /// Why queued tasks were not placed in the latest matching, by task id.
    pub(super) waiting: HashMap<String, String>,
    /// Calls to the master, sent one after the other in this order by the call task (a
    /// DECLINE must reach the master before the REVIVE that follows it, or its filter would
    /// outlive the revival).
    pub(super) calls: Option<mpsc::UnboundedSender<Queued>>,
    /// The connection as the cluster overview shows it, and the agents seen in offers.
    pub(super) view: view::Seen,
}

impl State {
    /// Records a launched run on `agent`.
    pub(super) fn launched_on(&mut self, name: String, agent: &str) {
        let agent = match self.agent_ids.get(agent) {
            Some(shared) => Arc::clone(shared),
            None => {
                let shared: Arc<str> = Arc::from(agent);
                self.agent_ids.insert(Arc::clone(&shared));
                shared
            }
        };
        let run = LaunchedRun {
            agent,
            running: false,
        };
        self.launched.insert(name, run);
    }

    /// Takes a placement out; an emptied table gives back what a burst made it grow to.
    pub(super) fn unplace(&mut self, name: &str) -> Option<Placed> {
        let placed = self.placed.remove(name);
        if self.placed.is_empty() {
            self.placed.shrink_to(SHRUNK_CAPACITY);
        }
        placed
    }

    /// The agent of a launched run.
    pub(super) fn agent_of(&self, name: &str) -> Option<String> {
        self.launched.get(name).map(|run| run.agent.to_string())
    }

    /// Queues a call to the master.
    pub(super) fn send(&self, call: Call) {
        self.send_queued(Queued {
            call,
            update_received: None,
        });
    }

    /// Queues the ACKNOWLEDGE of an update received at `received`.
    pub(super) fn send_acknowledge(&self, call: Call, received: Option<Instant>) {
        self.send_queued(Queued {
            call,
            update_received: received,
        });
    }

    pub(super) fn send_queued(&self, queued: Queued) {
        match &self.calls {
            Some(calls) => {
                if let Err(refused) = calls.send(queued) {
                    let call = refused.0.call;
                    tracing::debug!(call = call.call_name(), "call task ended: call dropped");
                }
            }
            None => tracing::debug!(
                call = queued.call.call_name(),
                "backend not started: call dropped"
            ),
        }
    }
}
