//! Commission: a chart of commission per IST day, the commission ledger (every wallet entry)
//! with filters and the admin API's CSV export, the latest payouts, and the manual settlement
//! form (people who move payouts), recorded through the same `Ledger` call as
//! `POST /admin/settlements`.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use lightspeed_api::admin::AdminQuery;
use lightspeed_api::admin::reads::LedgerQuery;
use lightspeed_api::admin_auth::AdminUser;
use lightspeed_domain::access::Action;
use lightspeed_domain::calendar::IST;
use lightspeed_domain::{MerchantId, Paise};
use lightspeed_projections::commission::{DailyFilter, LedgerFilter};
use lightspeed_projections::wallets::WalletEntry;
use lightspeed_services::ServiceError;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::charts;
use crate::format::{percent_bps, rupees, time};
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/commission";
/// Rows per step of the ledger.
const PER_STEP: u32 = 50;
/// Payouts listed.
const PAYOUTS_SHOWN: u32 = 20;
/// Days the chart covers.
const CHART_DAYS: i64 = 30;
/// The ledger's entry types, for the filter.
const ENTRY_TYPES: [&str; 5] = [
    "COMMISSION",
    "COMMISSION_REVERSED",
    "COMMISSION_PAYOUT",
    "PAYOUT_REVERSED",
    "MANUAL_SETTLEMENT",
];

/// The ledger's filters (IST days from the date fields) and cursor.
#[derive(Debug, Default, Deserialize)]
pub struct CommissionQuery {
    merchant: Option<String>,
    entry_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    settled: Option<String>,
}

fn given(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl CommissionQuery {
    fn merchant_id(&self) -> Option<Uuid> {
        given(&self.merchant).and_then(|m| m.parse().ok())
    }

    fn entry_type(&self) -> Option<String> {
        given(&self.entry_type).filter(|t| ENTRY_TYPES.contains(&t.as_str()))
    }

    fn day(field: &Option<String>) -> Option<NaiveDate> {
        given(field).and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
    }

    fn filter(&self, limit: u32) -> LedgerFilter {
        LedgerFilter {
            merchant_id: self.merchant_id(),
            entry_type: self.entry_type(),
            from: Self::day(&self.from).map(ist_start),
            to: Self::day(&self.to)
                .and_then(|d| d.succ_opt())
                .map(ist_start),
            limit,
        }
    }

    /// The filters as query parameters (the CSV link and the next step carry them).
    fn params(&self) -> form_urlencoded::Serializer<'static, String> {
        let mut params = form_urlencoded::Serializer::new(String::new());
        let fields = [
            ("merchant", self.merchant_id().map(|m| m.to_string())),
            ("entry_type", self.entry_type()),
            ("from", Self::day(&self.from).map(|d| d.to_string())),
            ("to", Self::day(&self.to).map(|d| d.to_string())),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                params.append_pair(key, &value);
            }
        }
        params
    }
}

/// The start of an IST day.
fn ist_start(day: NaiveDate) -> DateTime<Utc> {
    let local = day.and_time(NaiveTime::MIN);
    local
        .and_local_timezone(IST)
        .single()
        .map_or_else(|| local.and_utc(), |at| at.with_timezone(&Utc))
}

/// `GET /console/commission`.
pub async fn page_handler(
    State(console): State<Console>,
    viewer: Viewer,
    Query(query): Query<CommissionQuery>,
) -> Result<Markup, Refusal> {
    render(&console, &viewer, &query, None).await
}

