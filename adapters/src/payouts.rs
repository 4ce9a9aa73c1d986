//! RazorpayX payouts: create a payout idempotently, read its state, verify its webhooks.
//!
//! Every create carries `X-Payout-Idempotency`: the caller derives the key from its own payout
//! id ([`IdempotencyKey::for_payout`]) so every retry of the same payout sends the same key and
//! body, and RazorpayX answers the first payout instead of making a second.

use std::collections::BTreeMap;
use std::time::Duration;

use lightspeed_domain::{Paise, PayoutId};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::crypto::hmac_sha256_verify;
use crate::http::{Answer, Failure, excerpt, join};
use crate::psp::WebhookError;
use crate::secrets::Secret;

/// RazorpayX API host.
pub const BASE_URL: &str = "https://api.razorpay.com";
/// The idempotency header, mandatory on `POST /v1/payouts`.
pub const IDEMPOTENCY_HEADER: &str = "X-Payout-Idempotency";
/// Header with the hex HMAC-SHA256 of the raw webhook body under the webhook secret.
pub const SIGNATURE_HEADER: &str = "x-razorpay-signature";
/// Header with the webhook event's unique id.
pub const EVENT_ID_HEADER: &str = "x-razorpay-event-id";
/// Smallest payout RazorpayX accepts.
pub const MIN_AMOUNT: Paise = Paise(100);

/// RazorpayX API keys and the payout webhook's secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RazorpayXCredentials {
    /// RazorpayX key id.
    pub key_id: String,
    /// RazorpayX key secret.
    pub key_secret: Secret,
    /// Secret of the RazorpayX webhook.
    pub webhook_secret: Secret,
}

impl std::fmt::Debug for RazorpayXCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RazorpayXCredentials")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A valid `X-Payout-Idempotency` value: 4–36 characters of `[A-Za-z0-9 _-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks a caller-made key.
    pub fn parse(key: &str) -> Result<Self, PayoutError> {
        let valid = (4..=36).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b'-'));
        if valid {
            Ok(Self(key.to_owned()))
        } else {
            Err(PayoutError::invalid(
                "idempotency key must be 4-36 chars of [A-Za-z0-9 _-]",
            ))
        }
    }

    /// The key of one payout: its id, hyphenated (36 characters).
    pub fn for_payout(payout: PayoutId) -> Self {
        Self(payout.as_uuid().hyphenated().to_string())
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Transfer rail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayoutMode {
    /// NEFT.
    #[serde(rename = "NEFT")]
    Neft,
    /// RTGS.
    #[serde(rename = "RTGS")]
    Rtgs,
    /// IMPS.
    #[serde(rename = "IMPS")]
    Imps,
    /// UPI.
    #[serde(rename = "UPI")]
    Upi,
    /// Card.
    #[serde(rename = "card")]
    Card,
}

/// What to pay out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayoutRequest {
    /// Our RazorpayX account number (not the beneficiary's).
    pub account_number: String,
    /// `fa_…` of the beneficiary's fund account.
    pub fund_account_id: String,
    /// Amount (at least [`MIN_AMOUNT`]).
    pub amount: Paise,
    /// `INR`.
    pub currency: String,
    /// Rail.
    pub mode: PayoutMode,
    /// `payout`, `refund`, `vendor bill`, … or a custom purpose.
    pub purpose: String,
    /// Queue instead of failing when the balance is low.
    pub queue_if_low_balance: bool,
    /// Our reference (≤ 40 chars), echoed in webhooks.
    pub reference_id: String,
    /// Shown on the beneficiary's statement (≤ 30 letters, digits and spaces).
    pub narration: String,
    /// Free-form notes.
    pub notes: BTreeMap<String, String>,
}

impl PayoutRequest {
    fn validate(&self) -> Result<(), PayoutError> {
        if self.amount < MIN_AMOUNT {
            return Err(PayoutError::invalid(
                "payout amount must be at least 100 paise",
            ));
        }
        if self.reference_id.chars().count() > 40 {
            return Err(PayoutError::invalid(
                "reference_id must be at most 40 characters",
            ));
        }
        if self.narration.chars().count() > 30
            || !self
                .narration
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ')
        {
            return Err(PayoutError::invalid(
                "narration must be at most 30 letters, digits and spaces",
            ));
        }
        Ok(())
    }
}

