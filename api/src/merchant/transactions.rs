//! `GET /transactions` (filters, keyset cursor, newest first; a CSV export with
//! `Accept: text/csv`) and `GET /transactions/{id}` with the payment's refunds and webhook
//! deliveries.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use lightspeed_domain::payment::PaymentStatus;
use lightspeed_projections::pagination::PageRequest;
use lightspeed_projections::transactions::{
    MerchantTransactionFilter, StatusFilter, TransactionCursor, TransactionRow,
};
use lightspeed_projections::webhooks::{DeliveryFilter, DeliveryRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{QueryParams, wants_csv};
use crate::admin::views::CursorBody;
use crate::auth::SignedRequest;
use crate::error::{ApiError, Problem};
use crate::payments::{TransactionBody, payment_status_schema, transaction_body};
use crate::refunds::{RefundView, refund_view};
use crate::state::AppState;

/// The query parameters `GET /transactions` knows.
const PARAMS: [&str; 10] = [
    "status",
    "from",
    "to",
    "min_amount",
    "max_amount",
    "order_id",
    "gateway_id",
    "refunded",
    "limit",
    "cursor",
];

/// Largest amount a payment may have, in paise (the initiation rule).
const MAX_AMOUNT: i64 = 1_000_000_000;

/// Filters and cursor of `GET /transactions` (documentation; read by [`QueryParams`]).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransactionsQuery {
    /// `created`, `pending`, `succeeded`, `failed`, `refunded` (in full), or
    /// `partially_refunded` (succeeded, refunded in part).
    #[param(schema_with = status_filter_schema)]
    pub status: Option<String>,
    /// Initiated at or after this RFC 3339 instant.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Initiated before this RFC 3339 instant.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Amount at least this, in paise.
    #[param(minimum = 0, maximum = 1_000_000_000)]
    pub min_amount: Option<i64>,
    /// Amount at most this, in paise.
    #[param(minimum = 0, maximum = 1_000_000_000)]
    pub max_amount: Option<i64>,
    /// Your order id (exact).
    #[param(min_length = 1, max_length = 40, pattern = r"^[A-Za-z0-9._-]+$")]
    pub order_id: Option<String>,
    /// Routed (last) to this gateway.
    pub gateway_id: Option<Uuid>,
    /// With (`true`) or without (`false`) a succeeded refund.
    pub refunded: Option<bool>,
    /// Rows per step, 1 to 200 (default 50); the CSV export ignores it.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// A previous answer's `next_cursor`; the CSV export ignores it.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

fn status_filter_schema() -> utoipa::openapi::Object {
    let mut names: Vec<&str> = PaymentStatus::ALL.map(PaymentStatus::as_str).to_vec();
    names.push(StatusFilter::PARTIALLY_REFUNDED);
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(names))
        .build()
}

/// One of the merchant's payments in a list or export.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransactionItem {
    /// Our id for the payment.
    pub transaction_id: Uuid,
    /// Your order id.
    pub order_id: String,
    /// Amount in paise.
    pub amount: i64,
    /// Currency.
    pub currency: String,
    /// Where the payment stands.
    #[schema(schema_with = payment_status_schema)]
    pub status: String,
    /// Succeeded and refunded in part.
    pub partially_refunded: bool,
    /// Refunded so far, in paise.
    pub refunded: i64,
    /// Refunds that succeeded.
    pub refunds: i32,
    /// Refunds requested and awaiting their outcome.
    pub open_refunds: usize,
    /// The gateway (PSP account) it is routed to.
    pub gateway_id: Uuid,
    /// Gateways tried.
    pub attempts: i32,
    /// The PSP's order id, once created.
    pub psp_order_id: Option<String>,
    /// The PSP's payment id, once paid.
    pub psp_payment_id: Option<String>,
    /// Our commission in paise, once paid.
    pub commission: Option<i64>,
    /// Why it failed.
    pub failure_code: Option<String>,
    /// The failure, in words.
    pub failure_reason: Option<String>,
    /// When it was initiated.
    pub created_at: DateTime<Utc>,
    /// When it succeeded.
    pub succeeded_at: Option<DateTime<Utc>>,
    /// When it (last) failed.
    pub failed_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<TransactionRow> for TransactionItem {
    fn from(row: TransactionRow) -> Self {
        Self {
            transaction_id: row.payment_id,
            partially_refunded: row.refunded_paise > 0 && row.refunded_paise < row.amount_paise,
            order_id: row.merchant_order_id,
            amount: row.amount_paise,
            currency: row.currency,
            status: row.status,
            refunded: row.refunded_paise,
            refunds: row.refunds,
            open_refunds: row.open_refunds.len(),
            gateway_id: row.gateway_id,
            attempts: row.attempts,
            psp_order_id: row.psp_order_id,
            psp_payment_id: row.psp_payment_id,
            commission: row.commission_paise,
            failure_code: row.failure_code,
            failure_reason: row.failure_description,
            created_at: row.initiated_at,
            succeeded_at: row.succeeded_at,
            failed_at: row.failed_at,
            updated_at: row.updated_at,
        }
    }
}

