//! The core over a backend with a cluster's shape ([`ScriptedBackend`]): placements that
//! arrive later and in batches, placements it cannot store, duplicate and out-of-order status
//! updates, acknowledgements only after the commit (also across a crash), kills repeated
//! until the run ends, reconciliation answers, unique run ids, and the cluster connection.

use std::path::Path;

use eremetic::backend::{BackendEvent, ReportedEnd, RunEnd, RunId, RunStatus};
use eremetic::engine::{EngineConfig, Scheduler};
use eremetic::metrics::Metrics;
use eremetic::service::Submission;
use eremetic::store::{Store, META_FRAMEWORK_ID};
use eremetic::task::Task;
use tokio::sync::Notify;

use super::*;
use crate::engine_support::request;
use crate::engine_support::scripted::{Call, ScriptedBackend};

/// A started core over a scripted backend and a store in a directory.
struct Cluster {
    scheduler: Scheduler,
    store: Store,
    backend: Arc<ScriptedBackend>,
}

impl Cluster {
    async fn start_in(dir: &Path, deaf: bool, config: EngineConfig) -> Cluster {
        let store = Store::open(&dir.join("eremetic.db")).unwrap();
        let backend = Arc::new(ScriptedBackend::new(store.clone(), deaf));
        let scheduler = Scheduler::new(
            store.clone(),
            backend.clone(),
            Arc::new(Metrics::new()),
            Arc::new(Notify::new()),
            config,
        );
        scheduler.start().await.unwrap();
        Cluster {
            scheduler,
            store,
            backend,
        }
    }

    async fn submit(&self, name: &str) -> TaskId {
        self.submit_body(&body(name, 1.0, "")).await
    }

    async fn submit_body(&self, body: &str) -> TaskId {
        let submission = Submission {
            task: request(body),
            idempotency_key: None,
        };
        self.scheduler.submit(submission).await.unwrap().id
    }

    async fn task(&self, id: &TaskId) -> Task {
        self.scheduler.get(id).await.unwrap().unwrap()
    }

