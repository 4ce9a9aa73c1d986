//! Webhook deliveries to merchants: the list with filters, one delivery with its body and every
//! attempt, and resending a delivery that was given up on (the same `resend_delivery` the
//! webhook-deliveries API calls).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use lightspeed_domain::WebhookDeliveryId;
use lightspeed_domain::access::Action;
use lightspeed_projections::pagination::PageRequest;
use lightspeed_projections::webhooks::{AttemptRow, DeliveryFilter, DeliveryRow};
use lightspeed_workers::merchant_webhooks::{ResendError, resend_delivery};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::format::time;
use crate::i18n::{Lang, Msg};
use crate::layout::{message_page, page};
use crate::pages::sign_in::CsrfOnly;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/deliveries";
/// Rows per page.
const PER_PAGE: u32 = 50;
const STATUSES: [&str; 3] = ["pending", "delivered", "given_up"];

/// The list's filters and page.
#[derive(Debug, Default, Deserialize)]
pub struct DeliveryQuery {
    merchant: Option<String>,
    payment: Option<String>,
    status: Option<String>,
    page: Option<u32>,
    resent: Option<Uuid>,
}

fn given(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl DeliveryQuery {
    fn filter(&self) -> DeliveryFilter {
        DeliveryFilter {
            merchant_id: given(&self.merchant).and_then(|m| m.parse().ok()),
            payment_id: given(&self.payment).and_then(|p| p.parse().ok()),
            status: given(&self.status).filter(|s| STATUSES.contains(&s.as_str())),
        }
    }

    fn page_link(&self, page: u32) -> String {
        let filter = self.filter();
        let fields = [
            ("merchant", filter.merchant_id.map(|m| m.to_string())),
            ("payment", filter.payment_id.map(|p| p.to_string())),
            ("status", filter.status),
        ];
        crate::web::filtered_link(PATH, &fields, ("page", &page.to_string()))
    }
}

/// `GET /console/deliveries`.
pub async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    Query(query): Query<DeliveryQuery>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let request = PageRequest {
        page: query.page.unwrap_or(1).max(1),
        per_page: PER_PAGE,
    };
    let found =
        lightspeed_projections::webhooks::deliveries(console.app.pool(), &query.filter(), request)
            .await
            .map_err(unavailable(lang))?;
    let shown = i64::from(found.page) * i64::from(found.per_page);
    let body = html! {
        @if query.resent.is_some() { p.notice role="status" { (lang.t(Msg::Resent)) } }
        (filters(lang, &query))
        p.muted { (lang.t(Msg::DeliveriesCount)) ": " (found.total) }
        (table(&viewer, &found.items))
        p {
            @if found.page > 1 { a href=(query.page_link(found.page - 1)) { "← " (lang.t(Msg::Newer)) } " " }
            @if shown < found.total { a href=(query.page_link(found.page + 1)) { (lang.t(Msg::Older)) " →" } }
        }
    };
    Ok(page(&viewer, PATH, lang.t(Msg::Deliveries), body))
}

fn filters(lang: Lang, query: &DeliveryQuery) -> Markup {
    let filter = query.filter();
    html! {
        form.filters method="get" action=(PATH) role="search" {
            label { (lang.t(Msg::Merchant)) input name="merchant" value=[filter.merchant_id] size="36"; }
            label { (lang.t(Msg::Payment)) input name="payment" value=[filter.payment_id] size="36"; }
            label { (lang.t(Msg::Status))
                select name="status" {
                    option value="" { (lang.t(Msg::AnyStatus)) }
                    @for s in STATUSES { option value=(s) selected[filter.status.as_deref() == Some(s)] { (s) } }
                }
            }
            button type="submit" { (lang.t(Msg::Search)) }
        }
    }
}

fn status_badge(status: &str) -> Markup {
    let class = match status {
        "delivered" => "badge ok",
        "given_up" => "badge bad",
        _ => "badge warn",
    };
    html! { span class=(class) { (status) } }
}

fn table(viewer: &Viewer, rows: &[DeliveryRow]) -> Markup {
    let lang = viewer.lang;
    let resend = viewer.may(Action::Resend);
    html! {
        div.table-wrap { table #deliveries {
            thead { tr {
                th scope="col" { (lang.t(Msg::Queued)) }
                th scope="col" { (lang.t(Msg::EventType)) }
                th scope="col" { (lang.t(Msg::Endpoint)) }
                th scope="col" { (lang.t(Msg::Status)) }
                th.num scope="col" { (lang.t(Msg::Attempts)) }
                th scope="col" { (lang.t(Msg::LastError)) }
                @if resend { th scope="col" { (lang.t(Msg::Actions)) } }
            } }
            tbody { @for d in rows {
                tr data-delivery=(d.delivery_id) {
                    td { a href={ (PATH) "/" (d.delivery_id) } { (time(d.queued_at)) } }
                    td { code { (d.event_type) } }
                    td { (d.endpoint_url) }
                    td { (status_badge(&d.status)) }
                    td.num { (d.attempts) }
                    td { (last_error(d)) }
                    @if resend { td { @if d.status == "given_up" { (resend_form(viewer, d.delivery_id)) } } }
                }
            } }
        } }
    }
}

fn last_error(d: &DeliveryRow) -> Markup {
    html! {
        @if let Some(code) = d.last_status_code { "HTTP " (code) " " }
        (d.last_error.as_deref().unwrap_or(""))
    }
}