fn invalid(field: &str, detail: &str) -> ApiError {
    ApiError::InvalidField {
        field: field.to_owned(),
        detail: detail.to_owned(),
    }
}

/// An order id as initiation accepts it: 1 to 40 letters, digits, `-`, `_` or `.`.
fn is_order_id(id: &str) -> bool {
    (1..=40).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The filter the query asks for, refused field by field.
fn filter_of(
    params: &QueryParams,
    merchant_id: Uuid,
) -> Result<MerchantTransactionFilter, ApiError> {
    let status = params
        .text("status")
        .map(|name| {
            StatusFilter::parse(name).ok_or_else(|| {
                invalid(
                    "status",
                    "must be created, pending, succeeded, failed, refunded or partially_refunded",
                )
            })
        })
        .transpose()?;
    let amount = |name: &str| -> Result<Option<i64>, ApiError> {
        let what = "an amount in paise from 0 to 1000000000";
        let value = params.parsed::<i64>(name, what)?;
        if value.is_some_and(|v| !(0..=MAX_AMOUNT).contains(&v)) {
            return Err(invalid(name, &format!("must be {what}")));
        }
        Ok(value)
    };
    let (min_amount_paise, max_amount_paise) = (amount("min_amount")?, amount("max_amount")?);
    if let (Some(min), Some(max)) = (min_amount_paise, max_amount_paise)
        && min > max
    {
        return Err(invalid("max_amount", "must not be below min_amount"));
    }
    let merchant_order_id = params.text("order_id").map(str::to_owned);
    if merchant_order_id
        .as_deref()
        .is_some_and(|id| !is_order_id(id))
    {
        return Err(invalid(
            "order_id",
            "must be 1 to 40 letters, digits, -, _ or .",
        ));
    }
    Ok(MerchantTransactionFilter {
        merchant_id,
        status,
        from: params.instant("from")?,
        to: params.instant("to")?,
        min_amount_paise,
        max_amount_paise,
        merchant_order_id,
        gateway_id: params.parsed("gateway_id", "a gateway id (UUID)")?,
        refunded: params.parsed("refunded", "true or false")?,
    })
}

/// The signing merchant's payments, newest first, by cursor; with `Accept: text/csv`, every
/// matching payment as a CSV download, streamed.
#[utoipa::path(
    get,
    path = "/transactions",
    tag = "payments",
    params(TransactionsQuery),
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "One step of payments (pass `next_cursor` back as `cursor` for the next), or with `Accept: text/csv` every matching payment as CSV (text cells starting with = + - @ are prefixed with `'`)", content(
            (CursorBody<TransactionItem> = "application/json", example = json!({
                "items": [{
                    "transaction_id": "01938a6e-8f1c-7c4e-9a51-2f0d7c1e4b11", "order_id": "ORD-1001",
                    "amount": 49900, "currency": "INR", "status": "succeeded", "partially_refunded": true,
                    "refunded": 10000, "refunds": 1, "open_refunds": 0,
                    "gateway_id": "01938a6d-1b2c-7d3e-8f40-5a6b7c8d9e0f", "attempts": 1,
                    "psp_order_id": "order_NXe3kz", "psp_payment_id": "pay_NXe4Qa", "commission": 1747,
                    "failure_code": null, "failure_reason": null,
                    "created_at": "2026-11-20T10:15:00Z", "succeeded_at": "2026-11-20T10:16:02Z",
                    "failed_at": null, "updated_at": "2026-11-21T09:00:00Z"
                }],
                "next_cursor": "1795774500000000_01938a6e8f1c7c4e9a512f0d7c1e4b11"
            })),
            (String = "text/csv", example = "transaction_id,order_id,amount_paise,currency,status,partially_refunded,refunded_paise,refunds,open_refunds,gateway_id,attempts,psp_order_id,psp_payment_id,commission_paise,failure_code,failure_reason,created_at,succeeded_at,failed_at\n01938a6e-8f1c-7c4e-9a51-2f0d7c1e4b11,ORD-1001,49900,INR,succeeded,true,10000,1,0,01938a6d-1b2c-7d3e-8f40-5a6b7c8d9e0f,1,order_NXe3kz,pay_NXe4Qa,1747,,,2026-11-20T10:15:00+00:00,2026-11-20T10:16:02+00:00,\n"),
        )),
        (status = 401, description = "Missing, stale or wrong signature, or unknown client key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter, `limit` or `cursor` is invalid, or a parameter is unknown (`INVALID_FIELD`; `field` names it)", body = Problem, content_type = "application/problem+json", example = json!({
            "type": "about:blank", "title": "Unprocessable Entity", "status": 422, "code": "INVALID_FIELD",
            "detail": "status: must be created, pending, succeeded, failed, refunded or partially_refunded", "field": "status"
        })),
        (status = 503, description = "The read model is not built yet (`READ_MODEL_NOT_READY`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    request: SignedRequest,
) -> Result<Response, ApiError> {
    let params = QueryParams::of(&uri, &PARAMS)?;
    let filter = filter_of(&params, request.merchant.merchant.id().0)?;
    let limit = params.limit()?;
    let cursor = params.cursor::<TransactionCursor>()?;
    if wants_csv(&headers) {
        return export(&state, filter).await;
    }
    let page =
        lightspeed_projections::transactions::merchant_search(state.pool(), &filter, limit, cursor)
            .await?;
    Ok(Json(CursorBody::<TransactionItem>::of(page)).into_response())
}

