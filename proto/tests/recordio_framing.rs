//! RecordIO framing: golden vectors, every split point, error cases, the
//! stream adapter and property tests.

// Helpers of this test crate may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use futures::{stream, StreamExt};
use mesos_proto::recordio::{self, RecordIoCodec, RecordIoError, StreamError};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder, FramedRead};

/// Feeds `chunks` one after another into a fresh codec, then signals EOF.
fn decode_chunks(chunks: &[&[u8]], max: usize) -> Result<Vec<Bytes>, RecordIoError> {
    let mut codec = RecordIoCodec::with_max_record_len(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(record) = codec.decode(&mut buf)? {
            out.push(record);
        }
    }
    while let Some(record) = codec.decode_eof(&mut buf)? {
        out.push(record);
    }
    Ok(out)
}

fn decode_whole(input: &[u8]) -> Result<Vec<Bytes>, RecordIoError> {
    decode_chunks(&[input], recordio::DEFAULT_MAX_RECORD_LEN)
}

fn encode_all(records: &[Vec<u8>]) -> Vec<u8> {
    let mut codec = RecordIoCodec::new();
    let mut out = BytesMut::new();
    for r in records {
        codec.encode(r.as_slice(), &mut out).unwrap();
    }
    out.to_vec()
}

#[test]
fn golden_hello_record() {
    assert_eq!(&recordio::encode_record(b"hello").unwrap()[..], b"5\nhello");
    assert_eq!(
        decode_whole(b"5\nhello").unwrap(),
        vec![Bytes::from_static(b"hello")]
    );
}

#[test]
fn golden_multi_digit_length_and_back_to_back_records() {
    let payload = vec![b'x'; 128];
    let mut stream = b"128\n".to_vec();
    stream.extend_from_slice(&payload);
    stream.extend_from_slice(b"2\n{}1\n7");
    assert_eq!(
        &encode_all(&[payload.clone(), b"{}".to_vec(), b"7".to_vec()])[..],
        &stream[..]
    );
    assert_eq!(
        decode_whole(&stream).unwrap(),
        vec![
            Bytes::from(payload),
            Bytes::from_static(b"{}"),
            Bytes::from_static(b"7")
        ]
    );
}

#[test]
fn payload_may_contain_newlines_and_digits() {
    let input = b"6\n12\n34\n3\nabc";
    assert_eq!(
        decode_whole(input).unwrap(),
        vec![Bytes::from_static(b"12\n34\n"), Bytes::from_static(b"abc")]
    );
}

#[test]
fn every_split_point_of_a_multi_record_stream_yields_identical_records() {
    let records: Vec<Vec<u8>> = vec![
        br#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"f1"}}}"#.to_vec(),
        br#"{"type":"HEARTBEAT"}"#.to_vec(),
        vec![0u8, b'\n', 1, 2, b'9'],
        b"x".to_vec(),
    ];
    let stream = encode_all(&records);
    let expected: Vec<Bytes> = records.iter().cloned().map(Bytes::from).collect();
    let max = recordio::DEFAULT_MAX_RECORD_LEN;

    for i in 0..=stream.len() {
        let (a, b) = stream.split_at(i);
        assert_eq!(
            decode_chunks(&[a, b], max).unwrap(),
            expected,
            "split at {i}"
        );
        for j in i..=stream.len() {
            let (b, c) = stream[i..].split_at(j - i);
            assert_eq!(
                decode_chunks(&[a, b, c], max).unwrap(),
                expected,
                "split at {i}/{j}"
            );
        }
    }
    // And byte by byte.
    let singles: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode_chunks(&singles, max).unwrap(), expected);
}

