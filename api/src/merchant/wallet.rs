//! `GET /wallet` (what the merchant owes us, its thresholds and standing), `GET /wallet/entries`
//! (the wallet's facts, newest first, by cursor) and `GET /statements/{month}` (the admin
//! route's statement, for the signing merchant).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use chrono::{DateTime, Datelike, Utc};
use lightspeed_domain::Paise;
use lightspeed_domain::calendar::IST;
use lightspeed_domain::merchant::Merchant;
use lightspeed_domain::standing::{Standing, standing};
use lightspeed_projections::commission::{DailyFilter, LedgerFilter};
use lightspeed_projections::wallets::WalletBalance;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::QueryParams;
use crate::admin::statements::{StatementView, month_and_format, render};
use crate::admin::views::{CursorBody, LedgerEntryView};
use crate::auth::SignedRequest;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// What the merchant owes us and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletBody {
    /// Commission owed, in paise (below zero: a credit).
    pub balance_due: i64,
    /// Balance due not yet reserved by payouts in progress.
    pub available: i64,
    /// From this balance due you are warned, in paise.
    pub warn_at: i64,
    /// From this balance due new payments are refused (402), in paise.
    pub suspend_at: i64,
    /// `active`, `warned` (at or above `warn_at`) or `suspended` (at or above `suspend_at`, or
    /// suspended by us).
    pub standing: String,
    /// Commission accrued this IST month, in paise.
    pub commission_this_month: i64,
    /// Commission reversed by refunds this IST month, in paise.
    pub commission_reversed_this_month: i64,
    /// When the last payout collected the balance.
    pub last_payout_at: Option<DateTime<Utc>>,
    /// Its amount, in paise.
    pub last_payout: Option<i64>,
}

fn standing_name(standing: Standing, suspended: bool) -> &'static str {
    match standing {
        _ if suspended => "suspended",
        Standing::Suspended => "suspended",
        Standing::Warn => "warned",
        Standing::Good => "active",
    }
}

impl WalletBody {
    fn of(wallet: &WalletBalance) -> Self {
        let thresholds = lightspeed_domain::standing::Thresholds {
            suspend_at: Paise(wallet.suspend_at_paise),
            warn_at: Paise(wallet.warn_at_paise),
            auto_payout_minimum: Paise(wallet.auto_payout_minimum_paise),
        };
        let now = standing(Paise(wallet.balance_due_paise), &thresholds);
        Self {
            balance_due: wallet.balance_due_paise,
            available: wallet.available_paise,
            warn_at: wallet.warn_at_paise,
            suspend_at: wallet.suspend_at_paise,
            standing: standing_name(now, wallet.suspended).into(),
            commission_this_month: 0,
            commission_reversed_this_month: 0,
            last_payout_at: wallet.last_payout_at,
            last_payout: wallet.last_payout_paise,
        }
    }

    /// A merchant the wallets read model has not seen yet owes nothing.
    fn empty(merchant: &Merchant) -> Self {
        let thresholds = merchant.thresholds();
        let suspended = merchant.status() != lightspeed_domain::standing::MerchantStatus::Active;
        Self {
            balance_due: 0,
            available: 0,
            warn_at: thresholds.warn_at.0,
            suspend_at: thresholds.suspend_at.0,
            standing: standing_name(standing(Paise::ZERO, thresholds), suspended).into(),
            commission_this_month: 0,
            commission_reversed_this_month: 0,
            last_payout_at: None,
            last_payout: None,
        }
    }
}

