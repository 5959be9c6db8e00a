//! End-to-end: how the `deimos` binary fails. Every failure gives its exit code and one line
//! on stderr, and leaves no state directory and no container behind.
//!
//! Needs Docker and the local test images: run `scripts/setup` first.

// Helpers outside #[test] functions unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod ecp_support;

use std::time::Duration;

use ecp_support::{tar_gz, Agent, HttpServer, Reply, Setup, BUSYBOX};
use mesos_proto::containerizer::{Launch, Wait};
use mesos_proto::ecp;
use mesos_proto::mesos;

/// The subcommands that read one record.
const WITH_INPUT: [&str; 5] = ["launch", "wait", "destroy", "usage", "update"];

fn assert_no_state(agent: &Agent) {
    let mesos = agent.state_root.join("mesos");
    let entries: Vec<_> = std::fs::read_dir(&mesos)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(entries.is_empty(), "state directories left: {entries:?}");
    assert_eq!(agent.docker_containers(), Vec::<String>::new());
}

#[test]
fn truncated_record_is_rejected_with_exit_4() {
    let agent = Agent::new("truncated");
    let mut bytes = 100u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0x0a; 10]);
    for sub in WITH_INPUT {
        let finished = agent.call(&[sub]).input(bytes.clone()).close_stdin().run();
        let line = finished.error_line(4);
        assert!(line.starts_with(&format!("deimos {sub}:")), "{line}");
    }
    assert_no_state(&agent);
}

#[test]
fn zero_length_record_is_rejected_without_reading_further() {
    let agent = Agent::new("zero-length");
    for sub in WITH_INPUT {
        // stdin stays open: a binary that read on after the length would hang here.
        let finished = agent.call(&[sub]).input(vec![0, 0, 0, 0]).run();
        finished.error_line(4);
        assert!(finished.elapsed < Duration::from_secs(10));
    }
    assert_no_state(&agent);
}

#[test]
fn huge_length_is_rejected_before_reading_the_payload() {
    let agent = Agent::new("huge-length");
    for sub in WITH_INPUT {
        let finished = agent
            .call(&[sub])
            .input(0xFFFF_FFF0u32.to_le_bytes().to_vec())
            .run();
        let line = finished.error_line(4);
        assert!(finished.elapsed < Duration::from_secs(10), "{line}");
    }
    assert_no_state(&agent);
}

#[test]
fn garbage_protobuf_is_rejected_with_exit_4() {
    let agent = Agent::new("garbage");
    let mut bytes = 6u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0xff; 6]);
    for sub in WITH_INPUT {
        agent.call(&[sub]).input(bytes.clone()).run().error_line(4);
    }
    assert_no_state(&agent);
}

#[test]
fn record_without_container_id_is_rejected_with_exit_4() {
    let agent = Agent::new("no-id");
    let mut launch = agent.executor("true").build().launch;
    launch.container_id.value.clear();
    let finished = agent
        .call(&["launch"])
        .input(ecp::encode_record(&launch).unwrap())
        .run();
    let line = finished.error_line(4);
    assert!(
        line.contains("container_id") || line.contains("container id"),
        "{line}"
    );

    let wait = Wait {
        container_id: mesos::ContainerId::default(),
    };
    let line = agent
        .call(&["wait"])
        .input(ecp::encode_record(&wait).unwrap())
        .run()
        .error_line(4)
        .to_owned();
    assert!(line.contains("container_id"), "{line}");
    assert_no_state(&agent);
}

#[test]
fn launch_without_task_or_executor_is_rejected() {
    let agent = Agent::new("empty-launch");
    let launch = Launch {
        container_id: mesos::ContainerId {
            value: ecp_support::new_container_id(),
        },
        ..Launch::default()
    };
    let finished = agent
        .call(&["launch"])
        .input(ecp::encode_record(&launch).unwrap())
        .run();
    let line = finished.error_line(4);
    assert!(line.contains(&launch.container_id.value), "{line}");
    assert!(line.contains("executor_info"), "{line}");
    assert_no_state(&agent);
}

#[test]
fn unknown_subcommand_exits_1() {
    let agent = Agent::new("unknown-subcommand");
    let finished = agent.call(&["frobnicate"]).run();
    assert_eq!(finished.code(), Some(1));
    assert!(finished
        .stderr
        .contains("unknown subcommand \"frobnicate\""));
    // The agent never sends anything else, but a stray argument must not be taken for one.
    let finished = agent.call(&["wait", "extra"]).run();
    assert_eq!(finished.code(), Some(1), "{}", finished.stderr);
}

#[test]
fn help_exits_0_and_no_arguments_exit_1() {
    let agent = Agent::new("help");
    let help = agent.call(&["help"]).run().success();
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(text.starts_with("Usage: deimos"), "{text}");
    for sub in [
        "launch",
        "wait",
        "destroy",
        "usage",
        "update",
        "containers",
        "recover",
    ] {
        assert!(text.contains(&format!("deimos {sub}")), "help lacks {sub}");
    }
    let none = agent.call(&[]).run();
    assert_eq!(none.code(), Some(1));
    assert!(none.stderr.contains("please specify a subcommand"));
}

