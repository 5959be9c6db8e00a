//! A fake master with the custom-executor agent (mesos-harness agent mode 2) attached, and a
//! scheduler on the master's v1 HTTP API that launches tasks with a `deimos-executor`
//! ExecutorInfo, as eremetic does, and receives and acknowledges their updates.

use std::sync::Arc;
use std::time::Duration;

use mesos_client::{Client, ClientConfig, Subscription};
use mesos_harness::cluster::executor_agent::{ExecutorAgent, ExecutorAgentConfig};
use mesos_harness::cluster::sandbox::AgentBook;
use mesos_harness::cluster::{AgentMode, RunningAgent};
use mesos_harness::master::{AgentSpec, FakeMaster, MasterSetup};
use mesos_proto::v1::scheduler::{call, event, Call, Event};
use mesos_proto::v1::{
    executor_info, offer, AgentId, CommandInfo, ExecutorId, ExecutorInfo, FrameworkId,
    FrameworkInfo, Offer, TaskInfo, TaskState, TaskStatus,
};
use prost::Message as _;

use super::{scalar, unique, ContainerGuard, PATIENCE};

/// The attached agent's id.
pub const AGENT: &str = "agent-1";

/// A master, the executor agent attached to it and its work directory.
pub struct Cluster {
    pub master: FakeMaster,
    pub agent: ExecutorAgent,
    pub running: RunningAgent,
    pub work_dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts a master (unique id, so framework ids are unique) with the executor agent.
    pub async fn start(configure: impl FnOnce(&mut ExecutorAgentConfig)) -> Cluster {
        let setup = MasterSetup {
            master_id: Some(unique("master")),
            allocation_interval: Duration::from_millis(100),
            ..MasterSetup::default()
        };
        let master = FakeMaster::start(setup).await.expect("starting the master");
        master
            .add_agent(AgentSpec::new(AGENT, "127.0.0.1"))
            .expect("adding the agent");
        let link = master.attach_agent(AGENT).expect("attaching the agent");
        let work_dir = tempfile::tempdir().expect("creating the agent's work directory");
        let mut config = ExecutorAgentConfig::new(AgentBook::new(work_dir.path(), AGENT));
        if let Ok(docker_host) = std::env::var("DOCKER_HOST") {
            config
                .executor_environment_variables
                .push(("DOCKER_HOST".to_owned(), docker_host));
        }
        configure(&mut config);
        let agent = ExecutorAgent::new(config);
        let mode: Arc<dyn AgentMode> = Arc::new(agent.clone());
        let running = RunningAgent::start(link, mode);
        Cluster {
            master,
            agent,
            running,
            work_dir,
        }
    }

    /// The executor's stderr (its log) of the newest run of `executor_id`.
    pub fn executor_log(&self, framework_id: &str, executor_id: &str) -> String {
        self.agent
            .book()
            .latest_run(framework_id, executor_id)
            .and_then(|dir| std::fs::read_to_string(dir.join("stderr")).ok())
            .unwrap_or_default()
    }
}

/// A scheduler subscribed to the master.
pub struct Scheduler {
    client: Client,
    url: String,
    events: Subscription<Event>,
    pub framework_id: String,
    /// Every update received, in order.
    pub updates: Vec<TaskStatus>,
    /// FAILURE events received.
    pub failures: Vec<event::Failure>,
    pub guard: ContainerGuard,
}

