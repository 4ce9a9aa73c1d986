//! Refunds for ops: every refund (`GET /admin/refunds`, from the refunds read model), one refund,
//! and one payment with its refunds as its own stream records them.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use lightspeed_domain::PaymentId;
use lightspeed_domain::payment::Payment;
use lightspeed_domain::payment::refunds::{Refund, RefundStatus};
use lightspeed_projections::ProjectionError;
use lightspeed_projections::refunds::{RefundRow, RefundSearch};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::reads::instant;
use super::views::{AdminRefundView, CursorBody, TransactionView};
use super::{AdminQuery, parse_id};
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::schema_rules;
use crate::state::AppState;

/// Rows per cursor step unless asked otherwise.
const DEFAULT_LIMIT: u32 = 50;

/// A refund's status, as the refunds read model and the admin API name it.
pub fn refund_status_schema() -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            [
                RefundStatus::Requested,
                RefundStatus::Submitted,
                RefundStatus::Succeeded,
                RefundStatus::Failed,
            ]
            .map(RefundStatus::as_str),
        ))
        .build()
}

/// Filters and cursor of the refunds.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefundQuery {
    /// Only this merchant's.
    pub merchant_id: Option<Uuid>,
    /// Only this payment's.
    pub payment_id: Option<Uuid>,
    /// Only this status.
    #[param(schema_with = refund_status_schema)]
    pub status: Option<String>,
    /// Requested from this instant (RFC 3339) or IST day (`YYYY-MM-DD`).
    #[param(schema_with = schema_rules::instant_or_day)]
    pub from: Option<String>,
    /// Requested before this instant, or up to this IST day inclusive.
    #[param(schema_with = schema_rules::instant_or_day)]
    pub to: Option<String>,
    /// Only refunds of at least this amount, in paise.
    #[param(minimum = 0)]
    pub min_amount_paise: Option<i64>,
    /// Only refunds of at most this amount, in paise.
    #[param(minimum = 0)]
    pub max_amount_paise: Option<i64>,
    /// Rows per step, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// A previous step's `next_cursor`.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// Every refund, newest request first, by cursor.
#[utoipa::path(
    get,
    path = "/admin/refunds",
    operation_id = "admin_refunds",
    tag = "admin-reads",
    params(RefundQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "One step of refunds", body = CursorBody<AdminRefundView>,
         example = json!({"items": [refund_example()], "next_cursor": "1796450400000000_0193a7c1-52f0-7c3e-9a51-3d1f0b6e2a10_0193a7c9-0d44-7b1a-8c2e-6f5a4b3c2d1e"})),
        (status = 400, description = "A query parameter is invalid (`INVALID_QUERY`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    AdminQuery(query): AdminQuery<RefundQuery>,
) -> Result<Json<CursorBody<AdminRefundView>>, ApiError> {
    let search = RefundSearch {
        merchant_id: query.merchant_id,
        payment_id: query.payment_id,
        status: query.status,
        from: instant("from", query.from.as_deref(), false)?,
        to: instant("to", query.to.as_deref(), true)?,
        min_amount_paise: query.min_amount_paise,
        max_amount_paise: query.max_amount_paise,
        limit: query.limit.unwrap_or(DEFAULT_LIMIT),
    };
    let page =
        lightspeed_projections::refunds::search(state.pool(), &search, query.cursor.as_deref())
            .await?;
    Ok(Json(CursorBody::of(page)))
}

/// One refund: by our refund id, or by the PSP's refund id for a refund it reported itself.
#[utoipa::path(
    get,
    path = "/admin/refunds/{refund_id}",
    operation_id = "admin_refund",
    tag = "admin-reads",
    params(("refund_id" = String, Path, description = "Our refund id, or the PSP's refund id of a refund the PSP reported without our request")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The refund", body = AdminRefundView, example = json!(refund_example())),
        (status = 404, description = "No such refund (`REFUND_NOT_FOUND`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(refund_id): Path<String>,
) -> Result<Json<AdminRefundView>, ApiError> {
    let row = lightspeed_projections::refunds::get(state.pool(), &refund_id)
        .await?
        .ok_or(ApiError::RefundNotFound)?;
    Ok(Json(row.into()))
}

/// One payment for ops: its read-model row, and its refunds and refunded amount as its own
/// stream records them (so a refund just recorded shows before the read models catch up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdminPaymentView {
    /// The payment.
    pub payment_id: Uuid,
    /// The merchant.
    pub merchant_id: Uuid,
    /// Amount.
    pub amount_paise: i64,
    /// Where the payment stands, in the merchant API's words.
    #[schema(schema_with = crate::payments::payment_status_schema)]
    pub status: String,
    /// Commission decided at success.
    pub commission_paise: Option<i64>,
    /// Refunded (refunds that succeeded).
    pub refunded_paise: i64,
    /// Held by refunds awaiting their outcome.
    pub refunds_in_flight_paise: i64,
    /// What may still be refunded.
    pub refundable_paise: i64,
    /// Commission reversed by its refunds.
    pub commission_reversed_paise: i64,
    /// Every refund, in the order recorded.
    pub refunds: Vec<AdminRefundView>,
    /// The transactions read model's row; absent until the read model has caught up (or is
    /// built).
    pub transaction: Option<TransactionView>,
}

