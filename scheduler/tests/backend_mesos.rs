//! The scheduler core over the Mesos backend against the protocol-faithful fake master: the
//! framework id stored before the first ACCEPT, a task launched through an offer and followed
//! by the updates its executor sends (acknowledged after they are stored), exit codes and
//! reasons, kills, several tasks on one offer, a restart that resubscribes with the stored id
//! and reconciles, and an update of a run the store does not know.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
mod engine_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eremetic::backend::{MesosBackend, MesosConfig};
use eremetic::engine::Scheduler;
use eremetic::mesos::calls::FrameworkSettings;
use eremetic::mesos::client::ClientSettings;
use eremetic::mesos::launch_mode::{ExecutorSettings, LaunchMode};
use eremetic::mesos::task_info::LaunchSettings;
use eremetic::mesos::MasterUrl;
use eremetic::metrics::{Metrics, OutcomeLabels, StateLabels};
use eremetic::service::{Submission, TaskService};
use eremetic::store::{Store, META_FRAMEWORK_ID};
use eremetic::task::{Task, TaskId, TaskState};
use mesos_harness::master::{AgentSpec, FakeMaster, MasterSetup};
use mesos_proto::v1::scheduler::call;
use mesos_proto::v1::{task_status, TaskState as MesosState};
use tokio::sync::Notify;

use engine_support::{body, config, history, request, DEADLINE};
use TaskState::{Failed, Finished, Killed, Queued, Running, Staging, Terminating};

fn framework(failover_timeout: Duration) -> FrameworkSettings {
    FrameworkSettings {
        name: "Eremetic".into(),
        user: "root".into(),
        role: "*".into(),
        checkpoint: true,
        failover_timeout,
        principal: None,
        hostname: None,
        webui_url: None,
        partition_aware: true,
    }
}

/// Mesos' advice: a failover timeout of weeks.
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

fn backend_for(
    master: &FakeMaster,
    failover_timeout: Duration,
    metrics: Arc<Metrics>,
) -> MesosBackend {
    let url = format!("http://{}", master.endpoint());
    let parsed = MasterUrl::parse(&url).unwrap();
    let mut client = ClientSettings::new(&parsed);
    client.request_timeout = Duration::from_secs(10);
    MesosBackend::new(
        MesosConfig {
            client,
            framework: framework(failover_timeout),
            launch: LaunchSettings {
                instance_id: "mesos-test".into(),
                user_network: None,
                kill_grace: Duration::from_secs(3),
                mode: LaunchMode::Docker,
                executor: ExecutorSettings::default(),
            },
            refuse: Duration::from_secs(1),
            framework_id: None,
        },
        metrics,
    )
    .unwrap()
}

async fn master() -> FakeMaster {
    let setup = MasterSetup {
        allocation_interval: Duration::from_millis(100),
        status_update_retry_min: Duration::from_millis(500),
        ..MasterSetup::default()
    };
    let master = FakeMaster::start(setup).await.unwrap();
    master
        .add_agent(AgentSpec::new("agent-1", "agent-1.example"))
        .unwrap();
    master
}

/// A started core over the Mesos backend and a store in `dir`.
struct Framework {
    metrics: Arc<Metrics>,
    scheduler: Scheduler,
    store: Store,
}

impl Framework {
    async fn start(dir: &Path, master: &FakeMaster) -> Framework {
        Framework::start_with(dir, master, WEEK).await
    }

    async fn start_with(dir: &Path, master: &FakeMaster, failover_timeout: Duration) -> Framework {
        let store = Store::open(&dir.join("eremetic.db")).unwrap();
        let metrics = Arc::new(Metrics::new());
        let scheduler = Scheduler::new(
            store.clone(),
            Arc::new(backend_for(master, failover_timeout, metrics.clone())),
            metrics.clone(),
            Arc::new(Notify::new()),
            config(),
        );
        scheduler.start().await.unwrap();
        Framework {
            metrics,
            scheduler,
            store,
        }
    }

