//! Payments still waiting for their PSP's outcome: what reconciliation asks the PSPs about.
//!
//! Read from the log as committed (not a read model), so a payment is found even while the
//! projectors lag: a `PaymentInitiated` in the window whose stream holds no success, failure or
//! refund. The `(stream_id, stream_version)` index answers the "no outcome" test per payment.

use chrono::{DateTime, Utc};
use lightspeed_domain::payment::PaymentStatus;
use lightspeed_domain::{GatewayId, PaymentId};
use lightspeed_eventstore::lookups;
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
        let streams = lookups::payments_awaiting_outcome(
            self.store.pool(),
            initiated_from,
            initiated_before,
            limit,
        )
        .await
        .map_err(|e| ServiceError::Store(e.to_string()))?;
        let mut awaiting = Vec::with_capacity(streams.len());
        for stream in streams {
            let Ok(payment_id) = stream.id().parse::<Uuid>().map(PaymentId) else {
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