/// A payout's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Waiting for balance.
    Queued,
    /// Waiting for approval.
    Pending,
    /// Sent to the bank.
    Processing,
    /// Money reached the beneficiary (terminal).
    Processed,
    /// Returned by the beneficiary's bank after processing (terminal).
    Reversed {
        /// Why.
        reason: String,
    },
    /// Failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// Rejected at approval.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Cancelled before processing.
    Cancelled {
        /// Why.
        reason: String,
    },
}

impl PayoutStatus {
    /// Whether no later event can change it (RazorpayX: processed and reversed; failed,
    /// rejected and cancelled payouts are not retried either).
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Queued | Self::Pending | Self::Processing)
    }
}

/// A payout as RazorpayX reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    /// `pout_…`.
    pub id: String,
    /// Our reference.
    pub reference_id: Option<String>,
    /// Amount.
    pub amount: Paise,
    /// State.
    pub status: PayoutStatus,
    /// Bank reference, once processed.
    pub utr: Option<String>,
}

/// A verified payout webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutUpdate {
    /// Key to drop redeliveries with (the event id, or the payout id and status).
    pub dedupe_key: String,
    /// `pout_…`.
    pub payout_id: String,
    /// Our reference.
    pub reference_id: Option<String>,
    /// The payout's new state.
    pub status: PayoutStatus,
    /// Bank reference, once processed.
    pub utr: Option<String>,
}

/// How a payout call failed. Never carries credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayoutError {
    /// 5xx, timeout or connection failure: retry later with the same idempotency key.
    #[error("RazorpayX unavailable: {reason}")]
    Unavailable {
        /// What went wrong.
        reason: String,
    },
    /// 429: retry later.
    #[error("RazorpayX rate limit hit")]
    RateLimited {
        /// How long RazorpayX asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// 4xx or invalid input: do not retry as is.
    #[error("RazorpayX rejected the payout: {code}: {message}")]
    Rejected {
        /// RazorpayX's error code, or ours for local refusals.
        code: String,
        /// Explanation.
        message: String,
    },
    /// The answer could not be understood.
    #[error("RazorpayX answer not understood: {reason}")]
    Protocol {
        /// What was wrong with it.
        reason: String,
    },
}

impl PayoutError {
    fn invalid(message: &str) -> Self {
        Self::Rejected {
            code: "invalid_request".to_owned(),
            message: message.to_owned(),
        }
    }
}

impl From<Failure> for PayoutError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unavailable(reason) => Self::Unavailable { reason },
            Failure::RateLimited(retry_after) => Self::RateLimited { retry_after },
            Failure::Protocol(reason) => Self::Protocol { reason },
        }
    }
}

#[derive(Debug, Deserialize)]
struct PayoutEntity {
    id: String,
    amount: i64,
    status: String,
    #[serde(default)]
    reference_id: Option<String>,
    #[serde(default)]
    utr: Option<String>,
    #[serde(default)]
    failure_reason: Option<String>,
    #[serde(default)]
    status_details: Option<StatusDetails>,
}

#[derive(Debug, Deserialize)]
struct StatusDetails {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

impl PayoutEntity {
    fn status(&self) -> Result<PayoutStatus, String> {
        let reason = || {
            self.status_details
                .as_ref()
                .and_then(|d| d.description.clone().or_else(|| d.reason.clone()))
                .or_else(|| self.failure_reason.clone())
                .unwrap_or_default()
        };
        Ok(match self.status.as_str() {
            "queued" => PayoutStatus::Queued,
            "pending" => PayoutStatus::Pending,
            "processing" => PayoutStatus::Processing,
            "processed" => PayoutStatus::Processed,
            "reversed" => PayoutStatus::Reversed { reason: reason() },
            "failed" => PayoutStatus::Failed { reason: reason() },
            "rejected" => PayoutStatus::Rejected { reason: reason() },
            "cancelled" => PayoutStatus::Cancelled { reason: reason() },
            other => return Err(format!("unknown payout status {}", excerpt(other))),
        })
    }

