//! Offers: the allocator (free resources of each agent go to the first
//! connected, unsuppressed framework that has not filtered them), ACCEPT with
//! offer validation, DECLINE with refuse filters, REVIVE, SUPPRESS and
//! RESCIND.

use std::time::Duration;

use mesos_proto::v1::scheduler::{call, event, Event};
use mesos_proto::v1::{
    framework_info, offer, resource, task_status, Address, AgentId, ExecutorId, Filters,
    FrameworkId, Offer, OfferId, TaskState, Url,
};
use tokio::time::Instant;

use super::resources::Resources;
use super::setup::AgentSpec;
use super::state::MasterState;

/// `Filters.refuse_seconds` default.
const DEFAULT_REFUSE_SECONDS: f64 = 5.0;
/// The allocator caps filters at 365 days.
const MAX_REFUSE_SECONDS: f64 = 365.0 * 86_400.0;
/// `MIN_CPUS` / `MIN_MEM`: less than both is not worth offering.
const MIN_CPUS: f64 = 0.01;
const MIN_MEM: f64 = 32.0;

/// `Master::offer` for a framework without MULTI_ROLE (MESOS-8237): the
/// offer and its resources carry no `allocation_info`.
fn strip_allocation_info(offer: &mut Offer) {
    offer.allocation_info = None;
    for resource in &mut offer.resources {
        resource.allocation_info = None;
    }
}

/// A refused-resources filter (`RefusedOfferFilter`) on one agent: while
/// it lasts, the agent's free resources are not offered to the framework
/// if they are contained in the refused ones.
#[derive(Debug, Clone)]
pub(crate) struct OfferFilter {
    resources: Resources,
    until: Instant,
}

impl MasterState {
    /// Registers a scripted agent; its resources are offered right away.
    pub(crate) fn add_agent(&mut self, spec: AgentSpec, now: Instant) {
        self.agents.insert(spec.agent_id.clone(), spec);
        self.allocate(now);
    }

    /// The agent's resources not used by live tasks (and their executors)
    /// nor held by outstanding offers.
    pub(crate) fn available(&self, agent: &AgentSpec) -> Resources {
        let mut free = agent.resources();
        free.subtract(&self.resources_in_use(&agent.agent_id));
        for offer in self.offers.on_agent(&agent.agent_id) {
            // Offers are built from valid resources.
            if let Ok(offered) = Resources::from_proto(&offer.resources) {
                free.subtract(&offered);
            }
        }
        free
    }

    /// One allocation cycle; the next one is due an allocation interval later.
    /// Costs O(agents × frameworks) plus recomputing the resources in use
    /// of the agents whose tasks changed since they were last computed.
    pub(crate) fn allocate(&mut self, now: Instant) {
        self.next_allocation = now + self.setup.allocation_interval;
        for framework in &mut self.frameworks {
            for filters in framework.filters.values_mut() {
                filters.retain(|filter| filter.until > now);
            }
            framework.filters.retain(|_, filters| !filters.is_empty());
        }
        // Offering on one agent changes nothing on another: choose first,
        // then make the offers.
        let mut chosen: Vec<(String, String, Resources)> = Vec::new();
        for agent in self.agents.values() {
            let free = self.available(agent);
            let allocatable =
                free.scalar_amount("cpus") >= MIN_CPUS || free.scalar_amount("mem") >= MIN_MEM;
            if !allocatable {
                continue;
            }
            let Some(framework) = self.frameworks.iter().find(|f| {
                let filtered = f.filters.get(&agent.agent_id).is_some_and(|filters| {
                    filters
                        .iter()
                        .any(|filter| filter.resources.contains(&free))
                });
                f.connection.is_some() && !f.suppressed && !filtered
            }) else {
                continue;
            };
            chosen.push((agent.agent_id.clone(), framework.id.clone(), free));
        }
        let mut made: Vec<Offer> = Vec::new();
        for (agent_id, framework_id, free) in chosen {
            let (Some(agent), Some(framework)) =
                (self.agents.get(&agent_id), self.framework(&framework_id))
            else {
                continue;
            };
            let (agent, role) = (agent.clone(), framework.role());
            let multi_role = framework.has_capability(framework_info::capability::Type::MultiRole);
            let mut offer = self.make_offer(&agent, &framework_id, &role, &free);
            if !multi_role {
                strip_allocation_info(&mut offer);
            }
            if let Some(timeout) = self.setup.offer_timeout {
                self.offer_deadlines
                    .push(now + timeout, offer.id.value.clone());
            }
            self.offers.insert(offer.clone());
            made.push(offer);
        }
        let mut recipients: Vec<String> =
            made.iter().map(|o| o.framework_id.value.clone()).collect();
        recipients.dedup();
        for framework_id in recipients {
            let offers = made
                .iter()
                .filter(|o| o.framework_id.value == framework_id)
                .cloned()
                .collect();
            let event = Event {
                r#type: Some(event::Type::Offers as i32),
                offers: Some(event::Offers { offers }),
                ..Default::default()
            };
            self.send_event(&framework_id, event);
        }
    }

