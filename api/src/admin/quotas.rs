//! A merchant's quota caps: daily and monthly caps on payment count and volume, what it used of
//! them, and their replacement by an admin (recorded in the log as `QuotaCapsSet` with the
//! admin as actor, so it is in the audit log).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::SecondsFormat;
use lightspeed_domain::quota::{QuotaCaps, QuotaKind};
use lightspeed_domain::{MerchantId, Paise};
use lightspeed_services::QuotaStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{JsonBody, admin_error, parse_id};
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// A merchant's caps; a missing or `null` field is no cap. Days and months are IST calendar
/// days and months. Unknown fields are refused (`422`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "daily_count": 500,
    "daily_volume": 5_000_000,
    "monthly_count": 10_000,
    "monthly_volume": null
}))]
pub struct QuotaCapsBody {
    /// Payments a day, 1 to 1 000 000 000.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000_000, example = 500)]
    pub daily_count: Option<i64>,
    /// Paise a day, 1 to 10^15 (₹50,000.00 is `5000000`).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64, example = 5_000_000)]
    pub daily_volume: Option<i64>,
    /// Payments a calendar month, 1 to 1 000 000 000.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000_000, example = 10_000)]
    pub monthly_count: Option<i64>,
    /// Paise a calendar month, 1 to 10^15.
    #[serde(default)]
    #[schema(
        minimum = 1,
        maximum = 1_000_000_000_000_000_i64,
        example = 100_000_000
    )]
    pub monthly_volume: Option<i64>,
}

impl From<QuotaCaps> for QuotaCapsBody {
    fn from(caps: QuotaCaps) -> Self {
        Self {
            daily_count: caps.daily_count,
            daily_volume: caps.daily_volume.map(|p| p.0),
            monthly_count: caps.monthly_count,
            monthly_volume: caps.monthly_volume.map(|p| p.0),
        }
    }
}

impl From<&QuotaCapsBody> for QuotaCaps {
    fn from(body: &QuotaCapsBody) -> Self {
        Self {
            daily_count: body.daily_count,
            daily_volume: body.daily_volume.map(Paise),
            monthly_count: body.monthly_count,
            monthly_volume: body.monthly_volume.map(Paise),
        }
    }
}

/// One cap and its use in the current period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuotaUseBody {
    /// `daily_count`, `daily_volume`, `monthly_count` or `monthly_volume`.
    #[schema(example = "daily_count")]
    pub quota: String,
    /// The cap (payments, or paise), or `null` when none is set.
    #[schema(example = 500)]
    pub limit: Option<i64>,
    /// Used in the current period (payments, or paise); initiations admitted count, whatever
    /// became of their payments.
    #[schema(example = 412)]
    pub used: i64,
    /// When the current period resets: 00:00 IST the next day, or on the first of the next
    /// month.
    #[schema(example = "2026-12-07T18:30:00Z")]
    pub resets_at: String,
}

/// A merchant's caps and what it used of them now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "merchant_id": "019aa5c4-6f1e-7c3a-9a51-3f0d2b8e4c11",
    "caps": {"daily_count": 500, "daily_volume": 5_000_000, "monthly_count": 10_000, "monthly_volume": null},
    "set_at": "2026-12-01T04:12:09Z",
    "usage": [
        {"quota": "daily_count", "limit": 500, "used": 412, "resets_at": "2026-12-07T18:30:00Z"},
        {"quota": "daily_volume", "limit": 5_000_000, "used": 3_950_000, "resets_at": "2026-12-07T18:30:00Z"},
        {"quota": "monthly_count", "limit": 10_000, "used": 2_630, "resets_at": "2026-12-31T18:30:00Z"},
        {"quota": "monthly_volume", "limit": null, "used": 24_410_000, "resets_at": "2026-12-31T18:30:00Z"}
    ]
}))]
pub struct QuotaBody {
    /// The merchant.
    pub merchant_id: String,
    /// The caps in force.
    pub caps: QuotaCapsBody,
    /// When the caps were last changed, if ever.
    pub set_at: Option<String>,
    /// Each cap's use in its current period, daily ones first.
    pub usage: Vec<QuotaUseBody>,
}

fn quota_body(merchant_id: MerchantId, status: QuotaStatus) -> QuotaBody {
    let instant = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
    QuotaBody {
        merchant_id: merchant_id.to_string(),
        caps: status.caps.into(),
        set_at: status.set_at.map(instant),
        usage: status
            .usage
            .into_iter()
            .map(|usage| QuotaUseBody {
                quota: QuotaKind::as_str(usage.quota).to_owned(),
                limit: usage.limit,
                used: usage.used,
                resets_at: instant(usage.resets_at),
            })
            .collect(),
    }
}

/// A merchant's quota caps and what it used of each in the current IST day and month, read
/// from the log.
#[utoipa::path(
    get,
    path = "/admin/merchants/{id}/quota",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The caps and their use", body = QuotaBody),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<QuotaBody>, ApiError> {
    let merchant_id = parse_id(&id, ApiError::MerchantNotFound)?;
    let status = state
        .ledger
        .quota_status(merchant_id)
        .await
        .map_err(admin_error)?;
    Ok(Json(quota_body(merchant_id, status)))
}

/// Replaces a merchant's quota caps; a missing or `null` field lifts that cap. Initiations
/// that would pass a cap are refused with `429 QUOTA_EXCEEDED` until the period resets.
/// Setting the caps it already has records nothing.
#[utoipa::path(
    put,
    path = "/admin/merchants/{id}/quota",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id")),
    request_body = QuotaCapsBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The caps now in force and their use", body = QuotaBody),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A cap is out of range; `field` names it and nothing was changed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<QuotaCapsBody>,
) -> Result<Json<QuotaBody>, ApiError> {
    let merchant_id = parse_id(&id, ApiError::MerchantNotFound)?;
    let caps = QuotaCaps::from(&body);
    let status = state
        .ledger
        .set_quota(merchant_id, caps, &admin.context(&headers))
        .await
        .map_err(admin_error)?;
    tracing::info!(%merchant_id, admin = %admin.email, "merchant quota caps set");
    Ok(Json(quota_body(merchant_id, status)))
}
