//! The two encodings of the executor API (§2.2, §2.8 of the protocol
//! reference): request bodies carry one `Call` (no framing), the SUBSCRIBE
//! response streams RecordIO-framed `Event`s.
//!
//! Decoding is as strict as the agent's: protobuf `ParseFromString` and stout's
//! JSON→protobuf conversion both fail when a `required` field is missing, so
//! this module checks required fields itself (prost and `mesos_proto::json`
//! leave that to the caller). Encoding JSON events mimics Mesos' own output,
//! which also writes every unset optional field that has an explicit proto
//! default (deprecated ones excepted, as at HEAD).

use bytes::Bytes;
use mesos_proto::v1::executor::{Call, Event};
use prost::Message as _;
use prost_reflect::{
    Cardinality, DynamicMessage, Kind, MessageDescriptor, ReflectMessage as _, SerializeOptions,
    Value as ReflectValue,
};
use serde_json::Value as JsonValue;

use crate::error::HarnessError;

/// `application/json`, exactly as the agent compares it.
pub const APPLICATION_JSON: &str = "application/json";
/// `application/x-protobuf`, exactly as the agent compares it.
pub const APPLICATION_PROTOBUF: &str = "application/x-protobuf";

/// One of the two media types of the v1 APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// `application/json` (Mesos' JSON dialect).
    Json,
    /// `application/x-protobuf` (protobuf binary).
    Protobuf,
}

impl ContentType {
    /// The media type string (`application/json` or `application/x-protobuf`).
    pub fn mime(self) -> &'static str {
        match self {
            ContentType::Json => APPLICATION_JSON,
            ContentType::Protobuf => APPLICATION_PROTOBUF,
        }
    }

    /// Parses a request `Content-Type` value the way the agent does: an exact
    /// byte comparison, so parameters (`; charset=utf-8`) or other case do not
    /// match.
    pub fn from_exact_header(value: &[u8]) -> Option<ContentType> {
        match value {
            b"application/json" => Some(ContentType::Json),
            b"application/x-protobuf" => Some(ContentType::Protobuf),
            _ => None,
        }
    }
}

/// Decodes a request body into a `Call`, failing with the agent's 400 message.
pub(crate) fn decode_call(content_type: ContentType, body: &[u8]) -> Result<Call, String> {
    let descriptor = Call::default().descriptor();
    match content_type {
        ContentType::Protobuf => {
            let dynamic = DynamicMessage::decode(descriptor, body)
                .map_err(|_| "Failed to parse body into Call protobuf".to_owned())?;
            if !missing_required_fields(&dynamic, "").is_empty() {
                // `ParseFromString` fails as a whole on missing required fields.
                return Err("Failed to parse body into Call protobuf".to_owned());
            }
            Call::decode(body).map_err(|_| "Failed to parse body into Call protobuf".to_owned())
        }
        ContentType::Json => {
            let value: JsonValue = serde_json::from_slice(body)
                .map_err(|e| format!("Failed to parse body into JSON: {e}"))?;
            let missing = missing_required_json(&descriptor, &value, "");
            if !missing.is_empty() {
                return Err(format!(
                    "Failed to convert JSON into Call protobuf: Missing required fields: {}",
                    missing.join(", ")
                ));
            }
            mesos_proto::json::from_slice::<Call>(body)
                .map_err(|e| format!("Failed to convert JSON into Call protobuf: {e}"))
        }
    }
}

/// Encodes an event as one stream payload (not yet framed).
pub fn encode_event(event: &Event, content_type: ContentType) -> Result<Vec<u8>, HarnessError> {
    match content_type {
        ContentType::Protobuf => Ok(event.encode_to_vec()),
        ContentType::Json => {
            let mut dynamic = event.transcode_to_dynamic();
            fill_explicit_defaults(&mut dynamic);
            let options = SerializeOptions::new()
                .use_proto_field_name(true)
                .stringify_64_bit_integers(false)
                .use_enum_numbers(false)
                .skip_default_fields(true);
            let mut out = Vec::new();
            let mut serializer = serde_json::Serializer::new(&mut out);
            dynamic
                .serialize_with_options(&mut serializer, &options)
                .map_err(|source| HarnessError::EncodeEvent {
                    event_type: event_type_name(event),
                    reason: source.to_string(),
                })?;
            Ok(out)
        }
    }
}

