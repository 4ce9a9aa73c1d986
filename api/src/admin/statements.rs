//! Month-end statements per merchant, as JSON, CSV or a printable HTML page.
//!
//! Figures come from the merchant's wallet stream in the log ([`Ledger::statement`]), folded
//! with the domain's wallet rules, so they equal the wallet's own balance. Amounts are paise in
//! JSON and CSV (integers); the HTML page shows rupees.
//!
//! [`Ledger::statement`]: lightspeed_services::Ledger::statement

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use lightspeed_domain::{MerchantId, Paise};
use lightspeed_services::{Statement, StatementEntryKind, StatementMonth, ist};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{admin_error, parse_id};
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// One commission reversal, payout, payout reversal or settlement of the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatementEntryView {
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// `commission_reversal`, `payout`, `payout_reversal` or `settlement`.
    pub kind: String,
    /// The refund (for a commission reversal), the payout id or the settlement's reference.
    pub reference: String,
    /// Amount in paise.
    pub amount_paise: i64,
    /// Effect on the balance due, in paise (negative reduces it).
    pub balance_effect_paise: i64,
}

/// A merchant's statement for one IST month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatementView {
    /// The merchant.
    pub merchant_id: Uuid,
    /// The company.
    pub company_name: String,
    /// `yyyy-mm`, in India Standard Time.
    pub month: String,
    /// Balance due at the start of the month.
    pub opening_balance_paise: i64,
    /// Commission accrued during the month.
    pub commission_accrued_paise: i64,
    /// Payments whose commission accrued during the month.
    pub commissions: u64,
    /// Commission reversed by refunds during the month.
    pub commission_reversed_paise: i64,
    /// Paid out during the month.
    pub payouts_paise: i64,
    /// Restored by reversals of paid-out payouts during the month.
    pub reversals_paise: i64,
    /// Settled manually during the month.
    pub settlements_paise: i64,
    /// Balance due at the end of the month: opening + accrued − commission reversed − payouts +
    /// reversals − settlements.
    pub closing_balance_paise: i64,
    /// Payouts requested and not settled at the end of the month.
    pub pending_payouts_paise: i64,
    /// The month's commission reversals, payouts, payout reversals and settlements.
    pub entries: Vec<StatementEntryView>,
}

impl StatementView {
    /// The view of `statement`, for the merchant named `company_name`.
    pub fn new(statement: Statement, company_name: String) -> Self {
        Self {
            merchant_id: statement.merchant_id.0,
            company_name,
            month: statement.month.to_string(),
            opening_balance_paise: statement.opening_balance.0,
            commission_accrued_paise: statement.commission_accrued.0,
            commissions: statement.commissions,
            commission_reversed_paise: statement.commission_reversed.0,
            payouts_paise: statement.paid_out.0,
            reversals_paise: statement.reversed.0,
            settlements_paise: statement.settled.0,
            closing_balance_paise: statement.closing_balance.0,
            pending_payouts_paise: statement.pending_at_close.0,
            entries: statement
                .entries
                .into_iter()
                .map(|entry| StatementEntryView {
                    at: entry.at,
                    kind: kind_name(entry.kind).to_owned(),
                    reference: entry.reference,
                    amount_paise: entry.amount.0,
                    balance_effect_paise: entry.balance_effect.0,
                })
                .collect(),
        }
    }
}

fn kind_name(kind: StatementEntryKind) -> &'static str {
    match kind {
        StatementEntryKind::CommissionReversal => "commission_reversal",
        StatementEntryKind::Payout => "payout",
        StatementEntryKind::PayoutReversal => "payout_reversal",
        StatementEntryKind::Settlement => "settlement",
    }
}

/// How the statement is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `text/csv`, amounts in paise, as an attachment.
    Csv,
    /// A printable page in rupees.
    Html,
}

/// The month and format a path segment and `Accept` header ask for: `2026-11.csv` and
/// `2026-11.html` name their format; a bare month follows `Accept` (JSON unless it prefers CSV
/// or HTML).
pub(crate) fn month_and_format(
    segment: &str,
    headers: &HeaderMap,
) -> Result<(StatementMonth, Format), ApiError> {
    let (month, format) = match segment.rsplit_once('.') {
        Some((month, "csv")) => (month, Format::Csv),
        Some((month, "html")) => (month, Format::Html),
        Some((month, "json")) => (month, Format::Json),
        Some(_) => (segment, Format::Json),
        None => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let format = if accept.contains("text/csv") {
                Format::Csv
            } else if accept.contains("text/html") {
                Format::Html
            } else {
                Format::Json
            };
            (segment, format)
        }
    };
    let month = StatementMonth::parse(month).ok_or_else(|| {
        ApiError::InvalidMonth(format!(
            "month must be yyyy-mm (optionally .csv or .html), not {:?}",
            segment.chars().take(32).collect::<String>()
        ))
    })?;
    Ok((month, format))
}

