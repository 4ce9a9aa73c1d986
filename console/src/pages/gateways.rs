//! Gateways, per merchant: list with health, toggle, priority order, monthly usage against the
//! limit, requests in the last two minutes, the count-down of a rest after failures, a
//! connection test, and a form that adds a gateway. Changes go through the same `Ledger` calls
//! as `/admin/gateways`; a new gateway's credentials go through the admin API's own
//! registration ([`lightspeed_api::admin::gateways::registration`]), which checks and seals
//! them at once; they are never shown back, not even in a refused form.

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
use crate::web::{Console, Refusal, Viewer, answered_at, unavailable};

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
    render(&console, &viewer, query.merchant, None, None).await
}

async fn render(
    console: &Console,
    viewer: &Viewer,
    merchant: Option<Uuid>,
    notice: Option<Markup>,
    draft: Option<&HashMap<String, String>>,
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
        section.live-changes hx-ext="sse" sse-connect=(live) sse-close=(crate::live::SIGNED_OUT_EVENT) aria-labelledby="health-changes" {
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
        @if viewer.may(Action::ManageGateways) { (add_form(viewer, merchant, draft)) }
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
    render(&console, &viewer, None, Some(notice), None).await
}

/// How many times, and how often, the answer to a new gateway looks for it in the read model
/// before showing the list (the projectors apply it within a second).
const LISTED_LOOKS: usize = 20;
const LISTED_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Waits, at most [`LISTED_LOOKS`] × [`LISTED_EVERY`], until the read model lists `gateway`,
/// so the list answered after adding it shows it.
async fn listed(console: &Console, gateway: GatewayId, merchant: Uuid) {
    let filter = GatewayFilter {
        merchant_id: Some(merchant),
        ..GatewayFilter::default()
    };
    for _ in 0..LISTED_LOOKS {
        let now = console.app.ledger.now();
        let found = lightspeed_projections::gateways::health(console.app.pool(), &filter, now)
            .await
            .is_ok_and(|rows| rows.iter().any(|h| h.gateway.gateway_id == gateway.0));
        if found {
            return;
        }
        tokio::time::sleep(LISTED_EVERY).await;
    }
}

/// Each provider's credential fields, as `PspCredentials` names them; `true` for a secret
/// (a password input, never filled back in).
const CREDENTIAL_FIELDS: [(&str, &[(&str, bool)]); 5] = [
    ("sandbox", &[("webhook_secret", true)]),
    (
        "razorpay",
        &[
            ("key_id", false),
            ("key_secret", true),
            ("webhook_secret", true),
        ],
    ),
    ("payu", &[("key", false), ("salt", true)]),
    ("cashfree", &[("client_id", false), ("client_secret", true)]),
    (
        "phonepe",
        &[
            ("merchant_id", false),
            ("salt_key", true),
            ("salt_index", false),
        ],
    ),
];

/// The form field of a provider's credential: `cred-<provider>-<field>`.
fn credential_field(provider: &str, field: &str) -> String {
    format!("cred-{provider}-{field}")
}

/// The form that adds a gateway; `draft` refills a refused form's plain fields (never its
/// secrets).
fn add_form(
    viewer: &Viewer,
    merchant: Option<Uuid>,
    draft: Option<&HashMap<String, String>>,
) -> Markup {
    let lang = viewer.lang;
    let plain = |name: &str| draft.and_then(|d| d.get(name)).cloned();
    let merchant_value = plain("merchant_id").or(merchant.map(|m| m.to_string()));
    let chosen = plain("provider").unwrap_or_else(|| "sandbox".to_owned());
    html! {
        details.card.wide #add-gateway open[draft.is_some()] {
            summary { h2 { (lang.t(Msg::AddGateway)) } }
            form #add-gateway-form method="post" action={ (PATH) "/new" } {
                input type="hidden" name="csrf" value=(viewer.session.csrf);
                div.fields {
                    label { (lang.t(Msg::MerchantId)) input name="merchant_id" required size="36" value=[merchant_value]; }
                    label { (lang.t(Msg::Provider))
                        select name="provider" {
                            @for (provider, _) in CREDENTIAL_FIELDS {
                                option value=(provider) selected[chosen == provider] { (provider) }
                            }
                        }
                    }
                    label { (lang.t(Msg::Label)) input name="label" maxlength="100" value=[plain("label")]; }
                    label { (lang.t(Msg::Environment))
                        select name="environment" {
                            option value="test" { "test" }
                            option value="live" selected[plain("environment").as_deref() == Some("live")] { "live" }
                        }
                    }
                    label { (lang.t(Msg::Priority)) input type="number" name="priority" min="0" max="65535" value=(plain("priority").unwrap_or_else(|| "0".into())); }
                    label { (lang.t(Msg::MonthlyLimitRupees)) input type="number" name="monthly_limit_rupees" min="1" value=[plain("monthly_limit_rupees")]; }
                    label { (lang.t(Msg::BaseUrl)) input type="url" name="base_url" value=[plain("base_url")]; }
                }
                p.muted { (lang.t(Msg::Credentials)) }
                div.fields {
                    @for (provider, fields) in CREDENTIAL_FIELDS {
                        fieldset data-provider=(provider) {
                            legend { (provider) }
                            @for (field, secret) in fields.iter().copied() {
                                @let name = credential_field(provider, field);
                                label { (field)
                                    @if secret { input type="password" name=(name) autocomplete="off"; }
                                    @else { input name=(name) autocomplete="off" value=[plain(&name)]; }
                                }
                            }
                        }
                    }
                }
                p { button type="submit" { (lang.t(Msg::Add)) } }
            }
        }
    }
}

