//! Registry credentials: reading them from Docker credential files and handing them to pulls.
//!
//! Both the modern `~/.docker/config.json` layout (`{"auths": {"<registry>": {"auth": ...}}}`)
//! and the legacy `.dockercfg` layout (the `auths` map at the top level) are understood.
//! Credential helpers (`credsStore`, `credHelpers`) are not consulted.

use std::path::Path;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde_json::Value;

use super::error::RuntimeError;
use crate::spec::RegistryAuth;

/// The canonical name of Docker Hub, which has several aliases.
const DOCKER_HUB: &str = "docker.io";

/// The registry host (`host[:port]`) an image reference pulls from; Docker Hub for references
/// whose first component is not a host name (`busybox`, `library/busybox`, `user/app`).
pub fn registry_of_image(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            canonical_registry(first)
        }
        _ => DOCKER_HUB.to_owned(),
    }
}

/// A registry address as credential files spell it (`https://index.docker.io/v1/`,
/// `registry:5000`) reduced to `host[:port]`, with Docker Hub's aliases unified.
fn canonical_registry(address: &str) -> String {
    let without_scheme = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
        .unwrap_or(address);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_owned()
        }
        _ => host,
    }
}

/// Finds the credentials for `registry` (`host[:port]`, as [`registry_of_image`] gives) in the
/// text of a credential file. `Ok(None)` when the file has no entry for that registry.
///
/// Errors never contain the password nor the encoded `auth` value.
pub fn parse_docker_config(text: &str, registry: &str) -> Result<Option<RegistryAuth>, String> {
    let document: Value =
        serde_json::from_str(text).map_err(|error| format!("not valid JSON: {error}"))?;
    let auths = match document.get("auths") {
        Some(auths) => auths,
        None => &document,
    };
    let Some(auths) = auths.as_object() else {
        return Err("`auths` is not an object".to_owned());
    };
    let wanted = canonical_registry(registry);
    let Some((server, entry)) = auths
        .iter()
        .find(|(server, _)| canonical_registry(server) == wanted)
    else {
        return Ok(None);
    };
    let (username, password) = entry_credentials(entry)
        .map_err(|reason| format!("entry for registry {server}: {reason}"))?;
    Ok(Some(RegistryAuth {
        username,
        password,
        server: Some(server.clone()),
    }))
}

/// User name and password of one `auths` entry: the `auth` field (base64 of `user:password`)
/// or, failing that, `username` and `password` fields.
fn entry_credentials(entry: &Value) -> Result<(String, String), String> {
    if let Some(encoded) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| "`auth` is not valid base64".to_owned())?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| "`auth` does not decode to UTF-8".to_owned())?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| "`auth` does not decode to <user>:<password>".to_owned())?;
        return Ok((username.to_owned(), password.to_owned()));
    }
    let field = |name: &str| entry.get(name).and_then(Value::as_str).map(str::to_owned);
    match (field("username"), field("password")) {
        (Some(username), Some(password)) => Ok((username, password)),
        _ => Err("has neither `auth` nor `username` and `password`".to_owned()),
    }
}

/// Reads the credentials for the registry of `image` from a credential file
/// (a dockercfg or `~/.docker/config.json`). `Ok(None)` when the file has no entry for it.
pub fn load_registry_auth(path: &Path, image: &str) -> Result<Option<RegistryAuth>, RuntimeError> {
    let text = std::fs::read_to_string(path).map_err(|error| RuntimeError::DockerConfig {
        path: path.to_owned(),
        reason: error.to_string(),
    })?;
    parse_docker_config(&text, &registry_of_image(image)).map_err(|reason| {
        RuntimeError::DockerConfig {
            path: path.to_owned(),
            reason,
        }
    })
}

