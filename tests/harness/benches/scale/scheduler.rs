//! The benchmark's scheduler: subscribes over HTTP (protobuf), fills every offer with tasks
//! until all are launched, then suppresses offers, and acknowledges every update carrying a
//! uuid. Calls go out through a few workers, each on its own keep-alive connection, so that
//! reading events never waits for an answer.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mesos_client::{Client, ClientConfig, Subscription};
use mesos_proto::v1::scheduler::{call, event, Call, Event};
use mesos_proto::v1::{
    offer, value, AgentId, CommandInfo, FrameworkId, FrameworkInfo, Offer, Resource, TaskId,
    TaskInfo, TaskState,
};
use prost::Message as _;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// Concurrent calls in flight (one connection each).
const WORKERS: usize = 8;

/// What the scheduler saw.
pub(crate) struct Outcome {
    /// From SUBSCRIBE until every task reached its agent.
    pub(crate) launch_time: Duration,
    /// Updates received, retries of unacknowledged ones included (each acknowledged when
    /// it carried a uuid).
    pub(crate) updates: u64,
    /// From the first update received until the last acknowledgement was answered.
    pub(crate) update_time: Duration,
}

/// A call to send: its name (for errors) and protobuf body.
type Job = (&'static str, Vec<u8>);

/// Runs the scheduler until `total` tasks finished and every update was acknowledged;
/// `launched` counts the tasks the agents received.
pub(crate) async fn run(
    url: &str,
    per_offer: usize,
    total: u64,
    launched: &AtomicU64,
) -> Result<Outcome, String> {
    let client = Client::new(ClientConfig::default()).map_err(|e| e.to_string())?;
    let subscribe = Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: FrameworkInfo {
                user: "bench".to_owned(),
                name: "scale bench".to_owned(),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let start = Instant::now();
    let first_event = Some(Duration::from_secs(30));
    let mut subscription: Subscription<Event> = client
        .subscribe(url, "SUBSCRIBE", subscribe.encode_to_vec(), first_event)
        .await
        .map_err(|e| e.to_string())?;
    // Heartbeats come every 15 s.
    subscription.set_event_timeout(Some(Duration::from_secs(60)));
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let mut workers = Vec::with_capacity(WORKERS);
    let mut senders: Vec<UnboundedSender<Job>> = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        let (sender, mut jobs) = unbounded_channel::<Job>();
        let (client, failure) = (client.clone(), Arc::clone(&failure));
        let endpoint = subscription.endpoint().to_owned();
        let stream_id = subscription.stream_id().map(str::to_owned);
        workers.push(tokio::spawn(async move {
            while let Some((name, body)) = jobs.recv().await {
                let sent = client
                    .call(&endpoint, name, body, stream_id.as_deref())
                    .await;
                if let Err(error) = sent {
                    let mut failure = failure.lock().unwrap_or_else(|p| p.into_inner());
                    failure.get_or_insert_with(|| error.to_string());
                }
            }
        }));
        senders.push(sender);
    }
    let mut next_worker = 0;
    let mut send = move |job: Job| {
        // A worker only stops when its sender is dropped.
        let _ = senders[next_worker % WORKERS].send(job);
        next_worker += 1;
    };
    let mut framework_id = String::new();
    let mut next_task: u64 = 0;
    let mut suppressed = false;
    let (mut updates, mut finished) = (0u64, 0u64);
    let mut finished_tasks: HashSet<String> = HashSet::new();
    let mut first_update: Option<Instant> = None;
    let mut launch_time: Option<Duration> = None;
    while finished < total {
        if let Some(error) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(format!("a call failed: {error}"));
        }
        let event = subscription.next_event().await.map_err(|e| e.to_string())?;
        match event.r#type.and_then(|t| event::Type::try_from(t).ok()) {
            Some(event::Type::Subscribed) => {
                framework_id = event
                    .subscribed
                    .map(|s| s.framework_id.value)
                    .unwrap_or_default();
            }
            Some(event::Type::Offers) => {
                for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
                    let count = (total - next_task).min(per_offer as u64);
                    if count == 0 {
                        send(("DECLINE", decline(&framework_id, &offer).encode_to_vec()));
                        continue;
                    }
                    let tasks = (next_task..next_task + count)
                        .map(|n| task_info(n, &offer.agent_id))
                        .collect();
                    next_task += count;
                    send((
                        "ACCEPT",
                        accept(&framework_id, &offer, tasks).encode_to_vec(),
                    ));
                }
                if next_task == total && !suppressed {
                    suppressed = true;
                    send((
                        "SUPPRESS",
                        envelope(&framework_id, call::Type::Suppress).encode_to_vec(),
                    ));
                }
            }
            Some(event::Type::Update) => {
                let Some(status) = event.update.map(|u| u.status) else {
                    continue;
                };
                updates += 1;
                first_update.get_or_insert_with(Instant::now);
                // A retried update comes again: a task finishes once.
                if status.state == TaskState::TaskFinished as i32
                    && finished_tasks.insert(status.task_id.value.clone())
                {
                    finished += 1;
                }
                if let Some(uuid) = status.uuid {
                    let ack = Call {
                        acknowledge: Some(call::Acknowledge {
                            agent_id: status.agent_id.unwrap_or_default(),
                            task_id: status.task_id,
                            uuid,
                        }),
                        ..envelope(&framework_id, call::Type::Acknowledge)
                    };
                    send(("ACKNOWLEDGE", ack.encode_to_vec()));
                }
            }
            Some(event::Type::Error) => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                return Err(format!("the master sent ERROR: {message}"));
            }
            _ => {}
        }
        if launch_time.is_none() && launched.load(Ordering::Relaxed) == total {
            launch_time = Some(start.elapsed());
        }
    }
    // Every acknowledgement answered: the workers end once their queues are empty.
    drop(send);
    for worker in workers {
        worker
            .await
            .map_err(|e| format!("a call worker failed: {e}"))?;
    }
    if let Some(error) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(format!("a call failed: {error}"));
    }
    let update_time = first_update.map_or(Duration::ZERO, |first| first.elapsed());
    Ok(Outcome {
        launch_time: launch_time.unwrap_or_else(|| start.elapsed()),
        updates,
        update_time,
    })
}

