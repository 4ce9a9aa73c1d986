//! Transactions: search with filters, and a payment's page showing every event of its stream
//! from the log, in order, with time, type and actor (why it is in the state it is in).

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use lightspeed_domain::payment::PaymentStatus;
use lightspeed_eventstore::{EventStore, RecordedEvent, StreamId};
use lightspeed_live::{PaymentChange, PaymentItem};
use lightspeed_projections::transactions::{TransactionRow, TransactionSearch};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::format::{rupees, time};
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::live::{LivePage, live_reset};
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/transactions";
/// Rows per step.
const PER_STEP: u32 = 50;
/// Most events a payment's page shows (a payment's stream holds a handful, refunds included).
const MAX_EVENTS: usize = 1_000;

/// The search form's fields; empty fields filter nothing.
#[derive(Debug, Default, Deserialize)]
pub struct TransactionQuery {
    merchant: Option<String>,
    status: Option<String>,
    order_id: Option<String>,
    cursor: Option<String>,
}

fn given(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `GET /console/transactions`.
pub async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    Query(query): Query<TransactionQuery>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let search = TransactionSearch {
        merchant_id: given(&query.merchant).and_then(|m| m.parse().ok()),
        status: given(&query.status).filter(|s| PaymentStatus::ALL.iter().any(|p| p.as_str() == s)),
        merchant_order_id: given(&query.order_id),
        limit: PER_STEP,
        ..TransactionSearch::default()
    };
    let cursor = given(&query.cursor);
    // Only the unfiltered first step is live: a new payment belongs at its top.
    // The hub's head is read before the rows, so a payment initiated meanwhile is not lost.
    let live = (search.merchant_id.is_none()
        && search.status.is_none()
        && search.merchant_order_id.is_none()
        && cursor.is_none())
    .then(|| LivePage::Transactions.stream_url(&console.hub));
    let step = lightspeed_projections::transactions::search(
        console.app.pool(),
        &search,
        cursor.as_deref(),
    )
    .await
    .map_err(unavailable(lang))?;
    let next = step
        .next_cursor
        .as_ref()
        .map(|cursor| older_link(&query, cursor));
    let body = html! {
        (filters(lang, &query))
        div.table-wrap hx-ext=[live.as_ref().map(|_| "sse")] sse-connect=[live.as_ref()] sse-close=[live.as_ref().map(|_| crate::live::SIGNED_OUT_EVENT)] {
        (live_reset())
        table {
            thead { tr {
                th scope="col" { (lang.t(Msg::Initiated)) }
                th scope="col" { (lang.t(Msg::OrderId)) }
                th.num scope="col" { (lang.t(Msg::Amount)) }
                th scope="col" { (lang.t(Msg::Status)) }
                th.num scope="col" { (lang.t(Msg::Commission)) }
            } }
            tbody #transaction-rows sse-swap="payment" hx-swap="afterbegin" { @for row in &step.items { (row_markup(row)) } }
        } }
        @if let Some(next) = next { p { a href=(next) { (lang.t(Msg::Older)) " →" } } }
    };
    Ok(page(&viewer, PATH, lang.t(Msg::Transactions), body))
}

fn filters(lang: Lang, query: &TransactionQuery) -> Markup {
    let status = given(&query.status);
    html! {
        form.filters method="get" action=(PATH) role="search" {
            label { (lang.t(Msg::Merchant)) input name="merchant" value=[given(&query.merchant)] size="36"; }
            label { (lang.t(Msg::Status))
                select name="status" {
                    option value="" { (lang.t(Msg::AnyStatus)) }
                    @for s in PaymentStatus::ALL {
                        option value=(s.as_str()) selected[status.as_deref() == Some(s.as_str())] { (s.as_str()) }
                    }
                }
            }
            label { (lang.t(Msg::OrderId)) input name="order_id" value=[given(&query.order_id)]; }
            button type="submit" { (lang.t(Msg::Search)) }
        }
    }
}

fn older_link(query: &TransactionQuery, cursor: &str) -> String {
    let mut params = url_params();
    for (key, value) in [
        ("merchant", &query.merchant),
        ("status", &query.status),
        ("order_id", &query.order_id),
    ] {
        if let Some(value) = given(value) {
            params.append_pair(key, &value);
        }
    }
    params.append_pair("cursor", cursor);
    format!("{PATH}?{}", params.finish())
}

fn url_params() -> form_urlencoded::Serializer<'static, String> {
    form_urlencoded::Serializer::new(String::new())
}

fn status_badge(status: &str) -> Markup {
    let class = match status {
        "succeeded" => "badge ok",
        "failed" => "badge bad",
        _ => "badge warn",
    };
    html! { span class=(class) { (status) } }
}

fn row_markup(row: &TransactionRow) -> Markup {
    payment_row(&PaymentRow {
        payment_id: &row.payment_id.to_string(),
        initiated_at: row.initiated_at,
        merchant_order_id: &row.merchant_order_id,
        amount_paise: row.amount_paise,
        status: &row.status,
        commission_paise: row.commission_paise,
    })
}

