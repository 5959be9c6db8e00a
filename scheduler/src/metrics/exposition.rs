//! The two text formats of `/metrics` and the choice between them (pure).
//!
//! Scrapers differ: Prometheus 2.5 and later prefer OpenMetrics (`application/openmetrics-text`),
//! Prometheus before 2.5 and many agents (Telegraf, the Datadog agent, plain `curl`) read only
//! the Prometheus text format 0.0.4 (`text/plain; version=0.0.4`), which Eremetic served. The
//! registry encodes OpenMetrics; [`to_text_004`] rewrites it into 0.0.4.
//!
//! Eremetic's counters keep their exact names in both formats (`scheduler_tasks_created`, not
//! `scheduler_tasks_created_total`), so that existing dashboards find them. OpenMetrics
//! requires the `_total` suffix on counter samples, so in OpenMetrics they are typed `unknown`
//! ([`EremeticCounter`]), which allows any sample name; in 0.0.4 they are typed `counter`, as
//! Eremetic's Go client exposed them. PromQL's `rate()` works on both.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::{MetricType, TypedMetric};

/// `Content-Type` of the OpenMetrics answer.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `Content-Type` of the Prometheus text format answer.
pub const TEXT_004_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition format of one scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics text 1.0.0 (ends with `# EOF`).
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Text004,
}

impl Format {
    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Text004 => TEXT_004_CONTENT_TYPE,
        }
    }
}

/// How well one `Accept` media range matches a format: its `q` and its position in the header.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Match {
    q: f32,
    position: usize,
    /// 2: exact type, 1: `type/*`, 0: `*/*`.
    specificity: u8,
}

/// The format for a request's `Accept` header: OpenMetrics when the client names
/// `application/openmetrics-text` and prefers it (higher `q`, or equal `q` and listed first) to
/// the text format; the text format 0.0.4 otherwise, including without `Accept`, for `*/*` and
/// for headers that do not parse.
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text004;
    };
    let mut openmetrics: Option<Match> = None;
    let mut text: Option<Match> = None;
    for (position, range) in accept.split(',').enumerate() {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|param| param.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, value)| value.trim().parse::<f32>().ok());
        let Some(q) = q.filter(|q| q.is_finite()) else {
            continue;
        };
        let candidate = |specificity| Match {
            q,
            position,
            specificity,
        };
        let (om, plain) = match media.as_str() {
            "application/openmetrics-text" => (Some(candidate(2)), None),
            "text/plain" => (None, Some(candidate(2))),
            "application/*" => (Some(candidate(1)), None),
            "text/*" => (None, Some(candidate(1))),
            "*/*" => (Some(candidate(0)), Some(candidate(0))),
            _ => (None, None),
        };
        openmetrics = more_specific(openmetrics, om);
        text = more_specific(text, plain);
    }
    match (openmetrics, text) {
        // Only a client that names OpenMetrics gets it: `*/*` alone keeps Eremetic's format.
        (Some(om), _) if om.specificity == 0 || om.q <= 0.0 => Format::Text004,
        (Some(_), None) => Format::OpenMetrics,
        (Some(om), Some(text))
            if om.q > text.q || (om.q == text.q && om.position < text.position) =>
        {
            Format::OpenMetrics
        }
        _ => Format::Text004,
    }
}

/// The range that decides for a format: the most specific one (RFC 9110, 12.5.1).
fn more_specific(current: Option<Match>, new: Option<Match>) -> Option<Match> {
    match (current, new) {
        (Some(current), Some(new)) if new.specificity > current.specificity => Some(new),
        (None, new) => new,
        (current, _) => current,
    }
}

/// Rewrites the registry's OpenMetrics text into the Prometheus text format 0.0.4:
/// - a `counter` family `x` (samples `x_total`) is declared as `x_total` in `# HELP`/`# TYPE`,
///   as the 0.0.4 format names families after their samples;
/// - `unknown` families are `counter` when listed in `legacy_counters` (Eremetic's counters,
///   see the module documentation), `untyped` otherwise;
/// - `# UNIT` lines, exemplars and the closing `# EOF` are dropped (0.0.4 has none of them).
///
/// Histograms and gauges are written the same way in both formats.
pub fn to_text_004(openmetrics: &str, legacy_counters: &[&str]) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, kind)| *kind == "counter")
        .map(|(name, _)| name)
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if counters.contains(&name) {
                format!("# HELP {name}_total {help}")
            } else {
                line.to_owned()
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            match rest.split_once(' ') {
                Some((name, "counter")) => format!("# TYPE {name}_total counter"),
                Some((name, "unknown")) if legacy_counters.contains(&name) => {
                    format!("# TYPE {name} counter")
                }
                Some((name, "unknown")) => format!("# TYPE {name} untyped"),
                _ => line.to_owned(),
            }
        } else {
            // An exemplar follows the value after ` # `; label values cannot hold ` # {`
            // unescaped, so the cut is safe.
            line.split_once(" # {")
                .map_or_else(|| line.to_owned(), |(sample, _)| sample.to_owned())
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    out
}

