//! The executor API's use of the shared encodings (`crate::common::codec`):
//! request bodies carry one executor `Call`, the SUBSCRIBE response streams
//! RecordIO-framed executor `Event`s.

use bytes::Bytes;
use mesos_proto::v1::executor::{Call, Event};

use crate::common::codec::{encode_payload, frame_payload};
pub use crate::common::codec::{ContentType, APPLICATION_JSON, APPLICATION_PROTOBUF};
use crate::error::HarnessError;

/// Decodes a request body into a `Call`, failing with the agent's 400 message.
pub(crate) fn decode_call(content_type: ContentType, body: &[u8]) -> Result<Call, String> {
    crate::common::codec::decode_call(content_type, body)
}

/// Encodes an event as one stream payload (not yet framed).
pub fn encode_event(event: &Event, content_type: ContentType) -> Result<Vec<u8>, HarnessError> {
    encode_payload(event, content_type).map_err(|reason| HarnessError::EncodeEvent {
        event_type: event_type_name(event),
        reason,
    })
}

/// Encodes an event and frames it as one RecordIO record (`len "\n" payload`).
pub fn frame_event(event: &Event, content_type: ContentType) -> Result<Bytes, HarnessError> {
    frame_payload(event, content_type).map_err(|reason| HarnessError::EncodeEvent {
        event_type: event_type_name(event),
        reason,
    })
}

/// The event's type name for messages (`LAUNCH`, or the raw number).
pub(crate) fn event_type_name(event: &Event) -> String {
    match event.r#type {
        None => "<unset>".to_owned(),
        Some(number) => mesos_proto::v1::executor::event::Type::try_from(number)
            .map(|t| t.as_str_name().to_owned())
            .unwrap_or_else(|_| number.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::executor::{call, event};
    use mesos_proto::v1::{AgentInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo};
    use prost::Message as _;
    use serde_json::Value as JsonValue;

    fn subscribed_event() -> Event {
        Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                executor_info: ExecutorInfo {
                    executor_id: ExecutorId { value: "e".into() },
                    ..Default::default()
                },
                framework_info: FrameworkInfo {
                    user: "root".into(),
                    name: "f".into(),
                    ..Default::default()
                },
                agent_info: AgentInfo {
                    hostname: "localhost".into(),
                    ..Default::default()
                },
                container_id: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn json_events_carry_explicit_proto_defaults_like_mesos_output() {
        let json = encode_event(&subscribed_event(), ContentType::Json).unwrap();
        let value: JsonValue = serde_json::from_slice(&json).unwrap();
        let subscribed = &value["subscribed"];
        assert_eq!(subscribed["framework_info"]["checkpoint"], false);
        assert_eq!(subscribed["framework_info"]["failover_timeout"], 0.0);
        assert_eq!(subscribed["agent_info"]["port"], 5051);
        // Deprecated fields with defaults are skipped, as at Mesos HEAD.
        assert!(
            subscribed["framework_info"].get("role").is_none(),
            "{value}"
        );
        assert_eq!(value["type"], "SUBSCRIBED");
    }

    #[test]
    fn framed_event_starts_with_its_decimal_length() {
        let framed = frame_event(&subscribed_event(), ContentType::Protobuf).unwrap();
        let payload = subscribed_event().encode_to_vec();
        let header = format!("{}\n", payload.len());
        assert_eq!(&framed[..header.len()], header.as_bytes());
        assert_eq!(&framed[header.len()..], &payload[..]);
    }

    #[test]
    fn protobuf_call_without_framework_id_is_rejected() {
        let partial = call::Update::default().encode_to_vec(); // not a Call at all
        let mut body = Vec::new();
        // Field 1 (executor_id), length-delimited, containing ExecutorID{value:"e"}.
        body.extend_from_slice(&[0x0a, 0x03, 0x0a, 0x01, b'e']);
        body.extend_from_slice(&partial);
        let err = decode_call(ContentType::Protobuf, &body).unwrap_err();
        assert_eq!(err, "Failed to parse body into Call protobuf");
    }

    #[test]
    fn json_call_missing_nested_required_field_names_its_path() {
        let body = br#"{"executor_id":{"value":"e"},"framework_id":{"value":"f"},
            "type":"UPDATE","update":{"status":{"state":"TASK_RUNNING"}}}"#;
        let err = decode_call(ContentType::Json, body).unwrap_err();
        assert!(err.contains("update.status.task_id"), "{err}");
    }

    #[test]
    fn json_call_with_all_required_fields_decodes() {
        let body = br#"{"executor_id":{"value":"e"},"framework_id":{"value":"f"},"type":"SUBSCRIBE","subscribe":{}}"#;
        let call = decode_call(ContentType::Json, body).unwrap();
        assert_eq!(call.executor_id, ExecutorId { value: "e".into() });
        assert_eq!(call.framework_id, FrameworkId { value: "f".into() });
        assert_eq!(call.r#type(), call::Type::Subscribe);
    }
}
