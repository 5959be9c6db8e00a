//! The delivery worker: drains the outbox, retries with backoff, abandons at `give_up_at`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use reqwest::Client;
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::delivery::{attempt, build_client, loggable_url, Failure};
use super::{Backoff, CallbackError};
use crate::metrics::{Metrics, OutcomeLabels};
use crate::outbox::{Outbox, OutboxError, PendingCallback};
use crate::task::TaskId;

/// The default bound of one delivery attempt (connecting and the whole exchange).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many callbacks are delivered at the same time, at most.
pub const MAX_IN_FLIGHT: usize = 16;

/// How many due callbacks one pass fetches.
const BATCH_SIZE: usize = 64;

/// The pause after an outbox failure, so that a broken store is not hammered.
const OUTBOX_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The longest sleep without looking at the outbox, so that rows written without a
/// notification (by another process, or before a restart) are still found.
const MAX_IDLE: Duration = Duration::from_secs(60);

/// One task's deliveries in flight: the task and whether the outbox recorded every outcome.
type Delivery<'a> = std::pin::Pin<Box<dyn Future<Output = (TaskId, bool)> + Send + 'a>>;

/// What to do with a callback after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Record the failure and try again at the given instant.
    Retry { attempts: u32, at: OffsetDateTime },
    /// Give up: the next attempt would come after `give_up_at`, or retrying cannot help.
    Abandon { attempts: u32 },
}

/// The decision after the `attempts`-th attempt (counting the failed one) failed at `now`.
fn decide(
    attempts: u32,
    now: OffsetDateTime,
    give_up_at: OffsetDateTime,
    backoff: Backoff,
    permanent: bool,
) -> Decision {
    let next = time::Duration::try_from(backoff.delay(attempts))
        .ok()
        .and_then(|delay| now.checked_add(delay));
    match next {
        Some(at) if !permanent && at < give_up_at => Decision::Retry { attempts, at },
        _ => Decision::Abandon { attempts },
    }
}

/// How long to sleep when the earliest pending callback is due at `next_due`.
fn idle_time(now: OffsetDateTime, next_due: Option<OffsetDateTime>) -> Duration {
    match next_due {
        None => MAX_IDLE,
        Some(due) => Duration::try_from(due - now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_IDLE),
    }
}

/// Due callbacks grouped by task, each group in outbox order, groups in the order of their
/// first callback.
fn group_by_task(callbacks: Vec<PendingCallback>) -> Vec<Vec<PendingCallback>> {
    let mut groups: Vec<Vec<PendingCallback>> = Vec::new();
    let mut index: HashMap<TaskId, usize> = HashMap::new();
    for callback in callbacks {
        match index.get(&callback.task_id) {
            Some(&position) => groups[position].push(callback),
            None => {
                index.insert(callback.task_id.clone(), groups.len());
                groups.push(vec![callback]);
            }
        }
    }
    groups
}

