//! The `exit` file: how a container ended. Present ⇔ the container has exited.
//!
//! Written as a small pretty-printed JSON object so that operators can read it with `cat`:
//!
//! ```text
//! {
//!   "exit_code": 137,
//!   "signal": 9,
//!   "oom_killed": true,
//!   "destroyed": false,
//!   "message": "container was killed by the kernel OOM killer",
//!   "finished_at": "2024-05-01T12:00:00.123Z"
//! }
//! ```
//!
//! Exit files of Python Deimos hold the raw `docker wait` output (an integer); [`ExitRecord::parse`]
//! accepts those too, decoding them as Deimos did (negative n → 128 + |n|, then modulo 256).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::timestamp::{format_iso_millis, parse_iso};

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The main process's exit code, when known.
    pub exit_code: Option<i32>,
    /// The signal that killed the main process, when known.
    pub signal: Option<i32>,
    /// The kernel OOM killer killed the container.
    pub oom_killed: bool,
    /// The container was stopped by a `destroy` request.
    pub destroyed: bool,
    /// Free-form explanation for operators and for the Mesos `Termination.message`.
    pub message: String,
    /// When the exit was observed (absent in legacy Deimos exit files).
    #[serde(with = "iso_option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// An `exit` file that is neither an exit record nor a legacy `docker wait` integer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a JSON exit record nor a `docker wait` integer: {detail}")]
pub struct InvalidExitRecord {
    /// What was wrong.
    pub detail: String,
}

impl ExitRecord {
    /// An exit with a code, observed now.
    pub fn with_code(exit_code: i32) -> ExitRecord {
        ExitRecord {
            exit_code: Some(exit_code),
            signal: None,
            oom_killed: false,
            destroyed: false,
            message: String::new(),
            finished_at: Some(OffsetDateTime::now_utc()),
        }
    }

    /// The file content (pretty JSON plus a newline).
    pub fn render(&self) -> String {
        // Serialising this plain struct cannot fail; keep a readable fallback regardless.
        let mut text = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"message\": \"unserialisable exit record: {e}\"}}"));
        text.push('\n');
        text
    }

    /// Parses an `exit` file: a JSON record, or a legacy Deimos `docker wait` integer.
    pub fn parse(text: &str) -> Result<ExitRecord, InvalidExitRecord> {
        let trimmed = text.trim();
        if let Ok(raw) = trimmed.parse::<i64>() {
            return Ok(ExitRecord {
                exit_code: Some(decode_legacy_code(raw)),
                signal: None,
                oom_killed: false,
                destroyed: false,
                message: String::new(),
                finished_at: None,
            });
        }
        serde_json::from_str(trimmed).map_err(|e| InvalidExitRecord {
            detail: e.to_string(),
        })
    }

    /// The status in waitpid(2) encoding, as Mesos `Termination.status` expects: the signal
    /// number when killed by a signal, otherwise the exit code shifted left by 8. `None` when
    /// neither is known.
    pub fn wait_status(&self) -> Option<i32> {
        match (self.signal, self.exit_code) {
            (Some(signal), _) => Some(signal & 0x7f),
            (None, Some(code)) => Some((code & 0xff) << 8),
            (None, None) => None,
        }
    }
}

/// Deimos' decoding of `docker wait` output: negative n → 128 + |n|, then modulo 256.
fn decode_legacy_code(raw: i64) -> i32 {
    let code = if raw < 0 {
        128i64.saturating_add(raw.saturating_abs())
    } else {
        raw
    };
    // rem_euclid(256) is in 0..256, which always fits.
    i32::try_from(code.rem_euclid(256)).unwrap_or(255)
}

mod iso_option {
    use super::{format_iso_millis, parse_iso};
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<OffsetDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(t) => serializer.serialize_str(&format_iso_millis(*t)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) => parse_iso(&text).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "finished_at {text:?} is not YYYY-MM-DDTHH:MM:SS.mmmZ"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn oom_record() -> ExitRecord {
        ExitRecord {
            exit_code: Some(137),
            signal: Some(9),
            oom_killed: true,
            destroyed: false,
            message: "killed by the OOM killer".into(),
            finished_at: Some(datetime!(2024-05-01 12:00:00.123 UTC)),
        }
    }

    #[test]
    fn record_round_trips_through_readable_json() {
        let text = oom_record().render();
        assert!(text.contains("\"oom_killed\": true"), "{text}");
        assert!(
            text.contains("\"finished_at\": \"2024-05-01T12:00:00.123Z\""),
            "{text}"
        );
        assert_eq!(ExitRecord::parse(&text).unwrap(), oom_record());
    }

    #[test]
    fn legacy_docker_wait_integers_decode_like_deimos() {
        assert_eq!(ExitRecord::parse("0\n").unwrap().exit_code, Some(0));
        assert_eq!(ExitRecord::parse("137").unwrap().exit_code, Some(137));
        assert_eq!(ExitRecord::parse("-1").unwrap().exit_code, Some(129));
        assert_eq!(ExitRecord::parse("300").unwrap().exit_code, Some(44));
        assert_eq!(ExitRecord::parse("-200").unwrap().exit_code, Some(72));
    }

    #[test]
    fn garbage_exit_file_is_an_error_not_a_panic() {
        for text in [
            "",
            "exited",
            "{\"exit_code\": \"x\"}",
            "{\"finished_at\": \"now\"}",
        ] {
            assert!(ExitRecord::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn wait_status_prefers_signal_then_shifted_code() {
        assert_eq!(oom_record().wait_status(), Some(9));
        assert_eq!(ExitRecord::with_code(3).wait_status(), Some(3 << 8));
        let unknown = ExitRecord {
            exit_code: None,
            ..ExitRecord::with_code(0)
        };
        assert_eq!(unknown.wait_status(), None);
    }
}
