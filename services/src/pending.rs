//! Payments still waiting for their PSP's outcome: what reconciliation asks the PSPs about.
//!
//! Read from the log as committed (not a read model), so a payment is found even while the
//! projectors lag: a `PaymentInitiated` in the window whose stream holds no success, failure or
//! refund. The `(stream_id, stream_version)` index answers the "no outcome" test per payment.

use chrono::{DateTime, Utc};
use lightspeed_domain::payment::PaymentStatus;
use lightspeed_domain::{GatewayId, Payment, PaymentId};
use lightspeed_eventstore::StreamId;
use uuid::Uuid;

use crate::error::ServiceError;
use crate::ledger::Ledger;

/// A payment with a PSP order and no outcome yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwaitingOutcome {
    /// The payment.
    pub payment_id: PaymentId,
    /// The gateway whose PSP holds its order.
    pub gateway_id: GatewayId,
}

impl Ledger {
    /// Payments initiated in `[initiated_from, initiated_before)` that have a PSP order and no
    /// outcome, oldest first, at most `limit`; payments with no PSP order are left out (nobody
    /// can have paid them).
    pub async fn payments_awaiting_outcome(
        &self,
        initiated_from: DateTime<Utc>,
        initiated_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AwaitingOutcome>, ServiceError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let streams: Vec<String> = sqlx::query_scalar(
            "SELECT i.stream_id FROM ledger.events i
              WHERE i.category = $1 AND i.event_type = 'PaymentInitiated'
                AND i.recorded_at >= $2 AND i.recorded_at < $3
                AND NOT EXISTS (
                    SELECT 1 FROM ledger.events o
                     WHERE o.stream_id = i.stream_id
                       AND o.event_type IN ('PaymentSucceeded', 'PaymentFailed', 'PaymentRefunded'))
              ORDER BY i.recorded_at, i.stream_id
              LIMIT $4",
        )
        .bind(<Payment as lightspeed_domain::Decider>::CATEGORY)
        .bind(initiated_from)
        .bind(initiated_before)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| ServiceError::Store(e.to_string()))?;
        let mut awaiting = Vec::with_capacity(streams.len());
        for stream in streams {
            let Some(payment_id) = StreamId::parse(stream.as_str())
                .ok()
                .and_then(|stream| stream.id().parse::<Uuid>().ok())
                .map(PaymentId)
            else {
                continue;
            };
            // The log as of now decides: an outcome may have landed since the query.
            let Some(payment) = self.payment(payment_id).await? else {
                continue;
            };
            if payment.status() == PaymentStatus::AwaitingPayment {
                awaiting.push(AwaitingOutcome {
                    payment_id,
                    gateway_id: payment.gateway_id(),
                });
            }
        }
        Ok(awaiting)
    }
}
