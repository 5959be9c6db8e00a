//! A [`Backend`] with a cluster's shape, driven entirely by the test: it records the demand it
//! is offered and every call (launch, abandon, kill, acknowledge, reconcile), never places or
//! reports anything by itself, and hands the test the event sink so that placements and
//! status updates arrive when, in the order and as often as the test sends them.

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eremetic::backend::{
    AckToken, Backend, BackendError, BackendEvent, Demand, EventSink, KnownRun, LogSource,
    Placement, Resources, RunId, RunStatus,
};
use eremetic::store::Store;
use eremetic::task::{NewTask, Task, TaskId, TaskState};
use time::OffsetDateTime;

/// A call the core made.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    Launch(RunId),
    Abandon(RunId),
    Kill {
        run: RunId,
        at: Instant,
    },
    /// An acknowledgement, with the task's stored state at that moment (`None`: no record).
    Acknowledge {
        token: AckToken,
        stored: Option<TaskState>,
    },
    Reconcile(Vec<RunId>),
}

/// The scripted backend.
pub(crate) struct ScriptedBackend {
    sink: OnceLock<EventSink>,
    framework_id: Mutex<Option<Option<String>>>,
    /// The store, to look at what is committed when an acknowledgement arrives.
    store: Store,
    /// The runs of the latest demand, in the order offered.
    demand: Mutex<Vec<RunId>>,
    calls: Mutex<Vec<Call>>,
    /// Acknowledgements are dropped (the backend crashed before it could read them).
    deaf: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl ScriptedBackend {
    /// A backend over `store`; `deaf` ones drop acknowledgements.
    pub(crate) fn new(store: Store, deaf: bool) -> ScriptedBackend {
        ScriptedBackend {
            sink: OnceLock::new(),
            framework_id: Mutex::new(None),
            store,
            demand: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            deaf,
        }
    }

    /// Sends an event to the core.
    pub(crate) fn send(&self, event: BackendEvent) {
        self.sink
            .get()
            .unwrap_or_else(|| panic!("the core has not started the backend"))
            .send(event);
    }

    /// Sends a status update of `run` with acknowledgement token `token`.
    pub(crate) fn status(&self, run: &RunId, status: RunStatus, token: Option<&str>) {
        let ack = token.map(|token| AckToken(token.to_owned()));
        self.sink
            .get()
            .unwrap_or_else(|| panic!("the core has not started the backend"))
            .status(run.clone(), status, ack);
    }

    /// `TASK_RUNNING` now.
    pub(crate) fn running(&self, run: &RunId, token: Option<&str>) {
        let started_at = OffsetDateTime::now_utc();
        self.status(run, RunStatus::Running { started_at }, token);
    }

    /// A placement of `run` on agent `agent`.
    pub(crate) fn place(&self, run: &RunId, agent: &str) {
        self.send(BackendEvent::Placed(placement(run, agent)));
    }

    /// The runs of the latest demand, oldest first.
    pub(crate) fn demand(&self) -> Vec<RunId> {
        lock(&self.demand).clone()
    }

    /// Every call so far.
    pub(crate) fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// The framework id the core started the backend with (`None` before the start).
    pub(crate) fn started_with(&self) -> Option<Option<String>> {
        lock(&self.framework_id).clone()
    }

    /// Launched runs, in order.
    pub(crate) fn launched(&self) -> Vec<RunId> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Launch(run) => Some(run),
                _ => None,
            })
            .collect()
    }

    /// Abandoned runs, in order.
    pub(crate) fn abandoned(&self) -> Vec<RunId> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Abandon(run) => Some(run),
                _ => None,
            })
            .collect()
    }

    /// When `run` was asked to stop, in order.
    pub(crate) fn kills_of(&self, run: &RunId) -> Vec<Instant> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Kill { run: killed, at } if &killed == run => Some(at),
                _ => None,
            })
            .collect()
    }

    /// Acknowledgements received: token and the task state stored when it arrived.
    pub(crate) fn acks(&self) -> Vec<(String, Option<TaskState>)> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Acknowledge { token, stored } => Some((token.0, stored)),
                _ => None,
            })
            .collect()
    }

    fn record(&self, call: Call) {
        lock(&self.calls).push(call);
    }
}

/// A placement of `run` on `agent` with no ports.
pub(crate) fn placement(run: &RunId, agent: &str) -> Placement {
    Placement {
        run: run.clone(),
        agent_id: agent.to_owned(),
        hostname: format!("{agent}.example"),
        agent_address: Some(format!("http://{agent}.example:5051")),
        agent_ip: None,
        agent_port: Some(5051),
        framework_id: Some("scripted-framework".to_owned()),
        host_ports: Vec::new(),
        cpus: 1.0,
        mem_mib: 32.0,
        sandbox: None,
    }
}

#[async_trait]
impl Backend for ScriptedBackend {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn admissible(&self, _task: &NewTask) -> Result<(), String> {
        Ok(())
    }

    fn total(&self) -> Resources {
        Resources {
            cpus: 64.0,
            mem_mib: 65536.0,
            ports: 100,
        }
    }

    fn free(&self) -> Resources {
        self.total()
    }

    fn cluster_view(&self) -> eremetic::backend::ClusterView {
        eremetic::backend::ClusterView::Local(eremetic::backend::view::LocalView {
            docker_host: None,
            instance_id: "test".into(),
            port_range: [31000, 32000],
            user_network: None,
        })
    }

    async fn start(
        &self,
        events: EventSink,
        framework_id: Option<String>,
    ) -> Result<(), BackendError> {
        let _ = self.sink.set(events);
        *lock(&self.framework_id) = Some(framework_id);
        Ok(())
    }

    fn offer_demand(&self, demand: &mut dyn Iterator<Item = Demand<'_>>) -> Vec<Placement> {
        *lock(&self.demand) = demand.map(|wanted| wanted.run.clone()).collect();
        Vec::new()
    }

    fn launch(&self, placement: Placement, _task: Task) {
        self.record(Call::Launch(placement.run));
    }

    fn abandon(&self, placement: Placement) {
        self.record(Call::Abandon(placement.run));
    }

    fn kill(&self, run: &RunId, _grace: Duration) {
        self.record(Call::Kill {
            run: run.clone(),
            at: Instant::now(),
        });
    }

    fn acknowledge(&self, ack: AckToken) {
        if self.deaf {
            return;
        }
        // Looked up synchronously on a separate thread: the store is async, the trait's
        // method is not, and the state must be read at the moment of the acknowledgement.
        let store = self.store.clone();
        let task = ack.0.rsplit_once('.').map(|(task, _)| task.to_owned());
        let stored = std::thread::spawn(move || {
            let id = TaskId::parse(task.as_deref()?).ok()?;
            let runtime = tokio::runtime::Builder::new_current_thread().build().ok()?;
            let task = runtime.block_on(store.get(&id)).ok()??;
            task.current_state()
        })
        .join()
        .unwrap_or(None);
        self.record(Call::Acknowledge { token: ack, stored });
    }

    async fn reconcile(&self, runs: Vec<KnownRun>) -> Result<(), BackendError> {
        self.record(Call::Reconcile(
            runs.into_iter().map(|known| known.run).collect(),
        ));
        Ok(())
    }

    fn log_source(&self, _task: &Task) -> Option<LogSource> {
        None
    }
}
