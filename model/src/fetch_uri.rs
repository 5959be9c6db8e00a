//! Which local file a fetch URI names, so that a submission naming a file on another host is
//! refused at once instead of failing when the task runs.
//!
//! This is a copy of `deimos_runtime::fetch::local_file_path` (the fetcher that later places the URI in
//! the sandbox): the model must not depend on the containerizer's runtime library. The
//! `eremetic` crate holds a test proving the two agree on a table of URIs.

use std::path::PathBuf;

use url::Url;

/// The local file a URI value names (an absolute path or a `file://` URL on this host),
/// `Ok(None)` when it names no local file (http(s), other schemes, malformed values: the fetch
/// reports those), and an error for a `file://` URL that cannot name a file here (another
/// host, no absolute path).
pub fn local_file_path(value: &str) -> Result<Option<PathBuf>, String> {
    if value.starts_with('/') {
        return Ok(Some(PathBuf::from(value)));
    }
    let is_file_url = value
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("file://"));
    if !is_file_url {
        return Ok(None);
    }
    // The scheme is `file` (checked above); only the host and the path remain to be judged.
    let url = Url::parse(value).map_err(|error| format!("not a valid URL: {error}"))?;
    match url.host_str() {
        None | Some("") | Some("localhost") => url
            .to_file_path()
            .map(Some)
            .map_err(|()| "the file URL does not name an absolute path".to_owned()),
        Some(host) => Err(format!("file URLs must be local, not on host {host:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(value: &str) -> Option<PathBuf> {
        local_file_path(value).unwrap_or_else(|error| panic!("{value:?}: {error}"))
    }

    #[test]
    fn absolute_paths_and_local_file_urls_name_a_local_file() {
        assert_eq!(local("/srv/data.tgz"), Some(PathBuf::from("/srv/data.tgz")));
        assert_eq!(local("file:///srv/a%20b"), Some(PathBuf::from("/srv/a b")));
        assert_eq!(local("FILE:///srv/x"), Some(PathBuf::from("/srv/x")));
        assert_eq!(
            local("file://localhost/srv/x"),
            Some(PathBuf::from("/srv/x"))
        );
    }

    #[test]
    fn other_schemes_and_relative_values_name_no_local_file() {
        for value in [
            "http://example.com/x",
            "https://h/x",
            "s3://b/k",
            "data.tgz",
            "",
        ] {
            assert_eq!(local(value), None, "{value:?}");
        }
    }

    #[test]
    fn a_file_url_on_another_host_is_refused_with_the_host_named() {
        let error = local_file_path("file://build-host/srv/x").unwrap_err();
        assert!(error.contains("\"build-host\""), "{error}");
    }
}
