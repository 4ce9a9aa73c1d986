//! Merchants: search, and a merchant's page with fee, thresholds, standing, checkout settings
//! (changed by those who may manage merchants), webhook endpoints (each with its enabled flag
//! and event filter), monthly statements (HTML and CSV, served here from the session), gateways
//! and transactions; key regeneration for those whose role may manage keys (the new key and
//! salt are shown once; the log keeps the salt sealed).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use lightspeed_adapters::secrets::{generate_client_key, generate_client_salt};
use lightspeed_api::admin::statements::{Format, StatementView, render as render_statement};
use lightspeed_domain::MerchantId;
use lightspeed_domain::access::Action;
use lightspeed_domain::calendar::IstMonth;
use lightspeed_domain::checkout_settings::{
    CheckoutSettings, MAX_RPM_CAP, MAX_TEMPORARY_FAILURE_SECS, RoutingMode,
};
use lightspeed_domain::merchant::{ClientKey, MerchantCommand, WebhookEndpoint};
use lightspeed_projections::merchants::{MerchantFilter, MerchantRow};
use lightspeed_projections::pagination::PageRequest;
use lightspeed_services::StatementMonth;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::format::{percent_bps, rupees, time};
use crate::i18n::{Lang, Msg};
use crate::layout::page;
use crate::pages::sign_in::CsrfOnly;
use crate::web::{Console, Refusal, Viewer, answered_at, unavailable};

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
    let current = console
        .app
        .ledger
        .merchant(MerchantId(merchant_id))
        .await
        .map_err(|e| service_refusal(lang, e))?;
    let month = IstMonth::of(console.app.ledger.now());
    let body = html! {
        @if let Some(notice) = notice { (notice) }
        (facts(lang, &merchant, current.client_key().as_str()))
        p {
            a href={ "/console/gateways?merchant=" (merchant_id) } { (lang.t(Msg::Gateways)) }
            " · " a href={ "/console/transactions?merchant=" (merchant_id) } { (lang.t(Msg::Transactions)) }
        }
        section.card.wide aria-labelledby="checkout-title" {
            h2 #checkout-title { (lang.t(Msg::CheckoutSettings)) }
            (checkout_form(viewer, merchant_id, current.checkout()))
        }
        section.card.wide aria-labelledby="endpoints-title" {
            h2 #endpoints-title { (lang.t(Msg::WebhookEndpoints)) }
            (endpoints(lang, current.webhook_endpoints()))
        }
        section.card.wide aria-labelledby="statements-title" {
            h2 #statements-title { (lang.t(Msg::Statements)) }
            // Full navigations: a statement is its own page (or a download), not a console page.
            ul #statements hx-boost="false" { @for m in last_months(month, STATEMENT_MONTHS) {
                li {
                    (m) ": "
                    a href=(statement_link(merchant_id, m, "html")) { (lang.t(Msg::PrintableStatement)) }
                    " · "
                    a href=(statement_link(merchant_id, m, "csv")) download { "CSV" }
                }
            } }
        }
        @if viewer.may(Action::ManageKeys) {
            details.card.wide #regenerate-keys {
                summary { (lang.t(Msg::RegenerateKeys)) }
                p { (lang.t(Msg::RegenerateKeysExplained)) }
                form method="post" action={ (PATH) "/" (merchant_id) "/keys" } {
                    input type="hidden" name="csrf" value=(viewer.session.csrf);
                    button.danger type="submit" { (lang.t(Msg::RegenerateKeys)) }
                }
            }
        }
    };
    Ok(page(viewer, PATH, &merchant.company_name, body))
}

/// Months of statements linked from a merchant's page, this one first.
const STATEMENT_MONTHS: usize = 6;

/// `month` and the `count - 1` before it, newest first.
fn last_months(month: IstMonth, count: usize) -> Vec<IstMonth> {
    std::iter::successors(Some(month), |m| {
        Some(match m.month {
            1 => IstMonth {
                year: m.year - 1,
                month: 12,
            },
            month => IstMonth {
                year: m.year,
                month: month - 1,
            },
        })
    })
    .take(count)
    .collect()
}

fn statement_link(merchant_id: Uuid, month: IstMonth, ext: &str) -> String {
    format!("{PATH}/{merchant_id}/statements/{month}.{ext}")
}

fn service_refusal(lang: Lang, error: lightspeed_services::ServiceError) -> Refusal {
    match error {
        lightspeed_services::ServiceError::UnknownMerchant => Refusal::NotFound(lang),
        other => Refusal::Unavailable(lang, other.to_string()),
    }
}

