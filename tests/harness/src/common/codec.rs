//! The two encodings shared by the v1 scheduler and executor APIs (§2.2,
//! §2.8 of the protocol reference): a request body carries one `Call` (no
//! framing), a SUBSCRIBE response streams RecordIO-framed `Event`s.
//!
//! Decoding is as strict as Mesos': protobuf `ParseFromString` and stout's
//! JSON→protobuf conversion both fail when a `required` field is missing, so
//! this module checks required fields itself (prost and `mesos_proto::json`
//! leave that to the caller). Encoding JSON events mimics Mesos' own output,
//! which also writes every unset optional field that has an explicit proto
//! default (deprecated ones excepted, as at HEAD).

use bytes::Bytes;
use prost_reflect::{
    Cardinality, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, SerializeOptions,
    Value as ReflectValue,
};
use serde::de::DeserializeOwned;
use serde_json::Value as JsonValue;

pub use mesos_client::media::{APPLICATION_JSON, APPLICATION_PROTOBUF};
/// One of the two media types of the v1 APIs; requests are read with
/// [`ContentType::from_exact_header`], Mesos' exact comparison.
pub use mesos_client::MediaType as ContentType;

/// Decodes a request body into a call message `M` (named `Call` in the
/// messages), failing with Mesos' 400 message.
pub(crate) fn decode_call<M>(content_type: ContentType, body: &[u8]) -> Result<M, String>
where
    M: ReflectMessage + Default + DeserializeOwned,
{
    let descriptor = M::default().descriptor();
    match content_type {
        ContentType::Protobuf => {
            let dynamic = DynamicMessage::decode(descriptor, body)
                .map_err(|_| "Failed to parse body into Call protobuf".to_owned())?;
            if !missing_required_fields(&dynamic, "").is_empty() {
                // `ParseFromString` fails as a whole on missing required fields.
                return Err("Failed to parse body into Call protobuf".to_owned());
            }
            M::decode(body).map_err(|_| "Failed to parse body into Call protobuf".to_owned())
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
            mesos_proto::json::from_slice::<M>(body)
                .map_err(|e| format!("Failed to convert JSON into Call protobuf: {e}"))
        }
    }
}

/// Encodes a message as one stream payload (not yet framed), in Mesos' JSON
/// output dialect or as protobuf binary.
pub(crate) fn encode_payload<M: ReflectMessage>(
    message: &M,
    content_type: ContentType,
) -> Result<Vec<u8>, String> {
    match content_type {
        ContentType::Protobuf => Ok(message.encode_to_vec()),
        ContentType::Json => {
            let mut dynamic = message.transcode_to_dynamic();
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
                .map_err(|source| source.to_string())?;
            Ok(out)
        }
    }
}

/// Encodes a message and frames it as one RecordIO record (`len "\n" payload`).
pub(crate) fn frame_payload<M: ReflectMessage>(
    message: &M,
    content_type: ContentType,
) -> Result<Bytes, String> {
    let payload = encode_payload(message, content_type)?;
    mesos_proto::recordio::encode_record(&payload).map_err(|source| source.to_string())
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
