//! Validated identifiers that become file names under the state root.
//!
//! A Mesos container id names a directory (`<root>/mesos/<id>`) and a Docker id names an index
//! link (`<root>/docker/<docker-id>`), so both must be a single, harmless path component: an id
//! such as `../../etc` must never reach the file system. This mirrors youki's `ErrInvalidID`.

use std::fmt;
use std::str::FromStr;

/// Longest accepted id in bytes: the Linux limit for one path component (`NAME_MAX`).
pub const MAX_ID_BYTES: usize = 255;

/// Why an id was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRejection {
    /// The id is the empty string.
    Empty,
    /// The id is longer than [`MAX_ID_BYTES`] bytes.
    TooLong,
    /// The id is `.` or `..`, which name the current or parent directory.
    DotOrDotDot,
    /// The id contains `/`, which would make it a path of several components.
    Slash,
    /// The id contains `\`, rejected so that ids stay portable and unambiguous in logs.
    Backslash,
    /// The id contains NUL or another control character.
    ControlCharacter,
}

impl fmt::Display for IdRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self {
            IdRejection::Empty => "it is empty",
            IdRejection::TooLong => "it is longer than 255 bytes",
            IdRejection::DotOrDotDot => "`.` and `..` name directories, not containers",
            IdRejection::Slash => "it contains `/`",
            IdRejection::Backslash => "it contains `\\`",
            IdRejection::ControlCharacter => "it contains NUL or a control character",
        };
        f.write_str(reason)
    }
}

/// An id that cannot be used as a state directory or index link name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {id:?}: {reason}")]
pub struct InvalidId {
    /// What the id identifies (`container id`, `docker id`).
    pub kind: &'static str,
    /// The rejected id, as given.
    pub id: String,
    /// Why it was rejected.
    pub reason: IdRejection,
}

/// Checks that `id` is usable as one path component; pure.
pub fn check_path_component(id: &str) -> Result<(), IdRejection> {
    if id.is_empty() {
        return Err(IdRejection::Empty);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(IdRejection::TooLong);
    }
    if id == "." || id == ".." {
        return Err(IdRejection::DotOrDotDot);
    }
    if id.contains('/') {
        return Err(IdRejection::Slash);
    }
    if id.contains('\\') {
        return Err(IdRejection::Backslash);
    }
    if id.chars().any(char::is_control) {
        return Err(IdRejection::ControlCharacter);
    }
    Ok(())
}

/// A Mesos container id that is safe to use as a directory name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId(String);

impl ContainerId {
    /// Validates `id`; see [`IdRejection`] for what is refused.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
        let id = id.into();
        match check_path_component(&id) {
            Ok(()) => Ok(ContainerId(id)),
            Err(reason) => Err(InvalidId {
                kind: "container id",
                id,
                reason,
            }),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ContainerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for ContainerId {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ContainerId::new(s)
    }
}

impl TryFrom<String> for ContainerId {
    type Error = InvalidId;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        ContainerId::new(value)
    }
}

/// Validates a Docker container id before it names an index link.
pub fn check_docker_id(docker_id: &str) -> Result<(), InvalidId> {
    check_path_component(docker_id).map_err(|reason| InvalidId {
        kind: "docker id",
        id: docker_id.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(id: &str) -> IdRejection {
        ContainerId::new(id).unwrap_err().reason
    }

    #[test]
    fn accepts_uuid_and_ordinary_names() {
        for id in [
            "0d4b9bd4-7a0c-4a2b-9d0e-3c1b2a0f9e11",
            "a",
            ".hidden",
            "a..b",
            "task.1_x-y",
        ] {
            assert_eq!(ContainerId::new(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn rejects_empty_id() {
        assert_eq!(rejection(""), IdRejection::Empty);
    }

    #[test]
    fn rejects_id_longer_than_255_bytes_but_accepts_255() {
        assert!(ContainerId::new("x".repeat(255)).is_ok());
        assert_eq!(rejection(&"x".repeat(256)), IdRejection::TooLong);
        // 128 two-byte characters are 256 bytes although only 128 characters.
        assert_eq!(rejection(&"é".repeat(128)), IdRejection::TooLong);
    }

    #[test]
    fn rejects_dot_and_dot_dot() {
        assert_eq!(rejection("."), IdRejection::DotOrDotDot);
        assert_eq!(rejection(".."), IdRejection::DotOrDotDot);
    }

    #[test]
    fn rejects_path_separators() {
        assert_eq!(rejection("../etc"), IdRejection::Slash);
        assert_eq!(rejection("a/b"), IdRejection::Slash);
        assert_eq!(rejection("a\\b"), IdRejection::Backslash);
    }

    #[test]
    fn rejects_nul_and_control_characters() {
        assert_eq!(rejection("a\0b"), IdRejection::ControlCharacter);
        assert_eq!(rejection("a\nb"), IdRejection::ControlCharacter);
        assert_eq!(rejection("a\u{7f}"), IdRejection::ControlCharacter);
        assert_eq!(rejection("a\u{85}"), IdRejection::ControlCharacter);
    }

    #[test]
    fn error_message_names_the_id_and_the_reason() {
        let message = ContainerId::new("a/b").unwrap_err().to_string();
        assert_eq!(message, "invalid container id \"a/b\": it contains `/`");
        let message = check_docker_id("").unwrap_err().to_string();
        assert_eq!(message, "invalid docker id \"\": it is empty");
    }

    #[test]
    fn parses_from_str_and_string() {
        let id: ContainerId = "abc".parse().unwrap();
        assert_eq!(id.to_string(), "abc");
        assert!(ContainerId::try_from(String::from("..")).is_err());
    }
}
