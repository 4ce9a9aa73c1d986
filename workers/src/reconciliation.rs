//! Pending-payment reconciliation: payments whose PSP order is older than a configured age and
//! that still have no outcome get one status-check job each on `settlement-processing`, which
//! asks the PSP and records its answer exactly as a verified webhook would (see [`crate::status`]).
//!
//! Stale payments are found in the log ([`Ledger::payments_awaiting_outcome`]), not a read
//! model, so a lagging projector cannot hide one. Each job's JetStream message id is
//! `reconcile:<payment>:<window>`, the window being the interval the ledger's clock is in,
//! so sweeping twice in a window (the hourly run and an admin's `POST
//! /admin/reconciliation/run`, or two replicas) queues one check per payment; a check that runs
//! twice anyway records one outcome and one commission.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use lightspeed_eventstore::nats::LogStreamConfig;
use lightspeed_services::{Ledger, ServiceError};
use serde::Serialize;

use crate::jobs::{
    JobError, Queued, RefundCheck, StatusCheck, publish_refund_check, publish_status_check_as,
};

/// When a payment counts as stale and how far back to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconciliationSettings {
    /// A payment initiated this long ago without an outcome is checked (default 30 minutes).
    pub min_age: Duration,
    /// Payments initiated longer ago than this are left alone (default 7 days).
    pub lookback: Duration,
    /// Width of the de-duplication window: one check per payment per window (default 1 hour,
    /// the default sweep interval; keep the two equal).
    pub window: Duration,
    /// Most payments checked per sweep (default 10 000); the rest wait for the next sweep.
    pub batch: usize,
    /// A refund still requested or submitted this long after its request is checked (default
    /// 30 minutes).
    pub refund_min_age: Duration,
}

impl Default for ReconciliationSettings {
    fn default() -> Self {
        Self {
            min_age: Duration::from_secs(30 * 60),
            lookback: Duration::from_secs(7 * 24 * 3600),
            window: Duration::from_secs(3600),
            batch: 10_000,
            refund_min_age: Duration::from_secs(30 * 60),
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sweep {
    /// Stale payments found.
    pub stale: u64,
    /// Status checks queued.
    pub queued: u64,
    /// Checks already queued in this window.
    pub already_queued: u64,
    /// Refunds found still open past their age.
    pub stale_refunds: u64,
    /// Refund checks queued (a refund checked already in this window is not counted).
    pub refund_checks_queued: u64,
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReconciliationError {
    /// The log could not be read.
    #[error(transparent)]
    Ledger(#[from] ServiceError),
    /// A job could not be queued.
    #[error(transparent)]
    Jobs(#[from] JobError),
}

/// Finds stale payments and queues their status checks.
#[derive(Debug, Clone)]
pub struct Reconciler {
    ledger: Ledger,
    jetstream: jetstream::Context,
    log_stream: LogStreamConfig,
    settings: ReconciliationSettings,
}

impl Reconciler {
    /// A reconciler over the ledger, queueing on the jobs stream beside `log_stream`.
    pub fn new(
        ledger: Ledger,
        jetstream: jetstream::Context,
        log_stream: LogStreamConfig,
        settings: ReconciliationSettings,
    ) -> Self {
        Self {
            ledger,
            jetstream,
            log_stream,
            settings,
        }
    }

    /// One sweep, now: one status check per stale payment, de-duplicated per window.
    pub async fn sweep_once(&self) -> Result<Sweep, ReconciliationError> {
        let now = self.ledger.now();
        let before = now - chrono::Duration::from_std(self.settings.min_age).unwrap_or_default();
        let from = now - chrono::Duration::from_std(self.settings.lookback).unwrap_or_default();
        let stale = self
            .ledger
            .payments_awaiting_outcome(from, before, self.settings.batch)
            .await?;
        let window = window_of(now, self.settings.window);
        let mut sweep = Sweep {
            stale: stale.len() as u64,
            ..Sweep::default()
        };
        for payment in stale {
            let check = StatusCheck {
                gateway_id: payment.gateway_id,
                payment_id: payment.payment_id,
                psp_order_id: None,
                reason: format!(
                    "reconciliation: no outcome {} minutes after initiation",
                    self.settings.min_age.as_secs() / 60
                ),
            };
            let message_id = format!("reconcile:{}:{window}", payment.payment_id);
            match publish_status_check_as(&self.jetstream, &self.log_stream, &check, message_id)
                .await?
            {
                Queued::New => sweep.queued += 1,
                Queued::Duplicate => sweep.already_queued += 1,
            }
        }
        self.sweep_refunds(now, window, &mut sweep).await?;
        tracing::info!(
            stale = sweep.stale,
            queued = sweep.queued,
            already_queued = sweep.already_queued,
            stale_refunds = sweep.stale_refunds,
            refund_checks_queued = sweep.refund_checks_queued,
            "reconciliation sweep"
        );
        Ok(sweep)
    }

    /// One refund check per refund still open past its age, de-duplicated per window.
    async fn sweep_refunds(
        &self,
        now: DateTime<Utc>,
        window: i64,
        sweep: &mut Sweep,
    ) -> Result<(), ReconciliationError> {
        let age = |d: Duration| chrono::Duration::from_std(d).unwrap_or_default();
        let open = self
            .ledger
            .refunds_awaiting_outcome(
                now - age(self.settings.lookback),
                now - age(self.settings.refund_min_age),
                self.settings.batch,
            )
            .await?;
        sweep.stale_refunds = open.len() as u64;
        for refund in open {
            let check = RefundCheck {
                payment_id: refund.payment_id,
                refund_id: refund.refund_id,
                reason: format!(
                    "reconciliation: refund {} {} minutes after its request",
                    refund.status.as_str(),
                    self.settings.refund_min_age.as_secs() / 60
                ),
            };
            let message_id = format!("reconcile_refund:{}:{window}", refund.refund_id);
            let queued =
                publish_refund_check(&self.jetstream, &self.log_stream, &check, message_id).await?;
            if queued == Queued::New {
                sweep.refund_checks_queued += 1;
            }
        }
        Ok(())
    }
}

/// The sweep window `now` falls in: whole intervals since the epoch.
fn window_of(now: DateTime<Utc>, interval: Duration) -> i64 {
    let width = i64::try_from(interval.as_secs().max(1)).unwrap_or(i64::MAX);
    now.timestamp().div_euclid(width)
}

/// Sweeps every `interval` (real time) until `shutdown` completes; a failed sweep is logged and
/// the next one tries again.
pub async fn run(reconciler: Reconciler, interval: Duration, shutdown: impl Future<Output = ()>) {
    let interval = interval.max(crate::MIN_DUE_RECHECK);
    tokio::pin!(shutdown);
    loop {
        if let Err(error) = reconciler.sweep_once().await {
            tracing::warn!(%error, "reconciliation sweep failed");
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_intervals() {
        let hour = Duration::from_secs(3600);
        let at = |s: i64| DateTime::from_timestamp(s, 0).expect("instant");
        assert_eq!(window_of(at(7_200), hour), 2);
        assert_eq!(window_of(at(10_799), hour), 2);
        assert_eq!(window_of(at(10_800), hour), 3);
        assert_eq!(window_of(at(5), Duration::ZERO), 5);
    }
}
