//! What the cluster overview (`GET /cluster`, the UI's cluster page) shows of a backend,
//! beyond the capacity every backend reports: the local Docker engine's settings, or the Mesos
//! master, the framework's connection and the agents seen in offers. Each backend builds its
//! own part ([`super::Backend::cluster_view`]); the HTTP layer only renders it.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The backend-specific part of the cluster overview. Serialized as `{"local": {...}}` or
/// `{"mesos": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterView {
    /// Tasks run on the local Docker engine.
    Local(LocalView),
    /// Tasks run on a Mesos cluster.
    Mesos(MesosView),
}

impl ClusterView {
    /// `local` or `mesos`.
    pub fn backend(&self) -> &'static str {
        match self {
            ClusterView::Local(_) => "local",
            ClusterView::Mesos(_) => "mesos",
        }
    }
}

/// The local Docker engine as the backend uses it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalView {
    /// The Docker endpoint (`docker_host`), or `null` for `DOCKER_HOST` / the local socket.
    pub docker_host: Option<String>,
    /// This instance's id, in the owner label of its containers.
    pub instance_id: String,
    /// The host ports handed out to tasks (inclusive).
    pub port_range: [u16; 2],
    /// The Docker network of tasks with network `USER`, if any.
    pub user_network: Option<String>,
}

/// The Mesos cluster as the framework sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MesosView {
    /// The configured `master` (a ZooKeeper password masked).
    pub master: String,
    /// The leading master, when known.
    pub leader: Option<LeaderView>,
    /// The framework id in use (granted by the master, stored, or configured).
    pub framework_id: Option<String>,
    /// The subscription.
    pub connection: ConnectionView,
    /// Every agent seen in an offer since the start, by agent id.
    pub agents: Vec<AgentView>,
}

/// The leading master.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaderView {
    /// Its HTTP address (`http://10.0.0.5:5050`), as eremetic reaches it.
    pub address: String,
    /// `MasterInfo.hostname` (or the address' host name), when known.
    pub hostname: Option<String>,
    /// `MasterInfo.id`, when known.
    pub id: Option<String>,
    /// `MasterInfo.version`, when known.
    pub version: Option<String>,
    /// Where this was learned.
    pub source: LeaderSource,
}

/// Where the leading master's identity was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaderSource {
    /// The `MasterInfo` of the SUBSCRIBED event of the current subscription.
    Subscribed,
    /// The ZooKeeper election (not subscribed to it, or not yet).
    Zookeeper,
}

/// The state of the subscription to the master.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionView {
    /// `connecting` (never subscribed yet), `connected` or `disconnected`.
    pub state: ConnectionState,
    /// Since when (RFC 3339, UTC).
    #[serde(serialize_with = "rfc3339")]
    pub since: OffsetDateTime,
    /// Why the last subscription failed or ended, in words, if one did.
    pub last_error: Option<String>,
    /// When that was (RFC 3339, UTC).
    #[serde(serialize_with = "optional_rfc3339")]
    pub last_error_at: Option<OffsetDateTime>,
}

/// Whether the framework is subscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Not subscribed yet since the start.
    Connecting,
    /// Subscribed: offers and updates arrive.
    Connected,
    /// The subscription was lost; the backend subscribes again with back-off.
    Disconnected,
}

impl ConnectionState {
    /// `connecting`, `connected` or `disconnected`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnected => "disconnected",
        }
    }
}

/// An agent seen in an offer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentView {
    /// `AgentID`.
    pub agent_id: String,
    /// The offer's host name.
    pub hostname: String,
    /// The agent's HTTP address from the offer, when it says.
    pub url: Option<String>,
    /// When it last offered anything (RFC 3339, UTC).
    #[serde(serialize_with = "rfc3339")]
    pub last_offer_at: OffsetDateTime,
    /// What its last offer held, as Mesos' `/state` shows resources: scalars summed by name
    /// (`cpus`, `mem`, `disk` in MB), ranges and sets as text (`ports`: `[31000-32000]`).
    pub resources: BTreeMap<String, MesosValue>,
    /// Its attributes, as Mesos' `/state` shows them (scalars as numbers, the rest as text).
    pub attributes: BTreeMap<String, MesosValue>,
    /// Runs of this framework launched there and not ended.
    pub runs: usize,
}

/// A resource or attribute value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MesosValue {
    /// A scalar.
    Number(f64),
    /// Text, ranges (`[1-2, 5-9]`) or a set (`{a,b}`).
    Text(String),
}

impl std::fmt::Display for MesosValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MesosValue::Number(number) => write!(f, "{number}"),
            MesosValue::Text(text) => f.write_str(text),
        }
    }
}

fn rfc3339<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let text = at.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(&text)
}

fn optional_rfc3339<S: Serializer>(
    at: &Option<OffsetDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_serializes_under_its_backend_name_with_rfc3339_times() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let view = ClusterView::Mesos(MesosView {
            master: "zk://zk1:2181/mesos".into(),
            leader: None,
            framework_id: Some("fw-1".into()),
            connection: ConnectionView {
                state: ConnectionState::Disconnected,
                since: at,
                last_error: Some("refused".into()),
                last_error_at: Some(at),
            },
            agents: vec![AgentView {
                agent_id: "a1".into(),
                hostname: "h1".into(),
                url: None,
                last_offer_at: at,
                resources: BTreeMap::from([
                    ("cpus".to_owned(), MesosValue::Number(2.5)),
                    ("ports".to_owned(), MesosValue::Text("[1-2]".into())),
                ]),
                attributes: BTreeMap::new(),
                runs: 1,
            }],
        });
        let json = serde_json::to_value(&view).unwrap_or_default();
        let mesos = &json["mesos"];
        assert_eq!(mesos["connection"]["state"], "disconnected");
        assert_eq!(mesos["connection"]["since"], "2023-11-14T22:13:20Z");
        assert_eq!(mesos["agents"][0]["resources"]["cpus"], 2.5);
        assert_eq!(mesos["agents"][0]["resources"]["ports"], "[1-2]");
        assert_eq!(view.backend(), "mesos");
    }
}
