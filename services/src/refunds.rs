//! Refunds: a merchant's request (claimed under its refund id, located under our refund id and
//! decided on the payment's stream, appended together), and the PSP's answers: submitted,
//! succeeded (with the wallet's commission reversal when the refund reverses commission) or
//! failed, whether a worker records them or a PSP report ([`Ledger::settle_refund_report`]).
//!
//! The payment stream is appended at the version the refund was decided on, so of two requests
//! racing for what is left to refund, the second is decided again on the first one's result (and
//! refused if nothing fits any more). The refund id is the merchant's idempotency key: the same
//! payment and body again answer the first refund; anything else under it is refused.

use chrono::{DateTime, Utc};
use lightspeed_domain::Decider;
use lightspeed_domain::claims::{
    ClaimRefund, LocateRefund, MerchantRefund, MerchantRefundClaim, RefundLocator,
    merchant_refund_key,
};
use lightspeed_domain::payment::refunds::RefundStatus;
use lightspeed_domain::payment::refunds::{RequestRefund, validate_merchant_refund_id};
use lightspeed_domain::payment::{Payment, PaymentCommand, PaymentError};
use lightspeed_domain::psp_outcome::{PspOutcome, RefundState, ReportOutcome};
use lightspeed_domain::standing::MerchantStatus;
use lightspeed_domain::wallet::{Wallet, WalletCommand};
use lightspeed_domain::{MerchantId, Paise, PaymentId, RefundId};
use lightspeed_eventstore::lookups::{self, Awaiting};
use lightspeed_eventstore::{
    AppendError, CommandContext, CommandHandler, PgEventStore, StreamId, stream_of,
};

use crate::error::ServiceError;
use crate::ledger::{Ledger, MAX_ATTEMPTS};
use crate::merchants::AuthenticatedMerchant;
use crate::unit_of_work::UnitOfWork;

/// A merchant's refund request, as the API parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The payment to refund.
    pub payment_id: PaymentId,
    /// The merchant's refund id: its idempotency key.
    pub merchant_refund_id: String,
    /// Amount to return.
    pub amount: Paise,
    /// The merchant's reason (may be empty).
    pub reason: String,
    /// Hex SHA-256 of the payment id and the request body, to tell a retry from another request.
    pub request_digest: String,
}

/// A refund as a request left it: the payment after it, and which refund it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedRefund {
    /// The payment, with the refund among its refunds.
    pub payment: Payment,
    /// The refund.
    pub refund_id: RefundId,
    /// False when the same request was made before and this answers it again.
    pub created: bool,
}

/// What a PSP said about a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Accepted, under the PSP's refund id; the outcome follows.
    Submitted {
        /// The PSP's refund id.
        psp_refund_id: String,
    },
    /// The money went back to the payer.
    Succeeded {
        /// The PSP's refund id, when known.
        psp_refund_id: Option<String>,
    },
    /// Refused or failed.
    Failed {
        /// The PSP's (or our) code.
        code: String,
        /// Why.
        reason: String,
    },
}

