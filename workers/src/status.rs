//! The PSP status checker (`settlement-processing`) and [`StatusChecker::check_payment_status`],
//! the building block reconciliation reuses.
//!
//! A status check asks the payment's PSP what happened ([`PspClient::fetch_status`]) and records
//! a final answer as a PSP outcome with source `status_check` and de-duplication key
//! `status:<succeeded|failed>:<PSP payment id, else PSP order id>` (the order id the PSP names,
//! else the one it was asked about; the verdict first, because the outcome stream keeps only the
//! key's first 80 bytes: a long PSP id must not make a failure and a later success look like the
//! same report). The outcome processor then settles it exactly like a verified webhook; a webhook that reports the
//! same success later records its own outcome, which the payment refuses as already succeeded.

use std::sync::Arc;
use std::time::Duration;

use lightspeed_adapters::psp::{PaymentOutcome, PspAccount, PspClient, PspError, PspStatus};
use lightspeed_adapters::secrets::Keyring;
use lightspeed_domain::gateway::Gateway;
use lightspeed_domain::payment::{Payment, PaymentStatus};
use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, ReportOutcome};
use lightspeed_domain::retry::{Jitter, PSP_CALLS};
use lightspeed_domain::{GatewayId, PaymentId, Provider};
use lightspeed_eventstore::{CommandContext, Metadata};
use lightspeed_services::{Ledger, ServiceError};

use crate::jobs::StatusCheck;
use crate::queue::{Job, JobHandler, JobOutcome};
use crate::support::ledger_failure;

/// The queue's name.
pub const QUEUE: &str = "settlement-processing";

/// What a status check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChecked {
    /// The PSP gave a final answer, now recorded as an outcome (`newly_recorded` is false when
    /// the same answer was recorded before).
    Reported {
        /// What the PSP said.
        outcome: PspOutcome,
        /// Whether this check recorded it (false: an earlier check already had).
        newly_recorded: bool,
    },
    /// The PSP knows nothing final yet.
    Pending,
    /// The payment already succeeded; the PSP was not asked.
    AlreadySucceeded,
    /// The payment has no PSP order, so nobody could have paid; the PSP was not asked.
    NoPspOrder,
}

