//! Detection of the leading Mesos master through ZooKeeper, as Mesos' own detector does it
//! (`ZooKeeperMasterDetector` over `zookeeper::Group`; protocol reference §6).
//!
//! A background task keeps a session with the ensemble (the servers of the `zk://` URL,
//! `digest` credentials when given, a 10 s session as Mesos' detector), lists the election
//! path's children with a watch, takes the member with the smallest sequence
//! ([`leader_node`]: `json.info_` nodes and the older `info_` and unlabelled ones; other
//! children such as `log_replicas` are not members), reads its data into the leader's HTTP
//! address ([`master_from_node`]) and publishes the result as a [`Detection`]; every change of
//! the children repeats that. Nobody contending is [`Detection::NoLeader`]; a leader whose
//! data cannot be read is [`Detection::Failed`] until the children change.
//!
//! Connection loss is ridden out by the ZooKeeper client within the session; an expired
//! session means the membership view is gone (no leader, as Mesos' group reports it) and a new
//! session is opened with jittered back-off (0.5 s doubling to 15 s). A missing election path
//! is no leader (no master has joined yet): its creation is watched.

use std::sync::Arc;
use std::time::Duration;

use mesos_client::Backoff;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zookeeper_client::{Client, EventType, OneshotWatcher, SessionState};

use super::master_url::{leader_node, master_from_node, HttpMaster, ZkTarget};

/// The detector's ZooKeeper session timeout (Mesos' `DETECTOR_SESSION_TIMEOUT`, 10 s).
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// First delay before a new session.
const BACKOFF_INITIAL: Duration = Duration::from_millis(500);

/// Longest delay before a new session.
const BACKOFF_MAX: Duration = Duration::from_secs(15);

/// What is known about the leading master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detection {
    /// Nothing read yet: the first session is being opened.
    Detecting,
    /// The leading master's address.
    Leader(HttpMaster),
    /// No master leads; why, in words naming the ensemble and path.
    NoLeader(String),
    /// The leader cannot be known: ZooKeeper cannot be reached or the leader's data is bad;
    /// why, in words naming the ensemble and path.
    Failed(String),
}

impl Detection {
    /// The leader, if one is known.
    pub fn leader(&self) -> Option<&HttpMaster> {
        match self {
            Detection::Leader(master) => Some(master),
            _ => None,
        }
    }
}

