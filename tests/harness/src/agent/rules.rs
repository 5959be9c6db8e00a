//! The state-independent part of the agent's `Http::executor` handler, without
//! I/O: method, Content-Type, body decoding, `validateExecutorCall` and Accept
//! negotiation, in the agent's order. What depends on the agent's state
//! (recovery, framework/executor lookup, subscription) is in `state.rs`.

use hyper::{Method, StatusCode};
use mesos_proto::v1::executor::{call, Call};
use mesos_proto::v1::{task_status, TaskState};

use super::codec::{decode_call, ContentType, APPLICATION_JSON, APPLICATION_PROTOBUF};
pub use crate::common::http::Rejection;
use crate::common::http::{check_uuid_bytes, negotiate_stream_type};

/// The request head as far as the rules care.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a Method,
    pub(crate) content_type: Option<&'a [u8]>,
    pub(crate) accept: Option<&'a [u8]>,
}

/// A refused executor-API request.
pub(crate) type Refusal = crate::common::http::Refusal<Call>;

/// What a valid call asks for, with the call itself.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallKind {
    /// SUBSCRIBE; events go out in this encoding.
    Subscribe(ContentType),
    /// UPDATE.
    Update,
    /// MESSAGE.
    Message,
    /// HEARTBEAT (answered 202 before any lookup).
    Heartbeat,
    /// UNKNOWN (501 after the lookups).
    Unknown,
}

/// Checks a request up to and including Accept negotiation.
pub(crate) fn check_request(
    head: RequestHead<'_>,
    body: &[u8],
    accepted_content_types: &[ContentType],
) -> Result<(Call, CallKind), Refusal> {
    if head.method != Method::POST {
        let message = format!("Expecting 'POST', received '{}'", head.method);
        return Err(Refusal::before_decoding(
            StatusCode::METHOD_NOT_ALLOWED,
            message,
        ));
    }
    let Some(content_type) = head.content_type else {
        let message = "Expecting 'Content-Type' to be present";
        return Err(Refusal::before_decoding(StatusCode::BAD_REQUEST, message));
    };
    let Some(content_type) = ContentType::from_exact_header(content_type)
        .filter(|ct| accepted_content_types.contains(ct))
    else {
        let message =
            format!("Expecting 'Content-Type' of {APPLICATION_JSON} or {APPLICATION_PROTOBUF}");
        return Err(Refusal::before_decoding(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message,
        ));
    };
    let call = decode_call(content_type, body)
        .map_err(|message| Refusal::before_decoding(StatusCode::BAD_REQUEST, message))?;
    let call_type = match validate_call(&call) {
        Ok(call_type) => call_type,
        Err(reason) => {
            let message = format!("Failed to validate Executor::Call: {reason}");
            return Err(Refusal::of_call(call, StatusCode::BAD_REQUEST, message));
        }
    };
    let kind = match call_type {
        call::Type::Subscribe => match negotiate_stream_type(head.accept) {
            Some(stream_type) => CallKind::Subscribe(stream_type),
            None => {
                let message = format!(
                    "Expecting 'Accept' to allow '{APPLICATION_PROTOBUF}' or '{APPLICATION_JSON}'"
                );
                return Err(Refusal::of_call(call, StatusCode::NOT_ACCEPTABLE, message));
            }
        },
        call::Type::Update => CallKind::Update,
        call::Type::Message => CallKind::Message,
        call::Type::Heartbeat => CallKind::Heartbeat,
        call::Type::Unknown => CallKind::Unknown,
    };
    Ok((call, kind))
}

/// `common::validation::validateExecutorCall`: returns the call type or the
/// agent's reason.
pub(crate) fn validate_call(call: &Call) -> Result<call::Type, String> {
    let Some(call_type) = call.r#type.and_then(|n| call::Type::try_from(n).ok()) else {
        // An unknown enum number is an unknown field to C++: `has_type()` is false.
        return Err("Expecting 'type' to be present".to_owned());
    };
    match call_type {
        call::Type::Subscribe if call.subscribe.is_none() => {
            Err("Expecting 'subscribe' to be present".to_owned())
        }
        call::Type::Update => validate_update(call).map(|()| call_type),
        call::Type::Message if call.message.is_none() => {
            Err("Expecting 'message' to be present".to_owned())
        }
        _ => Ok(call_type),
    }
}

