//! Gateways, per merchant: list with health, toggle, priority order, monthly usage against the
//! limit, requests in the last two minutes, the count-down of a rest after failures, and a
//! connection test. Changes go through the same `Ledger` calls as `/admin/gateways`.

use std::collections::HashMap;
use std::time::Instant;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::psp::{PspAccount, PspClient};
use lightspeed_domain::GatewayId;
use lightspeed_domain::access::Action;
use lightspeed_domain::gateway::GatewayCommand;
use lightspeed_projections::gateways::{GatewayFilter, GatewayHealth};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::format::{rupees, time};
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::live::{LivePage, live_reset};
use crate::pages::sign_in::CsrfOnly;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/gateways";
/// The form field prefix of a gateway's priority: `priority-<gateway id>`.
const PRIORITY_FIELD: &str = "priority-";

/// The list's filter.
#[derive(Debug, Default, Deserialize)]
pub struct GatewayQuery {
    /// Only this merchant's gateways.
    merchant: Option<Uuid>,
}

/// `GET /console/gateways[?merchant=<id>]`.
pub async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    Query(query): Query<GatewayQuery>,
) -> Result<Markup, Refusal> {
    render(&console, &viewer, query.merchant, None).await
}

async fn render(
    console: &Console,
    viewer: &Viewer,
    merchant: Option<Uuid>,
    notice: Option<Markup>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let filter = GatewayFilter {
        merchant_id: merchant,
        ..GatewayFilter::default()
    };
    let now = console.app.ledger.now();
    let live = LivePage::Gateways.stream_url(&console.hub);
    let gateways = lightspeed_projections::gateways::health(console.app.pool(), &filter, now)
        .await
        .map_err(unavailable(lang))?;
    let body = html! {
        @if let Some(notice) = notice { (notice) }
        section.live-changes hx-ext="sse" sse-connect=(live) aria-labelledby="health-changes" {
            h2 #health-changes { (lang.t(Msg::HealthChanges)) }
            (live_reset())
            ul.live-list sse-swap="gateway_health" hx-swap="afterbegin" {}
            p.muted.none-yet { (lang.t(Msg::NoneYet)) }
        }
        (table(viewer, &gateways, now))
        @if viewer.may(Action::ManageGateways) && !gateways.is_empty() {
            form #priorities method="post" action={ (PATH) "/priorities" } {
                input type="hidden" name="csrf" value=(viewer.session.csrf);
                p { button type="submit" { (lang.t(Msg::SavePriorities)) } }
            }
        }
    };
    Ok(page(viewer, PATH, lang.t(Msg::Gateways), body))
}

fn table(viewer: &Viewer, gateways: &[GatewayHealth], now: DateTime<Utc>) -> Markup {
    let lang = viewer.lang;
    html! {
        div.table-wrap { table #gateways {
            thead { tr {
                th scope="col" { (lang.t(Msg::Merchant)) }
                th scope="col" { (lang.t(Msg::Label)) }
                th scope="col" { (lang.t(Msg::Provider)) }
                th scope="col" { (lang.t(Msg::Status)) }
                th.num scope="col" { (lang.t(Msg::Priority)) }
                th.num scope="col" { (lang.t(Msg::MonthlyUsage)) }
                th.num scope="col" { (lang.t(Msg::RequestsPerMinute)) }
                th scope="col" { (lang.t(Msg::Resting)) }
                @if viewer.may(Action::ManageGateways) { th scope="col" { (lang.t(Msg::Actions)) } }
            } }
            tbody { @for health in gateways { (row(viewer, health, now)) } }
        } }
    }
}

fn row(viewer: &Viewer, health: &GatewayHealth, now: DateTime<Utc>) -> Markup {
    let lang = viewer.lang;
    let g = &health.gateway;
    let manage = viewer.may(Action::ManageGateways);
    html! {
        tr data-gateway=(g.gateway_id) {
            td { a href={ "/console/merchants/" (g.merchant_id) } { code { (short(g.merchant_id)) } } }
            td { (g.label) }
            td { (g.provider) }
            td { @if g.enabled { span.badge.ok { (lang.t(Msg::Enabled)) } } @else { span.badge.bad { (lang.t(Msg::Disabled)) } } }
            td.num {
                @if manage {
                    input.priority form="priorities" type="number" min="0" max="65535" name={ (PRIORITY_FIELD) (g.gateway_id) }
                        value=(g.priority) aria-label={ (lang.t(Msg::Priority)) " " (g.label) };
                } @else { (g.priority) }
            }
            td.num { (rupees(health.this_month_volume_paise)) " / " @match g.monthly_limit_paise { Some(limit) => (rupees(limit)), None => (lang.t(Msg::NoLimit)) } }
            td.num { (health.requests_last_two_minutes) }
            td { (rest(lang, health, now)) }
            @if manage { td { (actions(viewer, health)) } }
        }
    }
}

/// The rest after failures: until when, and how many minutes are left.
fn rest(lang: Lang, health: &GatewayHealth, now: DateTime<Utc>) -> Markup {
    match health.gateway.temporarily_failed_until {
        Some(until) if health.temporarily_failed => {
            let left = (until - now).num_seconds().max(0);
            html! {
                span.badge.warn { (left / 60) "m " (left % 60) "s" }
                " " (lang.t(Msg::Until)) " " (time(until))
            }
        }
        _ => html! { "—" },
    }
}

