//! The state-independent part of `Master::Http::scheduler`, without I/O:
//! method, Content-Type, body decoding, `validation::scheduler::call::validate`,
//! and for SUBSCRIBE the Accept negotiation and the ban on `Mesos-Stream-Id`,
//! in the master's order. Leadership comes before (in `http.rs`); what depends
//! on the master's state (framework lookup, connection, stream id match) is
//! in `state.rs`.

use hyper::{Method, StatusCode};
use mesos_proto::v1::scheduler::{call, Call};

use crate::common::codec::{decode_call, ContentType, APPLICATION_JSON, APPLICATION_PROTOBUF};
use crate::common::http::{check_uuid_bytes, negotiate_stream_type};

/// The request head as far as the rules care.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a Method,
    pub(crate) content_type: Option<&'a [u8]>,
    pub(crate) accept: Option<&'a [u8]>,
    pub(crate) stream_id: Option<&'a [u8]>,
    /// The principal the request authenticated as (`None` without
    /// `--authenticate_http_frameworks`).
    pub(crate) principal: Option<&'a str>,
}

/// A refused scheduler-API request.
pub(crate) type Refusal = crate::common::http::Refusal<Call>;

/// A call that passed the state-independent checks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Checked {
    /// SUBSCRIBE; events go out in this encoding.
    Subscribe(ContentType),
    /// Any other call, of this type.
    Other(call::Type),
}

/// Checks a request from the method up to the SUBSCRIBE header rules.
pub(crate) fn check_request(
    head: RequestHead<'_>,
    body: &[u8],
) -> Result<(Call, Checked), Refusal> {
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
    let Some(content_type) = ContentType::from_exact_header(content_type) else {
        let message =
            format!("Expecting 'Content-Type' of {APPLICATION_JSON} or {APPLICATION_PROTOBUF}");
        return Err(Refusal::before_decoding(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message,
        ));
    };
    let call: Call = decode_call(content_type, body)
        .map_err(|message| Refusal::before_decoding(StatusCode::BAD_REQUEST, message))?;
    let call_type = match validate_call(&call, head.principal) {
        Ok(call_type) => call_type,
        Err(reason) => {
            let message = format!("Failed to validate scheduler::Call: {reason}");
            return Err(Refusal::of_call(call, StatusCode::BAD_REQUEST, message));
        }
    };
    if call_type != call::Type::Subscribe {
        return Ok((call, Checked::Other(call_type)));
    }
    let Some(stream_type) = negotiate_stream_type(head.accept) else {
        let message =
            format!("Expecting 'Accept' to allow '{APPLICATION_PROTOBUF}' or '{APPLICATION_JSON}'");
        return Err(Refusal::of_call(call, StatusCode::NOT_ACCEPTABLE, message));
    };
    if head.stream_id.is_some() {
        let message = "Subscribe calls should not include the 'Mesos-Stream-Id' header";
        return Err(Refusal::of_call(call, StatusCode::BAD_REQUEST, message));
    }
    Ok((call, Checked::Subscribe(stream_type)))
}

