//! Allocated Mesos ports: the environment they produce and how they are published.
//!
//! Rules (documented in the README):
//! - every allocated port is exported: `PORT` and `PORT0` = the first, `PORT<n>` = the n-th,
//!   `PORTS` = all of them, comma separated;
//! - explicit port mappings (DockerInfo `port_mappings`, `-p` options) are published as given;
//! - otherwise, on bridge/user networks, allocated ports are paired in order with the ports the
//!   image exposes (sorted by number): `allocated[i] → exposed[i]`. Allocated ports beyond the
//!   exposed list are exported but not published, so a large allocated range never turns into
//!   one publish rule per port (Deimos' D-1).

use crate::spec::{EnvVar, PortMapping, Protocol};

/// Upper bound on the number of allocated ports we accept from one launch. A Mesos agent offers
/// at most the 64 Ki port space; anything larger is a malformed message.
pub const MAX_ALLOCATED_PORTS: usize = 65_536;

/// Expands inclusive `[begin, end]` ranges into port numbers, in order, without duplicates.
///
/// Ranges outside 1..=65535 are rejected with a message naming the range.
pub fn expand_ranges(ranges: &[(u64, u64)]) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &(begin, end) in ranges {
        if begin == 0 || end > u64::from(u16::MAX) || begin > end {
            return Err(format!("invalid port range [{begin}-{end}]"));
        }
        if ports.len() as u64 + (end - begin + 1) > MAX_ALLOCATED_PORTS as u64 {
            return Err(format!("more than {MAX_ALLOCATED_PORTS} ports allocated"));
        }
        for port in begin..=end {
            let port = port as u16;
            if seen.insert(port) {
                ports.push(port);
            }
        }
    }
    Ok(ports)
}

/// The environment variables describing the allocated ports.
pub fn port_env(allocated: &[u16]) -> Vec<EnvVar> {
    let Some(first) = allocated.first() else {
        return Vec::new();
    };
    let mut env = Vec::with_capacity(allocated.len() + 2);
    env.push(EnvVar::new("PORT", first.to_string()));
    env.extend(
        allocated
            .iter()
            .enumerate()
            .map(|(i, p)| EnvVar::new(format!("PORT{i}"), p.to_string())),
    );
    let all: Vec<String> = allocated.iter().map(u16::to_string).collect();
    env.push(EnvVar::new("PORTS", all.join(",")));
    env
}

/// Pairs allocated host ports with the image's exposed ports, sorted by number then protocol.
pub fn pair_with_exposed(allocated: &[u16], exposed: &[(u16, Protocol)]) -> Vec<PortMapping> {
    let mut exposed = exposed.to_vec();
    exposed.sort_unstable();
    exposed.dedup();
    allocated
        .iter()
        .zip(exposed)
        .map(|(&host_port, (container_port, protocol))| PortMapping {
            host_port,
            container_port,
            protocol,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_inclusively_in_order() {
        assert_eq!(
            expand_ranges(&[(31000, 31002), (40, 40)]).unwrap(),
            vec![31000, 31001, 31002, 40]
        );
    }

    #[test]
    fn overlapping_ranges_do_not_duplicate_ports() {
        assert_eq!(
            expand_ranges(&[(10, 12), (11, 13)]).unwrap(),
            vec![10, 11, 12, 13]
        );
    }

    #[test]
    fn out_of_range_ports_are_rejected() {
        assert!(expand_ranges(&[(0, 5)]).unwrap_err().contains("[0-5]"));
        assert!(expand_ranges(&[(65000, 70000)]).is_err());
        assert!(expand_ranges(&[(9, 3)]).is_err());
    }

    #[test]
    fn env_exports_port_port_n_and_ports() {
        let env = port_env(&[31000, 31005]);
        let pairs: Vec<(&str, &str)> = env
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("PORT", "31000"),
                ("PORT0", "31000"),
                ("PORT1", "31005"),
                ("PORTS", "31000,31005")
            ]
        );
        assert!(port_env(&[]).is_empty());
    }

    #[test]
    fn large_allocation_publishes_only_exposed_ports() {
        let allocated = expand_ranges(&[(31000, 32000)]).unwrap();
        let exposed = [(443, Protocol::Tcp), (80, Protocol::Tcp)];
        let mappings = pair_with_exposed(&allocated, &exposed);
        assert_eq!(mappings.len(), 2);
        assert_eq!(
            (mappings[0].host_port, mappings[0].container_port),
            (31000, 80)
        );
        assert_eq!(
            (mappings[1].host_port, mappings[1].container_port),
            (31001, 443)
        );
    }

    #[test]
    fn fewer_allocated_than_exposed_publishes_what_is_allocated() {
        let mappings = pair_with_exposed(&[31000], &[(80, Protocol::Tcp), (53, Protocol::Udp)]);
        assert_eq!(
            mappings,
            vec![PortMapping {
                host_port: 31000,
                container_port: 53,
                protocol: Protocol::Udp
            }]
        );
    }
}
