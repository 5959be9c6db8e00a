//! ECP framing: golden byte vectors, error cases and property tests.

// Helpers of this test crate may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use mesos_proto::containerizer::{Containers, Termination, Wait};
use mesos_proto::ecp::{self, EcpError, ReadOptions};
use mesos_proto::mesos::{task_status, ContainerId, TaskState};
use proptest::prelude::*;

/// A record with a native-endian length prefix (what the agent writes).
fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_ne_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[cfg(target_endian = "little")]
#[test]
fn golden_empty_record_is_four_zero_bytes() {
    let bytes = ecp::encode_record(&Containers::default()).unwrap();
    assert_eq!(bytes, [0x00, 0x00, 0x00, 0x00]);
    let back: Containers = ecp::read_message(&mut &bytes[..], ReadOptions::ALLOW_EMPTY).unwrap();
    assert!(back.containers.is_empty());
}

#[cfg(target_endian = "little")]
#[test]
fn golden_five_byte_record_has_little_endian_length() {
    let mut out = Vec::new();
    ecp::write_record(&mut out, b"hello").unwrap();
    assert_eq!(out, [0x05, 0x00, 0x00, 0x00, b'h', b'e', b'l', b'l', b'o']);
    let payload = ecp::read_record(&mut &out[..], ReadOptions::NON_EMPTY).unwrap();
    assert_eq!(payload, b"hello");
}

#[cfg(target_endian = "little")]
#[test]
fn golden_wait_record_matches_hand_encoding() {
    let wait = Wait {
        container_id: ContainerId { value: "c1".into() },
    };
    // field 1 (container_id, LEN) = 0x0a, len 4, { field 1 (value) = 0x0a, len 2, "c1" }
    let expected = [0x06, 0x00, 0x00, 0x00, 0x0a, 0x04, 0x0a, 0x02, b'c', b'1'];
    assert_eq!(ecp::encode_record(&wait).unwrap(), expected);
    let back: Wait = ecp::read_message(&mut &expected[..], ReadOptions::NON_EMPTY).unwrap();
    assert_eq!(back, wait);
}

#[test]
fn termination_round_trips_with_both_eras_fields() {
    let termination = Termination {
        killed: Some(true),
        message: Some("Memory limit exceeded".into()),
        status: Some(9),
        state: Some(TaskState::TaskFailed as i32),
        reasons: vec![task_status::Reason::ContainerLimitationMemory as i32],
    };
    let bytes = ecp::encode_record(&termination).unwrap();
    let back: Termination = ecp::read_message(&mut &bytes[..], ReadOptions::ALLOW_EMPTY).unwrap();
    assert_eq!(back, termination);
}

#[test]
fn eof_before_length_is_no_record() {
    let err = ecp::read_record(&mut &[][..], ReadOptions::NON_EMPTY).unwrap_err();
    assert!(matches!(err, EcpError::NoRecord));
    assert_eq!(
        err.to_string(),
        "no record: stdin closed before the 4-byte length"
    );
}

#[test]
fn eof_inside_length_reports_bytes_received() {
    let err = ecp::read_record(&mut &[5u8, 0][..], ReadOptions::NON_EMPTY).unwrap_err();
    assert!(matches!(err, EcpError::TruncatedLength { received: 2 }));
    assert_eq!(
        err.to_string(),
        "truncated record: stdin closed after 2 of the 4 length bytes"
    );
}

#[test]
fn short_payload_reports_expected_and_received() {
    let mut bytes = record(b"hello");
    bytes.truncate(4 + 2);
    let err = ecp::read_record(&mut &bytes[..], ReadOptions::NON_EMPTY).unwrap_err();
    assert_eq!(
        err.to_string(),
        "truncated record: expected 5 bytes, received 2"
    );
}

