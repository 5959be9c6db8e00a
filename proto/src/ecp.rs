//! Framing of the external containerizer protocol (ECP).
//!
//! The agent and the containerizer program exchange exactly one record per
//! direction and invocation:
//!
//! ```text
//! record = length:u32 (4 bytes, the agent's native byte order) || payload
//! ```
//!
//! The payload is the protobuf encoding of one message. The length is the
//! raw `uint32_t` of the agent's CPU (little-endian on x86-64); this module
//! uses [`u32::from_ne_bytes`] / [`u32::to_ne_bytes`], so it must run on the
//! agent's host, which it always does.
//!
//! Reading takes exactly 4 bytes and then exactly `length` bytes and never
//! reads further: the agent keeps its end of stdin open until the program has
//! exited, so reading to EOF would deadlock. A zero length is how an empty
//! message is sent (e.g. `Containers` without entries); whether it is
//! acceptable depends on the message, so the caller chooses with
//! [`ReadOptions::allow_empty`].

use std::io::{self, Read, Write};

use prost::Message;
use thiserror::Error;

/// Default upper bound of a record's payload length (64 MiB).
pub const DEFAULT_MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

/// Number of bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Largest chunk allocated ahead of the bytes actually received, so that a
/// bogus length cannot make us allocate more than this before data arrives.
const READ_CHUNK: usize = 64 * 1024;

/// Errors of reading or writing an ECP record.
#[derive(Debug, Error)]
pub enum EcpError {
    /// The input ended before the first byte of the length.
    #[error("no record: stdin closed before the 4-byte length")]
    NoRecord,
    /// The input ended inside the 4-byte length.
    #[error("truncated record: stdin closed after {received} of the 4 length bytes")]
    TruncatedLength {
        /// Length bytes received before EOF (1 to 3).
        received: usize,
    },
    /// The input ended inside the payload.
    #[error("truncated record: expected {expected} bytes, received {received}")]
    TruncatedPayload {
        /// Payload length announced by the prefix.
        expected: usize,
        /// Payload bytes received before EOF.
        received: usize,
    },
    /// A zero length where the caller requires a non-empty message.
    #[error("empty record (length 0) where a non-empty message is required")]
    Empty,
    /// The announced length is above the configured limit.
    #[error("record length {length} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced (or, when writing, actual) payload length.
        length: u64,
        /// The limit in force.
        max: usize,
    },
    /// The payload is not a valid encoding of the expected message.
    #[error("cannot decode {type_name} from a {length}-byte record: {source}")]
    Decode {
        /// Rust type name of the expected message.
        type_name: &'static str,
        /// Payload length.
        length: usize,
        /// The protobuf error.
        #[source]
        source: prost::DecodeError,
    },
    /// An I/O error other than end of input.
    #[error("I/O error on the ECP record: {0}")]
    Io(#[from] io::Error),
}

/// How to read a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Largest accepted payload length in bytes.
    pub max_len: usize,
    /// Whether a zero-length record (an empty message) is acceptable.
    pub allow_empty: bool,
}

impl ReadOptions {
    /// Options for a message that must not be empty (every input message of
    /// the ECP: they all have a required `container_id`), with the default
    /// size limit.
    pub const NON_EMPTY: Self = Self {
        max_len: DEFAULT_MAX_RECORD_LEN,
        allow_empty: false,
    };

    /// Options for a message that may legitimately be empty (`Containers`
    /// without entries, `Termination` without fields), with the default size
    /// limit.
    pub const ALLOW_EMPTY: Self = Self {
        max_len: DEFAULT_MAX_RECORD_LEN,
        allow_empty: true,
    };

    /// Returns these options with another size limit.
    #[must_use]
    pub const fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }
}

impl Default for ReadOptions {
    /// [`ReadOptions::NON_EMPTY`].
    fn default() -> Self {
        Self::NON_EMPTY
    }
}

