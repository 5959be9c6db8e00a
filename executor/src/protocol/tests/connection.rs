use super::*;

// ----- subscription -------------------------------------------------------------------------

#[test]
fn start_subscribes_with_the_ids_and_arms_the_recovery_timer() {
    let mut machine = machine_with(true);
    let actions = machine.start();
    assert_eq!(actions[0], Action::StartRecoveryTimer(RECOVERY));
    let Action::Subscribe(call) = &actions[1] else {
        panic!("{actions:?}")
    };
    assert_eq!(call.r#type, Some(call::Type::Subscribe as i32));
    assert_eq!(call.framework_id.value, "fw");
    assert_eq!(call.executor_id.value, "ex");
    assert_eq!(call.subscribe, Some(call::Subscribe::default()));
}

#[test]
fn without_checkpointing_the_first_subscription_has_the_registration_timeout() {
    let mut machine = machine_with(false);
    assert_eq!(
        machine.start()[0],
        Action::StartRecoveryTimer(REGISTRATION_TIMEOUT)
    );
}

#[test]
fn subscribed_cancels_the_recovery_timer_once() {
    let mut machine = machine_with(true);
    machine.start();
    assert_eq!(
        machine.handle(subscribed_event(&[])),
        [Action::CancelRecoveryTimer]
    );
    assert!(machine.handle(subscribed_event(&[])).is_empty());
}

#[test]
fn transient_subscribe_failure_retries_after_backoff() {
    let mut machine = machine_with(false);
    machine.start();
    let actions = machine.handle(Input::SubscribeFailed {
        permanent: false,
        reason: "connection refused".into(),
    });
    assert_eq!(
        actions,
        [Action::ScheduleSubscribe {
            backoff_max: DEFAULT_BACKOFF_MAX
        }]
    );
    let actions = machine.handle(Input::SubscribeDue);
    assert!(subscribe_of(&actions).is_some(), "{actions:?}");
}

#[test]
fn permanent_subscribe_failure_exits() {
    let mut machine = machine_with(true);
    machine.start();
    let actions = machine.handle(Input::SubscribeFailed {
        permanent: true,
        reason: "HTTP 400: Framework cannot be found".into(),
    });
    assert_eq!(
        exit_of(&actions),
        Some(ExitReason::SubscribeRejected {
            reason: "HTTP 400: Framework cannot be found".into()
        })
    );
    assert!(machine.handle(Input::SubscribeDue).is_empty());
}

#[test]
fn registration_timeout_without_subscription_exits_as_agent_lost() {
    let mut machine = machine_with(false);
    machine.start();
    machine.handle(Input::SubscribeFailed {
        permanent: false,
        reason: "connection refused".into(),
    });
    let actions = machine.handle(Input::RecoveryTimedOut);
    let Some(ExitReason::AgentLost { reason }) = exit_of(&actions) else {
        panic!("{actions:?}")
    };
    assert!(reason.contains("connection refused"), "{reason}");
}

#[test]
fn stale_recovery_timer_after_resubscription_is_ignored() {
    let mut machine = running("t");
    machine.handle(disconnected());
    machine.handle(Input::SubscribeDue);
    machine.handle(subscribed_event(&[]));
    assert!(machine.handle(Input::RecoveryTimedOut).is_empty());
}

// ----- acknowledgements and re-subscription ----------------------------------------------

#[test]
fn acknowledged_updates_and_tasks_leave_the_subscribe_lists() {
    let mut machine = subscribed();
    let starting = one(&machine.handle(launch(task("t"))));
    let running = one(&machine.handle(started("t")));
    let subscribe = machine.subscribe_call().subscribe.unwrap();
    assert_eq!(subscribe.unacknowledged_tasks.len(), 1);
    assert_eq!(subscribe.unacknowledged_updates.len(), 2);

    machine.handle(ack(&starting));
    let subscribe = machine.subscribe_call().subscribe.unwrap();
    assert!(subscribe.unacknowledged_tasks.is_empty());
    assert_eq!(
        subscribe
            .unacknowledged_updates
            .iter()
            .map(|u| u.status.uuid.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&running.uuid)
    );
    assert!(machine.is_unacknowledged(running.uuid.as_deref().unwrap()));
    assert!(!machine.is_unacknowledged(starting.uuid.as_deref().unwrap()));
}

#[test]
fn disconnection_with_checkpointing_resubscribes_with_unacknowledged_updates() {
    let mut machine = subscribed();
    let starting = one(&machine.handle(launch(task("t"))));
    machine.handle(ack(&starting));
    let running = one(&machine.handle(started("t")));
    let actions = machine.handle(disconnected());
    assert_eq!(
        actions,
        [
            Action::StartRecoveryTimer(RECOVERY),
            Action::ScheduleSubscribe {
                backoff_max: BACKOFF
            }
        ]
    );
    let subscribe = subscribe_of(&machine.handle(Input::SubscribeDue)).unwrap();
    assert!(subscribe.unacknowledged_tasks.is_empty());
    assert_eq!(subscribe.unacknowledged_updates.len(), 1);
    assert_eq!(subscribe.unacknowledged_updates[0].status, running);
    // Already in the SUBSCRIBE: not sent again after SUBSCRIBED.
    assert!(sent(&machine.handle(subscribed_event(&[]))).is_empty());
}

#[test]
fn updates_made_while_disconnected_wait_for_the_subscription() {
    let mut machine = running("t");
    machine.handle(disconnected());
    // The container ends before the SUBSCRIBE is built: carried by the SUBSCRIBE.
    assert!(sent(&machine.handle(exited("t", 0))).is_empty());
    let subscribe = subscribe_of(&machine.handle(Input::SubscribeDue)).unwrap();
    assert_eq!(
        subscribe.unacknowledged_updates[0].status.state(),
        TaskState::TaskFinished
    );
    assert!(sent(&machine.handle(subscribed_event(&[]))).is_empty());
}

#[test]
fn update_made_between_subscribe_and_subscribed_is_sent_after_subscribed() {
    let mut machine = running("t");
    machine.handle(disconnected());
    machine.handle(Input::SubscribeDue);
    assert!(sent(&machine.handle(exited("t", 0))).is_empty());
    let actions = machine.handle(subscribed_event(&[]));
    assert_eq!(states(&sent(&actions)), [TaskState::TaskFinished]);
}

#[test]
fn failed_resubscription_attempts_keep_the_recovery_timer() {
    let mut machine = running("t");
    machine.handle(disconnected());
    machine.handle(Input::SubscribeDue);
    let actions = machine.handle(Input::SubscribeFailed {
        permanent: false,
        reason: "connection refused".into(),
    });
    assert_eq!(
        actions,
        [Action::ScheduleSubscribe {
            backoff_max: BACKOFF
        }]
    );
}

#[test]
fn recovery_timeout_stops_the_containers_and_exits_as_agent_lost() {
    let mut machine = running("t");
    machine.handle(disconnected());
    let actions = machine.handle(Input::RecoveryTimedOut);
    assert_eq!(stops(&actions), [("docker-t".to_owned(), SHUTDOWN_GRACE)]);
    assert_eq!(exit_of(&actions), None);
    let actions = machine.handle(exited("t", 143));
    assert!(sent(&actions).is_empty());
    assert!(matches!(
        exit_of(&actions),
        Some(ExitReason::AgentLost { .. })
    ));
}

#[test]
fn disconnection_without_checkpointing_stops_everything_and_exits() {
    let mut machine = machine_with(false);
    machine.start();
    machine.handle(subscribed_event(&[]));
    machine.handle(launch(task("t")));
    machine.handle(started("t"));
    let actions = machine.handle(disconnected());
    assert_eq!(stops(&actions).len(), 1);
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::ScheduleSubscribe { .. })));
    let actions = machine.handle(exited("t", 143));
    let Some(ExitReason::AgentLost { reason }) = exit_of(&actions) else {
        panic!("{actions:?}")
    };
    assert!(reason.contains("does not checkpoint"), "{reason}");
}

#[test]
fn abandoning_waits_for_a_launch_in_progress() {
    let mut machine = machine_with(false);
    machine.start();
    machine.handle(subscribed_event(&[]));
    machine.handle(launch(task("t")));
    assert_eq!(exit_of(&machine.handle(disconnected())), None);
    let actions = machine.handle(started("t"));
    assert_eq!(stops(&actions).len(), 1);
    assert!(exit_of(&machine.handle(exited("t", 137))).is_some());
}
