//! The behaviours proved against the real deimos binary.

use std::time::Duration;

use mesos_proto::containerizer::Launch;
use mesos_proto::v1::{
    task_status, CommandInfo, ExecutorId, ExecutorInfo, FrameworkInfo, TaskState,
};
use prost::Message;

use crate::scheduler_client::*;
use crate::support::*;

type Test = fn();

pub const ALL: &[(&str, Test)] = &[
    (
        "command_task_finishes_with_its_stdout_in_the_sandbox_after_an_update",
        command_task_finishes_with_its_stdout_in_the_sandbox_after_an_update,
    ),
    (
        "command_exiting_3_fails_with_the_command_executors_message",
        command_exiting_3_fails_with_the_command_executors_message,
    ),
    (
        "killed_task_is_reported_killed_and_leaves_no_container",
        killed_task_is_reported_killed_and_leaves_no_container,
    ),
    (
        "legacy_executor_launch_matches_the_fixture_and_is_destroyed_when_it_never_registers",
        legacy_executor_launch_matches_the_fixture_and_is_destroyed_when_it_never_registers,
    ),
    (
        "checkpointed_task_is_recovered_across_an_agent_restart_and_an_orphan_is_destroyed",
        checkpointed_task_is_recovered_across_an_agent_restart_and_an_orphan_is_destroyed,
    ),
    (
        "usage_polling_collects_the_running_containers_statistics",
        usage_polling_collects_the_running_containers_statistics,
    ),
];

fn decode_launch(input: &[u8]) -> Launch {
    let size = u32::from_le_bytes(input[..4].try_into().unwrap()) as usize;
    assert_eq!(size, input.len() - 4, "one little-endian framed record");
    Launch::decode(&input[4..]).unwrap()
}

