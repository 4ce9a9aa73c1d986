//! The transaction processor (`transaction-processing`): creates the PSP order of every payment
//! the ledger routed to a gateway.
//!
//! Jobs are `PaymentInitiated` and `PaymentRerouted` events. For each, the payment is loaded and
//! the job does nothing unless the payment is still open, has no PSP order and is still booked on
//! the gateway this event booked (a redelivered or superseded job never creates a second order).
//! Then the gateway's sealed account is opened (only inside this call), the order is created at
//! the PSP (idempotent there by our payment reference) and recorded with a command id derived
//! from the payment and the gateway.
//!
//! Any PSP failure (5xx, timeout, 429, refusal, unreadable answer) reroutes the payment: the
//! gateway rests for the merchant's temporary-failure period and the payment is booked on the
//! next eligible gateway, at most three per payment, after which it fails. The attempt on the
//! next gateway waits per the domain's PSP retry schedule ([`PSP_CALLS`]), counted from the
//! reroute on the ledger's clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lightspeed_adapters::psp::{Customer, OrderRequest, PspAccount, PspClient, PspError, PspOrder};
use lightspeed_adapters::secrets::Keyring;
use lightspeed_domain::payment::{PaymentError, PaymentEvent, PaymentStatus};
use lightspeed_domain::retry::{Jitter, PSP_CALLS};
use lightspeed_domain::{GatewayId, Merchant, Payment, PaymentId, calendar};
use lightspeed_eventstore::RecordedEvent;
use lightspeed_services::{Ledger, ServiceError};

use crate::ids;
use crate::queue::{Job, JobHandler, JobOutcome};
use crate::support::{
    caused_by, domain_event, ledger_failure, recorded_event, remaining, stream_key,
};

/// The queue's name.
pub const QUEUE: &str = "transaction-processing";
/// The payment events that ask for a PSP order.
pub const EVENT_TYPES: [&str; 2] = ["PaymentInitiated", "PaymentRerouted"];

/// Creates PSP orders.
#[derive(Debug, Clone)]
pub(crate) struct TransactionProcessor {
    pub(crate) ledger: Ledger,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) psp: PspClient,
    pub(crate) public_url: String,
    pub(crate) due_recheck: Duration,
}

/// Which gateway an event booked, and since when the attempt on it may start.
struct Booked {
    payment_id: PaymentId,
    gateway_id: GatewayId,
    not_before: DateTime<Utc>,
}

impl JobHandler for TransactionProcessor {
    async fn handle(&self, job: Job) -> JobOutcome {
        let event = match recorded_event(&job) {
            Ok(event) => event,
            Err(outcome) => return outcome,
        };
        self.process(&job, &event)
            .await
            .unwrap_or_else(|outcome| outcome)
    }
}

impl TransactionProcessor {
    async fn process(&self, job: &Job, event: &RecordedEvent) -> Result<JobOutcome, JobOutcome> {
        let Some(booked) = booked_by(event)? else {
            return Ok(JobOutcome::Done);
        };
        if let Some(wait) = remaining(booked.not_before, self.ledger.now()) {
            return Ok(JobOutcome::RetryAfter(wait.min(self.due_recheck)));
        }
        let Some(payment) = self.awaiting_order(job, &booked).await? else {
            return Ok(JobOutcome::Done);
        };
        let merchant = self
            .ledger
            .merchant(payment.merchant_id())
            .await
            .map_err(|e| ledger_failure(job, "load the merchant", &e))?;
        let gateway = self
            .ledger
            .gateway_of(payment.merchant_id(), booked.gateway_id)
            .await
            .map_err(|e| ledger_failure(job, "load the gateway", &e))?;
        let order = self.order_request(&payment, &merchant, booked.gateway_id);
        let created = match PspAccount::open(&self.keyring, gateway.credentials()) {
            Ok(account) => self.psp.create_order(&account, &order).await,
            Err(sealing) => Err(PspError::from(sealing)),
        };
        match created {
            Ok(created) => {
                self.record_order(job, event, &payment, &booked, created)
                    .await
            }
            Err(failure) => {
                tracing::warn!(
                    payment_id = %payment.id(),
                    gateway_id = %booked.gateway_id,
                    provider = %gateway.provider(),
                    error = %failure,
                    "PSP could not create the order; rerouting"
                );
                self.reroute(job, event, &payment, &booked, &failure).await
            }
        }
    }

