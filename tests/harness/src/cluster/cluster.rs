//! [`Cluster`]: a Mesos cluster on one machine — a private ZooKeeper
//! server, N [`FakeMaster`]s elected through it, and M agents of the
//! caller's modes, each with its [`AgentBook`] and HTTP endpoints.
//!
//! Every agent is in every master's registry (added to each, as the
//! replicated registry holds it), so a master that comes to lead recovers
//! them; it runs attached to the leader. Agents follow the leader as Mesos
//! agents do: they detect it in ZooKeeper (the member with the lowest
//! sequence) and re-register with the new one once it has taken over (a
//! real master ignores re-registrations until it has recovered, and the
//! agent retries), after a per-agent [`Reregistration`] delay — promptly by
//! default; a delay or withholding lets tests see the new leader's
//! `agent_reregister_timeout`. Operator-side controls: stopping the leader
//! (its process ends, the next member leads), partitioning an agent and
//! healing it, marking it gone. Partitions and gone agents are applied to
//! every master's registry.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zookeeper_client::Client;

use super::agent_http::{AgentEndpoints, DEFAULT_AGENT_VERSION};
use super::sandbox::AgentBook;
use super::{AgentMode, RunningAgent};
use crate::error::HarnessError;
use crate::master::{AgentSpec, FakeMaster, MasterSetup, ZooKeeperElection};
use crate::zk::ZooKeeperServer;

/// How long an agent waits for the master it detected to take over before
/// giving up on that leader (a real agent retries for as long as it leads).
const TAKEOVER_WAIT: Duration = Duration::from_secs(60);

/// How long [`Cluster::stop_leader`] waits for handles of the leading
/// master held elsewhere (e.g. by a test) to be dropped.
const HANDLES_WAIT: Duration = Duration::from_secs(10);

/// Configuration of a [`Cluster`].
#[derive(Debug, Clone)]
pub struct ClusterSetup {
    /// How many masters contend for leadership (at least 1; default 3, a
    /// usual HA quorum).
    pub masters: usize,
    /// Each master's setup (its `zookeeper` is set by the cluster).
    pub master: MasterSetup,
    /// The election path in ZooKeeper (default `/mesos`).
    pub zookeeper_path: String,
    /// Where each agent's `--work_dir` is made (`<work_dir>/<agent id>`).
    pub work_dir: PathBuf,
    /// The agents' Mesos version, for their endpoints (default 1.12.0).
    pub agent_version: String,
}

impl ClusterSetup {
    /// The defaults, with agents' work directories under `work_dir`.
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        ClusterSetup {
            masters: 3,
            master: MasterSetup::default(),
            zookeeper_path: "/mesos".to_owned(),
            work_dir: work_dir.into(),
            agent_version: DEFAULT_AGENT_VERSION.to_owned(),
        }
    }
}

/// When an agent re-registers with a newly elected leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reregistration {
    /// As soon as the new leader has taken over (the default).
    Prompt,
    /// This long after the leader changed.
    After(Duration),
    /// Not until [`Cluster::reregister_now`].
    Withheld,
}

/// What a test can see of a cluster agent.
#[derive(Debug, Clone)]
pub struct AgentView {
    /// The agent's id.
    pub agent_id: String,
    /// Its book (work directory, runs).
    pub book: AgentBook,
    /// Its HTTP endpoints' address.
    pub endpoint: std::net::SocketAddr,
}

/// One agent of the cluster.
struct Slot {
    running: RunningAgent,
    book: AgentBook,
    /// Its address, kept after a gone agent's endpoints stopped.
    endpoint: std::net::SocketAddr,
    /// `None` once the agent was shut down (marked gone).
    endpoints: Option<AgentEndpoints>,
    reregistration: Reregistration,
    /// The ZooKeeper node of the master it is registered with.
    master_node: Option<String>,
    partitioned: bool,
    gone: bool,
}

struct Inner {
    /// The masters still running, with their member nodes.
    masters: Vec<(String, Arc<FakeMaster>)>,
    agents: BTreeMap<String, Slot>,
    /// The leader's node as the agents detect it.
    leader_node: Option<String>,
}