#[test]
fn d17_unknown_docker_flag_in_legacy_options_fails_the_launch() {
    let agent = Agent::new("bad-option");
    let c = agent
        .executor("true")
        .legacy_container(&format!("docker:///{BUSYBOX}"), &["--frobnicate", "x"])
        .build();
    let line = agent.launch(&c).error_line(4).to_owned();
    assert!(line.contains("--frobnicate"), "{line}");
    assert!(line.contains(&c.id), "{line}");
    agent.assert_nothing_left(&c.id);
}

#[test]
fn state_root_with_colon_is_a_config_error_naming_file_section_and_key() {
    let agent = Setup::new("config-colon")
        .set("state", "root", "/tmp/deimos-test:colon")
        .start();
    for args in [&["containers"][..], &["recover"], &["state"]] {
        let finished = agent.call(args).run();
        let line = finished.error_line(16);
        assert!(line.contains(agent.config_path.to_str().unwrap()), "{line}");
        assert!(line.contains("state") && line.contains("root"), "{line}");
        assert!(line.contains("':'"), "{line}");
    }
    assert!(!std::path::Path::new("/tmp/deimos-test:colon").exists());
}

#[test]
fn d14_unknown_config_key_is_an_error_not_silently_dropped() {
    let agent = Setup::new("d14")
        .set("containers", "stop_grace_perod", "1s")
        .start();
    let c = agent.executor("true").build();
    let line = agent.launch(&c).error_line(16).to_owned();
    assert!(line.contains("stop_grace_perod"), "{line}");
    assert!(line.contains("containers"), "{line}");
    agent.assert_nothing_left(&c.id);

    let agent = Setup::new("d14-bool")
        .set("uris", "unpack", "maybe")
        .start();
    let line = agent.call(&["containers"]).run().error_line(16).to_owned();
    assert!(line.contains("unpack"), "{line}");
}

#[test]
fn uri_is_fetched_and_extracted_before_the_container_starts() {
    let agent = Agent::new("uri");
    let archive = tar_gz(&[("data/hello.txt", b"hello from the archive\n")]);
    let server = HttpServer::start(vec![
        ("/bundle.tar.gz", Reply::Body(archive)),
        ("/script.sh", Reply::Body(b"echo script ran\n".to_vec())),
    ]);
    let c = agent
        .executor("cat data/hello.txt && sh script.sh")
        .uri(&server.url("/bundle.tar.gz"))
        .uri(&server.url("/script.sh"))
        .build();
    agent.launch_ok(&c);
    assert_eq!(agent.wait(&c).status, Some(0));
    assert_eq!(
        c.sandbox_file("stdout"),
        "hello from the archive\nscript ran\n"
    );
}

#[test]
fn d19_failed_uri_fetch_fails_the_launch() {
    let agent = Agent::new("d19");
    let server = HttpServer::start(vec![("/present.txt", Reply::Body(b"x".to_vec()))]);
    let missing = server.url("/missing.tar.gz");
    let c = agent
        .executor("true")
        .uri(&server.url("/present.txt"))
        .uri(&missing)
        .build();
    let finished = agent.launch(&c);
    let line = finished.error_line(4);
    assert!(line.contains(&missing), "{line}");
    assert!(line.contains("404"), "{line}");
    agent.assert_nothing_left(&c.id);
}

#[test]
fn d3_image_that_cannot_be_pulled_fails_the_launch_cleanly() {
    let agent = Agent::new("d3");
    // A registry on a closed local port: the pull fails at once, no network needed.
    let c = agent
        .executor("true")
        .legacy_container("docker:///127.0.0.1:1/deimos-test/absent:latest", &[])
        .build();
    let finished = agent.launch(&c);
    let line = finished.error_line(4);
    assert!(line.contains("127.0.0.1:1/deimos-test/absent"), "{line}");
    agent.assert_nothing_left(&c.id);
    // Nothing unwatched is left for `containers` or `state` to trip over.
    assert_eq!(agent.containers(), Vec::<String>::new());
    let state = agent.call(&["state"]).run().success();
    assert!(state.stdout.is_empty());
}

#[test]
fn calls_about_an_unknown_container_fail_cleanly_except_destroy() {
    let agent = Agent::new("unknown-container");
    let c = agent.executor("true").build();
    for finished in [agent.wait_call(&c).run(), agent.usage_call(&c).run()] {
        let line = finished.error_line(4);
        assert!(
            line.contains(&c.id) && line.contains("unknown container"),
            "{line}"
        );
    }
    agent.destroy(&c).assert_success();
    assert_no_state(&agent);
}
