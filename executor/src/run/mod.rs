//! The executor process: the [`Machine`] wired to the agent ([`AgentClient`]), the Docker
//! runtime and timers.
//!
//! One loop owns the machine and feeds it [`Input`]s from a channel; the subscription reader,
//! the container tasks and the timers are spawned tasks writing into that channel. UPDATE
//! calls go through one sender task, so that the agent receives a task's updates in the
//! order they were made; a call queued before a re-subscription is dropped (the SUBSCRIBE
//! carries it).

mod container;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deimos_runtime::runtime::{ContainerRuntime, DockerRuntime};
use futures::StreamExt;
use mesos_proto::v1::executor::{event, Call, Event};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::agent::{is_transient, AgentClient};
use crate::env::Settings;
use crate::error::Error;
use crate::protocol::{Action, ContainerOutcome, ExitReason, Input, Machine};
use crate::task::TaskPlan;
use crate::watchdog;

/// Attempts of one UPDATE call while the subscription it belongs to lasts.
pub const SEND_ATTEMPTS: u32 = 5;
/// Pause between two attempts of an UPDATE call.
pub const SEND_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Connects to Docker and the agent of `settings` and runs until the executor's work is done,
/// watched by its [`watchdog`] process.
pub async fn run(settings: Settings) -> Result<ExitReason, Error> {
    let runtime: Arc<dyn ContainerRuntime> = Arc::new(DockerRuntime::connect(None).await?);
    // Before any container exists: from now on, should this process die, the watchdog
    // removes the containers labelled with this instance.
    let instance = hex(&random_bytes());
    let lifeline = watchdog::start(&instance)?;
    log::info!("executor instance {instance}: its watchdog runs");
    let result = run_with_runtime(settings, runtime, instance).await;
    // Only now may the watchdog sweep (it finds nothing after a clean exit).
    drop(lifeline);
    result
}

/// [`run`] with a given container runtime, labelling the containers with the executor
/// `instance` id, without a watchdog: should the process die, its containers are the
/// caller's to remove.
pub async fn run_with_runtime(
    settings: Settings,
    runtime: Arc<dyn ContainerRuntime>,
    instance: String,
) -> Result<ExitReason, Error> {
    let agent = AgentClient::new(&settings)?;
    let machine = Machine::new(settings.clone(), instance, Box::new(random_bytes));
    let (inputs, receiver) = mpsc::unbounded_channel();
    let generation = Arc::new(AtomicU64::new(0));
    let sender = spawn_sender(agent.clone(), Arc::clone(&generation));
    spawn_termination_watch(inputs.clone());
    let mut driver = Driver {
        settings,
        agent,
        runtime,
        machine,
        inputs,
        generation,
        sender,
        subscription: None,
        recovery_timer: None,
        containers: Arc::new(Mutex::new(BTreeMap::new())),
    };
    Ok(driver.run(receiver).await)
}

/// An input, tagged with the subscription it came from when it came from one.
#[derive(Debug)]
struct Message {
    generation: Option<u64>,
    input: Input,
}

