//! `GET /usage`: the signing merchant's payments per IST day, status and gateway over the last
//! 30 days, and its WhatsApp messages.

use axum::Json;
use axum::extract::State;
use chrono::{NaiveDate, TimeDelta};
use lightspeed_domain::calendar::IST;
use lightspeed_projections::transactions::PaymentUsageDay;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::admin::views::WhatsappUsageView;
use crate::auth::SignedRequest;
use crate::error::{ApiError, Problem};
use crate::merchant_reads::USAGE_DAYS;
use crate::state::AppState;

/// Payments initiated on one IST day, routed to one gateway, now in one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentUsageView {
    /// The IST day they were initiated.
    pub day: NaiveDate,
    /// The gateway they were routed (last) to.
    pub gateway_id: Uuid,
    /// Where they stand now (`created`, `pending`, `succeeded`, `failed`, `refunded`).
    pub status: String,
    /// How many.
    pub payments: i64,
    /// Their total amount, in paise.
    pub volume: i64,
}

impl From<PaymentUsageDay> for PaymentUsageView {
    fn from(row: PaymentUsageDay) -> Self {
        Self {
            day: row.day,
            gateway_id: row.gateway_id,
            status: row.status,
            payments: row.payments,
            volume: row.volume_paise,
        }
    }
}

/// The merchant's usage over the last 30 IST days, today included.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageBody {
    /// The first IST day covered.
    pub from: NaiveDate,
    /// The last (today, IST).
    pub to: NaiveDate,
    /// Payments by day, gateway and status, newest day first; days without payments are left
    /// out.
    pub payments: Vec<PaymentUsageView>,
    /// WhatsApp messages by day and template, newest day first.
    pub whatsapp: Vec<WhatsappUsageView>,
}

/// The signing merchant's payments by day, status and gateway, and its WhatsApp messages, over
/// the last 30 IST days.
#[utoipa::path(
    get,
    path = "/usage",
    tag = "payments",
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "Usage", body = UsageBody, example = json!({
            "from": "2026-11-07", "to": "2026-12-06",
            "payments": [
                {"day": "2026-12-06", "gateway_id": "01938a6d-1b2c-7d3e-8f40-5a6b7c8d9e0f", "status": "succeeded", "payments": 41, "volume": 2045900},
                {"day": "2026-12-06", "gateway_id": "01938a6d-1b2c-7d3e-8f40-5a6b7c8d9e0f", "status": "failed", "payments": 3, "volume": 149700}
            ],
            "whatsapp": [{"merchant_id": "01938a6c-0000-7000-8000-00000000000a", "day": "2026-12-06",
                          "template": "low_balance", "queued": 1, "sent": 1, "failed": 0}]
        })),
        (status = 401, description = "Missing, stale or wrong signature, or unknown client key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet (`READ_MODEL_NOT_READY`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn usage(
    State(state): State<AppState>,
    request: SignedRequest,
) -> Result<Json<UsageBody>, ApiError> {
    let merchant_id = request.merchant.merchant.id().0;
    let to = state.ledger.now().with_timezone(&IST).date_naive();
    let from = to - TimeDelta::days(i64::from(USAGE_DAYS) - 1);
    let payments =
        lightspeed_projections::transactions::merchant_usage(state.pool(), merchant_id, from, to)
            .await?;
    let whatsapp =
        lightspeed_projections::whatsapp::usage(state.pool(), merchant_id, USAGE_DAYS, to).await?;
    Ok(Json(UsageBody {
        from,
        to,
        payments: payments.into_iter().map(Into::into).collect(),
        whatsapp: whatsapp.into_iter().map(Into::into).collect(),
    }))
}