    fn make_offer(
        &mut self,
        agent: &AgentSpec,
        framework_id: &str,
        role: &str,
        free: &Resources,
    ) -> Offer {
        let id = format!("{}-O{}", self.master_id, self.next_offer);
        self.next_offer += 1;
        let ip = agent
            .hostname
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| ip.to_string());
        Offer {
            id: OfferId { value: id },
            framework_id: FrameworkId {
                value: framework_id.to_owned(),
            },
            agent_id: AgentId {
                value: agent.agent_id.clone(),
            },
            hostname: agent.hostname.clone(),
            url: Some(Url {
                scheme: "http".to_owned(),
                address: Address {
                    hostname: Some(agent.hostname.clone()),
                    ip,
                    port: i32::from(agent.port),
                },
                path: Some("/slave(1)".to_owned()),
                query: Vec::new(),
                fragment: None,
            }),
            resources: free.to_proto(role),
            attributes: agent.attributes.clone(),
            executor_ids: self.executors_on(framework_id, &agent.agent_id),
            unavailability: None,
            allocation_info: Some(resource::AllocationInfo {
                role: Some(role.to_owned()),
            }),
        }
    }

    fn executors_on(&self, framework_id: &str, agent_id: &str) -> Vec<ExecutorId> {
        let mut ids: Vec<ExecutorId> = self
            .tasks
            .on_agent(agent_id)
            .map(|(_, t)| t)
            .filter(|t| t.framework_id == framework_id && t.is_live())
            .filter_map(|t| t.info.executor.as_ref().map(|e| e.executor_id.clone()))
            .collect();
        ids.dedup();
        ids
    }

    /// `Master::accept`: validate the offers, then run LAUNCH operations;
    /// what the operations leave unused is declined with the call's filters.
    pub(crate) fn accept(&mut self, framework_id: &str, accept: &call::Accept, now: Instant) {
        let error = self.validate_offers(framework_id, &accept.offer_ids);
        let mut offered = Resources::default();
        let mut agent_id = None;
        for offer_id in &accept.offer_ids {
            if let Some(offer) = self.offers.remove(&offer_id.value) {
                if let Ok(resources) = Resources::from_proto(&offer.resources) {
                    offered.add(&resources);
                }
                agent_id = Some(offer.agent_id.value);
            }
        }
        let (Some(agent_id), None) = (agent_id, &error) else {
            let reason = error.unwrap_or_else(|| "No offers specified".to_owned());
            self.drop_launches(framework_id, &accept.operations, &reason);
            return;
        };
        let mut remaining = offered;
        for operation in &accept.operations {
            match operation
                .r#type
                .and_then(|t| offer::operation::Type::try_from(t).ok())
            {
                Some(offer::operation::Type::Launch) => {
                    let tasks = operation.launch.clone().unwrap_or_default().task_infos;
                    for task in tasks {
                        self.launch(framework_id, &agent_id, task, &mut remaining, now);
                    }
                }
                Some(offer::operation::Type::LaunchGroup) => {
                    let tasks = operation
                        .launch_group
                        .clone()
                        .map(|group| group.task_group.tasks)
                        .unwrap_or_default();
                    for task in tasks {
                        let message = "LAUNCH_GROUP is not simulated by the fake master";
                        let reason = task_status::Reason::TaskGroupInvalid;
                        self.master_update(
                            framework_id,
                            &task.task_id,
                            Some(&task.agent_id),
                            TaskState::TaskError,
                            reason,
                            message,
                        );
                    }
                }
                // Reservations and volumes do not change what this master offers.
                _ => {}
            }
        }
        self.add_filter(
            framework_id,
            &agent_id,
            remaining,
            accept.filters.as_ref(),
            now,
        );
    }

    /// TASK_LOST (TASK_DROPPED for partition-aware frameworks) for every task
    /// of the LAUNCH operations of an ACCEPT with invalid offers.
    fn drop_launches(&mut self, framework_id: &str, operations: &[offer::Operation], error: &str) {
        let partition_aware = self
            .framework(framework_id)
            .is_some_and(|f| f.has_capability(framework_info::capability::Type::PartitionAware));
        let state = if partition_aware {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        let message = format!("Task launched with invalid offers: {error}");
        for operation in operations {
            let mut tasks = operation.launch.clone().unwrap_or_default().task_infos;
            if let Some(group) = &operation.launch_group {
                tasks.extend(group.task_group.tasks.clone());
            }
            for task in tasks {
                let reason = task_status::Reason::InvalidOffers;
                self.master_update(
                    framework_id,
                    &task.task_id,
                    Some(&task.agent_id),
                    state,
                    reason,
                    &message,
                );
            }
        }
    }

    /// `validation::offer::validate`: unique, outstanding, this framework's,
    /// one agent.
    fn validate_offers(&self, framework_id: &str, offer_ids: &[OfferId]) -> Option<String> {
        if offer_ids.is_empty() {
            return Some("No offers specified".to_owned());
        }
        for (index, id) in offer_ids.iter().enumerate() {
            if offer_ids[..index].contains(id) {
                return Some(format!("Duplicate offer {} in offer list", id.value));
            }
        }
        let mut agent: Option<&str> = None;
        for id in offer_ids {
            let Some(offer) = self.offers.get(&id.value) else {
                return Some(format!("Offer {} is no longer valid", id.value));
            };
            if offer.framework_id.value != framework_id {
                return Some(format!(
                    "Offer {} has invalid framework {} while framework {framework_id} is expected",
                    id.value, offer.framework_id.value
                ));
            }
            match agent {
                Some(first) if first != offer.agent_id.value => {
                    return Some(format!(
                        "Aggregated offers must belong to one single agent. Offer {} uses \
                         agent {} and agent {first}",
                        id.value, offer.agent_id.value
                    ));
                }
                _ => agent = Some(&offer.agent_id.value),
            }
        }
        None
    }

    /// `Master::decline`: the offers' resources return with a filter.
    pub(crate) fn decline(&mut self, framework_id: &str, decline: &call::Decline, now: Instant) {
        for offer_id in &decline.offer_ids {
            let valid = self
                .offers
                .get(&offer_id.value)
                .is_some_and(|o| o.framework_id.value == framework_id);
            // An offer no longer valid is ignored, as the master does.
            let Some(offer) = valid.then(|| self.offers.remove(&offer_id.value)).flatten() else {
                continue;
            };
            let resources = Resources::from_proto(&offer.resources).unwrap_or_default();
            self.add_filter(
                framework_id,
                &offer.agent_id.value,
                resources,
                decline.filters.as_ref(),
                now,
            );
        }
    }

    /// The allocator's `recoverResources` with filters: a refuse filter of
    /// `refuse_seconds` (default 5, negative → default, capped at 365 days,
    /// 0 → none) for non-empty resources.
    fn add_filter(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        resources: Resources,
        filters: Option<&Filters>,
        now: Instant,
    ) {
        let requested = filters
            .and_then(|f| f.refuse_seconds)
            .unwrap_or(DEFAULT_REFUSE_SECONDS);
        let seconds = if requested < 0.0 || requested.is_nan() {
            DEFAULT_REFUSE_SECONDS
        } else {
            requested.min(MAX_REFUSE_SECONDS)
        };
        if seconds == 0.0 || resources.is_empty() {
            return;
        }
        let Some(framework) = self.framework_mut(framework_id) else {
            return;
        };
        let filters = framework.filters.entry(agent_id.to_owned()).or_default();
        filters.push(OfferFilter {
            resources,
            until: now + Duration::from_secs_f64(seconds),
        });
    }

    /// REVIVE: clears the framework's filters and un-suppresses it (for the
    /// given roles, all when empty), then allocates.
    pub(crate) fn revive(&mut self, framework_id: &str, roles: &[String], now: Instant) {
        let Some(framework) = self.framework_mut(framework_id) else {
            return;
        };
        if roles.is_empty() || roles.contains(&framework.role()) {
            framework.filters.clear();
            framework.suppressed = false;
            self.allocate(now);
        }
    }

    /// SUPPRESS: no more offers until REVIVE (for the given roles, all when
    /// empty). Outstanding offers stay valid.
    pub(crate) fn suppress(&mut self, framework_id: &str, roles: &[String]) {
        if let Some(framework) = self.framework_mut(framework_id) {
            if roles.is_empty() || roles.contains(&framework.role()) {
                framework.suppressed = true;
            }
        }
    }

    /// Rescinds an outstanding offer (RESCIND event); its resources are
    /// offered again at the next allocation. False if there is no such offer.
    pub(crate) fn rescind(&mut self, offer_id: &str) -> bool {
        let Some(offer) = self.offers.remove(offer_id) else {
            return false;
        };
        let event = Event {
            r#type: Some(event::Type::Rescind as i32),
            rescind: Some(event::Rescind { offer_id: offer.id }),
            ..Default::default()
        };
        self.send_event(&offer.framework_id.value, event);
        true
    }

    /// `Master::offerTimeout`: offers outstanding longer than
    /// `--offer_timeout` are rescinded (RESCIND), their resources recovered
    /// without a filter (offered again at the next allocation).
    pub(crate) fn expire_offers(&mut self, now: Instant) {
        // Offer ids are never reused: a deadline of an offer gone meanwhile
        // finds nothing to rescind.
        for (_, offer_id) in self.offer_deadlines.pop_due(now) {
            self.rescind(&offer_id);
        }
    }

    /// Removes a framework's offers without telling it (disconnection,
    /// failover, removal).
    pub(crate) fn remove_offers_of(&mut self, framework_id: &str) {
        self.offers
            .remove_where(|o| o.framework_id.value == framework_id);
    }
}