/// The credentials bollard sends with a pull.
pub(crate) fn docker_credentials(auth: &RegistryAuth) -> DockerCredentials {
    DockerCredentials {
        username: Some(auth.username.clone()),
        password: Some(auth.password.clone()),
        serveraddress: auth.server.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(user_password: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(user_password)
    }

    #[test]
    fn image_registry_is_docker_hub_unless_first_component_is_a_host() {
        assert_eq!(registry_of_image("busybox:latest"), "docker.io");
        assert_eq!(registry_of_image("library/busybox"), "docker.io");
        assert_eq!(registry_of_image("user/app:1"), "docker.io");
        assert_eq!(
            registry_of_image("registry.example.com/a/b:tag"),
            "registry.example.com"
        );
        assert_eq!(registry_of_image("registry:5000/a/b"), "registry:5000");
        assert_eq!(registry_of_image("localhost/app"), "localhost");
    }

    #[test]
    fn config_json_auth_field_decodes_user_and_password() {
        let text = format!(
            r#"{{"auths": {{"registry:5000": {{"auth": "{}"}}}}}}"#,
            encoded("alice:s3cr:et")
        );
        let auth = parse_docker_config(&text, "registry:5000")
            .unwrap()
            .unwrap();
        assert_eq!(auth.username, "alice");
        assert_eq!(auth.password, "s3cr:et");
        assert_eq!(auth.server.as_deref(), Some("registry:5000"));
    }

    #[test]
    fn docker_hub_entry_matches_under_its_legacy_address() {
        let text = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}}}}}"#,
            encoded("bob:pw")
        );
        let auth = parse_docker_config(&text, &registry_of_image("bob/app"))
            .unwrap()
            .unwrap();
        assert_eq!(auth.username, "bob");
        assert_eq!(auth.server.as_deref(), Some("https://index.docker.io/v1/"));
    }

    #[test]
    fn legacy_dockercfg_has_registries_at_top_level() {
        let text = format!(
            r#"{{"https://registry.example.com": {{"auth": "{}", "email": "x@y"}}}}"#,
            encoded("carol:pw")
        );
        let auth = parse_docker_config(&text, "registry.example.com")
            .unwrap()
            .unwrap();
        assert_eq!(
            (auth.username.as_str(), auth.password.as_str()),
            ("carol", "pw")
        );
    }

    #[test]
    fn username_and_password_fields_are_accepted() {
        let text = r#"{"auths": {"r.example": {"username": "dave", "password": "pw"}}}"#;
        let auth = parse_docker_config(text, "r.example").unwrap().unwrap();
        assert_eq!(
            (auth.username.as_str(), auth.password.as_str()),
            ("dave", "pw")
        );
    }

    #[test]
    fn missing_registry_entry_gives_none() {
        let text = r#"{"auths": {"other.example": {"username": "u", "password": "p"}}}"#;
        assert_eq!(parse_docker_config(text, "r.example").unwrap(), None);
    }

    #[test]
    fn malformed_auth_is_an_error_without_the_secret() {
        let text = r#"{"auths": {"r.example": {"auth": "!!not-base64!!"}}}"#;
        let error = parse_docker_config(text, "r.example").unwrap_err();
        assert!(
            error.contains("r.example") && error.contains("base64"),
            "{error}"
        );
        assert!(!error.contains("not-base64"), "{error}");
        let text = format!(
            r#"{{"auths": {{"r.example": {{"auth": "{}"}}}}}}"#,
            encoded("nocolon")
        );
        let error = parse_docker_config(&text, "r.example").unwrap_err();
        assert!(!error.contains("nocolon"), "{error}");
    }

    #[test]
    fn invalid_json_is_an_error() {
        assert!(parse_docker_config("{", "r.example")
            .unwrap_err()
            .contains("JSON"));
    }

    #[test]
    fn loading_a_missing_file_names_the_file() {
        let error =
            load_registry_auth(Path::new("/nonexistent/.dockercfg"), "busybox").unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/.dockercfg"),
            "{error}"
        );
    }
}