fn checkout_form(viewer: &Viewer, merchant_id: Uuid, settings: &CheckoutSettings) -> Markup {
    let lang = viewer.lang;
    let round_robin = settings.routing_mode == RoutingMode::RoundRobin;
    let edit = viewer.may(Action::ManageMerchants);
    html! {
        form #checkout method="post" action={ (PATH) "/" (merchant_id) "/checkout" } {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            fieldset.fields disabled[!edit] {
                label { (lang.t(Msg::RoutingMode))
                    select name="routing_mode" {
                        option value="smart" selected[!round_robin] { (lang.t(Msg::RoutingSmart)) }
                        option value="round_robin" selected[round_robin] { (lang.t(Msg::RoutingRoundRobin)) }
                    }
                }
                label.check { input type="checkbox" name="skip_temporarily_failed" value="true" checked[settings.skip_temporarily_failed]; (lang.t(Msg::SkipResting)) }
                label { (lang.t(Msg::RestSeconds)) input type="number" name="temporary_failure_secs" min="1" max=(MAX_TEMPORARY_FAILURE_SECS) required value=(settings.temporary_failure_secs); }
                label { (lang.t(Msg::DefaultRpmCap)) input type="number" name="default_rpm_cap" min="1" max=(MAX_RPM_CAP) value=[settings.default_rpm_cap]; }
            }
            @if edit { p { button type="submit" { (lang.t(Msg::SaveCheckoutSettings)) } } }
        }
    }
}

fn endpoints(lang: Lang, endpoints: &[WebhookEndpoint]) -> Markup {
    html! {
        @if endpoints.is_empty() { p.muted { (lang.t(Msg::NoneYet)) } }
        @else {
            div.table-wrap { table #endpoints {
                thead { tr {
                    th scope="col" { (lang.t(Msg::Url)) }
                    th scope="col" { (lang.t(Msg::Description)) }
                    th scope="col" { (lang.t(Msg::Status)) }
                    th scope="col" { (lang.t(Msg::EventTypes)) }
                } }
                tbody { @for e in endpoints {
                    tr data-endpoint=(e.id()) {
                        td { code { (e.url()) } }
                        td { (e.description()) }
                        td {
                            @if e.enabled() { span.badge.ok { (lang.t(Msg::Enabled)) } }
                            @else { span.badge.bad { (lang.t(Msg::Disabled)) } }
                            @if let Some(at) = e.disabled_at() {
                                " " span.badge.warn { (lang.t(Msg::DisabledForFailing)) } " " (time(at))
                            }
                        }
                        td { @for (i, entry) in e.filter().entries().iter().enumerate() {
                            @if i > 0 { " " } code { (entry) }
                        } }
                    }
                } }
            } }
        }
    }
}

/// The merchant's standing, fee and thresholds from the read model; its client key from the
/// log, so the answer to a key regeneration shows the new one.
fn facts(lang: Lang, m: &MerchantRow, client_key: &str) -> Markup {
    html! {
        dl.facts {
            dt { (lang.t(Msg::Standing)) } dd { (standing(&m.status)) @if let Some(reason) = &m.status_reason { " " (reason) } }
            dt { (lang.t(Msg::Fee)) } dd { (percent_bps(i64::from(m.fee_bps))) }
            dt { (lang.t(Msg::Thresholds)) } dd { "warn " (rupees(m.warn_at_paise)) " · suspend " (rupees(m.suspend_at_paise)) " · payout ≥ " (rupees(m.auto_payout_minimum_paise)) }
            dt { (lang.t(Msg::ClientKey)) } dd { code { (client_key) } }
        }
    }
}

/// The checkout settings form.
#[derive(Debug, Deserialize)]
pub struct CheckoutForm {
    #[serde(default)]
    csrf: String,
    routing_mode: String,
    /// Present (as `true`) when the box is ticked.
    #[serde(default)]
    skip_temporarily_failed: Option<String>,
    temporary_failure_secs: String,
    #[serde(default)]
    default_rpm_cap: String,
}