/// One of Eremetic's counters: counts like a [`Counter`] (and may share one), but is exposed
/// under its bare name (`scheduler_tasks_created 3`) with type `unknown` in OpenMetrics, which
/// would otherwise add `_total`. [`to_text_004`] types it `counter` again.
#[derive(Debug, Clone, Default)]
pub struct EremeticCounter(Counter);

impl EremeticCounter {
    /// A view of `counter` under Eremetic's name.
    pub fn sharing(counter: &Counter) -> Self {
        EremeticCounter(counter.clone())
    }

    /// Adds one.
    pub fn inc(&self) {
        self.0.inc();
    }

    /// Adds `count`.
    pub fn inc_by(&self, count: u64) {
        self.0.inc_by(count);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl TypedMetric for EremeticCounter {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for EremeticCounter {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        // A gauge sample is the bare name and the value, which is what is wanted here.
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_that_prefer_openmetrics_get_it() {
        for accept in [
            // Prometheus 2.x and 3.x.
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
             version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "application/openmetrics-text",
            "text/plain;q=0.2, application/openmetrics-text;q=0.9",
            "application/openmetrics-text, text/plain",
        ] {
            assert_eq!(negotiate(Some(accept)), Format::OpenMetrics, "{accept}");
        }
    }

    #[test]
    fn everyone_else_gets_the_text_format_0_0_4() {
        for accept in [
            None,
            // Prometheus before 2.5.
            Some("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
            Some("*/*"),
            Some("text/plain"),
            Some("text/plain, application/openmetrics-text"),
            Some("application/openmetrics-text;q=0.4, text/plain;q=0.5"),
            Some("application/openmetrics-text;q=0"),
            Some("application/json"),
            Some("application/openmetrics-text;q=nonsense"),
            Some(""),
        ] {
            assert_eq!(negotiate(accept), Format::Text004, "{accept:?}");
        }
    }

    const OPENMETRICS: &str = "\
# HELP eremetic_submissions Accepted task submissions
# TYPE eremetic_submissions counter
eremetic_submissions_total 2
# HELP eremetic_launch_latency_seconds Time to launch
# TYPE eremetic_launch_latency_seconds histogram
# UNIT eremetic_launch_latency_seconds seconds
eremetic_launch_latency_seconds_sum 0.5
eremetic_launch_latency_seconds_count 1
eremetic_launch_latency_seconds_bucket{le=\"+Inf\"} 1 # {id=\"x\"} 0.5
# HELP scheduler_tasks_created Tasks enqueued
# TYPE scheduler_tasks_created unknown
scheduler_tasks_created 2
# HELP something_else Other
# TYPE something_else unknown
something_else 1
# HELP scheduler_tasks_running Tasks running
# TYPE scheduler_tasks_running gauge
scheduler_tasks_running 0
# EOF
";

    #[test]
    fn text_004_names_families_after_their_samples_and_drops_openmetrics_only_lines() {
        let text = to_text_004(OPENMETRICS, &["scheduler_tasks_created"]);
        assert_eq!(
            text,
            "\
# HELP eremetic_submissions_total Accepted task submissions
# TYPE eremetic_submissions_total counter
eremetic_submissions_total 2
# HELP eremetic_launch_latency_seconds Time to launch
# TYPE eremetic_launch_latency_seconds histogram
eremetic_launch_latency_seconds_sum 0.5
eremetic_launch_latency_seconds_count 1
eremetic_launch_latency_seconds_bucket{le=\"+Inf\"} 1
# HELP scheduler_tasks_created Tasks enqueued
# TYPE scheduler_tasks_created counter
scheduler_tasks_created 2
# HELP something_else Other
# TYPE something_else untyped
something_else 1
# HELP scheduler_tasks_running Tasks running
# TYPE scheduler_tasks_running gauge
scheduler_tasks_running 0
"
        );
    }
}