    async fn wait_until(&self, id: &TaskId, what: &str, done: impl Fn(&Task) -> bool) -> Task {
        let reached = tokio::time::timeout(DEADLINE, async {
            loop {
                let task = self.task(id).await;
                if done(&task) {
                    return task;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        match reached {
            Ok(task) => task,
            Err(_) => {
                let task = self.task(id).await;
                panic!("{id} did not reach {what}: {:?}", history(&task))
            }
        }
    }

    async fn wait_state(&self, id: &TaskId, state: TaskState) -> Task {
        self.wait_until(id, state.as_str(), |task| {
            task.current_state() == Some(state)
        })
        .await
    }

    /// Waits until the backend was offered `run`.
    async fn offered(&self, run: &RunId) {
        let backend = self.backend.clone();
        let run = run.clone();
        eventually("the run to be offered as demand", || {
            let (backend, run) = (backend.clone(), run.clone());
            async move { backend.demand().contains(&run) }
        })
        .await;
    }

    async fn launched(&self, run: &RunId) {
        let backend = self.backend.clone();
        let run = run.clone();
        eventually("the run to be launched", || {
            let (backend, run) = (backend.clone(), run.clone());
            async move { backend.launched().contains(&run) }
        })
        .await;
    }

    /// Places `run` and waits until it is launched.
    async fn place_and_launch(&self, run: &RunId) {
        self.backend.place(run, "agent-1");
        self.launched(run).await;
    }
}

/// A runtime of its own for one life of a core (dropping it is the process dying).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn run(id: &TaskId, attempt: u32) -> RunId {
    RunId::new(id.clone(), attempt)
}

fn exited(code: i32) -> RunStatus {
    RunStatus::Ended(RunEnd::Exited(RunOutcome {
        exit_code: code,
        oom_killed: false,
        signal: None,
    }))
}

fn lost(reason: &str) -> RunStatus {
    RunStatus::Ended(RunEnd::Reported(ReportedEnd {
        state: Lost,
        reason: Some(reason.to_owned()),
        exit_code: None,
        memory_limited: false,
        started: true,
    }))
}

#[tokio::test]
async fn placements_arriving_later_and_in_batches_are_staged_before_each_launch() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_in(dir.path(), false, config()).await;
    let a = cluster.submit("a").await;
    let b = cluster.submit("b").await;
    let c = cluster.submit("c").await;
    cluster.offered(&run(&c, 0)).await;
    assert_eq!(
        cluster.backend.demand(),
        vec![run(&a, 0), run(&b, 0), run(&c, 0)],
        "the demand is the queue in submission order"
    );
    // Nothing is placed at once: every task waits for an offer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(cluster.task(&a).await.current_state(), Some(Queued));

    // A batch of two placements (one offer).
    cluster.backend.place(&run(&b, 0), "agent-2");
    cluster.backend.place(&run(&a, 0), "agent-1");
    cluster.launched(&run(&a, 0)).await;
    cluster.launched(&run(&b, 0)).await;
    let staged = cluster.task(&a).await;
    assert_eq!(history(&staged), vec![Queued, Staging]);
    assert_eq!(staged.agent_id.as_deref(), Some("agent-1"));
    assert_eq!(staged.hostname.as_deref(), Some("agent-1.example"));
    assert_eq!(staged.attempt, Some(0));
    assert_eq!(cluster.task(&c).await.current_state(), Some(Queued));

    // c's placement comes with a later offer.
    cluster.place_and_launch(&run(&c, 0)).await;
    assert_eq!(cluster.task(&c).await.current_state(), Some(Staging));
    cluster.backend.running(&run(&c, 0), None);
    cluster.wait_state(&c, Running).await;
}

#[tokio::test]
async fn a_placement_the_core_cannot_stage_is_abandoned_not_launched() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_in(dir.path(), false, config()).await;
    let killed = cluster.submit("killed").await;
    cluster.offered(&run(&killed, 0)).await;
    cluster.scheduler.kill(&killed).await.unwrap();
    assert_eq!(cluster.task(&killed).await.current_state(), Some(Killed));
    // The offer was matched before the kill reached it.
    cluster.backend.place(&run(&killed, 0), "agent-1");

    // A placement for an attempt that is not the task's next one (a stale offer match).
    let other = cluster.submit("other").await;
    cluster.offered(&run(&other, 0)).await;
    cluster.backend.place(&run(&other, 5), "agent-1");

    let backend = cluster.backend.clone();
    eventually("both placements to be abandoned", || {
        let backend = backend.clone();
        async move { backend.abandoned().len() == 2 }
    })
    .await;
    assert_eq!(
        cluster.backend.abandoned(),
        vec![run(&killed, 0), run(&other, 5)]
    );
    assert!(cluster.backend.launched().is_empty());
    assert_eq!(history(&cluster.task(&killed).await), vec![Queued, Killed]);
    assert_eq!(cluster.task(&other).await.current_state(), Some(Queued));
    // The right placement still works.
    cluster.place_and_launch(&run(&other, 0)).await;
}

#[tokio::test]
async fn duplicate_and_out_of_order_status_updates_are_stored_once_and_all_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_in(dir.path(), false, config()).await;
    let id = cluster.submit("dup").await;
    let first = run(&id, 0);
    cluster.offered(&first).await;
    cluster.place_and_launch(&first).await;
    let token = first.name();
    cluster.backend.running(&first, Some(&token));
    cluster.backend.running(&first, Some(&token));
    cluster.backend.status(&first, exited(0), Some(&token));
    cluster.backend.status(&first, exited(0), Some(&token));
    // A late RUNNING after the end (an agent re-sending an old update).
    cluster.backend.running(&first, Some(&token));
    let backend = cluster.backend.clone();
    eventually("all five updates to be acknowledged", || {
        let backend = backend.clone();
        async move { backend.acks().len() == 5 }
    })
    .await;
    let task = cluster.task(&id).await;
    assert_eq!(history(&task), vec![Queued, Staging, Running, Finished]);
    assert_eq!(task.exit_code, Some(0));
    // The late RUNNING named a run that must not run on: it is stopped.
    assert_eq!(cluster.backend.kills_of(&first).len(), 1);

    // The end before RUNNING (updates reordered in transit): the end is what counts.
    let reordered = cluster.submit("reordered").await;
    let second = run(&reordered, 0);
    cluster.offered(&second).await;
    cluster.place_and_launch(&second).await;
    cluster.backend.status(&second, exited(3), Some("r1"));
    cluster.backend.running(&second, Some("r2"));
    let task = cluster.wait_state(&reordered, Failed).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        history(&cluster.task(&reordered).await),
        vec![Queued, Staging, Failed]
    );
    assert_eq!(task.exit_code, Some(3));
}