/// `validation::scheduler::call::validate`: the call type or the reason.
/// `principal` is the authenticated one, which a SUBSCRIBE's
/// `FrameworkInfo.principal` must equal when set.
pub(crate) fn validate_call(call: &Call, principal: Option<&str>) -> Result<call::Type, String> {
    let Some(call_type) = call.r#type.and_then(|n| call::Type::try_from(n).ok()) else {
        // An unknown enum number is an unknown field to C++: `has_type()` is false.
        return Err("Expecting 'type' to be present".to_owned());
    };
    if call_type == call::Type::Subscribe {
        let Some(subscribe) = &call.subscribe else {
            return Err("Expecting 'subscribe' to be present".to_owned());
        };
        // Unset ids compare as the default instance, so "both absent" is equal.
        let info_id = subscribe
            .framework_info
            .id
            .as_ref()
            .map(|id| id.value.as_str());
        let call_id = call.framework_id.as_ref().map(|id| id.value.as_str());
        if info_id.unwrap_or("") != call_id.unwrap_or("") || info_id.is_some() != call_id.is_some()
        {
            return Err("'framework_id' differs from 'subscribe.framework_info.id'".to_owned());
        }
        let declared = subscribe.framework_info.principal.as_deref();
        if let (Some(authenticated), Some(declared)) = (principal, declared) {
            if authenticated != declared {
                return Err(super::auth::principal_mismatch(authenticated, declared));
            }
        }
        return Ok(call_type);
    }
    if call.framework_id.is_none() {
        return Err("Expecting 'framework_id' to be present".to_owned());
    }
    let present = |has: bool, field: &str| {
        if has {
            Ok(call_type)
        } else {
            Err(format!("Expecting '{field}' to be present"))
        }
    };
    match call_type {
        call::Type::Accept => present(call.accept.is_some(), "accept"),
        call::Type::Decline => present(call.decline.is_some(), "decline"),
        call::Type::AcceptInverseOffers => present(
            call.accept_inverse_offers.is_some(),
            "accept_inverse_offers",
        ),
        call::Type::DeclineInverseOffers => present(
            call.decline_inverse_offers.is_some(),
            "decline_inverse_offers",
        ),
        call::Type::Kill => present(call.kill.is_some(), "kill"),
        call::Type::Shutdown => present(call.shutdown.is_some(), "shutdown"),
        call::Type::Acknowledge => {
            let Some(acknowledge) = &call.acknowledge else {
                return Err("Expecting 'acknowledge' to be present".to_owned());
            };
            check_uuid_bytes(&acknowledge.uuid).map(|()| call_type)
        }
        call::Type::Reconcile => present(call.reconcile.is_some(), "reconcile"),
        call::Type::Message => present(call.message.is_some(), "message"),
        call::Type::Request => present(call.request.is_some(), "request"),
        // These sub-messages (fields 17-19) are not declared in mesos-proto,
        // so they can never be present here.
        call::Type::AcknowledgeOperationStatus => present(false, "acknowledge_operation_status"),
        call::Type::ReconcileOperations => present(false, "reconcile_operations"),
        call::Type::UpdateFramework => present(false, "update_framework"),
        call::Type::Teardown
        | call::Type::Revive
        | call::Type::Suppress
        | call::Type::Unknown
        | call::Type::Subscribe => Ok(call_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::{AgentId, FrameworkId, FrameworkInfo, TaskId};

    fn framework_info(id: Option<&str>) -> FrameworkInfo {
        FrameworkInfo {
            user: "root".into(),
            name: "f".into(),
            id: id.map(|value| FrameworkId {
                value: value.into(),
            }),
            ..Default::default()
        }
    }

    fn subscribe(envelope_id: Option<&str>, info_id: Option<&str>) -> Call {
        Call {
            framework_id: envelope_id.map(|value| FrameworkId {
                value: value.into(),
            }),
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info: framework_info(info_id),
                suppressed_roles: Vec::new(),
            }),
            ..Default::default()
        }
    }

    fn acknowledge(uuid: Vec<u8>) -> Call {
        Call {
            framework_id: Some(FrameworkId { value: "f".into() }),
            r#type: Some(call::Type::Acknowledge as i32),
            acknowledge: Some(call::Acknowledge {
                agent_id: AgentId { value: "a".into() },
                task_id: TaskId { value: "t".into() },
                uuid,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn subscribe_ids_must_both_be_absent_or_equal() {
        assert!(validate_call(&subscribe(None, None), None).is_ok());
        assert!(validate_call(&subscribe(Some("x"), Some("x")), None).is_ok());
        for (envelope, info) in [(Some("x"), None), (None, Some("x")), (Some("x"), Some("y"))] {
            let err = validate_call(&subscribe(envelope, info), None).unwrap_err();
            assert_eq!(
                err,
                "'framework_id' differs from 'subscribe.framework_info.id'"
            );
        }
    }

    #[test]
    fn non_subscribe_calls_need_a_framework_id_and_their_sub_message() {
        let teardown = Call {
            r#type: Some(call::Type::Teardown as i32),
            ..Default::default()
        };
        assert_eq!(
            validate_call(&teardown, None).unwrap_err(),
            "Expecting 'framework_id' to be present"
        );
        let kill = Call {
            framework_id: Some(FrameworkId { value: "f".into() }),
            r#type: Some(call::Type::Kill as i32),
            ..Default::default()
        };
        assert_eq!(
            validate_call(&kill, None).unwrap_err(),
            "Expecting 'kill' to be present"
        );
    }

    #[test]
    fn acknowledge_needs_a_sixteen_byte_uuid() {
        let mut uuid = vec![0u8; 16];
        uuid[6] = 0x40;
        assert!(validate_call(&acknowledge(uuid), None).is_ok());
        let textual = b"6f1c3a10-227b-4c55-8a01-020304050607".to_vec();
        assert!(validate_call(&acknowledge(textual), None).is_err());
    }

    #[test]
    fn subscribe_with_stream_id_header_is_refused_after_accept_negotiation() {
        let body = mesos_proto::json::to_vec(&subscribe(None, None)).unwrap();
        let head = RequestHead {
            method: &Method::POST,
            content_type: Some(b"application/json"),
            accept: Some(b"text/html"),
            stream_id: Some(b"x"),
            principal: None,
        };
        let refusal = check_request(head, &body).unwrap_err();
        assert_eq!(refusal.rejection.status, StatusCode::NOT_ACCEPTABLE);
        let head = RequestHead {
            accept: None,
            ..head
        };
        let refusal = check_request(head, &body).unwrap_err();
        assert_eq!(refusal.rejection.status, StatusCode::BAD_REQUEST);
    }
}