/// Delivers the callbacks of the outbox: POSTs each one, removes it on a 2xx answer, otherwise
/// schedules a retry with exponential backoff until its `give_up_at`, then abandons it.
///
/// Delivery is at-least-once: a callback whose answer was lost, or whose success could not be
/// recorded, is sent again (with the same `X-Eremetic-Delivery` id). Up to [`MAX_IN_FLIGHT`]
/// callbacks are in flight at once, but never two of the same task: a task's callbacks reach
/// the receiver in the order of the status changes. Every failure is logged with the task id,
/// the URL (password redacted) and the reason, never the body, and counted in
/// `eremetic_callbacks_total{outcome}` (`delivered`, `retried`, `abandoned`).
pub struct CallbackWorker {
    outbox: Arc<dyn Outbox>,
    secret: Option<Vec<u8>>,
    client: Client,
    attempt_timeout: Duration,
    backoff: Backoff,
    metrics: Arc<Metrics>,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for CallbackWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret is deliberately left out.
        f.debug_struct("CallbackWorker")
            .field("signed", &self.secret.is_some())
            .field("attempt_timeout", &self.attempt_timeout)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl CallbackWorker {
    /// A worker over `outbox` that signs bodies with `secret` when given, bounds each attempt
    /// by `attempt_timeout` ([`DEFAULT_ATTEMPT_TIMEOUT`] is the service's default) and uses the
    /// default backoff ([`Backoff::DEFAULT`]).
    pub fn new(
        outbox: Arc<dyn Outbox>,
        secret: Option<Vec<u8>>,
        attempt_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<CallbackWorker, CallbackError> {
        Ok(CallbackWorker {
            outbox,
            secret,
            client: build_client(attempt_timeout)?,
            attempt_timeout,
            backoff: Backoff::DEFAULT,
            metrics,
            notify: Arc::new(Notify::new()),
        })
    }

    /// The same worker with another backoff schedule: `base` after the first failure, doubling
    /// up to `cap`.
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> CallbackWorker {
        self.backoff = Backoff { base, cap };
        self
    }

    /// The handle the core wakes the worker with (`notify_one`) after enqueuing a callback.
    pub fn notifier(&self) -> Arc<Notify> {
        Arc::clone(&self.notify)
    }

    /// Delivers callbacks until `shutdown` completes. Work in flight at shutdown is dropped;
    /// those callbacks stay in the outbox and are sent again after the restart.
    ///
    /// Deliveries form a continuous pipeline of up to [`MAX_IN_FLIGHT`] tasks: as soon as one
    /// finishes, the next due callbacks are fetched, so a receiver that hangs until the
    /// attempt timeout holds one slot, not everyone's callbacks.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut in_flight = FuturesUnordered::new();
        let mut busy: HashSet<TaskId> = HashSet::new();
        loop {
            let (added, mut pause) = self.fill(&mut in_flight, &mut busy).await;
            if added == 0 && !in_flight.is_empty() {
                // Everything due is being delivered: a finished delivery wakes the loop.
                pause = pause.max(OUTBOX_ERROR_PAUSE);
            }
            tokio::select! {
                () = &mut shutdown => return,
                Some((task, outbox_ok)) = in_flight.next(), if !in_flight.is_empty() => {
                    busy.remove(&task);
                    if !outbox_ok {
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep(OUTBOX_ERROR_PAUSE) => {}
                        }
                    }
                }
                () = self.notify.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Starts the deliveries of due callbacks of tasks not already being delivered, while
    /// slots are free; returns how many tasks were added and how long the loop may sleep.
    async fn fill<'a>(
        &'a self,
        in_flight: &mut FuturesUnordered<Delivery<'a>>,
        busy: &mut HashSet<TaskId>,
    ) -> (usize, Duration) {
        if in_flight.len() >= MAX_IN_FLIGHT {
            return (0, MAX_IDLE);
        }
        let due = match self.outbox.due(OffsetDateTime::now_utc(), BATCH_SIZE).await {
            Ok(due) => due,
            Err(error) => return (0, self.outbox_failed("fetch due callbacks", &error)),
        };
        let mut added = 0;
        for group in group_by_task(due) {
            if in_flight.len() >= MAX_IN_FLIGHT {
                return (added, MAX_IDLE);
            }
            let Some(task) = group.first().map(|callback| callback.task_id.clone()) else {
                continue;
            };
            if !busy.insert(task.clone()) {
                continue;
            }
            in_flight.push(Box::pin(async move {
                let outbox_ok = self.deliver_in_order(group).await;
                (task, outbox_ok)
            }));
            added += 1;
        }
        let pause = match self.outbox.next_due().await {
            Ok(next_due) => idle_time(OffsetDateTime::now_utc(), next_due),
            Err(error) => self.outbox_failed("find the next due callback", &error),
        };
        (added, pause)
    }

    /// Delivers one task's callbacks one after the other, stopping at the first that is not
    /// delivered (the later ones must wait for it). Returns whether the outbox recorded every
    /// outcome.
    async fn deliver_in_order(&self, group: Vec<PendingCallback>) -> bool {
        for callback in group {
            match self.deliver(&callback).await {
                Ok(true) => {}
                Ok(false) => return true,
                Err(error) => {
                    self.outbox_failed("record a callback outcome", &error);
                    return false;
                }
            }
        }
        true
    }

    /// One attempt and its bookkeeping; `Ok(true)` when delivered.
    async fn deliver(&self, callback: &PendingCallback) -> Result<bool, OutboxError> {
        let secret = self.secret.as_deref();
        match attempt(&self.client, callback, secret, self.attempt_timeout).await {
            Ok(()) => {
                self.outbox.delivered(callback.id).await?;
                self.count("delivered");
                tracing::debug!(
                    task_id = %callback.task_id,
                    url = %loggable_url(&callback.url),
                    attempts = callback.attempts + 1,
                    "callback delivered"
                );
                Ok(true)
            }
            Err(failure) => {
                self.failed(callback, &failure).await?;
                Ok(false)
            }
        }
    }

    /// Schedules the retry of a failed callback, or abandons it.
    async fn failed(
        &self,
        callback: &PendingCallback,
        failure: &Failure,
    ) -> Result<(), OutboxError> {
        let attempts = callback.attempts.saturating_add(1);
        let now = OffsetDateTime::now_utc();
        let url = loggable_url(&callback.url);
        match decide(
            attempts,
            now,
            callback.give_up_at,
            self.backoff,
            failure.permanent,
        ) {
            Decision::Retry { attempts, at } => {
                self.outbox
                    .retry_at(callback.id, attempts, at, &failure.reason)
                    .await?;
                self.count("retried");
                tracing::warn!(
                    task_id = %callback.task_id,
                    url = %url,
                    attempts,
                    retry_in_s = (at - now).as_seconds_f64(),
                    reason = %failure.reason,
                    "callback failed, will retry"
                );
            }
            Decision::Abandon { attempts } => {
                self.outbox.abandon(callback.id, &failure.reason).await?;
                self.count("abandoned");
                tracing::error!(
                    task_id = %callback.task_id,
                    url = %url,
                    attempts,
                    reason = %failure.reason,
                    "callback abandoned"
                );
            }
        }
        Ok(())
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .callbacks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Logs an outbox failure and returns the pause before the next pass.
    fn outbox_failed(&self, action: &str, error: &OutboxError) -> Duration {
        tracing::error!(%error, "callback worker cannot {action}; retrying in {OUTBOX_ERROR_PAUSE:?}");
        OUTBOX_ERROR_PAUSE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    fn pending(id: i64, task: &str) -> PendingCallback {
        PendingCallback {
            id,
            task_id: TaskId::parse(task).unwrap(),
            url: "http://r/".into(),
            body: "{}".into(),
            attempts: 0,
            created_at: at(0),
            give_up_at: at(100),
            next_attempt_at: at(0),
        }
    }

    #[test]
    fn failure_is_retried_after_the_backoff_delay() {
        let decision = decide(3, at(1_000), at(2_000), Backoff::DEFAULT, false);
        assert_eq!(
            decision,
            Decision::Retry {
                attempts: 3,
                at: at(1_004)
            }
        );
    }

    #[test]
    fn failure_is_abandoned_when_the_next_attempt_would_be_too_late() {
        assert_eq!(
            decide(1, at(1_000), at(1_001), Backoff::DEFAULT, false),
            Decision::Abandon { attempts: 1 }
        );
        assert_eq!(
            decide(1, at(1_000), at(500), Backoff::DEFAULT, false),
            Decision::Abandon { attempts: 1 }
        );
    }

    #[test]
    fn permanent_failure_is_abandoned_at_once() {
        assert_eq!(
            decide(1, at(1_000), at(9_000), Backoff::DEFAULT, true),
            Decision::Abandon { attempts: 1 }
        );
    }

    #[test]
    fn idle_time_waits_until_the_next_due_callback_at_most_a_minute() {
        assert_eq!(idle_time(at(10), Some(at(15))), Duration::from_secs(5));
        assert_eq!(idle_time(at(10), Some(at(5))), Duration::ZERO);
        assert_eq!(idle_time(at(10), Some(at(1_000))), MAX_IDLE);
        assert_eq!(idle_time(at(10), None), MAX_IDLE);
    }

    #[test]
    fn grouping_keeps_each_task_in_outbox_order() {
        let groups = group_by_task(vec![
            pending(1, "a"),
            pending(2, "b"),
            pending(3, "a"),
            pending(4, "c"),
            pending(5, "b"),
        ]);
        let ids: Vec<Vec<i64>> = groups
            .iter()
            .map(|group| group.iter().map(|callback| callback.id).collect())
            .collect();
        assert_eq!(ids, [vec![1, 3], vec![2, 5], vec![4]]);
    }
}
