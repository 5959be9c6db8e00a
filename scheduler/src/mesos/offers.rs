//! Offers: what an offer holds for our role, whether a task fits it, and exactly which
//! resources and host ports to claim — also for several tasks packed into one offer.
//!
//! Fixes of Eremetic's matching (E-5, E-7, E-16): `cpus`/`mem` are summed over every usable
//! resource of that name (not only the first), usable meaning unreserved (`*`) or reserved for
//! the framework's role, neither revocable nor shared; ports are checked and chosen from the
//! offered ranges in ascending order and given to the requested ports in REQUEST order, and
//! the claimed ranges hold exactly the chosen ports; constraints look at every attribute of
//! the name and match TEXT and SCALAR attributes; a task that does not fit does not stop the
//! tasks behind it ([`place`]).
//!
//! Amounts are handled in thousandths (Mesos keeps scalars with three decimals), so that
//! summing and subtracting never drifts.

use std::fmt;

use mesos_proto::v1::{value, Attribute, Offer, OfferId, Resource};
use time::OffsetDateTime;

use crate::backend::Resources;
use crate::task::{AgentConstraint, NewTask};

/// Why an offer cannot take a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    /// Not enough CPUs left.
    Cpus {
        /// Usable CPUs left in the offer.
        offered: f64,
        /// CPUs the task needs.
        needed: f64,
    },
    /// Not enough memory left.
    Mem {
        /// Usable MiB left in the offer.
        offered: f64,
        /// MiB the task needs.
        needed: f64,
    },
    /// Not enough ports left.
    Ports {
        /// Usable ports left in the offer.
        offered: usize,
        /// Ports the task needs.
        needed: usize,
    },
    /// An agent constraint does not hold.
    Constraint {
        /// Attribute name.
        name: String,
        /// Required value.
        value: String,
    },
    /// The agent is in a maintenance window now.
    Unavailable,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Cpus { offered, needed } => {
                write!(f, "needs {needed} cpus, offer has {offered}")
            }
            Mismatch::Mem { offered, needed } => {
                write!(f, "needs {needed} MiB of memory, offer has {offered}")
            }
            Mismatch::Ports { offered, needed } => {
                write!(f, "needs {needed} ports, offer has {offered}")
            }
            Mismatch::Constraint { name, value } => write!(
                f,
                "agent attribute {name:?} is not {value:?} (or is not a TEXT or SCALAR attribute)"
            ),
            Mismatch::Unavailable => f.write_str("agent is in a maintenance window"),
        }
    }
}

/// The resources and host ports a task takes from an offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The offer's id.
    pub offer_id: String,
    /// The offer's agent.
    pub agent_id: String,
    /// Offered resources copied with only the amounts changed: the `TaskInfo`'s resources.
    pub resources: Vec<Resource>,
    /// Host ports, one per requested port, in request order.
    pub host_ports: Vec<u16>,
}

/// An offered scalar resource and what is left of it, in thousandths.
#[derive(Debug, Clone)]
struct ScalarPool {
    template: Resource,
    millis: i64,
}

/// An offered ports resource and its free ranges (sorted, disjoint, inclusive).
#[derive(Debug, Clone)]
struct PortPool {
    template: Resource,
    free: Vec<(u16, u16)>,
}

/// An offer and what is still free in it after the claims made so far.
#[derive(Debug, Clone)]
pub struct Leftovers {
    offer_id: String,
    agent_id: String,
    hostname: String,
    attributes: Vec<Attribute>,
    unavailable: Option<(i128, Option<i128>)>,
    cpus: Vec<ScalarPool>,
    mem: Vec<ScalarPool>,
    ports: Vec<PortPool>,
}

fn to_millis(amount: f64) -> i64 {
    // Saturating float-to-int conversion; NaN becomes 0.
    (amount * 1000.0).round() as i64
}

