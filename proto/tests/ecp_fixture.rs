//! The real `launch` record of a Mesos agent (fixture copied from the shared
//! reference, decoded form in `ecp-launch-record.txt`). The fixture was
//! written by an x86-64 agent, so its length prefix is little-endian.
#![cfg(target_endian = "little")]
// Helpers of this test crate may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use mesos_proto::containerizer::Launch;
use mesos_proto::ecp::{self, EcpError, ReadOptions};
use mesos_proto::mesos::value;
use prost::Message;

const RECORD: &[u8] = include_bytes!("fixtures/ecp-launch-record.bin");

fn scalar(launch: &Launch, name: &str) -> f64 {
    let info = launch.executor_info.as_ref().unwrap();
    let res = info.resources.iter().find(|r| r.name == name).unwrap();
    assert_eq!(res.r#type(), value::Type::Scalar);
    res.scalar.as_ref().unwrap().value
}

#[test]
fn agent_launch_record_decodes_to_the_documented_launch() {
    assert_eq!(&RECORD[..4], &[0x40, 0x02, 0x00, 0x00]);
    assert_eq!(RECORD.len(), 4 + 576);

    let mut input = RECORD;
    let launch: Launch = ecp::read_message(&mut input, ReadOptions::NON_EMPTY).unwrap();
    assert!(
        input.is_empty(),
        "the whole record was consumed, nothing more"
    );

    assert_eq!(
        launch.container_id.value,
        "435253ab-d246-47be-a350-35420465d868"
    );
    assert!(launch.task_info.is_none());

    let info = launch.executor_info.as_ref().unwrap();
    assert_eq!(info.executor_id.value, "1");
    assert_eq!(
        info.framework_id.as_ref().unwrap().value,
        "20140526-015006-16777343-55403-62567-0000"
    );
    assert_eq!(
        info.name(),
        "Command Executor (Task: 1) (Command: sh -c 'while true ;...')"
    );
    assert_eq!(info.source(), "1");
    assert_eq!(
        info.command.value(),
        "echo 'No such file or directory'; exit 1"
    );
    assert!(info.command.shell(), "shell defaults to true when absent");
    assert_eq!(info.command.shell, None);

    assert_eq!(info.resources.len(), 4);
    assert!(info.resources.iter().all(|r| r.role() == "*"));
    assert_eq!(scalar(&launch, "cpus"), 2.0);
    assert_eq!(scalar(&launch, "mem"), 1024.0);
    assert_eq!(scalar(&launch, "disk"), 1024.0);
    let ports = info.resources.iter().find(|r| r.name == "ports").unwrap();
    assert_eq!(ports.r#type(), value::Type::Ranges);
    let ranges = &ports.ranges.as_ref().unwrap().range;
    assert_eq!(ranges.len(), 1);
    assert_eq!((ranges[0].begin, ranges[0].end), (31000, 32000));

    assert_eq!(
        launch.directory(),
        "/tmp/ExternalContainerizerTest_Launch_lXUh9f/slaves/20140526-015006-16777343-55403-62567-0\
         /frameworks/20140526-015006-16777343-55403-62567-0000/executors/1/runs/\
         435253ab-d246-47be-a350-35420465d868"
    );
    assert_eq!(launch.user(), "till");
    assert_eq!(
        launch.slave_id.as_ref().unwrap().value,
        "20140526-015006-16777343-55403-62567-0"
    );
    assert_eq!(launch.slave_pid(), "slave(1)@127.0.0.1:55403");
    assert_eq!(launch.checkpoint, Some(false));
}

#[test]
fn agent_launch_record_re_encodes_byte_identically() {
    let launch: Launch = ecp::read_message(&mut &RECORD[..], ReadOptions::NON_EMPTY).unwrap();
    assert_eq!(launch.encoded_len(), 576);
    assert_eq!(ecp::encode_record(&launch).unwrap(), RECORD);

    let mut out = Vec::new();
    ecp::write_message(&mut out, &launch).unwrap();
    assert_eq!(out, RECORD);
}

#[test]
fn agent_launch_record_cut_short_reports_expected_and_received_bytes() {
    let err = ecp::read_record(&mut &RECORD[..14], ReadOptions::NON_EMPTY).unwrap_err();
    assert!(matches!(
        err,
        EcpError::TruncatedPayload {
            expected: 576,
            received: 10
        }
    ));
    assert_eq!(
        err.to_string(),
        "truncated record: expected 576 bytes, received 10"
    );
}

#[test]
fn agent_launch_record_survives_json() {
    let launch: Launch = ecp::read_message(&mut &RECORD[..], ReadOptions::NON_EMPTY).unwrap();
    let json = mesos_proto::json::to_string(&launch).unwrap();
    assert!(
        json.contains(r#""slave_pid":"slave(1)@127.0.0.1:55403""#),
        "{json}"
    );
    assert!(json.contains(r#""type":"RANGES""#), "{json}");
    assert!(json.contains(r#""begin":31000,"end":32000"#), "{json}");
    let back: Launch = mesos_proto::json::from_str(&json).unwrap();
    assert_eq!(back, launch);
    assert_eq!(ecp::encode_record(&back).unwrap(), RECORD);
}
