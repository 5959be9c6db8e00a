//! Our JSON output and input follow the Mesos dialect: snake_case keys, enum
//! names, 64-bit integers as numbers, padded standard base64.

// Helpers of this test crate may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use mesos_proto::containerizer::Termination;
use mesos_proto::json;
use mesos_proto::mesos as legacy;
use mesos_proto::v1::scheduler::{call, event, Call, Event};
use mesos_proto::v1::{
    value, AgentId, DurationInfo, Filters, FrameworkId, FrameworkInfo, KillPolicy, TaskId,
    TaskState, TaskStatus, Value,
};
use serde_json::json;

fn to_value<T: serde::Serialize>(message: &T) -> serde_json::Value {
    serde_json::from_str(&json::to_string(message).unwrap()).unwrap()
}

#[test]
fn keys_are_snake_case_proto_names_and_enums_are_names() {
    let event = Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(event::Subscribed {
            framework_id: FrameworkId { value: "f1".into() },
            heartbeat_interval_seconds: Some(15.0),
            master_info: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        json::to_string(&event).unwrap(),
        r#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"f1"},"heartbeat_interval_seconds":15.0}}"#
    );
}

#[test]
fn range_bounds_are_json_numbers_even_beyond_2_pow_53() {
    let ranges = Value {
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![
                value::Range {
                    begin: 31000,
                    end: 32000,
                },
                value::Range {
                    begin: (1 << 53) + 1,
                    end: u64::MAX,
                },
            ],
        }),
        ..Default::default()
    };
    let text = json::to_string(&ranges).unwrap();
    assert_eq!(
        text,
        r#"{"type":"RANGES","ranges":{"range":[{"begin":31000,"end":32000},{"begin":9007199254740993,"end":18446744073709551615}]}}"#
    );
    let back: Value = json::from_str(&text).unwrap();
    assert_eq!(back, ranges);
}

#[test]
fn duration_nanoseconds_is_a_json_number() {
    let policy = KillPolicy {
        grace_period: Some(DurationInfo {
            nanoseconds: 5_000_000_000,
        }),
    };
    assert_eq!(
        to_value(&policy),
        json!({"grace_period": {"nanoseconds": 5_000_000_000i64}})
    );
    let negative = DurationInfo {
        nanoseconds: i64::MIN,
    };
    assert_eq!(
        json::to_string(&negative).unwrap(),
        r#"{"nanoseconds":-9223372036854775808}"#
    );
}

