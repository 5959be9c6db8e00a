//! [`FakeAgent`]: the executor side of a Mesos agent's v1 HTTP API
//! (`POST /api/v1/executor`), faithful to the agent's `Http::executor`
//! handler and `Slave::subscribe` (protocol reference §2 and §4).
//!
//! Request rules, in the agent's order: 404 for other paths; 405 (with
//! `Allow: POST`) for other methods; 400 without `Content-Type`; 415 unless it
//! is exactly `application/json` or `application/x-protobuf`; 400 for an
//! undecodable body or missing required fields; 400 for
//! `validateExecutorCall` failures (no type, missing sub-message, UPDATE
//! without a valid 16-byte uuid, with a source other than SOURCE_EXECUTOR,
//! with TASK_STAGING or another executor id); 406 for a SUBSCRIBE whose
//! `Accept` allows neither type; 202 for HEARTBEAT (before any lookup); 503
//! for other calls while recovering; 400 `Framework cannot be found` /
//! `Executor cannot be found`; 403 before the first SUBSCRIBE; then 200 with
//! a RecordIO event stream for SUBSCRIBE, 202 for UPDATE and MESSAGE, 501 for
//! UNKNOWN.
//!
//! Events: SUBSCRIBED first, then LAUNCH for tasks queued before the first
//! subscription; a new SUBSCRIBE ends the previous stream; after
//! [`FakeAgent::shutdown`] a SUBSCRIBE is answered with SHUTDOWN and closed;
//! HEARTBEAT every [`AgentSetup::heartbeat_interval`].
//!
//! Agent restart: [`FakeAgent::disconnect`] kills the "process" (listener and
//! every connection drop without a clean HTTP end); [`FakeAgent::restart`]
//! listens again on the same port. With checkpointing the agent recovers the
//! executor and waits [`AgentSetup::subscription_backoff_max`] for it to
//! re-subscribe (other calls get 503 meanwhile); on re-subscription, tasks it
//! believes STAGING that are missing from `unacknowledged_tasks` become
//! TASK_LOST (`REASON_AGENT_RESTARTED`) and `unacknowledged_updates` are
//! processed again; if the window passes, the executor is destroyed and its
//! unfinished tasks become TASK_LOST (`REASON_EXECUTOR_REREGISTRATION_TIMEOUT`).
//! Without checkpointing the restarted agent knows no framework.

mod codec;
mod rules;
mod server;
mod setup;
mod state;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mesos_proto::v1::executor::{call, event, Call, Event};
use mesos_proto::v1::{KillPolicy, TaskId, TaskInfo, TaskStatus};
use tokio::sync::watch;

pub use codec::{encode_event, frame_event, ContentType, APPLICATION_JSON, APPLICATION_PROTOBUF};
pub use rules::Rejection;
pub use setup::{stout_duration, AgentSetup};

use crate::common::http::ServerHandle;
use crate::error::HarnessError;
use state::AgentState;

/// State shared by the server tasks and the test-facing handle.
#[derive(Debug)]
struct Shared {
    state: Mutex<AgentState>,
    changed: watch::Sender<()>,
}

impl Shared {
    /// Locks the state. A panic while holding the lock cannot leave it
    /// half-updated in a way that matters to a test, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, AgentState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes every waiter after a state change.
    fn notify(&self) {
        self.changed.send_replace(());
    }
}

/// A fake Mesos agent hosting one executor of one framework.
///
/// Dropping it stops serving (at the latest when the runtime shuts down);
/// [`FakeAgent::stop`] does so deterministically.
#[derive(Debug)]
pub struct FakeAgent {
    shared: Arc<Shared>,
    address: SocketAddr,
    server: tokio::sync::Mutex<Option<ServerHandle>>,
}

