//! The read models over HTTP: WhatsApp log, commission ledger (with a CSV export) and daily
//! totals, wallets, transactions, the audit log and the projections' own status.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use lightspeed_domain::calendar::IST;
use lightspeed_projections::audit_log::AuditFilter;
use lightspeed_projections::commission::{DailyFilter, LedgerFilter};
use lightspeed_projections::transactions::TransactionSearch;
use lightspeed_projections::wallets::{WalletEntry, WalletFilter};
use lightspeed_projections::whatsapp::WhatsappFilter;
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::IntoParams;
use uuid::Uuid;

use super::AdminQuery;
use super::merchants::page_request;
use super::views::{
    AuditEntryView, CommissionDayView, CursorBody, LedgerEntryView, PageBody, ProjectionView,
    TransactionView, WalletView, WhatsappMessageView,
};
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::schema_rules;
use crate::state::AppState;

/// Rows per cursor step unless asked otherwise.
const DEFAULT_LIMIT: u32 = 50;
/// Most rows one CSV export holds; a larger export is cut here (narrow the dates).
pub const MAX_EXPORT_ROWS: usize = 100_000;
/// Rows fetched per step while exporting.
const EXPORT_BATCH: u32 = 200;

/// An instant from RFC 3339, or an IST calendar day (`YYYY-MM-DD`): its start, or with
/// `end_of_day`, the start of the next day (so `to=<day>` includes that day).
pub(super) fn instant(
    field: &str,
    value: Option<&str>,
    end_of_day: bool,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        ApiError::InvalidQuery(format!(
            "{field} must be an RFC 3339 instant or a YYYY-MM-DD day"
        ))
    })?;
    let day = if end_of_day {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    Ok(day
        .and_time(NaiveTime::MIN)
        .and_local_timezone(IST)
        .single()
        .map(|at| at.with_timezone(&Utc)))
}

fn day(field: &str, value: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    value
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| ApiError::InvalidQuery(format!("{field} must be a YYYY-MM-DD day")))
        })
        .transpose()
}

/// Filters, search and page of the WhatsApp log.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WhatsappQuery {
    /// Only this merchant's (client's) messages.
    pub client_id: Option<Uuid>,
    /// Only this status: `queued`, `sent` or `failed`.
    pub status: Option<String>,
    /// Only this template.
    pub template: Option<String>,
    /// Recipient, template, parameters or error contain this (case-insensitive).
    pub q: Option<String>,
    /// Page, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Rows per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<u32>,
}

/// The WhatsApp log, newest first: paginated, filterable, searchable.
#[utoipa::path(
    get,
    path = "/admin/whatsapp",
    tag = "admin-reads",
    params(WhatsappQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "One page of messages", body = PageBody<WhatsappMessageView>),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn whatsapp(
    State(state): State<AppState>,
    _admin: AdminUser,
    AdminQuery(query): AdminQuery<WhatsappQuery>,
) -> Result<Json<PageBody<WhatsappMessageView>>, ApiError> {
    let filter = WhatsappFilter {
        merchant_id: query.client_id,
        status: query.status,
        template: query.template,
        q: query.q,
    };
    let page = page_request(query.page, query.per_page);
    let page = lightspeed_projections::whatsapp::log(state.pool(), &filter, page).await?;
    Ok(Json(PageBody::of(page)))
}

/// Filters and cursor of the commission ledger.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Only this merchant's entries.
    pub merchant_id: Option<Uuid>,
    /// Only this type: `COMMISSION`, `COMMISSION_REVERSED`, `COMMISSION_PAYOUT`, `PAYOUT_REVERSED`,
    /// `MANUAL_SETTLEMENT`.
    pub entry_type: Option<String>,
    /// From this instant (RFC 3339) or IST day (`YYYY-MM-DD`), inclusive.
    #[param(schema_with = schema_rules::instant_or_day)]
    pub from: Option<String>,
    /// Before this instant, or up to this IST day inclusive.
    #[param(schema_with = schema_rules::instant_or_day)]
    pub to: Option<String>,
    /// Rows per step, 1 to 200 (default 50); ignored by the CSV export.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// A previous step's `next_cursor`.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

