//! Leader election through ZooKeeper, as a Mesos master contends
//! (`ZooKeeperMasterContender` over `zookeeper::Group`) and detects the
//! leader (`ZooKeeperMasterDetector`).
//!
//! - The election path is created (persistent, with its parents, open ACL)
//!   when missing; the master joins with an ephemeral sequential znode
//!   `<path>/json.info_<10-digit sequence>` holding its `MasterInfo` as JSON
//!   (the fields `createMasterInfo` sets: `id`, `ip` in network byte order,
//!   `port`, `pid`, `hostname`, `version`, `address`, `capabilities`).
//! - Members are the children whose last `_`-separated token is a number;
//!   the one with the smallest sequence leads. This master follows the
//!   children with a watch: it leads when its own node is the smallest,
//!   otherwise it redirects to the leader named in that node's `MasterInfo`
//!   (`hostname`, `address.ip` and `address.port`), or answers 503 when
//!   nobody contends.
//! - A master that becomes the leader after the election it found at
//!   start-up recovers as `Master::_recover` does
//!   ([`MasterState::master_failover`]): frameworks re-subscribe and agents
//!   must re-register. A real master that loses its membership exits; here
//!   [`FakeMaster::stop`](super::FakeMaster::stop) withdraws the node and
//!   stops serving, so the next member leads at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mesos_proto::v1::MasterInfo;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use zookeeper_client::{Acls, Client, CreateMode, EventType, SessionState};

use super::setup::Leadership;
use super::Shared;
use crate::error::HarnessError;

/// The znode label of `MasterInfo` as JSON (`MASTER_INFO_JSON_LABEL`).
pub const MASTER_INFO_JSON_LABEL: &str = "json.info";

/// The masters' ZooKeeper session timeout (`--zk_session_timeout`, 10 s).
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// `MASTER_CAPABILITIES()` of Mesos 1.9 and later.
const CAPABILITIES: [&str; 3] = ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"];

/// Where a master contends for leadership: the `--zk` flag's ensemble and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooKeeperElection {
    /// The ensemble's connect string, `host:port[,host:port...]`.
    pub connect: String,
    /// The election path, e.g. `/mesos` (created when missing).
    pub path: String,
}

impl ZooKeeperElection {
    /// An election under `path` on the ensemble `connect`.
    pub fn new(connect: impl Into<String>, path: impl Into<String>) -> Self {
        ZooKeeperElection {
            connect: connect.into(),
            path: path.into(),
        }
    }
}

/// A master's membership in the election and the task following it.
#[derive(Debug)]
pub(crate) struct Contender {
    client: Client,
    election: ZooKeeperElection,
    node: String,
    follower: JoinHandle<()>,
}

impl Contender {
    /// Joins the election with `info` and applies the leadership found
    /// (without a failover: the master starts in that role); then follows
    /// later changes in the background.
    pub(crate) async fn join(
        election: ZooKeeperElection,
        info: &MasterInfo,
        shared: Arc<Shared>,
    ) -> Result<Contender, HarnessError> {
        let failed = |operation: String| {
            let connect = election.connect.clone();
            move |source| HarnessError::ZooKeeper {
                connect,
                operation,
                source,
            }
        };
        let client = Client::connector()
            .with_session_timeout(SESSION_TIMEOUT)
            .connect(&election.connect)
            .await
            .map_err(failed("connecting".to_owned()))?;
        let directory = CreateMode::Persistent.with_acls(Acls::anyone_all());
        client
            .mkdir(&election.path, &directory)
            .await
            .map_err(failed(format!("creating {}", election.path)))?;
        let prefix = format!("{}/{MASTER_INFO_JSON_LABEL}_", election.path);
        let member = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
        let (_, sequence) = client
            .create(&prefix, &master_info_json(info), &member)
            .await
            .map_err(failed(format!("creating {prefix}<sequence>")))?;
        let node = format!("{MASTER_INFO_JSON_LABEL}_{sequence}");
        let (leadership, watcher) = detect(&client, &election.path, &node)
            .await
            .map_err(failed(format!("listing {}", election.path)))?;
        apply(&shared, leadership, false);
        let follower = tokio::spawn(follow(
            client.clone(),
            election.path.clone(),
            node.clone(),
            Arc::downgrade(&shared),
            watcher,
        ));
        Ok(Contender {
            client,
            election,
            node,
            follower,
        })
    }

