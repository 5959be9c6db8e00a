//! What the Mesos backend shows in the cluster overview: the subscription's state, the leading
//! master, and the agents seen in offers with what they last offered.

use std::collections::{BTreeMap, HashMap};

use mesos_proto::v1::{value, Attribute, MasterInfo, Offer, Resource};
use time::OffsetDateTime;

use crate::backend::view::{
    AgentView, ConnectionState, ConnectionView, LeaderSource, LeaderView, MesosValue, MesosView,
};
use crate::mesos::master_url::HttpMaster;
use crate::mesos::MasterUrl;

/// The connection's history and the agents seen, kept in the backend's state.
pub(super) struct Seen {
    state: ConnectionState,
    since: OffsetDateTime,
    last_error: Option<(String, OffsetDateTime)>,
    /// The leader of the current subscription, from its SUBSCRIBED event.
    leader: Option<LeaderView>,
    subscribed_before: bool,
    agents: HashMap<String, SeenAgent>,
}

struct SeenAgent {
    hostname: String,
    url: Option<String>,
    at: OffsetDateTime,
    resources: BTreeMap<String, MesosValue>,
    attributes: BTreeMap<String, MesosValue>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            state: ConnectionState::Connecting,
            since: OffsetDateTime::now_utc(),
            last_error: None,
            leader: None,
            subscribed_before: false,
            agents: HashMap::new(),
        }
    }
}

/// The scheduler API's path under a master's address.
const SCHEDULER_PATH: &str = "/api/v1/scheduler";

impl Seen {
    /// A subscription to the master at `endpoint` (its scheduler API URL) whose SUBSCRIBED
    /// carried `info`; returns whether an earlier subscription came before it (a reconnection).
    pub(super) fn subscribed(&mut self, endpoint: &str, info: Option<&MasterInfo>) -> bool {
        self.state = ConnectionState::Connected;
        self.since = OffsetDateTime::now_utc();
        let address = endpoint.strip_suffix(SCHEDULER_PATH).unwrap_or(endpoint);
        self.leader = Some(LeaderView {
            address: address.to_owned(),
            hostname: info.and_then(|info| {
                info.hostname
                    .clone()
                    .or_else(|| info.address.as_ref()?.hostname.clone())
            }),
            id: info.map(|info| info.id.clone()),
            version: info.and_then(|info| info.version.clone()),
            source: LeaderSource::Subscribed,
        });
        std::mem::replace(&mut self.subscribed_before, true)
    }

    /// The subscription failed or ended, for `reason`.
    pub(super) fn disconnected(&mut self, reason: &str) {
        let now = OffsetDateTime::now_utc();
        if self.state != ConnectionState::Disconnected {
            self.state = ConnectionState::Disconnected;
            self.since = now;
        }
        self.leader = None;
        self.last_error = Some((reason.to_owned(), now));
    }

    /// An offer arrived from the agent at `url`.
    pub(super) fn offered(&mut self, offer: &Offer, url: Option<String>) {
        self.agents.insert(
            offer.agent_id.value.clone(),
            SeenAgent {
                hostname: offer.hostname.clone(),
                url,
                at: OffsetDateTime::now_utc(),
                resources: resource_values(&offer.resources),
                attributes: attribute_values(&offer.attributes),
            },
        );
    }

    /// The overview: `master` as configured, the leader ZooKeeper names (`detected`) while
    /// not subscribed, the framework id, and the runs launched per agent (`run_agents`: the
    /// agent id of every launched run).
    pub(super) fn view<'a>(
        &self,
        master: &MasterUrl,
        detected: Option<HttpMaster>,
        framework_id: Option<String>,
        run_agents: impl Iterator<Item = &'a str>,
    ) -> MesosView {
        let mut runs: HashMap<&str, usize> = HashMap::new();
        for agent in run_agents {
            *runs.entry(agent).or_default() += 1;
        }
        let leader = self.leader.clone().or_else(|| {
            detected.map(|master| LeaderView {
                address: master.base_url(),
                hostname: Some(master.host.clone()),
                id: None,
                version: None,
                source: LeaderSource::Zookeeper,
            })
        });
        let mut agents: Vec<AgentView> = self
            .agents
            .iter()
            .map(|(agent_id, seen)| AgentView {
                agent_id: agent_id.clone(),
                hostname: seen.hostname.clone(),
                url: seen.url.clone(),
                last_offer_at: seen.at,
                resources: seen.resources.clone(),
                attributes: seen.attributes.clone(),
                runs: runs.get(agent_id.as_str()).copied().unwrap_or(0),
            })
            .collect();
        agents.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        MesosView {
            master: match master {
                MasterUrl::Http(http) => http.base_url(),
                MasterUrl::ZooKeeper(zk) => zk.masked_url(),
            },
            leader,
            framework_id,
            connection: ConnectionView {
                state: self.state,
                since: self.since,
                last_error: self.last_error.as_ref().map(|(error, _)| error.clone()),
                last_error_at: self.last_error.as_ref().map(|(_, at)| *at),
            },
            agents,
        }
    }
}