/// The admin API's registration body for the filled-in form, or what is wrong with it.
fn registration_body(
    form: &HashMap<String, String>,
) -> Result<lightspeed_api::admin::gateways::CreateGatewayBody, String> {
    let given = |name: &str| {
        form.get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let provider = given("provider").unwrap_or_default();
    let fields = CREDENTIAL_FIELDS
        .iter()
        .find(|(p, _)| *p == provider)
        .map(|(_, fields)| *fields)
        .ok_or("provider: not one of sandbox, razorpay, payu, cashfree, phonepe")?;
    let mut credentials = serde_json::Map::new();
    credentials.insert("provider".into(), provider.clone().into());
    for (field, _) in fields {
        let value = given(&credential_field(&provider, field)).unwrap_or_default();
        let value = match (*field, value.parse::<u32>()) {
            ("salt_index", Ok(index)) => serde_json::Value::from(index),
            _ => value.into(),
        };
        credentials.insert((*field).to_owned(), value);
    }
    let number = |name: &str| -> Result<Option<i64>, String> {
        given(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("{name}: not a whole number"))
            })
            .transpose()
    };
    let limit_paise = number("monthly_limit_rupees")?
        .map(|rupees| {
            rupees
                .checked_mul(100)
                .ok_or("monthly_limit_rupees: too large")
        })
        .transpose()?;
    let body = serde_json::json!({
        "merchant_id": given("merchant_id").unwrap_or_default(),
        "credentials": credentials,
        "environment": given("environment").unwrap_or_else(|| "test".into()),
        "base_url": given("base_url"),
        "label": given("label"),
        "priority": number("priority")?.unwrap_or(0),
        "monthly_limit_paise": limit_paise,
    });
    // The error names the field at fault, never a value.
    serde_json::from_value(body).map_err(|e| {
        let text = e.to_string();
        text.split(" at line").next().unwrap_or(&text).to_owned()
    })
}

/// `POST /console/gateways/new`: registers a gateway with its credentials sealed, through the
/// admin API's registration; answers the list with the result.
pub async fn add(
    State(console): State<Console>,
    viewer: Viewer,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let lang = viewer.lang;
    let csrf = form.get("csrf").map(String::as_str).unwrap_or_default();
    viewer.authorize(Action::ManageGateways, csrf)?;
    let merchant: Option<Uuid> = form.get("merchant_id").and_then(|m| m.trim().parse().ok());
    let list = match merchant {
        Some(m) => format!("{PATH}?merchant={m}"),
        None => PATH.to_owned(),
    };
    let refused = |problem: String| {
        html! { p.notice.bad role="alert" { (lang.t(Msg::NotSaved)) ": " (problem) } }
    };
    let command = registration_body(&form).and_then(|body| {
        lightspeed_api::admin::gateways::registration(&console.app, body).map_err(|e| e.to_string())
    });
    let command = match command {
        Ok(command) => command,
        Err(problem) => {
            let notice = Some(refused(problem));
            let page = render(&console, &viewer, merchant, notice, Some(&form)).await?;
            return Ok(answered_at(&list, page));
        }
    };
    match console
        .app
        .ledger
        .register_gateway(command, &viewer.context())
        .await
    {
        Ok(gateway) => {
            tracing::info!(gateway_id = %gateway.id(), admin = %viewer.session.email, "gateway registered from the console");
            listed(&console, gateway.id(), gateway.merchant_id().0).await;
            let notice = html! { p.notice role="status" { (lang.t(Msg::GatewayAdded)) " " code { (gateway.id()) } } };
            let page = render(&console, &viewer, merchant, Some(notice), None).await?;
            Ok(answered_at(&list, page))
        }
        Err(
            e @ (lightspeed_services::ServiceError::Store(_)
            | lightspeed_services::ServiceError::Inconsistent(_)
            | lightspeed_services::ServiceError::Contended),
        ) => Err(Refusal::Unavailable(lang, e.to_string())),
        Err(other) => {
            let notice = Some(refused(other.to_string()));
            let page = render(&console, &viewer, merchant, notice, Some(&form)).await?;
            Ok(answered_at(&list, page))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_form_becomes_the_admin_apis_registration_body_with_the_chosen_providers_fields_only() {
        let body = registration_body(&form(&[
            ("merchant_id", "01a24ecb-aaed-75cb-b003-e41630cb1000"),
            ("provider", "phonepe"),
            ("cred-phonepe-merchant_id", "M1"),
            ("cred-phonepe-salt_key", "k"),
            ("cred-phonepe-salt_index", "2"),
            ("cred-sandbox-webhook_secret", "ignored"),
            ("monthly_limit_rupees", "1500"),
            ("priority", "4"),
            ("label", " "),
        ]))
        .unwrap_or_else(|e| panic!("a body: {e}"));
        assert_eq!(body.credentials.provider().to_string(), "phonepe");
        assert_eq!(body.monthly_limit_paise, Some(150_000));
        assert_eq!(body.priority, 4);
        assert_eq!(body.label, None, "a blank label takes the default");
    }

    #[test]
    fn a_wrong_form_is_refused_by_field_without_its_values() {
        let unknown = registration_body(&form(&[("provider", "stripe")]))
            .err()
            .expect("refused");
        assert!(unknown.starts_with("provider"), "{unknown}");
        let limit = registration_body(&form(&[
            ("provider", "sandbox"),
            ("monthly_limit_rupees", "lots"),
        ]))
        .err()
        .expect("refused");
        assert!(limit.contains("monthly_limit_rupees"), "{limit}");
    }
}