/// What a row of the table shows.
struct PaymentRow<'a> {
    payment_id: &'a str,
    initiated_at: DateTime<Utc>,
    merchant_order_id: &'a str,
    amount_paise: i64,
    status: &'a str,
    commission_paise: Option<i64>,
}

/// The event name a row's status cell follows on the live stream: `status-<payment id>`.
fn status_event(payment_id: &str) -> String {
    format!("status-{payment_id}")
}

/// The id of a row's commission figure, which a live status change replaces out of band.
fn commission_id(payment_id: &str) -> String {
    format!("commission-{payment_id}")
}

fn commission(payment_id: &str, paise: Option<i64>, out_of_band: bool) -> Markup {
    html! {
        span id=(commission_id(payment_id)) hx-swap-oob=[out_of_band.then_some("true")] {
            @if let Some(c) = paise { (rupees(c)) } @else { "—" }
        }
    }
}

fn payment_row(row: &PaymentRow<'_>) -> Markup {
    html! {
        tr data-payment=(row.payment_id) {
            td { (time(row.initiated_at)) }
            td { a href={ (PATH) "/" (row.payment_id) } { (row.merchant_order_id) } }
            td.num { (rupees(row.amount_paise)) }
            td.status sse-swap=(status_event(row.payment_id)) hx-swap="innerHTML" { (status_badge(row.status)) }
            td.num { (commission(row.payment_id, row.commission_paise, false)) }
        }
    }
}

/// What the live stream sends for a payment: a new row for the top of the table when it is
/// initiated (event `payment`), and its new status for its row's status cell when the PSP
/// order exists, it succeeds (with its commission, replaced out of band) or it fails (event
/// `status-<payment id>`, which only that row follows). Refunds are not shown live.
pub(crate) fn live_row(payment: &PaymentItem) -> Option<(String, Markup)> {
    let id = payment.payment_id.as_str();
    let status = match &payment.change {
        PaymentChange::Initiated {
            amount,
            merchant_order_id,
            ..
        } => {
            let row = payment_row(&PaymentRow {
                payment_id: id,
                initiated_at: payment.at,
                merchant_order_id,
                amount_paise: amount.0,
                status: PaymentStatus::Created.as_str(),
                commission_paise: None,
            });
            return Some(("payment".to_owned(), row));
        }
        PaymentChange::PspOrderCreated { .. } => status_badge(PaymentStatus::Pending.as_str()),
        PaymentChange::Succeeded { commission: c, .. } => html! {
            (status_badge(PaymentStatus::Succeeded.as_str()))
            (commission(id, Some(c.0), true))
        },
        PaymentChange::Failed { .. } => status_badge(PaymentStatus::Failed.as_str()),
        _ => return None,
    };
    Some((status_event(id), status))
}

/// `GET /console/transactions/{id}`: the payment and every event of its stream.
pub async fn detail(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let payment_id: Uuid = id.parse().map_err(|_| Refusal::NotFound(lang))?;
    let stream = StreamId::of("payment", payment_id).map_err(|_| Refusal::NotFound(lang))?;
    let events = console
        .app
        .ledger
        .store()
        .read_stream(&stream, 0, MAX_EVENTS)
        .await
        .map_err(unavailable(lang))?;
    if events.is_empty() {
        return Err(Refusal::NotFound(lang));
    }
    let row = lightspeed_projections::transactions::get(console.app.pool(), payment_id)
        .await
        .map_err(unavailable(lang))?;
    let body = html! {
        @if let Some(row) = &row { (summary(lang, row)) }
        h2 { (lang.t(Msg::PaymentHistory)) }
        (history(lang, &events))
    };
    Ok(page(
        &viewer,
        PATH,
        &format!("{} {payment_id}", lang.t(Msg::Payment)),
        body,
    ))
}

fn summary(lang: Lang, row: &TransactionRow) -> Markup {
    html! {
        dl.facts {
            dt { (lang.t(Msg::OrderId)) } dd { (row.merchant_order_id) }
            dt { (lang.t(Msg::Merchant)) } dd { a href={ "/console/merchants/" (row.merchant_id) } { code { (row.merchant_id) } } }
            dt { (lang.t(Msg::Amount)) } dd { (rupees(row.amount_paise)) }
            dt { (lang.t(Msg::Status)) } dd { (status_badge(&row.status)) }
            dt { (lang.t(Msg::Gateways)) } dd { code { (row.gateway_id) } " (" (row.attempts) ")" }
            dt { (lang.t(Msg::Commission)) } dd { @if let Some(c) = row.commission_paise { (rupees(c)) } @else { "—" } }
        }
    }
}

fn history(lang: Lang, events: &[RecordedEvent]) -> Markup {
    html! {
        div.table-wrap { table #history {
            thead { tr {
                th.num scope="col" { "#" }
                th scope="col" { (lang.t(Msg::Time)) }
                th scope="col" { (lang.t(Msg::EventType)) }
                th scope="col" { (lang.t(Msg::Actor)) }
            } }
            tbody { @for event in events {
                tr {
                    td.num { (event.stream_version) }
                    td { (time(event.recorded_at)) }
                    td { code { (event.event_type) } }
                    td { (event.metadata.actor.as_deref().unwrap_or("—")) }
                }
            } }
        } }
    }
}