#[test]
fn zero_length_is_rejected_unless_the_caller_allows_empty() {
    let bytes = record(b"");
    let err = ecp::read_record(&mut &bytes[..], ReadOptions::NON_EMPTY).unwrap_err();
    assert!(matches!(err, EcpError::Empty));
    assert_eq!(
        err.to_string(),
        "empty record (length 0) where a non-empty message is required"
    );
    assert_eq!(
        ecp::read_record(&mut &bytes[..], ReadOptions::ALLOW_EMPTY).unwrap(),
        b""
    );
    // Also through the typed helper.
    let err = ecp::read_message::<Wait, _>(&mut &bytes[..], ReadOptions::default()).unwrap_err();
    assert!(matches!(err, EcpError::Empty));
}

#[test]
fn length_over_the_limit_is_rejected_before_reading_the_payload() {
    let bytes = record(&[0u8; 100]);
    let options = ReadOptions::NON_EMPTY.with_max_len(99);
    let err = ecp::read_record(&mut &bytes[..], options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "record length 100 bytes exceeds the limit of 99 bytes"
    );

    // Default limit is 64 MiB: a 2 GiB claim with no payload fails on size.
    let bytes = 0x8000_0000u32.to_ne_bytes();
    let err = ecp::read_record(&mut &bytes[..], ReadOptions::NON_EMPTY).unwrap_err();
    assert!(matches!(
        err,
        EcpError::TooLarge {
            length: 0x8000_0000,
            max: 67_108_864
        }
    ));
}

#[test]
fn undecodable_payload_names_the_message_type() {
    // Field 1 with wire type LEN announcing 10 bytes but only 1 present.
    let bytes = record(&[0x0a, 0x0a, 0x00]);
    let err = ecp::read_message::<Wait, _>(&mut &bytes[..], ReadOptions::NON_EMPTY).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, EcpError::Decode { length: 3, .. }));
    assert!(text.starts_with("cannot decode "), "{text}");
    assert!(text.contains("containerizer::Wait"), "{text}");
}

#[test]
fn read_stops_after_one_record() {
    let mut bytes = record(b"first");
    bytes.extend(record(b"second"));
    let mut input = &bytes[..];
    assert_eq!(
        ecp::read_record(&mut input, ReadOptions::NON_EMPTY).unwrap(),
        b"first"
    );
    assert_eq!(input, &record(b"second")[..]);
}

#[test]
fn io_errors_are_reported_as_io() {
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("pipe exploded"))
        }
    }
    let err = ecp::read_record(&mut Broken, ReadOptions::NON_EMPTY).unwrap_err();
    assert!(matches!(err, EcpError::Io(_)));
    assert_eq!(
        err.to_string(),
        "I/O error on the ECP record: pipe exploded"
    );
}

proptest! {
    #[test]
    fn any_payload_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut out = Vec::new();
        ecp::write_record(&mut out, &payload).unwrap();
        prop_assert_eq!(out.len(), payload.len() + 4);
        let back = ecp::read_record(&mut &out[..], ReadOptions::ALLOW_EMPTY).unwrap();
        prop_assert_eq!(back, payload);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let options = ReadOptions::ALLOW_EMPTY.with_max_len(1 << 20);
        let _ = ecp::read_record(&mut &bytes[..], options);
        let _ = ecp::read_message::<Termination, _>(&mut &bytes[..], options);
        let _ = ecp::read_message::<mesos_proto::containerizer::Launch, _>(&mut &bytes[..], options);
    }

    #[test]
    fn truncation_at_every_position_yields_the_matching_error(
        payload in proptest::collection::vec(any::<u8>(), 1..300),
    ) {
        let full = record(&payload);
        for cut in 0..full.len() {
            let err = ecp::read_record(&mut &full[..cut], ReadOptions::NON_EMPTY).unwrap_err();
            let ok = match cut {
                0 => matches!(err, EcpError::NoRecord),
                1..=3 => matches!(err, EcpError::TruncatedLength { received } if received == cut),
                _ => matches!(
                    err,
                    EcpError::TruncatedPayload { expected, received }
                        if expected == payload.len() && received == cut - 4
                ),
            };
            prop_assert!(ok, "cut at {}: {}", cut, err);
        }
    }
}
