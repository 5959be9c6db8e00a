//! Compatibility with Eremetic's clients at the HTTP layer: `/metrics` in the format the
//! scraper asks for with Eremetic's series names, paths with repeated slashes, and host names
//! on a server the operator opened to the network. The real router served on 127.0.0.1:0, a
//! real HTTP client, and the in-memory fake of the `TaskService`.

// Test helpers outside `#[test]` functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

// Shared with `http_api.rs`, which uses all of them.
#[allow(dead_code)]
#[path = "http_api/fake.rs"]
mod fake;
#[allow(dead_code)]
#[path = "http_api/harness.rs"]
mod harness;

use std::collections::HashMap;

use harness::{config, valid_v1, Server};
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;

// ---------------------------------------------------------------------------------------------
// `/metrics`.

/// What a scrape looks like to a parser: the declared type of every family and the samples.
#[derive(Debug, Default)]
struct Exposition {
    types: HashMap<String, String>,
    samples: HashMap<String, f64>,
}

/// The family a sample belongs to, given the declared families (histograms add suffixes).
fn family_of<'a>(sample: &'a str, types: &HashMap<String, String>) -> Option<&'a str> {
    if types.contains_key(sample) {
        return Some(sample);
    }
    ["_bucket", "_sum", "_count", "_total", "_created"]
        .iter()
        .filter_map(|suffix| sample.strip_suffix(suffix))
        .find(|family| types.contains_key(*family))
}

/// Parses a scrape line by line under the rules of `format` (`"0.0.4"` or `"openmetrics"`),
/// failing on anything the respective Prometheus parser would refuse in what we emit: a sample
/// before its family's `# TYPE`, a type the format does not have, a counter sample not named
/// as the format requires, `# EOF`/`# UNIT` in 0.0.4 or a missing `# EOF` in OpenMetrics.
fn parse(text: &str, format: &str) -> Exposition {
    let openmetrics = format == "openmetrics";
    let valid_types: &[&str] = if openmetrics {
        &[
            "counter",
            "gauge",
            "histogram",
            "unknown",
            "info",
            "summary",
        ]
    } else {
        &["counter", "gauge", "histogram", "untyped", "summary"]
    };
    let mut exposition = Exposition::default();
    let mut ended = false;
    for line in text.lines() {
        assert!(!ended, "{format}: {line:?} after # EOF");
        if line == "# EOF" {
            assert!(openmetrics, "0.0.4 has no # EOF");
            ended = true;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                valid_types.contains(&kind),
                "{format}: type {kind} in {line:?}"
            );
            exposition.types.insert(name.to_owned(), kind.to_owned());
        } else if line.starts_with("# UNIT ") {
            assert!(openmetrics, "0.0.4 has no # UNIT: {line:?}");
        } else if !line.starts_with("# HELP ") {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            let family = family_of(name, &exposition.types)
                .unwrap_or_else(|| panic!("{format}: sample {name} before its # TYPE"));
            let kind = exposition.types[family].as_str();
            match (kind, openmetrics) {
                ("counter", true) => assert_eq!(name, format!("{family}_total"), "{line}"),
                ("counter" | "gauge" | "unknown" | "untyped", _) => {
                    assert_eq!(name, family, "{format}: {line}")
                }
                _ => {}
            }
            exposition
                .samples
                .insert(series.to_owned(), value.parse().unwrap());
        }
    }
    assert_eq!(ended, openmetrics, "{format}: # EOF at the end");
    exposition
}

async fn scrape(server: &Server, accept: Option<&str>) -> (String, String) {
    let mut request = server.client.get(server.url("/metrics"));
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["vary"], "Accept");
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    (content_type, response.text().await.unwrap())
}

/// Eremetic's four counters, by their exact names, in both formats.
const EREMETIC_COUNTERS: [&str; 4] = [
    "scheduler_tasks_created",
    "scheduler_tasks_launched",
    "scheduler_tasks_terminated",
    "scheduler_tasks_delayed",
];

#[tokio::test]
async fn metrics_answer_text_0_0_4_or_openmetrics_as_the_scraper_prefers_with_eremetic_names() {
    let server = Server::start(config()).await;
    // The scheduler core counts; the fake service behind this router does not.
    server.metrics.submissions.inc();
    server.metrics.tasks_delayed.inc();
    server
        .metrics
        .tasks_terminated_final(eremetic::task::TaskState::Finished);

    // Prometheus before 2.5, agents, curl: the text format Eremetic served.
    for accept in [
        None,
        Some("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
        Some("*/*"),
    ] {
        let (content_type, text) = scrape(&server, accept).await;
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        let exposition = parse(&text, "0.0.4");
        for name in EREMETIC_COUNTERS {
            assert_eq!(exposition.types[name], "counter", "{name} in\n{text}");
        }
        assert_eq!(exposition.samples["scheduler_tasks_created"], 1.0);
        assert_eq!(exposition.samples["scheduler_tasks_delayed"], 1.0);
        assert_eq!(exposition.samples["eremetic_submissions_total"], 1.0);
        assert_eq!(
            exposition.samples[r#"scheduler_tasks_terminated{status="TASK_FINISHED",sequence="final"}"#],
            1.0
        );
    }

    // Prometheus 2.5 and later.
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                      version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (content_type, text) = scrape(&server, Some(prometheus)).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let exposition = parse(&text, "openmetrics");
    for name in EREMETIC_COUNTERS {
        assert_eq!(exposition.types[name], "unknown", "{name} in\n{text}");
    }
    assert_eq!(exposition.samples["scheduler_tasks_created"], 1.0);
    assert_eq!(exposition.samples["scheduler_tasks_delayed"], 1.0);
    assert_eq!(exposition.samples["eremetic_submissions_total"], 1.0);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Paths with repeated slashes.

#[tokio::test]
async fn repeated_slashes_redirect_to_the_clean_path_keeping_the_query() {
    let server = Server::start(config()).await;
    let manual = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // `EREMETIC_URL=http://host:port/` makes naive clients send `//api/v1/task`.
    let response = manual
        .get(server.url("//api/v1/task?state=queued"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers()[LOCATION], "/api/v1/task?state=queued");
    let response = manual
        .get(server.url("/api//v1///task/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers()[LOCATION], "/api/v1/task");
    let response = manual
        .post(server.url("//api/v1/task"))
        .json(&valid_v1())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()[LOCATION], "/api/v1/task");

    // A client that follows redirects reaches the routes: the list, and the submission with
    // its body.
    let listed = server.get("//api/v1/task").await;
    assert_eq!(listed.status(), StatusCode::OK);
    let submitted = server.post_json("//api/v1/task", &valid_v1()).await;
    assert_eq!(submitted.status(), StatusCode::ACCEPTED);
    assert_eq!(server.fake.lock().submissions.len(), 1);
    server.shutdown().await;
}
