//! Pure planning of a fetch: where each URI comes from, the file it becomes in the sandbox and
//! whether it is extracted. Nothing here touches the network or the file system.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use url::Url;

use super::{FetchError, UriSpec};

/// Where a URI's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Source {
    /// Downloaded over HTTP or HTTPS.
    Http(Url),
    /// Copied from a local file (a `file://` URL or an absolute path).
    Local(PathBuf),
}

/// The archive formats that can be extracted, recognised by file name suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `.tar`.
    Tar,
    /// `.tar.gz`, `.tgz`.
    TarGz,
    /// `.tar.bz2`, `.tbz2`, `.tbz`.
    TarBz2,
    /// `.tar.xz`, `.txz`.
    TarXz,
    /// `.zip`.
    Zip,
}

impl ArchiveKind {
    /// The archive kind a file name's suffix denotes (case-insensitive), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        let has = |suffixes: &[&str]| suffixes.iter().any(|suffix| name.ends_with(suffix));
        if has(&[".tar.gz", ".tgz"]) {
            Some(ArchiveKind::TarGz)
        } else if has(&[".tar.bz2", ".tbz2", ".tbz"]) {
            Some(ArchiveKind::TarBz2)
        } else if has(&[".tar.xz", ".txz"]) {
            Some(ArchiveKind::TarXz)
        } else if has(&[".tar"]) {
            Some(ArchiveKind::Tar)
        } else if has(&[".zip"]) {
            Some(ArchiveKind::Zip)
        } else {
            None
        }
    }
}

/// One URI, ready to be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Planned {
    /// The URI as shown in logs and errors (credentials and query hidden).
    pub(super) shown: String,
    /// Where the content comes from.
    pub(super) source: Source,
    /// The output file, relative to the sandbox.
    pub(super) output: PathBuf,
    /// Mode 0755 instead of 0644.
    pub(super) executable: bool,
    /// The archive to extract into the sandbox, when extraction applies.
    pub(super) extract: Option<ArchiveKind>,
    /// Fetch through the cache (HTTP(S) only).
    pub(super) cache: bool,
}

/// Plans every URI, rejecting two URIs that would write the same file.
pub(super) fn plan_all(uris: &[UriSpec], unpack: bool) -> Result<Vec<Planned>, FetchError> {
    let mut owners: HashMap<PathBuf, String> = HashMap::new();
    uris.iter()
        .map(|uri| {
            let planned = plan(uri, unpack)?;
            if let Some(first) = owners.insert(planned.output.clone(), planned.shown.clone()) {
                return Err(FetchError::DuplicateOutput {
                    uri: planned.shown,
                    first,
                    output: planned.output,
                });
            }
            Ok(planned)
        })
        .collect()
}

/// Plans one URI.
///
/// Extraction needs the URI's `extract` flag, the global `unpack` setting and an archive name
/// suffix (of the output file, else of the source); as in the Mesos fetcher, an `executable` URI
/// is never extracted.
pub(super) fn plan(uri: &UriSpec, unpack: bool) -> Result<Planned, FetchError> {
    let shown = display_uri(&uri.value);
    let source = parse_source(&uri.value).map_err(|reason| FetchError::InvalidUri {
        uri: shown.clone(),
        reason,
    })?;
    let source_name = source_file_name(&source);
    let output = match &uri.output_file {
        Some(output) => {
            validate_output_file(output).map_err(|reason| FetchError::InvalidOutputFile {
                uri: shown.clone(),
                output_file: output.clone(),
                reason,
            })?
        }
        None => PathBuf::from(
            source_name
                .clone()
                .ok_or_else(|| FetchError::EmptyFileName { uri: shown.clone() })?,
        ),
    };
    let kind = output
        .file_name()
        .and_then(|name| ArchiveKind::from_name(&name.to_string_lossy()))
        .or_else(|| source_name.as_deref().and_then(ArchiveKind::from_name));
    let extract = kind.filter(|_| uri.extract && unpack && !uri.executable);
    let cache = uri.cache && matches!(source, Source::Http(_));
    Ok(Planned {
        shown,
        source,
        output,
        executable: uri.executable,
        extract,
        cache,
    })
}

