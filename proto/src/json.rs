//! JSON in the dialect Mesos speaks on its HTTP APIs.
//!
//! Every generated message implements [`serde::Serialize`] and
//! [`serde::Deserialize`] by transcoding through a
//! [`prost_reflect::DynamicMessage`] with the embedded schema. The rules
//! (those of Mesos' own JSON ↔ protobuf mapping, not proto3 canonical JSON):
//!
//! * keys are the proto field names as written (`framework_id`, not
//!   `frameworkId`); unknown keys are ignored on input;
//! * enums are written by NAME; on input a number where an enum is expected
//!   is an error (Mesos answers 400 to that). An unknown enum NAME drops the
//!   field when it is optional and drops the element when it is repeated (what
//!   Mesos HEAD does), and is an error for a required field;
//! * `bytes` are standard base64 with padding on output; any base64 flavour
//!   (standard or URL-safe, padded or not) is accepted on input;
//! * 64-bit integers are plain JSON numbers on output (Mesos 1.0 rejects
//!   strings); numbers and numeric strings are accepted on input;
//! * doubles accept `"Infinity"`, `"-Infinity"` and `"NaN"` on input, and
//!   non-finite doubles are written that way;
//! * only fields that are set are written (Mesos itself also writes unset
//!   fields that have an explicit default; readers must not rely on either);
//! * required fields are not checked on input: a missing one decodes to its
//!   default value, like prost's binary decoding.

use prost_reflect::{
    Cardinality, DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor,
    ReflectMessage, SerializeOptions,
};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Error type of the convenience functions (that of `serde_json`).
pub type Error = serde_json::Error;

const SERIALIZE_OPTIONS: SerializeOptions = SerializeOptions::new()
    .use_proto_field_name(true)
    .stringify_64_bit_integers(false)
    .use_enum_numbers(false)
    .skip_default_fields(true);

const DESERIALIZE_OPTIONS: DeserializeOptions =
    DeserializeOptions::new().deny_unknown_fields(false);

/// Serializes a message to a JSON string.
pub fn to_string<M: Serialize>(message: &M) -> Result<String, Error> {
    serde_json::to_string(message)
}

/// Serializes a message to JSON bytes.
pub fn to_vec<M: Serialize>(message: &M) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(message)
}

/// Parses a message from a JSON string.
pub fn from_str<M: DeserializeOwned>(json: &str) -> Result<M, Error> {
    serde_json::from_str(json)
}

/// Parses a message from JSON bytes.
pub fn from_slice<M: DeserializeOwned>(json: &[u8]) -> Result<M, Error> {
    serde_json::from_slice(json)
}

/// `Serialize` body shared by all generated messages.
pub(crate) fn serialize_message<M: ReflectMessage, S: Serializer>(
    message: &M,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    message
        .transcode_to_dynamic()
        .serialize_with_options(serializer, &SERIALIZE_OPTIONS)
}

/// `Deserialize` body shared by all generated messages.
pub(crate) fn deserialize_message<'de, M, D>(deserializer: D) -> Result<M, D::Error>
where
    M: ReflectMessage + Default,
    D: Deserializer<'de>,
{
    let descriptor = M::default().descriptor();
    let mut value = Value::deserialize(deserializer)?;
    normalize_enums(&descriptor, &mut value).map_err(D::Error::custom)?;
    let dynamic = DynamicMessage::deserialize_with_options(descriptor, value, &DESERIALIZE_OPTIONS)
        .map_err(D::Error::custom)?;
    dynamic.transcode_to::<M>().map_err(D::Error::custom)
}

/// Applies the Mesos enum rules to a JSON object about to be decoded as
/// `descriptor`: numbers are rejected, unknown names are dropped (optional
/// and repeated fields) or rejected (required fields). Recurses into message
/// fields. Anything else is left for prost-reflect to judge.
fn normalize_enums(descriptor: &MessageDescriptor, value: &mut Value) -> Result<(), String> {
    let Value::Object(object) = value else {
        return Ok(());
    };
    let mut drop_keys = Vec::new();
    for (key, field_value) in object.iter_mut() {
        let Some(field) = find_field(descriptor, key) else {
            continue; // unknown key: ignored by the decoder
        };
        match field.kind() {
            Kind::Message(inner) => match field_value {
                Value::Array(items) if field.is_list() => {
                    for item in items {
                        normalize_enums(&inner, item)?;
                    }
                }
                _ if field.is_map() => {}
                other => normalize_enums(&inner, other)?,
            },
            Kind::Enum(enum_descriptor) => {
                let known = |name: &str| enum_descriptor.get_value_by_name(name).is_some();
                match field_value {
                    Value::Array(items) if field.is_list() => {
                        for item in items.iter() {
                            reject_number(&field, item)?;
                        }
                        items.retain(|item| item.as_str().is_none_or(known));
                    }
                    Value::String(name) if !known(name) => {
                        if field.cardinality() == Cardinality::Required {
                            return Err(format!(
                                "unknown value {name:?} for required enum field `{}`",
                                field.full_name()
                            ));
                        }
                        drop_keys.push(key.clone());
                    }
                    other => reject_number(&field, other)?,
                }
            }
            _ => {}
        }
    }
    for key in drop_keys {
        object.remove(&key);
    }
    Ok(())
}

fn find_field(descriptor: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    descriptor
        .get_field_by_name(key)
        .or_else(|| descriptor.get_field_by_json_name(key))
}

fn reject_number(field: &FieldDescriptor, value: &Value) -> Result<(), String> {
    match value {
        Value::Number(n) => Err(format!(
            "enum field `{}` must be given by name, not by number ({n})",
            field.full_name()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{scheduler, value, Value as MesosValue};

    #[test]
    fn enum_number_is_rejected() {
        let err = from_str::<scheduler::Call>(r#"{"type": 1}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("enum field `mesos.v1.scheduler.Call.type` must be given by name"),
            "{err}"
        );
    }

    #[test]
    fn unknown_enum_name_in_optional_field_drops_the_field() {
        let call: scheduler::Call = from_str(r#"{"type": "NOT_A_CALL_TYPE"}"#).unwrap();
        assert_eq!(call.r#type, None);
    }

    #[test]
    fn unknown_enum_name_in_required_field_is_an_error() {
        let err = from_str::<MesosValue>(r#"{"type": "VECTOR"}"#).unwrap_err();
        assert!(err.to_string().contains("required enum field"), "{err}");
    }

    #[test]
    fn known_enum_name_in_required_field_decodes() {
        let v: MesosValue = from_str(r#"{"type": "RANGES"}"#).unwrap();
        assert_eq!(v.r#type(), value::Type::Ranges);
    }
}