async fn render(
    console: &Console,
    viewer: &Viewer,
    query: &CommissionQuery,
    notice: Option<Markup>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let pool = console.app.pool();
    let cursor = given(&query.cursor);
    let entries = lightspeed_projections::commission::ledger(
        pool,
        &query.filter(PER_STEP),
        cursor.as_deref(),
    )
    .await
    .map_err(unavailable(lang))?;
    let payouts = LedgerFilter {
        entry_type: Some("COMMISSION_PAYOUT".into()),
        limit: PAYOUTS_SHOWN,
        ..LedgerFilter::default()
    };
    let payouts = lightspeed_projections::commission::ledger(pool, &payouts, None)
        .await
        .map_err(unavailable(lang))?;
    let params = query.params().finish();
    let body = html! {
        @if let Some(notice) = notice { (notice) }
        @if query.settled.is_some() { p.notice role="status" { (lang.t(Msg::SettlementRecorded)) } }
        (daily_chart(console, lang).await?)
        section.card.wide aria-labelledby="ledger-title" {
            h2 #ledger-title { (lang.t(Msg::CommissionLedger)) }
            (filters(lang, query))
            p { a #csv href={ (PATH) "/ledger.csv?" (params) } download { (lang.t(Msg::DownloadCsv)) } }
            (ledger_table(lang, &entries.items))
            @if let Some(next) = &entries.next_cursor {
                p { a href={ (PATH) "?" (params) "&cursor=" (next) } { (lang.t(Msg::Older)) " →" } }
            }
        }
        section.card.wide aria-labelledby="payouts-title" {
            h2 #payouts-title { (lang.t(Msg::Payouts)) }
            (ledger_table(lang, &payouts.items))
        }
        (settlement_form(viewer))
    };
    Ok(page(viewer, PATH, lang.t(Msg::Commission), body))
}

/// Net commission (accrued less reversed) per IST day, every merchant together.
async fn daily_chart(console: &Console, lang: Lang) -> Result<Markup, Refusal> {
    let today = console.app.ledger.now().with_timezone(&IST).date_naive();
    let from = today - chrono::TimeDelta::days(CHART_DAYS - 1);
    let filter = DailyFilter {
        merchant_id: None,
        from: Some(from),
        to: Some(today),
    };
    let days = lightspeed_projections::commission::daily(console.app.pool(), &filter)
        .await
        .map_err(unavailable(lang))?;
    let nets: Vec<(NaiveDate, i64)> = from
        .iter_days()
        .take_while(|day| *day <= today)
        .map(|day| {
            let net = days
                .iter()
                .filter(|d| d.day == day)
                .map(|d| d.commission_paise - d.commission_reversed_paise)
                .sum::<i64>();
            (day, net)
        })
        .collect();
    let total: i64 = nets.iter().map(|(_, net)| net).sum();
    // Bars in whole rupees (the axis people read); each bar's exact amount is on hover.
    let values: Vec<(String, i64)> = nets
        .iter()
        .map(|(day, net)| {
            (
                format!("{} {}", day.format("%d %b"), rupees(*net)),
                net / 100,
            )
        })
        .collect();
    Ok(html! {
        section.card.wide aria-labelledby="daily-title" {
            h2 #daily-title { (lang.t(Msg::CommissionDaily)) }
            p.figure { (rupees(total)) }
            (charts::bars(lang.t(Msg::CommissionDaily), &values))
        }
    })
}

fn filters(lang: Lang, query: &CommissionQuery) -> Markup {
    let chosen = query.entry_type();
    html! {
        form.filters method="get" action=(PATH) role="search" {
            label { (lang.t(Msg::Merchant)) input name="merchant" value=[query.merchant_id()] size="36"; }
            label { (lang.t(Msg::EntryType))
                select name="entry_type" {
                    option value="" { (lang.t(Msg::AnyType)) }
                    @for t in ENTRY_TYPES { option value=(t) selected[chosen.as_deref() == Some(t)] { (t) } }
                }
            }
            label { (lang.t(Msg::FromDay)) input type="date" name="from" value=[CommissionQuery::day(&query.from)]; }
            label { (lang.t(Msg::ToDay)) input type="date" name="to" value=[CommissionQuery::day(&query.to)]; }
            button type="submit" { (lang.t(Msg::Search)) }
        }
    }
}

fn ledger_table(lang: Lang, entries: &[WalletEntry]) -> Markup {
    html! {
        @if entries.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
        @else {
            div.table-wrap { table.ledger {
                thead { tr {
                    th scope="col" { (lang.t(Msg::Time)) }
                    th scope="col" { (lang.t(Msg::EntryType)) }
                    th scope="col" { (lang.t(Msg::Merchant)) }
                    th.num scope="col" { (lang.t(Msg::Amount)) }
                    th.num scope="col" { (lang.t(Msg::BalanceEffect)) }
                    th.num scope="col" { (lang.t(Msg::Fee)) }
                    th scope="col" { (lang.t(Msg::Reference)) }
                } }
                tbody { @for e in entries { tr {
                    td { (time(e.occurred_at)) }
                    td { code { (e.entry_type) } }
                    td { a href={ "/console/merchants/" (e.merchant_id) } { code { (short(e.merchant_id)) } } }
                    td.num { (rupees(e.amount_paise)) }
                    td.num { (rupees(e.balance_effect_paise)) }
                    td.num { @if let Some(fee) = e.fee_bps { (percent_bps(i64::from(fee))) } @else { "—" } }
                    td { (e.reference.as_deref().unwrap_or("—")) }
                } } }
            } }
        }
    }
}

fn short(id: Uuid) -> String {
    id.to_string().chars().take(8).collect()
}

/// The manual settlement form, for people who move payouts.
fn settlement_form(viewer: &Viewer) -> Markup {
    let lang = viewer.lang;
    if !viewer.may(Action::MovePayouts) {
        return html! {};
    }
    html! {
        section.card.wide aria-labelledby="settle-title" {
            h2 #settle-title { (lang.t(Msg::ManualSettlement)) }
            form.stack #settlement method="post" action={ (PATH) "/settlements" } {
                input type="hidden" name="csrf" value=(viewer.session.csrf);
                label { (lang.t(Msg::Merchant)) input name="merchant" required size="36"; }
                label { (lang.t(Msg::AmountRupees)) input name="amount" required inputmode="decimal" pattern="[0-9,]+(\\.[0-9]{1,2})?"; }
                label { (lang.t(Msg::Reference)) input name="reference" required maxlength="200"; }
                label { (lang.t(Msg::Note)) input name="note" maxlength="500"; }
                p { button type="submit" { (lang.t(Msg::RecordSettlement)) } }
            }
        }
    }
}

