//! Where a leader redirect points.

use reqwest::Url;

/// Where a `307` from `current` points: a protocol-relative `//host:port/path` keeps the
/// current scheme; a location without a path (1.0's `/redirect`, the docs' bare
/// `host:port`) keeps the current path; absolute URLs and absolute paths are used as given.
/// `None` when the location cannot be made into a URL with a host.
pub fn resolve_redirect(current: &str, location: &str) -> Option<String> {
    let base = Url::parse(current).ok()?;
    let location = location.trim();
    if location.is_empty() {
        return None;
    }
    let normalized = if location.contains("://") || location.starts_with('/') {
        location.to_owned()
    } else {
        format!("//{location}")
    };
    let mut target = base.join(&normalized).ok()?;
    target.host_str()?;
    if target.path() == "/" {
        target.set_path(base.path());
    }
    Some(target.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_relative_location_keeps_the_scheme() {
        assert_eq!(
            resolve_redirect(
                "https://m1:5050/api/v1/scheduler",
                "//m2:5050/api/v1/scheduler"
            )
            .as_deref(),
            Some("https://m2:5050/api/v1/scheduler")
        );
    }

    #[test]
    fn location_without_path_keeps_the_current_path() {
        let current = "http://m1:5050/master/api/v1/scheduler";
        assert_eq!(
            resolve_redirect(current, "//m2:5051").as_deref(),
            Some("http://m2:5051/master/api/v1/scheduler")
        );
        assert_eq!(
            resolve_redirect(current, "m3:5050").as_deref(),
            Some("http://m3:5050/master/api/v1/scheduler")
        );
    }

    #[test]
    fn absolute_locations_are_used_as_given() {
        let current = "http://m1:5050/api/v1/scheduler";
        assert_eq!(
            resolve_redirect(current, "https://m2:5050/api/v1/scheduler").as_deref(),
            Some("https://m2:5050/api/v1/scheduler")
        );
        assert_eq!(
            resolve_redirect(current, "/master/api/v1/scheduler").as_deref(),
            Some("http://m1:5050/master/api/v1/scheduler")
        );
        assert_eq!(resolve_redirect(current, ""), None);
        assert_eq!(resolve_redirect("not a url", "//m2:5050"), None);
    }
}
