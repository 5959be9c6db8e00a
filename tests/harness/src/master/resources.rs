//! Resource arithmetic as the master does it: SCALAR amounts in Mesos'
//! fixed-point precision (three decimal digits) and RANGES as sets of
//! inclusive intervals, keyed by resource name and role. Pure values, no I/O.

use std::collections::BTreeMap;

use mesos_proto::v1::{resource, value, Resource};

/// Resources keyed by `(name, role)`. Scalars are kept in thousandths, as
/// Mesos rounds scalar values to three decimal digits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resources {
    scalars: BTreeMap<(String, String), i64>,
    ranges: BTreeMap<(String, String), Vec<(u64, u64)>>,
}

/// The role of an unreserved resource.
const UNRESERVED: &str = "*";

#[allow(deprecated)] // `role`: see the module docs
impl Resources {
    /// A SCALAR amount of `name` (unreserved).
    pub(crate) fn scalar(name: &str, amount: f64) -> Resources {
        let mut resources = Resources::default();
        let milli = to_milli(amount);
        if milli > 0 {
            resources.scalars.insert(key(name, UNRESERVED), milli);
        }
        resources
    }

    /// RANGES of `name` (unreserved).
    pub(crate) fn ranges(name: &str, ranges: &[(u64, u64)]) -> Resources {
        let mut resources = Resources::default();
        let set = normalize(ranges.to_vec());
        if !set.is_empty() {
            resources.ranges.insert(key(name, UNRESERVED), set);
        }
        resources
    }

    /// Parses Resource messages, rejecting invalid ones as
    /// `Resources::validate` does (missing value of the declared type,
    /// negative or non-finite scalars, inverted ranges, SET/TEXT types).
    pub(crate) fn from_proto(resources: &[Resource]) -> Result<Resources, String> {
        let mut total = Resources::default();
        for resource in resources {
            total.add(&Resources::from_one(resource)?);
        }
        Ok(total)
    }

    fn from_one(resource: &Resource) -> Result<Resources, String> {
        let name = &resource.name;
        if name.is_empty() {
            return Err("Empty resource name".to_owned());
        }
        let role = resource_role(resource);
        let mut one = Resources::default();
        match value::Type::try_from(resource.r#type) {
            Ok(value::Type::Scalar) => {
                let Some(scalar) = &resource.scalar else {
                    return Err(format!("Invalid scalar resource {name}: no scalar value"));
                };
                if !scalar.value.is_finite() || scalar.value < 0.0 {
                    return Err(format!(
                        "Invalid scalar resource {name}: {} is negative or not finite",
                        scalar.value
                    ));
                }
                let milli = to_milli(scalar.value);
                if milli > 0 {
                    one.scalars.insert(key(name, &role), milli);
                }
            }
            Ok(value::Type::Ranges) => {
                let Some(ranges) = &resource.ranges else {
                    return Err(format!("Invalid ranges resource {name}: no ranges value"));
                };
                let mut set = Vec::new();
                for range in &ranges.range {
                    if range.begin > range.end {
                        return Err(format!(
                            "Invalid ranges resource {name}: range [{}-{}] begins after it ends",
                            range.begin, range.end
                        ));
                    }
                    set.push((range.begin, range.end));
                }
                let set = normalize(set);
                if !set.is_empty() {
                    one.ranges.insert(key(name, &role), set);
                }
            }
            _ => {
                return Err(format!(
                    "Unsupported type of resource {name}: only SCALAR and RANGES are offered"
                ))
            }
        }
        Ok(one)
    }

    /// Resource messages in the pre-reservation-refinement format the master
    /// uses for frameworks without RESERVATION_REFINEMENT: `role` set, and
    /// `allocation_info` naming the role the resources are allocated to.
    pub(crate) fn to_proto(&self, allocation_role: &str) -> Vec<Resource> {
        let allocation_info = Some(resource::AllocationInfo {
            role: Some(allocation_role.to_owned()),
        });
        let mut out = Vec::new();
        for ((name, role), milli) in &self.scalars {
            out.push(Resource {
                name: name.clone(),
                r#type: value::Type::Scalar as i32,
                scalar: Some(value::Scalar {
                    value: *milli as f64 / 1000.0,
                }),
                role: Some(role.clone()),
                allocation_info: allocation_info.clone(),
                ..Default::default()
            });
        }
        for ((name, role), set) in &self.ranges {
            let range = set
                .iter()
                .map(|&(begin, end)| value::Range { begin, end })
                .collect();
            out.push(Resource {
                name: name.clone(),
                r#type: value::Type::Ranges as i32,
                ranges: Some(value::Ranges { range }),
                role: Some(role.clone()),
                allocation_info: allocation_info.clone(),
                ..Default::default()
            });
        }
        out
    }

