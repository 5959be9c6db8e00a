//! `deimos_runtime::fetch` archive handling and local sources: extraction of every format over a real
//! HTTP server, the extract/unpack switches, refusal of entries escaping the sandbox, and
//! `file://`/plain path copies.

// Test helpers outside #[test] functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod fetch_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use deimos_runtime::fetch::{fetch_all, ArchiveKind, FetchError, FetchOptions, UriSpec};
use deimos_runtime::hostpath::AllowedPaths;
use fetch_support::{Member, Reply, TestServer};

fn uri(value: String) -> UriSpec {
    UriSpec {
        value,
        executable: false,
        extract: true,
        output_file: None,
        cache: false,
    }
}

/// A sandbox inside a scratch directory, so that escapes can be detected next to it.
struct Scratch {
    root: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sandbox")).unwrap();
        Scratch { root }
    }

    fn sandbox(&self) -> PathBuf {
        self.root.path().join("sandbox")
    }

    /// Every path under the scratch root, relative to it, sorted.
    fn tree(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                out.push(path.strip_prefix(base).unwrap().display().to_string());
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    walk(base, &path, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.root.path(), self.root.path(), &mut out);
        out.sort();
        out
    }
}

/// Options that allow copying local files from under `dir`.
fn local_from(dir: &Path) -> FetchOptions {
    FetchOptions {
        local_files: AllowedPaths::new([dir.to_owned()], "test"),
        ..FetchOptions::default()
    }
}

fn app_members() -> Vec<Member<'static>> {
    vec![
        Member::Dir("app/"),
        Member::File("app/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
        Member::File("app/data.txt", b"data", 0o644),
        Member::Symlink("app/current", "data.txt"),
    ]
}

#[tokio::test]
async fn every_archive_format_is_extracted_into_the_sandbox_and_kept() {
    let tar = fetch_support::tar(&app_members());
    let formats = [
        ("app.tar", tar.clone(), ArchiveKind::Tar),
        ("app.tar.gz", fetch_support::gzip(&tar), ArchiveKind::TarGz),
        ("app.tgz", fetch_support::gzip(&tar), ArchiveKind::TarGz),
        (
            "app.tar.bz2",
            fetch_support::bzip2(&tar),
            ArchiveKind::TarBz2,
        ),
        ("app.tar.xz", fetch_support::xz(&tar), ArchiveKind::TarXz),
        (
            "app.zip",
            fetch_support::zip(&app_members()),
            ArchiveKind::Zip,
        ),
    ];
    let routes: Vec<(String, Reply)> = formats
        .iter()
        .map(|(name, body, _)| (format!("/{name}"), Reply::Body(body.clone())))
        .collect();
    let server = TestServer::start(
        routes
            .iter()
            .map(|(path, reply)| (&path[..], reply.clone()))
            .collect(),
    )
    .await;
    for (name, _, kind) in &formats {
        let scratch = Scratch::new();
        let sandbox = scratch.sandbox();
        let fetched = fetch_all(
            &[uri(server.url(&format!("/{name}?v=1")))],
            &sandbox,
            &FetchOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(fetched[0].extracted, Some(*kind), "{name}");
        assert!(sandbox.join(name).is_file(), "{name}: the archive is kept");
        assert_eq!(
            std::fs::read(sandbox.join("app/data.txt")).unwrap(),
            b"data",
            "{name}"
        );
        let run = sandbox.join("app/run.sh");
        assert_eq!(
            std::fs::metadata(&run).unwrap().permissions().mode() & 0o111,
            0o111,
            "{name}"
        );
        assert_eq!(
            std::fs::read_link(sandbox.join("app/current")).unwrap(),
            Path::new("data.txt")
        );
        assert_eq!(
            std::fs::read(sandbox.join("app/current")).unwrap(),
            b"data",
            "{name}"
        );
    }
}

#[tokio::test]
async fn archive_stays_packed_when_extract_or_unpack_is_off() {
    let body = fetch_support::gzip(&fetch_support::tar(&app_members()));
    let server = TestServer::start(vec![("/app.tar.gz", Reply::Body(body))]).await;
    let cases = [(false, true), (true, false)];
    for (extract, unpack) in cases {
        let scratch = Scratch::new();
        let spec = UriSpec {
            extract,
            ..uri(server.url("/app.tar.gz"))
        };
        let options = FetchOptions {
            unpack,
            ..FetchOptions::default()
        };
        let fetched = fetch_all(&[spec], &scratch.sandbox(), &options)
            .await
            .unwrap();
        assert_eq!(fetched[0].extracted, None);
        assert_eq!(
            scratch.tree(),
            ["sandbox", "sandbox/app.tar.gz"],
            "extract {extract} unpack {unpack}"
        );
    }
}

#[tokio::test]
async fn executable_archive_is_not_extracted() {
    let body = fetch_support::gzip(&fetch_support::tar(&app_members()));
    let server = TestServer::start(vec![("/app.tgz", Reply::Body(body))]).await;
    let scratch = Scratch::new();
    let spec = UriSpec {
        executable: true,
        ..uri(server.url("/app.tgz"))
    };
    fetch_all(&[spec], &scratch.sandbox(), &FetchOptions::default())
        .await
        .unwrap();
    assert_eq!(scratch.tree(), ["sandbox", "sandbox/app.tgz"]);
}

/// Fetches `body` as `name` and returns the error, checking nothing escaped the sandbox.
async fn fetch_malicious(name: &str, body: Vec<u8>) -> FetchError {
    let path = format!("/{name}");
    let server = TestServer::start(vec![(&path[..], Reply::Body(body))]).await;
    let scratch = Scratch::new();
    let error = fetch_all(
        &[uri(server.url(&path))],
        &scratch.sandbox(),
        &FetchOptions::default(),
    )
    .await
    .unwrap_err();
    let outside: Vec<String> = scratch
        .tree()
        .into_iter()
        .filter(|p| !p.starts_with("sandbox"))
        .collect();
    assert!(
        outside.is_empty(),
        "{name} wrote outside the sandbox: {outside:?}"
    );
    error
}

#[tokio::test]
async fn archive_entries_escaping_the_sandbox_are_refused() {
    let absolute = format!("{}/evil-absolute", std::env::temp_dir().display());
    let cases: Vec<(&str, Vec<Member<'_>>, &str)> = vec![
        (
            "dotdot.tar",
            vec![Member::File("../evil", b"x", 0o644)],
            "'..'",
        ),
        (
            "nested.tar",
            vec![Member::File("a/../../evil", b"x", 0o644)],
            "'..'",
        ),
        (
            "absolute.tar",
            vec![Member::File(&absolute, b"x", 0o644)],
            "absolute",
        ),
        ("link-up.tar", vec![Member::Symlink("up", "..")], "outside"),
        (
            "link-abs.tar",
            vec![Member::Symlink("etc", "/etc")],
            "absolute",
        ),
        (
            "through-link.tar",
            vec![
                Member::Symlink("here", "."),
                Member::File("here/evil", b"x", 0o644),
            ],
            "through a symlink",
        ),
    ];
    for (name, members, reason) in cases {
        let error = fetch_malicious(name, fetch_support::tar(&members)).await;
        assert!(
            matches!(error, FetchError::UnsafeArchiveEntry { .. }),
            "{name}: {error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains(reason) && text.contains(name),
            "{name}: {text}"
        );
    }
    assert!(!Path::new(&absolute).exists());
}

#[tokio::test]
async fn zip_entries_escaping_the_sandbox_are_refused() {
    let cases: Vec<(&str, Vec<Member<'_>>)> = vec![
        ("dotdot.zip", vec![Member::File("../evil", b"x", 0o644)]),
        ("link.zip", vec![Member::Symlink("etc", "/etc")]),
        (
            "link-up.zip",
            vec![Member::Dir("d/"), Member::Symlink("d/up", "../..")],
        ),
    ];
    for (name, members) in cases {
        let error = fetch_malicious(name, fetch_support::zip(&members)).await;
        assert!(
            matches!(error, FetchError::UnsafeArchiveEntry { .. }),
            "{name}: {error:?}"
        );
    }
}

#[tokio::test]
async fn corrupt_archive_fails_naming_the_archive() {
    let server = TestServer::start(vec![("/bad.tar.gz", Reply::Body(b"not gzip".to_vec()))]).await;
    let scratch = Scratch::new();
    let error = fetch_all(
        &[uri(server.url("/bad.tar.gz"))],
        &scratch.sandbox(),
        &FetchOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, FetchError::Extract { .. }), "{error:?}");
    assert!(error.to_string().contains("bad.tar.gz"), "{error}");
}