/// The CSV export: a first read decides the status (a missing read model is a problem
/// document, not a broken download), then every row streams as the client reads.
async fn export(state: &AppState, filter: MerchantTransactionFilter) -> Result<Response, ApiError> {
    lightspeed_projections::transactions::merchant_search(state.pool(), &filter, 1, None).await?;
    let rows = lightspeed_projections::transactions::merchant_export(state.pool().clone(), filter);
    let body = Body::from_stream(super::transactions_csv::body(rows));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"transactions.csv\""),
    );
    Ok(response)
}

/// One merchant webhook about the payment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryItem {
    /// The delivery.
    pub delivery_id: Uuid,
    /// `payment.created`, `payment.succeeded`, …
    pub event_type: String,
    /// Where it is sent.
    pub endpoint_url: String,
    /// `pending`, `delivered` or `given_up`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// The last attempt's HTTP status.
    pub last_status_code: Option<i32>,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was given up.
    pub given_up_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for DeliveryItem {
    fn from(row: DeliveryRow) -> Self {
        Self {
            delivery_id: row.delivery_id,
            event_type: row.event_type,
            endpoint_url: row.endpoint_url,
            status: row.status,
            attempts: row.attempts,
            last_status_code: row.last_status_code,
            last_error: row.last_error,
            queued_at: row.queued_at,
            next_attempt_at: row.next_attempt_at,
            delivered_at: row.delivered_at,
            given_up_at: row.given_up_at,
        }
    }
}