/// Resources as Mesos' `/state` shows them: scalars summed by name, ranges and sets of the
/// same name joined and written as text.
pub(super) fn resource_values(resources: &[Resource]) -> BTreeMap<String, MesosValue> {
    let mut scalars: BTreeMap<String, f64> = BTreeMap::new();
    let mut ranges: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut sets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for resource in resources {
        let name = resource.name.clone();
        match resource.r#type() {
            value::Type::Scalar => {
                let amount = resource.scalar.as_ref().map_or(0.0, |scalar| scalar.value);
                *scalars.entry(name).or_default() += amount;
            }
            value::Type::Ranges => ranges.entry(name).or_default().extend(
                resource
                    .ranges
                    .iter()
                    .flat_map(|ranges| ranges.range.iter())
                    .map(|range| (range.begin, range.end)),
            ),
            value::Type::Set => sets
                .entry(name)
                .or_default()
                .extend(resource.set.iter().flat_map(|set| set.item.iter().cloned())),
            value::Type::Text => {}
        }
    }
    let mut values: BTreeMap<String, MesosValue> = scalars
        .into_iter()
        .map(|(name, amount)| (name, MesosValue::Number(amount)))
        .collect();
    for (name, mut list) in ranges {
        list.sort_unstable();
        values.insert(name, MesosValue::Text(ranges_text(&list)));
    }
    for (name, items) in sets {
        values.insert(name, MesosValue::Text(format!("{{{}}}", items.join(", "))));
    }
    values
}

/// Attributes as Mesos' `/state` shows them: scalars as numbers, text as it is, ranges and
/// sets as text.
pub(super) fn attribute_values(attributes: &[Attribute]) -> BTreeMap<String, MesosValue> {
    attributes
        .iter()
        .map(|attribute| {
            let value = match attribute.r#type() {
                value::Type::Scalar => {
                    MesosValue::Number(attribute.scalar.as_ref().map_or(0.0, |s| s.value))
                }
                value::Type::Text => MesosValue::Text(
                    attribute
                        .text
                        .as_ref()
                        .map_or_else(String::new, |text| text.value.clone()),
                ),
                value::Type::Ranges => {
                    let list: Vec<(u64, u64)> = attribute
                        .ranges
                        .iter()
                        .flat_map(|ranges| ranges.range.iter())
                        .map(|range| (range.begin, range.end))
                        .collect();
                    MesosValue::Text(ranges_text(&list))
                }
                value::Type::Set => MesosValue::Text(format!(
                    "{{{}}}",
                    attribute
                        .set
                        .as_ref()
                        .map_or_else(String::new, |set| set.item.join(", "))
                )),
            };
            (attribute.name.clone(), value)
        })
        .collect()
}

/// `[31000-32000, 33000-33010]`.
fn ranges_text(ranges: &[(u64, u64)]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|(begin, end)| format!("{begin}-{end}"))
        .collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::value::{Range, Ranges, Scalar, Set, Text};

    fn scalar(name: &str, amount: f64) -> Resource {
        Resource {
            name: name.into(),
            r#type: value::Type::Scalar as i32,
            scalar: Some(Scalar { value: amount }),
            ..Default::default()
        }
    }

    #[test]
    fn resources_read_as_mesos_state_shows_them() {
        let ports = Resource {
            name: "ports".into(),
            r#type: value::Type::Ranges as i32,
            ranges: Some(Ranges {
                range: vec![
                    Range {
                        begin: 33000,
                        end: 33010,
                    },
                    Range {
                        begin: 31000,
                        end: 32000,
                    },
                ],
            }),
            ..Default::default()
        };
        let values = resource_values(&[scalar("cpus", 1.5), scalar("cpus", 0.5), ports]);
        assert_eq!(values["cpus"], MesosValue::Number(2.0));
        assert_eq!(
            values["ports"],
            MesosValue::Text("[31000-32000, 33000-33010]".into())
        );
    }

    #[test]
    fn attributes_keep_numbers_and_write_the_rest_as_text() {
        let attributes = [
            Attribute {
                name: "rack".into(),
                r#type: value::Type::Text as i32,
                text: Some(Text { value: "a".into() }),
                ..Default::default()
            },
            Attribute {
                name: "cores".into(),
                r#type: value::Type::Scalar as i32,
                scalar: Some(Scalar { value: 8.0 }),
                ..Default::default()
            },
            Attribute {
                name: "zones".into(),
                r#type: value::Type::Set as i32,
                set: Some(Set {
                    item: vec!["x".into(), "y".into()],
                }),
                ..Default::default()
            },
        ];
        let values = attribute_values(&attributes);
        assert_eq!(values["rack"], MesosValue::Text("a".into()));
        assert_eq!(values["cores"], MesosValue::Number(8.0));
        assert_eq!(values["zones"], MesosValue::Text("{x, y}".into()));
    }

    #[test]
    fn the_connection_remembers_since_when_it_is_down_and_the_last_error() {
        let mut seen = Seen::default();
        let master = MasterUrl::parse("http://m:5050").unwrap_or_else(|e| panic!("{e}"));
        assert!(!seen.subscribed("http://m:5050/api/v1/scheduler", None));
        seen.disconnected("first");
        let since = seen
            .view(&master, None, None, std::iter::empty())
            .connection
            .since;
        seen.disconnected("second");
        let view = seen.view(&master, None, None, std::iter::empty());
        assert_eq!(view.connection.state, ConnectionState::Disconnected);
        assert_eq!(view.connection.since, since);
        assert_eq!(view.connection.last_error.as_deref(), Some("second"));
        assert!(view.leader.is_none());
        assert!(seen.subscribed("http://m:5050/api/v1/scheduler", None));
        let view = seen.view(&master, None, None, std::iter::empty());
        assert_eq!(view.connection.state, ConnectionState::Connected);
        assert_eq!(
            view.leader.map(|leader| leader.address).as_deref(),
            Some("http://m:5050")
        );
    }
}
