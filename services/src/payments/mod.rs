//! Payment operations: initiation with routing and booking, PSP orders, reroutes after a
//! gateway failure, and PSP outcomes turned into success (with commission) or failure.

mod initiate;
mod reroute;
mod settle;
mod statuses;

pub use statuses::StatusCursor;

use lightspeed_domain::gateway::{BookingRequest, Gateway};
use lightspeed_domain::payment::{Payment, PaymentCommand, PaymentDetails};
use lightspeed_domain::psp_outcome::{
    PspOutcomeError, PspOutcomeRecord, ReportOutcome, outcome_key,
};
use lightspeed_domain::routing::{RouteCandidate, route};
use lightspeed_domain::{GatewayId, MerchantId, Paise, PaymentId};
use lightspeed_eventstore::{CommandContext, CommandError, Loaded, stream_of};

use crate::error::{Inconsistency, ServiceError};
use crate::ledger::Ledger;

/// A merchant's request to collect a payment, as the API parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// Amount in paise.
    pub amount: Paise,
    /// Currency code as sent (only `INR` is accepted).
    pub currency: String,
    /// The merchant's order id: its idempotency key.
    pub order_id: String,
    /// Payer, redirect and notes.
    pub details: PaymentDetails,
    /// Hex SHA-256 of the request body, to tell a retry from a different request.
    pub request_digest: String,
}

/// What initiation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiated {
    /// A new payment was started and booked on a gateway.
    Created(PaymentId),
    /// The same request was made before; this is the payment it started.
    Existing(PaymentId),
}

impl Initiated {
    /// The payment, new or existing.
    pub fn payment_id(self) -> PaymentId {
        match self {
            Initiated::Created(id) | Initiated::Existing(id) => id,
        }
    }
}

/// What applying a PSP outcome did to the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The payment succeeded now; this commission was accrued.
    Succeeded {
        /// The commission recorded in the wallet.
        commission: Paise,
        /// True when it followed a failure.
        late_success: bool,
    },
    /// The payment failed now.
    Failed,
    /// Nothing changed: the outcome was already applied, is not final, or says nothing.
    Unchanged,
}

impl Ledger {
    /// Where routing sends `booking` among `gateways` (the states of `gateway_ids`, in the same
    /// order), passing over the `tried` ones: the chosen gateway's index.
    fn route_to(
        &self,
        gateway_ids: &[GatewayId],
        gateways: &[Loaded<Option<Gateway>>],
        booking: &BookingRequest,
        tried: &[GatewayId],
    ) -> Result<usize, ServiceError> {
        let chosen = route(&self.candidates(gateways), booking, tried)?;
        gateway_ids
            .iter()
            .position(|id| *id == chosen)
            .ok_or(ServiceError::Inconsistent(
                Inconsistency::RoutedOutsideGateways(chosen),
            ))
    }

    /// Routing's view of the gateways that have a state, with their recent success rates (a
    /// gateway the rates do not know yet is ranked as new).
    fn candidates<'a>(&self, gateways: &'a [Loaded<Option<Gateway>>]) -> Vec<RouteCandidate<'a>> {
        gateways
            .iter()
            .filter_map(|loaded| loaded.state.as_ref())
            .map(|gateway| RouteCandidate {
                gateway,
                success_rate: self
                    .success_rates
                    .as_ref()
                    .and_then(|rates| rates.success_rate(gateway.id()))
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// A payment's current state, if it belongs to `merchant_id`.
    pub async fn payment_of(
        &self,
        merchant_id: MerchantId,
        payment_id: PaymentId,
    ) -> Result<Payment, ServiceError> {
        self.payment(payment_id)
            .await?
            .filter(|p| p.merchant_id() == merchant_id)
            .ok_or(ServiceError::UnknownPayment(payment_id))
    }

    /// A payment's current state, if it exists.
    pub async fn payment(&self, payment_id: PaymentId) -> Result<Option<Payment>, ServiceError> {
        Ok(self
            .payments
            .load(&stream_of::<Payment>(payment_id)?)
            .await?
            .state)
    }

    /// Records the order the PSP created for the payment's current gateway. The order is the
    /// PSP's answer: with a command id, a retry whose call got another answer (or ran at another
    /// instant) than the first try is answered with what the first try recorded.
    pub async fn record_psp_order(
        &self,
        payment_id: PaymentId,
        gateway_id: GatewayId,
        psp_order_id: String,
        checkout: serde_json::Value,
        context: &CommandContext,
    ) -> Result<Payment, ServiceError> {
        let command = PaymentCommand::RecordPspOrder {
            gateway_id,
            psp_order_id,
            checkout,
            at: self.now(),
        };
        let stream = stream_of::<Payment>(payment_id)?;
        let executed = self
            .payments
            .execute_observed(&stream, &command, context)
            .await?;
        executed
            .state
            .ok_or(ServiceError::UnknownPayment(payment_id))
    }

    /// Records what a PSP reported, once per PSP de-duplication key. Answers false when the
    /// same report was already recorded.
    pub async fn report_outcome(
        &self,
        report: ReportOutcome,
        context: &CommandContext,
    ) -> Result<bool, ServiceError> {
        let stream =
            stream_of::<PspOutcomeRecord>(outcome_key(report.gateway_id, &report.dedupe_key))?;
        match self.outcomes.execute(&stream, &report, context).await {
            Ok(executed) => Ok(!executed.idempotent_replay),
            Err(CommandError::Rejected(PspOutcomeError::AlreadyRecorded)) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }
}