    /// The payment, if it still waits for a PSP order on the gateway this event booked: open,
    /// without an order, and not moved to another gateway since.
    async fn awaiting_order(
        &self,
        job: &Job,
        booked: &Booked,
    ) -> Result<Option<Payment>, JobOutcome> {
        let payment = self
            .ledger
            .payment(booked.payment_id)
            .await
            .map_err(|e| ledger_failure(job, "load the payment", &e))?
            .ok_or_else(|| JobOutcome::GiveUp(format!("unknown payment {}", booked.payment_id)))?;
        let awaiting_order = payment.status() == PaymentStatus::Created
            && payment.psp_order().is_none()
            && payment.gateway_id() == booked.gateway_id;
        Ok(awaiting_order.then_some(payment))
    }

    /// What we ask the gateway's PSP to collect for the payment.
    fn order_request(
        &self,
        payment: &Payment,
        merchant: &Merchant,
        gateway_id: GatewayId,
    ) -> OrderRequest {
        OrderRequest {
            payment_id: payment.id(),
            amount: payment.amount(),
            currency: payment.currency().code().to_owned(),
            customer: customer_of(payment),
            callback_url: format!(
                "{}/webhook/{}/{gateway_id}",
                self.public_url,
                merchant.client_key(),
            ),
            return_url: format!("{}/checkout/{}/return", self.public_url, payment.id()),
            description: format!("Order {}", payment.merchant_order_id()),
        }
    }

    /// Records the created order on the payment, once per payment and gateway.
    async fn record_order(
        &self,
        job: &Job,
        event: &RecordedEvent,
        payment: &Payment,
        booked: &Booked,
        created: PspOrder,
    ) -> Result<JobOutcome, JobOutcome> {
        let checkout = serde_json::to_value(&created.checkout)
            .map_err(|e| JobOutcome::GiveUp(format!("checkout data: {e}")))?;
        let context = caused_by(
            event,
            QUEUE,
            Some(ids::record_order_command(payment.id(), booked.gateway_id)),
        );
        let recorded = self
            .ledger
            .record_psp_order(
                payment.id(),
                booked.gateway_id,
                created.psp_order_id,
                checkout,
                &context,
            )
            .await;
        match recorded {
            Ok(_) => Ok(JobOutcome::Done),
            // The payment moved on (an outcome, a reroute) while the order was created; the
            // order stays unused at the PSP.
            Err(ServiceError::Payment(
                PaymentError::StaleGateway { .. }
                | PaymentError::AlreadySucceeded
                | PaymentError::AlreadyFailed,
            )) => Ok(JobOutcome::Done),
            Err(e) => Err(ledger_failure(job, "record the PSP order", &e)),
        }
    }

    /// Rests the gateway that failed and books the payment on the next eligible one.
    async fn reroute(
        &self,
        job: &Job,
        event: &RecordedEvent,
        payment: &Payment,
        booked: &Booked,
        failure: &PspError,
    ) -> Result<JobOutcome, JobOutcome> {
        let context = caused_by(event, QUEUE, None);
        self.ledger
            .reroute_after_gateway_failure(
                payment.id(),
                booked.gateway_id,
                &failure.to_string(),
                &context,
            )
            .await
            .map(|_| JobOutcome::Done)
            .map_err(|e| ledger_failure(job, "reroute the payment", &e))
    }
}

/// The booking a `PaymentInitiated` or `PaymentRerouted` event made; `None` for other events.
fn booked_by(event: &RecordedEvent) -> Result<Option<Booked>, JobOutcome> {
    if !EVENT_TYPES.contains(&event.event_type.as_str()) {
        return Ok(None);
    }
    let payment_id: PaymentId = stream_key(event)?;
    Ok(match domain_event::<PaymentEvent>(event)? {
        PaymentEvent::PaymentInitiated { gateway_id, at, .. } => Some(Booked {
            payment_id,
            gateway_id,
            not_before: at,
        }),
        PaymentEvent::PaymentRerouted {
            to_gateway,
            attempt,
            at,
            ..
        } => {
            let wait = PSP_CALLS
                .wait_after(attempt.saturating_sub(1), Jitter::NONE)
                .unwrap_or(PSP_CALLS.max_wait);
            Some(Booked {
                payment_id,
                gateway_id: to_gateway,
                not_before: calendar::plus(at, wait),
            })
        }
        _ => None,
    })
}

fn customer_of(payment: &Payment) -> Customer {
    let details = payment.details();
    Customer {
        name: details.customer_name.clone(),
        email: details.customer_email.clone(),
        phone: details.customer_phone.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_exist_in_the_domain() {
        for event_type in EVENT_TYPES {
            assert!(
                PaymentEvent::EVENT_TYPES.contains(&event_type),
                "{event_type}"
            );
        }
    }
}
