//! The payouts worker (`payouts`): makes the RazorpayX transfer of every payout the ledger
//! requested.
//!
//! Jobs are the log's `wallet.PayoutRequested` events (the log is the job: nothing is published
//! beside it). Each creates one RazorpayX payout with `X-Payout-Idempotency` = the payout's id
//! and a body that is a function of the event alone, so a redelivered job, a retry after a
//! timeout or a second replica gets back the payout the first call made instead of a second
//! one. A payout already settled in the wallet is not sent again. RazorpayX refusing the payout
//! outright records it reversed (`rejected`), releasing the reserved balance; the outcome of an
//! accepted payout arrives later by webhook (`POST /webhook/razorpayx`).

use std::collections::BTreeMap;
use std::time::Duration;

use lightspeed_adapters::payouts::{
    IdempotencyKey, PayoutClient, PayoutError, PayoutMode, PayoutRequest, RazorpayXCredentials,
};
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::retry::{Backoff, Jitter};
use lightspeed_domain::wallet::{PayoutReversalReason, PayoutStatus, WalletEvent};
use lightspeed_domain::{MerchantId, Paise, PayoutId};
use lightspeed_eventstore::RecordedEvent;
use lightspeed_services::{Ledger, PayoutSettlement};

use crate::queue::{Job, JobHandler, JobOutcome};
use crate::support::{caused_by, domain_event, ledger_failure, recorded_event, stream_key};

/// The queue's name.
pub const QUEUE: &str = "payouts";
/// The event that asks for a transfer.
pub const EVENT_TYPE: &str = "PayoutRequested";
/// What the beneficiary's statement shows.
pub const NARRATION: &str = "LightSpeed commission";
/// Retries of a RazorpayX call that failed for a passing reason (5xx, timeout, 429, an answer
/// not understood): 5 s doubling to 10 minutes, 12 attempts (about an hour), always with the
/// same key and body.
pub const RAZORPAYX_CALLS: Backoff = Backoff {
    max_attempts: 12,
    base: Duration::from_secs(5),
    max_wait: Duration::from_secs(600),
};

/// RazorpayX account and payout settings, for the payouts worker and the payout scheduler.
#[derive(Clone)]
pub struct PayoutSettings {
    /// RazorpayX key id.
    pub key_id: String,
    /// RazorpayX key secret.
    pub key_secret: Secret,
    /// Secret of the RazorpayX payout webhook (checked by the API's intake).
    pub webhook_secret: Secret,
    /// Our RazorpayX account number (not the beneficiary's).
    pub account_number: String,
    /// The fund account (`fa_…`) commission payouts are made to.
    pub fund_account_id: String,
    /// Replaces the RazorpayX host (tests, a proxy).
    pub base_url: Option<String>,
    /// Transfer rail (default IMPS).
    pub mode: PayoutMode,
}

impl PayoutSettings {
    /// Settings with the default rail ([`PayoutMode::Imps`]).
    pub fn new(
        key_id: impl Into<String>,
        key_secret: Secret,
        webhook_secret: Secret,
        account_number: impl Into<String>,
        fund_account_id: impl Into<String>,
    ) -> Self {
        Self {
            key_id: key_id.into(),
            key_secret,
            webhook_secret,
            account_number: account_number.into(),
            fund_account_id: fund_account_id.into(),
            base_url: None,
            mode: PayoutMode::Imps,
        }
    }

    /// The RazorpayX client these settings describe.
    pub fn client(&self, http: reqwest::Client) -> PayoutClient {
        PayoutClient::new(
            http,
            RazorpayXCredentials {
                key_id: self.key_id.clone(),
                key_secret: self.key_secret.clone(),
                webhook_secret: self.webhook_secret.clone(),
            },
            self.base_url.clone(),
        )
    }

    /// The transfer of one payout: a function of the payout alone, so every retry sends the
    /// same body with the same idempotency key.
    pub fn request(
        &self,
        merchant_id: MerchantId,
        payout_id: PayoutId,
        amount: Paise,
    ) -> PayoutRequest {
        PayoutRequest {
            account_number: self.account_number.clone(),
            fund_account_id: self.fund_account_id.clone(),
            amount,
            currency: "INR".to_owned(),
            mode: self.mode,
            purpose: "payout".to_owned(),
            queue_if_low_balance: true,
            reference_id: payout_id.to_string(),
            narration: NARRATION.to_owned(),
            notes: BTreeMap::from([
                ("merchant_id".to_owned(), merchant_id.to_string()),
                ("payout_id".to_owned(), payout_id.to_string()),
            ]),
        }
    }
}

impl std::fmt::Debug for PayoutSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayoutSettings")
            .field("key_id", &self.key_id)
            .field("account_number", &self.account_number)
            .field("fund_account_id", &self.fund_account_id)
            .field("base_url", &self.base_url)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Makes the transfers of requested payouts.
