//! End to end: with HTTP Basic credentials and bearer tokens configured, every route except
//! the version requires one of them (E-19: also `/metrics` and the events stream, and a 401
//! always carries `WWW-Authenticate`); wrong credentials are refused; right ones accepted.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

mod e2e_support;

use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

use e2e_support::{basic, shell_task, Service, Settings};
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn protected_service() -> Service {
    let settings = Settings::new()
        .set("http_credentials", "operator:s3cret-pw")
        .set("bearer_tokens", "token-one,token-two");
    Service::start(settings).await
}

/// Every protected route (method, path), v1 and v0.
fn protected_routes() -> Vec<(Method, String)> {
    let task = "/api/v1/task/eremetic-task.00000000-0000-4000-8000-000000000000";
    let v0_task = "/task/eremetic-task.00000000-0000-4000-8000-000000000000";
    vec![
        (Method::GET, "/api/v1/task".to_owned()),
        (Method::POST, "/api/v1/task".to_owned()),
        (Method::GET, task.to_owned()),
        (Method::DELETE, task.to_owned()),
        (Method::POST, format!("{task}/kill")),
        (Method::GET, format!("{task}/stdout")),
        (Method::GET, format!("{task}/stderr")),
        (Method::GET, "/api/v1/events".to_owned()),
        (Method::GET, "/metrics".to_owned()),
        (Method::GET, "/task".to_owned()),
        (Method::POST, "/task".to_owned()),
        (Method::GET, v0_task.to_owned()),
    ]
}

/// Sends `method path` with `authorization` (none when `None`) and expects a 401 with a
/// `WWW-Authenticate` challenge.
async fn expect_401(service: &Service, method: Method, path: &str, authorization: Option<&str>) {
    let mut request = service.raw(method.clone(), path);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    if method == Method::POST {
        request = request.json(&shell_task("echo unauthorised"));
    }
    let response = service.send(request).await;
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "{method} {path} with {authorization:?}"
    );
    assert!(
        challenge.to_ascii_lowercase().contains("basic"),
        "{method} {path}: the 401 carries WWW-Authenticate naming Basic, got {challenge:?}"
    );
}

#[tokio::test]
async fn e19_requests_without_credentials_get_401_with_www_authenticate() {
    let service = protected_service().await;
    for (method, path) in protected_routes() {
        expect_401(&service, method, &path, None).await;
    }
}

#[tokio::test]
async fn wrong_credentials_get_401() {
    let service = protected_service().await;
    let wrong = [
        basic("operator", "wrong-pw"),
        basic("intruder", "s3cret-pw"),
        basic("operator", ""),
        "Bearer token-three".to_owned(),
        "Bearer ".to_owned(),
        "Basic not-base64!".to_owned(),
        "token-one".to_owned(),
    ];
    for authorization in &wrong {
        for (method, path) in [
            (Method::GET, "/api/v1/task"),
            (Method::POST, "/api/v1/task"),
        ] {
            expect_401(&service, method, path, Some(authorization)).await;
        }
    }
    let mut service = service;
    service.use_authorization(basic("operator", "s3cret-pw"));
    let all = service.list("?state=queued,active,terminated").await;
    assert!(
        all.is_empty(),
        "no refused submission created a task: {all:?}"
    );
}

#[tokio::test]
async fn right_basic_credentials_or_bearer_tokens_are_accepted() {
    let mut service = protected_service().await;
    let accepted = [
        basic("operator", "s3cret-pw"),
        "Bearer token-one".to_owned(),
        "Bearer token-two".to_owned(),
    ];
    let mut ids = Vec::new();
    for authorization in &accepted {
        service.use_authorization(authorization.clone());
        let response = service.get("/api/v1/task").await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "list with {authorization}"
        );
        let response = service.get("/metrics").await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "metrics with {authorization}"
        );
        ids.push(service.submit(&shell_task("echo authorised")).await);
    }
    for id in &ids {
        service.wait_end(id, "TASK_FINISHED").await;
        assert_eq!(service.output(id, "stdout").await, "authorised\n");
    }
}

#[tokio::test]
async fn version_is_open_without_credentials() {
    let service = protected_service().await;
    for path in ["/api/v1/version", "/version"] {
        let response = service.send(service.raw(Method::GET, path)).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "GET {path} without credentials"
        );
        let text = response.text().await.unwrap();
        let version: Value = serde_json::from_str(&text).unwrap();
        assert!(
            version.is_string(),
            "{path} answers the version as a JSON string: {text}"
        );
    }
}