/// One payment with its refunds and what is refunded, from its stream, beside its read-model row.
#[utoipa::path(
    get,
    path = "/admin/transactions/{payment_id}",
    operation_id = "admin_transaction",
    tag = "admin-reads",
    params(("payment_id" = String, Path, description = "The payment (transaction) id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The payment and its refunds", body = AdminPaymentView, example = json!(payment_example())),
        (status = 404, description = "No such payment (`TRANSACTION_NOT_FOUND`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn payment(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(payment_id): Path<String>,
) -> Result<Json<AdminPaymentView>, ApiError> {
    let payment_id: PaymentId = parse_id(&payment_id, ApiError::TransactionNotFound)?;
    let payment = state
        .ledger
        .payment(payment_id)
        .await?
        .ok_or(ApiError::TransactionNotFound)?;
    // The payment's own stream answers; the read model's row is shown once it is there.
    let transaction =
        match lightspeed_projections::transactions::get(state.pool(), payment_id.0).await {
            Err(ProjectionError::NotBuilt(_)) => None,
            row => row?.map(Into::into),
        };
    Ok(Json(payment_view(&payment, transaction)))
}

fn payment_view(payment: &Payment, transaction: Option<TransactionView>) -> AdminPaymentView {
    AdminPaymentView {
        payment_id: payment.id().0,
        merchant_id: payment.merchant_id().0,
        amount_paise: payment.amount().0,
        status: payment.status().as_str().into(),
        commission_paise: payment.commission().map(|c| c.0),
        refunded_paise: payment.refunded().0,
        refunds_in_flight_paise: payment.refunds_in_flight().0,
        refundable_paise: payment.refundable().0,
        commission_reversed_paise: payment.commission_reversed().0,
        refunds: payment
            .refunds()
            .iter()
            .map(|refund| refund_row(payment, refund).into())
            .collect(),
        transaction,
    }
}

/// A refund of the payment's stream in the read model's shape: keyed as the read model keys
/// it (the PSP's refund id for one the PSP reported without our request).
fn refund_row(payment: &Payment, refund: &Refund) -> RefundRow {
    let reported = refund.id.0.is_nil();
    RefundRow {
        refund_key: match (&refund.psp_refund_id, reported) {
            (Some(psp_refund_id), true) => psp_refund_id.clone(),
            _ => refund.id.to_string(),
        },
        refund_id: refund.id.0,
        merchant_refund_id: (!reported).then(|| refund.merchant_refund_id.clone()),
        payment_id: payment.id().0,
        merchant_id: payment.merchant_id().0,
        gateway_id: payment.gateway_id().0,
        amount_paise: refund.amount.0,
        status: refund.status.as_str().into(),
        psp_refund_id: refund.psp_refund_id.clone(),
        failure_code: refund.failure.as_ref().map(|f| f.code.clone()),
        failure_reason: refund.failure.as_ref().map(|f| f.reason.clone()),
        commission_treatment: refund.commission.as_str().into(),
        commission_reversed_paise: refund.commission_reversed.0,
        reason: refund.reason.clone(),
        requested_at: refund.requested_at,
        updated_at: refund.updated_at,
    }
}

/// An example refund for the document.
fn refund_example() -> serde_json::Value {
    let at: DateTime<Utc> =
        DateTime::from_timestamp_micros(1_796_450_400_000_000).unwrap_or_default();
    json!({
        "refund_key": "0193a7c9-0d44-7b1a-8c2e-6f5a4b3c2d1e",
        "refund_id": "0193a7c9-0d44-7b1a-8c2e-6f5a4b3c2d1e",
        "merchant_refund_id": "RF-1001",
        "payment_id": "0193a7c1-52f0-7c3e-9a51-3d1f0b6e2a10",
        "merchant_id": "0193a6f0-1c2d-7e3f-8a4b-5c6d7e8f9a0b",
        "gateway_id": "0193a6f2-aa10-7b20-9c30-d4e5f6a7b8c9",
        "amount_paise": 3_334,
        "status": "succeeded",
        "psp_refund_id": "rfnd_Nf3kq9ZsP1",
        "failure_code": null,
        "failure_reason": null,
        "commission_treatment": "reverse_proportional",
        "commission_reversed_paise": 83,
        "reason": "damaged in transit",
        "requested_at": at,
        "updated_at": at,
    })
}

/// An example payment with one partial refund, for the document.
fn payment_example() -> serde_json::Value {
    json!({
        "payment_id": "0193a7c1-52f0-7c3e-9a51-3d1f0b6e2a10",
        "merchant_id": "0193a6f0-1c2d-7e3f-8a4b-5c6d7e8f9a0b",
        "amount_paise": 10_001,
        "status": "succeeded",
        "commission_paise": 250,
        "refunded_paise": 3_334,
        "refunds_in_flight_paise": 0,
        "refundable_paise": 6_667,
        "commission_reversed_paise": 83,
        "refunds": [refund_example()],
        "transaction": null,
    })
}