/// A running cluster (see the module documentation).
pub struct Cluster {
    zookeeper: ZooKeeperServer,
    setup: ClusterSetup,
    inner: Arc<Mutex<Inner>>,
    detector: JoinHandle<()>,
    leader: watch::Receiver<Option<String>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("master_url", &self.master_url())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts ZooKeeper and the masters, and waits until one leads.
    pub async fn start(setup: ClusterSetup) -> Result<Cluster, HarnessError> {
        if setup.masters == 0 {
            return Err(HarnessError::InvalidSetting {
                setting: "number of masters",
                reason: "a cluster needs at least one master".to_owned(),
            });
        }
        let zookeeper = ZooKeeperServer::start().await?;
        let election = ZooKeeperElection::new(zookeeper.connect_string(), &setup.zookeeper_path);
        let mut masters = Vec::new();
        for _ in 0..setup.masters {
            let master = FakeMaster::start(MasterSetup {
                zookeeper: Some(election.clone()),
                ..setup.master.clone()
            })
            .await?;
            let node = master.zookeeper_node().unwrap_or_default();
            masters.push((node, Arc::new(master)));
        }
        let inner = Arc::new(Mutex::new(Inner {
            masters,
            agents: BTreeMap::new(),
            leader_node: None,
        }));
        let (sender, leader) = watch::channel(None);
        let client = Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&election.connect)
            .await
            .map_err(|source| HarnessError::ZooKeeper {
                connect: election.connect.clone(),
                operation: "connecting the agents' detector".to_owned(),
                source,
            })?;
        let detector = tokio::spawn(detect(
            client,
            election.path.clone(),
            sender,
            Arc::downgrade(&inner),
        ));
        let cluster = Cluster {
            zookeeper,
            setup,
            inner,
            detector,
            leader,
        };
        cluster.wait_leader(TAKEOVER_WAIT).await?;
        Ok(cluster)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// `zk://127.0.0.1:<port><path>`: the `master` value for eremetic.
    pub fn master_url(&self) -> String {
        format!(
            "zk://{}{}",
            self.zookeeper.connect_string(),
            self.setup.zookeeper_path
        )
    }

    /// The ZooKeeper server.
    pub fn zookeeper(&self) -> &ZooKeeperServer {
        &self.zookeeper
    }

    /// The masters still running, in start order.
    pub fn masters(&self) -> Vec<Arc<FakeMaster>> {
        self.lock()
            .masters
            .iter()
            .map(|(_, m)| Arc::clone(m))
            .collect()
    }

    /// The master that leads now, if one does.
    pub fn leader(&self) -> Option<Arc<FakeMaster>> {
        let inner = self.lock();
        let leading = inner.masters.iter().find(|(_, m)| m.is_leading());
        leading.map(|(_, m)| Arc::clone(m))
    }

    /// Waits until a master leads and the agents' detector sees it.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<Arc<FakeMaster>, HarnessError> {
        let mut leader = self.leader.clone();
        let wait = async {
            loop {
                let detected = leader.borrow_and_update().clone();
                if let Some(node) = detected {
                    let master = self.master_by_node(&node);
                    if let Some(master) = master.filter(|m| m.is_leading()) {
                        return master;
                    }
                }
                // Either the detector moves on or the master takes over.
                let _ = tokio::time::timeout(Duration::from_millis(20), leader.changed()).await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| HarnessError::Timeout {
                what: "a leading master".to_owned(),
                timeout,
            })
    }

    fn master_by_node(&self, node: &str) -> Option<Arc<FakeMaster>> {
        let inner = self.lock();
        let found = inner.masters.iter().find(|(n, _)| n == node);
        found.map(|(_, m)| Arc::clone(m))
    }

