//! WhatsApp: the log of notifications with filters and search, resending one the sender gave
//! up on (as `POST /admin/whatsapp/{id}/resend`), usage across every merchant over today, this
//! IST month or chosen IST days, and a merchant's usage over the last 30 IST days (as
//! `GET /merchant/whatsapp/usage` reads it).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Datelike, NaiveDate};
use lightspeed_domain::NotificationId;
use lightspeed_domain::access::Action;
use lightspeed_domain::calendar::IST;
use lightspeed_projections::pagination::PageRequest;
use lightspeed_projections::whatsapp::{
    WhatsappCounts, WhatsappFilter, WhatsappMessage, WhatsappUsageDay, WhatsappUsageSummary,
};
use lightspeed_services::ServiceError;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::format::{indian_grouping, percent_bps, time};
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
/// Merchants listed in the usage across merchants.
const TOP_MERCHANTS: u32 = 10;

/// The log's filters and page.
#[derive(Debug, Default, Deserialize)]
pub struct WhatsappQuery {
    merchant: Option<String>,
    status: Option<String>,
    template: Option<String>,
    q: Option<String>,
    page: Option<u32>,
    resent: Option<Uuid>,
    /// `today`, `month` or `days` (then `from` and `to`, IST days).
    usage: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// The period of the usage across merchants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UsagePeriod {
    Today,
    Month,
    Days,
}

impl UsagePeriod {
    const ALL: [UsagePeriod; 3] = [UsagePeriod::Today, UsagePeriod::Month, UsagePeriod::Days];

