//! The refund processor (`refund-processing`) and [`RefundDesk`], which reconciliation and
//! refund checks reuse.
//!
//! Jobs are `RefundRequested` events. For each, the payment is loaded and nothing is done unless
//! the refund is still only requested (a redelivered job, or one whose refund a PSP webhook
//! already moved, is acknowledged without calling the PSP). Then the account of the gateway
//! that captured the payment is opened (no failover: the money is there) and the refund created
//! at the PSP, keyed by the refund's reference so the PSP never creates it twice, and its first
//! answer recorded as of the event's instant with a command id derived from the refund, so a
//! redelivery decides the same events: submitted (the PSP's refund id), or already succeeded or
//! failed. A PSP refusal fails the refund with the PSP's code and reason (its amount may be
//! refunded again); 5xx, timeouts, 429 and unreadable answers are retried on the domain's PSP
//! schedule, after which the refund waits, requested, for the reconciliation sweep.
//!
//! A refund check ([`RefundDesk::check`], the `refund_check` job on `settlement-processing`)
//! asks the PSP where a requested or submitted refund stands and records a final answer; a
//! refund the PSP knows nothing about is created again through the same idempotent call.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lightspeed_adapters::psp::{PspAccount, PspClient, PspError, PspRefund, RefundRequest};
use lightspeed_adapters::secrets::Keyring;
use lightspeed_domain::payment::PaymentEvent;
use lightspeed_domain::payment::refunds::{Refund, RefundStatus};
use lightspeed_domain::psp_outcome::RefundState;
use lightspeed_domain::{GatewayId, Payment, PaymentId, Provider, RefundId};
use lightspeed_eventstore::{CommandContext, Metadata, RecordedEvent};
use lightspeed_services::{Ledger, RefundOutcome, ServiceError};

use crate::ids;
use crate::jobs::RefundCheck;
use crate::queue::{Job, JobHandler, JobOutcome};
use crate::status::{StatusChecker, psp_retry};
use crate::support::{caused_by, domain_event, ledger_failure, recorded_event, stream_key};

/// The queue's name.
pub const QUEUE: &str = "refund-processing";
/// The payment event that asks for a PSP refund.
pub const EVENT_TYPE: &str = "RefundRequested";

/// What a submission or a check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundHandled {
    /// The refund no longer waits for the PSP (submitted, succeeded or failed already); the PSP
    /// was not asked.
    NotAwaiting(RefundStatus),
    /// The PSP's answer was recorded.
    Recorded(RefundOutcome),
    /// The PSP has it but named neither an id nor an outcome yet; nothing was recorded.
    Pending,
}

/// Why a refund could not be submitted or checked.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// No payment with this id.
    #[error("unknown payment {0}")]
    UnknownPayment(PaymentId),
    /// The payment has no such refund.
    #[error("payment {payment_id} has no refund {refund_id}")]
    UnknownRefund {
        /// The payment.
        payment_id: PaymentId,
        /// The refund asked about.
        refund_id: RefundId,
    },
    /// The ledger failed or refused.
    #[error(transparent)]
    Ledger(#[from] ServiceError),
    /// The PSP failed in a way that trying again may mend.
    #[error("gateway {gateway_id} ({provider}): {error}")]
    Psp {
        /// The gateway asked.
        gateway_id: GatewayId,
        /// Its provider.
        provider: Provider,
        /// What went wrong (never carries credentials).
        error: PspError,
    },
}

/// Creates and checks refunds at the PSP of the gateway that captured their payment.
#[derive(Debug, Clone)]
pub struct RefundDesk {
    pub(crate) ledger: Ledger,
    keyring: Arc<Keyring>,
    psp: PspClient,
    public_url: String,
}

/// A refund and everything a PSP call about it needs.
struct Refunding {
    payment: Payment,
    refund: Refund,
    account: PspAccount,
    provider: Provider,
    request: RefundRequest,
}

