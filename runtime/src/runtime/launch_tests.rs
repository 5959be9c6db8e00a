//! Tests of the default [`ContainerRuntime::launch`] against the recording fake.

use super::*;
use crate::testing::FakeRuntime;

fn spec() -> ContainerSpec {
    ContainerSpec {
        image: "app:1".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn launch_of_present_image_costs_only_create_and_start() {
    let runtime = FakeRuntime::default();
    assert_eq!(runtime.launch(&spec()).await.unwrap(), "c1");
    assert_eq!(runtime.calls(), ["create", "start c1"]);
}

#[tokio::test]
async fn launch_pulls_with_credentials_only_after_create_reports_missing_image() {
    let runtime = FakeRuntime::default().without_image();
    let spec = ContainerSpec {
        registry_auth: Some(RegistryAuth {
            username: "alice".into(),
            password: "pw".into(),
            server: None,
        }),
        ..spec()
    };
    runtime.launch(&spec).await.unwrap();
    assert_eq!(
        runtime.calls(),
        [
            "create",
            "ensure_image app:1 force=true alice",
            "create",
            "start c1"
        ]
    );
}

#[tokio::test]
async fn forced_pull_happens_before_create() {
    let runtime = FakeRuntime::default();
    runtime
        .launch(&ContainerSpec {
            force_pull: true,
            ..spec()
        })
        .await
        .unwrap();
    assert_eq!(
        runtime.calls(),
        [
            "ensure_image app:1 force=true anonymous",
            "create",
            "start c1"
        ]
    );
}

#[tokio::test]
async fn launch_removes_a_container_that_failed_to_start() {
    let runtime = FakeRuntime::default().failing_start();
    let error = runtime.launch(&spec()).await.unwrap_err();
    assert!(
        error.to_string().contains("port is already allocated"),
        "{error}"
    );
    assert_eq!(runtime.calls(), ["create", "start c1", "remove c1"]);
}

#[test]
fn runtime_is_usable_as_a_shared_trait_object() {
    let runtime: std::sync::Arc<dyn ContainerRuntime> = std::sync::Arc::new(FakeRuntime::default());
    assert_eq!(std::sync::Arc::strong_count(&runtime), 1);
}