#[tokio::test]
async fn an_update_is_acknowledged_only_after_its_change_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_in(dir.path(), false, config()).await;
    let id = cluster.submit("acked").await;
    let first = run(&id, 0);
    cluster.offered(&first).await;
    cluster.place_and_launch(&first).await;
    let token = first.name();
    cluster.backend.running(&first, Some(&token));
    cluster.backend.status(&first, exited(0), Some(&token));
    let backend = cluster.backend.clone();
    eventually("both updates to be acknowledged", || {
        let backend = backend.clone();
        async move { backend.acks().len() == 2 }
    })
    .await;
    assert_eq!(
        cluster.backend.acks(),
        vec![
            (token.clone(), Some(Running)),
            (token.clone(), Some(Finished))
        ],
        "each acknowledgement found its change already in the store"
    );
}

#[test]
fn an_update_whose_acknowledgement_was_lost_in_a_crash_is_stored_once_when_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let before = runtime();
    let (id, token) = before.block_on(async {
        // The backend of this instance never gets to read an acknowledgement: the process
        // dies between the commit and the acknowledgement.
        let cluster = Cluster::start_in(dir.path(), true, config()).await;
        let id = cluster.submit("crash").await;
        let first = run(&id, 0);
        cluster.offered(&first).await;
        cluster.place_and_launch(&first).await;
        cluster.backend.running(&first, None);
        cluster.wait_state(&id, Running).await;
        let token = first.name();
        cluster.backend.status(&first, exited(0), Some(&token));
        cluster.wait_state(&id, Finished).await;
        (id, token)
    });
    drop(before);

    let after = runtime();
    after.block_on(async {
        let cluster = Cluster::start_in(dir.path(), false, config()).await;
        // The cluster delivers the unacknowledged update again.
        cluster
            .backend
            .status(&run(&id, 0), exited(0), Some(&token));
        let backend = cluster.backend.clone();
        eventually("the update sent again to be acknowledged", || {
            let backend = backend.clone();
            async move { !backend.acks().is_empty() }
        })
        .await;
        assert_eq!(cluster.backend.acks(), vec![(token, Some(Finished))]);
        let task = cluster.task(&id).await;
        assert_eq!(history(&task), vec![Queued, Staging, Running, Finished]);
    });
}

#[tokio::test]
async fn a_kill_is_sent_again_until_the_run_ends_and_then_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        kill_grace: Duration::ZERO,
        ..config()
    };
    let cluster = Cluster::start_in(dir.path(), false, config).await;
    let id = cluster.submit("stubborn").await;
    let first = run(&id, 0);
    cluster.offered(&first).await;
    cluster.place_and_launch(&first).await;
    cluster.backend.running(&first, None);
    cluster.wait_state(&id, Running).await;
    cluster.scheduler.kill(&id).await.unwrap();
    assert_eq!(cluster.backend.kills_of(&first).len(), 1, "sent at once");
    // The kill is lost (an agent restarting): it is sent again.
    let backend = cluster.backend.clone();
    let watched = first.clone();
    eventually("the kill to be sent again", || {
        let (backend, watched) = (backend.clone(), watched.clone());
        async move { backend.kills_of(&watched).len() >= 2 }
    })
    .await;
    cluster.backend.status(
        &first,
        RunStatus::Ended(RunEnd::Reported(ReportedEnd {
            state: Killed,
            reason: None,
            exit_code: None,
            memory_limited: false,
            started: true,
        })),
        None,
    );
    let task = cluster.wait_state(&id, Killed).await;
    assert_eq!(task.failure_reason.as_deref(), Some("killed on request"));
    let kills = cluster.backend.kills_of(&first).len();
    // Longer than the resend interval (grace + 5 s): nothing more is sent.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert_eq!(cluster.backend.kills_of(&first).len(), kills);
}