/// Why a status check could not finish.
#[derive(Debug, thiserror::Error)]
pub enum StatusCheckError {
    /// No payment with this id.
    #[error("unknown payment {0}")]
    UnknownPayment(PaymentId),
    /// The ledger failed or refused.
    #[error(transparent)]
    Ledger(#[from] ServiceError),
    /// The PSP failed or refused.
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

/// Asks PSPs for payment statuses and records what they say.
#[derive(Debug, Clone)]
pub struct StatusChecker {
    ledger: Ledger,
    keyring: Arc<Keyring>,
    psp: PspClient,
}

impl StatusChecker {
    /// A checker over the ledger, opening gateway accounts with `keyring`.
    pub fn new(ledger: Ledger, keyring: Arc<Keyring>, psp: PspClient) -> Self {
        Self {
            ledger,
            keyring,
            psp,
        }
    }

    /// Asks the PSP of the payment's current gateway for its status and records a final answer
    /// as an outcome. `psp_order_id` overrides the payment's recorded order id as the look-up
    /// hint; `metadata` is carried into the recorded outcome.
    pub async fn check_payment_status(
        &self,
        payment_id: PaymentId,
        psp_order_id: Option<&str>,
        metadata: Metadata,
    ) -> Result<StatusChecked, StatusCheckError> {
        let payment = self
            .ledger
            .payment(payment_id)
            .await?
            .ok_or(StatusCheckError::UnknownPayment(payment_id))?;
        if matches!(
            payment.status(),
            PaymentStatus::Succeeded | PaymentStatus::Refunded
        ) {
            return Ok(StatusChecked::AlreadySucceeded);
        }
        let Some(order) = payment.psp_order() else {
            return Ok(StatusChecked::NoPspOrder);
        };
        let gateway = self
            .ledger
            .gateway_of(payment.merchant_id(), payment.gateway_id())
            .await?;
        let hint = psp_order_id.unwrap_or(&order.psp_order_id);
        let status = self.ask_psp(&payment, &gateway, hint).await?;
        let Some(report) = self.report_of(&payment, gateway.provider(), hint, status) else {
            return Ok(StatusChecked::Pending);
        };
        let outcome = report.outcome.clone();
        let context = CommandContext {
            command_id: None,
            metadata,
        };
        let newly_recorded = self.ledger.report_outcome(report, &context).await?;
        Ok(StatusChecked::Reported {
            outcome,
            newly_recorded,
        })
    }

    /// The payment's status at its gateway's PSP, with the gateway's account opened for this
    /// call only.
    async fn ask_psp(
        &self,
        payment: &Payment,
        gateway: &Gateway,
        hint: &str,
    ) -> Result<PspStatus, StatusCheckError> {
        let psp_failed = |error: PspError| StatusCheckError::Psp {
            gateway_id: payment.gateway_id(),
            provider: gateway.provider(),
            error,
        };
        let account = PspAccount::open(&self.keyring, gateway.credentials())
            .map_err(|e| psp_failed(e.into()))?;
        self.psp
            .fetch_status(&account, payment.id(), Some(hint))
            .await
            .map_err(psp_failed)
    }

    /// The outcome to record from the PSP's answer; `None` while it says nothing final.
    fn report_of(
        &self,
        payment: &Payment,
        provider: Provider,
        hint: &str,
        status: PspStatus,
    ) -> Option<ReportOutcome> {
        let (outcome, verdict) = match status.outcome {
            PaymentOutcome::Succeeded { amount } => (PspOutcome::Succeeded { amount }, "succeeded"),
            PaymentOutcome::Failed { code, reason } => {
                (PspOutcome::Failed { code, reason }, "failed")
            }
            PaymentOutcome::Pending
            | PaymentOutcome::Refund { .. }
            | PaymentOutcome::Ignored { .. } => return None,
        };
        let psp_order_id = status.psp_order_id.unwrap_or_else(|| hint.to_owned());
        let subject = status
            .psp_payment_id
            .clone()
            .unwrap_or_else(|| psp_order_id.clone());
        Some(ReportOutcome {
            merchant_id: payment.merchant_id(),
            gateway_id: payment.gateway_id(),
            provider,
            dedupe_key: format!("status:{verdict}:{subject}"),
            payment_id: Some(payment.id()),
            psp_order_id: Some(psp_order_id),
            psp_payment_id: status.psp_payment_id,
            outcome,
            source: OutcomeSource::StatusCheck,
            at: self.ledger.now(),
        })
    }
}

impl JobHandler for StatusChecker {
    async fn handle(&self, job: Job) -> JobOutcome {
        let check: StatusCheck = match serde_json::from_slice(&job.payload) {
            Ok(check) => check,
            Err(e) => return JobOutcome::GiveUp(format!("not a status check: {e}")),
        };
        let metadata = Metadata {
            correlation_id: None,
            causation_id: None,
            actor: Some(format!("system:{QUEUE}")),
            request_id: None,
        };
        let checked = self
            .check_payment_status(check.payment_id, check.psp_order_id.as_deref(), metadata)
            .await;
        match checked {
            Ok(found) => {
                tracing::info!(payment_id = %check.payment_id, gateway_id = %check.gateway_id, reason = %check.reason, ?found, "status checked");
                JobOutcome::Done
            }
            Err(StatusCheckError::Ledger(error)) => ledger_failure(&job, "status check", &error),
            Err(StatusCheckError::Psp { error, .. }) if error.is_retryable() => {
                psp_retry(&job, &error)
            }
            Err(other) => JobOutcome::GiveUp(other.to_string()),
        }
    }
}

/// The domain's PSP retry schedule for this delivery (longer if the PSP asked for a pause), or
/// giving up once the schedule is exhausted.
pub(crate) fn psp_retry(job: &Job, error: &PspError) -> JobOutcome {
    let attempt = u32::try_from(job.delivered).unwrap_or(u32::MAX);
    match PSP_CALLS.wait_after(attempt, Jitter::NONE) {
        Some(wait) => {
            let asked = match error {
                PspError::RateLimited {
                    retry_after: Some(pause),
                } => (*pause).min(PSP_CALLS.max_wait),
                _ => Duration::ZERO,
            };
            JobOutcome::RetryAfter(wait.max(asked))
        }
        None => JobOutcome::GiveUp(format!(
            "PSP still failing after {} attempts: {error}",
            PSP_CALLS.max_attempts
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(delivered: u64) -> Job {
        Job {
            subject: "t".into(),
            payload: bytes::Bytes::new(),
            stream_sequence: 1,
            delivered,
        }
    }

    #[test]
    fn psp_failures_follow_the_domain_schedule_then_give_up() {
        let down = PspError::Unavailable {
            reason: "upstream answered 503".into(),
        };
        assert_eq!(
            psp_retry(&job(1), &down),
            JobOutcome::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            psp_retry(&job(2), &down),
            JobOutcome::RetryAfter(Duration::from_secs(2))
        );
        assert!(matches!(psp_retry(&job(3), &down), JobOutcome::GiveUp(_)));
        let limited = PspError::RateLimited {
            retry_after: Some(Duration::from_secs(10)),
        };
        assert_eq!(
            psp_retry(&job(1), &limited),
            JobOutcome::RetryAfter(Duration::from_secs(10))
        );
    }
}
