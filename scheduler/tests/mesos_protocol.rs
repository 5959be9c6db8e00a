//! The Mesos protocol layer against a protocol-faithful fake master: subscription, offers,
//! launch through ACCEPT, status updates and acknowledgements, kill, reconciliation, leader
//! redirects and heartbeat loss.

use std::collections::BTreeMap;
use std::time::Duration;

use eremetic::mesos::calls::{self, FrameworkSettings, ReconcileTarget};
use eremetic::mesos::client::{ClientSettings, MesosClient, Subscription};
use eremetic::mesos::launch_mode::{ExecutorSettings, LaunchMode};
use eremetic::mesos::offers::Leftovers;
use eremetic::mesos::task_info::{task_info, LaunchSettings};
use eremetic::mesos::updates::{read_status, StatusChange};
use eremetic::mesos::{MasterUrl, MesosError};
use eremetic::task::{Network, NewTask, PortProtocol, PortRequest, Task, TaskId, TaskState};
use mesos_client::ClientError;
use mesos_harness::master::{AgentSpec, FakeMaster, MasterSetup};
use mesos_proto::v1::scheduler::{event, Event};
use mesos_proto::v1::{Offer, TaskState as MesosState};
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(10);

fn framework() -> FrameworkSettings {
    FrameworkSettings {
        name: "Eremetic".into(),
        user: "root".into(),
        role: "*".into(),
        checkpoint: true,
        failover_timeout: Duration::from_secs(3600),
        principal: None,
        hostname: None,
        webui_url: None,
        partition_aware: true,
    }
}

fn client_for(url: &str) -> MesosClient {
    let master = MasterUrl::parse(url).expect("valid master url");
    let mut settings = ClientSettings::new(&master);
    settings.request_timeout = WAIT;
    MesosClient::new(settings).expect("client")
}

fn address(master: &FakeMaster) -> String {
    format!("http://{}", master.endpoint())
}

fn task() -> Task {
    let request = NewTask {
        name: None,
        image: "busybox:latest".into(),
        command: Some("echo hello".into()),
        args: Vec::new(),
        cpu: 0.5,
        mem: 64.0,
        env: BTreeMap::from([("GREETING".into(), "hi".into())]),
        masked_env: BTreeMap::new(),
        labels: BTreeMap::new(),
        volumes: Vec::new(),
        volumes_from: Vec::new(),
        ports: vec![PortRequest {
            container_port: 80,
            protocol: PortProtocol::Tcp,
        }],
        network: Network::Bridge,
        dns: None,
        agent_constraints: Vec::new(),
        callback_uri: None,
        callback_states: None,
        fetch: Vec::new(),
        uris_count: 0,
        force_pull_image: false,
        privileged: false,
        user: None,
        timeout_secs: None,
        retries: None,
    };
    let id = TaskId::generate([7; 16]);
    Task::new(id, "hello".into(), request, OffsetDateTime::now_utc())
}

async fn next_of(subscription: &mut Subscription, kind: event::Type) -> Event {
    loop {
        let event = subscription.next_event().await.expect("event");
        if event.r#type == Some(kind as i32) {
            return event;
        }
    }
}

async fn subscribed(subscription: &mut Subscription) -> String {
    let event = subscription.next_event().await.expect("first event");
    assert_eq!(
        event.r#type,
        Some(event::Type::Subscribed as i32),
        "{event:?}"
    );
    event
        .subscribed
        .expect("subscribed body")
        .framework_id
        .value
}

async fn first_offer(subscription: &mut Subscription) -> Offer {
    let event = next_of(subscription, event::Type::Offers).await;
    event.offers.expect("offers body").offers.remove(0)
}

async fn next_update(subscription: &mut Subscription) -> (StatusChange, Event) {
    let event = next_of(subscription, event::Type::Update).await;
    let status = &event.update.as_ref().expect("update body").status;
    (read_status(status).expect("readable status"), event)
}