    /// True when nothing is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.scalars.is_empty() && self.ranges.is_empty()
    }

    /// The unreserved amount of scalar `name`.
    pub(crate) fn scalar_amount(&self, name: &str) -> f64 {
        self.scalars
            .get(&key(name, UNRESERVED))
            .map_or(0.0, |milli| *milli as f64 / 1000.0)
    }

    /// `self += other`.
    pub(crate) fn add(&mut self, other: &Resources) {
        for (k, milli) in &other.scalars {
            *self.scalars.entry(k.clone()).or_insert(0) += milli;
        }
        for (k, set) in &other.ranges {
            let entry = self.ranges.entry(k.clone()).or_default();
            entry.extend(set.iter().copied());
            *entry = normalize(std::mem::take(entry));
        }
    }

    /// `self -= other`, dropping what is not there.
    pub(crate) fn subtract(&mut self, other: &Resources) {
        for (k, milli) in &other.scalars {
            if let Some(mine) = self.scalars.get_mut(k) {
                *mine -= milli;
                if *mine <= 0 {
                    self.scalars.remove(k);
                }
            }
        }
        for (k, set) in &other.ranges {
            if let Some(mine) = self.ranges.get_mut(k) {
                *mine = subtract_ranges(mine, set);
                if mine.is_empty() {
                    self.ranges.remove(k);
                }
            }
        }
    }

    /// The `/state` form (`json(JSON::ObjectWriter*, const Resources&)` in
    /// `src/common/http.cpp`): amounts summed over roles, `cpus`, `gpus`,
    /// `mem` and `disk` always present (0 when absent), ranges as
    /// `"[31000-31009, 32000-32000]"`.
    pub(crate) fn to_state_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        for name in ["cpus", "gpus", "mem", "disk"] {
            object.insert(name.to_owned(), serde_json::json!(0.0));
        }
        let mut scalars: BTreeMap<&str, i64> = BTreeMap::new();
        for ((name, _), milli) in &self.scalars {
            *scalars.entry(name).or_insert(0) += milli;
        }
        for (name, milli) in scalars {
            object.insert(name.to_owned(), serde_json::json!(milli as f64 / 1000.0));
        }
        let mut ranges: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
        for ((name, _), set) in &self.ranges {
            ranges.entry(name).or_default().extend(set.iter().copied());
        }
        for (name, set) in ranges {
            let text: Vec<String> = normalize(set)
                .iter()
                .map(|(b, e)| format!("{b}-{e}"))
                .collect();
            object.insert(name.to_owned(), format!("[{}]", text.join(", ")).into());
        }
        serde_json::Value::Object(object)
    }

    /// Whether every amount of `other` is available in `self`.
    pub(crate) fn contains(&self, other: &Resources) -> bool {
        let scalars_fit = other
            .scalars
            .iter()
            .all(|(k, milli)| self.scalars.get(k).is_some_and(|mine| mine >= milli));
        let ranges_fit = other.ranges.iter().all(|(k, set)| {
            self.ranges
                .get(k)
                .is_some_and(|mine| subtract_ranges(set, mine).is_empty())
        });
        scalars_fit && ranges_fit
    }
}

/// Human-readable form as Mesos prints resources (`cpus(*):1; mem(*):128`).
impl std::fmt::Display for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for ((name, role), milli) in &self.scalars {
            parts.push(format!("{name}({role}):{}", *milli as f64 / 1000.0));
        }
        for ((name, role), set) in &self.ranges {
            let ranges: Vec<String> = set.iter().map(|(b, e)| format!("{b}-{e}")).collect();
            parts.push(format!("{name}({role}):[{}]", ranges.join(", ")));
        }
        write!(f, "{}", parts.join("; "))
    }
}

fn key(name: &str, role: &str) -> (String, String) {
    (name.to_owned(), role.to_owned())
}