    /// Adds agent `spec` (its `port` becomes its endpoints' port, so offers
    /// point at them) to every master's registry and attaches it to the
    /// leader, running the mode `mode` builds for its book (work directory
    /// `<work_dir>/<agent id>`).
    pub async fn add_agent(
        &self,
        mut spec: AgentSpec,
        mode: impl FnOnce(AgentBook) -> Arc<dyn AgentMode>,
    ) -> Result<AgentView, HarnessError> {
        let agent_id = spec.agent_id.clone();
        let work_dir = self.setup.work_dir.join(&agent_id);
        std::fs::create_dir_all(&work_dir).map_err(|error| HarnessError::InvalidSetting {
            setting: "work directory",
            reason: format!("{}: {error}", work_dir.display()),
        })?;
        let book = AgentBook::new(&work_dir, &agent_id);
        let endpoints =
            AgentEndpoints::start(book.clone(), &spec.hostname, &self.setup.agent_version).await?;
        spec.port = endpoints.port();
        let leader = self.wait_leader(TAKEOVER_WAIT).await?;
        let view = AgentView {
            agent_id: agent_id.clone(),
            book: book.clone(),
            endpoint: endpoints.endpoint(),
        };
        let mut inner = self.lock();
        if inner.agents.contains_key(&agent_id) {
            return Err(HarnessError::DuplicateAgent { agent_id });
        }
        for (_, master) in &inner.masters {
            master.add_agent(spec.clone())?;
        }
        let link = leader.attach_agent(&agent_id)?;
        let master_node = leader.zookeeper_node();
        let running = RunningAgent::start(link, mode(book.clone()));
        inner.agents.insert(
            agent_id,
            Slot {
                running,
                book,
                endpoint: endpoints.endpoint(),
                endpoints: Some(endpoints),
                reregistration: Reregistration::Prompt,
                master_node,
                partitioned: false,
                gone: false,
            },
        );
        Ok(view)
    }

    /// Ids of the agents, sorted.
    pub fn agent_ids(&self) -> Vec<String> {
        self.lock().agents.keys().cloned().collect()
    }

    /// Agent `agent_id`'s book and endpoint.
    pub fn agent(&self, agent_id: &str) -> Option<AgentView> {
        let inner = self.lock();
        inner.agents.get(agent_id).map(|slot| AgentView {
            agent_id: agent_id.to_owned(),
            book: slot.book.clone(),
            endpoint: slot.endpoint,
        })
    }

    /// When agent `agent_id` re-registers after later leader changes.
    pub fn set_reregistration(
        &self,
        agent_id: &str,
        reregistration: Reregistration,
    ) -> Result<(), HarnessError> {
        let mut inner = self.lock();
        let slot = slot(&mut inner, agent_id, "set the re-registration of")?;
        slot.reregistration = reregistration;
        Ok(())
    }

    /// The leading master's process ends: it leaves the election and stops
    /// serving, and the next member leads after a failover. Handles of it
    /// held elsewhere must be dropped (waited for up to 10 s).
    pub async fn stop_leader(&self) -> Result<(), HarnessError> {
        let leader = self.wait_leader(TAKEOVER_WAIT).await?;
        let mut master = {
            let mut inner = self.lock();
            let index = inner
                .masters
                .iter()
                .position(|(_, m)| Arc::ptr_eq(m, &leader));
            drop(leader);
            match index {
                Some(index) => inner.masters.remove(index).1,
                None => return Ok(()),
            }
        };
        let deadline = tokio::time::Instant::now() + HANDLES_WAIT;
        let master = loop {
            match Arc::try_unwrap(master) {
                Ok(master) => break master,
                Err(shared) if tokio::time::Instant::now() < deadline => {
                    master = shared;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    return Err(HarnessError::InvalidSetting {
                        setting: "leading master",
                        reason: "cannot stop it: handles of it are still held (drop the \
                                 Arc<FakeMaster> from masters()/leader() first)"
                            .to_owned(),
                    })
                }
            }
        };
        master.stop().await;
        Ok(())
    }

    /// The agent becomes unreachable: every master marks it so (the leader
    /// sends the updates and FAILUREs of `Master::markUnreachable`), and it
    /// stops following leaders until [`Cluster::heal_agent`].
    pub fn partition_agent(&self, agent_id: &str) -> Result<(), HarnessError> {
        let mut inner = self.lock();
        let masters = leader_first(&inner.masters);
        let slot = slot(&mut inner, agent_id, "partition")?;
        let Some((leader, standbys)) = masters.split_first() else {
            return Ok(());
        };
        leader.mark_unreachable(agent_id)?;
        slot.partitioned = true;
        for standby in standbys {
            // The replicated registry's copy: best effort (a standby may
            // already hold the agent so).
            let _ = standby.mark_unreachable(agent_id);
        }
        Ok(())
    }