#[test]
fn non_digit_in_length_is_rejected_with_offset() {
    let err = decode_whole(b"1a\nx").unwrap_err();
    assert!(matches!(
        err,
        RecordIoError::NonDigit {
            byte: b'a',
            offset: 1
        }
    ));
    assert_eq!(
        err.to_string(),
        "invalid RecordIO length: byte 0x61 at offset 1 of the length line is not a decimal digit"
    );
    // Signs, spaces and CR are not digits either.
    for bad in [&b"-1\nx"[..], b" 1\nx", b"1\r\nx", b"+1\nx"] {
        assert!(
            matches!(decode_whole(bad), Err(RecordIoError::NonDigit { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn non_digit_is_detected_before_the_newline_arrives() {
    let mut codec = RecordIoCodec::new();
    let mut buf = BytesMut::from(&b"12x"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(RecordIoError::NonDigit {
            byte: b'x',
            offset: 2
        })
    ));
}

#[test]
fn empty_length_line_is_rejected() {
    let err = decode_whole(b"\nabc").unwrap_err();
    assert!(matches!(err, RecordIoError::EmptyLength));
    assert_eq!(
        err.to_string(),
        "invalid RecordIO length: empty length line"
    );
}

#[test]
fn over_long_length_line_is_rejected_without_waiting_for_a_newline() {
    let mut codec = RecordIoCodec::new();
    let mut buf = BytesMut::from(&b"000000000000000000001"[..]); // 21 digits
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(err, RecordIoError::LengthLineTooLong));
    assert_eq!(
        err.to_string(),
        "invalid RecordIO length: length line longer than 20 digits"
    );
    // 20 digits without newline: still waiting.
    let mut codec = RecordIoCodec::new();
    let mut buf = BytesMut::from(&b"00000000000000000001"[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
}

#[test]
fn record_over_the_limit_is_rejected_from_its_length() {
    let err = decode_chunks(&[b"11\n"], 10).unwrap_err();
    assert!(matches!(
        err,
        RecordIoError::TooLarge {
            length: 11,
            max: 10
        }
    ));
    assert_eq!(
        err.to_string(),
        "RecordIO record of 11 bytes exceeds the limit of 10 bytes"
    );
    assert_eq!(decode_chunks(&[b"10\n0123456789"], 10).unwrap().len(), 1);
}

#[test]
fn zero_length_record_is_an_error() {
    let err = decode_whole(b"0\n").unwrap_err();
    assert!(matches!(err, RecordIoError::ZeroLength));
    assert_eq!(
        err.to_string(),
        "invalid RecordIO record: zero length (Mesos never sends empty records)"
    );
    assert!(matches!(
        recordio::encode_record(b""),
        Err(RecordIoError::ZeroLength)
    ));
}

#[test]
fn eof_mid_record_reports_expected_and_received() {
    let err = decode_whole(b"5\nhel").unwrap_err();
    assert!(matches!(
        err,
        RecordIoError::TruncatedPayload {
            expected: 5,
            received: 3
        }
    ));
    assert_eq!(
        err.to_string(),
        "RecordIO stream ended inside a record: expected 5 bytes, received 3"
    );
    let err = decode_whole(b"5\nhello12").unwrap_err();
    assert!(matches!(
        err,
        RecordIoError::TruncatedLength { received: 2 }
    ));
    assert_eq!(
        err.to_string(),
        "RecordIO stream ended inside a length line after 2 bytes"
    );
}

#[test]
fn clean_eof_between_records_ends_the_stream() {
    assert_eq!(decode_whole(b"").unwrap(), Vec::<Bytes>::new());
    assert_eq!(decode_whole(b"1\na").unwrap().len(), 1);
}

#[tokio::test]
async fn framed_read_decodes_an_async_byte_stream() {
    let (mut tx, rx) = tokio::io::duplex(7);
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        tx.write_all(b"5\nhello3\nabc").await.unwrap();
    });
    let records: Vec<Bytes> = FramedRead::new(rx, RecordIoCodec::new())
        .map(|r| r.unwrap())
        .collect()
        .await;
    writer.await.unwrap();
    assert_eq!(
        records,
        vec![Bytes::from_static(b"hello"), Bytes::from_static(b"abc")]
    );
}

#[tokio::test]
async fn decode_stream_turns_body_chunks_into_records() {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"5\nhe")),
        Ok(Bytes::from_static(b"llo2")),
        Ok(Bytes::from_static(b"\n{}1\nz")),
    ];
    let records: Vec<Bytes> = recordio::decode_stream(stream::iter(chunks), RecordIoCodec::new())
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(
        records,
        vec![
            Bytes::from_static(b"hello"),
            Bytes::from_static(b"{}"),
            Bytes::from_static(b"z")
        ]
    );
}

#[tokio::test]
async fn decode_stream_reports_body_errors_and_stops() {
    let chunks: Vec<Result<&'static [u8], &'static str>> =
        vec![Ok(b"1\na2\n"), Err("connection reset"), Ok(b"ab")];
    let items: Vec<_> = recordio::decode_stream(stream::iter(chunks), RecordIoCodec::new())
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap(), &Bytes::from_static(b"a"));
    let err = items[1].as_ref().unwrap_err();
    assert!(matches!(err, StreamError::Body("connection reset")));
    assert_eq!(
        err.to_string(),
        "reading the RecordIO stream failed: connection reset"
    );
}