impl Scheduler {
    /// Subscribes a checkpointing framework.
    pub async fn subscribe(cluster: &Cluster) -> Scheduler {
        let client = Client::new(ClientConfig::default()).expect("an HTTP client");
        let url = format!("http://{}/api/v1/scheduler", cluster.master.endpoint());
        let info = FrameworkInfo {
            user: "root".into(),
            name: "agent-mode-test".into(),
            checkpoint: Some(true),
            failover_timeout: Some(3600.0),
            ..Default::default()
        };
        let subscribe = Call {
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info: info,
                suppressed_roles: Vec::new(),
            }),
            ..Default::default()
        };
        let mut events: Subscription<Event> = client
            .subscribe(&url, "SUBSCRIBE", subscribe.encode_to_vec(), Some(PATIENCE))
            .await
            .expect("SUBSCRIBE");
        let subscribed = events.next_event().await.expect("SUBSCRIBED");
        let framework_id = subscribed
            .subscribed
            .expect("SUBSCRIBED first")
            .framework_id
            .value;
        Scheduler {
            client,
            url,
            events,
            guard: ContainerGuard::new(&framework_id),
            framework_id,
            updates: Vec::new(),
            failures: Vec::new(),
        }
    }

    async fn post(&self, call: Call) {
        let name = "CALL";
        self.client
            .call(
                &self.url,
                name,
                call.encode_to_vec(),
                self.events.stream_id(),
            )
            .await
            .expect("the master accepts the call");
    }

    fn envelope(&self, call_type: call::Type) -> Call {
        Call {
            framework_id: Some(FrameworkId {
                value: self.framework_id.clone(),
            }),
            r#type: Some(call_type as i32),
            ..Default::default()
        }
    }

    /// The next event that is not a heartbeat; updates and failures are recorded.
    async fn next(&mut self) -> Event {
        loop {
            let event = tokio::time::timeout(PATIENCE, self.events.next_event())
                .await
                .expect("an event from the master in time")
                .expect("the subscription is open");
            match event.r#type() {
                event::Type::Heartbeat => continue,
                event::Type::Update => {
                    let status = event.update.clone().expect("UPDATE has a status").status;
                    self.updates.push(status);
                }
                event::Type::Failure => {
                    self.failures
                        .push(event.failure.clone().expect("FAILURE body"));
                }
                _ => {}
            }
            return event;
        }
    }

    /// Launches `task` on the next offer, with the `deimos-executor` ExecutorInfo.
    pub async fn launch(&mut self, task: TaskInfo) {
        self.launch_with(task, |_| {}).await;
    }

    /// [`Scheduler::launch`] with the task changed by `change` once it has its executor.
    pub async fn launch_with(&mut self, mut task: TaskInfo, change: impl FnOnce(&mut TaskInfo)) {
        let offer = loop {
            let event = self.next().await;
            if let Some(offers) = event.offers {
                break offers.offers.into_iter().next().expect("an offer");
            }
        };
        task.agent_id = AgentId {
            value: AGENT.into(),
        };
        task.executor = Some(executor_info(&task.task_id.value));
        change(&mut task);
        self.accept(&offer, task).await;
    }

    async fn accept(&self, offer: &Offer, task: TaskInfo) {
        let mut call = self.envelope(call::Type::Accept);
        call.accept = Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![offer::Operation {
                r#type: Some(offer::operation::Type::Launch as i32),
                launch: Some(offer::operation::Launch {
                    task_infos: vec![task],
                }),
                ..Default::default()
            }],
            filters: None,
        });
        self.post(call).await;
    }

    /// Waits for the update of `task` with `state` (others are recorded on the way) and
    /// acknowledges it.
    pub async fn acknowledge(&mut self, task: &str, state: TaskState) -> TaskStatus {
        let status = self.update(task, state).await;
        self.ack(&status).await;
        status
    }

    /// Waits for the update of `task` in `state` without acknowledging it.
    pub async fn update(&mut self, task: &str, state: TaskState) -> TaskStatus {
        if let Some(found) = self.find(task, state) {
            return found;
        }
        loop {
            let event = self.next().await;
            if let Some(update) = event.update {
                if update.status.task_id.value == task && update.status.state() == state {
                    return update.status;
                }
                let seen = update.status.state();
                assert!(
                    !is_terminal(seen) || update.status.task_id.value != task,
                    "task {task} ended {seen:?} while waiting for {state:?}: {:?}",
                    update.status
                );
            }
        }
    }

    fn find(&self, task: &str, state: TaskState) -> Option<TaskStatus> {
        self.updates
            .iter()
            .find(|s| s.task_id.value == task && s.state() == state)
            .cloned()
    }

    /// ACKNOWLEDGE for `status`.
    pub async fn ack(&self, status: &TaskStatus) {
        let mut call = self.envelope(call::Type::Acknowledge);
        call.acknowledge = Some(call::Acknowledge {
            agent_id: status.agent_id.clone().expect("the update names its agent"),
            task_id: status.task_id.clone(),
            uuid: status
                .uuid
                .clone()
                .expect("an update to acknowledge has a uuid"),
        });
        self.post(call).await;
    }

    /// KILL `task` (no kill policy: the task's own applies).
    pub async fn kill(&self, task: &str) {
        let mut call = self.envelope(call::Type::Kill);
        call.kill = Some(call::Kill {
            task_id: mesos_proto::v1::TaskId { value: task.into() },
            agent_id: Some(AgentId {
                value: AGENT.into(),
            }),
            kill_policy: None,
        });
        self.post(call).await;
    }

    /// SHUTDOWN the executor `executor_id` on the agent.
    pub async fn shutdown(&self, executor_id: &str) {
        let mut call = self.envelope(call::Type::Shutdown);
        call.shutdown = Some(call::Shutdown {
            executor_id: ExecutorId {
                value: executor_id.into(),
            },
            agent_id: AgentId {
                value: AGENT.into(),
            },
        });
        self.post(call).await;
    }

    /// Receives events for `window`, recording updates and failures.
    pub async fn drain(&mut self, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, self.events.next_event()).await
        {
            if let Some(update) = event.update {
                self.updates.push(update.status);
            }
            if let Some(failure) = event.failure {
                self.failures.push(failure);
            }
        }
    }

    /// The states received for `task`, in order.
    pub fn states(&self, task: &str) -> Vec<TaskState> {
        self.updates
            .iter()
            .filter(|s| s.task_id.value == task)
            .map(TaskStatus::state)
            .collect()
    }
}

/// The executor id the tests give task `task`'s executor.
pub fn executor_id(task: &str) -> String {
    format!("deimos-executor-{task}")
}

/// A CUSTOM ExecutorInfo starting the `deimos-executor` binary with a shell command, with
/// its own resources, as eremetic renders it.
pub fn executor_info(task: &str) -> ExecutorInfo {
    ExecutorInfo {
        r#type: Some(executor_info::Type::Custom as i32),
        executor_id: ExecutorId {
            value: executor_id(task),
        },
        command: Some(CommandInfo {
            shell: Some(true),
            value: Some(format!("exec {}", env!("CARGO_BIN_EXE_deimos-executor"))),
            ..Default::default()
        }),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        ..Default::default()
    }
}

fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
    )
}
