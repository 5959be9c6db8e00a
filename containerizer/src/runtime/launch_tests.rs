//! Tests of the default [`ContainerRuntime::launch`] against a recording fake.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::*;

/// Records the calls made to it; the image is present once pulled.
#[derive(Default)]
struct RecordingRuntime {
    calls: Mutex<Vec<String>>,
    image_present: AtomicBool,
    start_fails: bool,
}

impl RecordingRuntime {
    fn record(&self, call: impl Into<String>) {
        self.calls.lock().unwrap().push(call.into());
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn unused(operation: &'static str) -> RuntimeError {
        RuntimeError::Docker {
            operation,
            target: "fake".into(),
            reason: "not used by launch".into(),
        }
    }
}

#[async_trait]
impl ContainerRuntime for RecordingRuntime {
    async fn ensure_image(
        &self,
        image: &str,
        force_pull: bool,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageSource, RuntimeError> {
        let user = auth.map_or("anonymous", |auth| auth.username.as_str());
        self.record(format!("ensure_image {image} force={force_pull} {user}"));
        self.image_present.store(true, Ordering::SeqCst);
        Ok(ImageSource::Pulled)
    }

    async fn inspect_image(&self, _image: &str) -> Result<ImageInfo, RuntimeError> {
        Err(Self::unused("image inspect"))
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        self.record("create");
        if self.image_present.load(Ordering::SeqCst) {
            Ok("c1".into())
        } else {
            Err(RuntimeError::ImageNotFound {
                image: spec.image.clone(),
                reason: "absent".into(),
            })
        }
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.record(format!("start {id}"));
        if self.start_fails {
            Err(RuntimeError::Docker {
                operation: "start",
                target: id.into(),
                reason: "port is already allocated".into(),
            })
        } else {
            Ok(())
        }
    }

    async fn wait(&self, _id: &str) -> Result<ExitStatus, RuntimeError> {
        Err(Self::unused("wait"))
    }

    async fn stop(&self, _id: &str, _grace: Duration) -> Result<(), RuntimeError> {
        Err(Self::unused("stop"))
    }

    async fn kill(&self, _id: &str, _signal: Signal) -> Result<(), RuntimeError> {
        Err(Self::unused("kill"))
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.record(format!("remove {id}"));
        Ok(())
    }

    async fn inspect(&self, _id: &str) -> Result<ContainerInfo, RuntimeError> {
        Err(Self::unused("inspect"))
    }

    async fn stats(&self, _id: &str) -> Result<UsageStats, RuntimeError> {
        Err(Self::unused("stats"))
    }

    async fn update_limits(&self, _id: &str, _limits: &Limits) -> Result<(), RuntimeError> {
        Err(Self::unused("update"))
    }

    async fn list(&self, _filters: &[LabelFilter]) -> Result<Vec<ListedContainer>, RuntimeError> {
        Err(Self::unused("list"))
    }

    async fn stream_logs(
        &self,
        _id: &str,
        _dir: &Path,
        _options: LogOptions,
    ) -> Result<LogTotals, RuntimeError> {
        Err(Self::unused("logs"))
    }
}

fn spec() -> ContainerSpec {
    ContainerSpec {
        image: "app:1".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn launch_of_present_image_costs_only_create_and_start() {
    let runtime = RecordingRuntime::default();
    runtime.image_present.store(true, Ordering::SeqCst);
    assert_eq!(runtime.launch(&spec()).await.unwrap(), "c1");
    assert_eq!(runtime.calls(), ["create", "start c1"]);
}

#[tokio::test]
async fn launch_pulls_with_credentials_only_after_create_reports_missing_image() {
    let runtime = RecordingRuntime::default();
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
    let runtime = RecordingRuntime::default();
    runtime.image_present.store(true, Ordering::SeqCst);
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
    let runtime = RecordingRuntime {
        start_fails: true,
        ..Default::default()
    };
    runtime.image_present.store(true, Ordering::SeqCst);
    let error = runtime.launch(&spec()).await.unwrap_err();
    assert!(
        error.to_string().contains("port is already allocated"),
        "{error}"
    );
    assert_eq!(runtime.calls(), ["create", "start c1", "remove c1"]);
}

#[test]
fn runtime_is_usable_as_a_shared_trait_object() {
    let runtime: std::sync::Arc<dyn ContainerRuntime> =
        std::sync::Arc::new(RecordingRuntime::default());
    assert_eq!(std::sync::Arc::strong_count(&runtime), 1);
}
