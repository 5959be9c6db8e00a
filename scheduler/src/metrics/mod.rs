//! Prometheus metrics of the service, exposed at `/metrics` in OpenMetrics or the Prometheus
//! text format 0.0.4, as the scraper prefers ([`exposition`]).
//!
//! One [`Metrics`] value is created at start-up and shared (`Arc`) by the scheduler core, the
//! callback worker and the HTTP layer. Besides our own `eremetic_*` families, Eremetic's
//! `scheduler_*` series keep their exact names so that existing dashboards keep working.

pub mod exposition;

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub use exposition::{negotiate, EremeticCounter, Format};

/// Eremetic's counters, exposed under their bare names ([`EremeticCounter`]).
pub const EREMETIC_COUNTERS: &[&str] = &[
    "scheduler_tasks_created",
    "scheduler_tasks_launched",
    "scheduler_tasks_terminated",
    "scheduler_tasks_delayed",
];

/// Labels of the per-state task gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// The state name (`TASK_RUNNING`...).
    pub state: String,
}

/// Labels of Eremetic's terminated counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TerminatedLabels {
    /// The terminal state name.
    pub status: String,
    /// `retry` when the task is relaunched, `final` otherwise.
    pub sequence: String,
}

/// Labels of the HTTP request histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route's name (`AddTask`, `Status`, `ListTasks`...), `NotFound` for unknown paths.
    pub route: String,
    /// The HTTP method.
    pub method: String,
    /// The response status code.
    pub status: u16,
}

/// Labels of the internal HTTP errors counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// What failed (`disk_full`, `database_corrupt`, `store_closed`, `database`, `other`).
    pub kind: String,
}

/// Labels of the callback counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `delivered`, `retried` or `abandoned`.
    pub outcome: String,
}

/// All metrics of the service.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Tasks by current state.
    pub tasks: Family<StateLabels, Gauge>,
    /// Tasks waiting in the queue.
    pub queue_depth: Gauge,
    /// Accepted submissions.
    pub submissions: Counter,
    /// Submissions refused because the queue was full.
    pub submissions_queue_full: Counter,
    /// Seconds from submission (or requeue) to the container running.
    pub launch_latency: Histogram,
    /// HTTP requests by route, method and status, in seconds.
    pub http_requests: Family<HttpLabels, Histogram>,
    /// HTTP requests answered 500 by a failure inside the server, by kind of failure.
    pub http_internal_errors: Family<KindLabels, Counter>,
    /// Callback deliveries by outcome.
    pub callbacks: Family<OutcomeLabels, Counter>,
    /// Eremetic's `scheduler_tasks_launched`.
    pub tasks_launched: EremeticCounter,
    /// Eremetic's `scheduler_tasks_terminated{status,sequence}`.
    pub tasks_terminated: Family<TerminatedLabels, EremeticCounter>,
    /// Eremetic's `scheduler_tasks_delayed`: there, offer cycles in which no offer fitted the
    /// task at the head of the queue, and requeues. Here (no offers): each task that could not
    /// start on the dispatcher's first pass after it was queued (no room for it, or room
    /// reserved for an older waiting task), counted once per stay in the queue, and each
    /// return to the queue with a back-off (a retried attempt, an unreachable Docker engine).
    pub tasks_delayed: EremeticCounter,
    /// Eremetic's `scheduler_tasks_running`.
    pub tasks_running: Gauge,
    /// Mesos offers by outcome: `received`, `used` (accepted with launches), `declined`.
    pub mesos_offers: Family<OutcomeLabels, Counter>,
    /// Mesos status updates received, by Mesos state (`TASK_RUNNING`...).
    pub mesos_updates: Family<StateLabels, Counter>,
    /// Subscriptions to the Mesos master by outcome: `subscribed`, `failed`.
    pub mesos_subscriptions: Family<OutcomeLabels, Counter>,
    /// Reconciliation requests sent to the Mesos master.
    pub mesos_reconciliations: Counter,
    /// 1 while subscribed to a Mesos master.
    pub mesos_connected: Gauge,
    /// Launched runs the current explicit reconciliation asked about that the master has
    /// not answered yet (0 once it is complete).
    pub mesos_reconcile_unanswered: Gauge,
    /// Seconds from receiving a Mesos status update to sending its ACKNOWLEDGE (after the
    /// change is committed; updates with nothing to store are acknowledged at once).
    pub mesos_ack_latency: Histogram,
    /// Tasks launched on Mesos: `TaskInfo`s in ACCEPT calls the master took.
    pub mesos_launches: Counter,
    /// Subscriptions to the Mesos master after the first one (the connection was lost, the
    /// leader changed or the framework was removed).
    pub mesos_reconnects: Counter,
}

