//! The stylesheet, scripts and logo, compiled into the binary (no CDN: the UI works offline).

use axum::body::Body;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asset {
    /// Its name under `/static/`.
    pub(crate) name: &'static str,
    /// Its `Content-Type`.
    pub(crate) content_type: &'static str,
    /// Its bytes.
    pub(crate) bytes: &'static [u8],
}

/// Every embedded file.
pub(crate) const ASSETS: [Asset; 4] = [
    Asset {
        name: "eremetic.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("static/eremetic.css"),
    },
    Asset {
        name: "eremetic.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("static/eremetic.js"),
    },
    Asset {
        name: "ansi.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("static/ansi.js"),
    },
    Asset {
        name: "logo.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("static/logo.svg"),
    },
];

/// The embedded file called `name`.
pub(crate) fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

/// A strong validator of the content: the first 16 hex digits of its SHA-256.
pub(crate) fn etag(asset: &Asset) -> String {
    let digest = Sha256::digest(asset.bytes);
    format!("\"{}\"", hex::encode(&digest[..8]))
}

/// `GET /static/{file}`: the file with its type; clients revalidate with `If-None-Match` (the
/// files change with each release, the URLs do not).
pub(crate) async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = find(&name) else {
        return super::not_found_response(&headers, format!("no static file named {name:?}"));
    };
    let tag = etag(asset);
    let matches = headers
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|candidate| candidate.trim() == tag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = (StatusCode::OK, Body::from(asset.bytes)).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        response
    };
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&tag) {
        headers.insert(ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_by_name_and_not_empty() {
        for asset in ASSETS {
            assert_eq!(find(asset.name), Some(&asset));
            assert!(!asset.bytes.is_empty(), "{}", asset.name);
        }
        assert_eq!(find("../Cargo.toml"), None);
    }

    #[test]
    fn etags_differ_between_files() {
        let tags: std::collections::BTreeSet<String> = ASSETS.iter().map(etag).collect();
        assert_eq!(tags.len(), ASSETS.len());
        assert!(tags
            .iter()
            .all(|tag| tag.len() == 18 && tag.starts_with('"')));
    }
}
