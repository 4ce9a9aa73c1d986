//! Commission collection: an on-demand payout run, manual settlements and pending-payment
//! reconciliation.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use lightspeed_domain::{MerchantId, Paise};
use lightspeed_services::{PayoutRunReport, ist};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{JsonBody, admin_error};
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::state::{AppState, ReconciliationRun};

/// Which run to make.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRunRequest {
    /// The run's label (1 to 64 characters); default today's IST date (`yyyy-mm-dd`), the label
    /// of the daily run, so running it again the same day requests nothing new.
    #[schema(min_length = 1, max_length = 64, pattern = r"\S")]
    pub run: Option<String>,
}

/// One payout requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RequestedPayoutView {
    /// The merchant.
    pub merchant_id: Uuid,
    /// The payout (also its RazorpayX `reference_id` and idempotency key).
    pub payout_id: Uuid,
    /// Amount in paise.
    pub amount_paise: i64,
}

/// A merchant the run could not handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PayoutRunFailureView {
    /// The merchant.
    pub merchant_id: Uuid,
    /// Why.
    pub reason: String,
}

/// What a payout run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PayoutRunView {
    /// The run's label.
    pub run: String,
    /// Payouts requested by this call (RazorpayX transfers follow from the payouts queue).
    pub requested: Vec<RequestedPayoutView>,
    /// Merchants whose payout for this run was requested before.
    pub already_requested: u64,
    /// Merchants under their payout minimum.
    pub below_minimum: u64,
    /// Merchants that could not be handled; running again retries them.
    pub failures: Vec<PayoutRunFailureView>,
}

impl From<PayoutRunReport> for PayoutRunView {
    fn from(report: PayoutRunReport) -> Self {
        Self {
            run: report.run,
            requested: report
                .requested
                .into_iter()
                .map(|p| RequestedPayoutView {
                    merchant_id: p.merchant_id.0,
                    payout_id: p.payout_id.0,
                    amount_paise: p.amount.0,
                })
                .collect(),
            already_requested: report.already_requested,
            below_minimum: report.below_minimum,
            failures: report
                .failures
                .into_iter()
                .map(|f| PayoutRunFailureView {
                    merchant_id: f.merchant_id.0,
                    reason: f.reason,
                })
                .collect(),
        }
    }
}

/// Requests now every commission payout due (as the daily run does).
#[utoipa::path(
    post,
    path = "/admin/payouts/run",
    tag = "admin-payouts",
    request_body(content = PayoutRunRequest, description = "Optional; `{}` runs today's IST run"),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "Payouts requested (recorded as pending in the log)", body = PayoutRunView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Run label empty or too long", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn run_payouts(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PayoutRunRequest>,
) -> Result<Json<PayoutRunView>, ApiError> {
    let run = request.run.unwrap_or_else(|| {
        state
            .ledger
            .now()
            .with_timezone(&ist())
            .format("%Y-%m-%d")
            .to_string()
    });
    let report = state
        .ledger
        .run_payouts(&run, state.config.payouts.minimum, &admin.context(&headers))
        .await
        .map_err(admin_error)?;
    tracing::info!(run = %report.run, requested = report.requested.len(), admin = %admin.email, "payout run");
    Ok(Json(report.into()))
}

/// A settlement made outside the payout system.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualSettlementRequest {
    /// The merchant.
    pub merchant_id: Uuid,
    /// Amount in paise (positive, at most the balance due not reserved by pending payouts).
    #[schema(minimum = 1)]
    pub amount_paise: i64,
    /// Reference of the settlement (bank transfer, receipt), 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub reference: String,
    /// Note from ops (up to 200 characters kept).
    #[serde(default)]
    pub note: String,
}

/// The merchant's wallet after a settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SettlementView {
    /// The merchant.
    pub merchant_id: Uuid,
    /// Amount settled, in paise.
    pub amount_paise: i64,
    /// Balance due after it.
    pub balance_due_paise: i64,
    /// Balance due not reserved by pending payouts.
    pub available_paise: i64,
    /// Total settled manually.
    pub settled_paise: i64,
}

/// Records a settlement made outside the payout system (reduces the balance due).
#[utoipa::path(
    post,
    path = "/admin/settlements",
    tag = "admin-payouts",
    request_body = ManualSettlementRequest,
    security(("admin_jwt" = [])),
    responses(
        (status = 201, description = "Recorded in the merchant's wallet", body = SettlementView),
        (status = 400, description = "Malformed JSON or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "More than the balance due not reserved by pending payouts (SETTLEMENT_EXCEEDS_BALANCE); nothing recorded", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Amount not positive, reference empty or too long", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn record_settlement(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    JsonBody(request): JsonBody<ManualSettlementRequest>,
) -> Result<(axum::http::StatusCode, Json<SettlementView>), ApiError> {
    let wallet = state
        .ledger
        .record_manual_settlement(
            MerchantId(request.merchant_id),
            request.reference,
            Paise(request.amount_paise),
            request.note,
            &admin.context(&headers),
        )
        .await
        .map_err(admin_error)?;
    tracing::info!(merchant_id = %request.merchant_id, amount = request.amount_paise, admin = %admin.email, "manual settlement");
    Ok((
        axum::http::StatusCode::CREATED,
        Json(SettlementView {
            merchant_id: request.merchant_id,
            amount_paise: request.amount_paise,
            balance_due_paise: wallet.balance_due().0,
            available_paise: wallet.available().0,
            settled_paise: wallet.settled().0,
        }),
    ))
}

/// Sweeps now for payments without an outcome past the configured age and queues one PSP
/// status check each (deduplicated per payment within the sweep window).
#[utoipa::path(
    post,
    path = "/admin/reconciliation/run",
    tag = "admin-payouts",
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "Status checks queued", body = ReconciliationRun),
        (status = 502, description = "The sweep failed (database or broker)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Reconciliation is not wired on this server", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn run_reconciliation(
    State(state): State<AppState>,
    admin: AdminUser,
) -> Result<Json<ReconciliationRun>, ApiError> {
    let reconciliation = state
        .reconciliation
        .clone()
        .ok_or(ApiError::ReconciliationUnavailable)?;
    let run = reconciliation
        .sweep()
        .await
        .map_err(ApiError::ReconciliationFailed)?;
    tracing::info!(stale = run.stale, queued = run.queued, admin = %admin.email, "reconciliation sweep");
    Ok(Json(run))
}
