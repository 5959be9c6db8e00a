//! HTTP framework authentication (`--authenticate_http_frameworks` with the
//! Basic authenticator): libprocess' `BasicAuthenticatorProcess::authenticate`
//! (`3rdparty/libprocess/src/authenticator.cpp`), run on the route before
//! the handler, and the principal rules of `Master::Http::scheduler` and
//! `validation::scheduler::call::validate`. Pure functions.

use std::collections::BTreeMap;

use base64::Engine as _;

/// `DEFAULT_HTTP_FRAMEWORK_AUTHENTICATION_REALM` (`src/master/constants.hpp`),
/// the realm of `/api/v1/scheduler`.
pub(crate) const SCHEDULER_REALM: &str = "mesos-master-scheduler";

/// The body of libprocess' `Unauthorized` response.
pub(crate) const UNAUTHORIZED_BODY: &str = "401 Unauthorized.";

/// The authenticated principal, or `None` when the request must get 401:
/// no `Authorization`, not exactly `Basic <base64>` (split on single
/// spaces), undecodable, not exactly `principal:secret` (a secret holding
/// a colon never matches, as the split gives three parts), or a principal
/// or secret not in `credentials`.
pub(crate) fn basic_principal(
    credentials: &BTreeMap<String, String>,
    authorization: Option<&[u8]>,
) -> Option<String> {
    let header = std::str::from_utf8(authorization?).ok()?;
    let components: Vec<&str> = header.split(' ').collect();
    let [scheme, encoded] = components.as_slice() else {
        return None;
    };
    if *scheme != "Basic" {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let parts: Vec<&str> = decoded.split(':').collect();
    let [principal, secret] = parts.as_slice() else {
        return None;
    };
    let known = credentials.get(*principal)?;
    (known == secret).then(|| (*principal).to_owned())
}

/// The text of the principal mismatch error, for SUBSCRIBE (inside "Failed
/// to validate scheduler::Call: ") and for other calls (alone).
pub(crate) fn principal_mismatch(authenticated: &str, declared: &str) -> String {
    format!(
        "Authenticated principal '{authenticated}' does not match principal '{declared}' \
         set in `FrameworkInfo`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> BTreeMap<String, String> {
        BTreeMap::from([("fw".to_owned(), "s3cret".to_owned())])
    }

    fn basic(text: &str) -> Vec<u8> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        format!("Basic {encoded}").into_bytes()
    }

    #[test]
    fn right_principal_and_secret_authenticate() {
        let header = basic("fw:s3cret");
        assert_eq!(
            basic_principal(&credentials(), Some(&header)),
            Some("fw".to_owned())
        );
    }

    #[test]
    fn missing_wrong_or_malformed_credentials_do_not() {
        let wrong_secret = basic("fw:nope");
        let unknown = basic("other:s3cret");
        let colon = basic("fw:s3cret:x");
        let double_space = format!(
            "Basic  {}",
            &String::from_utf8(basic("fw:s3cret")).unwrap()[6..]
        );
        for header in [
            None,
            Some(wrong_secret.as_slice()),
            Some(unknown.as_slice()),
            Some(colon.as_slice()),
            Some(double_space.as_bytes()),
            Some(b"Bearer abc".as_slice()),
            Some(b"Basic !!!".as_slice()),
        ] {
            assert_eq!(basic_principal(&credentials(), header), None, "{header:?}");
        }
    }
}
