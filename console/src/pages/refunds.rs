//! Refunds: the list with filters (merchant, payment, status), newest request first, and one
//! refund's page, read from the refunds read model as `GET /admin/refunds` reads it.

use axum::extract::{Path, Query, State};
use lightspeed_projections::refunds::{RefundRow, RefundSearch};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::format::{rupees, time};
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/refunds";
/// Rows per step.
const PER_STEP: u32 = 50;
const STATUSES: [&str; 4] = ["requested", "submitted", "succeeded", "failed"];

/// The list's filters and cursor.
#[derive(Debug, Default, Deserialize)]
pub struct RefundQuery {
    merchant: Option<String>,
    payment: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

fn given(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl RefundQuery {
    fn search(&self) -> RefundSearch {
        RefundSearch {
            merchant_id: given(&self.merchant).and_then(|m| m.parse().ok()),
            payment_id: given(&self.payment).and_then(|p| p.parse().ok()),
            status: given(&self.status).filter(|s| STATUSES.contains(&s.as_str())),
            limit: PER_STEP,
            ..RefundSearch::default()
        }
    }

    fn older_link(&self, cursor: &str) -> String {
        let search = self.search();
        let fields = [
            ("merchant", search.merchant_id.map(|m| m.to_string())),
            ("payment", search.payment_id.map(|p| p.to_string())),
            ("status", search.status),
        ];
        crate::web::filtered_link(PATH, &fields, ("cursor", cursor))
    }
}

/// `GET /console/refunds`.
pub async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    Query(query): Query<RefundQuery>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let cursor = given(&query.cursor);
    let step = lightspeed_projections::refunds::search(
        console.app.pool(),
        &query.search(),
        cursor.as_deref(),
    )
    .await
    .map_err(unavailable(lang))?;
    let body = html! {
        (filters(lang, &query))
        @if step.items.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
        @else {
            div.table-wrap { table #refunds {
                thead { tr {
                    th scope="col" { (lang.t(Msg::Requested)) }
                    th scope="col" { (lang.t(Msg::Refund)) }
                    th scope="col" { (lang.t(Msg::Payment)) }
                    th.num scope="col" { (lang.t(Msg::Amount)) }
                    th scope="col" { (lang.t(Msg::Status)) }
                    th.num scope="col" { (lang.t(Msg::CommissionReversed)) }
                } }
                tbody { @for r in &step.items { (row(r)) } }
            } }
        }
        @if let Some(next) = &step.next_cursor { p { a href=(query.older_link(next)) { (lang.t(Msg::Older)) " →" } } }
    };
    Ok(page(&viewer, PATH, lang.t(Msg::Refunds), body))
}

fn filters(lang: Lang, query: &RefundQuery) -> Markup {
    let search = query.search();
    html! {
        form.filters method="get" action=(PATH) role="search" {
            label { (lang.t(Msg::Merchant)) input name="merchant" value=[search.merchant_id] size="36"; }
            label { (lang.t(Msg::Payment)) input name="payment" value=[search.payment_id] size="36"; }
            label { (lang.t(Msg::Status))
                select name="status" {
                    option value="" { (lang.t(Msg::AnyStatus)) }
                    @for s in STATUSES { option value=(s) selected[search.status.as_deref() == Some(s)] { (s) } }
                }
            }
            button type="submit" { (lang.t(Msg::Search)) }
        }
    }
}

fn status_badge(status: &str) -> Markup {
    let class = match status {
        "succeeded" => "badge ok",
        "failed" => "badge bad",
        _ => "badge warn",
    };
    html! { span class=(class) { (status) } }
}

fn link(r: &RefundRow) -> String {
    format!("{PATH}/{}", encode(&r.refund_key))
}

/// A refund key in a path segment (a PSP's refund id may hold any character).
fn encode(key: &str) -> String {
    form_urlencoded::byte_serialize(key.as_bytes()).collect()
}

fn row(r: &RefundRow) -> Markup {
    html! {
        tr {
            td { (time(r.requested_at)) }
            td { a href=(link(r)) { code { (r.merchant_refund_id.as_deref().unwrap_or(&r.refund_key)) } } }
            td { a href={ "/console/transactions/" (r.payment_id) } { code { (short(r.payment_id)) } } }
            td.num { (rupees(r.amount_paise)) }
            td { (status_badge(&r.status)) }
            td.num { (rupees(r.commission_reversed_paise)) }
        }
    }
}

fn short(id: Uuid) -> String {
    id.to_string().chars().take(8).collect()
}

/// `GET /console/refunds/{key}`: one refund.
pub async fn detail(
    State(console): State<Console>,
    viewer: Viewer,
    Path(key): Path<String>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let r = lightspeed_projections::refunds::get(console.app.pool(), &key)
        .await
        .map_err(unavailable(lang))?
        .ok_or(Refusal::NotFound(lang))?;
    let body = html! {
        dl.facts {
            dt { (lang.t(Msg::Refund)) } dd { code { (r.refund_key) } }
            dt { (lang.t(Msg::MerchantRefundId)) } dd { (r.merchant_refund_id.as_deref().unwrap_or("—")) }
            dt { (lang.t(Msg::Merchant)) } dd { a href={ "/console/merchants/" (r.merchant_id) } { code { (r.merchant_id) } } }
            dt { (lang.t(Msg::Payment)) } dd { a href={ "/console/transactions/" (r.payment_id) } { code { (r.payment_id) } } }
            dt { (lang.t(Msg::Amount)) } dd { (rupees(r.amount_paise)) }
            dt { (lang.t(Msg::Status)) } dd { (status_badge(&r.status)) }
            dt { (lang.t(Msg::PspRefundId)) } dd { (r.psp_refund_id.as_deref().unwrap_or("—")) }
            dt { (lang.t(Msg::FailureReason)) } dd { (r.failure_code.as_deref().unwrap_or("")) " " (r.failure_reason.as_deref().unwrap_or("—")) }
            dt { (lang.t(Msg::CommissionTreatment)) } dd { code { (r.commission_treatment) } }
            dt { (lang.t(Msg::CommissionReversed)) } dd { (rupees(r.commission_reversed_paise)) }
            dt { (lang.t(Msg::Reason)) } dd { (r.reason) }
            dt { (lang.t(Msg::Requested)) } dd { (time(r.requested_at)) }
            dt { (lang.t(Msg::Updated)) } dd { (time(r.updated_at)) }
        }
    };
    Ok(page(
        &viewer,
        PATH,
        &format!("{} {}", lang.t(Msg::Refund), r.refund_key),
        body,
    ))
}