struct Driver {
    settings: Settings,
    agent: AgentClient,
    runtime: Arc<dyn ContainerRuntime>,
    machine: Machine,
    inputs: mpsc::UnboundedSender<Message>,
    /// Number of the current subscription attempt.
    generation: Arc<AtomicU64>,
    sender: mpsc::UnboundedSender<(u64, Call)>,
    subscription: Option<JoinHandle<()>>,
    recovery_timer: Option<JoinHandle<()>>,
    /// Docker ids of the started containers by task, until they are removed.
    containers: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Driver {
    async fn run(&mut self, mut receiver: mpsc::UnboundedReceiver<Message>) -> ExitReason {
        let mut actions = self.machine.start();
        loop {
            for action in std::mem::take(&mut actions) {
                if let Action::Exit(reason) = action {
                    self.cleanup().await;
                    return reason;
                }
                self.execute(action);
            }
            // The driver holds a sender, so the channel never closes.
            let Some(message) = receiver.recv().await else {
                return ExitReason::AgentLost {
                    reason: "the executor's input channel closed".into(),
                };
            };
            let current = self.generation.load(Ordering::SeqCst);
            if message.generation.is_some_and(|g| g != current) {
                continue; // from a replaced subscription
            }
            actions = self.machine.handle(message.input);
        }
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::Subscribe(call) => self.subscribe(call),
            Action::ScheduleSubscribe { backoff_max } => {
                let delay = random_delay(backoff_max);
                log::info!("subscribing to the agent again in {delay:?}");
                self.after(delay, Input::SubscribeDue);
            }
            Action::Send(call) => {
                let generation = self.generation.load(Ordering::SeqCst);
                if self.sender.send((generation, call)).is_err() {
                    log::error!(
                        "the UPDATE sender has stopped; the update waits for the next subscription"
                    );
                }
            }
            Action::Launch(plan) => self.launch(*plan),
            Action::Stop {
                task_id,
                container,
                grace,
            } => {
                let runtime = Arc::clone(&self.runtime);
                tokio::spawn(async move {
                    container::stop(&runtime, &task_id, &container, grace).await;
                });
            }
            Action::StartRecoveryTimer(after) => {
                if let Some(timer) = self.recovery_timer.take() {
                    timer.abort();
                }
                self.recovery_timer = Some(self.after(after, Input::RecoveryTimedOut));
            }
            Action::CancelRecoveryTimer => {
                if let Some(timer) = self.recovery_timer.take() {
                    timer.abort();
                }
            }
            Action::StartShutdownTimer(after) => {
                self.after(after, Input::ShutdownDeadline);
            }
            Action::Exit(_) => {} // handled by the loop
        }
    }

    fn after(&self, delay: Duration, input: Input) -> JoinHandle<()> {
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = inputs.send(Message {
                generation: None,
                input,
            });
        })
    }

    /// Opens a new subscription, replacing the previous one.
    fn subscribe(&mut self, call: Call) {
        if let Some(previous) = self.subscription.take() {
            previous.abort();
        }
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let agent = self.agent.clone();
        let inputs = self.inputs.clone();
        let tag = move |input| Message {
            generation: Some(generation),
            input,
        };
        self.subscription = Some(tokio::spawn(async move {
            let mut events = match agent.subscribe(&call).await {
                Ok(events) => events,
                Err(error) => {
                    let permanent = !is_transient(&error);
                    let reason = error.to_string();
                    let _ = inputs.send(tag(Input::SubscribeFailed { permanent, reason }));
                    return;
                }
            };
            log::info!("subscribed to the agent at {}", agent.url());
            let reason = loop {
                match events.next().await {
                    Some(Ok(event)) => {
                        if inputs.send(tag(Input::Event(Box::new(event)))).is_err() {
                            return;
                        }
                    }
                    Some(Err(error)) => break error.to_string(),
                    None => break "the agent closed the event stream".to_owned(),
                }
            };
            let _ = inputs.send(tag(Input::Disconnected { reason }));
        }));
    }

    /// Starts a task's container and follows it to its end, reporting both.
    fn launch(&self, mut plan: TaskPlan) {
        let runtime = Arc::clone(&self.runtime);
        let inputs = self.inputs.clone();
        let sandbox = self.settings.sandbox.clone();
        let operator = self.settings.operator.clone();
        let containers = Arc::clone(&self.containers);
        tokio::spawn(async move {
            let task_id = plan.task_id.clone();
            let report = |outcome| {
                let _ = inputs.send(Message {
                    generation: None,
                    input: Input::Container {
                        task_id: task_id.clone(),
                        outcome,
                    },
                });
            };
            let id = match container::launch(&runtime, &mut plan, &sandbox, &operator).await {
                Ok(id) => id,
                Err(error) => {
                    log::error!("launching task {task_id}: {error}");
                    let reason = error.to_string();
                    report(match error {
                        Error::Refused { .. } => ContainerOutcome::Refused { reason },
                        _ => ContainerOutcome::LaunchFailed { reason },
                    });
                    return;
                }
            };
            log::info!("task {task_id} runs in container {id}");
            lock(&containers).insert(task_id.clone(), id.clone());
            // Read before following: the container is removed once it has ended.
            let inspect = match runtime.inspect_json(&id).await {
                Ok(document) => Some(Box::new(document)),
                Err(error) => {
                    log::warn!("inspecting the container {id} of task {task_id}: {error}; TASK_RUNNING goes without it");
                    None
                }
            };
            report(ContainerOutcome::Started {
                container: id.clone(),
                inspect,
            });
            let outcome = container::follow(&runtime, &task_id, &id, &sandbox).await;
            lock(&containers).remove(&task_id);
            report(outcome);
        });
    }

    /// Before exiting: nothing may keep running unobserved.
    async fn cleanup(&mut self) {
        if let Some(subscription) = self.subscription.take() {
            subscription.abort();
        }
        let left: Vec<(String, String)> = lock(&self.containers)
            .iter()
            .map(|(task, id)| (task.clone(), id.clone()))
            .collect();
        for (task_id, id) in left {
            log::warn!("removing the container {id} of task {task_id} before exiting");
            container::remove(&self.runtime, &task_id, &id).await;
        }
    }
}

