//! The call task: calls to the master go out one after the other in the order they were
//! made (a DECLINE must reach the master before the REVIVE that follows it), except
//! acknowledgements, which go out side by side.

use std::sync::Arc;
use std::time::Instant;

use mesos_client::calls::CallName;
use mesos_proto::v1::scheduler::{call, Call};
use tokio::sync::{mpsc, Semaphore};

use super::{MesosBackend, Queued};

/// ACKNOWLEDGE calls sent at the same time at most.
const ACKNOWLEDGES_IN_FLIGHT: usize = 32;

impl MesosBackend {
    /// Sends the queued calls one after the other on the current subscription.
    pub(super) async fn call_loop(&self, mut calls: mpsc::UnboundedReceiver<Queued>) {
        let acknowledging = Arc::new(Semaphore::new(ACKNOWLEDGES_IN_FLIGHT));
        while let Some(Queued {
            call,
            update_received,
        }) = calls.recv().await
        {
            let Some(session) = self.state().session.clone() else {
                tracing::debug!(call = call.call_name(), "not subscribed: call dropped");
                continue;
            };
            // Acknowledgements depend on nothing but their own commit, which is done: they go
            // out side by side, so that one round trip each does not bound the update rate.
            // Every other call keeps its place in the order.
            if call.r#type == Some(call::Type::Acknowledge as i32) {
                let Ok(permit) = Arc::clone(&acknowledging).acquire_owned().await else {
                    continue;
                };
                let this = self.clone();
                tokio::spawn(async move {
                    match session.call(&call).await {
                        Ok(()) => this.count_sent(&call, update_received),
                        Err(error) => tracing::warn!("acknowledging a status update: {error}"),
                    }
                    drop(permit);
                });
                continue;
            }
            match session.call(&call).await {
                Ok(()) => self.count_sent(&call, update_received),
                Err(error) => {
                    tracing::warn!(call = call.call_name(), "calling the Mesos master: {error}");
                }
            }
        }
    }

    /// Counts a call the master took: the launches of an ACCEPT, the latency of an
    /// ACKNOWLEDGE.
    fn count_sent(&self, call: &Call, update_received: Option<Instant>) {
        let metrics = &self.inner.metrics;
        if let Some(received) = update_received {
            metrics
                .mesos_ack_latency
                .observe(received.elapsed().as_secs_f64());
        }
        if let Some(accept) = &call.accept {
            let launched: usize = accept
                .operations
                .iter()
                .filter_map(|operation| operation.launch.as_ref())
                .map(|launch| launch.task_infos.len())
                .sum();
            metrics.mesos_launches.inc_by(launched as u64);
        }
    }
}
