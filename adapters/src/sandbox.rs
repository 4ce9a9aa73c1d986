//! The sandbox PSP's wire format, shared by its server (the `lightspeed-sandbox` crate, mounted
//! by the API under `/sandbox`) and its adapter ([`crate::psp`]'s sandbox one).
//!
//! The sandbox speaks a small JSON API, shows a checkout page with Pay / Fail buttons and sends
//! signed webhooks, so the whole payment flow runs without any outside account. Like any PSP it
//! is called over HTTP; it knows nothing of the adapters.
//!
//! # API
//!
//! Every API call carries `x-sandbox-key: whsec_…`. The sandbox keeps no accounts: the key is
//! the Standard Webhooks secret it signs that order's webhooks with, and an order is visible only
//! with the key that created it.
//!
//! - `POST /v1/orders` with a [`CreateOrder`] body: `201` and an [`OrderView`] for a new order,
//!   `200` and the existing order when the reference was seen before with the same key and
//!   amount (idempotent), `409` otherwise.
//! - `GET /v1/orders/{id}`: the [`OrderView`], or `404`.
//! - `GET /checkout/{id}`: the payer's page; its buttons post to `/checkout/{id}/pay` and
//!   `/checkout/{id}/fail`.
//!
//! Errors are `{"error":{"code":…,"message":…}}`.
//!
//! # Webhooks
//!
//! When the payer clicks, the sandbox records the outcome (so `GET /v1/orders/{id}` reports it
//! even if delivery fails) and the webhook it owes, then POSTs a [`SandboxEvent`] to the order's
//! `callback_url`, signed with Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`; see [`crate::merchant_webhook`]) under the order's key. The `webhook-id`
//! and the body stay the same across retries. It makes the first attempts before redirecting
//! the payer to `return_url?status=succeeded|failed&reference=…`, and the rest, a bounded number
//! in all, afterwards; each attempt is recorded in the order's `deliveries`.

use lightspeed_domain::Paise;
use serde::{Deserialize, Serialize};

/// Header carrying the account key (a `whsec_` secret).
pub const KEY_HEADER: &str = "x-sandbox-key";
/// Prefix of sandbox order ids.
pub const ORDER_ID_PREFIX: &str = "sbo_";
/// Longest reference the sandbox accepts.
pub const MAX_REFERENCE_LEN: usize = 64;

/// The sandbox order id of a reference: orders are keyed by reference, so the id is derived.
pub fn order_id_for(reference: &str) -> String {
    format!("{ORDER_ID_PREFIX}{reference}")
}

/// `POST /v1/orders` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// The caller's reference, unique per payment (1–64 chars of `[A-Za-z0-9_-]`).
    pub reference: String,
    /// Amount in paise (positive).
    pub amount: Paise,
    /// Currency code.
    pub currency: String,
    /// Shown on the checkout page.
    pub description: String,
    /// Where webhooks go.
    pub callback_url: String,
    /// Where the payer returns.
    pub return_url: String,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Waiting for the payer.
    Created,
    /// The payer clicked Pay.
    Paid,
    /// The payer clicked Fail.
    Failed,
}

/// Why a sandbox payment failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureInfo {
    /// Machine code.
    pub code: String,
    /// Explanation.
    pub reason: String,
}

/// One webhook delivery attempt, as recorded by the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// HTTP status of the answer, if one came.
    pub status: Option<u16>,
    /// Transport error, if no answer came.
    pub error: Option<String>,
}

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// `sbo_…`.
    pub id: String,
    /// The caller's reference.
    pub reference: String,
    /// Amount in paise.
    pub amount: Paise,
    /// Currency code.
    pub currency: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// The payer's page.
    pub checkout_url: String,
    /// `sbp_…`, once the payer clicked.
    pub payment_id: Option<String>,
    /// Set when the payment failed.
    pub failure: Option<FailureInfo>,
    /// Webhook deliveries so far.
    pub deliveries: Vec<DeliveryAttempt>,
}

/// The webhook body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxEvent {
    /// `payment.succeeded` or `payment.failed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `sbo_…`.
    pub order_id: String,
    /// The caller's reference.
    pub reference: String,
    /// `sbp_…`.
    pub payment_id: String,
    /// Amount in paise.
    pub amount: Paise,
    /// Currency code.
    pub currency: String,
    /// Set for `payment.failed`.
    pub failure: Option<FailureInfo>,
}

/// Event type of a successful payment.
pub const EVENT_SUCCEEDED: &str = "payment.succeeded";
/// Event type of a failed payment.
pub const EVENT_FAILED: &str = "payment.failed";
