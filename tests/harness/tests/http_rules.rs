//! Status codes of `POST /api/v1/executor`, one rule per test, over real HTTP.

mod common;

use common::*;
use hyper::{Method, StatusCode};
use mesos_harness::agent::{AgentSetup, ContentType, FakeAgent};
use mesos_proto::v1::executor::call;
use mesos_proto::v1::{task_status, ExecutorId, FrameworkId, TaskState, TaskStatus};

#[tokio::test]
async fn non_post_method_gets_405_with_allow_post() {
    let agent = start().await;
    let response = request(&agent, Method::GET, "/api/v1/executor", &[], Vec::new()).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["Allow"], "POST");
}

#[tokio::test]
async fn missing_content_type_gets_400() {
    let agent = start().await;
    let body = encode_call(
        &subscribe_call(call::Subscribe::default()),
        ContentType::Json,
    );
    let answer = post_raw(&agent, &[], body).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body, "Expecting 'Content-Type' to be present");
}

#[tokio::test]
async fn content_type_with_parameters_gets_415() {
    let agent = start().await;
    let body = encode_call(
        &subscribe_call(call::Subscribe::default()),
        ContentType::Json,
    );
    let headers = [("Content-Type", "application/json; charset=utf-8")];
    let answer = post_raw(&agent, &headers, body).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn other_content_type_gets_415() {
    let agent = start().await;
    let answer = post_raw(&agent, &[("Content-Type", "text/plain")], b"hi".to_vec()).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn content_type_excluded_by_the_setup_gets_415() {
    let setup = AgentSetup {
        accepted_content_types: vec![ContentType::Protobuf],
        ..setup()
    };
    let agent = FakeAgent::start(setup).await.unwrap();
    let answer = post_call(
        &agent,
        &subscribe_call(call::Subscribe::default()),
        ContentType::Json,
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn subscribe_whose_accept_allows_neither_type_gets_406() {
    let agent = start().await;
    let stream = subscribe_with(
        &agent,
        ContentType::Json,
        Some("text/html, application/json;q=0"),
        call::Subscribe::default(),
    )
    .await;
    assert_eq!(stream.status, StatusCode::NOT_ACCEPTABLE);
    assert!(agent
        .wait_subscribed(std::time::Duration::from_millis(50))
        .await
        .is_err());
}

#[tokio::test]
async fn malformed_json_body_gets_400() {
    let agent = start().await;
    let answer = post_raw(
        &agent,
        &[("Content-Type", "application/json")],
        b"{".to_vec(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.starts_with("Failed to parse body into JSON"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn undecodable_protobuf_body_gets_400() {
    let agent = start().await;
    let headers = [("Content-Type", "application/x-protobuf")];
    let answer = post_raw(&agent, &headers, vec![0xff, 0xff, 0xff]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body, "Failed to parse body into Call protobuf");
}

#[tokio::test]
async fn json_call_without_required_executor_id_gets_400() {
    let agent = start().await;
    let body = br#"{"framework_id":{"value":"fw-1"},"type":"SUBSCRIBE","subscribe":{}}"#;
    let answer = post_raw(
        &agent,
        &[("Content-Type", "application/json")],
        body.to_vec(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("executor_id"), "{}", answer.body);
}

#[tokio::test]
async fn json_enum_given_as_number_gets_400() {
    let agent = start().await;
    let body = br#"{"executor_id":{"value":"exec-1"},"framework_id":{"value":"fw-1"},"type":1,"subscribe":{}}"#;
    let answer = post_raw(
        &agent,
        &[("Content-Type", "application/json")],
        body.to_vec(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn subscribe_without_subscribe_message_gets_400() {
    let agent = start().await;
    let call = envelope(call::Type::Subscribe);
    let answer = post_call(&agent, &call, ContentType::Protobuf).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.contains("Expecting 'subscribe' to be present"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn unknown_framework_id_gets_400() {
    let agent = start().await;
    let call = mesos_proto::v1::executor::Call {
        framework_id: FrameworkId {
            value: "other".into(),
        },
        ..subscribe_call(call::Subscribe::default())
    };
    let answer = post_call(&agent, &call, ContentType::Json).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body, "Framework cannot be found");
}

#[tokio::test]
async fn unknown_executor_id_gets_400() {
    let agent = start().await;
    let call = mesos_proto::v1::executor::Call {
        executor_id: ExecutorId {
            value: "other".into(),
        },
        ..subscribe_call(call::Subscribe::default())
    };
    let answer = post_call(&agent, &call, ContentType::Json).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body, "Executor cannot be found");
}

#[tokio::test]
async fn update_before_subscribing_gets_403() {
    let agent = start().await;
    let call = update_call(status("t1", TaskState::TaskRunning));
    let answer = post_call(&agent, &call, ContentType::Json).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.body, "Executor is not subscribed");
    assert!(agent.updates().is_empty());
}

#[tokio::test]
async fn update_without_uuid_gets_400() {
    let agent = start().await;
    let _stream = subscribe(&agent).await;
    let status = TaskStatus {
        uuid: None,
        ..status("t1", TaskState::TaskRunning)
    };
    let answer = post_call(&agent, &update_call(status), ContentType::Json).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.contains("Expecting 'uuid' to be present"),
        "{}",
        answer.body
    );
    assert!(agent.updates().is_empty());
}

#[tokio::test]
async fn update_with_textual_uuid_gets_400() {
    let agent = start().await;
    let _stream = subscribe(&agent).await;
    let status = TaskStatus {
        uuid: Some(b"0b4c6e8a-1f7d-4f1a-9b7e-3c2d1e0f9a8b".to_vec()),
        ..status("t1", TaskState::TaskRunning)
    };
    let answer = post_call(&agent, &update_call(status), ContentType::Protobuf).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn update_from_a_source_other_than_the_executor_gets_400() {
    let agent = start().await;
    let _stream = subscribe(&agent).await;
    for source in [None, Some(task_status::Source::Agent as i32)] {
        let status = TaskStatus {
            source,
            ..status("t1", TaskState::TaskRunning)
        };
        let answer = post_call(&agent, &update_call(status), ContentType::Json).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "source {source:?}");
        assert!(answer.body.contains("SOURCE_EXECUTOR"), "{}", answer.body);
    }
}

#[tokio::test]
async fn update_with_task_staging_gets_400() {
    let agent = start().await;
    let _stream = subscribe(&agent).await;
    let call = update_call(status("t1", TaskState::TaskStaging));
    let answer = post_call(&agent, &call, ContentType::Json).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("TASK_STAGING"), "{}", answer.body);
}

#[tokio::test]
async fn update_naming_another_executor_in_its_status_gets_400() {
    let agent = start().await;
    let _stream = subscribe(&agent).await;
    let status = TaskStatus {
        executor_id: Some(ExecutorId {
            value: "other".into(),
        }),
        ..status("t1", TaskState::TaskRunning)
    };
    let answer = post_call(&agent, &update_call(status), ContentType::Json).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn accepted_update_and_message_get_empty_202_and_are_recorded() {
    let agent = start().await;
    let _stream = subscribe(&agent).await;
    let running = status("t1", TaskState::TaskRunning);
    let answer = post_call(&agent, &update_call(running.clone()), ContentType::Protobuf).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert!(answer.body.is_empty());
    let answer = post_call(&agent, &message_call(b"hello"), ContentType::Json).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);

    assert_eq!(agent.updates(), vec![running]);
    let message = agent
        .wait_for_call(|c| c.r#type() == call::Type::Message, WAIT)
        .await
        .unwrap();
    assert_eq!(message.message.unwrap().data, b"hello");
    assert!(agent.rejections().is_empty(), "{:?}", agent.rejections());
}

#[tokio::test]
async fn heartbeat_with_dummy_ids_gets_202() {
    let agent = start().await;
    let call = mesos_proto::v1::executor::Call {
        executor_id: ExecutorId {
            value: "dummy".into(),
        },
        framework_id: FrameworkId {
            value: "dummy".into(),
        },
        ..envelope(call::Type::Heartbeat)
    };
    let answer = post_call(&agent, &call, ContentType::Json).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn unknown_call_type_gets_501_once_subscribed() {
    let agent = start().await;
    let _stream = subscribe(&agent).await;
    let answer = post_call(
        &agent,
        &envelope(call::Type::Unknown),
        ContentType::Protobuf,
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_IMPLEMENTED);
}

#[tokio::test]
async fn other_paths_get_404_and_the_slave_pid_path_reaches_the_handler() {
    let agent = start().await;
    let response = request(&agent, Method::POST, "/api/v1/scheduler", &[], Vec::new()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = request(
        &agent,
        Method::POST,
        "/slave(1)/api/v1/executor",
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST); // missing Content-Type
}

#[tokio::test]
async fn rejections_are_recorded_with_status_and_reason() {
    let agent = start().await;
    let call = update_call(status("t1", TaskState::TaskRunning));
    post_call(&agent, &call, ContentType::Json).await;
    let rejections = agent.rejections();
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].status, StatusCode::FORBIDDEN);
    // The rejected call decoded, so it is in the call record too.
    assert_eq!(agent.calls().len(), 1);
}
