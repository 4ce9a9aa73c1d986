//! WhatsApp: the log of notifications with filters and search, resending one the sender gave
//! up on (as `POST /admin/whatsapp/{id}/resend`), and a merchant's usage over the last 30 IST
//! days (as `GET /merchant/whatsapp/usage` reads it).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use lightspeed_domain::NotificationId;
use lightspeed_domain::access::Action;
use lightspeed_domain::calendar::IST;
use lightspeed_projections::pagination::PageRequest;
use lightspeed_projections::whatsapp::{WhatsappFilter, WhatsappMessage, WhatsappUsageDay};
use lightspeed_services::ServiceError;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::format::time;
use crate::i18n::{Lang, Msg};
use crate::layout::{message_page, page};
use crate::pages::sign_in::CsrfOnly;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/whatsapp";
/// Rows per page.
const PER_PAGE: u32 = 50;
/// IST days of usage shown.
const USAGE_DAYS: u32 = lightspeed_api::merchant_reads::USAGE_DAYS;
const STATUSES: [&str; 3] = ["queued", "sent", "failed"];

/// The log's filters and page.
#[derive(Debug, Default, Deserialize)]
pub struct WhatsappQuery {
    merchant: Option<String>,
    status: Option<String>,
    template: Option<String>,
    q: Option<String>,
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

impl WhatsappQuery {
    fn filter(&self) -> WhatsappFilter {
        WhatsappFilter {
            merchant_id: self.merchant_id(),
            status: given(&self.status).filter(|s| STATUSES.contains(&s.as_str())),
            template: given(&self.template),
            q: given(&self.q),
        }
    }

    fn merchant_id(&self) -> Option<Uuid> {
        given(&self.merchant).and_then(|m| m.parse().ok())
    }

    fn page_link(&self, page: u32) -> String {
        let filter = self.filter();
        let fields = [
            ("merchant", filter.merchant_id.map(|m| m.to_string())),
            ("status", filter.status),
            ("template", filter.template),
            ("q", filter.q),
        ];
        crate::web::filtered_link(PATH, &fields, ("page", &page.to_string()))
    }
}

/// `GET /console/whatsapp`.
pub async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    Query(query): Query<WhatsappQuery>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let request = PageRequest {
        page: query.page.unwrap_or(1).max(1),
        per_page: PER_PAGE,
    };
    let log = lightspeed_projections::whatsapp::log(console.app.pool(), &query.filter(), request)
        .await
        .map_err(unavailable(lang))?;
    let usage = match query.merchant_id() {
        Some(merchant) => Some(usage(&console, lang, merchant).await?),
        None => None,
    };
    let shown = i64::from(log.page) * i64::from(log.per_page);
    let body = html! {
        @if query.resent.is_some() { p.notice role="status" { (lang.t(Msg::Resent)) } }
        (filters(lang, &query))
        p.muted { (lang.t(Msg::Messages)) ": " (log.total) }
        (log_table(&viewer, &log.items))
        p {
            @if log.page > 1 { a href=(query.page_link(log.page - 1)) { "← " (lang.t(Msg::Newer)) } " " }
            @if shown < log.total { a href=(query.page_link(log.page + 1)) { (lang.t(Msg::Older)) " →" } }
        }
        section.card.wide aria-labelledby="usage-title" {
            h2 #usage-title { (lang.t(Msg::WhatsappUsage)) }
            @match &usage {
                Some(days) => (usage_table(lang, days)),
                None => p.muted { (lang.t(Msg::ChooseMerchantForUsage)) },
            }
        }
    };
    Ok(page(&viewer, PATH, lang.t(Msg::Whatsapp), body))
}

async fn usage(
    console: &Console,
    lang: Lang,
    merchant: Uuid,
) -> Result<Vec<WhatsappUsageDay>, Refusal> {
    let today = console.app.ledger.now().with_timezone(&IST).date_naive();
    lightspeed_projections::whatsapp::usage(console.app.pool(), merchant, USAGE_DAYS, today)
        .await
        .map_err(unavailable(lang))
}

fn filters(lang: Lang, query: &WhatsappQuery) -> Markup {
    let filter = query.filter();
    html! {
        form.filters method="get" action=(PATH) role="search" {
            label { (lang.t(Msg::Merchant)) input name="merchant" value=[filter.merchant_id] size="36"; }
            label { (lang.t(Msg::Status))
                select name="status" {
                    option value="" { (lang.t(Msg::AnyStatus)) }
                    @for s in STATUSES { option value=(s) selected[filter.status.as_deref() == Some(s)] { (s) } }
                }
            }
            label { (lang.t(Msg::Template)) input name="template" value=[filter.template]; }
            label { (lang.t(Msg::Contains)) input type="search" name="q" value=[filter.q]; }
            button type="submit" { (lang.t(Msg::Search)) }
        }
    }
}