    /// The partition ends: the agent re-registers with the leader (its tasks
    /// and unacknowledged updates come back), and the standbys' registries
    /// learn it is registered again.
    pub fn heal_agent(&self, agent_id: &str) -> Result<(), HarnessError> {
        let mut inner = self.lock();
        let masters = leader_first(&inner.masters);
        let detected = inner.leader_node.clone();
        let slot = slot(&mut inner, agent_id, "heal")?;
        if !slot.partitioned {
            return Err(HarnessError::AgentNotApplicable {
                operation: "heal",
                agent_id: agent_id.to_owned(),
                reason: "the agent is not partitioned".to_owned(),
            });
        }
        slot.partitioned = false;
        let Some((leader, standbys)) = masters.split_first() else {
            return Ok(());
        };
        if !leader.is_leading() {
            // Mid-election: the agent re-registers once the detected
            // master has taken over.
            if let Some(node) = detected {
                let master = masters
                    .iter()
                    .find(|m| m.zookeeper_node().as_ref() == Some(&node));
                if let Some(master) = master {
                    tokio::spawn(reregister_later(
                        Arc::downgrade(&self.inner),
                        Arc::downgrade(master),
                        node,
                        agent_id.to_owned(),
                        Duration::ZERO,
                    ));
                }
            }
            return Ok(());
        }
        slot.running.reregister_with(leader)?;
        slot.master_node = leader.zookeeper_node();
        for standby in standbys {
            // The registry's copy, best effort as for a partition.
            let _ = standby.reregister_agent(agent_id);
        }
        Ok(())
    }

    /// The operator marks the agent gone on every master: the leader sends
    /// the updates of `Master::markGone` and shuts the agent down (its mode
    /// ends its tasks, its HTTP endpoints stop); it never re-registers.
    pub fn mark_gone(&self, agent_id: &str) -> Result<(), HarnessError> {
        let mut inner = self.lock();
        let masters = leader_first(&inner.masters);
        let slot = slot(&mut inner, agent_id, "mark gone")?;
        let Some((leader, standbys)) = masters.split_first() else {
            return Ok(());
        };
        leader.mark_gone(agent_id)?;
        slot.gone = true;
        // The agent process exits on ShutdownMessage: its endpoints go (the
        // mode still gets the message and ends its tasks).
        drop(slot.endpoints.take());
        for standby in standbys {
            // The registry's copy, best effort as for a partition.
            let _ = standby.mark_gone(agent_id);
        }
        Ok(())
    }

    /// A withheld (or delayed) agent re-registers with the leader now.
    pub fn reregister_now(&self, agent_id: &str) -> Result<(), HarnessError> {
        let mut inner = self.lock();
        let leader = inner
            .masters
            .iter()
            .find(|(_, m)| m.is_leading())
            .map(|(node, m)| (node.clone(), Arc::clone(m)));
        let slot = slot(&mut inner, agent_id, "re-register")?;
        let Some((node, leader)) = leader else {
            return Err(HarnessError::AgentNotApplicable {
                operation: "re-register",
                agent_id: agent_id.to_owned(),
                reason: "no master leads".to_owned(),
            });
        };
        if slot.gone {
            return Err(HarnessError::AgentNotApplicable {
                operation: "re-register",
                agent_id: agent_id.to_owned(),
                reason: "the agent was marked gone".to_owned(),
            });
        }
        slot.running.reregister_with(&leader)?;
        slot.master_node = Some(node);
        Ok(())
    }

    /// Stops the agents' endpoints, the masters and ZooKeeper.
    pub async fn stop(self) {
        self.detector.abort();
        let (agents, masters) = {
            let mut inner = self.lock();
            (
                std::mem::take(&mut inner.agents),
                std::mem::take(&mut inner.masters),
            )
        };
        for (_, slot) in agents {
            drop(slot.running);
            if let Some(endpoints) = slot.endpoints {
                endpoints.stop().await;
            }
        }
        for (_, master) in masters {
            if let Ok(master) = Arc::try_unwrap(master) {
                master.stop().await;
            }
        }
        // ZooKeeper is killed when `self.zookeeper` drops.
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.detector.abort();
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn slot<'a>(
    inner: &'a mut Inner,
    agent_id: &str,
    operation: &'static str,
) -> Result<&'a mut Slot, HarnessError> {
    inner
        .agents
        .get_mut(agent_id)
        .ok_or_else(|| HarnessError::AgentNotApplicable {
            operation,
            agent_id: agent_id.to_owned(),
            reason: "the cluster has no such agent".to_owned(),
        })
}