fn command_task_finishes_with_its_stdout_in_the_sandbox_after_an_update() {
    runtime().block_on(async {
        let cluster = Cluster::start(|_| {}).await;
        let task = command_task("t-echo", "echo hello-from-the-task");
        let (mut sub, fw) = cluster.launch(framework_info(), vec![task]).await;
        let running = cluster
            .update_in(&mut sub, &fw, TaskState::TaskRunning)
            .await;
        assert_eq!(running.source(), task_status::Source::Executor);
        let finished = cluster
            .update_in(&mut sub, &fw, TaskState::TaskFinished)
            .await;
        assert_eq!(
            finished.message.as_deref(),
            Some("Command exited with status 0")
        );

        let sandbox = cluster.sandbox_of(&fw, "t-echo");
        let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
        assert!(stdout.contains("hello-from-the-task"), "{stdout:?}");

        let calls = cluster.agent.invocations();
        let launch = calls.iter().find(|c| c.subcommand == "launch").unwrap();
        let record = decode_launch(&launch.input);
        assert_eq!(record.task_info.unwrap().task_id.value, "t-echo");
        let executor = record.executor_info.unwrap();
        assert_eq!(executor.executor_id.value, "t-echo");
        assert!(executor
            .name()
            .starts_with("Command Executor (Task: t-echo) (Command: sh -c '"));
        assert_eq!(launch.cwd, sandbox);
        let env = |k: &str| {
            launch
                .env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(env("MESOS_EXECUTOR_ID").as_deref(), Some("t-echo"));
        assert_eq!(env("MESOS_DIRECTORY"), Some(sandbox.display().to_string()));
        assert_eq!(env("MESOS_SANDBOX"), None);

        // `update` ended before TASK_FINISHED was forwarded to the master.
        let forwarded_at = cluster
            .agent
            .forwarded()
            .into_iter()
            .find(|(t, s, _)| t == "t-echo" && *s == TaskState::TaskFinished)
            .unwrap()
            .2;
        let update_done = calls
            .iter()
            .filter(|c| c.subcommand == "update")
            .filter_map(|c| c.finished.map(|(at, _)| at))
            .filter(|at| *at <= forwarded_at)
            .count();
        assert!(
            update_done >= 2,
            "registration and terminal updates before forwarding: {calls:#?}"
        );
        eventually(Duration::from_secs(30), "container removed", || {
            cluster.containers().is_empty()
        })
        .await;
    });
}

fn command_exiting_3_fails_with_the_command_executors_message() {
    runtime().block_on(async {
        let cluster = Cluster::start(|_| {}).await;
        let task = command_task("t-exit3", "exit 3");
        let (mut sub, fw) = cluster.launch(framework_info(), vec![task]).await;
        let failed = cluster
            .update_in(&mut sub, &fw, TaskState::TaskFailed)
            .await;
        assert_eq!(
            failed.message.as_deref(),
            Some("Command exited with status 3")
        );
        assert_eq!(failed.source(), task_status::Source::Executor);
    });
}

fn killed_task_is_reported_killed_and_leaves_no_container() {
    runtime().block_on(async {
        let cluster = Cluster::start(|_| {}).await;
        let task = command_task("t-sleep", "sleep 600");
        let (mut sub, fw) = cluster.launch(framework_info(), vec![task]).await;
        cluster
            .update_in(&mut sub, &fw, TaskState::TaskRunning)
            .await;
        assert_eq!(cluster.containers().len(), 1);
        post_call(&cluster.master, &sub.stream_id, &kill_call(&fw, "t-sleep")).await;
        let killed = cluster
            .update_in(&mut sub, &fw, TaskState::TaskKilled)
            .await;
        assert_eq!(killed.source(), task_status::Source::Executor);
        assert!(killed.message().starts_with("Command "), "{killed:?}");
        eventually(Duration::from_secs(30), "container removed", || {
            cluster.containers().is_empty()
        })
        .await;
    });
}

fn legacy_executor_launch_matches_the_fixture_and_is_destroyed_when_it_never_registers() {
    runtime().block_on(async {
        let cluster = Cluster::start(|c| {
            c.executor_registration_timeout = Duration::from_secs(3);
        })
        .await;
        let mut task = task_info("t-exec", AGENT, 1.0, 64.0);
        task.command = None;
        task.executor = Some(ExecutorInfo {
            executor_id: ExecutorId {
                value: "exec-1".to_owned(),
            },
            command: Some(CommandInfo {
                value: Some("sleep 600".to_owned()),
                ..Default::default()
            }),
            resources: vec![scalar("cpus", 0.5), scalar("mem", 32.0)],
            ..Default::default()
        });
        let (mut sub, fw) = cluster.launch(framework_info(), vec![task]).await;
        let failed = cluster
            .update_in(&mut sub, &fw, TaskState::TaskFailed)
            .await;
        assert_eq!(
            failed.reason(),
            task_status::Reason::ExecutorRegistrationTimeout
        );
        assert!(
            failed
                .message()
                .starts_with("Executor did not register within 3secs"),
            "{failed:?}"
        );
        assert_eq!(failed.source(), task_status::Source::Agent);

        let fixture = std::fs::read("/work/shared/reference/fixtures/ecp-launch-record.bin")
            .ok()
            .map(|bytes| decode_launch(&bytes));
        let calls = cluster.agent.invocations();
        let launch = calls.iter().find(|c| c.subcommand == "launch").unwrap();
        let record = decode_launch(&launch.input);
        assert!(record.task_info.is_none(), "legacy form has no task_info");
        let executor = record.executor_info.clone().unwrap();
        assert_eq!(executor.executor_id.value, "exec-1");
        assert_eq!(executor.framework_id.unwrap().value, fw);
        let cpus = executor
            .resources
            .iter()
            .find(|r| r.name == "cpus")
            .unwrap();
        assert!((cpus.scalar.as_ref().unwrap().value - 1.5).abs() < 1e-9);
        assert_eq!(record.slave_id.unwrap().value, AGENT);
        assert!(record.slave_pid.unwrap().starts_with("slave(1)@"));
        assert_eq!(record.checkpoint, Some(false));
        assert_eq!(record.user.as_deref(), Some("root"));
        if let Some(fixture) = fixture {
            // Same fields set as the agent's own record.
            assert_eq!(fixture.task_info.is_some(), record.task_info.is_some());
            assert_eq!(fixture.directory.is_some(), record.directory.is_some());
            assert_eq!(fixture.checkpoint.is_some(), record.checkpoint.is_some());
        }
        let destroy_at = calls.iter().position(|c| c.subcommand == "destroy");
        assert!(
            destroy_at.is_some(),
            "destroy after the registration timeout"
        );
        eventually(Duration::from_secs(30), "container removed", || {
            cluster.containers().is_empty()
        })
        .await;
    });
}

fn checkpointed_task_is_recovered_across_an_agent_restart_and_an_orphan_is_destroyed() {
    runtime().block_on(async {
        let cluster = Cluster::start(|_| {}).await;
        let info = FrameworkInfo {
            checkpoint: Some(true),
            ..framework_info()
        };
        let task = command_task("t-cp", "sleep 600");
        let (mut sub, fw) = cluster.launch(info, vec![task]).await;
        cluster
            .update_in(&mut sub, &fw, TaskState::TaskRunning)
            .await;
        let container = cluster.agent.containers_of("t-cp")[0].clone();
        let orphan = cluster.launch_behind_the_agents_back("orphan-of-no-run");
        assert_eq!(cluster.containers().len(), 2);

        let before = cluster.agent.invocations().len();
        cluster.agent.restart().await.unwrap();
        // Past the re-registration window: a missing re-subscription would have made the
        // agent destroy the container by now.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let calls: Vec<_> = cluster.agent.invocations().split_off(before);
        let about = |subcommand: &str, id: &str| {
            calls
                .iter()
                .filter(|c| c.subcommand == subcommand && c.container_id.as_deref() == Some(id))
                .count()
        };
        let first: Vec<&str> = calls
            .iter()
            .take(2)
            .map(|c| c.subcommand.as_str())
            .collect();
        assert_eq!(first, ["recover", "containers"], "{calls:#?}");
        assert_eq!(about("wait", &container), 1, "{calls:#?}");
        assert_eq!(about("destroy", &container), 0, "{calls:#?}");
        assert_eq!(about("wait", &orphan), 1, "{calls:#?}");
        assert_eq!(about("destroy", &orphan), 1, "{calls:#?}");
        eventually(
            Duration::from_secs(30),
            "the orphan's container removed",
            || cluster.containers().len() == 1,
        )
        .await;

        // The recovered executor still runs the task: a kill reaches it.
        post_call(&cluster.master, &sub.stream_id, &kill_call(&fw, "t-cp")).await;
        let mut seen = Vec::new();
        loop {
            let status = cluster.next_update(&mut sub, &fw).await;
            seen.push(status.state());
            if is_terminal(status.state()) {
                assert_eq!(status.source(), task_status::Source::Executor);
                break;
            }
        }
        assert_eq!(seen, [TaskState::TaskKilled], "updates after the restart");
        let forwarded: Vec<TaskState> = cluster
            .agent
            .forwarded()
            .into_iter()
            .filter(|(task, _, _)| task == "t-cp")
            .map(|(_, state, _)| state)
            .collect();
        assert_eq!(
            forwarded,
            [TaskState::TaskRunning, TaskState::TaskKilled],
            "each update forwarded once"
        );
        eventually(Duration::from_secs(30), "container removed", || {
            cluster.containers().is_empty()
        })
        .await;
    });
}

fn usage_polling_collects_the_running_containers_statistics() {
    runtime().block_on(async {
        let cluster = Cluster::start(|c| {
            c.usage_interval = Some(Duration::from_millis(300));
        })
        .await;
        let task = command_task("t-usage", "sleep 600");
        let (mut sub, fw) = cluster.launch(framework_info(), vec![task]).await;
        cluster
            .update_in(&mut sub, &fw, TaskState::TaskRunning)
            .await;
        let container = cluster.agent.containers_of("t-usage")[0].clone();
        // The task's 64 MB plus the command executor's 32 MB, as `update` set them.
        let limit = 96 * 1024 * 1024;
        eventually(
            Duration::from_secs(30),
            "usage with the updated limit",
            || {
                cluster.agent.polled_usage().iter().any(|(id, stats)| {
                    *id == container
                        && stats.mem_limit_bytes == Some(limit)
                        && stats.timestamp > 0.0
                })
            },
        )
        .await;
        let usage_calls = cluster
            .agent
            .invocations()
            .iter()
            .filter(|c| c.subcommand == "usage" && c.container_id.as_deref() == Some(&container))
            .count();
        assert!(usage_calls >= 1);
        post_call(&cluster.master, &sub.stream_id, &kill_call(&fw, "t-usage")).await;
        cluster
            .update_in(&mut sub, &fw, TaskState::TaskKilled)
            .await;
    });
}