    fn code(self) -> &'static str {
        match self {
            UsagePeriod::Today => "today",
            UsagePeriod::Month => "month",
            UsagePeriod::Days => "days",
        }
    }

    fn label(self) -> Msg {
        match self {
            UsagePeriod::Today => Msg::Today,
            UsagePeriod::Month => Msg::ThisMonth,
            UsagePeriod::Days => Msg::ChosenDays,
        }
    }
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

    fn usage_period(&self) -> UsagePeriod {
        let code = given(&self.usage);
        UsagePeriod::ALL
            .into_iter()
            .find(|p| Some(p.code()) == code.as_deref())
            .unwrap_or(UsagePeriod::Today)
    }

    fn day(field: &Option<String>) -> Option<NaiveDate> {
        given(field).and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
    }

    /// The IST days the usage covers, first and last; none for chosen days missing or out of
    /// order.
    fn usage_days(&self, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        match self.usage_period() {
            UsagePeriod::Today => Some((today, today)),
            UsagePeriod::Month => Some((today.with_day(1)?, today)),
            UsagePeriod::Days => {
                let (from, to) = (Self::day(&self.from)?, Self::day(&self.to)?);
                let days = (to - from).num_days() + 1;
                (1..=i64::from(lightspeed_projections::whatsapp::MAX_USAGE_DAYS))
                    .contains(&days)
                    .then_some((from, to))
            }
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
    let today = console.app.ledger.now().with_timezone(&IST).date_naive();
    let filter = query.filter();
    // Three independent reads, read at once.
    let (log, usage, across) = tokio::try_join!(
        async {
            lightspeed_projections::whatsapp::log_step(console.app.pool(), &filter, request)
                .await
                .map_err(unavailable(lang))
        },
        async {
            match query.merchant_id() {
                Some(merchant) => Ok(Some(usage(&console, lang, merchant, today).await?)),
                None => Ok(None),
            }
        },
        async {
            match query.usage_days(today) {
                Some((from, to)) => lightspeed_projections::whatsapp::usage_summary(
                    console.app.pool(),
                    from,
                    to,
                    TOP_MERCHANTS,
                )
                .await
                .map(Some)
                .map_err(unavailable(lang)),
                None => Ok(None),
            }
        },
    )?;
    let body = html! {
        @if query.resent.is_some() { p.notice role="status" { (lang.t(Msg::Resent)) } }
        (filters(lang, &query))
        (log_table(&viewer, &log.items))
        p {
            @if request.page > 1 { a href=(query.page_link(request.page - 1)) { "← " (lang.t(Msg::Newer)) } " " }
            @if log.more { a href=(query.page_link(request.page + 1)) { (lang.t(Msg::Older)) " →" } }
        }
        section.card.wide #usage-across aria-labelledby="usage-across-title" {
            h2 #usage-across-title { (lang.t(Msg::UsageAcrossMerchants)) }
            (usage_period_form(lang, &query, today))
            @match &across {
                Some(summary) => (usage_across(lang, summary)),
                None => p.notice role="alert" { (lang.t(Msg::UsageDaysInvalid)) },
            }
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
    today: NaiveDate,
) -> Result<Vec<WhatsappUsageDay>, Refusal> {
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

fn usage_period_form(lang: Lang, query: &WhatsappQuery, today: NaiveDate) -> Markup {
    let period = query.usage_period();
    let from = WhatsappQuery::day(&query.from).unwrap_or(today);
    let to = WhatsappQuery::day(&query.to).unwrap_or(today);
    html! {
        form.filters #usage-period method="get" action=(PATH) {
            @if let Some(merchant) = query.merchant_id() { input type="hidden" name="merchant" value=(merchant); }
            label { (lang.t(Msg::Period))
                select name="usage" {
                    @for p in UsagePeriod::ALL { option value=(p.code()) selected[p == period] { (lang.t(p.label())) } }
                }
            }
            label { (lang.t(Msg::FromDay)) input type="date" name="from" value=(from); }
            label { (lang.t(Msg::ToDay)) input type="date" name="to" value=(to); }
            button type="submit" { (lang.t(Msg::Show)) }
        }
    }
}

fn usage_across(lang: Lang, summary: &WhatsappUsageSummary) -> Markup {
    let templates = summary
        .by_template
        .iter()
        .map(|(t, c)| (html! { code { (t) } }, c));
    let merchants = summary.top_merchants.iter().map(|m| {
        let name = html! {
            a href={ "/console/merchants/" (m.merchant_id) } {
                @match &m.company_name { Some(name) => (name), None => code { (short(m.merchant_id)) } }
            }
        };
        (name, &m.counts)
    });
    let types = summary
        .by_type
        .iter()
        .map(|t| (html! { code { (t.notification_type) } }, &t.counts));
    html! {
        dl.figures #usage-totals {
            div { dt { (lang.t(Msg::Queued)) } dd data-figure="queued" { (count(summary.totals.queued)) } }
            div { dt { (lang.t(Msg::Sent)) } dd data-figure="sent" { (count(summary.totals.sent)) } }
            div { dt { (lang.t(Msg::Failed)) } dd data-figure="failed" { (count(summary.totals.failed)) } }
            div { dt { (lang.t(Msg::FailureRate)) } dd data-figure="failure-rate" { (failure_rate(&summary.totals)) } }
        }
        h3 { (lang.t(Msg::UsageByTemplate)) }
        (counts_table(lang, "usage-by-template", Msg::Template, templates))
        h3 { (lang.t(Msg::TopMerchants)) }
        (counts_table(lang, "usage-by-merchant", Msg::Merchant, merchants))
        h3 { (lang.t(Msg::UsageByType)) }
        (counts_table(lang, "usage-by-type", Msg::NotificationType, types))
    }
}

fn count(n: i64) -> String {
    indian_grouping(n.unsigned_abs())
}

fn failure_rate(counts: &WhatsappCounts) -> String {
    counts
        .failure_basis_points()
        .map_or_else(|| "—".to_owned(), percent_bps)
}

fn counts_table<'a>(
    lang: Lang,
    id: &str,
    first: Msg,
    rows: impl Iterator<Item = (Markup, &'a WhatsappCounts)>,
) -> Markup {
    let rows: Vec<_> = rows.collect();
    html! {
        @if rows.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
        @else {
            div.table-wrap { table id=(id) {
                thead { tr {
                    th scope="col" { (lang.t(first)) }
                    th.num scope="col" { (lang.t(Msg::Queued)) }
                    th.num scope="col" { (lang.t(Msg::Sent)) }
                    th.num scope="col" { (lang.t(Msg::Failed)) }
                    th.num scope="col" { (lang.t(Msg::FailureRate)) }
                } }
                tbody { @for (name, c) in rows { tr {
                    th scope="row" { (name) }
                    td.num { (count(c.queued)) } td.num { (count(c.sent)) } td.num { (count(c.failed)) }
                    td.num { (failure_rate(c)) }
                } } }
            } }
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