#[tokio::test]
async fn file_url_and_plain_path_are_copied() {
    let source_dir = tempfile::tempdir().unwrap();
    let source = source_dir.path().join("tool.bin");
    std::fs::write(&source, b"tool").unwrap();
    let scratch = Scratch::new();
    let uris = [
        UriSpec {
            output_file: Some("by-url".into()),
            ..uri(format!("file://{}", source.display()))
        },
        UriSpec {
            executable: true,
            ..uri(source.display().to_string())
        },
    ];
    let fetched = fetch_all(&uris, &scratch.sandbox(), &local_from(source_dir.path()))
        .await
        .unwrap();
    assert_eq!(fetched.len(), 2);
    assert_eq!(
        std::fs::read(scratch.sandbox().join("by-url")).unwrap(),
        b"tool"
    );
    let copy = scratch.sandbox().join("tool.bin");
    assert_eq!(std::fs::read(&copy).unwrap(), b"tool");
    assert_eq!(
        std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
        0o755
    );
}

#[tokio::test]
async fn local_archive_is_extracted_too() {
    let source_dir = tempfile::tempdir().unwrap();
    let source = source_dir.path().join("bundle.zip");
    std::fs::write(&source, fetch_support::zip(&app_members())).unwrap();
    let scratch = Scratch::new();
    fetch_all(
        &[uri(source.display().to_string())],
        &scratch.sandbox(),
        &local_from(source_dir.path()),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(scratch.sandbox().join("app/data.txt")).unwrap(),
        b"data"
    );
}

#[tokio::test]
async fn missing_or_non_file_local_source_fails_naming_it() {
    let source_dir = tempfile::tempdir().unwrap();
    let missing = source_dir.path().join("missing.bin").display().to_string();
    let directory = source_dir.path().display().to_string();
    for (value, expected) in [
        (missing.clone(), "No such file"),
        (directory.clone(), "not a regular file"),
    ] {
        let scratch = Scratch::new();
        let error = fetch_all(
            &[uri(value.clone())],
            &scratch.sandbox(),
            &local_from(source_dir.path()),
        )
        .await
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains(&value) && text.contains(expected), "{text}");
        assert_eq!(scratch.tree(), ["sandbox"], "no partial file");
    }
}
