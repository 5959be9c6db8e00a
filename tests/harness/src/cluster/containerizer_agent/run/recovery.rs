//! The agent's restart: it goes down, then `recover`, `containers`, and
//! resumes checkpointed runs or destroys orphans.

use std::sync::Arc;

use mesos_proto::containerizer::{Containers, Destroy, Wait};
use mesos_proto::mesos;
use mesos_proto::v1::{task_status, TaskState};
use prost::Message;

use super::super::ecp::EcpOutcome;
use super::{Agent, Pending, Run};

impl Agent {
    /// The agent process dies: executors lose their connection; running
    /// `wait` calls are forgotten (not killed).
    pub(in crate::cluster::containerizer_agent) async fn go_down(&self) {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        for run in self.runs() {
            if !run.lock().terminated {
                let _ = run.fake.disconnect().await;
            }
        }
    }

    /// `recover`, `containers`, then resume or destroy what is listed.
    pub(in crate::cluster::containerizer_agent) async fn recover(
        self: &Arc<Self>,
    ) -> Result<(), String> {
        self.call_to_end::<Wait>("recover", None, None, None, false)
            .await?;
        let outcome = self
            .call_to_end::<Wait>("containers", None, None, None, true)
            .await?;
        let listed = outcome
            .output
            .ok_or("containers wrote no record")
            .and_then(|b| {
                Containers::decode(b.as_slice()).map_err(|_| "containers wrote an invalid record")
            })?;
        let runs = self.runs();
        let mut orphans = Vec::new();
        for id in listed.containers.iter().map(|c| c.value.clone()) {
            let run = runs
                .iter()
                .find(|r| r.container_id == id && !r.lock().terminated);
            let latest = run.filter(|r| {
                self.config
                    .book
                    .latest_run(&r.framework_id(), r.executor_id())
                    .as_deref()
                    == Some(r.sandbox.as_path())
            });
            match latest {
                Some(run) if run.framework.checkpoint.unwrap_or(false) => {
                    self.resume(Arc::clone(run)).await;
                }
                _ => orphans.push(id),
            }
        }
        let mut waits = Vec::new();
        for id in orphans {
            waits.push(self.destroy_orphan(id).await);
        }
        for wait in waits.into_iter().flatten() {
            let _ = wait.await;
        }
        Ok(())
    }

    async fn resume(self: &Arc<Self>, run: Arc<Run>) {
        run.lock().generation = self.generation();
        if run.fake.restart().await.is_err() {
            return;
        }
        Arc::clone(self).start_wait(Arc::clone(&run), true);
        let agent = Arc::clone(self);
        let timeout = self.config.executor_reregistration_timeout;
        tokio::spawn(async move {
            if run.fake.wait_subscribed(timeout).await.is_err() {
                run.lock().pending = Some(Pending {
                    state: TaskState::TaskLost,
                    reason: task_status::Reason::ExecutorReregistrationTimeout,
                    message: "Executor did not reregister".to_owned(),
                });
                agent.destroy(&run).await;
            }
        });
    }

    /// `wait` and, concurrently, `destroy` for an orphan (no sandbox); the
    /// `wait` session is SIGKILLed once `destroy` exits.
    async fn destroy_orphan(
        &self,
        id: String,
    ) -> Option<tokio::task::JoinHandle<std::io::Result<EcpOutcome>>> {
        let container_id = mesos::ContainerId { value: id.clone() };
        let wait = Wait {
            container_id: container_id.clone(),
        };
        let (session, waiting) = self
            .call("wait", None, Some(&id), Some(&wait), true)
            .await
            .ok()?;
        let destroy = Destroy { container_id };
        let _ = self
            .call_to_end("destroy", None, Some(&id), Some(&destroy), false)
            .await;
        session.kill();
        Some(waiting)
    }
}