#[tokio::test]
async fn decode_stream_reports_truncation_at_end_of_body() {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from_static(b"1\na9\nabc"))];
    let items: Vec<_> = recordio::decode_stream(stream::iter(chunks), RecordIoCodec::new())
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert!(matches!(
        items[1],
        Err(StreamError::RecordIo(RecordIoError::TruncatedPayload {
            expected: 9,
            received: 3
        }))
    ));
}

#[tokio::test]
async fn decode_stream_reports_framing_errors_and_stops() {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"x\n")),
        Ok(Bytes::from_static(b"1\na")),
    ];
    let items: Vec<_> = recordio::decode_stream(stream::iter(chunks), RecordIoCodec::new())
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    assert!(matches!(
        items[0],
        Err(StreamError::RecordIo(RecordIoError::NonDigit { .. }))
    ));
}

/// Splits `data` at the given (sorted, deduplicated, clamped) cut points.
fn split_at_points(data: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
    points.iter_mut().for_each(|p| *p = (*p).min(data.len()));
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(&data[start..p]);
        start = p;
    }
    out.push(&data[start..]);
    out
}

proptest! {
    #[test]
    fn arbitrary_records_round_trip_under_arbitrary_chunking(
        records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 0..8),
        cuts in proptest::collection::vec(0usize..2000, 0..10),
    ) {
        let stream = encode_all(&records);
        let chunks = split_at_points(&stream, cuts);
        let decoded = decode_chunks(&chunks, recordio::DEFAULT_MAX_RECORD_LEN).unwrap();
        let expected: Vec<Bytes> = records.into_iter().map(Bytes::from).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn garbage_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..128),
        cuts in proptest::collection::vec(0usize..128, 0..4),
    ) {
        let chunks = split_at_points(&bytes, cuts);
        let _ = decode_chunks(&chunks, 64);
        let _ = decode_chunks(&[&bytes], usize::MAX);
    }

    #[test]
    fn digit_heavy_garbage_never_panics(s in "[0-9\n]{0,40}[a-z]{0,3}") {
        let _ = decode_chunks(&[s.as_bytes()], 1 << 20);
    }

    #[test]
    fn truncation_at_every_position_yields_the_right_error(
        records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 1..4),
    ) {
        let stream = encode_all(&records);
        // Byte offsets where each record (length line) starts.
        let mut starts = Vec::new();
        let mut offset = 0;
        for r in &records {
            starts.push((offset, r.len().to_string().len() + 1, r.len()));
            offset += r.len().to_string().len() + 1 + r.len();
        }
        for cut in 0..=stream.len() {
            let result = decode_whole(&stream[..cut]);
            // Which record does the cut fall into?
            let complete = starts.iter().filter(|(s, l, n)| s + l + n <= cut).count();
            match starts.iter().find(|(s, l, n)| *s < cut && cut < s + l + n) {
                None => {
                    let decoded = result.unwrap();
                    prop_assert_eq!(decoded.len(), complete);
                }
                Some(&(start, line, _)) if cut < start + line => {
                    let ok = matches!(
                        result,
                        Err(RecordIoError::TruncatedLength { received }) if received == cut - start
                    );
                    prop_assert!(ok, "cut {} inside a length line", cut);
                }
                Some(&(start, line, len)) => {
                    let ok = matches!(
                        result,
                        Err(RecordIoError::TruncatedPayload { expected, received })
                            if expected == len && received == cut - start - line
                    );
                    prop_assert!(ok, "cut {} inside a payload", cut);
                }
            }
        }
    }
}