impl CheckoutForm {
    fn settings(&self) -> Result<CheckoutSettings, String> {
        let routing_mode = match self.routing_mode.as_str() {
            "smart" => RoutingMode::Smart,
            "round_robin" => RoutingMode::RoundRobin,
            _ => return Err("routing_mode: smart or round_robin".into()),
        };
        let temporary_failure_secs = self
            .temporary_failure_secs
            .trim()
            .parse()
            .map_err(|_| "temporary_failure_secs: a whole number of seconds".to_owned())?;
        let cap = self.default_rpm_cap.trim();
        let default_rpm_cap = (!cap.is_empty())
            .then(|| cap.parse())
            .transpose()
            .map_err(|_| "default_rpm_cap: a whole number".to_owned())?;
        let settings = CheckoutSettings {
            routing_mode,
            skip_temporarily_failed: self.skip_temporarily_failed.is_some(),
            default_rpm_cap,
            temporary_failure_secs,
        };
        settings.validate().map_err(|e| e.to_string())?;
        Ok(settings)
    }
}

/// `POST /console/merchants/{id}/checkout`: changes the merchant's checkout settings.
pub async fn change_checkout(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CheckoutForm>,
) -> Result<Response, Refusal> {
    let lang = viewer.lang;
    viewer.authorize(Action::ManageMerchants, &form.csrf)?;
    let merchant_id: MerchantId = id.parse().map_err(|_| Refusal::NotFound(lang))?;
    let refused = |problem: String| {
        html! { p.notice.bad role="alert" { (lang.t(Msg::NotSaved)) ": " (problem) } }
    };
    let settings = match form.settings() {
        Ok(settings) => settings,
        Err(problem) => {
            let page = show(&console, &viewer, &id, Some(refused(problem))).await?;
            return Ok(answered_at(&format!("{PATH}/{id}"), page));
        }
    };
    let command = MerchantCommand::ChangeCheckoutSettings {
        settings,
        at: console.app.ledger.now(),
    };
    let notice = match console
        .app
        .ledger
        .update_merchant(merchant_id, &[command], &viewer.context())
        .await
    {
        Ok(_) => html! { p.notice role="status" { (lang.t(Msg::CheckoutSaved)) } },
        Err(lightspeed_services::ServiceError::UnknownMerchant) => {
            return Err(Refusal::NotFound(lang));
        }
        Err(lightspeed_services::ServiceError::Merchant(refusal)) => refused(refusal.to_string()),
        Err(other) => return Err(Refusal::Unavailable(lang, other.to_string())),
    };
    let page = show(&console, &viewer, &id, Some(notice)).await?;
    Ok(answered_at(&format!("{PATH}/{id}"), page))
}

/// `GET /console/merchants/{id}/statements/{yyyy-mm}.{html|csv}`: the merchant's statement for
/// an IST month, as the admin API answers it, for any signed-in person.
pub async fn statement(
    State(console): State<Console>,
    viewer: Viewer,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let lang = viewer.lang;
    let merchant_id: MerchantId = id.parse().map_err(|_| Refusal::NotFound(lang))?;
    let (month, format) = match file.rsplit_once('.') {
        Some((month, "csv")) => (month, Format::Csv),
        Some((month, "html")) => (month, Format::Html),
        _ => return Err(Refusal::NotFound(lang)),
    };
    let month = StatementMonth::parse(month).ok_or(Refusal::NotFound(lang))?;
    let merchant = console
        .app
        .ledger
        .merchant(merchant_id)
        .await
        .map_err(|e| service_refusal(lang, e))?;
    let statement = console
        .app
        .ledger
        .statement(merchant_id, month)
        .await
        .map_err(|e| service_refusal(lang, e))?;
    let view = StatementView::new(statement, merchant.company_name().to_owned());
    let mut answer = render_statement(view, format);
    // The printable page styles itself inline and runs no script: allow exactly that.
    answer.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(STATEMENT_CSP),
    );
    Ok(answer)
}

/// The printable statement's policy: its own inline style, nothing else.
const STATEMENT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
                             form-action 'none'; frame-ancestors 'none'";

/// `POST /console/merchants/{id}/keys`: new client key and salt, the salt shown once.
pub async fn regenerate_keys(
    State(console): State<Console>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Refusal> {
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
        div.notice #new-keys role="status" {
            p { (lang.t(Msg::KeysShownOnce)) }
            p { (lang.t(Msg::ClientKey)) ": " code { (client_key) } }
            p { (lang.t(Msg::ClientSalt)) ": " code { (salt_text) } }
        }
    };
    // A reload reads the merchant's page, without the salt: it is shown this once.
    let page = show(&console, &viewer, &id, Some(notice)).await?;
    Ok(answered_at(&format!("{PATH}/{id}"), page))
}