fn status_badge(status: &str) -> Markup {
    let class = match status {
        "sent" => "badge ok",
        "failed" => "badge bad",
        _ => "badge warn",
    };
    html! { span class=(class) { (status) } }
}

fn log_table(viewer: &Viewer, messages: &[WhatsappMessage]) -> Markup {
    let lang = viewer.lang;
    let resend = viewer.may(Action::Resend);
    html! {
        div.table-wrap { table #whatsapp-log {
            thead { tr {
                th scope="col" { (lang.t(Msg::Queued)) }
                th scope="col" { (lang.t(Msg::Merchant)) }
                th scope="col" { (lang.t(Msg::Template)) }
                th scope="col" { (lang.t(Msg::Recipient)) }
                th scope="col" { (lang.t(Msg::Status)) }
                th.num scope="col" { (lang.t(Msg::Attempts)) }
                th scope="col" { (lang.t(Msg::LastError)) }
                @if resend { th scope="col" { (lang.t(Msg::Actions)) } }
            } }
            tbody { @for m in messages {
                tr data-notification=(m.notification_id) {
                    td { (time(m.queued_at)) }
                    td { a href={ "/console/merchants/" (m.merchant_id) } { code { (short(m.merchant_id)) } } }
                    td { code { (m.template) } }
                    td { (m.recipient) }
                    td { (status_badge(&m.status)) }
                    td.num { (m.attempts) " / " (m.attempt_limit) }
                    td { (m.last_error_message.as_deref().unwrap_or("—")) }
                    @if resend { td { @if m.status == "failed" { (resend_form(viewer, m.notification_id)) } } }
                }
            } }
        } }
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

fn usage_table(lang: Lang, days: &[WhatsappUsageDay]) -> Markup {
    html! {
        @if days.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
        @else {
            table {
                thead { tr {
                    th scope="col" { (lang.t(Msg::Day)) }
                    th scope="col" { (lang.t(Msg::Template)) }
                    th.num scope="col" { (lang.t(Msg::Queued)) }
                    th.num scope="col" { (lang.t(Msg::Sent)) }
                    th.num scope="col" { (lang.t(Msg::Failed)) }
                } }
                tbody { @for d in days { tr {
                    td { (d.day.format("%d %b %Y")) }
                    td { code { (d.template) } }
                    td.num { (d.queued) } td.num { (d.sent) } td.num { (d.failed) }
                } } }
            }
        }
    }
}

fn short(id: Uuid) -> String {
    id.to_string().chars().take(8).collect()
}

/// `POST /console/whatsapp/{id}/resend`: queues a failed notification again with a fresh
/// budget of attempts.
pub async fn resend(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Refusal> {
    let lang = viewer.lang;
    viewer.authorize(Action::Resend, &form.csrf)?;
    let id: Uuid = id.parse().map_err(|_| Refusal::NotFound(lang))?;
    let resent = console
        .app
        .ledger
        .resend_notification(NotificationId(id), &viewer.context())
        .await;
    match resent {
        Ok(_) => {
            tracing::info!(notification_id = %id, person = %viewer.session.email, "WhatsApp notification resent");
            Ok(Redirect::to(&format!("{PATH}?resent={id}")).into_response())
        }
        Err(ServiceError::UnknownNotification(_)) => Err(Refusal::NotFound(lang)),
        Err(ServiceError::Notification(_)) => {
            Ok((StatusCode::CONFLICT, message_page(lang, Msg::NotResendable)).into_response())
        }
        Err(other) => Err(Refusal::Unavailable(lang, other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use lightspeed_domain::access::Role;

    use super::*;
    use crate::pages::queues::tests::viewer;

    fn failed_message() -> WhatsappMessage {
        let at = chrono::Utc::now();
        WhatsappMessage {
            notification_id: Uuid::nil(),
            merchant_id: Uuid::nil(),
            notification_type: "TXN_UPDATE".into(),
            template: "txn_update".into(),
            recipient: "919867800451".into(),
            payload: serde_json::json!(["ORD-1"]),
            status: "failed".into(),
            attempts: 1,
            attempt_limit: 4,
            last_error_code: Some("131026".into()),
            last_error_message: Some("Message undeliverable".into()),
            provider_message_id: None,
            next_attempt_at: None,
            queued_at: at,
            sent_at: None,
            failed_at: Some(at),
            updated_at: at,
        }
    }

    #[test]
    fn only_people_who_resend_see_the_resend_button() {
        let rows = [failed_message()];
        let ops = log_table(&viewer(Role::Ops), &rows).into_string();
        assert!(ops.contains("/resend"), "{ops}");
        let auditor = log_table(&viewer(Role::Auditor), &rows).into_string();
        assert!(
            !auditor.contains("<form") && !auditor.contains("<button"),
            "{auditor}"
        );
        assert!(auditor.contains("Message undeliverable"), "{auditor}");
    }
}
