//! RecordIO, the framing of the v1 scheduler and executor event streams.
//!
//! ```text
//! stream = *record
//! record = length "\n" payload   ; length: ASCII decimal byte count of payload
//! ```
//!
//! No sign, no whitespace, no trailing newline after the payload. The layer is
//! independent of HTTP chunking: a record may span chunks and a chunk may hold
//! several records, so decode the de-chunked body with [`RecordIoCodec`] (a
//! [`tokio_util::codec`] decoder/encoder) or with [`decode_stream`].
//!
//! Zero-length records: Mesos never sends them (its docs say the length is
//! never 0) and an empty payload is not a valid `Event` for our purposes, so a
//! length of `0` is treated as a protocol error ([`RecordIoError::ZeroLength`]),
//! and the encoder refuses to write an empty record.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use thiserror::Error;
use tokio_util::codec::{Decoder, Encoder};

/// Default upper bound of one record's payload (64 MiB).
pub const DEFAULT_MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

/// Most digits accepted in a length line (`u64::MAX` has 20).
pub const MAX_LENGTH_DIGITS: usize = 20;

/// Errors of RecordIO decoding and encoding.
#[derive(Debug, Error)]
pub enum RecordIoError {
    /// A byte other than an ASCII digit or `\n` in the length line.
    #[error("invalid RecordIO length: byte 0x{byte:02x} at offset {offset} of the length line is not a decimal digit")]
    NonDigit {
        /// The offending byte.
        byte: u8,
        /// Its offset from the start of the length line.
        offset: usize,
    },
    /// A length line without any digit (`"\n"`).
    #[error("invalid RecordIO length: empty length line")]
    EmptyLength,
    /// More digits than [`MAX_LENGTH_DIGITS`] without a newline.
    #[error("invalid RecordIO length: length line longer than {MAX_LENGTH_DIGITS} digits")]
    LengthLineTooLong,
    /// Twenty digits that do not fit a `u64`.
    #[error("invalid RecordIO length: {digits} does not fit an unsigned 64-bit integer")]
    LengthOverflow {
        /// The digits as received.
        digits: String,
    },
    /// A record of length 0 (Mesos never sends one).
    #[error("invalid RecordIO record: zero length (Mesos never sends empty records)")]
    ZeroLength,
    /// A record longer than the configured limit.
    #[error("RecordIO record of {length} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced (or, when encoding, actual) length.
        length: u64,
        /// The limit in force.
        max: usize,
    },
    /// End of stream inside a length line.
    #[error("RecordIO stream ended inside a length line after {received} bytes")]
    TruncatedLength {
        /// Bytes of the length line received.
        received: usize,
    },
    /// End of stream inside a payload.
    #[error(
        "RecordIO stream ended inside a record: expected {expected} bytes, received {received}"
    )]
    TruncatedPayload {
        /// Announced payload length.
        expected: usize,
        /// Payload bytes received.
        received: usize,
    },
    /// An I/O error of the underlying transport (when used with `FramedRead`).
    #[error("I/O error while reading a RecordIO stream: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the decoder is inside the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting (the rest of) a length line.
    Length,
    /// Expecting a payload of this many bytes.
    Payload(usize),
}

/// RecordIO [`Decoder`] and [`Encoder`] with a maximum record size.
#[derive(Debug, Clone)]
pub struct RecordIoCodec {
    max_record_len: usize,
    state: State,
}

impl RecordIoCodec {
    /// A codec accepting records up to [`DEFAULT_MAX_RECORD_LEN`] bytes.
    pub fn new() -> Self {
        Self::with_max_record_len(DEFAULT_MAX_RECORD_LEN)
    }

    /// A codec accepting records up to `max_record_len` bytes.
    pub fn with_max_record_len(max_record_len: usize) -> Self {
        Self {
            max_record_len,
            state: State::Length,
        }
    }

    /// The maximum record size of this codec.
    pub fn max_record_len(&self) -> usize {
        self.max_record_len
    }

    /// Parses a length line at the start of `src`. Returns the payload length
    /// and the length of the line including `\n`, or `None` if more input is
    /// needed.
    fn parse_length(&self, src: &[u8]) -> Result<Option<(usize, usize)>, RecordIoError> {
        let window = &src[..src.len().min(MAX_LENGTH_DIGITS + 1)];
        let mut newline = None;
        for (offset, &byte) in window.iter().enumerate() {
            match byte {
                b'0'..=b'9' => {}
                b'\n' => {
                    newline = Some(offset);
                    break;
                }
                _ => return Err(RecordIoError::NonDigit { byte, offset }),
            }
        }
        let Some(newline) = newline else {
            if window.len() > MAX_LENGTH_DIGITS {
                return Err(RecordIoError::LengthLineTooLong);
            }
            return Ok(None);
        };
        if newline == 0 {
            return Err(RecordIoError::EmptyLength);
        }
        let digits = std::str::from_utf8(&src[..newline]).unwrap_or_default();
        let length: u64 = digits.parse().map_err(|_| RecordIoError::LengthOverflow {
            digits: digits.to_owned(),
        })?;
        if length == 0 {
            return Err(RecordIoError::ZeroLength);
        }
        match usize::try_from(length) {
            Ok(len) if len <= self.max_record_len => Ok(Some((len, newline + 1))),
            _ => Err(RecordIoError::TooLarge {
                length,
                max: self.max_record_len,
            }),
        }
    }
}

