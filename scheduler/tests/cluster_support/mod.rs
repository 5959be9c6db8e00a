//! What the end-to-end tests on a harness cluster with real agents share: the binaries of the
//! other packages (`deimos`, `deimos-executor`, `mesos-harness`), which a test of the
//! `eremetic` package cannot name with `env!("CARGO_BIN_EXE_...")`. They are found next to the
//! `eremetic` binary: `cargo test --workspace` builds every package's binaries there.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

/// The binary `name` of another workspace package, from the directory of the `eremetic`
/// binary; fails the test with the command that builds it when it is missing.
pub fn workspace_binary(name: &str) -> PathBuf {
    let eremetic = Path::new(env!("CARGO_BIN_EXE_eremetic"));
    let dir = eremetic
        .parent()
        .expect("the eremetic binary lies in a directory");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{name} is missing from {}: run `cargo build -p deimos -p deimos-executor -p mesos-harness` \
         (or `cargo test --workspace`) first",
        dir.display()
    );
    path
}

/// The `deimos` external containerizer.
pub fn deimos() -> PathBuf {
    workspace_binary("deimos")
}

/// The `deimos-executor` custom executor.
pub fn deimos_executor() -> PathBuf {
    workspace_binary("deimos-executor")
}

/// The `mesos-harness` program; started as `mesos-executor` (a symbolic link of that name) it
/// is the harness's command executor.
pub fn mesos_harness() -> PathBuf {
    workspace_binary("mesos-harness")
}

/// A launcher directory (an agent's `--launcher_dir`) in `dir` holding `mesos-executor`: a
/// symbolic link to [`mesos_harness`].
pub fn launcher_dir(dir: &Path) -> PathBuf {
    let launcher = dir.join("libexec");
    std::fs::create_dir_all(&launcher).expect("create the launcher directory");
    std::os::unix::fs::symlink(mesos_harness(), launcher.join("mesos-executor"))
        .expect("link mesos-executor into the launcher directory");
    launcher
}