    async fn submit(&self, body: &str) -> TaskId {
        let submission = Submission {
            task: request(body),
            idempotency_key: None,
        };
        self.scheduler.submit(submission).await.unwrap().id
    }

    async fn wait_state(&self, id: &TaskId, state: TaskState) -> Task {
        let reached = tokio::time::timeout(DEADLINE, async {
            loop {
                let task = self.scheduler.get(id).await.unwrap().unwrap();
                if task.current_state() == Some(state) {
                    return task;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        match reached {
            Ok(task) => task,
            Err(_) => {
                let task = self.scheduler.get(id).await.unwrap().unwrap();
                panic!("{id} did not reach {state}: {:?}", history(&task))
            }
        }
    }
}

/// Waits until the master has the Mesos task `task_id` (launched through an ACCEPT).
async fn launched(master: &FakeMaster, task_id: &str) {
    master
        .wait_for_task_state(task_id, MesosState::TaskStaging, DEADLINE)
        .await
        .unwrap_or_else(|error| panic!("{task_id} was not launched: {error}"));
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let reached = tokio::time::timeout(DEADLINE, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{what} did not happen within {DEADLINE:?}");
}

#[tokio::test]
async fn a_task_runs_through_an_offer_and_its_updates_are_stored_then_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let master = master().await;
    let framework = Framework::start(dir.path(), &master).await;
    let framework_id = master.wait_subscribed(DEADLINE).await.unwrap();
    let id = framework.submit(&body("hello", 0.5, "")).await;
    let mesos_id = format!("{id}.0");
    launched(&master, &mesos_id).await;

    // The framework id was stored before the first ACCEPT.
    assert_eq!(
        framework.store.meta_load(META_FRAMEWORK_ID).await.unwrap(),
        Some(framework_id.clone())
    );
    let staged = framework.wait_state(&id, Staging).await;
    assert_eq!(staged.agent_id.as_deref(), Some("agent-1"));
    assert_eq!(staged.hostname.as_deref(), Some("agent-1.example"));
    let info = master.task(&mesos_id).unwrap().info;
    assert_eq!(info.agent_id.value, "agent-1");
    assert!(info.container.is_some(), "a DOCKER ContainerInfo");

    master
        .update_task(&mesos_id, MesosState::TaskRunning, None, None)
        .unwrap();
    framework.wait_state(&id, Running).await;
    master
        .update_task(
            &mesos_id,
            MesosState::TaskFailed,
            Some(task_status::Reason::CommandExecutorFailed),
            Some("Command exited with status 3"),
        )
        .unwrap();
    let task = framework.wait_state(&id, Failed).await;
    assert_eq!(history(&task), vec![Queued, Staging, Running, Failed]);
    assert_eq!(task.exit_code, Some(3));
    assert!(
        task.failure_reason
            .as_deref()
            .unwrap_or_default()
            .contains("exited with code 3"),
        "{:?}",
        task.failure_reason
    );
    // Both updates were acknowledged (the master forgets an acknowledged terminal task).
    eventually("the acknowledgements", || {
        master
            .acknowledgements()
            .iter()
            .filter(|ack| ack.task_id == mesos_id)
            .count()
            == 2
    })
    .await;
    eventually("the master to forget the task", || {
        master.task(&mesos_id).is_some_and(|task| task.removed)
    })
    .await;

    // What happened is counted for Prometheus.
    let metrics = &framework.metrics;
    let offers = |outcome: &str| {
        metrics
            .mesos_offers
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .get()
    };
    assert!(offers("received") >= 1 && offers("used") == 1);
    let updates = |state: &str| {
        metrics
            .mesos_updates
            .get_or_create(&StateLabels {
                state: state.to_owned(),
            })
            .get()
    };
    assert_eq!((updates("TASK_RUNNING"), updates("TASK_FAILED")), (1, 1));
    assert_eq!(metrics.mesos_connected.get(), 1);
    assert!(metrics.mesos_reconciliations.get() >= 1);
}

#[tokio::test]
async fn a_kill_goes_to_the_master_and_the_killed_update_ends_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let master = master().await;
    let framework = Framework::start(dir.path(), &master).await;
    let id = framework.submit(&body("long", 0.5, "")).await;
    let mesos_id = format!("{id}.0");
    launched(&master, &mesos_id).await;
    master
        .update_task(&mesos_id, MesosState::TaskRunning, None, None)
        .unwrap();
    framework.wait_state(&id, Running).await;
    framework.scheduler.kill(&id).await.unwrap();
    assert_eq!(
        framework
            .scheduler
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .current_state(),
        Some(Terminating)
    );
    eventually("the KILL to reach the master", || {
        master.kills().iter().any(|kill| kill.task_id == mesos_id)
    })
    .await;
    let kill = master
        .kills()
        .into_iter()
        .find(|kill| kill.task_id == mesos_id)
        .unwrap();
    assert_eq!(kill.agent_id, "agent-1");
    master
        .update_task(&mesos_id, MesosState::TaskKilled, None, None)
        .unwrap();
    let task = framework.wait_state(&id, Killed).await;
    assert_eq!(task.failure_reason.as_deref(), Some("killed on request"));
}

#[tokio::test]
async fn several_tasks_share_one_offer_in_one_accept() {
    let dir = tempfile::tempdir().unwrap();
    let master = master().await;
    let framework = Framework::start(dir.path(), &master).await;
    master.wait_subscribed(DEADLINE).await.unwrap();
    let ids = [
        framework.submit(&body("one", 1.0, "")).await,
        framework.submit(&body("two", 1.0, "")).await,
        framework.submit(&body("three", 1.0, "")).await,
    ];
    for id in &ids {
        launched(&master, &format!("{id}.0")).await;
    }
    let launches: usize = master
        .calls()
        .iter()
        .filter_map(|call| call.accept.as_ref())
        .map(|accept| {
            accept
                .operations
                .iter()
                .filter_map(|operation| operation.launch.as_ref())
                .map(|launch| launch.task_infos.len())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(launches, 3, "every task launched exactly once");
    for id in &ids {
        framework.wait_state(id, Staging).await;
    }
}

#[test]
fn a_restart_resubscribes_with_the_stored_id_and_reconciles_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let master_runtime = runtime();
    let master = master_runtime.block_on(master());
    let before = runtime();
    let (id, framework_id) = before.block_on(async {
        let framework = Framework::start(dir.path(), &master).await;
        let framework_id = master.wait_subscribed(DEADLINE).await.unwrap();
        let id = framework.submit(&body("survivor", 0.5, "")).await;
        launched(&master, &format!("{id}.0")).await;
        master
            .update_task(&format!("{id}.0"), MesosState::TaskRunning, None, None)
            .unwrap();
        framework.wait_state(&id, Running).await;
        (id, framework_id)
    });
    drop(before);
    let mesos_id = format!("{id}.0");

    let after = runtime();
    after.block_on(async {
        let framework = Framework::start(dir.path(), &master).await;
        let reconciled = |master: &FakeMaster| {
            master.calls().iter().any(|call| {
                call.reconcile.as_ref().is_some_and(|reconcile| {
                    reconcile.tasks.iter().any(|t| t.task_id.value == mesos_id)
                })
            })
        };
        eventually("an explicit reconciliation of the run", || {
            reconciled(&master)
        })
        .await;
        let subscribes: Vec<_> = master
            .calls()
            .into_iter()
            .filter(|call| call.r#type == Some(call::Type::Subscribe as i32))
            .collect();
        let last = subscribes.last().unwrap();
        assert_eq!(
            last.subscribe
                .as_ref()
                .and_then(|subscribe| subscribe.framework_info.id.as_ref())
                .map(|id| id.value.clone()),
            Some(framework_id),
            "the stored framework id is used again"
        );
        // The run goes on and ends normally.
        master
            .update_task(&mesos_id, MesosState::TaskFinished, None, None)
            .unwrap();
        let task = framework.wait_state(&id, Finished).await;
        assert_eq!(history(&task), vec![Queued, Staging, Running, Finished]);
    });
    drop(after);
    master_runtime.block_on(master.stop());
}

#[test]
fn runs_the_master_has_not_answered_for_are_counted_until_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let master_runtime = runtime();
    let master = master_runtime.block_on(master());
    let before = runtime();
    let id = before.block_on(async {
        let framework = Framework::start(dir.path(), &master).await;
        master.wait_subscribed(DEADLINE).await.unwrap();
        let id = framework.submit(&body("asked-about", 0.5, "")).await;
        launched(&master, &format!("{id}.0")).await;
        master
            .update_task(&format!("{id}.0"), MesosState::TaskRunning, None, None)
            .unwrap();
        framework.wait_state(&id, Running).await;
        id
    });
    drop(before);
    // A master that has just failed over knows the agent only from its registry: it stays
    // silent about the run until the agent re-registers.
    master.fail_over();

    let after = runtime();
    after.block_on(async {
        let framework = Framework::start(dir.path(), &master).await;
        let unanswered = || framework.metrics.mesos_reconcile_unanswered.get();
        eventually("the run to be asked about", || {
            framework.metrics.mesos_reconciliations.get() >= 1
        })
        .await;
        assert_eq!(unanswered(), 1, "asked and not answered");
        master.reregister_agent("agent-1").unwrap();
        // Asked again after the back-off; answered this time.
        eventually("the reconciliation to be complete", || unanswered() == 0).await;
        let task = framework.wait_state(&id, Running).await;
        assert_eq!(history(&task), vec![Queued, Staging, Running]);
    });
    drop(after);
    master_runtime.block_on(master.stop());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_run_the_master_knows_and_the_store_does_not_is_killed() {
    let first_dir = tempfile::tempdir().unwrap();
    let second_dir = tempfile::tempdir().unwrap();
    let master_runtime = runtime();
    let master = master_runtime.block_on(master());
    let before = runtime();
    let (id, framework_id) = before.block_on(async {
        let framework = Framework::start(first_dir.path(), &master).await;
        let framework_id = master.wait_subscribed(DEADLINE).await.unwrap();
        let id = framework.submit(&body("orphan", 0.5, "")).await;
        launched(&master, &format!("{id}.0")).await;
        master
            .update_task(&format!("{id}.0"), MesosState::TaskRunning, None, None)
            .unwrap();
        framework.wait_state(&id, Running).await;
        (id, framework_id)
    });
    drop(before);

    // Another store (a restored backup) with the same framework id: the master's implicit
    // reconciliation names a run this store does not know.
    let after = runtime();
    after.block_on(async {
        let store = Store::open(&second_dir.path().join("eremetic.db")).unwrap();
        store
            .meta_save(META_FRAMEWORK_ID, &framework_id)
            .await
            .unwrap();
        drop(store);
        let _framework = Framework::start(second_dir.path(), &master).await;
        let mesos_id = format!("{id}.0");
        eventually("the unknown run to be killed", || {
            master.kills().iter().any(|kill| kill.task_id == mesos_id)
        })
        .await;
    });
    drop(after);
    master_runtime.block_on(master.stop());
}

#[test]
fn a_removed_framework_forgets_its_id_and_its_tasks_run_again_under_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let master_runtime = runtime();
    let master = master_runtime.block_on(master());
    let short = Duration::from_millis(500);
    let before = runtime();
    let (id, first_id) = before.block_on(async {
        let framework = Framework::start_with(dir.path(), &master, short).await;
        let first_id = master.wait_subscribed(DEADLINE).await.unwrap();
        let id = framework
            .submit(&body("phoenix", 0.5, r#""retries":1"#))
            .await;
        launched(&master, &format!("{id}.0")).await;
        master
            .update_task(&format!("{id}.0"), MesosState::TaskRunning, None, None)
            .unwrap();
        framework.wait_state(&id, Running).await;
        (id, first_id)
    });
    // Gone for longer than the failover timeout: the master removes the framework.
    drop(before);
    std::thread::sleep(Duration::from_millis(1500));

    let after = runtime();
    after.block_on(async {
        let framework = Framework::start_with(dir.path(), &master, short).await;
        // The old run is lost, and the task runs again as attempt 1 under a new framework id.
        launched(&master, &format!("{id}.1")).await;
        let stored = framework.store.meta_load(META_FRAMEWORK_ID).await.unwrap();
        assert!(stored.is_some_and(|stored| stored != first_id));
        let task = framework.wait_state(&id, Staging).await;
        assert_eq!(task.retry, 1);
        assert_eq!(
            history(&task),
            vec![Queued, Staging, Running, TaskState::Lost, Queued, Staging]
        );
        assert!(
            task.status
                .iter()
                .any(|entry| entry.status == TaskState::Lost),
            "{:?}",
            history(&task)
        );
    });
    drop(after);
    master_runtime.block_on(master.stop());
}

#[tokio::test]
async fn a_task_no_offer_fits_waits_with_the_reason_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let master = master().await;
    let framework = Framework::start(dir.path(), &master).await;
    master.wait_subscribed(DEADLINE).await.unwrap();
    let constrained = framework
        .submit(&body(
            "rack-b",
            0.5,
            r#""agent_constraints":[{"attribute_name":"rack","attribute_value":"b"}]"#,
        ))
        .await;
    let big = framework.submit(&body("big", 8.0, "")).await;
    let reason_of = |id: TaskId| {
        let scheduler = framework.scheduler.clone();
        async move {
            let reached = tokio::time::timeout(DEADLINE, async {
                loop {
                    let task = scheduler.get(&id).await.unwrap().unwrap();
                    let reason = task.waiting_reason.clone().unwrap_or_default();
                    if reason.starts_with("no offer fits it") {
                        return (task.current_state(), reason);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
            reached.unwrap_or_else(|_| panic!("{id} has no waiting reason from the offers"))
        }
    };
    let (state, reason) = reason_of(constrained).await;
    assert_eq!(state, Some(Queued));
    assert!(
        reason.contains("agent-1.example")
            && reason.contains(r#"agent attribute "rack" is not "b""#),
        "{reason}"
    );
    let (_, reason) = reason_of(big).await;
    assert!(reason.contains("needs 8 cpus, offer has 4"), "{reason}");
}

#[tokio::test]
async fn an_unreachable_update_from_the_master_keeps_the_task_running_until_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let master = master().await;
    let framework = Framework::start(dir.path(), &master).await;
    let id = framework.submit(&body("partitioned", 0.5, "")).await;
    let mesos_id = format!("{id}.0");
    launched(&master, &mesos_id).await;
    master
        .update_task(&mesos_id, MesosState::TaskRunning, None, None)
        .unwrap();
    framework.wait_state(&id, Running).await;
    master
        .send_status(
            &mesos_id,
            mesos_proto::v1::TaskStatus {
                state: MesosState::TaskUnreachable as i32,
                source: Some(task_status::Source::Master as i32),
                reason: Some(task_status::Reason::AgentRemoved as i32),
                ..Default::default()
            },
        )
        .unwrap();
    // The default timeout is minutes: the task stays running, its update acknowledged.
    eventually("the unreachable update to be acknowledged", || {
        master
            .acknowledgements()
            .iter()
            .filter(|ack| ack.task_id == mesos_id)
            .count()
            == 2
    })
    .await;
    assert_eq!(
        framework
            .scheduler
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .current_state(),
        Some(Running)
    );
}

/// The scalar `name` of a list of resources.
fn scalar(resources: &[mesos_proto::v1::Resource], name: &str) -> f64 {
    resources
        .iter()
        .filter(|resource| resource.name == name)
        .filter_map(|resource| resource.scalar.as_ref())
        .map(|scalar| scalar.value)
        .sum()
}

#[tokio::test]
async fn each_launch_mode_reaches_the_master_as_a_task_it_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let master = master().await;
    let framework = Framework::start(dir.path(), &master).await;
    master.wait_subscribed(DEADLINE).await.unwrap();
    let label = |mode: &str| format!(r#""labels":{{"eremetic.launch_mode":"{mode}"}}"#);
    let executor = framework
        .submit(&body("with-executor", 0.5, &label("deimos-executor")))
        .await;
    let unified = framework
        .submit(&body("unified", 0.5, &label("mesos")))
        .await;
    for id in [&executor, &unified] {
        launched(&master, &format!("{id}.0")).await;
    }

    let info = master.task(&format!("{executor}.0")).unwrap().info;
    assert!(info.command.is_none());
    let command = deimos_runtime::mesos::task_data::decode(info.data.as_deref().unwrap())
        .expect("the command travels in data");
    assert_eq!(command.value.as_deref(), Some("true"));
    let executor_info = info.executor.expect("a custom executor");
    assert_eq!(scalar(&info.resources, "cpus"), 0.5);
    assert_eq!(scalar(&executor_info.resources, "cpus"), 0.1);
    assert_eq!(scalar(&executor_info.resources, "mem"), 32.0);

    let info = master.task(&format!("{unified}.0")).unwrap().info;
    let container = info.container.expect("a container");
    assert_eq!(
        container.r#type,
        mesos_proto::v1::container_info::Type::Mesos as i32
    );

    // A launch mode that does not exist is refused at submission, naming the label.
    let submission = Submission {
        task: request(&body("bad", 0.5, &label("rkt"))),
        idempotency_key: None,
    };
    let error = framework.scheduler.submit(submission).await.unwrap_err();
    assert!(
        error.to_string().contains("labels.eremetic.launch_mode"),
        "{error}"
    );
}

#[tokio::test]
async fn after_a_master_failover_unanswered_runs_are_asked_about_again_until_answered() {
    let dir = tempfile::tempdir().unwrap();
    let master = master().await;
    let framework = Framework::start(dir.path(), &master).await;
    let id = framework.submit(&body("steady", 0.5, "")).await;
    let mesos_id = format!("{id}.0");
    launched(&master, &mesos_id).await;
    master
        .update_task(&mesos_id, MesosState::TaskRunning, None, None)
        .unwrap();
    let running = framework.wait_state(&id, Running).await;
    assert_eq!(running.agent_port, Some(5051));
    assert!(running.framework_id.is_some());

    let asked = |master: &FakeMaster| {
        master
            .calls()
            .iter()
            .filter(|call| {
                call.reconcile
                    .as_ref()
                    .is_some_and(|r| r.tasks.iter().any(|t| t.task_id.value == mesos_id))
            })
            .count()
    };
    let before = asked(&master);
    // The new leader knows the agent only from its registry until it re-registers: it does
    // not answer about the run.
    master.fail_over();
    eventually("the run to be asked about after the resubscription", || {
        asked(&master) > before
    })
    .await;
    eventually("the unanswered run to be asked about again", || {
        asked(&master) > before + 1
    })
    .await;
    master.reregister_agent("agent-1").unwrap();
    master
        .update_task(&mesos_id, MesosState::TaskFinished, None, None)
        .unwrap();
    let task = framework.wait_state(&id, Finished).await;
    assert_eq!(history(&task), vec![Queued, Staging, Running, Finished]);
}
