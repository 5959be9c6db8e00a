use super::*;

#[test]
fn durations_accept_units_and_plain_seconds() {
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("42"), Ok(Duration::from_secs(42)));
    assert_eq!(parse_duration(" 3 s "), Ok(Duration::from_secs(3)));
}

#[test]
fn durations_reject_garbage_negative_fractions_and_overflow() {
    for bad in [
        "",
        "s",
        "-1s",
        "1.5s",
        "10 years",
        "1w",
        "ten",
        "99999999999999999999d",
    ] {
        let error = parse_duration(bad).unwrap_err();
        assert!(error.contains("duration"), "{bad}: {error}");
    }
}

#[test]
fn positive_duration_refuses_zero() {
    assert!(parse_positive_duration("0s").is_err());
    assert_eq!(parse_positive_duration("1ms"), Ok(Duration::from_millis(1)));
}

#[test]
fn formatted_durations_read_back_exactly() {
    for text in [
        "0s", "500ms", "1500ms", "10s", "5m", "90s", "1h", "7d", "25h",
    ] {
        let duration = parse_duration(text).unwrap();
        assert_eq!(format_duration(duration), text);
        assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
    }
}

#[test]
fn booleans_accept_common_spellings_in_any_case() {
    for yes in ["true", "TRUE", "yes", "On", "1"] {
        assert_eq!(parse_bool(yes), Ok(true), "{yes}");
    }
    for no in ["false", "No", "off", "0"] {
        assert_eq!(parse_bool(no), Ok(false), "{no}");
    }
    assert!(parse_bool("maybe").unwrap_err().contains("boolean"));
}

#[test]
fn integers_respect_the_lower_bound() {
    assert_eq!(parse_integer_at_least::<usize>("100", 1), Ok(100));
    assert!(parse_integer_at_least::<usize>("0", 1)
        .unwrap_err()
        .contains("at least 1"));
    assert!(parse_integer_at_least::<usize>("-3", 1).is_err());
    assert!(parse_integer_at_least::<u32>("many", 0)
        .unwrap_err()
        .contains("whole number"));
}

#[test]
fn ports_are_16_bit() {
    assert_eq!(parse_port("8080"), Ok(8080));
    assert_eq!(parse_port("0"), Ok(0));
    assert!(parse_port("65536").is_err());
    assert!(parse_port("http").is_err());
}

#[test]
fn cpus_accept_fractions_and_zero_but_not_negative_or_infinite() {
    assert_eq!(parse_cpus("1.5"), Ok(1.5));
    assert_eq!(parse_cpus("0"), Ok(0.0));
    assert!(parse_cpus("-1").is_err());
    assert!(parse_cpus("inf").is_err());
    assert!(parse_cpus("NaN").is_err());
    assert!(parse_cpus("two").is_err());
}

#[test]
fn port_ranges_need_low_at_least_one_and_not_above_high() {
    assert_eq!(
        parse_port_range("31000-32000"),
        Ok(PortRange {
            low: 31000,
            high: 32000
        })
    );
    assert_eq!(parse_port_range("5-5").map(|range| range.len()), Ok(1));
    assert!(parse_port_range("0-10").unwrap_err().contains("at least 1"));
    assert!(parse_port_range("32000-31000")
        .unwrap_err()
        .contains("above"));
    for bad in ["31000", "a-b", "1-70000", "-5"] {
        assert!(parse_port_range(bad).is_err(), "{bad}");
    }
}

#[test]
fn credentials_need_both_parts_and_keep_colons_in_the_password() {
    let parsed = parse_credentials("admin:s3:cret").unwrap();
    assert_eq!(parsed.user, "admin");
    assert_eq!(parsed.password.expose(), "s3:cret");
    assert!(parse_credentials("admin")
        .unwrap_err()
        .contains("user:password"));
    assert!(parse_credentials(":pw").unwrap_err().contains("user part"));
    assert!(parse_credentials("admin:")
        .unwrap_err()
        .contains("password part"));
}