#[test]
fn sixty_four_bit_integers_are_also_accepted_as_numeric_strings() {
    let d: DurationInfo = json::from_str(r#"{"nanoseconds": "5000000000"}"#).unwrap();
    assert_eq!(d.nanoseconds, 5_000_000_000);
    let r: value::Range = json::from_str(r#"{"begin": "1", "end": 18446744073709551615}"#).unwrap();
    assert_eq!((r.begin, r.end), (1, u64::MAX));
}

#[test]
fn bytes_are_padded_standard_base64() {
    let call = Call {
        framework_id: Some(FrameworkId { value: "f1".into() }),
        r#type: Some(call::Type::Acknowledge as i32),
        acknowledge: Some(call::Acknowledge {
            agent_id: AgentId { value: "a1".into() },
            task_id: TaskId { value: "t1".into() },
            uuid: vec![
                0xfb, 0xff, 0xfe, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                0x0b, 0x0c,
            ],
        }),
        ..Default::default()
    };
    let v = to_value(&call);
    assert_eq!(v["acknowledge"]["uuid"], "+//+AAECAwQFBgcICQoLDA==");
    assert_eq!(v["type"], "ACKNOWLEDGE");

    let status = TaskStatus {
        data: Some(b"a".to_vec()),
        ..Default::default()
    };
    assert_eq!(to_value(&status)["data"], "YQ==");
}

#[test]
fn only_set_fields_are_written_and_explicit_defaults_are_kept() {
    assert_eq!(json::to_string(&Filters::default()).unwrap(), "{}");
    let info = FrameworkInfo {
        user: "root".into(),
        name: "n".into(),
        checkpoint: Some(false),
        failover_timeout: Some(0.0),
        ..Default::default()
    };
    assert_eq!(
        to_value(&info),
        json!({"user": "root", "name": "n", "failover_timeout": 0.0, "checkpoint": false})
    );
}

#[test]
fn task_state_and_reason_are_written_by_name() {
    let status = TaskStatus {
        task_id: TaskId { value: "t1".into() },
        state: TaskState::TaskFailed as i32,
        reason: Some(mesos_proto::v1::task_status::Reason::ContainerLimitationMemory as i32),
        source: Some(mesos_proto::v1::task_status::Source::Agent as i32),
        ..Default::default()
    };
    assert_eq!(
        to_value(&status),
        json!({
            "task_id": {"value": "t1"},
            "state": "TASK_FAILED",
            "source": "SOURCE_AGENT",
            "reason": "REASON_CONTAINER_LIMITATION_MEMORY"
        })
    );
}

#[test]
fn legacy_package_uses_slave_names() {
    let status = legacy::TaskStatus {
        task_id: legacy::TaskId { value: "t".into() },
        state: legacy::TaskState::TaskLost as i32,
        source: Some(legacy::task_status::Source::Slave as i32),
        reason: Some(legacy::task_status::Reason::SlaveRemoved as i32),
        slave_id: Some(legacy::SlaveId { value: "s".into() }),
        ..Default::default()
    };
    let v = to_value(&status);
    assert_eq!(v["source"], "SOURCE_SLAVE");
    assert_eq!(v["reason"], "REASON_SLAVE_REMOVED");
    assert_eq!(v["slave_id"]["value"], "s");
}

#[test]
fn enum_numbers_are_rejected_on_input() {
    let err =
        json::from_str::<TaskStatus>(r#"{"task_id": {"value": "t"}, "state": 1}"#).unwrap_err();
    assert!(
        err.to_string().contains(
            "enum field `mesos.v1.TaskStatus.state` must be given by name, not by number (1)"
        ),
        "{err}"
    );
    let err = json::from_str::<Termination>(r#"{"reasons": [1]}"#).unwrap_err();
    assert!(err.to_string().contains("must be given by name"), "{err}");
}

#[test]
fn unknown_enum_names_are_dropped_from_optional_and_repeated_fields() {
    let status: TaskStatus = json::from_str(
        r#"{"task_id": {"value": "t"}, "state": "TASK_RUNNING", "reason": "REASON_FROM_THE_FUTURE"}"#,
    )
    .unwrap();
    assert_eq!(status.reason, None);
    let termination: Termination =
        json::from_str(r#"{"reasons": ["REASON_FROM_THE_FUTURE", "REASON_SLAVE_DRAINING"]}"#)
            .unwrap();
    assert_eq!(
        termination.reasons,
        vec![legacy::task_status::Reason::SlaveDraining as i32]
    );
    let info: FrameworkInfo = json::from_str(
        r#"{"user": "u", "name": "n", "capabilities": [{"type": "TELEPATHY"}, {"type": "MULTI_ROLE"}]}"#,
    )
    .unwrap();
    assert_eq!(info.capabilities.len(), 2);
    assert_eq!(info.capabilities[0].r#type, None);
    assert_eq!(
        info.capabilities[1].r#type(),
        mesos_proto::v1::framework_info::capability::Type::MultiRole
    );
}

#[test]
fn unknown_enum_name_in_a_required_field_is_an_error() {
    let err =
        json::from_str::<TaskStatus>(r#"{"task_id": {"value": "t"}, "state": "TASK_DREAMING"}"#)
            .unwrap_err();
    assert!(
        err.to_string()
            .contains("required enum field `mesos.v1.TaskStatus.state`"),
        "{err}"
    );
}

#[test]
fn infinity_is_accepted_for_doubles() {
    let filters: Filters = json::from_str(r#"{"refuse_seconds": "Infinity"}"#).unwrap();
    assert_eq!(filters.refuse_seconds(), f64::INFINITY);
}

#[test]
fn byte_input_accepts_unpadded_and_url_safe_base64() {
    let a: TaskStatus = json::from_str(r#"{"data": "YQ"}"#).unwrap();
    let b: TaskStatus = json::from_str(r#"{"data": "-_8="}"#).unwrap();
    assert_eq!(a.data.as_deref(), Some(&b"a"[..]));
    assert_eq!(b.data.as_deref(), Some(&[0xfb, 0xff][..]));
}

#[test]
fn to_vec_and_from_slice_agree_with_the_string_forms() {
    let status = TaskStatus {
        message: Some("hi".into()),
        ..Default::default()
    };
    let bytes = json::to_vec(&status).unwrap();
    assert_eq!(bytes, json::to_string(&status).unwrap().into_bytes());
    assert_eq!(json::from_slice::<TaskStatus>(&bytes).unwrap(), status);
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    assert!(json::from_str::<Call>("{").is_err());
    assert!(json::from_str::<Call>("[]").is_err());
    assert!(json::from_str::<Call>(r#"{"framework_id": "not an object"}"#).is_err());
    assert!(json::from_str::<TaskStatus>(r#"{"data": "%%%"}"#).is_err());
}
