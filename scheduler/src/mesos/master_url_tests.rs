use super::*;

fn http(value: &str) -> HttpMaster {
    match MasterUrl::parse(value) {
        Ok(MasterUrl::Http(master)) => master,
        other => panic!("{value}: expected an HTTP master, got {other:?}"),
    }
}

fn zk(value: &str) -> ZkTarget {
    match MasterUrl::parse(value) {
        Ok(MasterUrl::ZooKeeper(target)) => target,
        other => panic!("{value}: expected a ZooKeeper target, got {other:?}"),
    }
}

fn error(value: &str) -> String {
    match MasterUrl::parse(value) {
        Err(error) => error.to_string(),
        Ok(parsed) => panic!("{value}: expected an error, got {parsed:?}"),
    }
}

#[test]
fn host_port_is_a_plain_http_master() {
    let master = http("m1.example:5050");
    assert_eq!(master.scheme, Scheme::Http);
    assert_eq!((master.host.as_str(), master.port), ("m1.example", 5050));
    assert_eq!(
        master.scheduler_endpoint(),
        "http://m1.example:5050/api/v1/scheduler"
    );
}

#[test]
fn master_pid_form_and_missing_port_are_accepted() {
    assert_eq!(http("master@10.0.0.1:5051").host, "10.0.0.1");
    assert_eq!(http("master@10.0.0.1:5051").port, 5051);
    assert_eq!(http("m1").port, DEFAULT_MASTER_PORT);
}

#[test]
fn http_and_https_urls_keep_scheme_and_prefix() {
    let master = http("https://m1:8443/mesos/");
    assert_eq!(master.scheme, Scheme::Https);
    assert_eq!(master.path_prefix, "/mesos");
    assert_eq!(
        master.scheduler_endpoint(),
        "https://m1:8443/mesos/api/v1/scheduler"
    );
    assert_eq!(http("http://m1:5050/").base_url(), "http://m1:5050");
}

#[test]
fn ipv6_hosts_are_bracketed_in_urls() {
    let master = http("http://[::1]:5050");
    assert_eq!(master.host, "::1");
    assert_eq!(master.base_url(), "http://[::1]:5050");
    assert_eq!(http("[fe80::1]").port, DEFAULT_MASTER_PORT);
}

#[test]
fn bad_http_values_are_errors_naming_the_value() {
    for (value, fragment) in [
        ("", "empty"),
        ("m1:0", "1-65535"),
        ("m1:http", "1-65535"),
        ("m1:5050/path", "scheme"),
        ("ftp://m1:21", "unsupported scheme"),
        ("http://u:p@m1:5050", "credentials"),
        ("http://:5050", "host is empty"),
        ("http://[::1:5050", "unterminated"),
        ("http://m1:5050/?x=1", "query"),
        ("file:///etc/mesos/master", "file://"),
    ] {
        let message = error(value);
        assert!(
            message.contains(&format!("{value:?}")) && message.contains(fragment),
            "{value}: {message}"
        );
    }
}

#[test]
fn zk_url_with_several_hosts_and_nested_path() {
    let target = zk("zk://zk1:2181,zk2:2182,zk3/mesos/prod");
    assert_eq!(target.path, "/mesos/prod");
    assert_eq!(target.credentials, None);
    assert_eq!(target.connect_string(), "zk1:2181,zk2:2182,zk3:2181");
}

#[test]
fn zk_credentials_precede_the_last_at_sign() {
    let target = zk("zk://user:p@ss@zk1:2181/mesos");
    let credentials = target.credentials.expect("credentials");
    assert_eq!(credentials.username, "user");
    assert_eq!(credentials.password(), "p@ss");
    assert_eq!(credentials.digest(), "user:p@ss");
    assert!(!format!("{credentials:?}").contains("p@ss"));
}

#[test]
fn bad_zk_values_are_errors_naming_the_value() {
    for (value, fragment) in [
        ("zk://zk1:2181", "needs a path"),
        ("zk://zk1:2181/", "/ alone"),
        ("zk://zk1:2181/mesos/", "trailing"),
        ("zk://zk1:2181//mesos", "empty component"),
        ("zk:///mesos", "at least one"),
        ("zk://zk1:2181,,zk2/mesos", "host is empty"),
        ("zk://user@zk1/mesos", "user:password"),
        ("zk://zk1:99999/mesos", "1-65535"),
    ] {
        let message = error(value);
        assert!(
            message.contains(&format!("{value:?}")) && message.contains(fragment),
            "{value}: {message}"
        );
    }
}

#[test]
fn leader_is_the_member_with_the_smallest_sequence() {
    let children = [
        "log_replicas",
        "json.info_0000000012",
        "json.info_0000000009",
        "info_0000000010",
        "0000000011",
    ];
    assert_eq!(leader_node(children), Some("json.info_0000000009"));
    assert_eq!(leader_node(["log_replicas"]), None);
    assert_eq!(
        leader_node(["0000000004", "info_0000000005"]),
        Some("0000000004")
    );
}

#[test]
fn json_master_info_is_reached_at_its_pid_as_the_scheduler_library_does() {
    let data = br#"{"address":{"hostname":"m1","ip":"10.0.0.1","port":5050},"hostname":"m1",
        "id":"x","ip":16777226,"pid":"master@10.0.0.2:5051","port":5050,"version":"1.0.0"}"#;
    let master = master_from_node("json.info_0000000012", data).expect("master");
    assert_eq!(master.base_url(), "http://10.0.0.2:5051");
    // Without a pid: the address's ip, then its host name.
    let data = br#"{"address":{"hostname":"m1","ip":"10.0.0.1","port":5050},"id":"x","ip":0,
        "port":5050}"#;
    let master = master_from_node("json.info_0000000012", data).expect("master");
    assert_eq!(master.base_url(), "http://10.0.0.1:5050");
    let data = br#"{"address":{"hostname":"m1","port":5050},"id":"x","ip":0,"port":5050}"#;
    let master = master_from_node("json.info_0000000012", data).expect("master");
    assert_eq!(master.base_url(), "http://m1:5050");
    let message = master_from_node("json.info_0000000012", br#"{"pid":"master@:x","id":"x"}"#)
        .expect_err("bad pid")
        .to_string();
    assert!(message.contains("bad master pid"), "{message}");
}

#[test]
fn legacy_ip_field_is_in_network_byte_order() {
    let info = mesos_proto::v1::MasterInfo {
        id: "x".into(),
        ip: 16_777_226,
        port: 5051,
        ..Default::default()
    };
    let data = info.encode_to_vec();
    let master = master_from_node("info_0000000001", &data).expect("master");
    assert_eq!((master.host.as_str(), master.port), ("10.0.0.1", 5051));
}

#[test]
fn unlabelled_node_holds_a_master_pid() {
    let master = master_from_node("0000000003", b"master@10.1.2.3:5050").expect("master");
    assert_eq!(master.base_url(), "http://10.1.2.3:5050");
}

#[test]
fn unreadable_master_info_names_the_node() {
    let message = master_from_node("json.info_0000000001", b"{not json")
        .expect_err("bad json")
        .to_string();
    assert!(message.contains("json.info_0000000001"), "{message}");
    let message = master_from_node("weird_0000000001", b"")
        .expect_err("bad label")
        .to_string();
    assert!(message.contains("unknown node label"), "{message}");
}