#[test]
fn secrets_never_print_their_value() {
    let secret = SecretString::new("hunter2");
    assert_eq!(format!("{secret}"), MASK);
    assert_eq!(format!("{secret:?}"), MASK);
    let credentials = parse_credentials("u:hunter2").unwrap();
    assert!(!format!("{credentials:?}").contains("hunter2"));
}

#[test]
fn bearer_tokens_must_be_header_safe_and_errors_do_not_repeat_them() {
    assert_eq!(
        parse_bearer_token("abc.DEF-123_~+/=", 1).map(|t| t.expose().to_owned()),
        Ok("abc.DEF-123_~+/=".to_owned())
    );
    assert!(parse_bearer_token("", 2)
        .unwrap_err()
        .contains("token 2 is empty"));
    let error = parse_bearer_token("with space", 1).unwrap_err();
    assert!(!error.contains("with space"), "{error}");
}

#[test]
fn url_prefix_starts_with_a_slash_and_does_not_end_with_one() {
    assert_eq!(parse_url_prefix(""), Ok(String::new()));
    assert_eq!(parse_url_prefix("/eremetic"), Ok("/eremetic".to_owned()));
    assert!(parse_url_prefix("eremetic")
        .unwrap_err()
        .contains("start with"));
    assert!(parse_url_prefix("/eremetic/")
        .unwrap_err()
        .contains("end with"));
    assert!(parse_url_prefix("/").is_err());
    assert!(parse_url_prefix("/a b").is_err());
}

#[test]
fn addresses_are_ip_addresses_or_localhost() {
    assert_eq!(parse_address("0.0.0.0"), Ok(IpAddr::from([0, 0, 0, 0])));
    assert_eq!(parse_address("localhost"), Ok(IpAddr::from([127, 0, 0, 1])));
    assert_eq!(parse_address("[::1]").map(|a| a.is_loopback()), Ok(true));
    assert!(parse_address("example.com")
        .unwrap_err()
        .contains("IP address"));
}

#[test]
fn log_levels_and_formats_parse_in_any_case() {
    assert_eq!(parse_log_level("DEBUG"), Ok(LogLevel::Debug));
    assert_eq!(parse_log_level("warning"), Ok(LogLevel::Warn));
    assert_eq!(parse_log_level("fatal"), Ok(LogLevel::Error));
    assert!(parse_log_level("verbose").is_err());
    assert_eq!(parse_log_format("JSON"), Ok(LogFormat::Json));
    assert_eq!(parse_log_format("text"), Ok(LogFormat::Text));
    assert!(parse_log_format("logfmt").is_err());
}

#[test]
fn eremetic_database_drivers_are_refused_with_an_explanation() {
    assert_eq!(parse_database_driver("sqlite"), Ok(DatabaseDriver::Sqlite));
    for driver in ["boltdb", "zk"] {
        let error = parse_database_driver(driver).unwrap_err();
        assert!(
            error.contains("Eremetic") && error.contains("SQLite"),
            "{error}"
        );
    }
    assert!(parse_database_driver("postgres").is_err());
}

#[test]
fn docker_hosts_need_a_known_scheme_and_an_absolute_socket() {
    assert!(parse_docker_host("unix:///var/run/docker.sock").is_ok());
    assert!(parse_docker_host("tcp://10.0.0.1:2375").is_ok());
    assert!(parse_docker_host("unix://docker.sock").is_err());
    assert!(parse_docker_host("tcp://").is_err());
    assert!(parse_docker_host("/var/run/docker.sock").is_err());
}

#[test]
fn lists_split_on_commas_and_keep_empty_items_for_the_item_parser() {
    assert_eq!(split_list("a, b ,c"), ["a", "b", "c"]);
    assert_eq!(split_list("a,,b"), ["a", "", "b"]);
}

#[test]
fn meminfo_total_is_read_in_mib() {
    let meminfo = "MemFree: 1 kB\nMemTotal:       16318412 kB\nSwapTotal: 0 kB\n";
    assert_eq!(parse_meminfo_total_mib(meminfo), Some(15935));
    assert_eq!(parse_meminfo_total_mib("MemFree: 1 kB\n"), None);
    assert_eq!(parse_meminfo_total_mib("MemTotal: lots kB\n"), None);
}