impl FakeAgent {
    /// Starts an agent listening on `127.0.0.1:<ephemeral port>`.
    pub async fn start(setup: AgentSetup) -> Result<FakeAgent, HarnessError> {
        let listener = server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let address = listener.local_addr().map_err(|source| HarnessError::Bind {
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
        let (changed, _) = watch::channel(());
        let shared = Arc::new(Shared {
            state: Mutex::new(AgentState::new(setup, address)),
            changed,
        });
        let server = server::serve(listener, Arc::clone(&shared));
        Ok(FakeAgent {
            shared,
            address,
            server: tokio::sync::Mutex::new(Some(server)),
        })
    }

    /// `ip:port` of the agent (the value of `MESOS_AGENT_ENDPOINT`).
    pub fn endpoint(&self) -> SocketAddr {
        self.address
    }

    /// `http://ip:port/api/v1/executor`.
    pub fn executor_url(&self) -> String {
        format!("http://{}/api/v1/executor", self.address)
    }

    /// The environment the agent gives the executor whose sandbox directory
    /// is `sandbox` (§4.3), to spawn an executor as the agent would.
    pub fn executor_env(&self, sandbox: &Path) -> Vec<(String, String)> {
        self.shared.lock().setup.executor_env(self.address, sandbox)
    }

    /// Waits until the executor has an open subscription and returns its
    /// SUBSCRIBE (with `unacknowledged_tasks` / `unacknowledged_updates`).
    pub async fn wait_subscribed(
        &self,
        timeout: Duration,
    ) -> Result<call::Subscribe, HarnessError> {
        self.wait_until("an open executor subscription", timeout, |state| {
            state.live_subscribe().cloned()
        })
        .await
    }

    /// Sends an event on the current subscription, RecordIO-framed in the
    /// subscription's encoding.
    pub fn send(&self, event: Event) -> Result<(), HarnessError> {
        self.shared.lock().send(&event)
    }

    /// LAUNCH `task`: queued until the executor's first SUBSCRIBE (then sent
    /// after SUBSCRIBED), sent at once afterwards.
    pub fn launch(&self, task: TaskInfo) -> Result<(), HarnessError> {
        self.shared.lock().launch(task)
    }

    /// KILL `task_id` without a kill policy.
    pub fn kill(&self, task_id: TaskId) -> Result<(), HarnessError> {
        self.kill_with_policy(task_id, None)
    }

    /// KILL `task_id`; a `kill_policy` overrides the task's own.
    pub fn kill_with_policy(
        &self,
        task_id: TaskId,
        kill_policy: Option<KillPolicy>,
    ) -> Result<(), HarnessError> {
        self.send(Event {
            r#type: Some(event::Type::Kill as i32),
            kill: Some(event::Kill {
                task_id,
                kill_policy,
            }),
            ..Default::default()
        })
    }

    /// ACKNOWLEDGED for an update the agent received (from an UPDATE call or
    /// a re-subscription's `unacknowledged_updates`); fails for any other.
    pub fn acknowledge(&self, task_id: TaskId, uuid: Vec<u8>) -> Result<(), HarnessError> {
        self.shared.lock().acknowledge(task_id, uuid)
    }

    /// SHUTDOWN the executor: sent now if subscribed, and the answer to any
    /// later SUBSCRIBE.
    pub fn shutdown(&self) -> Result<(), HarnessError> {
        let result = self.shared.lock().shutdown();
        self.shared.notify();
        result
    }

    /// Every call that decoded, in arrival order, including rejected ones.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The statuses of every UPDATE call the agent accepted, as received
    /// (the agent would fill in `agent_id` and `timestamp`; not done here).
    pub fn updates(&self) -> Vec<TaskStatus> {
        self.shared.lock().updates.clone()
    }

    /// Every executor update the agent processed, in order: the statuses of
    /// accepted UPDATE calls and the `unacknowledged_updates` of each
    /// re-subscription (so an update may appear again; its uuid tells).
    pub fn processed_updates(&self) -> Vec<TaskStatus> {
        self.shared.lock().processed.clone()
    }

    /// Removes `task_id` from the LAUNCHes queued until the executor's first
    /// subscription (a kill before delivery); false if it is not queued.
    pub fn remove_queued(&self, task_id: &TaskId) -> bool {
        self.shared.lock().remove_queued(task_id)
    }

    /// A receiver that is marked changed after every change of the agent's
    /// state (a call handled, an event sent, a restart), to follow the agent
    /// without polling.
    pub fn changes(&self) -> watch::Receiver<()> {
        self.shared.changed.subscribe()
    }

    /// Status updates the agent generated itself (TASK_LOST after a restart).
    pub fn agent_updates(&self) -> Vec<TaskStatus> {
        self.shared.lock().agent_updates.clone()
    }

    /// `(task id, uuid)` of the updates received and not yet acknowledged:
    /// what a re-subscribing executor must list in `unacknowledged_updates`
    /// (it may list more, updates that never reached the agent).
    pub fn pending_acknowledgements(&self) -> Vec<(TaskId, Vec<u8>)> {
        self.shared.lock().unacknowledged.clone()
    }

    /// Every non-2xx answer given, in order.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.lock().rejections.clone()
    }

    /// The first call (received so far or within `timeout`) for which
    /// `predicate` holds.
    pub async fn wait_for_call<P>(
        &self,
        predicate: P,
        timeout: Duration,
    ) -> Result<Call, HarnessError>
    where
        P: Fn(&Call) -> bool,
    {
        self.wait_until("a matching executor call", timeout, |state| {
            state.calls.iter().find(|c| predicate(c)).cloned()
        })
        .await
    }

    /// Kills the agent "process": the subscription stream and every other
    /// connection drop without a clean HTTP end and nothing listens until
    /// [`FakeAgent::restart`].
    pub async fn disconnect(&self) -> Result<(), HarnessError> {
        let mut server = self.server.lock().await;
        let Some(handle) = server.take() else {
            return Err(self.wrong_state("disconnect"));
        };
        handle.stop().await;
        self.shared.lock().go_down();
        self.shared.notify();
        Ok(())
    }

    /// Starts the agent again on the same port, recovering a checkpointing
    /// framework's executor (see the module docs).
    pub async fn restart(&self) -> Result<(), HarnessError> {
        let mut server = self.server.lock().await;
        if server.is_some() {
            return Err(self.wrong_state("restart"));
        }
        let listener = server::bind(self.address)?;
        let (generation, window) = {
            let mut state = self.shared.lock();
            state.come_up();
            (
                state.restart_generation,
                state.setup.subscription_backoff_max,
            )
        };
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            shared.lock().reregistration_timed_out(generation);
            shared.notify();
        });
        *server = Some(server::serve(listener, Arc::clone(&self.shared)));
        self.shared.notify();
        Ok(())
    }

    /// Stops serving for good (like [`FakeAgent::disconnect`], without a
    /// way back).
    pub async fn stop(self) {
        if let Some(handle) = self.server.lock().await.take() {
            handle.stop().await;
        }
        self.shared.lock().go_down();
    }

    fn wrong_state(&self, operation: &'static str) -> HarnessError {
        HarnessError::WrongState {
            operation,
            state: self.shared.lock().lifecycle.name(),
        }
    }

    /// Polls `check` after every state change until it yields a value.
    async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&AgentState) -> Option<T>,
    ) -> Result<T, HarnessError> {
        let mut changed = self.shared.changed.subscribe();
        let wait = async {
            loop {
                if let Some(found) = check(&self.shared.lock()) {
                    return found;
                }
                // The sender lives as long as `self`, so this cannot fail
                // while we wait.
                let _ = changed.changed().await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| HarnessError::Timeout {
                what: what.to_owned(),
                timeout,
            })
    }
}