    fn into_payout(self) -> Result<Payout, String> {
        let status = self.status()?;
        Ok(Payout {
            id: self.id,
            reference_id: self.reference_id,
            amount: Paise(self.amount),
            status,
            utr: self.utr,
        })
    }
}

/// The RazorpayX payouts client.
#[derive(Debug, Clone)]
pub struct PayoutClient {
    http: reqwest::Client,
    base_url: String,
    credentials: RazorpayXCredentials,
}

impl PayoutClient {
    /// A client for one RazorpayX account; `base_url` replaces the RazorpayX host (tests).
    pub fn new(
        http: reqwest::Client,
        credentials: RazorpayXCredentials,
        base_url: Option<String>,
    ) -> Self {
        Self {
            http,
            base_url: base_url.unwrap_or_else(|| BASE_URL.to_owned()),
            credentials,
        }
    }

    /// Creates a payout, or gets back the one an earlier try with the same key created.
    pub async fn create_payout(
        &self,
        request: &PayoutRequest,
        key: &IdempotencyKey,
    ) -> Result<Payout, PayoutError> {
        request.validate()?;
        let secret = self
            .credentials
            .key_secret
            .expose_str()
            .map_err(|_| PayoutError::invalid("key secret is not text"))?;
        let http_request = self
            .http
            .post(join(&self.base_url, "/v1/payouts"))
            .basic_auth(&self.credentials.key_id, Some(secret))
            .header(IDEMPOTENCY_HEADER, key.as_str())
            .json(request);
        self.payout_answer(crate::http::send(http_request).await?)
    }

    /// Reads a payout's current state.
    pub async fn fetch_payout(&self, payout_id: &str) -> Result<Payout, PayoutError> {
        if payout_id.is_empty()
            || !payout_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(PayoutError::invalid("not a payout id"));
        }
        let secret = self
            .credentials
            .key_secret
            .expose_str()
            .map_err(|_| PayoutError::invalid("key secret is not text"))?;
        let request = self
            .http
            .get(join(&self.base_url, &format!("/v1/payouts/{payout_id}")))
            .basic_auth(&self.credentials.key_id, Some(secret));
        self.payout_answer(crate::http::send(request).await?)
    }

    fn payout_answer(&self, answer: Answer) -> Result<Payout, PayoutError> {
        if let Some(failure) = crate::http::server_side_failure(&answer) {
            return Err(failure.into());
        }
        if !answer.status.is_success() {
            #[derive(Deserialize)]
            struct Envelope {
                error: ErrorBody,
            }
            #[derive(Deserialize)]
            struct ErrorBody {
                #[serde(default)]
                code: Option<String>,
                #[serde(default)]
                description: Option<String>,
            }
            let error = serde_json::from_slice::<Envelope>(&answer.body)
                .ok()
                .map(|e| e.error);
            return Err(PayoutError::Rejected {
                code: error
                    .as_ref()
                    .and_then(|e| e.code.clone())
                    .unwrap_or_else(|| answer.status.as_u16().to_string()),
                message: excerpt(&error.and_then(|e| e.description).unwrap_or_default()),
            });
        }
        let entity: PayoutEntity =
            serde_json::from_slice(&answer.body).map_err(|_| PayoutError::Protocol {
                reason: "payout entity not understood".to_owned(),
            })?;
        entity
            .into_payout()
            .map_err(|reason| PayoutError::Protocol { reason })
    }
}

#[derive(Debug, Deserialize)]
struct Event {
    event: String,
    payload: EventPayload,
}

#[derive(Debug, Deserialize)]
struct EventPayload {
    payout: Wrapped,
}

#[derive(Debug, Deserialize)]
struct Wrapped {
    entity: PayoutEntity,
}

