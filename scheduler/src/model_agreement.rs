//! The `eremetic-model` crate keeps its own copies of pure functions that live elsewhere (it
//! must not depend on the containerizer's library); these tests prove each copy agrees with
//! its original, so a submission is judged exactly as the fetch that later runs it.

use eremetic_model::fetch_uri;

/// URIs of every kind the fetcher distinguishes, with the odd cases at the edges.
const URIS: &[&str] = &[
    "",
    "/",
    "/srv/data.tgz",
    "/srv/a b/../c",
    "relative/path.tgz",
    "./here",
    "data.tgz",
    "file:///srv/data.tgz",
    "FILE:///srv/data.tgz",
    "File://localhost/srv/x",
    "file://localhost/srv/x",
    "file://LOCALHOST/srv/x",
    "file://otherhost/srv/x",
    "file://127.0.0.1/srv/x",
    "file://[::1]/srv/x",
    "file://",
    "file:///",
    "file:/srv/x",
    "file:srv/x",
    "file://user:pw@host/x",
    "file://host:99999/x",
    "file:///srv/a%20b%2Fc",
    "file:///srv/%C3%A9t%C3%A9",
    "file:///srv/%FF",
    "file:///srv/x?query#fragment",
    "file://%41host/x",
    "http://example.com/file.tgz",
    "https://example.com/a%20b.tgz?x=1",
    "HTTP://EXAMPLE.COM/x",
    "ftp://example.com/x",
    "s3://bucket/key",
    "hdfs:///x",
    "http://",
    "://nothing",
    "c:\\windows\\file",
];

#[test]
fn the_model_s_local_file_path_agrees_with_the_fetcher_s_on_every_uri() {
    for uri in URIS {
        assert_eq!(
            fetch_uri::local_file_path(uri),
            deimos_runtime::fetch::local_file_path(uri),
            "{uri:?}"
        );
    }
}