/// The masters, the leading one first (it sends the updates).
fn leader_first(masters: &[(String, Arc<FakeMaster>)]) -> Vec<Arc<FakeMaster>> {
    let mut ordered: Vec<Arc<FakeMaster>> = masters.iter().map(|(_, m)| Arc::clone(m)).collect();
    ordered.sort_by_key(|m| !m.is_leading());
    ordered
}

/// The agents' leader detection: the election's member with the lowest
/// sequence, followed with a watch; each change starts re-registrations.
async fn detect(
    client: Client,
    path: String,
    leader: watch::Sender<Option<String>>,
    inner: Weak<Mutex<Inner>>,
) {
    loop {
        let (children, watcher) = match client.list_and_watch_children(&path).await {
            Ok(found) => found,
            Err(_) => {
                // A connection loss: the client reconnects; list again.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let node = lowest_member(&children).map(str::to_owned);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let changed = {
            let mut state = lock(&inner);
            let changed = state.leader_node != node;
            state.leader_node = node.clone();
            changed
        };
        if changed {
            leader.send_replace(node.clone());
            if let Some(node) = node {
                follow_leader(&inner, &node);
            }
        }
        drop(inner);
        let _ = watcher.changed().await;
    }
}

/// The member with the smallest sequence (children whose last
/// `_`-separated token is a number).
fn lowest_member(children: &[String]) -> Option<&str> {
    children
        .iter()
        .filter_map(|name| Some((name.rsplit('_').next()?.parse::<u64>().ok()?, name.as_str())))
        .min_by_key(|(sequence, _)| *sequence)
        .map(|(_, name)| name)
}

/// Schedules each agent's re-registration with the master of `node`.
fn follow_leader(inner: &Arc<Mutex<Inner>>, node: &str) {
    let state = lock(inner);
    let Some(master) = state.masters.iter().find(|(n, _)| n == node) else {
        return;
    };
    for (agent_id, slot) in &state.agents {
        if slot.master_node.as_deref() == Some(node) {
            continue;
        }
        let delay = match slot.reregistration {
            Reregistration::Prompt => Duration::ZERO,
            Reregistration::After(delay) => delay,
            Reregistration::Withheld => continue,
        };
        tokio::spawn(reregister_later(
            Arc::downgrade(inner),
            Arc::downgrade(&master.1),
            node.to_owned(),
            agent_id.clone(),
            delay,
        ));
    }
}

/// After `delay`, once the master has taken over, the agent re-registers
/// with it, unless the leader changed meanwhile or the agent is partitioned,
/// gone, withheld or already there.
async fn reregister_later(
    inner: Weak<Mutex<Inner>>,
    master: Weak<FakeMaster>,
    node: String,
    agent_id: String,
    delay: Duration,
) {
    tokio::time::sleep(delay).await;
    let deadline = tokio::time::Instant::now() + TAKEOVER_WAIT;
    loop {
        let Some(master) = master.upgrade() else {
            return;
        };
        if master.is_leading() {
            break;
        }
        drop(master);
        if tokio::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (Some(inner), Some(master)) = (inner.upgrade(), master.upgrade()) else {
        return;
    };
    let mut state = lock(&inner);
    if state.leader_node.as_deref() != Some(node.as_str()) {
        return;
    }
    let Some(slot) = state.agents.get_mut(&agent_id) else {
        return;
    };
    let stays = slot.partitioned
        || slot.gone
        || slot.reregistration == Reregistration::Withheld
        || slot.master_node.as_deref() == Some(node.as_str());
    if stays {
        return;
    }
    match slot.running.reregister_with(&master) {
        Ok(()) => slot.master_node = Some(node),
        Err(error) => eprintln!("cluster agent {agent_id}: re-registering: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_sequence_leads_and_other_children_are_not_members() {
        let children = [
            "json.info_0000000007".to_owned(),
            "log_replicas".to_owned(),
            "json.info_0000000003".to_owned(),
        ];
        assert_eq!(lowest_member(&children), Some("json.info_0000000003"));
        assert_eq!(lowest_member(&["log_replicas".to_owned()]), None);
    }
}