/// Verifies a RazorpayX payout webhook over its raw bytes, then parses the payout's new state.
pub fn verify_payout_webhook(
    webhook_secret: &Secret,
    headers: &HeaderMap,
    raw_body: &[u8],
) -> Result<PayoutUpdate, WebhookError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .ok_or(WebhookError::Missing(SIGNATURE_HEADER))?
        .to_str()
        .map_err(|_| WebhookError::BadSignature)?;
    let tag = hex::decode(signature.trim()).map_err(|_| WebhookError::BadSignature)?;
    if !hmac_sha256_verify(webhook_secret.expose(), &[raw_body], &tag) {
        return Err(WebhookError::BadSignature);
    }
    let event: Event = serde_json::from_slice(raw_body)
        .map_err(|_| WebhookError::Malformed("not a RazorpayX payout event".to_owned()))?;
    if !event.event.starts_with("payout.") {
        return Err(WebhookError::Malformed(format!(
            "event {} is not about a payout",
            excerpt(&event.event)
        )));
    }
    let entity = event.payload.payout.entity;
    let status = entity.status().map_err(WebhookError::Malformed)?;
    let dedupe_key = match headers.get(EVENT_ID_HEADER).and_then(|v| v.to_str().ok()) {
        Some(id) if !id.trim().is_empty() => format!("razorpayx:{}", id.trim()),
        _ => format!("razorpayx:{}:{}", entity.id, entity.status),
    };
    Ok(PayoutUpdate {
        dedupe_key,
        payout_id: entity.id,
        reference_id: entity.reference_id,
        status,
        utr: entity.utr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../fixtures/razorpayx/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn secret() -> Secret {
        Secret::from("rzpx_webhook_secret_test")
    }

    fn headers(sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, sig.parse().unwrap());
        h
    }

    #[test]
    fn parses_the_payout_entity_sample() {
        let entity: PayoutEntity = serde_json::from_slice(&fixture("payout_queued.json")).unwrap();
        let payout = entity.into_payout().unwrap();
        assert_eq!(payout.status, PayoutStatus::Queued);
        assert_eq!(payout.amount, Paise(1_000_000));
        assert_eq!(
            payout.reference_id.as_deref(),
            Some("Acme Transaction ID 12345")
        );
    }

    #[test]
    fn accepts_the_webhook_fixtures() {
        let body = fixture("payout_processed_webhook.json");
        let sig = String::from_utf8(fixture("payout_processed_webhook.sig")).unwrap();
        let update = verify_payout_webhook(&secret(), &headers(&sig), &body).unwrap();
        assert_eq!(update.status, PayoutStatus::Processed);
        assert_eq!(update.utr.as_deref(), Some("933815233814"));
        assert_eq!(update.dedupe_key, "razorpayx:pout_00000000000001:processed");

        let body = fixture("payout_reversed_webhook.json");
        let sig = String::from_utf8(fixture("payout_reversed_webhook.sig")).unwrap();
        let mut h = headers(&sig);
        h.insert(EVENT_ID_HEADER, "evt_9".parse().unwrap());
        let update = verify_payout_webhook(&secret(), &h, &body).unwrap();
        assert_eq!(
            update.status,
            PayoutStatus::Reversed {
                reason: "Beneficiary bank is offline".into()
            }
        );
        assert!(update.status.is_terminal());
        assert_eq!(update.dedupe_key, "razorpayx:evt_9");
    }

    #[test]
    fn rejects_tampering_wrong_secret_and_missing_header() {
        let body = fixture("payout_processed_webhook.json");
        let sig = String::from_utf8(fixture("payout_processed_webhook.sig")).unwrap();
        let mut tampered = body.clone();
        tampered[50] ^= 1;
        assert_eq!(
            verify_payout_webhook(&secret(), &headers(&sig), &tampered),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_payout_webhook(&Secret::from("other"), &headers(&sig), &body),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_payout_webhook(&secret(), &HeaderMap::new(), &body),
            Err(WebhookError::Missing(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn idempotency_keys() {
        let key = IdempotencyKey::for_payout(PayoutId::new());
        assert_eq!(key.as_str().len(), 36);
        assert!(IdempotencyKey::parse(key.as_str()).is_ok());
        assert!(IdempotencyKey::parse("abc").is_err());
        assert!(IdempotencyKey::parse("has/slash").is_err());
        assert!(IdempotencyKey::parse(&"a".repeat(37)).is_err());
    }
}