fn validate_update(call: &Call) -> Result<(), String> {
    let Some(update) = &call.update else {
        return Err("Expecting 'update' to be present".to_owned());
    };
    let status = &update.status;
    let executor_id = &call.executor_id.value;
    let framework_id = &call.framework_id.value;
    let Some(uuid) = &status.uuid else {
        return Err("Expecting 'uuid' to be present".to_owned());
    };
    check_uuid_bytes(uuid)?;
    if let Some(status_executor) = &status.executor_id {
        if &status_executor.value != executor_id {
            return Err(format!(
                "ExecutorID in Call: {executor_id} does not match ExecutorID in TaskStatus: {}",
                status_executor.value
            ));
        }
    }
    // An unset source reads as the default, SOURCE_MASTER.
    if status.source() != task_status::Source::Executor {
        return Err(format!(
            "Received Call from executor {executor_id} of framework {framework_id} \
             with invalid source, expecting 'SOURCE_EXECUTOR'"
        ));
    }
    match TaskState::try_from(status.state) {
        Ok(TaskState::TaskStaging) => Err(format!(
            "Received TASK_STAGING from executor {executor_id} of framework {framework_id} \
             which is not allowed"
        )),
        Ok(_) => Ok(()),
        // C++ keeps an unknown number of a required enum as an unknown field,
        // so the required `state` is missing.
        Err(_) => Err("Not initialized: update.status.state".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::{ExecutorId, FrameworkId, TaskId, TaskStatus};

    const UUID_V4: [u8; 16] = [
        0x6f, 0x1c, 0x3a, 0x10, 0x22, 0x7b, 0x4c, 0x55, 0x8a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07,
    ];

    fn update_call(status: TaskStatus) -> Call {
        Call {
            executor_id: ExecutorId { value: "e".into() },
            framework_id: FrameworkId { value: "f".into() },
            r#type: Some(call::Type::Update as i32),
            update: Some(call::Update { status }),
            ..Default::default()
        }
    }

    fn running_status() -> TaskStatus {
        TaskStatus {
            task_id: TaskId { value: "t".into() },
            state: TaskState::TaskRunning as i32,
            source: Some(task_status::Source::Executor as i32),
            uuid: Some(UUID_V4.to_vec()),
            ..Default::default()
        }
    }

    #[test]
    fn valid_update_passes_validation() {
        assert_eq!(
            validate_call(&update_call(running_status())),
            Ok(call::Type::Update)
        );
    }

    #[test]
    fn update_without_uuid_is_invalid() {
        let status = TaskStatus {
            uuid: None,
            ..running_status()
        };
        let err = validate_call(&update_call(status)).unwrap_err();
        assert_eq!(err, "Expecting 'uuid' to be present");
    }

    #[test]
    fn update_with_textual_uuid_is_invalid() {
        let textual = b"6f1c3a10-227b-4c55-8a01-020304050607".to_vec();
        let status = TaskStatus {
            uuid: Some(textual),
            ..running_status()
        };
        let err = validate_call(&update_call(status)).unwrap_err();
        assert!(err.contains("expecting 16 bytes, got 36"), "{err}");
    }

    #[test]
    fn update_with_unknown_uuid_version_is_invalid() {
        let mut uuid = UUID_V4;
        uuid[6] = 0x0c;
        let status = TaskStatus {
            uuid: Some(uuid.to_vec()),
            ..running_status()
        };
        assert!(validate_call(&update_call(status)).is_err());
    }

    #[test]
    fn update_without_source_is_invalid_because_it_defaults_to_master() {
        let status = TaskStatus {
            source: None,
            ..running_status()
        };
        let err = validate_call(&update_call(status)).unwrap_err();
        assert!(err.contains("expecting 'SOURCE_EXECUTOR'"), "{err}");
    }

    #[test]
    fn update_with_staging_state_is_invalid() {
        let status = TaskStatus {
            state: TaskState::TaskStaging as i32,
            ..running_status()
        };
        let err = validate_call(&update_call(status)).unwrap_err();
        assert!(err.contains("TASK_STAGING"), "{err}");
    }

    #[test]
    fn update_with_other_executor_id_in_status_is_invalid() {
        let status = TaskStatus {
            executor_id: Some(ExecutorId {
                value: "other".into(),
            }),
            ..running_status()
        };
        let err = validate_call(&update_call(status)).unwrap_err();
        assert!(
            err.contains("does not match ExecutorID in TaskStatus: other"),
            "{err}"
        );
    }

    #[test]
    fn call_without_type_is_invalid() {
        let call = Call {
            r#type: None,
            ..update_call(running_status())
        };
        assert_eq!(
            validate_call(&call).unwrap_err(),
            "Expecting 'type' to be present"
        );
        let call = Call {
            r#type: Some(42),
            ..update_call(running_status())
        };
        assert_eq!(
            validate_call(&call).unwrap_err(),
            "Expecting 'type' to be present"
        );
    }
}
