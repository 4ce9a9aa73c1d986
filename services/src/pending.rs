//! Payments still waiting for their PSP's outcome: what reconciliation asks the PSPs about.
//!
//! Read from the log as committed (not a read model), so a payment is found even while the
//! projectors lag: a `PaymentInitiated` in the window whose stream holds no success, failure or
//! refund. The `(stream_id, stream_version)` index answers the "no outcome" test per payment.

use chrono::{DateTime, Utc};
use lightspeed_domain::payment::{Payment, PaymentStatus};
use lightspeed_domain::{Decider, GatewayId, PaymentId};
use lightspeed_eventstore::lookups::{self, Awaiting};
use uuid::Uuid;

use crate::error::ServiceError;
use crate::ledger::Ledger;

/// The event that starts a payment's wait for its outcome.
const INITIATED: &str = "PaymentInitiated";

/// The events that end it: a success, a failure or a refund.
const OUTCOMES: [&str; 3] = ["PaymentSucceeded", "PaymentFailed", "PaymentRefunded"];

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
        let initiated_without_outcome = Awaiting {
            category: <Payment as Decider>::CATEGORY,
            recorded: INITIATED,
            recorded_from: initiated_from,
            recorded_before: initiated_before,
            awaited: &OUTCOMES,
            limit,
        };
        let streams = lookups::streams_awaiting(self.store.pool(), &initiated_without_outcome)
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
            if payment.status() == PaymentStatus::Pending {
                awaiting.push(AwaitingOutcome {
                    payment_id,
                    gateway_id: payment.gateway_id(),
                });
            }
        }
        Ok(awaiting)
    }
}

#[cfg(test)]
mod tests {
    use lightspeed_domain::payment::PaymentEvent;

    use super::*;

    #[test]
    fn the_awaited_types_are_payment_events() {
        for event_type in std::iter::once(INITIATED).chain(OUTCOMES) {
            assert!(
                PaymentEvent::EVENT_TYPES.contains(&event_type),
                "{event_type}"
            );
        }
    }
}