fn from_millis(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

/// The role a resource is reserved for (`*`: unreserved). With reservation refinement the
/// last reservation is the one that counts; the pre-refinement format keeps it in `role`.
// `role` is deprecated since Mesos 1.2 but is what pre-refinement masters (and 1.0) send.
#[allow(deprecated)]
pub fn reservation_role(resource: &Resource) -> &str {
    match resource.reservations.last() {
        Some(reservation) => reservation.role.as_deref().unwrap_or("*"),
        None => resource.role.as_deref().unwrap_or("*"),
    }
}

/// Whether a framework of `role` may use `resource`: unreserved or reserved for the role, not
/// revocable, not shared, not a disk volume.
pub fn usable(resource: &Resource, role: &str) -> bool {
    let reserved_for = reservation_role(resource);
    (reserved_for == "*" || reserved_for == role)
        && resource.revocable.is_none()
        && resource.shared.is_none()
        && resource.disk.is_none()
}

impl Leftovers {
    /// The usable resources of `offer` for a framework of `role` (resources reserved for the
    /// role come first, so that they are used before unreserved ones).
    pub fn new(offer: &Offer, role: &str) -> Leftovers {
        let mut usable: Vec<&Resource> = offer
            .resources
            .iter()
            .filter(|resource| usable(resource, role))
            .collect();
        usable.sort_by_key(|resource| reservation_role(resource) == "*");
        let scalars = |name: &str| -> Vec<ScalarPool> {
            usable
                .iter()
                .filter(|r| r.name == name && r.r#type() == value::Type::Scalar)
                .filter_map(|r| {
                    let millis = to_millis(r.scalar.as_ref()?.value);
                    (millis > 0).then(|| ScalarPool {
                        template: (*r).clone(),
                        millis,
                    })
                })
                .collect()
        };
        let ports = usable
            .iter()
            .filter(|r| r.name == "ports" && r.r#type() == value::Type::Ranges)
            .map(|r| PortPool {
                template: (*r).clone(),
                free: normalize(r.ranges.as_ref().map_or(&[][..], |ranges| &ranges.range)),
            })
            .filter(|pool| !pool.free.is_empty())
            .collect();
        Leftovers {
            offer_id: offer.id.value.clone(),
            agent_id: offer.agent_id.value.clone(),
            hostname: offer.hostname.clone(),
            attributes: offer.attributes.clone(),
            unavailable: offer.unavailability.as_ref().map(|window| {
                (
                    i128::from(window.start.nanoseconds),
                    window
                        .duration
                        .as_ref()
                        .map(|duration| i128::from(duration.nanoseconds)),
                )
            }),
            cpus: scalars("cpus"),
            mem: scalars("mem"),
            ports,
        }
    }

    /// The offer's id.
    pub fn offer_id(&self) -> &str {
        &self.offer_id
    }

    /// The offer's agent id.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// The offer's agent host name.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// What is still free: summed cpus and memory, number of ports.
    pub fn free(&self) -> Resources {
        Resources {
            cpus: from_millis(self.cpus.iter().map(|pool| pool.millis).sum()),
            mem_mib: from_millis(self.mem.iter().map(|pool| pool.millis).sum()),
            ports: self.port_count(),
        }
    }

    /// The free port ranges (inclusive), in claim order.
    pub fn free_ports(&self) -> Vec<(u16, u16)> {
        self.ports
            .iter()
            .flat_map(|pool| pool.free.iter().copied())
            .collect()
    }

    fn port_count(&self) -> usize {
        self.free_ports()
            .iter()
            .map(|(begin, end)| usize::from(end - begin) + 1)
            .sum()
    }

    /// Whether the agent is in a maintenance window at `now` (Eremetic's rule: a window that
    /// has started counts when it is indefinite or not over yet; future windows do not).
    pub fn unavailable_at(&self, now: OffsetDateTime) -> bool {
        let Some((start, duration)) = self.unavailable else {
            return false;
        };
        let now = now.unix_timestamp_nanos();
        start <= now && duration.is_none_or(|duration| now <= start + duration)
    }

    /// Whether the task could be claimed now, without claiming it.
    pub fn check(&self, task: &NewTask, now: OffsetDateTime) -> Result<(), Mismatch> {
        self.check_needs(&Resources::of(task), &task.agent_constraints, now)
    }

    /// Whether `needs` under `constraints` could be claimed now, without claiming them.
    pub fn check_needs(
        &self,
        needs: &Resources,
        constraints: &[AgentConstraint],
        now: OffsetDateTime,
    ) -> Result<(), Mismatch> {
        if self.unavailable_at(now) {
            return Err(Mismatch::Unavailable);
        }
        if let Some(unmet) = constraints
            .iter()
            .find(|constraint| !satisfies(&self.attributes, constraint))
        {
            return Err(Mismatch::Constraint {
                name: unmet.attribute_name.clone(),
                value: unmet.attribute_value.clone(),
            });
        }
        let free = self.free();
        if to_millis(needs.cpus) > to_millis(free.cpus) {
            return Err(Mismatch::Cpus {
                offered: free.cpus,
                needed: needs.cpus,
            });
        }
        if to_millis(needs.mem_mib) > to_millis(free.mem_mib) {
            return Err(Mismatch::Mem {
                offered: free.mem_mib,
                needed: needs.mem_mib,
            });
        }
        if needs.ports > free.ports {
            return Err(Mismatch::Ports {
                offered: free.ports,
                needed: needs.ports,
            });
        }
        Ok(())
    }

    /// Claims what `task` needs from the leftovers, or says why it does not fit (then nothing
    /// is claimed).
    pub fn claim(&mut self, task: &NewTask, now: OffsetDateTime) -> Result<Claim, Mismatch> {
        self.claim_needs(&Resources::of(task), &task.agent_constraints, now)
    }

    /// Claims `needs` under `constraints` from the leftovers, or says why they do not fit
    /// (then nothing is claimed).
    pub fn claim_needs(
        &mut self,
        needs: &Resources,
        constraints: &[AgentConstraint],
        now: OffsetDateTime,
    ) -> Result<Claim, Mismatch> {
        self.check_needs(needs, constraints, now)?;
        let mut resources = take_scalar(&mut self.cpus, to_millis(needs.cpus));
        resources.extend(take_scalar(&mut self.mem, to_millis(needs.mem_mib)));
        let (port_resources, host_ports) = take_ports(&mut self.ports, needs.ports);
        resources.extend(port_resources);
        Ok(Claim {
            offer_id: self.offer_id.clone(),
            agent_id: self.agent_id.clone(),
            resources,
            host_ports,
        })
    }

    /// Claims every task of `tasks` (in order) that still fits; returns the index of each
    /// placed task with its claim. A task that does not fit does not block the ones after it.
    pub fn pack(&mut self, tasks: &[&NewTask], now: OffsetDateTime) -> Vec<(usize, Claim)> {
        tasks
            .iter()
            .enumerate()
            .filter_map(|(index, task)| self.claim(task, now).ok().map(|claim| (index, claim)))
            .collect()
    }
}

/// One task placed by [`place`].
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// Index of the task in the list given to [`place`].
    pub task: usize,
    /// Index of the offer in the list given to [`place`].
    pub offer: usize,
    /// What the task takes from that offer.
    pub claim: Claim,
}

/// Places tasks (in queue order) on offers: each task goes to the first offer whose leftovers
/// fit it; tasks that fit nowhere are skipped, so one unschedulable task never holds up the
/// rest (E-5). Several tasks may share one offer.
pub fn place(offers: &mut [Leftovers], tasks: &[&NewTask], now: OffsetDateTime) -> Vec<Placed> {
    let mut placed = Vec::new();
    for (task_index, task) in tasks.iter().enumerate() {
        for (offer_index, offer) in offers.iter_mut().enumerate() {
            if let Ok(claim) = offer.claim(task, now) {
                placed.push(Placed {
                    task: task_index,
                    offer: offer_index,
                    claim,
                });
                break;
            }
        }
    }
    placed
}

/// The ids of the offers that nothing was placed on (to decline them).
pub fn unused_offers(offers: &[Leftovers], placed: &[Placed]) -> Vec<OfferId> {
    offers
        .iter()
        .enumerate()
        .filter(|(index, _)| !placed.iter().any(|p| p.offer == *index))
        .map(|(_, offer)| OfferId {
            value: offer.offer_id.clone(),
        })
        .collect()
}

/// Whether some attribute named like the constraint has its value: TEXT attributes compare
/// exactly (case-sensitive), SCALAR attributes numerically (to three decimals). SET and
/// RANGES attributes never match.
pub fn satisfies(attributes: &[Attribute], constraint: &AgentConstraint) -> bool {
    attributes
        .iter()
        .filter(|attribute| attribute.name == constraint.attribute_name)
        .any(|attribute| match attribute.r#type() {
            value::Type::Text => attribute
                .text
                .as_ref()
                .is_some_and(|text| text.value == constraint.attribute_value),
            value::Type::Scalar => match (
                attribute.scalar.as_ref(),
                constraint.attribute_value.trim().parse::<f64>(),
            ) {
                (Some(scalar), Ok(wanted)) if wanted.is_finite() => {
                    to_millis(scalar.value) == to_millis(wanted)
                }
                _ => false,
            },
            value::Type::Ranges | value::Type::Set => false,
        })
}

/// Sorted, merged, clipped to 1-65535 port ranges.
fn normalize(ranges: &[value::Range]) -> Vec<(u16, u16)> {
    let mut clipped: Vec<(u16, u16)> = ranges
        .iter()
        .filter(|range| range.begin <= range.end && range.end >= 1 && range.begin <= 65535)
        .map(|range| {
            let begin = u16::try_from(range.begin.max(1)).unwrap_or(u16::MAX);
            let end = u16::try_from(range.end.min(65535)).unwrap_or(u16::MAX);
            (begin, end)
        })
        .collect();
    clipped.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(clipped.len());
    for (begin, end) in clipped {
        match merged.last_mut() {
            Some(last) if u32::from(begin) <= u32::from(last.1) + 1 => last.1 = last.1.max(end),
            _ => merged.push((begin, end)),
        }
    }
    merged
}

/// Takes `millis` from the pools in order; one resource per pool used.
fn take_scalar(pools: &mut [ScalarPool], mut millis: i64) -> Vec<Resource> {
    let mut taken = Vec::new();
    for pool in pools.iter_mut() {
        if millis <= 0 {
            break;
        }
        let amount = millis.min(pool.millis);
        if amount <= 0 {
            continue;
        }
        pool.millis -= amount;
        millis -= amount;
        let mut resource = pool.template.clone();
        resource.scalar = Some(value::Scalar {
            value: from_millis(amount),
        });
        taken.push(resource);
    }
    taken
}

/// Takes the `count` lowest free ports (pools in order); returns one ranges resource per pool
/// used, holding exactly the taken ports, and the ports in the order taken.
fn take_ports(pools: &mut [PortPool], count: usize) -> (Vec<Resource>, Vec<u16>) {
    let mut resources = Vec::new();
    let mut ports = Vec::with_capacity(count);
    for pool in pools.iter_mut() {
        if ports.len() == count {
            break;
        }
        let mut taken: Vec<(u16, u16)> = Vec::new();
        let mut remaining = Vec::new();
        for &(begin, end) in &pool.free {
            let wanted = count - ports.len();
            let available = usize::from(end - begin) + 1;
            if wanted == 0 {
                remaining.push((begin, end));
                continue;
            }
            let used = wanted.min(available);
            // `used` ≤ `available` ≤ 65535, so the conversion cannot fail.
            let last = begin + u16::try_from(used - 1).unwrap_or(0);
            ports.extend(begin..=last);
            taken.push((begin, last));
            if last < end {
                remaining.push((last + 1, end));
            }
        }
        pool.free = remaining;
        if !taken.is_empty() {
            let mut resource = pool.template.clone();
            resource.ranges = Some(value::Ranges {
                range: taken
                    .into_iter()
                    .map(|(begin, end)| value::Range {
                        begin: u64::from(begin),
                        end: u64::from(end),
                    })
                    .collect(),
            });
            resources.push(resource);
        }
    }
    (resources, ports)
}

#[cfg(test)]
#[path = "offers_tests.rs"]
mod tests;