impl LedgerQuery {
    fn filter(&self, limit: u32) -> Result<LedgerFilter, ApiError> {
        Ok(LedgerFilter {
            merchant_id: self.merchant_id,
            entry_type: self.entry_type.clone(),
            from: instant("from", self.from.as_deref(), false)?,
            to: instant("to", self.to.as_deref(), true)?,
            limit,
        })
    }
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/csv"))
}

/// The commission ledger (every wallet entry), newest first, by cursor; with `Accept: text/csv`
/// every matching entry (up to 100 000) as a CSV download.
#[utoipa::path(
    get,
    path = "/admin/commission/ledger",
    tag = "admin-reads",
    params(LedgerQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "One step of entries, or the CSV export", content(
            (CursorBody<LedgerEntryView> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn commission_ledger(
    State(state): State<AppState>,
    _admin: AdminUser,
    headers: HeaderMap,
    AdminQuery(query): AdminQuery<LedgerQuery>,
) -> Result<Response, ApiError> {
    if wants_csv(&headers) {
        let filter = query.filter(EXPORT_BATCH)?;
        // Fail before the 200 is sent: a bad filter or a missing read model is a problem
        // document, not a broken download.
        let first = lightspeed_projections::commission::ledger(
            state.pool(),
            &filter,
            query.cursor.as_deref(),
        )
        .await?;
        let body = Body::from_stream(csv_stream(state.pool().clone(), filter, first));
        let mut response = body.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"commission-ledger.csv\""),
        );
        return Ok(response);
    }
    let filter = query.filter(query.limit.unwrap_or(DEFAULT_LIMIT))?;
    let page =
        lightspeed_projections::commission::ledger(state.pool(), &filter, query.cursor.as_deref())
            .await?;
    Ok(Json(CursorBody::<LedgerEntryView>::of(page)).into_response())
}

const CSV_HEADER: &str = "entry_type,source_id,merchant_id,amount_paise,balance_effect_paise,payment_amount_paise,fee_bps,reference,detail,occurred_at,log_position\n";

/// The CSV rows of `first` and of every step after it, up to [`MAX_EXPORT_ROWS`].
fn csv_stream(
    pool: PgPool,
    filter: LedgerFilter,
    first: lightspeed_projections::pagination::CursorPage<WalletEntry>,
) -> impl futures::Stream<Item = Result<String, ApiError>> {
    let header = futures::stream::once(async { Ok(CSV_HEADER.to_owned()) });
    let steps = futures::stream::unfold((Some(first), 0usize), move |(page, sent)| {
        let pool = pool.clone();
        let filter = filter.clone();
        async move {
            let page = page?;
            let room = MAX_EXPORT_ROWS.saturating_sub(sent);
            let rows: String = page.items.iter().take(room).map(csv_row).collect();
            let sent = sent + page.items.len().min(room);
            let next = match page.next_cursor {
                Some(cursor) if sent < MAX_EXPORT_ROWS => {
                    match lightspeed_projections::commission::ledger(&pool, &filter, Some(&cursor))
                        .await
                    {
                        Ok(next) => Some(next),
                        Err(e) => {
                            // The status line is sent; all that is left is to stop short.
                            tracing::error!(error = %e, "commission ledger export cut short");
                            return Some((Err(ApiError::from(e)), (None, sent)));
                        }
                    }
                }
                _ => None,
            };
            Some((Ok(rows), (next, sent)))
        }
    });
    futures::StreamExt::chain(header, steps)
}

fn csv_row(entry: &WalletEntry) -> String {
    let optional = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
    format!(
        "{},{},{},{},{},{},{},{},{},{},{}\n",
        csv_text(&entry.entry_type),
        entry.source_id,
        entry.merchant_id,
        entry.amount_paise,
        entry.balance_effect_paise,
        optional(entry.payment_amount_paise),
        optional(entry.fee_bps.map(i64::from)),
        csv_text(entry.reference.as_deref().unwrap_or_default()),
        csv_text(entry.detail.as_deref().unwrap_or_default()),
        entry.occurred_at.to_rfc3339(),
        entry.log_position,
    )
}

/// A text cell: quoted when needed, and defused when a spreadsheet would read it as a formula.
fn csv_text(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// Which days to report.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// Only this merchant.
    pub merchant_id: Option<Uuid>,
    /// From this IST day (`YYYY-MM-DD`), inclusive.
    #[param(schema_with = schema_rules::day)]
    pub from: Option<String>,
    /// Up to this IST day, inclusive.
    #[param(schema_with = schema_rules::day)]
    pub to: Option<String>,
}

/// Commission per IST day and merchant, newest day first (at most 1 000 rows).
#[utoipa::path(
    get,
    path = "/admin/commission/daily",
    tag = "admin-reads",
    params(DailyQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "Days", body = Vec<CommissionDayView>),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn commission_daily(
    State(state): State<AppState>,
    _admin: AdminUser,
    AdminQuery(query): AdminQuery<DailyQuery>,
) -> Result<Json<Vec<CommissionDayView>>, ApiError> {
    let filter = DailyFilter {
        merchant_id: query.merchant_id,
        from: day("from", query.from.as_deref())?,
        to: day("to", query.to.as_deref())?,
    };
    let days = lightspeed_projections::commission::daily(state.pool(), &filter).await?;
    Ok(Json(days.into_iter().map(Into::into).collect()))
}

/// Filters and page of the wallets.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WalletQuery {
    /// Only this merchant.
    pub merchant_id: Option<Uuid>,
    /// Only wallets whose merchant may not (true) or may (false) take payments.
    pub suspended: Option<bool>,
    /// Only this standing: `good`, `warn` or `suspended`.
    pub standing: Option<String>,
    /// Only wallets owing at least this much, in paise.
    pub min_balance_due_paise: Option<i64>,
    /// Company name contains this (case-insensitive).
    pub q: Option<String>,
    /// Page, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Rows per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<u32>,
}