/// Paise from rupees as people type them (`1,234.5`): digits only, at most two decimals; no
/// floating point.
pub fn paise_of(text: &str) -> Option<i64> {
    let text: String = text.trim().chars().filter(|c| *c != ',').collect();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.len() > 2 || (!fraction.is_empty() && !digits(fraction)) {
        return None;
    }
    let cents = format!("{fraction:0<2}").parse::<i64>().ok()?;
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

/// The manual settlement form.
#[derive(Debug, Deserialize)]
pub struct SettlementForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    merchant: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    note: String,
}

/// `POST /console/commission/settlements`: as `POST /admin/settlements`.
pub async fn settle(
    State(console): State<Console>,
    viewer: Viewer,
    Form(form): Form<SettlementForm>,
) -> Result<Response, Refusal> {
    let lang = viewer.lang;
    viewer.authorize(Action::MovePayouts, &form.csrf)?;
    let merchant = form.merchant.trim().parse::<Uuid>().ok();
    let amount = paise_of(&form.amount).filter(|p| *p > 0);
    let (Some(merchant), Some(amount)) = (merchant, amount) else {
        return refused(&console, &viewer, lang.t(Msg::SettlementInvalid).to_owned()).await;
    };
    let recorded = console
        .app
        .ledger
        .record_manual_settlement(
            MerchantId(merchant),
            form.reference.trim().to_owned(),
            Paise(amount),
            form.note.trim().to_owned(),
            &viewer.context(),
        )
        .await;
    match recorded {
        Ok(_) => Ok(Redirect::to(&format!("{PATH}?settled=1")).into_response()),
        Err(ServiceError::UnknownMerchant) => Err(Refusal::NotFound(lang)),
        Err(
            e @ (ServiceError::Wallet(_) | ServiceError::Invalid(_) | ServiceError::MerchantClosed),
        ) => refused(&console, &viewer, e.to_string()).await,
        Err(other) => Err(Refusal::Unavailable(lang, other.to_string())),
    }
}

/// The page again with why the settlement was refused, as 422; nothing changed.
async fn refused(console: &Console, viewer: &Viewer, why: String) -> Result<Response, Refusal> {
    let notice =
        html! { p.notice.bad role="alert" { (viewer.lang.t(Msg::SettlementRefused)) ": " (why) } };
    let markup = render(console, viewer, &CommissionQuery::default(), Some(notice)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, markup).into_response())
}

/// `GET /console/commission/ledger.csv`: the admin API's CSV export of the filtered ledger,
/// made by the very handler of `GET /admin/commission/ledger` (same rows, same columns).
pub async fn csv(
    State(console): State<Console>,
    viewer: Viewer,
    Query(query): Query<CommissionQuery>,
) -> Response {
    let ledger = LedgerQuery {
        merchant_id: query.merchant_id(),
        entry_type: query.entry_type(),
        from: CommissionQuery::day(&query.from).map(|d| d.to_string()),
        to: CommissionQuery::day(&query.to).map(|d| d.to_string()),
        limit: None,
        cursor: None,
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static("text/csv"));
    let person = AdminUser {
        email: viewer.session.email.clone(),
        role: viewer.role,
        token_role: viewer.role,
    };
    let state = axum::extract::State(console.app.clone());
    match lightspeed_api::admin::reads::commission_ledger(
        state,
        person,
        headers,
        AdminQuery(ledger),
    )
    .await
    {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use lightspeed_domain::access::Role;

    use super::*;
    use crate::pages::queues::tests::viewer;

    #[test]
    fn only_people_who_move_payouts_see_the_settlement_form() {
        let finance = settlement_form(&viewer(Role::Finance)).into_string();
        assert!(
            finance.contains("/console/commission/settlements"),
            "{finance}"
        );
        for role in [Role::Auditor, Role::Ops] {
            assert_eq!(settlement_form(&viewer(role)).into_string(), "");
        }
    }

    #[test]
    fn rupees_typed_by_people_become_paise_without_floats() {
        assert_eq!(paise_of("1,234.5"), Some(123_450));
        assert_eq!(paise_of("12"), Some(1_200));
        assert_eq!(paise_of("0.07"), Some(7));
        assert_eq!(paise_of(" 1,00,000.00 "), Some(10_000_000));
        for bad in [
            "",
            ".5",
            "1.234",
            "-3",
            "1e3",
            "₹5",
            "1.x",
            "99999999999999999999",
        ] {
            assert_eq!(paise_of(bad), None, "{bad}");
        }
    }
}
