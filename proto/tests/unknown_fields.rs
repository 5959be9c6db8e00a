//! Messages from a real (newer) Mesos carry fields we do not declare:
//! decoding must still succeed and keep everything we do declare.

// Helpers of this test crate may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use mesos_proto::v1::scheduler::{event, Event};
use mesos_proto::v1::{TaskId, TaskState, TaskStatus};
use prost::Message;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(field: u64, wire_type: u64, out: &mut Vec<u8>) {
    varint((field << 3) | wire_type, out);
}

/// One unknown field of every wire type (varint, 64-bit, length-delimited,
/// group, 32-bit) with field numbers we never use.
fn unknown_fields() -> Vec<u8> {
    let mut out = Vec::new();
    key(1000, 0, &mut out);
    varint(u64::MAX, &mut out);
    key(1001, 1, &mut out);
    out.extend_from_slice(&1.5f64.to_le_bytes());
    key(1002, 2, &mut out);
    varint(5, &mut out);
    out.extend_from_slice(b"extra");
    key(1003, 3, &mut out); // start group
    key(1, 0, &mut out);
    varint(7, &mut out);
    key(1003, 4, &mut out); // end group
    key(1004, 5, &mut out);
    out.extend_from_slice(&7u32.to_le_bytes());
    out
}

fn status() -> TaskStatus {
    TaskStatus {
        task_id: TaskId { value: "t1".into() },
        state: TaskState::TaskRunning as i32,
        uuid: Some(vec![7; 16]),
        ..Default::default()
    }
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    let original = status();
    let mut bytes = unknown_fields();
    bytes.extend(original.encode_to_vec());
    bytes.extend(unknown_fields());
    let decoded = TaskStatus::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded, original);
}

#[test]
fn unknown_fields_inside_nested_messages_are_skipped() {
    // Event { type: UPDATE, update: { status: <status + unknown>, unknown } }
    let mut status_bytes = status().encode_to_vec();
    status_bytes.extend(unknown_fields());
    let mut update = Vec::new();
    key(1, 2, &mut update);
    varint(status_bytes.len() as u64, &mut update);
    update.extend(&status_bytes);
    update.extend(unknown_fields());
    let mut bytes = Vec::new();
    key(1, 0, &mut bytes);
    varint(event::Type::Update as u64, &mut bytes);
    key(5, 2, &mut bytes);
    varint(update.len() as u64, &mut bytes);
    bytes.extend(&update);

    let decoded = Event::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded.r#type(), event::Type::Update);
    assert_eq!(decoded.update.unwrap().status, status());
}

#[test]
fn real_mesos_fields_we_do_not_model_are_skipped() {
    // A TaskStatus as a Mesos 1.5 agent sends it: check_status (15) is not
    // declared here; limitation (16) is.
    let mut bytes = status().encode_to_vec();
    let check_status = [0x08, 0x01, 0x12, 0x02, 0x08, 0x00]; // {type: COMMAND, command: {exit_code: 0}}
    key(15, 2, &mut bytes);
    varint(check_status.len() as u64, &mut bytes);
    bytes.extend_from_slice(&check_status);
    let decoded = TaskStatus::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded, status());
}

#[test]
fn unknown_enum_numbers_from_a_newer_mesos_still_decode() {
    // TaskStatus.state = 42 (a state this crate does not know).
    let mut bytes = Vec::new();
    key(1, 2, &mut bytes);
    bytes.extend_from_slice(&[4, 0x0a, 2, b't', b'1']);
    key(2, 0, &mut bytes);
    varint(42, &mut bytes);
    let decoded = TaskStatus::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded.state, 42);
    assert!(TaskState::try_from(decoded.state).is_err());
}

#[test]
fn unknown_json_keys_at_any_depth_are_ignored() {
    let json = r#"{
        "type": "UPDATE",
        "brand_new_top_level": {"a": [1, 2, 3]},
        "update": {
            "status": {
                "task_id": {"value": "t1", "extra": true},
                "state": "TASK_RUNNING",
                "check_status": {"type": "COMMAND", "command": {"exit_code": 0}},
                "limits": {"cpus": "Infinity"}
            },
            "unknown": null
        }
    }"#;
    let event: Event = mesos_proto::json::from_str(json).unwrap();
    let status = event.update.unwrap().status;
    assert_eq!(status.task_id.value, "t1");
    assert_eq!(status.state(), TaskState::TaskRunning);
}