/// The local file a URI value names (an absolute path or a `file://` URL on this host),
/// `Ok(None)` when it names no local file (http(s), other schemes, malformed values: the fetch
/// reports those), and an error for a `file://` URL that cannot name a file here (another
/// host, no absolute path). Pure: lets a service check local files at submission.
pub fn local_file_path(value: &str) -> Result<Option<PathBuf>, String> {
    let is_file_url = value
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("file://"));
    if !value.starts_with('/') && !is_file_url {
        return Ok(None);
    }
    match parse_source(value)? {
        Source::Local(path) => Ok(Some(path)),
        Source::Http(_) => Ok(None),
    }
}

/// Classifies a URI value: an absolute path, a `file://` URL on this host, or http(s).
fn parse_source(value: &str) -> Result<Source, String> {
    if value.starts_with('/') {
        return Ok(Source::Local(PathBuf::from(value)));
    }
    let url = Url::parse(value).map_err(|error| match error {
        url::ParseError::RelativeUrlWithoutBase => {
            "relative paths are not supported: give an absolute path or a URL".to_owned()
        }
        other => format!("not a valid URL: {other}"),
    })?;
    match url.scheme() {
        "http" | "https" => Ok(Source::Http(url)),
        "file" => match url.host_str() {
            None | Some("") | Some("localhost") => url
                .to_file_path()
                .map(Source::Local)
                .map_err(|()| "the file URL does not name an absolute path".to_owned()),
            Some(host) => Err(format!("file URLs must be local, not on host {host:?}")),
        },
        scheme => Err(format!(
            "unsupported scheme {scheme:?}: only http, https, file and absolute paths are fetched"
        )),
    }
}

/// The last path segment of the source, without query string or fragment (D-19: Deimos kept
/// the query string in the file name). `None` when it is empty (e.g. a URL ending in `/`).
fn source_file_name(source: &Source) -> Option<String> {
    let name = match source {
        // The URL parser already separated the query and fragment and resolved `.`/`..`.
        Source::Http(url) => url.path_segments()?.next_back()?.to_owned(),
        Source::Local(path) => path.file_name()?.to_string_lossy().into_owned(),
    };
    Some(name).filter(|name| !name.is_empty())
}

/// An `output_file` must stay inside the sandbox: relative, without `..`.
fn validate_output_file(output: &str) -> Result<PathBuf, &'static str> {
    if output.contains('\0') {
        return Err("it contains a NUL character");
    }
    let path = Path::new(output);
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("it must not contain '..'"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("it must be relative to the sandbox")
            }
        }
    }
    if clean.as_os_str().is_empty() || output.ends_with('/') {
        return Err("it must name a file");
    }
    Ok(clean)
}