/// Follows the leading master of a ZooKeeper election. See the [module documentation](self).
/// Cheap to clone; the background task ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct MasterDetector {
    detections: watch::Receiver<Detection>,
    /// Held for its `Drop`: the task ends with the last clone.
    _task: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl MasterDetector {
    /// Starts detecting on `target` (needs a Tokio runtime).
    pub fn start(target: ZkTarget) -> MasterDetector {
        let (sender, detections) = watch::channel(Detection::Detecting);
        let task = tokio::spawn(run(target, sender));
        MasterDetector {
            detections,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// What is known now.
    pub fn current(&self) -> Detection {
        self.detections.borrow().clone()
    }

    /// The leading master, waiting for one to be known.
    pub async fn leader(&self) -> HttpMaster {
        let mut detections = self.detections.clone();
        loop {
            if let Some(master) = detections.borrow_and_update().leader() {
                return master.clone();
            }
            if detections.changed().await.is_err() {
                // The task never ends while a receiver lives; never return a guess.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Returns once the detection is anything other than `master` leading (another leader,
    /// none, or a failure).
    pub async fn changed_from(&self, master: &HttpMaster) {
        let mut detections = self.detections.clone();
        let _ = detections
            .wait_for(|detection| detection.leader() != Some(master))
            .await;
    }

    /// Waits for a detection that satisfies `check` and returns it (for tests and callers
    /// that need a particular state).
    pub async fn wait_for(&self, check: impl FnMut(&Detection) -> bool) -> Detection {
        let mut detections = self.detections.clone();
        let found = detections.wait_for(check).await.map(|found| found.clone());
        match found {
            Ok(detection) => detection,
            Err(_) => std::future::pending().await,
        }
    }
}

/// `zk://host:port,.../path` without credentials, for messages.
fn describe(target: &ZkTarget) -> String {
    format!("ZooKeeper {}{}", target.connect_string(), target.path)
}

/// Publishes `detection` when it differs from the current one, with a log line.
fn publish(sender: &watch::Sender<Detection>, detection: Detection) {
    sender.send_if_modified(|current| {
        if *current == detection {
            return false;
        }
        match &detection {
            Detection::Leader(master) => {
                tracing::info!(
                    master = master.base_url(),
                    "detected the leading Mesos master"
                );
            }
            Detection::NoLeader(why) => tracing::warn!("no leading Mesos master: {why}"),
            Detection::Failed(why) => tracing::warn!("detecting the leading Mesos master: {why}"),
            Detection::Detecting => {}
        }
        *current = detection;
        true
    });
}

/// Opens sessions one after the other, forever.
async fn run(target: ZkTarget, sender: watch::Sender<Detection>) {
    let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX);
    loop {
        match connect(&target).await {
            Ok(client) => {
                backoff.reset();
                let why = follow(&client, &target, &sender).await;
                publish(&sender, Detection::NoLeader(why));
            }
            Err(error) => publish(
                &sender,
                Detection::Failed(format!(
                    "{}: cannot open a session: {error}",
                    describe(&target)
                )),
            ),
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn connect(target: &ZkTarget) -> Result<Client, zookeeper_client::Error> {
    // Every server tried once is a failure reported here, not an endless silent retry.
    let mut connector = Client::connector()
        .with_session_timeout(SESSION_TIMEOUT)
        .with_fail_eagerly();
    if let Some(credentials) = &target.credentials {
        connector = connector.with_auth("digest", credentials.digest().as_bytes());
    }
    connector.connect(&target.connect_string()).await
}

/// Detects within one session until it ends; returns why it ended.
async fn follow(client: &Client, target: &ZkTarget, sender: &watch::Sender<Detection>) -> String {
    loop {
        let watcher = match detect(client, target).await {
            Ok((detection, watcher)) => {
                publish(sender, detection);
                watcher
            }
            Err(zookeeper_client::Error::NoNode) => {
                publish(
                    sender,
                    Detection::NoLeader(format!(
                        "{}: the path does not exist (no master has joined)",
                        describe(target)
                    )),
                );
                match client.check_and_watch_stat(&target.path).await {
                    // Created meanwhile: list it.
                    Ok((Some(_), _)) => continue,
                    Ok((None, watcher)) => watcher,
                    Err(error) => return session_error(target, &error),
                }
            }
            Err(error) => {
                if is_session_over(&error) {
                    return session_error(target, &error);
                }
                publish(
                    sender,
                    Detection::Failed(format!(
                        "{}: reading the election: {error}",
                        describe(target)
                    )),
                );
                tokio::time::sleep(BACKOFF_INITIAL).await;
                continue;
            }
        };
        let event = watcher.changed().await;
        if event.event_type == EventType::Session
            && matches!(
                event.session_state,
                SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
            )
        {
            return format!(
                "{}: the ZooKeeper session ended ({:?})",
                describe(target),
                event.session_state
            );
        }
    }
}

fn is_session_over(error: &zookeeper_client::Error) -> bool {
    use zookeeper_client::Error;
    matches!(
        error,
        Error::SessionExpired | Error::ClientClosed | Error::AuthFailed | Error::SessionMoved
    )
}

fn session_error(target: &ZkTarget, error: &zookeeper_client::Error) -> String {
    format!("{}: the ZooKeeper session ended: {error}", describe(target))
}

/// One detection: the leader of the current children, and the watch on them.
async fn detect(
    client: &Client,
    target: &ZkTarget,
) -> Result<(Detection, OneshotWatcher), zookeeper_client::Error> {
    loop {
        let (children, watcher) = client.list_and_watch_children(&target.path).await?;
        let Some(node) = leader_node(children.iter().map(String::as_str)) else {
            let why = format!(
                "{}: no master is a member of the election",
                describe(target)
            );
            return Ok((Detection::NoLeader(why), watcher));
        };
        let data = match client.get_data(&format!("{}/{node}", target.path)).await {
            Ok((data, _)) => data,
            // The leader left meanwhile: list again.
            Err(zookeeper_client::Error::NoNode) => continue,
            Err(error) => return Err(error),
        };
        let detection = match master_from_node(node, &data) {
            Ok(master) => Detection::Leader(master),
            Err(error) => Detection::Failed(format!("{}: {error}", describe(target))),
        };
        return Ok((detection, watcher));
    }
}