#[test]
fn reconciliation_answers_end_vanished_runs_and_unknown_runs_are_killed() {
    let dir = tempfile::tempdir().unwrap();
    let before = runtime();
    let (vanished, survivor) = before.block_on(async {
        let cluster = Cluster::start_in(dir.path(), false, config()).await;
        let vanished = cluster
            .submit_body(&body("vanished", 1.0, r#""retries":1"#))
            .await;
        let survivor = cluster.submit("survivor").await;
        for id in [&vanished, &survivor] {
            cluster.offered(&run(id, 0)).await;
            cluster.place_and_launch(&run(id, 0)).await;
            cluster.backend.running(&run(id, 0), None);
            cluster.wait_state(id, Running).await;
        }
        (vanished, survivor)
    });
    drop(before);

    let after = runtime();
    after.block_on(async {
        let cluster = Cluster::start_in(dir.path(), false, config()).await;
        let asked: Vec<RunId> = cluster
            .backend
            .calls()
            .into_iter()
            .find_map(|call| match call {
                Call::Reconcile(runs) => Some(runs),
                _ => None,
            })
            .unwrap();
        assert_eq!(asked, vec![run(&vanished, 0), run(&survivor, 0)]);
        // The answers come later, as events.
        cluster
            .backend
            .status(&run(&vanished, 0), RunStatus::Unknown, None);
        cluster.backend.running(&run(&survivor, 0), None);
        // Runs the core did not ask about: an older attempt, and a run of an unknown task.
        cluster.backend.send(BackendEvent::UnknownRun {
            run: run(&survivor, 7),
        });
        cluster.backend.send(BackendEvent::UnknownRun {
            run: run(&unknown_id(), 0),
        });
        // The current run reported as unknown too (a second agent's view): kept.
        cluster.backend.send(BackendEvent::UnknownRun {
            run: run(&survivor, 0),
        });

        let relaunched = cluster
            .wait_until(&vanished, "lost and queued again", |task| {
                task.retry == 1 && task.current_state() == Some(Queued)
            })
            .await;
        assert_eq!(
            history(&relaunched),
            vec![Queued, Staging, Running, Lost, Queued]
        );
        assert!(relaunched
            .failure_reason
            .unwrap_or_default()
            .contains("vanished"));
        // The relaunch is a new run: attempt 1.
        cluster.offered(&run(&vanished, 1)).await;

        let backend = cluster.backend.clone();
        eventually("both unknown runs to be killed", || {
            let (backend, survivor) = (backend.clone(), survivor.clone());
            async move {
                backend.kills_of(&run(&survivor, 7)).len() == 1
                    && backend.kills_of(&run(&unknown_id(), 0)).len() == 1
            }
        })
        .await;
        assert!(cluster.backend.kills_of(&run(&survivor, 0)).is_empty());
        assert_eq!(
            history(&cluster.task(&survivor).await),
            vec![Queued, Staging, Running]
        );
    });
}

#[tokio::test]
async fn every_attempt_has_its_own_run_id_and_a_stale_update_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_in(dir.path(), false, config()).await;
    let id = cluster
        .submit_body(&body("flaky", 1.0, r#""retries":2"#))
        .await;
    for attempt in 0..3 {
        let current = run(&id, attempt);
        cluster.offered(&current).await;
        cluster.place_and_launch(&current).await;
        cluster.backend.running(&current, None);
        cluster
            .wait_until(&id, "the attempt running", |task| {
                task.attempt == Some(attempt) && task.current_state() == Some(Running)
            })
            .await;
        cluster
            .backend
            .status(&current, lost("the agent was removed"), None);
        if attempt < 2 {
            cluster
                .wait_until(&id, "queued again", |task| {
                    task.retry == attempt + 1 && task.current_state() == Some(Queued)
                })
                .await;
        }
    }
    let task = cluster.wait_state(&id, Lost).await;
    assert_eq!(task.retry, 2);
    assert_eq!(
        cluster.backend.launched(),
        vec![run(&id, 0), run(&id, 1), run(&id, 2)],
        "three attempts, three run ids"
    );
    // An update of the first run arriving now changes nothing.
    cluster
        .backend
        .status(&run(&id, 0), exited(0), Some("late"));
    let backend = cluster.backend.clone();
    eventually("the late update to be acknowledged", || {
        let backend = backend.clone();
        async move { backend.acks().iter().any(|(token, _)| token == "late") }
    })
    .await;
    assert_eq!(cluster.task(&id).await.current_state(), Some(Lost));
}

#[tokio::test]
async fn the_framework_id_is_stored_before_acknowledged_and_forgotten_when_the_framework_is_removed(
) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_in(dir.path(), false, config()).await;
    assert_eq!(cluster.backend.started_with(), Some(None));
    let id = cluster
        .submit_body(&body("orphan", 1.0, r#""retries":1"#))
        .await;
    cluster.backend.send(BackendEvent::Disconnected {
        reason: "no leading master".to_owned(),
    });
    let waiting = cluster
        .wait_until(&id, "a waiting reason", |task| {
            task.waiting_reason.is_some()
        })
        .await;
    assert!(waiting
        .waiting_reason
        .unwrap_or_default()
        .contains("no leading master"));
    cluster.backend.send(BackendEvent::Connected {
        framework_id: "fw-1".to_owned(),
        ack: Some(eremetic::backend::AckToken(format!("{id}.connected"))),
    });
    let backend = cluster.backend.clone();
    eventually("the connection to be acknowledged", || {
        let backend = backend.clone();
        async move { !backend.acks().is_empty() }
    })
    .await;
    assert_eq!(
        cluster.store.meta_load(META_FRAMEWORK_ID).await.unwrap(),
        Some("fw-1".to_owned())
    );
    assert!(cluster.task(&id).await.waiting_reason.is_none());

    let first = run(&id, 0);
    cluster.offered(&first).await;
    cluster.place_and_launch(&first).await;
    cluster.backend.running(&first, None);
    cluster.wait_state(&id, Running).await;
    cluster.backend.send(BackendEvent::FrameworkRemoved {
        reason: "framework failover timeout".to_owned(),
    });
    let task = cluster
        .wait_until(&id, "lost and queued again", |task| {
            task.retry == 1 && task.current_state() == Some(Queued)
        })
        .await;
    assert_eq!(history(&task), vec![Queued, Staging, Running, Lost, Queued]);
    assert_eq!(
        cluster.store.meta_load(META_FRAMEWORK_ID).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn an_unreachable_run_is_waited_for_then_relaunched_and_stopped_if_it_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        // Far longer than the pauses below, so a loaded machine cannot reach it early.
        unreachable_timeout: Duration::from_secs(2),
        ..config()
    };
    let cluster = Cluster::start_in(dir.path(), false, config).await;
    // One that comes back in time: nothing changes.
    let patient = cluster.submit("patient").await;
    let back = run(&patient, 0);
    cluster.offered(&back).await;
    cluster.place_and_launch(&back).await;
    cluster.backend.running(&back, None);
    cluster.wait_state(&patient, Running).await;
    let unreachable = || RunStatus::Unreachable {
        reason: "agent partitioned".to_owned(),
    };
    cluster.backend.status(&back, unreachable(), None);
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.backend.running(&back, None);

    // One that does not: relaunched as attempt 1 after the timeout.
    let id = cluster
        .submit_body(&body("partitioned", 1.0, r#""retries":1"#))
        .await;
    let first = run(&id, 0);
    cluster.offered(&first).await;
    cluster.place_and_launch(&first).await;
    cluster.backend.running(&first, None);
    cluster.wait_state(&id, Running).await;
    cluster.backend.status(&first, unreachable(), None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(cluster.task(&id).await.current_state(), Some(Running));
    let relaunched = cluster
        .wait_until(&id, "lost and queued again", |task| {
            task.retry == 1 && task.current_state() == Some(Queued)
        })
        .await;
    assert!(relaunched
        .failure_reason
        .unwrap_or_default()
        .contains("unreachable_timeout"),);
    cluster.offered(&run(&id, 1)).await;
    // The old run comes back: it is stopped, the task stays queued for its new attempt.
    cluster.backend.running(&first, None);
    let backend = cluster.backend.clone();
    let old = first.clone();
    eventually("the old run to be stopped", || {
        let (backend, old) = (backend.clone(), old.clone());
        async move { !backend.kills_of(&old).is_empty() }
    })
    .await;
    assert_eq!(cluster.task(&id).await.current_state(), Some(Queued));

    let patient = cluster.task(&patient).await;
    assert_eq!(history(&patient), vec![Queued, Staging, Running]);
}