#[tokio::test]
async fn task_lifecycle_through_the_scheduler_api() {
    let master = FakeMaster::start(MasterSetup::default())
        .await
        .expect("master");
    master
        .add_agent(AgentSpec::new("agent-1", "agent1.example"))
        .expect("agent");
    let client = client_for(&address(&master));
    let mut subscription = client
        .subscribe(&calls::subscribe(&framework(), None))
        .await
        .expect("subscribe");
    let framework_id = subscribed(&mut subscription).await;
    let session = subscription.session().clone();
    assert!(!session.stream_id().is_empty());

    // Launch the task on the first offer.
    let offer = first_offer(&mut subscription).await;
    let task = task();
    let claim = Leftovers::new(&offer, "*")
        .claim(&task.request, OffsetDateTime::now_utc())
        .expect("task fits the agent");
    assert_eq!(claim.host_ports, vec![31000]);
    let settings = LaunchSettings {
        instance_id: "eremetic:test".into(),
        user_network: None,
        kill_grace: Duration::from_secs(5),
        mode: LaunchMode::Docker,
        executor: ExecutorSettings::default(),
    };
    let info = task_info(&task, 0, &claim, None, &settings).expect("task info");
    let mesos_id = info.task_id.value.clone();
    session
        .call(&calls::accept(
            &framework_id,
            vec![offer.id.clone()],
            vec![info],
            Duration::from_secs(5),
        ))
        .await
        .expect("accept");
    let view = master
        .wait_for_task_state(&mesos_id, MesosState::TaskStaging, WAIT)
        .await
        .expect("staging");
    assert_eq!(view.agent_id, "agent-1");

    // RUNNING arrives with a uuid and is acknowledged.
    master
        .update_task(&mesos_id, MesosState::TaskRunning, None, None)
        .expect("running update");
    let (running, event) = next_update(&mut subscription).await;
    assert_eq!(running.state, Some(TaskState::Running));
    assert_eq!(running.task_id.as_ref(), Some(&task.id));
    assert_eq!(running.attempt, Some(0));
    let status = &event.update.as_ref().expect("update").status;
    let ack = calls::acknowledge(&framework_id, status).expect("acknowledgeable");
    session.call(&ack).await.expect("acknowledge");

    // Kill, then the executor reports KILLED.
    session
        .call(&calls::kill(
            &framework_id,
            &mesos_id,
            Some("agent-1"),
            None,
        ))
        .await
        .expect("kill");
    master
        .wait_for_call(|call| call.kill.is_some(), WAIT)
        .await
        .expect("kill received");
    assert_eq!(master.kills()[0].task_id, mesos_id);
    master
        .update_task(
            &mesos_id,
            MesosState::TaskKilled,
            None,
            Some("Command terminated with signal Terminated"),
        )
        .expect("killed update");
    let (killed, event) = next_update(&mut subscription).await;
    assert_eq!(killed.state, Some(TaskState::Killed));
    assert_eq!(killed.exit_code, Some(143));
    let status = &event.update.as_ref().expect("update").status;
    session
        .call(&calls::acknowledge(&framework_id, status).expect("acknowledgeable"))
        .await
        .expect("acknowledge");
    let acks = master.acknowledgements();
    assert_eq!(acks.len(), 2);
    assert!(acks.iter().all(|ack| ack.matched), "{acks:?}");

    // The master forgot the task: explicit reconciliation answers without a uuid.
    let targets = [ReconcileTarget {
        mesos_task_id: mesos_id.clone(),
        agent_id: "agent-1".into(),
    }];
    session
        .call(&calls::reconcile(&framework_id, &targets).expect("explicit"))
        .await
        .expect("reconcile");
    let (reconciled, event) = next_update(&mut subscription).await;
    assert!(reconciled.from_reconciliation);
    assert_eq!(reconciled.mesos_state, MesosState::TaskGone);
    assert_eq!(reconciled.state, Some(TaskState::Lost));
    let status = &event.update.as_ref().expect("update").status;
    assert_eq!(calls::acknowledge(&framework_id, status), None);
    master.stop().await;
}

#[tokio::test]
async fn declined_offers_leave_the_master() {
    let master = FakeMaster::start(MasterSetup::default())
        .await
        .expect("master");
    master
        .add_agent(AgentSpec::new("agent-1", "agent1.example"))
        .expect("agent");
    let client = client_for(&address(&master));
    let mut subscription = client
        .subscribe(&calls::subscribe(&framework(), None))
        .await
        .expect("subscribe");
    let framework_id = subscribed(&mut subscription).await;
    let offer = first_offer(&mut subscription).await;
    let decline = calls::decline(&framework_id, vec![offer.id], Duration::from_secs(60));
    subscription
        .session()
        .call(&decline)
        .await
        .expect("decline");
    assert!(master.offers_outstanding().is_empty());
    let suppress = calls::suppress(&framework_id, &[]);
    subscription
        .session()
        .call(&suppress)
        .await
        .expect("suppress");
    master.stop().await;
}

#[tokio::test]
async fn subscribe_follows_the_redirect_to_the_leader() {
    let leader = FakeMaster::start(MasterSetup::default())
        .await
        .expect("leader");
    let follower = FakeMaster::start(MasterSetup::default())
        .await
        .expect("follower");
    follower.set_leader(Some(leader.endpoint()));
    let client = client_for(&address(&follower));
    let mut subscription = client
        .subscribe(&calls::subscribe(&framework(), None))
        .await
        .expect("subscribe through the follower");
    let framework_id = subscribed(&mut subscription).await;
    assert_eq!(subscription.session().endpoint(), leader.scheduler_url());
    let revive = calls::revive(&framework_id, &[]);
    subscription
        .session()
        .call(&revive)
        .await
        .expect("revive at the leader");
    assert_eq!(
        leader.wait_subscribed(WAIT).await.expect("subscribed"),
        framework_id
    );
    follower.stop().await;
    leader.stop().await;
}