fn actions(viewer: &Viewer, health: &GatewayHealth) -> Markup {
    let lang = viewer.lang;
    let g = &health.gateway;
    let post = |action: &str| format!("{PATH}/{}/{action}", g.gateway_id);
    html! {
        form.inline method="post" action=(post("toggle")) {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            input type="hidden" name="enabled" value=(!g.enabled);
            button.secondary type="submit" aria-label={ (toggle_label(lang, g.enabled)) " " (g.label) } { (toggle_label(lang, g.enabled)) }
        }
        " "
        @if health.temporarily_failed {
            form.inline method="post" action=(post("recover")) {
                input type="hidden" name="csrf" value=(viewer.session.csrf);
                button.secondary type="submit" { (lang.t(Msg::Recover)) }
            }
            " "
        }
        form.inline method="post" action=(post("test")) {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            button.secondary type="submit" aria-label={ (lang.t(Msg::TestConnection)) " " (g.label) } { (lang.t(Msg::TestConnection)) }
        }
    }
}

fn toggle_label(lang: Lang, enabled: bool) -> &'static str {
    lang.t(if enabled { Msg::Disable } else { Msg::Enable })
}

fn short(id: Uuid) -> String {
    id.to_string().chars().take(8).collect()
}

fn gateway_id(lang: Lang, id: &str) -> Result<GatewayId, Refusal> {
    id.parse().map_err(|_| Refusal::NotFound(lang))
}

/// The toggle form.
#[derive(Debug, Deserialize)]
pub struct ToggleForm {
    #[serde(default)]
    csrf: String,
    enabled: bool,
}

/// `POST /console/gateways/{id}/toggle`.
pub async fn toggle(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<ToggleForm>,
) -> Result<Response, Refusal> {
    viewer.authorize(Action::ManageGateways, &form.csrf)?;
    let command = GatewayCommand::Toggle {
        enabled: form.enabled,
        at: console.app.ledger.now(),
    };
    change(&console, &viewer, gateway_id(viewer.lang, &id)?, command).await
}

/// `POST /console/gateways/{id}/recover`: ends a rest after failures.
pub async fn recover(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Refusal> {
    viewer.authorize(Action::ManageGateways, &form.csrf)?;
    let command = GatewayCommand::ClearTemporaryFailure {
        at: console.app.ledger.now(),
    };
    change(&console, &viewer, gateway_id(viewer.lang, &id)?, command).await
}

async fn change(
    console: &Console,
    viewer: &Viewer,
    gateway: GatewayId,
    command: GatewayCommand,
) -> Result<Response, Refusal> {
    console
        .app
        .ledger
        .update_gateway(gateway, &[command], &viewer.context())
        .await
        .map_err(|e| refusal(viewer.lang, e))?;
    Ok(Redirect::to(PATH).into_response())
}

fn refusal(lang: Lang, error: lightspeed_services::ServiceError) -> Refusal {
    match error {
        lightspeed_services::ServiceError::UnknownGateway(_) => Refusal::NotFound(lang),
        other => Refusal::Unavailable(lang, other.to_string()),
    }
}

/// `POST /console/gateways/priorities`: every `priority-<id>` field, set together.
pub async fn set_priorities(
    State(console): State<Console>,
    viewer: Viewer,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let csrf = form.get("csrf").map(String::as_str).unwrap_or_default();
    viewer.authorize(Action::ManageGateways, csrf)?;
    let changes: Vec<(GatewayId, u16)> = form
        .iter()
        .filter_map(|(key, value)| {
            let id = key.strip_prefix(PRIORITY_FIELD)?.parse().ok()?;
            Some((id, value.trim().parse().ok()?))
        })
        .collect();
    if !changes.is_empty() {
        console
            .app
            .ledger
            .set_gateway_priorities(&changes, &viewer.context())
            .await
            .map_err(|e| refusal(viewer.lang, e))?;
    }
    Ok(Redirect::to(PATH).into_response())
}

/// `POST /console/gateways/{id}/test`: one harmless call to the PSP with the gateway's
/// credentials; answers the list with the result. Records nothing.
pub async fn test(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    viewer.authorize(Action::ManageGateways, &form.csrf)?;
    let gateway = console
        .app
        .ledger
        .gateway(gateway_id(lang, &id)?)
        .await
        .map_err(|e| refusal(lang, e))?;
    let client = match &console.app.psp {
        Some(client) => client.clone(),
        None => PspClient::new(&HttpConfig::default()).map_err(unavailable(lang))?,
    };
    let account =
        PspAccount::open(&console.app.keyring, gateway.credentials()).map_err(unavailable(lang))?;
    let started = Instant::now();
    let budget = console.app.config.request_timeout / 2;
    let checked = tokio::time::timeout(budget, client.test_credentials(&account)).await;
    drop(account);
    let millis = started.elapsed().as_millis();
    let notice = match checked {
        Ok(Ok(check)) => {
            html! { p.notice role="status" { (lang.t(Msg::Reachable)) ": HTTP " (check.status) " · " (millis) " ms" } }
        }
        _ => {
            html! { p.notice.bad role="status" { (lang.t(Msg::Unreachable)) " · " (millis) " ms" } }
        }
    };
    render(&console, &viewer, None, Some(notice)).await
}