/// Reads one record and returns its payload.
///
/// Reads exactly 4 bytes and then exactly the announced number of bytes;
/// the payload buffer grows with the data received (at most 64 KiB ahead),
/// never to the announced size up front.
pub fn read_record<R: Read + ?Sized>(
    reader: &mut R,
    options: ReadOptions,
) -> Result<Vec<u8>, EcpError> {
    let mut prefix = [0u8; LENGTH_PREFIX_LEN];
    let got = read_full(reader, &mut prefix)?;
    match got {
        0 => return Err(EcpError::NoRecord),
        1..=3 => return Err(EcpError::TruncatedLength { received: got }),
        _ => {}
    }
    let length = u32::from_ne_bytes(prefix);
    let expected = usize::try_from(length).unwrap_or(usize::MAX);
    if expected > options.max_len {
        return Err(EcpError::TooLarge {
            length: u64::from(length),
            max: options.max_len,
        });
    }
    if expected == 0 {
        return if options.allow_empty {
            Ok(Vec::new())
        } else {
            Err(EcpError::Empty)
        };
    }

    let mut payload = Vec::with_capacity(expected.min(READ_CHUNK));
    while payload.len() < expected {
        let start = payload.len();
        let chunk = (expected - start).min(READ_CHUNK);
        payload.resize(start + chunk, 0);
        let got = read_full(reader, &mut payload[start..])?;
        payload.truncate(start + got);
        if got < chunk {
            return Err(EcpError::TruncatedPayload {
                expected,
                received: payload.len(),
            });
        }
    }
    Ok(payload)
}

/// Reads one record and decodes it as `M`.
pub fn read_message<M, R>(reader: &mut R, options: ReadOptions) -> Result<M, EcpError>
where
    M: Message + Default,
    R: Read + ?Sized,
{
    let payload = read_record(reader, options)?;
    M::decode(payload.as_slice()).map_err(|source| EcpError::Decode {
        type_name: std::any::type_name::<M>(),
        length: payload.len(),
        source,
    })
}

/// Writes one record (length prefix and payload) and flushes the writer.
pub fn write_record<W: Write + ?Sized>(writer: &mut W, payload: &[u8]) -> Result<(), EcpError> {
    let length = u32::try_from(payload.len()).map_err(|_| EcpError::TooLarge {
        length: payload.len() as u64,
        max: u32::MAX as usize,
    })?;
    let mut record = Vec::with_capacity(LENGTH_PREFIX_LEN + payload.len());
    record.extend_from_slice(&length.to_ne_bytes());
    record.extend_from_slice(payload);
    writer.write_all(&record)?;
    writer.flush()?;
    Ok(())
}

/// Encodes `message` and writes it as one record. An empty message is written
/// as `00 00 00 00`.
pub fn write_message<M: Message, W: Write + ?Sized>(
    writer: &mut W,
    message: &M,
) -> Result<(), EcpError> {
    write_record(writer, &message.encode_to_vec())
}

/// Encodes `message` into a complete record (prefix and payload) in memory.
pub fn encode_record<M: Message>(message: &M) -> Result<Vec<u8>, EcpError> {
    let mut out = Vec::new();
    write_message(&mut out, message)?;
    Ok(out)
}

/// Fills `buf` as far as the input allows; returns the number of bytes read
/// (less than `buf.len()` only at end of input). Retries on `Interrupted`.
fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte per call and panics if asked for more
    /// than it was given, proving we never read past the record.
    struct Trickle<'a> {
        data: &'a [u8],
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(!self.data.is_empty(), "read past the end of the record");
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.data[0];
            self.data = &self.data[1..];
            Ok(1)
        }
    }

    #[test]
    fn reads_exactly_one_record_without_touching_further_input() {
        let mut data = 3u32.to_ne_bytes().to_vec();
        data.extend_from_slice(b"abc");
        let mut input = Trickle { data: &data };
        let payload = read_record(&mut input, ReadOptions::NON_EMPTY).unwrap();
        assert_eq!(payload, b"abc");
    }

    #[test]
    fn huge_announced_length_fails_without_allocating_it() {
        let mut input = 0x7fff_ffffu32.to_ne_bytes().to_vec();
        input.extend_from_slice(&[1, 2, 3]);
        let options = ReadOptions::NON_EMPTY.with_max_len(usize::MAX);
        let err = read_record(&mut &input[..], options).unwrap_err();
        assert!(
            matches!(err, EcpError::TruncatedPayload { received: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn interrupted_reads_are_retried() {
        struct Flaky(bool, Vec<u8>);
        impl Read for Flaky {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0 = !self.0;
                if self.0 {
                    return Err(io::Error::from(io::ErrorKind::Interrupted));
                }
                let n = buf.len().min(self.1.len());
                buf[..n].copy_from_slice(&self.1[..n]);
                self.1.drain(..n);
                Ok(n)
            }
        }
        let mut bytes = 1u32.to_ne_bytes().to_vec();
        bytes.push(42);
        let mut input = Flaky(false, bytes);
        assert_eq!(
            read_record(&mut input, ReadOptions::NON_EMPTY).unwrap(),
            vec![42]
        );
    }
}