impl RefundDesk {
    /// A desk over the ledger, opening gateway accounts with `keyring`; PSP callbacks go to
    /// `public_url`.
    pub fn new(ledger: Ledger, keyring: Arc<Keyring>, psp: PspClient, public_url: &str) -> Self {
        Self {
            ledger,
            keyring,
            psp,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Creates the refund at the PSP if it is still only requested, and records the PSP's
    /// first answer as of `at`.
    pub async fn submit(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        at: DateTime<Utc>,
        context: &CommandContext,
    ) -> Result<RefundHandled, RefundError> {
        let refunding = self.refunding(payment_id, refund_id).await?;
        if refunding.refund.status != RefundStatus::Requested {
            return Ok(RefundHandled::NotAwaiting(refunding.refund.status));
        }
        let created = self
            .psp
            .create_refund(&refunding.account, &refunding.request)
            .await;
        let outcome = match created {
            Ok(answer) => first_word(&answer),
            Err(PspError::Rejected { code, message }) => Some(RefundOutcome::Failed {
                code,
                reason: message,
            }),
            Err(error) => return Err(refunding.psp_failed(error)),
        };
        self.record(&refunding, outcome, at, context).await
    }

    /// Asks the PSP where a requested or submitted refund stands and records what it says as of
    /// `at`; a refund the PSP does not know is created again (the PSP keys it by its reference,
    /// so never twice).
    pub async fn check(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
        at: DateTime<Utc>,
        context: &CommandContext,
    ) -> Result<RefundHandled, RefundError> {
        let refunding = self.refunding(payment_id, refund_id).await?;
        if !refunding.refund.status.is_open() {
            return Ok(RefundHandled::NotAwaiting(refunding.refund.status));
        }
        let psp_refund_id = refunding.refund.psp_refund_id.as_deref();
        let found = self
            .psp
            .fetch_refund(&refunding.account, &refunding.request, psp_refund_id)
            .await;
        match found {
            Ok(Some(answer)) => {
                let outcome = first_word(&answer);
                self.record(&refunding, outcome, at, context).await
            }
            Ok(None) => {
                tracing::warn!(%payment_id, %refund_id, "the PSP knows no such refund; creating it again");
                self.submit(payment_id, refund_id, at, context).await
            }
            Err(error) => Err(refunding.psp_failed(error)),
        }
    }

    /// Records the PSP's answer, if it says something the refund does not show yet.
    async fn record(
        &self,
        refunding: &Refunding,
        outcome: Option<RefundOutcome>,
        at: DateTime<Utc>,
        context: &CommandContext,
    ) -> Result<RefundHandled, RefundError> {
        let Some(outcome) = outcome else {
            return Ok(RefundHandled::Pending);
        };
        let (payment_id, refund_id) = (refunding.payment.id(), refunding.refund.id);
        self.ledger
            .record_refund_outcome(payment_id, refund_id, &outcome, at, context)
            .await?;
        tracing::info!(%payment_id, %refund_id, ?outcome, "refund recorded");
        Ok(RefundHandled::Recorded(outcome))
    }

    /// The refund with its payment, the captured gateway's opened account and the request.
    async fn refunding(
        &self,
        payment_id: PaymentId,
        refund_id: RefundId,
    ) -> Result<Refunding, RefundError> {
        let payment = self
            .ledger
            .payment(payment_id)
            .await?
            .ok_or(RefundError::UnknownPayment(payment_id))?;
        let refund = payment
            .refund(refund_id)
            .cloned()
            .ok_or(RefundError::UnknownRefund {
                payment_id,
                refund_id,
            })?;
        let merchant = self.ledger.merchant(payment.merchant_id()).await?;
        // The gateway that captured the payment: refunds never fail over.
        let gateway_id = payment.gateway_id();
        let gateway = self
            .ledger
            .gateway_of(payment.merchant_id(), gateway_id)
            .await?;
        let provider = gateway.provider();
        let account = PspAccount::open(&self.keyring, gateway.credentials()).map_err(|e| {
            RefundError::Psp {
                gateway_id,
                provider,
                error: e.into(),
            }
        })?;
        let callback_url = format!(
            "{}/webhook/{}/{gateway_id}",
            self.public_url,
            merchant.client_key()
        );
        let request = refund_request(&payment, &refund, callback_url);
        Ok(Refunding {
            payment,
            refund,
            account,
            provider,
            request,
        })
    }
}

/// What the PSP is asked to refund.
fn refund_request(payment: &Payment, refund: &Refund, callback_url: String) -> RefundRequest {
    RefundRequest {
        payment_id: payment.id(),
        refund_id: refund.id,
        amount: refund.amount,
        psp_order_id: payment.psp_order().map(|o| o.psp_order_id.clone()),
        psp_payment_id: payment.success().map(|s| s.psp_payment_id.clone()),
        reason: refund.reason.clone(),
        callback_url,
    }
}

impl Refunding {
    fn psp_failed(&self, error: PspError) -> RefundError {
        RefundError::Psp {
            gateway_id: self.payment.gateway_id(),
            provider: self.provider,
            error,
        }
    }
}

/// What a PSP's answer about a refund records: nothing while it is pending without an id.
fn first_word(answer: &PspRefund) -> Option<RefundOutcome> {
    let psp_refund_id = answer.psp_refund_id.clone();
    match &answer.state {
        RefundState::Pending => {
            psp_refund_id.map(|psp_refund_id| RefundOutcome::Submitted { psp_refund_id })
        }
        RefundState::Succeeded => Some(RefundOutcome::Succeeded { psp_refund_id }),
        RefundState::Failed { code, reason } => Some(RefundOutcome::Failed {
            code: code.clone(),
            reason: reason.clone(),
        }),
    }
}

/// The job's outcome for a refund that could not be handled: the PSP's retry schedule for a
/// PSP that may mend, the ledger's for the ledger, given up otherwise.
pub(crate) fn refund_failure(job: &Job, error: &RefundError) -> JobOutcome {
    match error {
        RefundError::Ledger(error) => ledger_failure(job, "record the refund", error),
        RefundError::Psp { error, .. } if error.is_retryable() => psp_retry(job, error),
        other => JobOutcome::GiveUp(other.to_string()),
    }
}

/// Submits requested refunds to their PSP.
#[derive(Debug, Clone)]
pub(crate) struct RefundProcessor {
    pub(crate) desk: RefundDesk,
}

impl JobHandler for RefundProcessor {
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

impl RefundProcessor {
    async fn process(&self, job: &Job, event: &RecordedEvent) -> Result<JobOutcome, JobOutcome> {
        if event.event_type != EVENT_TYPE {
            return Ok(JobOutcome::Done);
        }
        let payment_id: PaymentId = stream_key(event)?;
        let PaymentEvent::RefundRequested { refund_id, at, .. } = domain_event(event)? else {
            return Ok(JobOutcome::Done);
        };
        let context = caused_by(event, QUEUE, Some(ids::submit_refund_command(refund_id)));
        match self.desk.submit(payment_id, refund_id, at, &context).await {
            Ok(handled) => {
                tracing::info!(%payment_id, %refund_id, ?handled, "refund submitted");
                Ok(JobOutcome::Done)
            }
            Err(error) => {
                tracing::warn!(%payment_id, %refund_id, %error, "refund not submitted");
                Err(refund_failure(job, &error))
            }
        }
    }
}

/// The jobs of `settlement-processing`: refund checks here, status checks to the checker.
#[derive(Debug, Clone)]
pub(crate) struct SettlementJobs {
    pub(crate) status: StatusChecker,
    pub(crate) refunds: RefundDesk,
}

impl JobHandler for SettlementJobs {
    async fn handle(&self, job: Job) -> JobOutcome {
        if !job.subject.ends_with(REFUND_CHECK_SUFFIX) {
            return self.status.handle(job).await;
        }
        let check: RefundCheck = match serde_json::from_slice(&job.payload) {
            Ok(check) => check,
            Err(e) => return JobOutcome::GiveUp(format!("not a refund check: {e}")),
        };
        let context = CommandContext {
            command_id: None,
            metadata: Metadata {
                actor: Some(format!("system:{}", crate::status::QUEUE)),
                ..Metadata::default()
            },
        };
        let at = self.refunds.ledger.now();
        let (payment_id, refund_id) = (check.payment_id, check.refund_id);
        match self
            .refunds
            .check(payment_id, refund_id, at, &context)
            .await
        {
            Ok(found) => {
                tracing::info!(%payment_id, %refund_id, reason = %check.reason, ?found, "refund checked");
                JobOutcome::Done
            }
            Err(error) => {
                tracing::warn!(%payment_id, %refund_id, %error, "refund not checked");
                refund_failure(&job, &error)
            }
        }
    }
}

/// How a refund check's subject ends (`<prefix>_jobs.refund_check`).
const REFUND_CHECK_SUFFIX: &str = ".refund_check";

#[cfg(test)]
mod tests {
    use super::*;
    use lightspeed_domain::Paise;

    #[test]
    fn event_type_exists_in_the_domain() {
        assert!(PaymentEvent::EVENT_TYPES.contains(&EVENT_TYPE));
    }

    #[test]
    fn a_pending_answer_without_an_id_records_nothing() {
        let answer = |psp_refund_id: Option<&str>, state| PspRefund {
            psp_refund_id: psp_refund_id.map(str::to_owned),
            amount: Paise(100),
            state,
        };
        assert_eq!(first_word(&answer(None, RefundState::Pending)), None);
        assert_eq!(
            first_word(&answer(Some("rfnd_1"), RefundState::Pending)),
            Some(RefundOutcome::Submitted {
                psp_refund_id: "rfnd_1".into()
            })
        );
        assert_eq!(
            first_word(&answer(None, RefundState::Succeeded)),
            Some(RefundOutcome::Succeeded {
                psp_refund_id: None
            })
        );
    }
}
