//! Route names (Eremetic's Prometheus labels) and the request metrics middleware.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::error::InternalErrorKind;
use crate::metrics::{HttpLabels, KindLabels, Metrics};

/// The v1 prefix; v0 routes are the same paths without it.
pub(crate) const V1_PREFIX: &str = "/api/v1";

/// The name of the route a request matched, as Eremetic labels its metrics (v0 and v1 routes
/// share names). `matched` is the route pattern (`/api/v1/task/{id}`), `None` when no route
/// matched (`NotFound`); a known path with a method it does not serve is `MethodNotAllowed`.
pub(crate) fn route_name(matched: Option<&str>, method: &Method) -> &'static str {
    let Some(pattern) = matched else {
        return "NotFound";
    };
    let api_path = pattern.strip_prefix(V1_PREFIX).unwrap_or(pattern);
    let is =
        |wanted: &Method| method == wanted || (wanted == Method::GET && method == Method::HEAD);
    match api_path {
        "/task" if is(&Method::POST) => "AddTask",
        "/task" if is(&Method::GET) => "ListRunningTasks",
        "/task/{id}" if is(&Method::GET) => "Status",
        "/task/{id}" if is(&Method::DELETE) => "Delete",
        "/task/{id}/kill" if is(&Method::POST) => "Kill",
        "/task/{id}/stdout" if is(&Method::GET) => "STDOUT",
        "/task/{id}/stderr" if is(&Method::GET) => "STDERR",
        "/version" if is(&Method::GET) => "Version",
        "/events" if pattern != api_path && is(&Method::GET) => "Events",
        "/" if is(&Method::GET) => "Index",
        "/metrics" if is(&Method::GET) => "Metrics",
        "/openapi.yaml" if pattern != api_path && is(&Method::GET) => "OpenAPI",
        "/cluster" if is(&Method::GET) => "Cluster",
        "/web/task/{id}" if is(&Method::GET) => "TaskPage",
        "/web/task/{id}/usage" if is(&Method::GET) => "Usage",
        "/static/{file}" if is(&Method::GET) => "Static",
        _ => "MethodNotAllowed",
    }
}

/// The method as a label; unusual methods are folded into `OTHER` so that clients cannot
/// create label values at will.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Middleware: observes every request in `http_requests` by route name, method and status.
/// Streaming responses (logs, events) are observed when their headers are sent.
pub(crate) async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = route_name(matched.as_ref().map(MatchedPath::as_str), request.method());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let labels = HttpLabels {
        route: route.to_owned(),
        method: method.to_owned(),
        status: response.status().as_u16(),
    };
    metrics
        .http_requests
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    if let Some(InternalErrorKind(kind)) = response.extensions().get::<InternalErrorKind>() {
        let labels = KindLabels {
            kind: (*kind).to_owned(),
        };
        metrics.http_internal_errors.get_or_create(&labels).inc();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_and_description_routes_have_their_own_names() {
        let name = |path: &str| route_name(Some(path), &Method::GET);
        assert_eq!(name("/api/v1/openapi.yaml"), "OpenAPI");
        assert_eq!(name("/cluster"), "Cluster");
        assert_eq!(name("/web/task/{id}"), "TaskPage");
        assert_eq!(name("/web/task/{id}/usage"), "Usage");
        assert_eq!(name("/static/{file}"), "Static");
    }

    #[test]
    fn v0_and_v1_routes_share_eremetic_names() {
        for prefix in ["", V1_PREFIX] {
            let path = |suffix: &str| format!("{prefix}{suffix}");
            assert_eq!(route_name(Some(&path("/task")), &Method::POST), "AddTask");
            assert_eq!(
                route_name(Some(&path("/task")), &Method::GET),
                "ListRunningTasks"
            );
            assert_eq!(
                route_name(Some(&path("/task/{id}")), &Method::GET),
                "Status"
            );
            assert_eq!(
                route_name(Some(&path("/task/{id}")), &Method::DELETE),
                "Delete"
            );
            assert_eq!(
                route_name(Some(&path("/task/{id}/kill")), &Method::POST),
                "Kill"
            );
            assert_eq!(
                route_name(Some(&path("/task/{id}/stdout")), &Method::GET),
                "STDOUT"
            );
            assert_eq!(
                route_name(Some(&path("/task/{id}/stderr")), &Method::GET),
                "STDERR"
            );
            assert_eq!(route_name(Some(&path("/version")), &Method::GET), "Version");
        }
    }

    #[test]
    fn other_routes_are_named_too() {
        assert_eq!(route_name(Some("/"), &Method::GET), "Index");
        assert_eq!(route_name(Some("/metrics"), &Method::GET), "Metrics");
        assert_eq!(route_name(Some("/api/v1/events"), &Method::GET), "Events");
        assert_eq!(
            route_name(Some("/events"), &Method::GET),
            "MethodNotAllowed"
        );
        assert_eq!(route_name(None, &Method::GET), "NotFound");
        assert_eq!(
            route_name(Some("/api/v1/task"), &Method::PUT),
            "MethodNotAllowed"
        );
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let custom = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&custom), "OTHER");
    }
}