/// Wallets, largest balance due first.
#[utoipa::path(
    get,
    path = "/admin/wallets",
    tag = "admin-reads",
    params(WalletQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "One page of wallets", body = PageBody<WalletView>),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn wallets(
    State(state): State<AppState>,
    _admin: AdminUser,
    AdminQuery(query): AdminQuery<WalletQuery>,
) -> Result<Json<PageBody<WalletView>>, ApiError> {
    let filter = WalletFilter {
        merchant_id: query.merchant_id,
        suspended: query.suspended,
        standing: query.standing,
        min_balance_due_paise: query.min_balance_due_paise,
        q: query.q,
    };
    let page = page_request(query.page, query.per_page);
    let page = lightspeed_projections::wallets::list(state.pool(), &filter, page).await?;
    Ok(Json(PageBody::of(page)))
}

/// Filters and cursor of the transactions.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransactionQuery {
    /// Only this merchant's.
    pub merchant_id: Option<Uuid>,
    /// Only this status.
    #[param(schema_with = crate::payments::payment_status_schema)]
    pub status: Option<String>,
    /// Only this merchant order id (exact).
    pub order_id: Option<String>,
    /// Initiated from this instant (RFC 3339) or IST day (`YYYY-MM-DD`).
    #[param(schema_with = schema_rules::instant_or_day)]
    pub from: Option<String>,
    /// Initiated before this instant, or up to this IST day inclusive.
    #[param(schema_with = schema_rules::instant_or_day)]
    pub to: Option<String>,
    /// Rows per step, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// A previous step's `next_cursor`.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// Transactions, newest first, by cursor.
