//! Time formats of the state directory.
//!
//! Start-time index entries are named `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds), the
//! format Deimos used, so names sort in time order. Two launches in the same millisecond get
//! distinct names: the second gets the suffix `.1`, the third `.2`, and so on
//! (`2024-05-01T12:00:00.123Z.1`); a suffixed name still sorts after the plain one and before
//! the next millisecond. "Now" is read at every call (Deimos read it once per process, D-5).
//!
//! The `state [TIME]` cutoff argument accepts `YYYY-MM-DDTHH:MM:SSZ` (Deimos' format) and the
//! same with fractional seconds (`YYYY-MM-DDTHH:MM:SS.fffZ`, 1 to 9 digits).

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const ISO_MILLIS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
const ISO_SECONDS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
const ISO_FRACTION: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:1+]Z");

/// The expected shape of a `state` cutoff argument, quoted in errors.
pub const CUTOFF_FORMAT: &str = "YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DDTHH:MM:SS.fffZ (UTC)";

/// A `state` cutoff argument that is not a UTC timestamp in the accepted format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp argument {argument:?}: expected {CUTOFF_FORMAT}")]
pub struct InvalidTimestamp {
    /// The argument as given.
    pub argument: String,
}

/// Formats `time` (converted to UTC) as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_iso_millis(time: OffsetDateTime) -> String {
    let utc = time.to_offset(UtcOffset::UTC);
    // Formatting a valid date with a fixed, valid description can only fail for years
    // outside 0..=9999; fall back to RFC 3339-like Debug output rather than panic.
    utc.format(ISO_MILLIS).unwrap_or_else(|_| format!("{utc}"))
}

/// Parses a timestamp written by [`format_iso_millis`] (or any accepted cutoff format).
pub fn parse_iso(text: &str) -> Option<OffsetDateTime> {
    [ISO_MILLIS, ISO_FRACTION, ISO_SECONDS]
        .iter()
        .find_map(|format| PrimitiveDateTime::parse(text, format).ok())
        .map(PrimitiveDateTime::assume_utc)
}

/// Parses the `state [TIME]` cutoff argument.
pub fn parse_cutoff(argument: &str) -> Result<OffsetDateTime, InvalidTimestamp> {
    [ISO_SECONDS, ISO_FRACTION]
        .iter()
        .find_map(|format| PrimitiveDateTime::parse(argument, format).ok())
        .map(PrimitiveDateTime::assume_utc)
        .ok_or_else(|| InvalidTimestamp {
            argument: argument.to_owned(),
        })
}

/// The name of one start-time index entry: a time plus a collision sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartTimeName {
    /// When the container was indexed (millisecond precision).
    pub time: OffsetDateTime,
    /// 0 for the first container indexed in that millisecond, then 1, 2, ...
    pub sequence: u32,
}

impl StartTimeName {
    /// The entry's file name: the ISO time, plus `.<sequence>` when the sequence is not 0.
    pub fn file_name(&self) -> String {
        let iso = format_iso_millis(self.time);
        if self.sequence == 0 {
            iso
        } else {
            format!("{iso}.{}", self.sequence)
        }
    }

    /// Parses an entry name; `None` for names this module did not write.
    pub fn parse(name: &str) -> Option<StartTimeName> {
        let z = name.find('Z')?;
        let (iso, rest) = name.split_at(z + 1);
        let time = parse_iso(iso)?;
        let sequence = match rest {
            "" => 0,
            _ => {
                let digits = rest.strip_prefix('.')?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits.parse().ok()?
            }
        };
        Some(StartTimeName { time, sequence })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_utc_with_milliseconds() {
        let t = datetime!(2024-05-01 12:34:56.789123 UTC);
        assert_eq!(format_iso_millis(t), "2024-05-01T12:34:56.789Z");
        let t = datetime!(2024-05-01 14:34:56.007 +02:00);
        assert_eq!(format_iso_millis(t), "2024-05-01T12:34:56.007Z");
    }

    #[test]
    fn start_time_names_round_trip_with_and_without_suffix() {
        let time = datetime!(2024-05-01 12:34:56.789 UTC);
        for sequence in [0, 1, 42] {
            let name = StartTimeName { time, sequence };
            assert_eq!(StartTimeName::parse(&name.file_name()), Some(name));
        }
        assert_eq!(
            StartTimeName { time, sequence: 3 }.file_name(),
            "2024-05-01T12:34:56.789Z.3"
        );
    }

    #[test]
    fn suffixed_names_sort_between_their_millisecond_and_the_next() {
        let plain = "2024-05-01T12:34:56.789Z";
        let suffixed = "2024-05-01T12:34:56.789Z.1";
        let next = "2024-05-01T12:34:56.790Z";
        assert!(plain < suffixed && suffixed < next);
    }

    #[test]
    fn start_time_parse_rejects_foreign_names() {
        for name in [
            "",
            "junk",
            "2024-05-01T12:34:56.789",
            "2024-05-01T12:34:56.789Z.",
            "2024-05-01T12:34:56.789Z.x",
            "2024-05-01T12:34:56.789Z1",
            "2024-13-01T12:34:56.789Z",
        ] {
            assert_eq!(StartTimeName::parse(name), None, "{name}");
        }
    }

    #[test]
    fn cutoff_accepts_deimos_format_and_fractional_seconds() {
        assert_eq!(
            parse_cutoff("2024-05-01T12:34:56Z").unwrap(),
            datetime!(2024-05-01 12:34:56 UTC)
        );
        assert_eq!(
            parse_cutoff("2024-05-01T12:34:56.5Z").unwrap(),
            datetime!(2024-05-01 12:34:56.5 UTC)
        );
        assert_eq!(
            parse_cutoff("2024-05-01T12:34:56.123456789Z").unwrap(),
            datetime!(2024-05-01 12:34:56.123456789 UTC)
        );
    }

    #[test]
    fn cutoff_rejects_other_formats_naming_the_argument() {
        for argument in [
            "",
            "yesterday",
            "2024-05-01",
            "2024-05-01T12:34:56",
            "2024-05-01 12:34:56Z",
            "2024-05-01T12:34:56+02:00",
            "2024-02-30T00:00:00Z",
        ] {
            let error = parse_cutoff(argument).unwrap_err();
            assert_eq!(error.argument, argument);
            let message = error.to_string();
            assert!(message.contains(&format!("{argument:?}")), "{message}");
            assert!(message.contains("YYYY-MM-DDTHH:MM:SSZ"), "{message}");
        }
    }
}
