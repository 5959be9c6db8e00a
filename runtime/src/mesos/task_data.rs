//! The task's command carried in `TaskInfo.data` to `deimos-executor`. Pure.
//!
//! A Mesos master refuses a `TaskInfo` that names both an executor and a command, so a
//! scheduler that launches its tasks with `deimos-executor` (eremetic's Mesos backend) puts the
//! task's `mesos.v1.CommandInfo` — command or shell line, arguments, environment with the
//! ports and secret values, URIs to fetch, user — into `TaskInfo.data`, and the executor reads
//! it back on LAUNCH. Both sides use this module, so the format is defined once.
//!
//! # Format
//!
//! ```text
//! deimos-task-data v<VERSION>\n<CommandInfo as protobuf bytes>
//! ```
//!
//! An ASCII header line (the magic `deimos-task-data v`, the decimal format version, a line
//! feed), then the `mesos.v1.CommandInfo` in the protobuf wire encoding. The header makes
//! data of another origin recognisable (it is not mistaken for a command) and a future change
//! of the body detectable: a reader refuses a version it does not know instead of running
//! something else than what was asked. [`VERSION`] is the version written and the only one
//! read today.

use mesos_proto::v1::CommandInfo;
use prost::Message;

/// The format version [`encode`] writes and [`decode`] accepts.
pub const VERSION: u32 = 1;

/// The start of the header line, followed by the version and `\n`.
pub const MAGIC: &str = "deimos-task-data v";

/// Longest header line accepted (magic, ten digits and the line feed): a longer one is not a
/// header.
const MAX_HEADER: usize = MAGIC.len() + 11;

/// Bytes of foreign data quoted in an error message.
const QUOTED: usize = 32;

/// Why `TaskInfo.data` is not a command this version can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskDataError {
    /// The data does not start with the header line.
    #[error(
        "TaskInfo.data is not deimos task data: it does not start with the header \
         \"{MAGIC}<version>\\n\" (found {found})"
    )]
    NotTaskData {
        /// The first bytes found, quoted (`empty` when there were none).
        found: String,
    },
    /// The header names a version this reader does not support.
    #[error(
        "TaskInfo.data has task data format version {found}, but only version {supported} \
         is supported (was the task sent by a newer scheduler?)"
    )]
    UnknownVersion {
        /// The version as written in the header.
        found: String,
        /// The version this reader supports.
        supported: u32,
    },
    /// The body after a supported header is not a valid `CommandInfo`.
    #[error("TaskInfo.data (task data format version {version}): the CommandInfo is malformed: {reason}")]
    MalformedBody {
        /// The header's version.
        version: u32,
        /// What is wrong with the body.
        reason: String,
    },
}

/// The task data carrying `command`: the header line of [`VERSION`], then the protobuf
/// encoding of `command`.
pub fn encode(command: &CommandInfo) -> Vec<u8> {
    let header = format!("{MAGIC}{VERSION}\n");
    let mut data = Vec::with_capacity(header.len() + command.encoded_len());
    data.extend_from_slice(header.as_bytes());
    command.encode_raw(&mut data);
    data
}

/// The command carried by `data`, or why `data` carries none this version can run.
///
/// Besides the protobuf decoding, the fields the protocol marks required are checked: every
/// URI has a value and every environment variable a name.
pub fn decode(data: &[u8]) -> Result<CommandInfo, TaskDataError> {
    let not_task_data = || TaskDataError::NotTaskData { found: quote(data) };
    let rest = data
        .strip_prefix(MAGIC.as_bytes())
        .ok_or_else(not_task_data)?;
    let line_end = rest
        .iter()
        .take(MAX_HEADER - MAGIC.len())
        .position(|byte| *byte == b'\n')
        .ok_or_else(not_task_data)?;
    let (version_text, body) = (&rest[..line_end], &rest[line_end + 1..]);
    let well_formed = !version_text.is_empty() && version_text.iter().all(u8::is_ascii_digit);
    if !well_formed {
        return Err(not_task_data());
    }
    let found = String::from_utf8_lossy(version_text).into_owned();
    if found.parse::<u32>().ok() != Some(VERSION) {
        return Err(TaskDataError::UnknownVersion {
            found,
            supported: VERSION,
        });
    }
    let malformed = |reason: String| TaskDataError::MalformedBody {
        version: VERSION,
        reason,
    };
    let command = CommandInfo::decode(body).map_err(|error| malformed(error.to_string()))?;
    check_required(&command).map_err(malformed)?;
    Ok(command)
}

/// The required fields protobuf's own decoding (proto2 semantics in prost) does not enforce.
fn check_required(command: &CommandInfo) -> Result<(), String> {
    if let Some(index) = command.uris.iter().position(|uri| uri.value.is_empty()) {
        return Err(format!("uris[{index}].value is empty"));
    }
    let variables = command
        .environment
        .as_ref()
        .map_or(&[][..], |env| env.variables.as_slice());
    if let Some(index) = variables.iter().position(|var| var.name.is_empty()) {
        return Err(format!("environment.variables[{index}].name is empty"));
    }
    Ok(())
}