#[utoipa::path(
    get,
    path = "/admin/transactions",
    tag = "admin-reads",
    params(TransactionQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "One step of transactions", body = CursorBody<TransactionView>),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn transactions(
    State(state): State<AppState>,
    _admin: AdminUser,
    AdminQuery(query): AdminQuery<TransactionQuery>,
) -> Result<Json<CursorBody<TransactionView>>, ApiError> {
    let search = TransactionSearch {
        merchant_id: query.merchant_id,
        status: query.status,
        merchant_order_id: query.order_id,
        from: instant("from", query.from.as_deref(), false)?,
        to: instant("to", query.to.as_deref(), true)?,
        limit: query.limit.unwrap_or(DEFAULT_LIMIT),
    };
    let page = lightspeed_projections::transactions::search(
        state.pool(),
        &search,
        query.cursor.as_deref(),
    )
    .await?;
    Ok(Json(CursorBody::of(page)))
}

/// Filters and cursor of the audit log.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this admin's actions (email).
    pub actor: Option<String>,
    /// Only this action (event type), e.g. `MerchantFeeChanged`.
    pub action: Option<String>,
    /// Only on this kind of thing, e.g. `merchant`, `gateway`, `queue`.
    pub entity_type: Option<String>,
    /// Only on this thing (its id).
    pub entity_id: Option<String>,
    /// From this instant (RFC 3339) or IST day (`YYYY-MM-DD`).
    #[param(schema_with = schema_rules::instant_or_day)]
    pub from: Option<String>,
    /// Before this instant, or up to this IST day inclusive.
    #[param(schema_with = schema_rules::instant_or_day)]
    pub to: Option<String>,
    /// Rows per step, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// A previous step's `next_cursor`.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// Every admin action, newest first, by cursor (projected from the events' actor).
#[utoipa::path(
    get,
    path = "/admin/audit-log",
    tag = "admin-reads",
    params(AuditQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "One step of admin actions", body = CursorBody<AuditEntryView>),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn audit_log(
    State(state): State<AppState>,
    _admin: AdminUser,
    AdminQuery(query): AdminQuery<AuditQuery>,
) -> Result<Json<CursorBody<AuditEntryView>>, ApiError> {
    let filter = AuditFilter {
        actor: query.actor.map(|actor| actor.to_ascii_lowercase()),
        action: query.action,
        entity_type: query.entity_type,
        entity_id: query.entity_id,
        from: instant("from", query.from.as_deref(), false)?,
        to: instant("to", query.to.as_deref(), true)?,
        limit: query.limit.unwrap_or(DEFAULT_LIMIT),
    };
    let page =
        lightspeed_projections::audit_log::list(state.pool(), &filter, query.cursor.as_deref())
            .await?;
    Ok(Json(CursorBody::of(page)))
}

/// Every projection version not dropped: state, checkpoint and lag behind the log.
#[utoipa::path(
    get,
    path = "/admin/projections",
    tag = "admin-reads",
    security(("admin_jwt" = [])),
    responses((status = 200, description = "Projection versions, active ones first", body = Vec<ProjectionView>))
)]
pub async fn projections(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<ProjectionView>>, ApiError> {
    let versions = lightspeed_projections::status::all(state.pool()).await?;
    Ok(Json(versions.into_iter().map(Into::into).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_text("plain"), "plain");
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }

    #[test]
    fn a_day_bound_covers_the_whole_ist_day() {
        let from = instant("from", Some("2026-11-01"), false).expect("day");
        let to = instant("to", Some("2026-11-01"), true).expect("day");
        assert_eq!(
            from.map(|at| at.to_rfc3339()),
            Some("2026-10-31T18:30:00+00:00".to_owned())
        );
        assert_eq!(
            to.map(|at| at.to_rfc3339()),
            Some("2026-11-01T18:30:00+00:00".to_owned())
        );
        assert!(instant("from", Some("yesterday"), false).is_err());
    }
}
