//! Task ids and generated task names, built from randomness the caller supplies.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The prefix of every generated task id.
pub const TASK_ID_PREFIX: &str = "eremetic-task.";

/// The prefix of every generated task name.
pub const TASK_NAME_PREFIX: &str = "Eremetic task ";

/// The characters of a generated name suffix (Eremetic's alphabet: no vowels, no `0`, `y`).
pub const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxzBCDFGHJKLMNPQRSTVWXZ123456789";

/// Longest accepted task id, in bytes.
pub const MAX_TASK_ID_LEN: usize = 255;

/// A task id. It is used as a URL path segment, a database key and a container label, so it is
/// restricted to ASCII letters, digits, `.`, `_` and `-`, is at most [`MAX_TASK_ID_LEN`] bytes
/// and is neither `.` nor `..`.
///
/// Clones share the text: a scheduler holding 100,000 tasks keeps each id in its run table,
/// its backend's records and its events without a copy each.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId(Arc<str>);

/// Why a string is not a valid [`TaskId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTaskId {
    /// The id is empty.
    #[error("task id is empty")]
    Empty,
    /// The id is longer than [`MAX_TASK_ID_LEN`].
    #[error("task id is {0} bytes long, at most {MAX_TASK_ID_LEN} allowed")]
    TooLong(usize),
    /// The id contains a character outside `[A-Za-z0-9._-]`.
    #[error("task id contains {0:?}; only ASCII letters, digits, '.', '_' and '-' are allowed")]
    BadCharacter(char),
    /// The id is `.` or `..`.
    #[error("task id may not be {0:?}")]
    Dots(String),
}

impl TaskId {
    /// Eremetic's id format: `eremetic-task.` followed by a version-4 UUID (lowercase, dashed)
    /// made from `random` (16 random bytes; the version and variant bits are overwritten).
    pub fn generate(random: [u8; 16]) -> TaskId {
        let mut bytes = random;
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let mut id = String::with_capacity(TASK_ID_PREFIX.len() + 36);
        id.push_str(TASK_ID_PREFIX);
        for (index, byte) in bytes.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                id.push('-');
            }
            id.push_str(&format!("{byte:02x}"));
        }
        TaskId(id.into())
    }

    /// Validates an id received from a client or read back from storage.
    pub fn parse(text: &str) -> Result<TaskId, InvalidTaskId> {
        if text.is_empty() {
            return Err(InvalidTaskId::Empty);
        }
        if text.len() > MAX_TASK_ID_LEN {
            return Err(InvalidTaskId::TooLong(text.len()));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(InvalidTaskId::BadCharacter(bad));
        }
        if text == "." || text == ".." {
            return Err(InvalidTaskId::Dots(text.to_owned()));
        }
        Ok(TaskId(text.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TaskId {
    type Err = InvalidTaskId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TaskId::parse(text)
    }
}

impl TryFrom<String> for TaskId {
    type Error = InvalidTaskId;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        TaskId::parse(&text)
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> String {
        id.0.as_ref().to_owned()
    }
}

/// Eremetic's default name for a task submitted without one: `Eremetic task ` followed by
/// eight characters of [`NAME_ALPHABET`], each chosen by one byte of `random`.
pub fn generate_name(random: [u8; 8]) -> String {
    let mut name = String::with_capacity(TASK_NAME_PREFIX.len() + 8);
    name.push_str(TASK_NAME_PREFIX);
    for byte in random {
        let index = usize::from(byte) % NAME_ALPHABET.len();
        name.push(char::from(NAME_ALPHABET[index]));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_id_is_prefixed_uuid_v4() {
        let id = TaskId::generate([0xff; 16]);
        assert_eq!(
            id.as_str(),
            "eremetic-task.ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        let id = TaskId::generate([0; 16]);
        assert_eq!(
            id.as_str(),
            "eremetic-task.00000000-0000-4000-8000-000000000000"
        );
        let random: [u8; 16] = core::array::from_fn(|i| (i as u8) * 17);
        let id = TaskId::generate(random);
        assert_eq!(
            id.as_str(),
            "eremetic-task.00112233-4455-4677-8899-aabbccddeeff"
        );
        assert_eq!(TaskId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn id_validation_rejects_path_tricks() {
        assert_eq!(TaskId::parse(""), Err(InvalidTaskId::Empty));
        assert_eq!(TaskId::parse(".."), Err(InvalidTaskId::Dots("..".into())));
        assert_eq!(TaskId::parse("a/b"), Err(InvalidTaskId::BadCharacter('/')));
        assert_eq!(
            TaskId::parse(&"a".repeat(256)),
            Err(InvalidTaskId::TooLong(256))
        );
        assert!(TaskId::parse("my_task-1.2").is_ok());
        assert!(serde_json::from_str::<TaskId>("\"a b\"").is_err());
    }

    #[test]
    fn generated_name_uses_the_eremetic_alphabet() {
        assert_eq!(generate_name([0; 8]), "Eremetic task bbbbbbbb");
        assert_eq!(
            generate_name([0, 1, 2, 48, 49, 50, 255, 20]),
            "Eremetic task bcd9bcnB"
        );
    }
}