    /// The member znode's name (`json.info_0000000003`).
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Leaves the election: the node is deleted, so the next member leads.
    pub(crate) async fn withdraw(self) -> Result<(), HarnessError> {
        self.follower.abort();
        let path = format!("{}/{}", self.election.path, self.node);
        match self.client.delete(&path, None).await {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
            Err(source) => Err(HarnessError::ZooKeeper {
                connect: self.election.connect.clone(),
                operation: format!("deleting {path}"),
                source,
            }),
        }
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// `MasterInfo` as the contender writes it (`JSON::protobuf(masterInfo)`),
/// with the capabilities our schema subset does not carry.
fn master_info_json(info: &MasterInfo) -> Vec<u8> {
    let mut json = serde_json::to_value(info).unwrap_or_default();
    if let Some(object) = json.as_object_mut() {
        let capabilities = CAPABILITIES
            .iter()
            .map(|kind| serde_json::json!({ "type": kind }))
            .collect();
        object.insert(
            "capabilities".to_owned(),
            serde_json::Value::Array(capabilities),
        );
    }
    json.to_string().into_bytes()
}

/// The leadership the election's children show, and the watch on them.
async fn detect(
    client: &Client,
    path: &str,
    own: &str,
) -> Result<(Leadership, zookeeper_client::OneshotWatcher), zookeeper_client::Error> {
    loop {
        let (children, watcher) = client.list_and_watch_children(path).await?;
        let Some(leader) = leader_node(&children) else {
            return Ok((Leadership::None, watcher));
        };
        if leader == own {
            return Ok((Leadership::Leading, watcher));
        }
        match client.get_data(&format!("{path}/{leader}")).await {
            Ok((data, _)) => return Ok((other_leader(&data), watcher)),
            // Gone meanwhile: list again.
            Err(zookeeper_client::Error::NoNode) => continue,
            Err(error) => return Err(error),
        }
    }
}

/// The member with the smallest sequence (`Group::cache`: the last
/// `_`-separated token must be a number; other children are not members).
pub(crate) fn leader_node(children: &[String]) -> Option<&str> {
    children
        .iter()
        .filter_map(|name| {
            let sequence = name.rsplit('_').next()?.parse::<u64>().ok()?;
            Some((sequence, name.as_str()))
        })
        .min_by_key(|(sequence, _)| *sequence)
        .map(|(_, name)| name)
}

/// Another master leads: redirects name its host name and socket address.
/// Data that is not such a `MasterInfo` leaves no leader to redirect to.
fn other_leader(data: &[u8]) -> Leadership {
    let Ok(info) = mesos_proto::json::from_slice::<MasterInfo>(data) else {
        return Leadership::None;
    };
    let Some(address) = info.address else {
        return Leadership::None;
    };
    let ip = address
        .ip
        .as_deref()
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    let port = u16::try_from(address.port).ok();
    match (ip, port) {
        (Some(ip), Some(port)) => Leadership::Other {
            hostname: info
                .hostname
                .or(address.hostname)
                .unwrap_or_else(|| ip.to_string()),
            address: SocketAddr::new(ip, port),
        },
        _ => Leadership::None,
    }
}

/// Follows the children until the session ends (then nobody is known to lead).
async fn follow(
    client: Client,
    path: String,
    own: String,
    shared: std::sync::Weak<Shared>,
    mut watcher: zookeeper_client::OneshotWatcher,
) {
    loop {
        let event = watcher.changed().await;
        let session_over = event.event_type == EventType::Session
            && matches!(
                event.session_state,
                SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
            );
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if session_over {
            apply(&shared, Leadership::None, true);
            return;
        }
        match detect(&client, &path, &own).await {
            Ok((leadership, next)) => {
                apply(&shared, leadership, true);
                watcher = next;
            }
            Err(_) => {
                apply(&shared, Leadership::None, true);
                return;
            }
        }
    }
}

/// Applies a detected leadership. Gaining it after start-up is a master
/// failover; losing it ends every subscription.
fn apply(shared: &Shared, leadership: Leadership, after_start: bool) {
    let now = Instant::now();
    let mut state = shared.lock();
    if state.leadership == leadership {
        return;
    }
    let was_leading = state.leadership == Leadership::Leading;
    let leads = leadership == Leadership::Leading;
    state.leadership = leadership;
    if leads && after_start {
        state.master_failover(now);
    } else if was_leading {
        state.drop_all_connections(now);
    }
    drop(state);
    shared.notify();
}
