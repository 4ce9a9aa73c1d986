//! The merchant refund API, signed like `/payment/initiate`: ask for (part of) a succeeded
//! payment back, list a payment's refunds, read one by its refund id. The answer is the refund
//! as recorded, `requested` at first; the PSP's answers move it on as they are recorded.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use lightspeed_domain::Paise;
use lightspeed_domain::payment::Payment;
use lightspeed_domain::payment::refunds::Refund;
use lightspeed_services::RefundRequest;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::{SignedRequest, parse_json};
use crate::error::{ApiError, Problem};
use crate::payments::merchant_context;
use crate::state::AppState;

/// A request to refund (part of) a succeeded payment.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Amount to return, in paise: positive, at most what is left to refund.
    pub amount: i64,
    /// Why, for your records (at most 200 characters).
    #[serde(default)]
    pub reason: Option<String>,
    /// Your refund id: 1 to 40 letters, digits, `-`, `_` or `.`; your idempotency key.
    pub refund_id: String,
}

/// A refund as the merchant sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    /// Your refund id.
    pub refund_id: String,
    /// The refunded payment.
    pub transaction_id: String,
    /// Amount in paise.
    pub amount: i64,
    /// Your reason.
    pub reason: String,
    /// `requested`, `submitted`, `succeeded` or `failed`.
    pub status: String,
    /// The PSP's refund id, once it accepted the refund.
    pub psp_refund_id: Option<String>,
    /// Why it failed.
    pub failure_code: Option<String>,
    /// The failure, in words.
    pub failure_reason: Option<String>,
    /// `retain` or `reverse_proportional`: what the refund does to our commission.
    pub commission_treatment: String,
    /// Commission reversed when it succeeded, in paise.
    pub commission_reversed: i64,
    /// When it was requested.
    pub created_at: String,
    /// When its status last changed.
    pub updated_at: String,
}

/// A payment's refunds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefundList {
    /// The payment.
    pub transaction_id: String,
    /// The payment's amount, in paise.
    pub amount: i64,
    /// Refunded (succeeded) so far, in paise.
    pub refunded: i64,
    /// What may still be refunded, in paise (refunds awaiting their outcome hold theirs).
    pub refundable: i64,
    /// Every refund, oldest first.
    pub refunds: Vec<RefundView>,
}

pub(crate) fn refund_view(payment: &Payment, refund: &Refund) -> RefundView {
    RefundView {
        refund_id: refund.merchant_refund_id.clone(),
        transaction_id: payment.id().to_string(),
        amount: refund.amount.0,
        reason: refund.reason.clone(),
        status: refund.status.as_str().into(),
        psp_refund_id: refund.psp_refund_id.clone(),
        failure_code: refund.failure.as_ref().map(|f| f.code.clone()),
        failure_reason: refund.failure.as_ref().map(|f| f.reason.clone()),
        commission_treatment: refund.commission.as_str().into(),
        commission_reversed: refund.commission_reversed.0,
        created_at: refund.requested_at.to_rfc3339(),
        updated_at: refund.updated_at.to_rfc3339(),
    }
}

/// Same payment and same content (whatever the key order or spacing) give the same digest.
fn request_digest(payment: &str, body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| lightspeed_eventstore::hash::canonical_json(&value).ok());
    let mut hasher = Sha256::new();
    hasher.update(payment.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_deref().unwrap_or(body));
    hex::encode(hasher.finalize())
}

/// Asks for (part of) a payment back; the refund holds its amount until it succeeds or fails.
/// Follow it with `GET /refunds/{refund_id}`.
#[utoipa::path(
    post,
    path = "/payment/{id}/refunds",
    tag = "refunds",
    params(("id" = String, Path, description = "The transaction id")),
    request_body = RefundBody,
    security(("merchant_signature" = [])),
    responses(
        (status = 202, description = "Refund requested (or the same request answered again)", body = RefundView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such transaction for this merchant (TRANSACTION_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Payment not succeeded (PAYMENT_NOT_REFUNDABLE), refund id used with another request (REFUND_ID_REUSED), or merchant closed (MERCHANT_CLOSED)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Amount over what is left to refund (REFUND_EXCEEDS_REMAINING), or a field breaks a rule (INVALID_FIELD: zero or negative amount, bad refund id)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn request_refund(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: SignedRequest,
) -> Result<(StatusCode, Json<RefundView>), ApiError> {
    let payment_id = id.parse().map_err(|_| ApiError::TransactionNotFound)?;
    let body: RefundBody = parse_json(&request.body)?;
    let refund = RefundRequest {
        payment_id,
        merchant_refund_id: body.refund_id,
        amount: Paise(body.amount),
        reason: body.reason.unwrap_or_default(),
        request_digest: request_digest(&id, &request.body),
    };
    let merchant = &request.merchant.merchant;
    let context = merchant_context(merchant, &headers);
    let requested = state
        .ledger
        .request_refund(&request.merchant, &refund, &context)
        .await?;
    let recorded = requested
        .payment
        .refund(requested.refund_id)
        .ok_or_else(|| ApiError::Internal("a requested refund is not on its payment".into()))?;
    if requested.created {
        tracing::info!(%payment_id, merchant_id = %merchant.id(), amount = recorded.amount.0, "refund requested");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(refund_view(&requested.payment, recorded)),
    ))
}

/// A payment's refunds, with what is refunded and what is left.
#[utoipa::path(
    get,
    path = "/payment/{id}/refunds",
    tag = "refunds",
    params(("id" = String, Path, description = "The transaction id")),
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The payment's refunds", body = RefundList),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such transaction for this merchant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_refunds(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Json<RefundList>, ApiError> {
    let payment_id = id.parse().map_err(|_| ApiError::TransactionNotFound)?;
    let payment = state
        .ledger
        .payment_of(request.merchant.merchant.id(), payment_id)
        .await?;
    Ok(Json(RefundList {
        transaction_id: payment.id().to_string(),
        amount: payment.amount().0,
        refunded: payment.refunded().0,
        refundable: payment.refundable().0,
        refunds: payment
            .refunds()
            .iter()
            .filter(|refund| !refund.merchant_refund_id.is_empty())
            .map(|refund| refund_view(&payment, refund))
            .collect(),
    }))
}

/// One refund, by your refund id.
#[utoipa::path(
    get,
    path = "/refunds/{refund_id}",
    tag = "refunds",
    params(("refund_id" = String, Path, description = "Your refund id")),
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The refund", body = RefundView),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No refund with this id for this merchant (REFUND_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn refund(
    State(state): State<AppState>,
    Path(refund_id): Path<String>,
    request: SignedRequest,
) -> Result<Json<RefundView>, ApiError> {
    let (payment, id) = state
        .ledger
        .refund_by_merchant_id(request.merchant.merchant.id(), &refund_id)
        .await?
        .ok_or(ApiError::RefundNotFound)?;
    let refund = payment.refund(id).ok_or(ApiError::RefundNotFound)?;
    Ok(Json(refund_view(&payment, refund)))
}