#[derive(Debug, Clone)]
pub(crate) struct PayoutProcessor {
    pub(crate) ledger: Ledger,
    pub(crate) client: PayoutClient,
    pub(crate) settings: PayoutSettings,
}

impl JobHandler for PayoutProcessor {
    async fn handle(&self, job: Job) -> JobOutcome {
        let event = match recorded_event(&job) {
            Ok(event) => event,
            Err(outcome) => return outcome,
        };
        self.transfer(&job, &event)
            .await
            .unwrap_or_else(|outcome| outcome)
    }
}

impl PayoutProcessor {
    async fn transfer(&self, job: &Job, event: &RecordedEvent) -> Result<JobOutcome, JobOutcome> {
        if event.event_type != EVENT_TYPE {
            return Ok(JobOutcome::Done);
        }
        let WalletEvent::PayoutRequested {
            payout_id, amount, ..
        } = domain_event(event)?
        else {
            return Ok(JobOutcome::Done);
        };
        let merchant_id: MerchantId = stream_key(event)?;
        let wallet = self
            .ledger
            .wallet(merchant_id)
            .await
            .map_err(|e| ledger_failure(job, "read the wallet", &e))?;
        if wallet.payout(payout_id).map(|p| p.status) != Some(PayoutStatus::Pending) {
            // Settled already (a webhook beat this delivery): nothing left to send.
            return Ok(JobOutcome::Done);
        }
        let request = self.settings.request(merchant_id, payout_id, amount);
        let key = IdempotencyKey::for_payout(payout_id);
        match self.client.create_payout(&request, &key).await {
            Ok(payout) => {
                tracing::info!(%merchant_id, %payout_id, %amount, razorpayx_payout = %payout.id, status = ?payout.status, "payout created");
                Ok(JobOutcome::Done)
            }
            Err(PayoutError::Rejected { code, message }) => {
                tracing::warn!(%merchant_id, %payout_id, %code, "RazorpayX refused the payout");
                let settlement = PayoutSettlement::Reversed {
                    reason: PayoutReversalReason::Rejected,
                    detail: format!("{code}: {message}"),
                };
                let context = caused_by(
                    event,
                    QUEUE,
                    Some(crate::ids::refused_payout_command(payout_id)),
                );
                self.ledger
                    .record_payout_update(merchant_id, payout_id, settlement, &context)
                    .await
                    .map_err(|e| ledger_failure(job, "record the refused payout", &e))?;
                Ok(JobOutcome::Done)
            }
            Err(error) => Ok(razorpayx_retry(job, &error)),
        }
    }
}

/// The wait before the next try of a passing RazorpayX failure (longer if RazorpayX asked for a
/// pause), or giving up once [`RAZORPAYX_CALLS`] is exhausted (the payout stays pending, its
/// amount reserved, for ops to see).
fn razorpayx_retry(job: &Job, error: &PayoutError) -> JobOutcome {
    let attempt = u32::try_from(job.delivered).unwrap_or(u32::MAX);
    match RAZORPAYX_CALLS.wait_after(attempt, Jitter::NONE) {
        Some(wait) => {
            let asked = match error {
                PayoutError::RateLimited {
                    retry_after: Some(pause),
                } => (*pause).min(RAZORPAYX_CALLS.max_wait),
                _ => Duration::ZERO,
            };
            tracing::warn!(subject = %job.subject, %error, "RazorpayX call failed; retrying with the same key");
            JobOutcome::RetryAfter(wait.max(asked))
        }
        None => JobOutcome::GiveUp(format!(
            "RazorpayX still failing after {} attempts: {error}",
            RAZORPAYX_CALLS.max_attempts
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
    fn event_type_exists_in_the_domain() {
        assert!(WalletEvent::EVENT_TYPES.contains(&EVENT_TYPE));
    }

    #[test]
    fn the_body_is_a_function_of_the_payout_and_valid_for_razorpayx() {
        let settings = PayoutSettings::new(
            "rzp_test_key",
            Secret::from("key-secret"),
            Secret::from("webhook-secret"),
            "7878780080316316",
            "fa_00000000000001",
        );
        let merchant = MerchantId::new();
        let payout = PayoutId::new();
        let request = settings.request(merchant, payout, Paise(150_000));
        assert_eq!(request, settings.request(merchant, payout, Paise(150_000)));
        assert!(request.reference_id.len() <= 40);
        assert!(request.narration.len() <= 30);
        assert!(!format!("{settings:?}").contains("key-secret"));
    }

    #[test]
    fn passing_failures_retry_then_give_up() {
        let down = PayoutError::Unavailable {
            reason: "503".into(),
        };
        assert_eq!(
            razorpayx_retry(&job(1), &down),
            JobOutcome::RetryAfter(Duration::from_secs(5))
        );
        let limited = PayoutError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(
            razorpayx_retry(&job(1), &limited),
            JobOutcome::RetryAfter(Duration::from_secs(30))
        );
        assert!(matches!(
            razorpayx_retry(&job(12), &down),
            JobOutcome::GiveUp(_)
        ));
    }
}