/// One payment with its refunds and its webhook deliveries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransactionDetail {
    /// The payment, as `GET /transaction/{id}` answers it.
    #[serde(flatten)]
    pub transaction: TransactionBody,
    /// What may still be refunded, in paise.
    pub refundable: i64,
    /// Its refunds, oldest first.
    pub refunds: Vec<RefundView>,
    /// Webhooks about it, newest first (at most 200).
    pub webhook_deliveries: Vec<DeliveryItem>,
}

/// One of the signing merchant's payments, read from the log, with its refunds and the
/// webhooks sent about it.
#[utoipa::path(
    get,
    path = "/transactions/{id}",
    tag = "payments",
    params(("id" = String, Path, description = "The transaction id")),
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The payment", body = TransactionDetail, example = json!({
            "transaction_id": "01938a6e-8f1c-7c4e-9a51-2f0d7c1e4b11", "order_id": "ORD-1001", "amount": 49900,
            "currency": "INR", "status": "succeeded", "gateway_id": "01938a6d-1b2c-7d3e-8f40-5a6b7c8d9e0f",
            "psp_order_id": "order_NXe3kz", "psp_payment_id": "pay_NXe4Qa", "commission": 1747,
            "failure_code": null, "failure_reason": null, "refunded": 10000,
            "created_at": "2026-11-20T10:15:00+00:00", "checkout_url": "https://pay.example/checkout/01938a6e-8f1c-7c4e-9a51-2f0d7c1e4b11",
            "refundable": 39900,
            "refunds": [{"refund_id": "RF-1", "transaction_id": "01938a6e-8f1c-7c4e-9a51-2f0d7c1e4b11", "amount": 10000,
                         "reason": "size", "status": "succeeded", "psp_refund_id": "rfnd_1", "failure_code": null,
                         "failure_reason": null, "commission_treatment": "retain", "commission_reversed": 0,
                         "created_at": "2026-11-21T08:00:00+00:00", "updated_at": "2026-11-21T09:00:00+00:00"}],
            "webhook_deliveries": [{"delivery_id": "01938a70-0000-7000-8000-000000000001", "event_type": "payment.succeeded",
                                    "endpoint_url": "https://shop.example/hooks", "status": "delivered", "attempts": 1,
                                    "last_status_code": 200, "last_error": null, "queued_at": "2026-11-20T10:16:02Z",
                                    "next_attempt_at": null, "delivered_at": "2026-11-20T10:16:03Z", "given_up_at": null}]
        })),
        (status = 401, description = "Missing, stale or wrong signature, or unknown client key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such transaction for this merchant (`TRANSACTION_NOT_FOUND`), another merchant's included", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The deliveries' read model is not built yet (`READ_MODEL_NOT_READY`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Json<TransactionDetail>, ApiError> {
    let payment_id = id.parse().map_err(|_| ApiError::TransactionNotFound)?;
    let merchant_id = request.merchant.merchant.id();
    let payment = state.ledger.payment_of(merchant_id, payment_id).await?;
    let filter = DeliveryFilter {
        merchant_id: Some(merchant_id.0),
        payment_id: Some(payment_id.0),
        status: None,
    };
    let page = PageRequest {
        page: 1,
        per_page: lightspeed_projections::pagination::MAX_PER_PAGE,
    };
    let deliveries =
        lightspeed_projections::webhooks::deliveries(state.pool(), &filter, page).await?;
    Ok(Json(TransactionDetail {
        transaction: transaction_body(&state, &payment),
        refundable: payment.refundable().0,
        refunds: payment
            .refunds()
            .iter()
            .filter(|refund| !refund.merchant_refund_id.is_empty())
            .map(|refund| refund_view(&payment, refund))
            .collect(),
        webhook_deliveries: deliveries.items.into_iter().map(Into::into).collect(),
    }))
}