impl Ledger {
    /// Asks for part or all of a succeeded payment back: claims the merchant's refund id and
    /// records the request on the payment, atomically, retrying on a lost race.
    ///
    /// A suspended merchant may refund (the payer's money is at stake); a closed one may not.
    pub async fn request_refund(
        &self,
        merchant: &AuthenticatedMerchant,
        request: &RefundRequest,
        context: &CommandContext,
    ) -> Result<RequestedRefund, ServiceError> {
        let merchant_id = merchant.merchant.id();
        if merchant.merchant.status() == MerchantStatus::Closed {
            return Err(ServiceError::MerchantClosed);
        }
        validate_merchant_refund_id(&request.merchant_refund_id)
            .map_err(|field| ServiceError::Payment(PaymentError::Invalid(field)))?;
        let claim_stream = stream_of::<MerchantRefundClaim>(merchant_refund_key(
            merchant_id,
            &request.merchant_refund_id,
        ))?;
        let payment_stream = stream_of::<Payment>(request.payment_id)?;
        let refund_id = RefundId::new();
        for _ in 0..MAX_ATTEMPTS {
            if let Some(earlier) = self.earlier_refund(&claim_stream, request).await? {
                return earlier;
            }
            let loaded = self.payments.load(&payment_stream).await?;
            let owned = loaded
                .state
                .as_ref()
                .filter(|p| p.merchant_id() == merchant_id);
            if owned.is_none() {
                return Err(ServiceError::UnknownPayment(request.payment_id));
            }
            let at = self.now();
            let command = PaymentCommand::RequestRefund(RequestRefund {
                refund_id,
                merchant_refund_id: request.merchant_refund_id.clone(),
                amount: request.amount,
                reason: request.reason.clone(),
                commission: merchant.merchant.refund_commission(),
                at,
            });
            let mut unit = UnitOfWork::new(context.clone());
            let events = unit.decide(&self.payments, &payment_stream, &loaded, &command)?;
            let claim = self.refund_claim(merchant_id, request, refund_id, at);
            let claimed = self.refund_claims.load(&claim_stream).await?;
            if claimed.state.refund().is_some() {
                // A racing request claimed the refund id since: answer as to a retry of it.
                continue;
            }
            unit.decide(&self.refund_claims, &claim_stream, &claimed, &claim)?;
            self.locate_refund(&mut unit, refund_id, request.payment_id, at)
                .await?;
            match unit.commit(&self.store).await {
                Ok(_) => {
                    let payment = events.iter().fold(loaded.state, |state, event| {
                        <Payment as lightspeed_domain::Decider>::evolve(state, event)
                    });
                    return Ok(RequestedRefund {
                        payment: payment.ok_or(ServiceError::UnknownPayment(request.payment_id))?,
                        refund_id,
                        created: true,
                    });
                }
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
    }

    /// Adds to `unit` the refund's locator: which payment it belongs to.
    async fn locate_refund(
        &self,
        unit: &mut UnitOfWork,
        refund_id: RefundId,
        payment_id: PaymentId,
        at: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let locators = self.refund_locators();
        let stream = stream_of::<RefundLocator>(refund_id)?;
        let located = locators.load(&stream).await?;
        let locate = LocateRefund {
            refund_id,
            payment_id,
            at,
        };
        unit.decide(&locators, &stream, &located, &locate)?;
        Ok(())
    }

    fn refund_locators(&self) -> CommandHandler<RefundLocator, PgEventStore> {
        CommandHandler::new(self.store.clone())
    }

    /// The payment one of our refunds belongs to, from the log; `None` for a refund we never
    /// requested.
    pub async fn payment_of_refund(
        &self,
        refund_id: RefundId,
    ) -> Result<Option<PaymentId>, ServiceError> {
        let stream = stream_of::<RefundLocator>(refund_id)?;
        Ok(self
            .refund_locators()
            .load(&stream)
            .await?
            .state
            .payment_id())
    }

    fn refund_claim(
        &self,
        merchant_id: MerchantId,
        request: &RefundRequest,
        refund_id: RefundId,
        at: DateTime<Utc>,
    ) -> ClaimRefund {
        ClaimRefund {
            refund: MerchantRefund {
                merchant_id,
                merchant_refund_id: request.merchant_refund_id.clone(),
                payment_id: request.payment_id,
                refund_id,
                request_digest: request.request_digest.clone(),
            },
            at,
        }
    }

    /// The answer to a refund id used before: the same request answers its refund, another is
    /// refused.
    async fn earlier_refund(
        &self,
        claim_stream: &StreamId,
        request: &RefundRequest,
    ) -> Result<Option<Result<RequestedRefund, ServiceError>>, ServiceError> {
        let claim = self.refund_claims.load(claim_stream).await?;
        let Some(earlier) = claim.state.refund() else {
            return Ok(None);
        };
        if earlier.request_digest != request.request_digest {
            return Ok(Some(Err(ServiceError::RefundIdReused {
                refund_id: earlier.refund_id,
            })));
        }
        let payment = self
            .payment(earlier.payment_id)
            .await?
            .ok_or(ServiceError::UnknownPayment(earlier.payment_id))?;
        Ok(Some(Ok(RequestedRefund {
            payment,
            refund_id: earlier.refund_id,
            created: false,
        })))
    }

    /// The refund a merchant's refund id asked for, with its payment.
    pub async fn refund_by_merchant_id(
        &self,
        merchant_id: MerchantId,
        merchant_refund_id: &str,
    ) -> Result<Option<(Payment, RefundId)>, ServiceError> {
        if validate_merchant_refund_id(merchant_refund_id).is_err() {
            return Ok(None);
        }
        let stream =
            stream_of::<MerchantRefundClaim>(merchant_refund_key(merchant_id, merchant_refund_id))?;
        let claim = self.refund_claims.load(&stream).await?;
        let Some(refund) = claim.state.refund() else {
            return Ok(None);
        };
        let payment = self.payment_of(merchant_id, refund.payment_id).await?;
        Ok(Some((payment, refund.refund_id)))
    }

    /// Records what the PSP said about a refund, as of `at` (the report's instant, so a retry
    /// decides the same events): a success is appended with its commission reversal. Answers
    /// the payment after it; an outcome already recorded changes nothing.
    pub async fn record_refund_outcome(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        outcome: &RefundOutcome,
        at: DateTime<Utc>,
        context: &CommandContext,
    ) -> Result<Payment, ServiceError> {
        let stream = stream_of::<Payment>(payment_id)?;
        let command = match outcome {
            RefundOutcome::Submitted { psp_refund_id } => PaymentCommand::RecordRefundSubmitted {
                refund_id,
                psp_refund_id: psp_refund_id.clone(),
                at,
            },
            RefundOutcome::Succeeded { psp_refund_id } => PaymentCommand::RecordRefundSucceeded {
                refund_id,
                psp_refund_id: psp_refund_id.clone(),
                at,
            },
            RefundOutcome::Failed { code, reason } => PaymentCommand::RecordRefundFailed {
                refund_id,
                code: code.clone(),
                reason: reason.clone(),
                at,
            },
        };
        for _ in 0..MAX_ATTEMPTS {
            let loaded = self.payments.load(&stream).await?;
            let mut unit = UnitOfWork::new(context.clone());
            let events = match unit.decide(&self.payments, &stream, &loaded, &command) {
                Err(refusal) if refusal.is_already_recorded() => {
                    return loaded.state.ok_or(ServiceError::UnknownPayment(payment_id));
                }
                other => other?,
            };
            if let Some(reversal) = events
                .iter()
                .find_map(|event| WalletCommand::reversal_for(payment_id, event))
            {
                let merchant = loaded.state.as_ref().map(Payment::merchant_id);
                let wallet_stream =
                    stream_of::<Wallet>(merchant.ok_or(ServiceError::UnknownPayment(payment_id))?)?;
                let wallet = self.wallets.cached(&wallet_stream);
                unit.decide_any_version(&self.wallets, &wallet_stream, &wallet, &reversal)?;
            }
            if unit.is_empty() {
                return loaded.state.ok_or(ServiceError::UnknownPayment(payment_id));
            }
            match unit.commit(&self.store).await {
                Ok(_) => {
                    let payment = events.iter().fold(loaded.state, |state, event| {
                        <Payment as lightspeed_domain::Decider>::evolve(state, event)
                    });
                    return payment.ok_or(ServiceError::UnknownPayment(payment_id));
                }
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
    }
}

/// What a PSP's refund report asks the payment to record.
enum ReportedRefund {
    /// One of our refunds moved.
    Ours(RefundId, RefundOutcome),
    /// A refund made at the PSP, not through us, succeeded.
    External {
        psp_refund_id: String,
        amount: Paise,
    },
}

impl Ledger {
    /// Applies a PSP's refund report to its payment (named by the report, else found through
    /// the refund's locator), as of the report's instant: our refund's success or failure, its
    /// submission (pending with the PSP's id), or a refund made at the PSP without us. A report
    /// recorded before, or saying nothing final about an unknown refund, changes nothing.
    /// Answers the payment when the report named one.
    pub async fn settle_refund_report(
        &self,
        report: &ReportOutcome,
        context: &CommandContext,
    ) -> Result<Option<Payment>, ServiceError> {
        let PspOutcome::Refund { refund_id, .. } = &report.outcome else {
            return Ok(None);
        };
        let payment_id = match (report.payment_id, refund_id) {
            (Some(payment_id), _) => payment_id,
            (None, Some(refund_id)) => match self.payment_of_refund(*refund_id).await? {
                Some(payment_id) => payment_id,
                None => return Ok(None),
            },
            (None, None) => return Ok(None),
        };
        let payment = self
            .payment(payment_id)
            .await?
            .filter(|payment| payment.merchant_id() == report.merchant_id)
            .ok_or(ServiceError::UnknownPayment(payment_id))?;
        let Some(reported) = reported_refund(&payment, &report.outcome) else {
            return Ok(Some(payment));
        };
        let at = report.at;
        let after = match reported {
            ReportedRefund::Ours(refund_id, outcome) => {
                self.record_refund_outcome(payment_id, refund_id, &outcome, at, context)
                    .await?
            }
            ReportedRefund::External {
                psp_refund_id,
                amount,
            } => {
                self.record_external_refund(payment_id, psp_refund_id, amount, at, context)
                    .await?
            }
        };
        Ok(Some(after))
    }

    /// Records a refund made at the PSP without our request; one already recorded changes
    /// nothing.
    async fn record_external_refund(
        &self,
        payment_id: PaymentId,
        psp_refund_id: String,
        amount: Paise,
        at: DateTime<Utc>,
        context: &CommandContext,
    ) -> Result<Payment, ServiceError> {
        let stream = stream_of::<Payment>(payment_id)?;
        let command = PaymentCommand::RecordRefund {
            refund_id: psp_refund_id,
            amount,
            at,
        };
        match self.payments.execute(&stream, &command, context).await {
            Ok(executed) => executed
                .state
                .ok_or(ServiceError::UnknownPayment(payment_id)),
            Err(lightspeed_eventstore::CommandError::Rejected(refusal))
                if refusal.is_already_recorded() =>
            {
                self.payment(payment_id)
                    .await?
                    .ok_or(ServiceError::UnknownPayment(payment_id))
            }
            Err(other) => Err(other.into()),
        }
    }
}

/// What a refund report asks of `payment`; `None` when it asks nothing (pending without the
/// PSP's id, or a refund made elsewhere that has not succeeded).
fn reported_refund(payment: &Payment, outcome: &PspOutcome) -> Option<ReportedRefund> {
    let PspOutcome::Refund {
        refund_id,
        psp_refund_id,
        amount,
        state,
    } = outcome
    else {
        return None;
    };
    // A refund of ours the PSP reports without echoing our reference is still ours.
    let ours = refund_id.or_else(|| {
        let psp_id = psp_refund_id.as_deref()?;
        payment
            .refunds()
            .iter()
            .find(|r| {
                r.psp_refund_id.as_deref() == Some(psp_id) && !r.merchant_refund_id.is_empty()
            })
            .map(|r| r.id)
    });
    let psp_refund_id = psp_refund_id.clone();
    match (ours, state) {
        (Some(id), RefundState::Pending) => psp_refund_id.map(|psp_refund_id| {
            ReportedRefund::Ours(id, RefundOutcome::Submitted { psp_refund_id })
        }),
        (Some(id), RefundState::Succeeded) => Some(ReportedRefund::Ours(
            id,
            RefundOutcome::Succeeded { psp_refund_id },
        )),
        (Some(id), RefundState::Failed { code, reason }) => Some(ReportedRefund::Ours(
            id,
            RefundOutcome::Failed {
                code: code.clone(),
                reason: reason.clone(),
            },
        )),
        (None, RefundState::Succeeded) => Some(ReportedRefund::External {
            psp_refund_id: psp_refund_id?,
            amount: *amount,
        }),
        (None, _) => None,
    }
}

/// The locator's one event: a refund was requested.
const REFUND_LOCATED: &str = "RefundLocated";

/// One of our refunds still waiting for its PSP's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRefund {
    /// The refunded payment.
    pub payment_id: PaymentId,
    /// The refund.
    pub refund_id: RefundId,
    /// Requested (the PSP may not have it) or submitted.
    pub status: RefundStatus,
}

impl Ledger {
    /// Our refunds requested in `[requested_from, requested_before)` that are still requested
    /// or submitted, oldest first, from at most `limit` requests: read from the log (the
    /// refunds' locators, then their payments), not a read model.
    pub async fn refunds_awaiting_outcome(
        &self,
        requested_from: DateTime<Utc>,
        requested_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OpenRefund>, ServiceError> {
        let requested = Awaiting {
            category: <RefundLocator as Decider>::CATEGORY,
            recorded: REFUND_LOCATED,
            recorded_from: requested_from,
            recorded_before: requested_before,
            awaited: &[],
            limit,
        };
        let streams = lookups::streams_awaiting(self.store.pool(), &requested)
            .await
            .map_err(|e| ServiceError::Store(e.to_string()))?;
        let mut open = Vec::new();
        for stream in streams {
            let Ok(refund_id) = stream.id().parse::<uuid::Uuid>().map(RefundId) else {
                continue;
            };
            if let Some(refund) = self.open_refund(refund_id).await? {
                open.push(refund);
            }
        }
        Ok(open)
    }

    /// The refund as the log says now, if it is still open.
    async fn open_refund(&self, refund_id: RefundId) -> Result<Option<OpenRefund>, ServiceError> {
        let Some(payment_id) = self.payment_of_refund(refund_id).await? else {
            return Ok(None);
        };
        let payment = self.payment(payment_id).await?;
        let status = payment
            .as_ref()
            .and_then(|p| p.refund(refund_id))
            .map(|refund| refund.status)
            .filter(|status| status.is_open());
        Ok(status.map(|status| OpenRefund {
            payment_id,
            refund_id,
            status,
        }))
    }
}

#[cfg(test)]
mod tests {
    use lightspeed_domain::claims::RefundLocatorEvent;

    use super::*;

    #[test]
    fn the_located_type_is_the_locator_event() {
        assert_eq!(RefundLocatorEvent::EVENT_TYPES, [REFUND_LOCATED]);
    }
}