/// The URI as it may appear in logs and errors: a password in the URL is replaced by `***`
/// and a query string (which often carries a signature or token) by `?…`.
pub(super) fn display_uri(value: &str) -> String {
    let Ok(mut url) = Url::parse(value) else {
        return value.to_owned();
    };
    if url.password().is_some() {
        // Cannot fail for URLs that already have a password (they have a host).
        let _ = url.set_password(Some("***"));
    }
    let had_query = url.query().is_some();
    url.set_query(None);
    let mut shown = url.to_string();
    if had_query {
        // The fragment, if any, went to the end of the URL; keep the `?…` before it.
        match shown.find('#') {
            Some(at) => shown.insert_str(at, "?…"),
            None => shown.push_str("?…"),
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(value: &str) -> UriSpec {
        UriSpec {
            value: value.into(),
            executable: false,
            extract: true,
            output_file: None,
            cache: false,
        }
    }

    #[test]
    fn output_name_is_the_last_segment_without_query_or_fragment() {
        let cases = [
            ("http://h/a/b/app.tar.gz?sig=1&x=2", "app.tar.gz"),
            ("https://h/tool#frag", "tool"),
            ("http://h/a/../b/c.txt", "c.txt"),
            ("http://h/my%20file", "my%20file"),
            ("file:///srv/files/data.zip", "data.zip"),
            ("file://localhost/srv/x", "x"),
            ("/srv/files/plain", "plain"),
        ];
        for (value, name) in cases {
            assert_eq!(
                plan(&uri(value), true).unwrap().output,
                PathBuf::from(name),
                "{value}"
            );
        }
    }

    #[test]
    fn empty_file_name_is_an_error_naming_the_uri() {
        for value in ["http://h/", "http://h/dir/", "http://h", "/"] {
            let error = plan(&uri(value), true).unwrap_err();
            assert!(
                matches!(error, FetchError::EmptyFileName { .. }),
                "{value}: {error}"
            );
            assert!(
                error.to_string().contains(value.trim_end_matches('/')),
                "{error}"
            );
        }
    }

    #[test]
    fn unsupported_sources_are_rejected_with_a_reason() {
        let cases = [
            ("s3://bucket/key", "unsupported scheme \"s3\""),
            ("hdfs://nn/x", "unsupported scheme"),
            ("relative/path", "relative paths"),
            ("file://otherhost/x", "must be local"),
            ("http://[bad", "not a valid URL"),
        ];
        for (value, reason) in cases {
            let text = plan(&uri(value), true).unwrap_err().to_string();
            assert!(text.contains(reason), "{value}: {text}");
        }
    }

    #[test]
    fn local_file_paths_are_recognised_and_foreign_file_urls_refused() {
        let path = |value| local_file_path(value).map(|p| p.map(|p| p.display().to_string()));
        assert_eq!(path("/srv/a.tgz"), Ok(Some("/srv/a.tgz".into())));
        assert_eq!(path("file:///etc/shadow"), Ok(Some("/etc/shadow".into())));
        assert_eq!(path("FILE://localhost/x"), Ok(Some("/x".into())));
        assert_eq!(path("http://h/x"), Ok(None));
        assert_eq!(path("s3://b/k"), Ok(None));
        assert!(path("file://otherhost/x")
            .unwrap_err()
            .contains("must be local"));
    }

    #[test]
    fn output_file_must_stay_inside_the_sandbox() {
        let with_output = |output: &str| UriSpec {
            output_file: Some(output.into()),
            ..uri("http://h/x.tar.gz")
        };
        assert_eq!(
            plan(&with_output("sub/y.bin"), true).unwrap().output,
            PathBuf::from("sub/y.bin")
        );
        assert_eq!(
            plan(&with_output("./y"), true).unwrap().output,
            PathBuf::from("y")
        );
        for bad in ["", ".", "../y", "a/../../y", "/etc/passwd", "dir/"] {
            let error = plan(&with_output(bad), true).unwrap_err();
            assert!(
                matches!(error, FetchError::InvalidOutputFile { .. }),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn extraction_needs_the_flag_the_setting_and_an_archive_name() {
        let archive = |value: &str, extract: bool, executable: bool, unpack: bool| {
            let spec = UriSpec {
                extract,
                executable,
                ..uri(value)
            };
            plan(&spec, unpack).unwrap().extract
        };
        assert_eq!(
            archive("http://h/a.tgz", true, false, true),
            Some(ArchiveKind::TarGz)
        );
        assert_eq!(
            archive("http://h/a.TAR.BZ2", true, false, true),
            Some(ArchiveKind::TarBz2)
        );
        assert_eq!(
            archive("http://h/a.txz?x", true, false, true),
            Some(ArchiveKind::TarXz)
        );
        assert_eq!(
            archive("http://h/a.zip", true, false, true),
            Some(ArchiveKind::Zip)
        );
        assert_eq!(
            archive("http://h/a.tar", true, false, true),
            Some(ArchiveKind::Tar)
        );
        assert_eq!(archive("http://h/a.zip", false, false, true), None);
        assert_eq!(archive("http://h/a.zip", true, false, false), None);
        assert_eq!(archive("http://h/a.zip", true, true, true), None);
        assert_eq!(archive("http://h/a.txt", true, false, true), None);
    }

    #[test]
    fn archive_kind_falls_back_to_the_source_name() {
        let spec = UriSpec {
            output_file: Some("bundle".into()),
            ..uri("http://h/b.tar.xz")
        };
        assert_eq!(plan(&spec, true).unwrap().extract, Some(ArchiveKind::TarXz));
    }

    #[test]
    fn two_uris_writing_the_same_file_are_rejected() {
        let uris = [uri("http://a/x.bin"), uri("http://b/x.bin?v=2")];
        let error = plan_all(&uris, true).unwrap_err();
        assert!(
            matches!(error, FetchError::DuplicateOutput { .. }),
            "{error}"
        );
        assert!(plan_all(&[uri("http://a/x.bin"), uri("http://a/y.bin")], true).is_ok());
    }

    #[test]
    fn displayed_uris_hide_passwords_and_query_strings() {
        assert_eq!(
            display_uri("https://u:secret@h/x?token=t#f"),
            "https://u:***@h/x?…#f"
        );
        assert_eq!(display_uri("http://h/x"), "http://h/x");
        assert_eq!(display_uri("/plain/path"), "/plain/path");
    }
}