/// SIGTERM (an operator, or an agent tearing the executor down) is handled as SHUTDOWN: the
/// task containers live outside the executor's process group, so they must be stopped here.
fn spawn_termination_watch(inputs: mpsc::UnboundedSender<Message>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            log::warn!("cannot watch for SIGTERM ({error}); it will kill the executor outright");
            return;
        }
    };
    tokio::spawn(async move {
        if terminate.recv().await.is_some() {
            log::warn!("SIGTERM received: shutting down");
            let shutdown = Event {
                r#type: Some(event::Type::Shutdown as i32),
                ..Default::default()
            };
            let _ = inputs.send(Message {
                generation: None,
                input: Input::Event(Box::new(shutdown)),
            });
        }
    });
}

/// The process exit code of a run (documented in the binary's help):
/// `0` every task ended and was acknowledged, or SHUTDOWN; `3` the agent was lost (no
/// checkpointing, or the recovery timeout passed); `4` the agent refused the subscription;
/// `2` the executor could not start (Docker unreachable, HTTP client).
pub fn exit_code(result: &Result<ExitReason, Error>) -> u8 {
    match result {
        Ok(ExitReason::Completed | ExitReason::Shutdown) => 0,
        Ok(ExitReason::AgentLost { .. }) => 3,
        Ok(ExitReason::SubscribeRejected { .. }) => 4,
        Err(_) => 2,
    }
}

/// The one task sending calls, in order. A call is retried while its subscription lasts and
/// the failure is transient; calls of replaced subscriptions are dropped (the new SUBSCRIBE
/// carries every unacknowledged update).
fn spawn_sender(
    agent: AgentClient,
    generation: Arc<AtomicU64>,
) -> mpsc::UnboundedSender<(u64, Call)> {
    let (sender, mut queue) = mpsc::unbounded_channel::<(u64, Call)>();
    tokio::spawn(async move {
        while let Some((call_generation, call)) = queue.recv().await {
            let mut attempt = 1;
            loop {
                if generation.load(Ordering::SeqCst) != call_generation {
                    break;
                }
                match agent.send(&call).await {
                    Ok(()) => break,
                    Err(error) if is_transient(&error) && attempt < SEND_ATTEMPTS => {
                        log::warn!("{error}; retrying in {SEND_RETRY_DELAY:?}");
                        attempt += 1;
                        tokio::time::sleep(SEND_RETRY_DELAY).await;
                    }
                    Err(error) => {
                        log::error!("{error}; the update waits for the next subscription");
                        break;
                    }
                }
            }
        }
    });
    sender
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single map operation: a panic cannot leave it half-done.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// 16 random bytes from the operating system. Should the system's generator fail, the bytes
/// are derived from the clock and a counter instead: unique enough for an update id, which is
/// all they are.
fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes[..8].copy_from_slice(&nanos.to_le_bytes());
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        bytes[8..].copy_from_slice(&count.to_le_bytes());
    }
    bytes
}

/// Bytes as lower-case hexadecimal.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A random delay in `[0, max]` (the official executor library's linear-random backoff).
fn random_delay(max: Duration) -> Duration {
    mesos_client::backoff::random_up_to(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_delays_stay_within_the_backoff_maximum() {
        let max = Duration::from_millis(200);
        for _ in 0..100 {
            assert!(random_delay(max) <= max);
        }
        assert_eq!(random_delay(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn random_bytes_differ_between_calls() {
        assert_ne!(random_bytes(), random_bytes());
    }
}
