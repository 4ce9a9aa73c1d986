//! What the API hands to the workers, as production runs it: status and refund checks queued
//! on their `settlement-processing` queue ([`QueuedStatusChecks`]), and reconciliation sweeps
//! run now by their reconciler (`Reconciler` as [`Reconciliation`]).

use async_nats::jetstream;
use futures::future::BoxFuture;
use lightspeed_domain::{GatewayId, PaymentId, RefundId};
use lightspeed_eventstore::nats::LogStreamConfig;
use lightspeed_workers::{
    Reconciler, RefundCheck, StatusCheck, publish_refund_check, publish_status_check,
};

use crate::state::{Reconciliation, ReconciliationRun, StatusChecks};

/// Status checks as jobs for the workers' `settlement-processing` queue, on the jobs stream
/// that goes with the log's stream.
#[derive(Clone)]
pub struct QueuedStatusChecks {
    jetstream: jetstream::Context,
    log_stream: LogStreamConfig,
}

impl QueuedStatusChecks {
    /// Checks queued on `jetstream` beside the log stream `log_stream`.
    pub fn new(jetstream: jetstream::Context, log_stream: LogStreamConfig) -> Self {
        Self {
            jetstream,
            log_stream,
        }
    }
}

impl StatusChecks for QueuedStatusChecks {
    fn enqueue(
        &self,
        gateway_id: GatewayId,
        payment_id: Option<PaymentId>,
        reason: &'static str,
    ) -> BoxFuture<'static, ()> {
        let (jetstream, log_stream) = (self.jetstream.clone(), self.log_stream.clone());
        Box::pin(async move {
            // A status check needs the payment; without one the hourly reconciliation covers it.
            let Some(payment_id) = payment_id else { return };
            let check = StatusCheck {
                gateway_id,
                payment_id,
                psp_order_id: None,
                reason: reason.to_owned(),
            };
            if let Err(e) = publish_status_check(&jetstream, &log_stream, &check).await {
                tracing::warn!(error = %e, %payment_id, "could not queue a status check");
            }
        })
    }

    fn enqueue_refund(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        reason: &'static str,
    ) -> BoxFuture<'static, ()> {
        let (jetstream, log_stream) = (self.jetstream.clone(), self.log_stream.clone());
        Box::pin(async move {
            let check = RefundCheck {
                payment_id,
                refund_id,
                reason: reason.to_owned(),
            };
            let message_id = check.message_id();
            if let Err(e) = publish_refund_check(&jetstream, &log_stream, &check, message_id).await
            {
                tracing::warn!(error = %e, %payment_id, %refund_id, "could not queue a refund check");
            }
        })
    }
}

impl Reconciliation for Reconciler {
    fn sweep(&self) -> BoxFuture<'static, Result<ReconciliationRun, String>> {
        let reconciler = self.clone();
        Box::pin(async move {
            let sweep = reconciler.sweep_once().await.map_err(|e| e.to_string())?;
            Ok(ReconciliationRun {
                stale: sweep.stale,
                queued: sweep.queued,
                already_queued: sweep.already_queued,
            })
        })
    }
}
