//! The TASK_RUNNING report as Mesos' Docker executor makes it. Pure.
//!
//! Its `data` is the output of `docker inspect <container>`: a JSON array holding the one
//! container's document (Eremetic-style schedulers read the sandbox from its `Mounts`). Its
//! `container_status` has one `NetworkInfo` with the container's addresses, read as Mesos
//! reads them: `NetworkSettings.Networks.<HostConfig.NetworkMode>.IPAddress` and
//! `.GlobalIPv6Address`, falling back to the older `NetworkSettings.IPAddress` when the
//! network's entry has no address field; the task's first `NetworkInfo` (name, labels...) is
//! copied with its addresses replaced. Without an address (host network, none) there is no
//! `container_status`.

use mesos_proto::v1::{network_info, ContainerStatus, NetworkInfo, TaskState};
use serde_json::Value;

use super::status::Report;

/// The TASK_RUNNING report of a container whose `docker inspect` document is `inspect` (when
/// it could be read), for a task whose `ContainerInfo.network_infos` starts with `network`.
pub fn running_report(inspect: Option<&Value>, network: Option<&NetworkInfo>) -> Report {
    let mut report = Report::plain(TaskState::TaskRunning);
    let Some(document) = inspect else {
        return report;
    };
    report.data = serde_json::to_vec(&[document]).ok();
    let addresses = container_addresses(document);
    if !addresses.is_empty() {
        let mut info = network.cloned().unwrap_or_default();
        info.ip_addresses = addresses;
        report.container_status = Some(ContainerStatus {
            network_infos: vec![info],
            ..Default::default()
        });
    }
    report
}

/// The container's IPv4 and global IPv6 addresses, in that order.
pub fn container_addresses(document: &Value) -> Vec<network_info::IpAddress> {
    let settings = &document["NetworkSettings"];
    let network = document["HostConfig"]["NetworkMode"]
        .as_str()
        .map(|mode| &settings["Networks"][mode]);
    let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let (ipv4, ipv6) = match network {
        Some(network) if network["IPAddress"].is_string() => (
            text(&network["IPAddress"]),
            text(&network["GlobalIPv6Address"]),
        ),
        _ => (text(&settings["IPAddress"]), None),
    };
    let v4 = ipv4.map(|address| network_info::IpAddress {
        // IPv4 is the field's default; Mesos leaves it unset.
        protocol: None,
        ip_address: Some(address),
    });
    let v6 = ipv6.map(|address| network_info::IpAddress {
        protocol: Some(network_info::Protocol::IPv6 as i32),
        ip_address: Some(address),
    });
    v4.into_iter().chain(v6).collect()
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::Labels;
    use serde_json::json;

    use super::*;

    fn bridge_document() -> Value {
        json!({
            "Id": "abc",
            "HostConfig": { "NetworkMode": "bridge" },
            "Mounts": [{ "Source": "/sandbox", "Destination": "/mnt/mesos/sandbox" }],
            "NetworkSettings": {
                "IPAddress": "10.9.9.9",
                "Networks": {
                    "bridge": { "IPAddress": "172.17.0.5", "GlobalIPv6Address": "" }
                }
            }
        })
    }

    fn addresses(report: &Report) -> Vec<(Option<i32>, String)> {
        report
            .container_status
            .iter()
            .flat_map(|status| &status.network_infos)
            .flat_map(|info| &info.ip_addresses)
            .map(|ip| (ip.protocol, ip.ip_address.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn data_is_the_inspect_array_of_the_one_container() {
        let document = bridge_document();
        let report = running_report(Some(&document), None);
        assert_eq!(report.state, TaskState::TaskRunning);
        let data: Value = serde_json::from_slice(&report.data.unwrap_or_default()).unwrap();
        assert_eq!(data, json!([document]));
    }

    #[test]
    fn the_address_on_the_containers_network_mode_is_reported() {
        let report = running_report(Some(&bridge_document()), None);
        assert_eq!(addresses(&report), [(None, "172.17.0.5".to_owned())]);
    }

    #[test]
    fn an_ipv6_address_follows_the_ipv4_one_marked_as_ipv6() {
        let mut document = bridge_document();
        document["NetworkSettings"]["Networks"]["bridge"]["GlobalIPv6Address"] =
            json!("2001:db8::5");
        let report = running_report(Some(&document), None);
        assert_eq!(
            addresses(&report),
            [
                (None, "172.17.0.5".to_owned()),
                (
                    Some(network_info::Protocol::IPv6 as i32),
                    "2001:db8::5".to_owned()
                )
            ]
        );
    }

    #[test]
    fn without_the_networks_entry_the_older_field_is_read() {
        let mut document = bridge_document();
        document["NetworkSettings"]["Networks"] = json!({});
        let report = running_report(Some(&document), None);
        assert_eq!(addresses(&report), [(None, "10.9.9.9".to_owned())]);
    }

    #[test]
    fn a_user_network_keeps_the_tasks_network_info_with_the_real_address() {
        let document = json!({
            "HostConfig": { "NetworkMode": "team-net" },
            "NetworkSettings": { "Networks": { "team-net": { "IPAddress": "10.1.0.7" } } }
        });
        let asked = NetworkInfo {
            name: Some("team-net".into()),
            labels: Some(Labels::default()),
            ip_addresses: vec![network_info::IpAddress {
                protocol: None,
                ip_address: Some("0.0.0.0".into()),
            }],
            ..Default::default()
        };
        let report = running_report(Some(&document), Some(&asked));
        let info = &report.container_status.as_ref().unwrap().network_infos[0];
        assert_eq!(info.name.as_deref(), Some("team-net"));
        assert!(info.labels.is_some());
        assert_eq!(addresses(&report), [(None, "10.1.0.7".to_owned())]);
    }

    #[test]
    fn host_network_without_address_has_data_but_no_container_status() {
        let document = json!({
            "HostConfig": { "NetworkMode": "host" },
            "NetworkSettings": { "IPAddress": "", "Networks": { "host": { "IPAddress": "" } } }
        });
        let report = running_report(Some(&document), None);
        assert!(report.data.is_some());
        assert_eq!(report.container_status, None);
    }

    #[test]
    fn without_an_inspect_document_running_carries_nothing() {
        assert_eq!(
            running_report(None, None),
            Report::plain(TaskState::TaskRunning)
        );
    }
}