/// The signing merchant's wallet: balance due, thresholds, standing, this month's commission and
/// the last payout.
#[utoipa::path(
    get,
    path = "/wallet",
    tag = "payments",
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The wallet", body = WalletBody, example = json!({
            "balance_due": 612500, "available": 612500, "warn_at": 500000, "suspend_at": 1000000,
            "standing": "warned", "commission_this_month": 412500, "commission_reversed_this_month": 1750,
            "last_payout_at": "2026-11-01T04:30:00Z", "last_payout": 250000
        })),
        (status = 401, description = "Missing, stale or wrong signature, or unknown client key", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet (`READ_MODEL_NOT_READY`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn wallet(
    State(state): State<AppState>,
    request: SignedRequest,
) -> Result<Json<WalletBody>, ApiError> {
    let merchant = &request.merchant.merchant;
    let merchant_id = merchant.id().0;
    let mut body = match lightspeed_projections::wallets::get(state.pool(), merchant_id).await? {
        Some(wallet) => WalletBody::of(&wallet),
        None => WalletBody::empty(merchant),
    };
    let today = state.ledger.now().with_timezone(&IST).date_naive();
    let filter = DailyFilter {
        merchant_id: Some(merchant_id),
        from: today.with_day(1),
        to: Some(today),
    };
    let days = lightspeed_projections::commission::daily(state.pool(), &filter).await?;
    body.commission_this_month = days.iter().map(|day| day.commission_paise).sum();
    body.commission_reversed_this_month =
        days.iter().map(|day| day.commission_reversed_paise).sum();
    Ok(Json(body))
}

/// Query of `GET /wallet/entries` (documentation; read by [`QueryParams`]).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntriesQuery {
    /// Rows per step, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// A previous answer's `next_cursor`.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// The signing merchant's wallet entries (commission, reversals, payouts, settlements), newest
/// first, by cursor.
#[utoipa::path(
    get,
    path = "/wallet/entries",
    tag = "payments",
    params(EntriesQuery),
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "One step of entries", body = CursorBody<LedgerEntryView>, example = json!({
            "items": [{"entry_type": "COMMISSION", "source_id": "01938a6e-8f1c-7c4e-9a51-2f0d7c1e4b11",
                       "merchant_id": "01938a6c-0000-7000-8000-00000000000a", "amount_paise": 1747,
                       "balance_effect_paise": 1747, "payment_amount_paise": 49900, "fee_bps": 350,
                       "reference": "ORD-1001", "detail": null, "occurred_at": "2026-11-20T10:16:02Z", "log_position": 4211}],
            "next_cursor": "4211"
        })),
        (status = 401, description = "Missing, stale or wrong signature, or unknown client key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` or `cursor` is invalid, or a parameter is unknown (`INVALID_FIELD`; `field` names it)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet (`READ_MODEL_NOT_READY`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn entries(
    State(state): State<AppState>,
    uri: Uri,
    request: SignedRequest,
) -> Result<Json<CursorBody<LedgerEntryView>>, ApiError> {
    let params = QueryParams::of(&uri, &["limit", "cursor"])?;
    let filter = LedgerFilter {
        merchant_id: Some(request.merchant.merchant.id().0),
        entry_type: None,
        from: None,
        to: None,
        limit: params.limit()?,
    };
    let cursor = params.cursor::<u64>()?.map(|position| position.to_string());
    let page = lightspeed_projections::commission::ledger(state.pool(), &filter, cursor.as_deref())
        .await?;
    Ok(Json(CursorBody::of(page)))
}

/// The signing merchant's statement for one IST month, as the admin route answers it: JSON,
/// CSV or a printable HTML page.
#[utoipa::path(
    get,
    path = "/statements/{month}",
    tag = "payments",
    params(("month" = String, Path, description = "`yyyy-mm` (IST month); `yyyy-mm.csv` or `yyyy-mm.html` pick the format, otherwise `Accept: text/csv` or `text/html` does")),
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The statement; CSV amounts in paise, the HTML page in rupees", content(
            (StatementView = "application/json", example = json!({
                "merchant_id": "01938a6c-0000-7000-8000-00000000000a", "company_name": "Chai Point", "month": "2026-11",
                "opening_balance_paise": 250000, "commission_accrued_paise": 412500, "commissions": 236,
                "commission_reversed_paise": 1750, "payouts_paise": 250000, "reversals_paise": 0, "settlements_paise": 0,
                "closing_balance_paise": 410750, "pending_payouts_paise": 0,
                "entries": [{"at": "2026-11-01T04:30:00Z", "kind": "payout", "reference": "01938a00-0000-7000-8000-000000000003",
                             "amount_paise": 250000, "balance_effect_paise": -250000}]
            })),
            (String = "text/csv", example = "line,amount_paise\nopening_balance,250000\n"),
            (String = "text/html"),
        )),
        (status = 400, description = "Not a month (`INVALID_MONTH`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, stale or wrong signature, or unknown client key", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn statement(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(segment): Path<String>,
    request: SignedRequest,
) -> Result<Response, ApiError> {
    let (month, format) = month_and_format(&segment, &headers)?;
    let merchant = &request.merchant.merchant;
    let statement = state.ledger.statement(merchant.id(), month).await?;
    let view = StatementView::new(statement, merchant.company_name().to_owned());
    Ok(render(view, format))
}
