//! Status codes of `POST /api/v1/scheduler`, one rule per test, over real HTTP.

mod scheduler_client;

use hyper::{Method, StatusCode};
use mesos_harness::master::{ContentType, FakeMaster};
use mesos_proto::v1::scheduler::call;
use mesos_proto::v1::{FrameworkId, FrameworkInfo};
use prost::Message as _;
use scheduler_client::*;

fn subscribe_body() -> Vec<u8> {
    encode_call(&subscribe_call(framework_info()), ContentType::Json)
}

#[tokio::test]
async fn other_path_gets_404() {
    let master = start().await;
    let response = request(
        master.endpoint(),
        Method::POST,
        "/api/v1/executor",
        &[],
        vec![],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn non_post_method_gets_405_with_allow_post() {
    let master = start().await;
    let response = request(
        master.endpoint(),
        Method::GET,
        "/api/v1/scheduler",
        &[],
        vec![],
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["Allow"], "POST");
}

#[tokio::test]
async fn master_prefixed_path_reaches_the_scheduler_endpoint() {
    let master = start().await;
    let path = "/master/api/v1/scheduler";
    let response = request(master.endpoint(), Method::GET, path, &[], vec![]).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn missing_content_type_gets_400() {
    let master = start().await;
    let answer = post_raw(&master, &[], subscribe_body()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body, "Expecting 'Content-Type' to be present");
}

#[tokio::test]
async fn content_type_with_parameters_gets_415() {
    let master = start().await;
    let headers = [("Content-Type", "application/json; charset=utf-8")];
    let answer = post_raw(&master, &headers, subscribe_body()).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn unparsable_json_gets_400() {
    let master = start().await;
    let headers = [("Content-Type", "application/json")];
    let answer = post_raw(&master, &headers, b"{not json".to_vec()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.starts_with("Failed to parse body into JSON"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn json_missing_required_framework_info_field_gets_400_naming_it() {
    let master = start().await;
    let body = br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"n"}}}"#;
    let answer = post_raw(
        &master,
        &[("Content-Type", "application/json")],
        body.to_vec(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.contains("subscribe.framework_info.user"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn protobuf_missing_required_field_gets_400() {
    let master = start().await;
    let mut call = subscribe_call(framework_info());
    // Drop the required framework_info by encoding a Subscribe without it.
    call.subscribe = None;
    let mut body = call.encode_to_vec();
    body.extend_from_slice(&[0x1a, 0x00]); // field 3 (subscribe), empty message
    let answer = post_raw(&master, &[("Content-Type", "application/x-protobuf")], body).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body, "Failed to parse body into Call protobuf");
}

#[tokio::test]
async fn subscribe_with_differing_framework_ids_gets_400() {
    let master = start().await;
    let mut call = subscribe_call(framework_info());
    call.framework_id = Some(FrameworkId { value: "x".into() });
    let answer = post_raw(
        &master,
        &[("Content-Type", "application/json")],
        encode_call(&call, ContentType::Json),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.contains("'framework_id' differs"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn subscribe_whose_accept_allows_neither_type_gets_406() {
    let master = start().await;
    let subscription = subscribe_with(
        master.endpoint(),
        ContentType::Json,
        Some("text/html, application/json;q=0"),
        &[],
        &subscribe_call(framework_info()),
    )
    .await;
    assert_eq!(subscription.status, StatusCode::NOT_ACCEPTABLE);
    assert!(master.connected_frameworks().is_empty());
}

#[tokio::test]
async fn subscribe_carrying_a_stream_id_gets_400() {
    let master = start().await;
    let subscription = subscribe_with(
        master.endpoint(),
        ContentType::Json,
        None,
        &[("Mesos-Stream-Id", "0b7f1c2e-1111-4222-8333-444455556666")],
        &subscribe_call(framework_info()),
    )
    .await;
    assert_eq!(subscription.status, StatusCode::BAD_REQUEST);
    let rejection = master.rejections().pop().unwrap();
    assert_eq!(
        rejection.message,
        "Subscribe calls should not include the 'Mesos-Stream-Id' header"
    );
}

#[tokio::test]
async fn call_without_framework_id_gets_400() {
    let master = start().await;
    let call = mesos_proto::v1::scheduler::Call {
        r#type: Some(call::Type::Teardown as i32),
        ..Default::default()
    };
    let answer = post_call(&master, "x", &call).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer
            .body
            .contains("Expecting 'framework_id' to be present"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn call_of_unknown_framework_gets_400() {
    let master = start().await;
    let answer = post_call(&master, "x", &envelope("nobody", call::Type::Revive)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body, "Framework cannot be found");
}

#[tokio::test]
async fn call_without_stream_id_gets_400() {
    let master = start().await;
    let (_subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let call = envelope(&framework_id, call::Type::Revive);
    let headers = [("Content-Type", "application/json")];
    let answer = post_raw(&master, &headers, encode_call(&call, ContentType::Json)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body,
        "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
    );
}

#[tokio::test]
async fn call_with_another_stream_id_gets_400() {
    let master = start().await;
    let (_subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let call = envelope(&framework_id, call::Type::Revive);
    let answer = post_call(&master, "0b7f1c2e-1111-4222-8333-444455556666", &call).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.contains("didn't match the stream ID"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn call_with_the_current_stream_id_gets_202() {
    let master = start().await;
    let (subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let call = envelope(&framework_id, call::Type::Revive);
    let answer = post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert!(answer.body.is_empty());
}

#[tokio::test]
async fn call_after_the_stream_dropped_gets_403() {
    let master = start().await;
    let (subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    master.disconnect_framework().unwrap();
    let call = envelope(&framework_id, call::Type::Revive);
    let answer = post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.body, "Framework is not subscribed");
}

#[tokio::test]
async fn unknown_call_type_gets_501() {
    let master = start().await;
    let (subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let call = envelope(&framework_id, call::Type::Unknown);
    let answer = post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::NOT_IMPLEMENTED);
}

#[tokio::test]
async fn acknowledge_with_textual_uuid_gets_400() {
    let master = start().await;
    let (subscription, framework_id) = subscribe_new(&master, framework_info()).await;
    let textual = b"6f1c3a10-227b-4c55-8a01-020304050607".to_vec();
    let call = acknowledge_call(&framework_id, "t", AGENT, textual);
    let answer = post_call(&master, &subscription.stream_id, &call).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.contains("expecting 16 bytes, got 36"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn non_leader_redirects_with_protocol_relative_location_keeping_the_query() {
    let leader = start().await;
    let follower = start().await;
    follower.set_leader(Some(leader.endpoint()));
    let path = "/api/v1/scheduler?x=1";
    // Even a GET is redirected: leadership is checked first.
    let response = request(follower.endpoint(), Method::GET, path, &[], vec![]).await;
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    let expected = format!("//{}{path}", leader.endpoint());
    assert_eq!(response.headers()["Location"], expected.as_str());
}

#[tokio::test]
async fn master_without_leader_gets_503() {
    let master = start().await;
    master.set_leader(None);
    let answer = post_raw(
        &master,
        &[("Content-Type", "application/json")],
        subscribe_body(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body, "No leader elected");
}

#[tokio::test]
async fn scheduler_follows_the_redirect_and_subscribes_at_the_leader() {
    let leader = start().await;
    let follower = FakeMaster::start(fast_setup()).await.unwrap();
    follower.set_leader(Some(leader.endpoint()));
    let answer = post_raw(
        &follower,
        &[("Content-Type", "application/json")],
        subscribe_body(),
    )
    .await;
    let location = answer.headers["Location"].to_str().unwrap().to_owned();
    let authority = location.trim_start_matches("//").split('/').next().unwrap();
    let address: std::net::SocketAddr = authority.parse().unwrap();
    let mut subscription = subscribe_with(
        address,
        ContentType::Json,
        None,
        &[],
        &subscribe_call(FrameworkInfo {
            name: "redirected".into(),
            ..framework_info()
        }),
    )
    .await;
    assert_eq!(subscription.status, StatusCode::OK);
    assert!(subscription.event().await.subscribed.is_some());
    assert_eq!(leader.connected_frameworks().len(), 1);
    assert!(follower.connected_frameworks().is_empty());
}