/// A merchant's statement for one IST month: opening balance, commission accrued and reversed by
/// refunds, payouts, reversals, settlements and closing balance, with the month's entries.
#[utoipa::path(
    get,
    path = "/admin/merchants/{id}/statements/{month}",
    tag = "admin-payouts",
    params(
        ("id" = String, Path, description = "The merchant"),
        ("month" = String, Path, description = "`yyyy-mm` (IST month); `yyyy-mm.csv` or `yyyy-mm.html` pick the format, otherwise `Accept: text/csv` or `text/html` does"),
    ),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The statement; as CSV (amounts in paise) with `Accept: text/csv`, as a printable page with `Accept: text/html`", content(
            (StatementView = "application/json"),
            (String = "text/csv"),
            (String = "text/html"),
        )),
        (status = 400, description = "Not a month (INVALID_MONTH)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn statement(
    State(state): State<AppState>,
    _admin: AdminUser,
    headers: HeaderMap,
    Path((id, segment)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let merchant_id: MerchantId = parse_id(&id, ApiError::MerchantNotFound)?;
    let (month, format) = month_and_format(&segment, &headers)?;
    let merchant = state
        .ledger
        .merchant(merchant_id)
        .await
        .map_err(admin_error)?;
    let statement = state
        .ledger
        .statement(merchant_id, month)
        .await
        .map_err(admin_error)?;
    let view = StatementView::new(statement, merchant.company_name().to_owned());
    Ok(render(view, format))
}

/// The statement answered in `format` (the merchant's own route answers the same).
pub fn render(view: StatementView, format: Format) -> Response {
    let file = format!("statement-{}-{}", view.merchant_id, view.month);
    match format {
        Format::Json => Json(view).into_response(),
        Format::Csv => attachment(
            "text/csv; charset=utf-8",
            &format!("{file}.csv"),
            csv(&view),
        ),
        Format::Html => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html(&view),
        )
            .into_response(),
    }
}

fn attachment(content_type: &'static str, file_name: &str, body: String) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// A CSV field, quoted when it holds a separator, a quote or a line break, and with a leading
/// formula character neutralised so a spreadsheet never evaluates it.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The statement as CSV: a summary block (`line,amount_paise`), then the entries.
fn csv(view: &StatementView) -> String {
    let mut out = String::from("line,amount_paise\n");
    let summary = [
        ("opening_balance", view.opening_balance_paise),
        ("commission_accrued", view.commission_accrued_paise),
        ("commission_reversed", view.commission_reversed_paise),
        ("payouts", view.payouts_paise),
        ("reversals", view.reversals_paise),
        ("settlements", view.settlements_paise),
        ("closing_balance", view.closing_balance_paise),
        ("pending_payouts", view.pending_payouts_paise),
    ];
    for (line, amount) in summary {
        out.push_str(&format!("{line},{amount}\n"));
    }
    out.push_str("\nat,kind,reference,amount_paise,balance_effect_paise\n");
    for entry in &view.entries {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            entry.at.to_rfc3339(),
            entry.kind,
            csv_field(&entry.reference),
            entry.amount_paise,
            entry.balance_effect_paise
        ));
    }
    out
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn rupees(paise: i64) -> String {
    format!("₹{}", Paise(paise))
}

/// The statement as a printable page (rupees, IST times).
fn html(view: &StatementView) -> String {
    let row = |label: &str, paise: i64| {
        format!(
            "<tr><th scope=\"row\">{label}</th><td class=\"amount\" data-paise=\"{paise}\">{}</td></tr>",
            rupees(paise)
        )
    };
    let summary = [
        row("Opening balance due", view.opening_balance_paise),
        row(
            &format!("Commission accrued ({} payments)", view.commissions),
            view.commission_accrued_paise,
        ),
        row(
            "Commission reversed by refunds",
            view.commission_reversed_paise,
        ),
        row("Payouts", view.payouts_paise),
        row("Payout reversals", view.reversals_paise),
        row("Manual settlements", view.settlements_paise),
        row("Closing balance due", view.closing_balance_paise),
        row("Payouts pending at close", view.pending_payouts_paise),
    ]
    .concat();
    let entries: String = view
        .entries
        .iter()
        .map(|entry| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"amount\">{}</td><td class=\"amount\">{}</td></tr>",
                entry.at.with_timezone(&ist()).format("%Y-%m-%d %H:%M IST"),
                escape_html(&entry.kind),
                escape_html(&entry.reference),
                rupees(entry.amount_paise),
                rupees(entry.balance_effect_paise)
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Statement {month} · {company}</title>\
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}\
th,td{{border:1px solid #999;padding:.3em .6em;text-align:left}}.amount{{text-align:right}}\
@media print{{body{{margin:0}}}}</style></head><body>\
<h1>Commission statement</h1><p>{company}<br>Merchant {merchant}<br>Month {month} (India Standard Time)</p>\
<table><tbody>{summary}</tbody></table>\
<h2>Reversals, payouts and settlements</h2>\
<table><thead><tr><th>When</th><th>What</th><th>Reference</th><th>Amount</th><th>Effect on balance due</th></tr></thead>\
<tbody>{entries}</tbody></table></body></html>",
        month = escape_html(&view.month),
        company = escape_html(&view.company_name),
        merchant = view.merchant_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_follows_the_extension_then_accept() {
        let mut headers = HeaderMap::new();
        let month = StatementMonth::parse("2026-11").expect("month");
        assert_eq!(
            month_and_format("2026-11.csv", &headers).expect("csv").1,
            Format::Csv
        );
        assert_eq!(
            month_and_format("2026-11.html", &headers).expect("html"),
            (month, Format::Html)
        );
        assert_eq!(
            month_and_format("2026-11", &headers).expect("json").1,
            Format::Json
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/csv"));
        assert_eq!(
            month_and_format("2026-11", &headers).expect("accept").1,
            Format::Csv
        );
        assert!(month_and_format("2026-13.csv", &headers).is_err());
        assert!(month_and_format("november", &headers).is_err());
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("NEFT 123"), "NEFT 123");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