fn resend_form(viewer: &Viewer, id: Uuid) -> Markup {
    let lang = viewer.lang;
    html! {
        form.inline method="post" action={ (PATH) "/" (id) "/resend" } {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            button.secondary type="submit" { (lang.t(Msg::Resend)) }
        }
    }
}

/// `GET /console/deliveries/{id}`: the delivery, its body and every attempt.
pub async fn detail(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let id: Uuid = id.parse().map_err(|_| Refusal::NotFound(lang))?;
    let pool = console.app.pool();
    let delivery = lightspeed_projections::webhooks::delivery(pool, id)
        .await
        .map_err(unavailable(lang))?
        .ok_or(Refusal::NotFound(lang))?;
    let attempts = lightspeed_projections::webhooks::attempts(pool, id)
        .await
        .map_err(unavailable(lang))?;
    let body = html! {
        dl.facts {
            dt { (lang.t(Msg::Merchant)) } dd { a href={ "/console/merchants/" (delivery.merchant_id) } { code { (delivery.merchant_id) } } }
            dt { (lang.t(Msg::Payment)) } dd { @if let Some(p) = delivery.payment_id { a href={ "/console/transactions/" (p) } { code { (p) } } } @else { (lang.t(Msg::TestEvent)) } }
            dt { (lang.t(Msg::EventType)) } dd { code { (delivery.event_type) } }
            dt { (lang.t(Msg::Endpoint)) } dd { (delivery.endpoint_url) }
            dt { (lang.t(Msg::Status)) } dd { (status_badge(&delivery.status)) }
            dt { (lang.t(Msg::Queued)) } dd { (time(delivery.queued_at)) }
        }
        @if viewer.may(Action::Resend) && delivery.status == "given_up" { p { (resend_form(&viewer, id)) } }
        h2 { (lang.t(Msg::Attempts)) }
        (attempts_table(lang, &attempts))
        h2 { (lang.t(Msg::Body)) }
        pre.mono { (serde_json::to_string_pretty(&delivery.payload).unwrap_or_default()) }
    };
    Ok(page(
        &viewer,
        PATH,
        &format!("{} {id}", lang.t(Msg::Deliveries)),
        body,
    ))
}

fn attempts_table(lang: Lang, attempts: &[AttemptRow]) -> Markup {
    html! {
        @if attempts.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
        @else {
            div.table-wrap { table #attempts {
                thead { tr {
                    th.num scope="col" { "#" }
                    th scope="col" { (lang.t(Msg::Time)) }
                    th scope="col" { (lang.t(Msg::Outcome)) }
                    th.num scope="col" { "ms" }
                    th scope="col" { (lang.t(Msg::Response)) }
                } }
                tbody { @for a in attempts { tr {
                    td.num { (a.attempt) }
                    td { (time(a.attempted_at)) }
                    td { @if let Some(code) = a.status_code { "HTTP " (code) } @else { (a.error.as_deref().unwrap_or("—")) } }
                    td.num { (a.duration_ms) }
                    td { code { (a.response_excerpt.as_deref().unwrap_or("")) } }
                } } }
            } }
        }
    }
}

/// `POST /console/deliveries/{id}/resend`: sends a given-up delivery again from its first
/// attempt.
pub async fn resend(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Refusal> {
    let lang = viewer.lang;
    viewer.authorize(Action::Resend, &form.csrf)?;
    let id: Uuid = id.parse().map_err(|_| Refusal::NotFound(lang))?;
    match resend_delivery(
        &console.app.ledger,
        WebhookDeliveryId(id),
        &viewer.context(),
    )
    .await
    {
        Ok(_) => {
            tracing::info!(delivery_id = %id, person = %viewer.session.email, "webhook delivery resent");
            Ok(Redirect::to(&format!("{PATH}?resent={id}")).into_response())
        }
        Err(ResendError::UnknownDelivery(_)) => Err(Refusal::NotFound(lang)),
        Err(ResendError::NotGivenUp { .. }) => {
            Ok((StatusCode::CONFLICT, message_page(lang, Msg::NotResendable)).into_response())
        }
        Err(ResendError::Store(why)) => Err(Refusal::Unavailable(lang, why)),
    }
}

#[cfg(test)]
mod tests {
    use lightspeed_domain::access::Role;

    use super::*;
    use crate::pages::queues::tests::viewer;

    fn given_up() -> DeliveryRow {
        let at = chrono::Utc::now();
        DeliveryRow {
            delivery_id: Uuid::nil(),
            merchant_id: Uuid::nil(),
            payment_id: None,
            event_type: "payment.succeeded".into(),
            payload: serde_json::json!({}),
            endpoint_url: "https://shop.example/hooks".into(),
            endpoint_id: Uuid::nil(),
            status: "given_up".into(),
            attempts: 8,
            next_attempt_at: None,
            last_status_code: Some(500),
            last_error: None,
            queued_at: at,
            delivered_at: None,
            given_up_at: Some(at),
            updated_at: at,
        }
    }

    #[test]
    fn only_people_who_resend_see_the_resend_button() {
        let rows = [given_up()];
        let ops = table(&viewer(Role::Ops), &rows).into_string();
        assert!(ops.contains("/resend"), "{ops}");
        let auditor = table(&viewer(Role::Auditor), &rows).into_string();
        assert!(
            !auditor.contains("<form") && auditor.contains("HTTP 500"),
            "{auditor}"
        );
    }
}
