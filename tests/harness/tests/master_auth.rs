//! HTTP framework authentication of the fake master
//! (`--authenticate_http_frameworks`, Basic): 401 with the scheduler realm
//! before anything else, and the principal rules of `Master::Http::scheduler`.

mod scheduler_client;

use std::collections::BTreeMap;

use base64::Engine as _;
use hyper::StatusCode;
use mesos_harness::master::{ContentType, FakeMaster, MasterSetup};
use mesos_proto::v1::scheduler::call;
use mesos_proto::v1::FrameworkInfo;
use scheduler_client::*;

async fn start_authenticating() -> FakeMaster {
    let credentials = BTreeMap::from([
        ("fw".to_owned(), "s3cret".to_owned()),
        ("fw2".to_owned(), "other".to_owned()),
    ]);
    let setup = MasterSetup {
        http_framework_credentials: Some(credentials),
        ..fast_setup()
    };
    FakeMaster::start(setup)
        .await
        .expect("the fake master starts")
}

fn basic(principal: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"));
    format!("Basic {encoded}")
}

fn info_with_principal(principal: Option<&str>) -> FrameworkInfo {
    FrameworkInfo {
        principal: principal.map(str::to_owned),
        ..framework_info()
    }
}

async fn subscribe_as(
    master: &FakeMaster,
    authorization: Option<&str>,
    info: FrameworkInfo,
) -> Subscription {
    let headers: Vec<(&str, &str)> = authorization
        .map(|value| ("Authorization", value))
        .into_iter()
        .collect();
    subscribe_with(
        master.endpoint(),
        ContentType::Json,
        None,
        &headers,
        &subscribe_call(info),
    )
    .await
}

#[tokio::test]
async fn request_without_credentials_gets_401_with_the_scheduler_realm() {
    let master = start_authenticating().await;
    let answer = post_raw(&master, &[("Content-Type", "application/json")], Vec::new()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.headers.get("WWW-Authenticate").unwrap(),
        "Basic realm=\"mesos-master-scheduler\""
    );
    assert_eq!(answer.body, "401 Unauthorized.");
    assert!(master.calls().is_empty());
}

#[tokio::test]
async fn wrong_secret_or_unknown_principal_gets_401() {
    let master = start_authenticating().await;
    for authorization in [basic("fw", "wrong"), basic("nobody", "s3cret")] {
        let subscription = subscribe_as(&master, Some(&authorization), framework_info()).await;
        assert_eq!(subscription.status, StatusCode::UNAUTHORIZED);
    }
    assert!(master.connected_frameworks().is_empty());
}

#[tokio::test]
async fn authentication_comes_before_the_leader_redirect() {
    let master = start_authenticating().await;
    master.set_leader(Some("127.0.0.1:1".parse().unwrap()));
    let subscription = subscribe_as(&master, None, framework_info()).await;
    assert_eq!(subscription.status, StatusCode::UNAUTHORIZED);
    let authorization = basic("fw", "s3cret");
    let subscription = subscribe_as(&master, Some(&authorization), framework_info()).await;
    assert_eq!(subscription.status, StatusCode::TEMPORARY_REDIRECT);
}

#[tokio::test]
async fn subscribe_declaring_another_principal_gets_400() {
    let master = start_authenticating().await;
    let authorization = basic("fw", "s3cret");
    let info = info_with_principal(Some("fw2"));
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", authorization.as_str()),
    ];
    let body = encode_call(&subscribe_call(info), ContentType::Json);
    let answer = post_raw(&master, &headers, body).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body,
        "Failed to validate scheduler::Call: Authenticated principal 'fw' does not match \
         principal 'fw2' set in `FrameworkInfo`"
    );
}

#[tokio::test]
async fn framework_without_principal_gets_the_authenticated_one_and_other_principals_are_refused() {
    let master = start_authenticating().await;
    let authorization = basic("fw", "s3cret");
    let mut subscription = subscribe_as(&master, Some(&authorization), framework_info()).await;
    assert_eq!(subscription.status, StatusCode::OK);
    let subscribed = subscription.event().await.subscribed.unwrap();
    let framework_id = subscribed.framework_id.value;

    let call = envelope(&framework_id, call::Type::Revive);
    let body = encode_call(&call, ContentType::Json);
    let as_fw = [
        ("Content-Type", "application/json"),
        ("Mesos-Stream-Id", subscription.stream_id.as_str()),
        ("Authorization", authorization.as_str()),
    ];
    let answer = post_raw(&master, &as_fw, body.clone()).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);

    let other = basic("fw2", "other");
    let as_fw2 = [
        ("Content-Type", "application/json"),
        ("Mesos-Stream-Id", subscription.stream_id.as_str()),
        ("Authorization", other.as_str()),
    ];
    let answer = post_raw(&master, &as_fw2, body).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body,
        "Authenticated principal 'fw2' does not match principal 'fw' set in `FrameworkInfo`"
    );
}