/// The role a resource belongs to: the innermost reservation's, else the
/// legacy `role` field, else unreserved.
#[allow(deprecated)] // `role`: see the module docs
fn resource_role(resource: &Resource) -> String {
    if let Some(role) = resource.reservations.last().and_then(|r| r.role.clone()) {
        return role;
    }
    resource
        .role
        .clone()
        .unwrap_or_else(|| UNRESERVED.to_owned())
}

/// Mesos' fixed-point conversion: round to three decimal digits.
fn to_milli(amount: f64) -> i64 {
    // Test resource amounts are far below i64::MAX thousandths.
    (amount * 1000.0).round() as i64
}

/// Sorts and merges overlapping or adjacent intervals.
fn normalize(mut set: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    set.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (begin, end) in set {
        match merged.last_mut() {
            Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((begin, end)),
        }
    }
    merged
}

/// `a \ b` for normalized interval sets.
fn subtract_ranges(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(begin, end) in a {
        let mut pieces = vec![(begin, end)];
        for &(cut_begin, cut_end) in b {
            pieces = pieces
                .into_iter()
                .flat_map(|(b0, e0)| {
                    let mut kept = Vec::new();
                    if cut_end < b0 || cut_begin > e0 {
                        kept.push((b0, e0));
                    } else {
                        if cut_begin > b0 {
                            kept.push((b0, cut_begin - 1));
                        }
                        if cut_end < e0 {
                            kept.push((cut_end + 1, e0));
                        }
                    }
                    kept
                })
                .collect();
        }
        out.extend(pieces);
    }
    out
}

#[cfg(test)]
#[allow(deprecated)] // `role`: see the module docs
mod tests {
    use super::*;

    fn cpus_mem_ports(cpus: f64, mem: f64, ports: &[(u64, u64)]) -> Resources {
        let mut r = Resources::scalar("cpus", cpus);
        r.add(&Resources::scalar("mem", mem));
        r.add(&Resources::ranges("ports", ports));
        r
    }

    #[test]
    fn scalars_compare_at_three_decimal_digits() {
        let offered = Resources::scalar("cpus", 0.3);
        let mut used = Resources::scalar("cpus", 0.1);
        used.add(&Resources::scalar("cpus", 0.2));
        assert!(offered.contains(&used));
        assert!(!offered.contains(&Resources::scalar("cpus", 0.301)));
    }

    #[test]
    fn ranges_subtract_and_contain_sub_intervals() {
        let mut offered = cpus_mem_ports(2.0, 1024.0, &[(31000, 31010)]);
        let task = cpus_mem_ports(1.0, 512.0, &[(31002, 31003)]);
        assert!(offered.contains(&task));
        offered.subtract(&task);
        assert_eq!(
            offered,
            cpus_mem_ports(1.0, 512.0, &[(31000, 31001), (31004, 31010)])
        );
        assert!(!offered.contains(&Resources::ranges("ports", &[(31003, 31003)])));
    }

    #[test]
    fn proto_round_trip_keeps_amounts_and_sets_role_and_allocation_info() {
        let resources = cpus_mem_ports(1.5, 256.0, &[(1, 5)]);
        let proto = resources.to_proto("*");
        assert!(proto.iter().all(|r| r.role.as_deref() == Some("*")));
        assert_eq!(Resources::from_proto(&proto), Ok(resources));
    }

    #[test]
    fn invalid_resources_are_rejected() {
        let negative = Resource {
            name: "cpus".into(),
            r#type: value::Type::Scalar as i32,
            scalar: Some(value::Scalar { value: -1.0 }),
            ..Default::default()
        };
        assert!(Resources::from_proto(&[negative]).is_err());
        let no_scalar = Resource {
            name: "mem".into(),
            r#type: value::Type::Scalar as i32,
            ..Default::default()
        };
        assert!(Resources::from_proto(&[no_scalar]).is_err());
    }

    #[test]
    fn reserved_resources_do_not_fit_unreserved_ones() {
        let reserved = Resource {
            name: "cpus".into(),
            r#type: value::Type::Scalar as i32,
            scalar: Some(value::Scalar { value: 1.0 }),
            role: Some("prod".into()),
            ..Default::default()
        };
        let task = Resources::from_proto(&[reserved]).unwrap();
        assert!(!Resources::scalar("cpus", 4.0).contains(&task));
    }
}