/// Encodes an event and frames it as one RecordIO record (`len "\n" payload`).
pub fn frame_event(event: &Event, content_type: ContentType) -> Result<Bytes, HarnessError> {
    let payload = encode_event(event, content_type)?;
    mesos_proto::recordio::encode_record(&payload).map_err(|source| HarnessError::EncodeEvent {
        event_type: event_type_name(event),
        reason: source.to_string(),
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

/// Sets every unset singular field that has an explicit proto default (and is
/// not deprecated) to that default, recursively, as Mesos' JSON writer shows
/// them.
fn fill_explicit_defaults(message: &mut DynamicMessage) {
    let descriptor = message.descriptor();
    for field in descriptor.fields() {
        let proto = field.field_descriptor_proto();
        let deprecated = proto
            .options
            .as_ref()
            .and_then(|options| options.deprecated)
            .unwrap_or(false);
        if proto.default_value.is_some()
            && !deprecated
            && !field.is_list()
            && !message.has_field(&field)
        {
            message.set_field(&field, field.default_value());
        }
    }
    for (_, value) in message.fields_mut() {
        match value {
            ReflectValue::Message(inner) => fill_explicit_defaults(inner),
            ReflectValue::List(items) => {
                for item in items {
                    if let ReflectValue::Message(inner) = item {
                        fill_explicit_defaults(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Paths (`update.status.task_id`) of required fields missing from a decoded
/// protobuf message.
fn missing_required_fields(message: &DynamicMessage, prefix: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for field in message.descriptor().fields() {
        let path = format!("{prefix}{}", field.name());
        if field.cardinality() == Cardinality::Required && !message.has_field(&field) {
            missing.push(path);
            continue;
        }
        if !message.has_field(&field) {
            continue;
        }
        match &*message.get_field(&field) {
            ReflectValue::Message(inner) => {
                missing.extend(missing_required_fields(inner, &format!("{path}.")));
            }
            ReflectValue::List(items) => {
                for (index, item) in items.iter().enumerate() {
                    if let ReflectValue::Message(inner) = item {
                        let item_prefix = format!("{path}[{index}].");
                        missing.extend(missing_required_fields(inner, &item_prefix));
                    }
                }
            }
            _ => {}
        }
    }
    missing
}

/// Paths of required fields missing from a JSON object that is to become a
/// `descriptor` message (`null` counts as missing, as in stout).
fn missing_required_json(
    descriptor: &MessageDescriptor,
    value: &JsonValue,
    prefix: &str,
) -> Vec<String> {
    let JsonValue::Object(object) = value else {
        return Vec::new(); // a type error: left for the decoder to report
    };
    let mut missing = Vec::new();
    for field in descriptor.fields() {
        let path = format!("{prefix}{}", field.name());
        let present = object
            .get(field.name())
            .or_else(|| object.get(field.json_name()))
            .filter(|v| !v.is_null());
        let Some(present) = present else {
            if field.cardinality() == Cardinality::Required {
                missing.push(path);
            }
            continue;
        };
        let Kind::Message(inner) = field.kind() else {
            continue;
        };
        if field.is_map() {
            continue;
        }
        match present {
            JsonValue::Array(items) if field.is_list() => {
                for (index, item) in items.iter().enumerate() {
                    let item_prefix = format!("{path}[{index}].");
                    missing.extend(missing_required_json(&inner, item, &item_prefix));
                }
            }
            other => missing.extend(missing_required_json(&inner, other, &format!("{path}."))),
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::executor::{call, event};
    use mesos_proto::v1::{AgentInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo};

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

    #[test]
    fn content_type_match_is_exact() {
        assert_eq!(
            ContentType::from_exact_header(b"application/json"),
            Some(ContentType::Json)
        );
        assert_eq!(
            ContentType::from_exact_header(b"application/json; charset=utf-8"),
            None
        );
        assert_eq!(ContentType::from_exact_header(b"Application/JSON"), None);
    }
}