/// The first bytes of `data` for an error message: printable ASCII as is, the rest escaped.
fn quote(data: &[u8]) -> String {
    if data.is_empty() {
        return "empty data".to_owned();
    }
    let shown: String = data
        .iter()
        .take(QUOTED)
        .flat_map(|byte| std::ascii::escape_default(*byte))
        .map(char::from)
        .collect();
    let more = if data.len() > QUOTED { "..." } else { "" };
    format!("\"{shown}\"{more} ({} bytes)", data.len())
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::{command_info, environment, Environment};

    use super::*;

    fn full_command() -> CommandInfo {
        CommandInfo {
            uris: vec![command_info::Uri {
                value: "https://example.org/app.tgz".into(),
                executable: Some(false),
                extract: Some(true),
                cache: None,
                output_file: Some("app.tgz".into()),
            }],
            environment: Some(Environment {
                variables: vec![
                    environment::Variable {
                        name: "PORT0".into(),
                        value: Some("31000".into()),
                        ..Default::default()
                    },
                    environment::Variable {
                        name: "TOKEN".into(),
                        r#type: Some(environment::variable::Type::Secret as i32),
                        secret: Some(mesos_proto::v1::Secret {
                            r#type: Some(mesos_proto::v1::secret::Type::Value as i32),
                            value: Some(mesos_proto::v1::secret::Value {
                                data: b"s3cret".to_vec(),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ],
            }),
            shell: Some(false),
            value: Some("/bin/app".into()),
            arguments: vec!["app".into(), "--serve".into()],
            user: Some("nobody".into()),
        }
    }

    #[test]
    fn encoded_command_decodes_to_the_same_command() {
        for command in [full_command(), CommandInfo::default()] {
            assert_eq!(decode(&encode(&command)), Ok(command));
        }
    }

    #[test]
    fn encoding_starts_with_the_header_line_of_the_current_version() {
        let data = encode(&full_command());
        assert!(data.starts_with(format!("deimos-task-data v{VERSION}\n").as_bytes()));
    }

    #[test]
    fn data_without_the_header_is_refused_quoting_what_was_found() {
        for data in [
            &b"echo hello"[..],
            b"",
            b"deimos-task-data v",
            b"deimos-task-data vx\n",
            b"deimos-task-data v1",
            b"deimos-task-data v 1\n",
            b"deimos-task-data v123456789012345\n",
        ] {
            let error = decode(data).expect_err("not task data");
            assert!(
                matches!(error, TaskDataError::NotTaskData { .. }),
                "{data:?}: {error:?}"
            );
            assert!(error.to_string().contains("does not start with the header"));
        }
        let message = decode(b"echo hello\x01").unwrap_err().to_string();
        assert!(
            message.contains("\"echo hello\\x01\" (11 bytes)"),
            "{message}"
        );
        let message = decode(b"").unwrap_err().to_string();
        assert!(message.contains("(found empty data)"), "{message}");
    }

    #[test]
    fn an_unknown_version_is_refused_naming_found_and_supported_versions() {
        let mut data = b"deimos-task-data v2\n".to_vec();
        data.extend_from_slice(&full_command().encode_to_vec());
        let error = decode(&data).unwrap_err();
        assert_eq!(
            error,
            TaskDataError::UnknownVersion {
                found: "2".into(),
                supported: VERSION
            }
        );
        let message = error.to_string();
        assert!(
            message.contains("version 2") && message.contains("only version 1"),
            "{message}"
        );
        assert!(matches!(
            decode(b"deimos-task-data v0\n"),
            Err(TaskDataError::UnknownVersion { .. })
        ));
    }

    #[test]
    fn a_body_that_is_not_a_command_info_is_malformed() {
        // Field 3 (value) as a length-delimited string claiming 100 bytes, with 1 present.
        let data = b"deimos-task-data v1\n\x1a\x64a";
        let error = decode(data).unwrap_err();
        assert!(
            matches!(error, TaskDataError::MalformedBody { version: 1, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("CommandInfo is malformed"));
    }

    #[test]
    fn missing_required_fields_make_the_body_malformed_naming_the_field() {
        let mut command = full_command();
        command.uris.push(command_info::Uri::default());
        let message = decode(&encode(&command)).unwrap_err().to_string();
        assert!(message.contains("uris[1].value is empty"), "{message}");

        let mut command = full_command();
        if let Some(env) = command.environment.as_mut() {
            env.variables[1].name.clear();
        }
        let message = decode(&encode(&command)).unwrap_err().to_string();
        assert!(
            message.contains("environment.variables[1].name is empty"),
            "{message}"
        );
    }
}
