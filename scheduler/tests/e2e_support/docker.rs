//! The Docker CLI, for what the tests check or do behind the service's back: is the engine
//! reachable, which containers carry a label, remove them.

use std::process::Command;
use std::sync::OnceLock;

use super::IMAGE;

/// Fails the test unless the Docker engine answers and the test image is present.
pub fn require_docker() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        let version = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .map_err(|error| format!("cannot run the docker CLI: {error}"))?;
        if !version.status.success() {
            return Err(format!(
                "the Docker engine is unreachable: {}",
                String::from_utf8_lossy(&version.stderr).trim()
            ));
        }
        let image = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", IMAGE])
            .output()
            .map_err(|error| format!("cannot run the docker CLI: {error}"))?;
        if !image.status.success() {
            return Err(format!("the test image {IMAGE} is missing"));
        }
        Ok(())
    });
    if let Err(reason) = result {
        panic!("{reason}: run scripts/setup");
    }
}

/// Runs `docker <args>` and returns its standard output; fails the test if it fails.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("run docker {args:?}: {error}"));
    if !output.status.success() {
        panic!(
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Ids of all containers (running or not) labelled `key=value`.
pub fn labelled(key: &str, value: &str) -> Vec<String> {
    let filter = format!("label={key}={value}");
    docker(&["ps", "-aq", "--no-trunc", "--filter", &filter])
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Ids of the containers of a task.
pub fn containers_of_task(task_id: &str) -> Vec<String> {
    labelled("io.deimos.task-id", task_id)
}

/// Whether a container is running; a container removed meanwhile (the service removes ended
/// runs' containers in the background) is not.
pub fn is_running(container: &str) -> bool {
    let output = Command::new("docker")
        .args(["inspect", "--format", "{{.State.Running}}", container])
        .output()
        .unwrap_or_else(|error| panic!("run docker inspect {container}: {error}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("No such object") || stderr.contains("No such container"),
            "docker inspect {container} failed: {}",
            stderr.trim()
        );
        return false;
    }
    String::from_utf8_lossy(&output.stdout).trim() == "true"
}

/// Removes (forcibly) every container labelled `key=value`. Best effort: used by guards.
pub fn remove_labelled(key: &str, value: &str) {
    let filter = format!("label={key}={value}");
    let Ok(output) = Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
    else {
        return;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .arg("rm")
            .arg("-f")
            .args(&ids)
            .output();
    }
}

/// Removes one container forcibly.
pub fn remove(container: &str) {
    docker(&["rm", "-f", container]);
}
