//! Merchants: search, and a merchant's page with fee, thresholds, standing, checkout settings,
//! webhook endpoint, statements, gateways and transactions; key regeneration for those whose
//! role may manage keys (the new salt is shown once, never stored in clear).

use axum::Form;
use axum::extract::{Path, Query, State};
use lightspeed_adapters::secrets::{generate_client_key, generate_client_salt};
use lightspeed_domain::MerchantId;
use lightspeed_domain::access::Action;
use lightspeed_domain::calendar::IstMonth;
use lightspeed_domain::merchant::ClientKey;
use lightspeed_projections::merchants::{MerchantFilter, MerchantRow};
use lightspeed_projections::pagination::PageRequest;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::format::{percent_bps, rupees, time};
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::pages::sign_in::CsrfOnly;
use crate::web::{Console, Refusal, Viewer, unavailable};

const PATH: &str = "/console/merchants";

/// The search field.
#[derive(Debug, Default, Deserialize)]
pub struct MerchantQuery {
    q: Option<String>,
}

/// `GET /console/merchants[?q=…]`.
pub async fn list(
    State(console): State<Console>,
    viewer: Viewer,
    Query(query): Query<MerchantQuery>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let q = query
        .q
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty());
    let filter = MerchantFilter {
        status: None,
        q: q.clone(),
    };
    let found = lightspeed_projections::merchants::list(
        console.app.pool(),
        &filter,
        PageRequest::default(),
    )
    .await
    .map_err(unavailable(lang))?;
    let body = html! {
        form.filters method="get" action=(PATH) role="search" {
            label { (lang.t(Msg::SearchMerchants)) input type="search" name="q" value=[q]; }
            button type="submit" { (lang.t(Msg::Search)) }
        }
        div.table-wrap { table {
            thead { tr {
                th scope="col" { (lang.t(Msg::Merchant)) }
                th scope="col" { (lang.t(Msg::Standing)) }
                th.num scope="col" { (lang.t(Msg::Fee)) }
            } }
            tbody { @for m in &found.items { tr {
                td { a href={ (PATH) "/" (m.merchant_id) } { (m.company_name) } }
                td { (standing(&m.status)) }
                td.num { (percent_bps(i64::from(m.fee_bps))) }
            } } }
        } }
        p.muted { (found.items.len()) " / " (found.total) }
    };
    Ok(page(&viewer, PATH, lang.t(Msg::Merchants), body))
}

fn standing(status: &str) -> Markup {
    let class = match status {
        "active" => "badge ok",
        "suspended" => "badge warn",
        _ => "badge bad",
    };
    html! { span class=(class) { (status) } }
}

/// `GET /console/merchants/{id}`.
pub async fn detail(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Markup, Refusal> {
    show(&console, &viewer, &id, None).await
}

async fn show(
    console: &Console,
    viewer: &Viewer,
    id: &str,
    notice: Option<Markup>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    let merchant_id: Uuid = id.parse().map_err(|_| Refusal::NotFound(lang))?;
    let merchant = lightspeed_projections::merchants::get(console.app.pool(), merchant_id)
        .await
        .map_err(unavailable(lang))?
        .ok_or(Refusal::NotFound(lang))?;
    let month = IstMonth::of(console.app.ledger.now());
    let body = html! {
        @if let Some(notice) = notice { (notice) }
        (facts(lang, &merchant))
        h2 { (lang.t(Msg::Statements)) }
        p {
            a href={ "/admin/merchants/" (merchant_id) "/statements/" (month) } { (month) " (JSON, admin API)" }
            " · " a href={ "/console/gateways?merchant=" (merchant_id) } { (lang.t(Msg::Gateways)) }
            " · " a href={ "/console/transactions?merchant=" (merchant_id) } { (lang.t(Msg::Transactions)) }
        }
        @if viewer.may(Action::ManageKeys) {
            form method="post" action={ (PATH) "/" (merchant_id) "/keys" } {
                input type="hidden" name="csrf" value=(viewer.session.csrf);
                button.danger type="submit" { (lang.t(Msg::RegenerateKeys)) }
            }
        }
    };
    Ok(page(viewer, PATH, &merchant.company_name, body))
}

fn facts(lang: Lang, m: &MerchantRow) -> Markup {
    html! {
        dl.facts {
            dt { (lang.t(Msg::Standing)) } dd { (standing(&m.status)) @if let Some(reason) = &m.status_reason { " " (reason) } }
            dt { (lang.t(Msg::Fee)) } dd { (percent_bps(i64::from(m.fee_bps))) }
            dt { (lang.t(Msg::Thresholds)) } dd { "warn " (rupees(m.warn_at_paise)) " · suspend " (rupees(m.suspend_at_paise)) " · payout ≥ " (rupees(m.auto_payout_minimum_paise)) }
            dt { (lang.t(Msg::CheckoutSettings)) } dd {
                (m.routing_mode) " · skip resting: " (m.skip_temporarily_failed)
                " · rest " (m.temporary_failure_secs) " s"
                @if let Some(cap) = m.default_rpm_cap { " · rpm " (cap) }
            }
            dt { (lang.t(Msg::WebhookEndpoints)) } dd {
                @match &m.webhook_url { Some(url) => code { (url) }, None => "—" }
                @if let Some(at) = m.webhook_endpoint_disabled_at { " " span.badge.bad { "disabled" } " " (time(at)) }
            }
            dt { "client key" } dd { code { (m.client_key) } @if let Some(at) = m.keys_rotated_at { " · " (time(at)) } }
        }
    }
}

/// `POST /console/merchants/{id}/keys`: new client key and salt, the salt shown once.
pub async fn regenerate_keys(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Markup, Refusal> {
    let lang = viewer.lang;
    viewer.authorize(Action::ManageKeys, &form.csrf)?;
    let merchant_id: MerchantId = id.parse().map_err(|_| Refusal::NotFound(lang))?;
    let client_key = generate_client_key();
    let salt = generate_client_salt();
    let key = ClientKey::parse(&client_key).map_err(unavailable(lang))?;
    let sealed = console.app.keyring.seal(salt.expose());
    console
        .app
        .ledger
        .rotate_merchant_keys(merchant_id, key, sealed, &viewer.context())
        .await
        .map_err(|e| match e {
            lightspeed_services::ServiceError::UnknownMerchant => Refusal::NotFound(lang),
            other => Refusal::Unavailable(lang, other.to_string()),
        })?;
    let salt_text = salt.expose_str().map(str::to_owned).unwrap_or_default();
    let notice = html! {
        div.notice role="status" {
            p { (lang.t(Msg::Done)) }
            p { "client key: " code { (client_key) } }
            p { "client salt (shown once): " code { (salt_text) } }
        }
    };
    show(&console, &viewer, &id, Some(notice)).await
}
