//! Every generated message type round-trips through protobuf and JSON.
//!
//! For each message descriptor a `DynamicMessage` is built with every field
//! set to a sample value (nested messages recursively, depth-limited; at the
//! depth limit only required fields are filled, since prost always writes
//! those). It is encoded, decoded into the generated Rust type, re-encoded
//! (bytes must be identical), then serialized to JSON with serde and parsed
//! back (value must be identical).

// Helpers of this test crate may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use prost::Message;
use prost_reflect::{
    Cardinality, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};
use serde::{de::DeserializeOwned, Serialize};

const MAX_DEPTH: usize = 3;

fn sample_scalar(field: &FieldDescriptor, index: usize) -> Option<Value> {
    let i = index as i64;
    Some(match field.kind() {
        Kind::Double => Value::F64(1.5 + i as f64),
        Kind::Float => Value::F32(2.5),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(-7 - index as i32),
        // Beyond 2^53: proves 64-bit integers survive JSON as numbers.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(-(1 << 60) - i),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(4_000_000_000 + index as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(u64::MAX - index as u64),
        Kind::Bool => Value::Bool(true),
        Kind::String => Value::String(format!("{}-{index}", field.name())),
        Kind::Bytes => Value::Bytes(vec![0u8, 1, 2, 0xfe, 0xff, index as u8].into()),
        Kind::Enum(e) => {
            // A declared value different from the default.
            let values: Vec<_> = e.values().collect();
            let pick = values.last().expect("enum without values");
            Value::EnumNumber(pick.number())
        }
        Kind::Message(_) => return None,
    })
}

fn sample_message(desc: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut msg = DynamicMessage::new(desc.clone());
    let mut oneofs_done = BTreeSet::new();
    for field in desc.fields() {
        let required = field.cardinality() == Cardinality::Required;
        if depth >= MAX_DEPTH && !required {
            continue;
        }
        if let Some(oneof) = field.containing_oneof() {
            if !oneofs_done.insert(oneof.full_name().to_owned()) {
                continue; // only one member of a oneof
            }
        }
        let one = |index: usize| -> Option<Value> {
            match field.kind() {
                Kind::Message(inner) => Some(Value::Message(sample_message(&inner, depth + 1))),
                _ => sample_scalar(&field, index),
            }
        };
        let value = if field.is_list() {
            Value::List((0..2).filter_map(one).collect())
        } else {
            match one(0) {
                Some(v) => v,
                None => continue,
            }
        };
        msg.set_field(&field, value);
    }
    msg
}

fn roundtrip<T>(full_name: &str) -> usize
where
    T: Message
        + ReflectMessage
        + Default
        + PartialEq
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let desc = T::default().descriptor();
    assert_eq!(
        desc.full_name(),
        full_name,
        "Rust type mapped to the wrong descriptor"
    );

    let dynamic = sample_message(&desc, 0);
    let bytes = dynamic.encode_to_vec();
    let typed = T::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("{full_name}: {e}"));
    let again = typed.encode_to_vec();
    assert_eq!(bytes, again, "{full_name}: protobuf re-encoding differs");

    let json = serde_json::to_string(&typed).unwrap_or_else(|e| panic!("{full_name}: {e}"));
    let back: T =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{full_name}: {e}\n{json}"));
    assert_eq!(typed, back, "{full_name}: JSON round trip differs\n{json}");
    assert_eq!(
        back.encode_to_vec(),
        bytes,
        "{full_name}: bytes after JSON differ"
    );
    if std::env::var_os("SHOW_JSON").is_some() {
        eprintln!("{full_name}: {json}");
    }
    bytes.len()
}

#[test]
fn every_message_type_round_trips_in_protobuf_and_json() {
    let mut seen = BTreeSet::new();
    macro_rules! check {
        ($ty:ty, $name:literal) => {{
            roundtrip::<$ty>($name);
            assert!(seen.insert($name), "duplicate {}", $name);
        }};
    }
    mesos_proto::for_each_message!(check);

    // The macro covers every message of the embedded schema.
    let pool = mesos_proto::descriptor::descriptor_pool();
    let all: BTreeSet<String> = pool
        .all_messages()
        .map(|m| m.full_name().to_owned())
        .collect();
    let seen_owned: BTreeSet<String> = seen.iter().map(|s| s.to_string()).collect();
    assert_eq!(seen_owned, all);
    assert_eq!(
        seen.len(),
        mesos_proto::descriptor::MESSAGE_NAMES.len(),
        "MESSAGE_NAMES out of sync"
    );
}

#[test]
fn default_instances_round_trip_too() {
    macro_rules! check {
        ($ty:ty, $name:literal) => {{
            let value = <$ty>::default();
            let bytes = value.encode_to_vec();
            assert_eq!(<$ty>::decode(bytes.as_slice()).unwrap(), value, "{}", $name);
            let json = mesos_proto::json::to_string(&value).unwrap();
            let back: $ty = mesos_proto::json::from_str(&json).unwrap();
            assert_eq!(back, value, "{}: {}", $name, json);
        }};
    }
    mesos_proto::for_each_message!(check);
}