/// Acknowledgements go out within milliseconds of the commit: 100 µs .. ~52 s.
fn ack_latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Counts `count` Mesos offers with `outcome`.
    pub fn mesos_offers(&self, outcome: &str, count: u64) {
        self.mesos_offers
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc_by(count);
    }

    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            registry: Mutex::new(Registry::default()),
            tasks: Family::default(),
            queue_depth: Gauge::default(),
            submissions: Counter::default(),
            submissions_queue_full: Counter::default(),
            launch_latency: latency_histogram(),
            http_requests: Family::new_with_constructor(latency_histogram),
            http_internal_errors: Family::default(),
            callbacks: Family::default(),
            tasks_launched: EremeticCounter::default(),
            tasks_terminated: Family::default(),
            tasks_delayed: EremeticCounter::default(),
            tasks_running: Gauge::default(),
            mesos_offers: Family::default(),
            mesos_updates: Family::default(),
            mesos_subscriptions: Family::default(),
            mesos_reconciliations: Counter::default(),
            mesos_connected: Gauge::default(),
            mesos_reconcile_unanswered: Gauge::default(),
            mesos_ack_latency: ack_latency_histogram(),
            mesos_launches: Counter::default(),
            mesos_reconnects: Counter::default(),
        };
        let ours = registry.sub_registry_with_prefix("eremetic");
        ours.register("tasks", "Tasks by current state", metrics.tasks.clone());
        ours.register(
            "queue_depth",
            "Tasks waiting in the queue",
            metrics.queue_depth.clone(),
        );
        ours.register(
            "submissions",
            "Accepted task submissions",
            metrics.submissions.clone(),
        );
        ours.register(
            "submissions_queue_full",
            "Submissions refused because the queue was full",
            metrics.submissions_queue_full.clone(),
        );
        ours.register(
            "launch_latency_seconds",
            "Time from queueing to the container running",
            metrics.launch_latency.clone(),
        );
        ours.register(
            "http_request_duration_seconds",
            "HTTP requests by route, method and status",
            metrics.http_requests.clone(),
        );
        ours.register(
            "http_internal_errors",
            "HTTP requests answered 500 by a failure inside the server, by kind",
            metrics.http_internal_errors.clone(),
        );
        ours.register(
            "callbacks",
            "Callback deliveries by outcome",
            metrics.callbacks.clone(),
        );
        ours.register(
            "mesos_offers",
            "Mesos offers by outcome (received, used, declined)",
            metrics.mesos_offers.clone(),
        );
        ours.register(
            "mesos_updates",
            "Mesos status updates received, by Mesos state",
            metrics.mesos_updates.clone(),
        );
        ours.register(
            "mesos_subscriptions",
            "Subscriptions to the Mesos master by outcome (subscribed, failed)",
            metrics.mesos_subscriptions.clone(),
        );
        ours.register(
            "mesos_reconciliations",
            "Reconciliation requests sent to the Mesos master",
            metrics.mesos_reconciliations.clone(),
        );
        ours.register(
            "mesos_connected",
            "1 while subscribed to a Mesos master",
            metrics.mesos_connected.clone(),
        );
        ours.register(
            "mesos_reconcile_unanswered",
            "Launched runs the current reconciliation asked about and the master has not \
             answered yet",
            metrics.mesos_reconcile_unanswered.clone(),
        );
        ours.register(
            "mesos_acknowledgement_latency_seconds",
            "Time from receiving a Mesos status update to sending its acknowledgement",
            metrics.mesos_ack_latency.clone(),
        );
        ours.register(
            "mesos_launches",
            "Tasks launched on Mesos (TaskInfos in ACCEPT calls the master took)",
            metrics.mesos_launches.clone(),
        );
        ours.register(
            "mesos_reconnects",
            "Subscriptions to the Mesos master after the first one",
            metrics.mesos_reconnects.clone(),
        );
        let compat = registry.sub_registry_with_prefix("scheduler");
        compat.register(
            "tasks_created",
            "Tasks enqueued",
            EremeticCounter::sharing(&metrics.submissions),
        );
        compat.register(
            "tasks_launched",
            "Tasks launched",
            metrics.tasks_launched.clone(),
        );
        compat.register(
            "tasks_terminated",
            "Tasks terminated",
            metrics.tasks_terminated.clone(),
        );
        compat.register(
            "tasks_delayed",
            "Tasks that had to wait for resources or were put back in the queue",
            metrics.tasks_delayed.clone(),
        );
        compat.register(
            "tasks_running",
            "Tasks running",
            metrics.tasks_running.clone(),
        );
        compat.register(
            "queue_size",
            "Tasks waiting in the queue",
            metrics.queue_depth.clone(),
        );
        *metrics
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = registry;
        metrics
    }

    /// The gauge of tasks in `state`.
    pub fn tasks_in(&self, state: crate::task::TaskState) -> Gauge {
        self.tasks
            .get_or_create(&StateLabels {
                state: state.as_str().to_owned(),
            })
            .clone()
    }

    /// Counts a task that ended for good in `state` (Eremetic's `sequence="final"`).
    pub fn tasks_terminated_final(&self, state: crate::task::TaskState) {
        self.terminated(state, "final");
    }

    /// Counts a failed attempt that is retried (Eremetic's `sequence="retry"`).
    pub fn tasks_terminated_retry(&self, state: crate::task::TaskState) {
        self.terminated(state, "retry");
    }

    fn terminated(&self, state: crate::task::TaskState, sequence: &str) {
        self.tasks_terminated
            .get_or_create(&TerminatedLabels {
                status: state.as_str().to_owned(),
                sequence: sequence.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &registry);
        text
    }

    /// The exposition in `format`.
    pub fn render_as(&self, format: Format) -> String {
        match format {
            Format::OpenMetrics => self.render(),
            Format::Text004 => exposition::to_text_004(&self.render(), EREMETIC_COUNTERS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskState;

    #[test]
    fn render_includes_our_and_eremetic_families() {
        let metrics = Metrics::new();
        metrics.submissions.inc();
        metrics.tasks_in(TaskState::Running).set(2);
        for format in [Format::OpenMetrics, Format::Text004] {
            let text = metrics.render_as(format);
            assert!(text.contains("\neremetic_submissions_total 1\n"), "{text}");
            assert!(text.contains("\nscheduler_tasks_created 1\n"), "{text}");
            assert!(text.contains("\nscheduler_tasks_delayed 0\n"), "{text}");
            assert!(
                text.contains("eremetic_tasks{state=\"TASK_RUNNING\"} 2"),
                "{text}"
            );
        }
    }
}