fn envelope(framework_id: &str, call_type: call::Type) -> Call {
    Call {
        framework_id: Some(FrameworkId {
            value: framework_id.to_owned(),
        }),
        r#type: Some(call_type as i32),
        ..Default::default()
    }
}

fn accept(framework_id: &str, offer: &Offer, tasks: Vec<TaskInfo>) -> Call {
    Call {
        accept: Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![offer::Operation {
                r#type: Some(offer::operation::Type::Launch as i32),
                launch: Some(offer::operation::Launch { task_infos: tasks }),
                ..Default::default()
            }],
            filters: None,
        }),
        ..envelope(framework_id, call::Type::Accept)
    }
}

fn decline(framework_id: &str, offer: &Offer) -> Call {
    Call {
        decline: Some(call::Decline {
            offer_ids: vec![offer.id.clone()],
            filters: None,
        }),
        ..envelope(framework_id, call::Type::Decline)
    }
}

/// Task `n`: 1 cpu and 32 MB, a shell command.
fn task_info(n: u64, agent_id: &AgentId) -> TaskInfo {
    let scalar = |name: &str, amount: f64| Resource {
        name: name.to_owned(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    };
    TaskInfo {
        name: format!("task {n}"),
        task_id: TaskId {
            value: format!("task-{n:06}"),
        },
        agent_id: agent_id.clone(),
        resources: vec![scalar("cpus", 1.0), scalar("mem", 32.0)],
        command: Some(CommandInfo {
            value: Some("true".to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    }
}