/// An IPv4 address of one of this host's own interfaces other than loopback.
///
/// Read from the interfaces themselves (getifaddrs), not from Docker's network layout: the
/// default bridge's IPAM configuration has no gateway on some installations. The address is
/// local, so connecting to it never leaves the machine.
fn non_loopback_address() -> IpAddr {
    let interfaces: Vec<_> = nix::ifaddrs::getifaddrs()
        .expect("list the host's network interfaces")
        .collect();
    let candidates: Vec<(String, Ipv4Addr)> = interfaces
        .iter()
        .filter_map(|interface| {
            let address = interface.address.as_ref()?.as_sockaddr_in()?.ip();
            Some((interface.interface_name.clone(), address))
        })
        .filter(|(_, address)| !address.is_loopback() && !address.is_unspecified())
        .collect();
    let names: Vec<&str> = interfaces
        .iter()
        .map(|i| i.interface_name.as_str())
        .collect();
    let (_, address) = candidates.first().unwrap_or_else(|| {
        panic!("this test needs an IPv4 address on a non-loopback interface; interfaces: {names:?}")
    });
    IpAddr::V4(*address)
}

fn reachable(address: IpAddr, port: u16) -> bool {
    TcpStream::connect_timeout(&(address, port).into(), Duration::from_secs(2)).is_ok()
}

#[tokio::test]
async fn without_credentials_the_default_address_is_loopback_only() {
    let address = non_loopback_address();
    let open = Service::start(Settings::new().unset("address")).await;
    assert!(
        !reachable(address, open.port()),
        "an open server must not listen on {address} unless its address is set"
    );
    let explicit = Service::start(Settings::new().set("address", "0.0.0.0")).await;
    assert!(
        reachable(address, explicit.port()),
        "an explicit address 0.0.0.0 listens on {address}"
    );
    let protected = Service::start(
        Settings::new()
            .unset("address")
            .set("http_credentials", "operator:s3cret-pw"),
    )
    .await;
    assert!(
        reachable(address, protected.port()),
        "with credentials the default address covers {address}"
    );
}

#[tokio::test]
async fn tls_with_credentials_serves_the_api_over_https() {
    let certificate = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert, certificate.cert.pem()).unwrap();
    std::fs::write(&key, certificate.signing_key.serialize_pem()).unwrap();
    let settings = Settings::new()
        .set("tls_cert", cert.to_str().unwrap())
        .set("tls_key", key.to_str().unwrap())
        .set("http_credentials", "operator:s3cret-pw");
    let mut service = Service::start(settings).await;
    assert!(service.url("/").starts_with("https://"));
    expect_401(&service, Method::GET, "/api/v1/task", None).await;
    service.use_authorization(basic("operator", "s3cret-pw"));
    let id = service.submit(&shell_task("echo over tls")).await;
    service.wait_end(&id, "TASK_FINISHED").await;
    assert_eq!(service.output(&id, "stdout").await, "over tls\n");
    let plain = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{}/api/v1/version",
            service.port()
        ))
        .send()
        .await;
    assert!(
        plain.map_or(true, |response| !response.status().is_success()),
        "plain HTTP is not served on the TLS port"
    );
}

#[tokio::test]
async fn other_web_sites_cannot_submit_tasks_through_a_browser() {
    let mut service = Service::start(Settings::new().set("http_credentials", "admin:s3cret")).await;
    service.use_authorization(basic("admin", "s3cret"));
    // What a form on another site makes a browser send, cached credentials included.
    let forged = service
        .request(Method::POST, "/api/v1/task")
        .header("Origin", "http://evil.example")
        .header("Content-Type", "text/plain")
        .body(shell_task("echo pwned").to_string());
    let response = service.send(forged).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let listed: Value = service
        .send(service.request(Method::GET, "/api/v1/task?state=queued,active,terminated"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    // The server's own pages (same origin) and clients without Origin still submit.
    let own_origin = format!("http://127.0.0.1:{}", service.port());
    let same = service
        .request(Method::POST, "/api/v1/task")
        .header("Origin", own_origin)
        .json(&shell_task("true"));
    assert_eq!(service.send(same).await.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_server_without_credentials_refuses_requests_addressed_to_other_names() {
    let service = Service::start(Settings::new()).await;
    // DNS rebinding: a page on attacker.example whose name now resolves to 127.0.0.1.
    let rebound = service
        .raw(Method::GET, "/api/v1/task")
        .header("Host", format!("attacker.example:{}", service.port()));
    assert_eq!(service.send(rebound).await.status(), StatusCode::FORBIDDEN);
    let direct = service.raw(Method::GET, "/api/v1/task");
    assert_eq!(service.send(direct).await.status(), StatusCode::OK);
}
