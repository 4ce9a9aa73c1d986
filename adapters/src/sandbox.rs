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
//! - `POST /v1/orders/{id}/refunds` with a [`CreateRefund`] body: `201` and a [`RefundView`]
//!   (`pending`) for a new refund of the order's payment. The refund's `reference` is its
//!   idempotency key: the same key, account, order, amount and reason again answer `200` and the
//!   refund as it stands; another body under the same key is `409 refund_exists`. Refused: an
//!   order not paid (`409 order_not_paid`), less than [`MIN_REFUND`] (`422 invalid_amount`), more
//!   than the amount paid minus the refunds not failed (`422 amount_exceeds_refundable`); an
//!   unknown order, or another account's, is `404`.
//! - `GET /v1/refunds/{id}`: the [`RefundView`], or `404`; the id is derived from the reference
//!   ([`refund_id_for`]), so a caller that lost the answer can still ask.
//! - `POST /v1/refunds/{id}/settle` with a [`SettleRefund`] body (a test control standing for the
//!   bank): moves a `pending` refund to `processed` or `failed` and sends its webhook; settling
//!   it again the same way answers it unchanged, the other way is `409 refund_settled`. A failed
//!   refund gives its amount back to what may be refunded. The sandbox can also settle refunds
//!   as `processed` by itself some time after their creation (its `refund_auto_settle`
//!   setting, off by default).
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
//!
//! A settled refund owes a [`RefundEvent`] (`refund.processed` or `refund.failed`) to its
//! order's `callback_url`, signed and retried the same way, with a `webhook-id` of its own
//! (one per refund, the same across retries).

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

/// Prefix of sandbox refund ids.
pub const REFUND_ID_PREFIX: &str = "sbr_";
/// Smallest refund the sandbox takes (as Razorpay: INR 1.00).
pub const MIN_REFUND: Paise = Paise(100);
/// Event type of a refund that reached the payer.
pub const EVENT_REFUND_PROCESSED: &str = "refund.processed";
/// Event type of a refund that failed.
pub const EVENT_REFUND_FAILED: &str = "refund.failed";

/// The sandbox refund id of a refund reference: refunds are keyed by reference, so the id is
/// derived.
pub fn refund_id_for(reference: &str) -> String {
    format!("{REFUND_ID_PREFIX}{reference}")
}

/// `POST /v1/orders/{id}/refunds` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// The caller's refund reference, its idempotency key (1–64 chars of `[A-Za-z0-9_-]`).
    pub reference: String,
    /// Amount to return, in paise (at least [`MIN_REFUND`]).
    pub amount: Paise,
    /// Why, as the merchant put it.
    pub reason: String,
}

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Accepted; the bank has not answered yet.
    Pending,
    /// The money went back to the payer.
    Processed,
    /// The refund failed; its amount may be refunded again.
    Failed,
}

/// A refund as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundView {
    /// `sbr_…`.
    pub id: String,
    /// The caller's refund reference.
    pub reference: String,
    /// The order refunded (`sbo_…`).
    pub order_id: String,
    /// The order's reference.
    pub order_reference: String,
    /// The payment refunded (`sbp_…`).
    pub payment_id: String,
    /// Amount in paise.
    pub amount: Paise,
    /// Currency code.
    pub currency: String,
    /// Where it stands.
    pub status: RefundStatus,
    /// Set when the refund failed.
    pub failure: Option<FailureInfo>,
}

/// `POST /v1/refunds/{id}/settle` body: how the bank answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleRefund {
    /// `processed` or `failed`.
    pub status: RefundStatus,
}

/// The webhook body of a settled refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundEvent {
    /// [`EVENT_REFUND_PROCESSED`] or [`EVENT_REFUND_FAILED`].
    #[serde(rename = "type")]
    pub kind: String,
    /// `sbr_…`.
    pub refund_id: String,
    /// The caller's refund reference.
    pub reference: String,
    /// The order refunded (`sbo_…`).
    pub order_id: String,
    /// The order's reference.
    pub order_reference: String,
    /// The payment refunded (`sbp_…`).
    pub payment_id: String,
    /// Amount in paise.
    pub amount: Paise,
    /// Currency code.
    pub currency: String,
    /// Set for `refund.failed`.
    pub failure: Option<FailureInfo>,
}