#[tokio::test]
async fn resubscription_keeps_the_framework_id() {
    let master = FakeMaster::start(MasterSetup::default())
        .await
        .expect("master");
    let client = client_for(&address(&master));
    let mut first = client
        .subscribe(&calls::subscribe(&framework(), None))
        .await
        .expect("subscribe");
    let framework_id = subscribed(&mut first).await;
    master.disconnect_framework().expect("disconnect");
    let mut second = client
        .subscribe(&calls::subscribe(&framework(), Some(&framework_id)))
        .await
        .expect("resubscribe");
    assert_eq!(subscribed(&mut second).await, framework_id);
    assert_ne!(first.session().stream_id(), second.session().stream_id());
    master.stop().await;
}

#[tokio::test]
async fn calls_on_a_dropped_subscription_are_rejected_naming_the_call() {
    let master = FakeMaster::start(MasterSetup::default())
        .await
        .expect("master");
    let client = client_for(&address(&master));
    let mut subscription = client
        .subscribe(&calls::subscribe(&framework(), None))
        .await
        .expect("subscribe");
    let framework_id = subscribed(&mut subscription).await;
    master.disconnect_framework().expect("disconnect");
    let error = subscription
        .session()
        .call(&calls::revive(&framework_id, &[]))
        .await
        .expect_err("not subscribed any more");
    match &error {
        MesosError::Client(ClientError::Rejected { call, status, .. }) => {
            assert_eq!((*call, *status), ("REVIVE", 403), "{error}");
        }
        other => panic!("expected a rejected call, got {other}"),
    }
    master.stop().await;
}

#[tokio::test]
async fn heartbeats_keep_the_stream_alive_and_a_dropped_stream_ends_it() {
    let setup = MasterSetup {
        heartbeat_interval: Duration::from_millis(50),
        ..MasterSetup::default()
    };
    let master = FakeMaster::start(setup).await.expect("master");
    let client = client_for(&address(&master));
    let mut subscription = client
        .subscribe(&calls::subscribe(&framework(), None))
        .await
        .expect("subscribe");
    subscribed(&mut subscription).await;
    assert_eq!(subscription.event_timeout(), Duration::from_millis(250));
    // Heartbeats keep the stream alive for several timeouts.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(600);
    while tokio::time::Instant::now() < deadline {
        subscription
            .next_event()
            .await
            .expect("heartbeats keep coming");
    }
    // Losing leadership drops the stream, which must end it.
    master.set_leader(None);
    let error = loop {
        match subscription.next_event().await {
            Ok(_) => continue,
            Err(error) => break error,
        }
    };
    assert!(
        matches!(
            error,
            MesosError::Client(ClientError::StreamClosed { .. } | ClientError::StreamBroken { .. })
        ),
        "{error}"
    );
    master.stop().await;
}

/// A master that answers SUBSCRIBE, sends SUBSCRIBED announcing a 50 ms heartbeat interval,
/// then goes silent while keeping the connection open (a hung process).
async fn silent_master() -> (String, tokio::task::JoinHandle<()>) {
    use prost::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while !request.windows(4).any(|window| window == b"\r\n\r\n") {
            let read = socket.read(&mut buffer).await.expect("read request");
            assert!(read > 0, "client closed before sending its request");
            request.extend_from_slice(&buffer[..read]);
        }
        let event = Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                framework_id: mesos_proto::v1::FrameworkId {
                    value: "fw-silent".into(),
                },
                heartbeat_interval_seconds: Some(0.05),
                master_info: None,
            }),
            ..Default::default()
        };
        let record = mesos_proto::recordio::encode_record(&event.encode_to_vec()).expect("record");
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\
Mesos-Stream-Id: 7e0ec5b2-1d5c-4b8e-9a4b-2b5c5f3d1a00\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
        response.extend_from_slice(format!("{:x}\r\n", record.len()).as_bytes());
        response.extend_from_slice(&record);
        response.extend_from_slice(b"\r\n");
        socket.write_all(&response).await.expect("write response");
        // Keep the connection open without sending anything more.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    (url, server)
}

#[tokio::test]
async fn missing_heartbeats_are_a_timeout() {
    let (url, server) = silent_master().await;
    let client = client_for(&url);
    let mut subscription = client
        .subscribe(&calls::subscribe(&framework(), None))
        .await
        .expect("subscribe");
    assert_eq!(subscribed(&mut subscription).await, "fw-silent");
    let started = tokio::time::Instant::now();
    let error = subscription.next_event().await.expect_err("silence");
    match error {
        MesosError::Client(ClientError::HeartbeatTimeout { waited, .. }) => {
            assert_eq!(waited, Duration::from_millis(250));
            assert!(started.elapsed() >= Duration::from_millis(250));
        }
        other => panic!("expected a heartbeat timeout, got {other}"),
    }
    server.abort();
}