impl Default for RecordIoCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for RecordIoCodec {
    type Item = Bytes;
    type Error = RecordIoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        if self.state == State::Length {
            let Some((length, line_len)) = self.parse_length(src)? else {
                return Ok(None);
            };
            src.advance(line_len);
            self.state = State::Payload(length);
        }
        let State::Payload(length) = self.state else {
            return Ok(None);
        };
        if src.len() < length {
            // Make room for the rest, but never more than 64 KiB ahead of the
            // data actually received.
            src.reserve((length - src.len()).min(64 * 1024));
            return Ok(None);
        }
        self.state = State::Length;
        Ok(Some(src.split_to(length).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, RecordIoError> {
        if let Some(record) = self.decode(src)? {
            return Ok(Some(record));
        }
        match self.state {
            State::Payload(expected) => Err(RecordIoError::TruncatedPayload {
                expected,
                received: src.len(),
            }),
            State::Length if !src.is_empty() => Err(RecordIoError::TruncatedLength {
                received: src.len(),
            }),
            State::Length => Ok(None),
        }
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for RecordIoCodec {
    type Error = RecordIoError;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), RecordIoError> {
        let payload = item.as_ref();
        if payload.is_empty() {
            return Err(RecordIoError::ZeroLength);
        }
        if payload.len() > self.max_record_len {
            return Err(RecordIoError::TooLarge {
                length: payload.len() as u64,
                max: self.max_record_len,
            });
        }
        let line = format!("{}\n", payload.len());
        dst.reserve(line.len() + payload.len());
        dst.put_slice(line.as_bytes());
        dst.put_slice(payload);
        Ok(())
    }
}

/// Encodes one record (`"<len>\n" + payload`) into a new buffer.
///
/// Fails with [`RecordIoError::ZeroLength`] for an empty payload.
pub fn encode_record(payload: &[u8]) -> Result<Bytes, RecordIoError> {
    let mut out = BytesMut::new();
    RecordIoCodec::with_max_record_len(usize::MAX).encode(payload, &mut out)?;
    Ok(out.freeze())
}

/// Error of [`decode_stream`]: either the body failed or its content is not
/// valid RecordIO.
#[derive(Debug, Error)]
pub enum StreamError<E> {
    /// The underlying byte stream (e.g. the HTTP body) returned an error.
    #[error("reading the RecordIO stream failed: {0}")]
    Body(E),
    /// The bytes are not valid RecordIO.
    #[error(transparent)]
    RecordIo(#[from] RecordIoError),
}

/// Decodes a stream of byte chunks (e.g. an HTTP response body) into a stream
/// of records.
///
/// The stream ends after the last complete record when the body ends cleanly,
/// and after the first error otherwise (a body error, invalid framing, or the
/// body ending inside a record).
pub fn decode_stream<S, B, E>(
    body: S,
    codec: RecordIoCodec,
) -> impl Stream<Item = Result<Bytes, StreamError<E>>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    struct St<S> {
        body: std::pin::Pin<Box<S>>,
        codec: RecordIoCodec,
        buf: BytesMut,
        eof: bool,
        done: bool,
    }

    let state = St {
        body: Box::pin(body),
        codec,
        buf: BytesMut::new(),
        eof: false,
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            let decoded = if st.eof {
                st.codec.decode_eof(&mut st.buf)
            } else {
                st.codec.decode(&mut st.buf)
            };
            match decoded {
                Ok(Some(record)) => return Some((Ok(record), st)),
                Ok(None) if st.eof => return None,
                Ok(None) => {}
                Err(e) => {
                    st.done = true;
                    return Some((Err(StreamError::RecordIo(e)), st));
                }
            }
            match st.body.next().await {
                Some(Ok(chunk)) => st.buf.extend_from_slice(chunk.as_ref()),
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(StreamError::Body(e)), st));
                }
                None => st.eof = true,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Bytes>, RecordIoError> {
        let mut codec = RecordIoCodec::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(record) = codec.decode_eof(&mut buf)? {
            out.push(record);
        }
        Ok(out)
    }

    #[test]
    fn leading_zeros_in_the_length_are_accepted() {
        assert_eq!(
            decode_all(b"005\nhello").unwrap(),
            vec![Bytes::from_static(b"hello")]
        );
    }

    #[test]
    fn twenty_digit_length_over_u64_is_rejected() {
        let err = decode_all(b"99999999999999999999\n").unwrap_err();
        assert!(matches!(err, RecordIoError::LengthOverflow { .. }), "{err}");
    }

    #[test]
    fn max_u64_length_is_too_large_not_overflow() {
        let err = decode_all(b"18446744073709551615\n").unwrap_err();
        assert!(matches!(err, RecordIoError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn encoder_refuses_empty_and_oversized_records() {
        let mut codec = RecordIoCodec::with_max_record_len(3);
        let mut dst = BytesMut::new();
        assert!(matches!(
            codec.encode(b"", &mut dst),
            Err(RecordIoError::ZeroLength)
        ));
        assert!(matches!(
            codec.encode(b"abcd", &mut dst),
            Err(RecordIoError::TooLarge { .. })
        ));
        assert!(dst.is_empty());
    }
}
