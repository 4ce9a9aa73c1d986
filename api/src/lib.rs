//! The HTTP API of the LightSpeed ledger.
//!
//! - Merchant API (HMAC-signed): `POST /payment/initiate`, `GET /transaction/{id}`,
//!   `POST`/`GET /payment/{id}/refunds`, `GET /refunds/{refund_id}`,
//!   `GET /merchant/whatsapp/usage`, `GET /transactions[/{id}]` (CSV with `Accept: text/csv`),
//!   `GET /wallet`, `GET /wallet/entries`, `GET /statements/{month}`, `GET /usage`; and `GET /status/{id}/stream` (Server-Sent Events) for the
//!   payer's browser.
//! - Hosted checkout: `GET /checkout/{id}` and the return page.
//! - PSP webhook intake: `POST /webhook/{client_key}[/{gateway_id}]`; RazorpayX payout webhooks
//!   at `POST /webhook/razorpayx`.
//! - Admin API (bearer JWT of one of the people, limited by their role): `/admin/...` commands
//!   and reads.
//! - Operations: `GET /health`, `GET /health/ready`, `GET /metrics`.
//! - The sandbox PSP, mounted under `/sandbox`.
//! - `GET /openapi.json` (generated from the handlers; committed as `api/openapi.json`) and
//!   `GET /docs`.
//!
//! Every error is `application/problem+json` with a stable `code` ([`error::ApiError`]),
//! those of the router and its layers included (`bare_errors`); only the checkout's pages
//! answer a browser that asked for HTML with an HTML page. Text PostgreSQL cannot store (NUL,
//! bytes that are not UTF-8) is refused as `422 INVALID_TEXT` before any handler
//! ([`text_guard`]).
//!
//! # What the binary calls
//!
//! [`telemetry::init`], [`metrics::install`], [`state::AppState::builder`] (with the workers'
//! queues as `lightspeed_monitoring::queues::QueueControl`, [`workers::QueuedStatusChecks`],
//! the workers' reconciler as [`state::Reconciliation`] and [`readiness::NatsConnection`]),
//! [`app`]; [`admin_auth::mint_token`] for `lightspeed admin token`.
//! The watchers that run beside the API (metrics refresher, queue sampler, alert evaluator) are
//! `lightspeed_monitoring`'s.

pub mod admin;
pub mod admin_auth;
pub mod auth;
mod bare_errors;
pub mod checkout;
mod document;
pub mod error;
mod extract;
pub mod health;
pub mod merchant;
pub mod merchant_reads;
pub mod metrics;
pub mod payments;
pub mod payout_webhooks;
pub mod protection;
pub mod readiness;
pub mod refunds;
mod schema_rules;
pub mod state;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text_guard;
pub mod webhook_endpoints;
pub mod webhooks;
pub mod workers;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{MakeSpan, TraceLayer};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, Problem};
use payments::PaymentStatusSchema;
pub use state::{
    ApiConfig, AppState, AppStateBuilder, PayoutApiSettings, Reconciliation, ReconciliationRun,
    StatusChecks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "LightSpeed ledger API",
        description = "Payment aggregation with an event-sourced commission ledger. Merchant requests are signed: `x-client-key`, `x-timestamp` (unix seconds, ±300 s) and `x-signature` = hex HMAC-SHA256 keyed with the client salt over `\"{timestamp}\\n{METHOD}\\n{path and query}\\n{raw body}\"`. Admin requests carry `Authorization: Bearer <JWT>` (HS256, a role and a token id, the email of one of the people); changes are limited to what the person's role allows. Errors are `application/problem+json` with a stable `code`."
    ),
    modifiers(&SecuritySchemes, &PaymentStatusSchema),
    tags(
        (name = "payments", description = "Merchant payment API"),
        (name = "refunds", description = "Merchant refund API"),
        (name = "webhook-endpoints", description = "Merchant webhook endpoints, the delivery log, test events and resends"),
        (name = "checkout", description = "Hosted checkout pages"),
        (name = "psp-webhooks", description = "PSP webhook intake"),
        (name = "admin-merchants", description = "Merchant administration"),
        (name = "admin-gateways", description = "Gateway administration"),
        (name = "admin-queues", description = "Queue control"),
        (name = "admin-whatsapp", description = "WhatsApp notification commands"),
        (name = "admin-reads", description = "Read models, alerts and the audit log"),
        (name = "admin-people", description = "The people who run the business and their roles"),
        (name = "admin-payouts", description = "Commission payouts, manual settlements, statements and pending-payment reconciliation"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "merchant-webhooks", description = "Webhooks we send to the merchant's `webhook_url` (Standard Webhooks)"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "merchant_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-signature",
                "HMAC-SHA256 signature, with x-client-key and x-timestamp",
            ))),
        );
        components.add_security_scheme(
            "admin_jwt",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 JWT naming one of the people, a role and a token id (`lightspeed admin token`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Routes with their OpenAPI description; `admin_origins` may call the admin routes from a
/// browser (CORS).
fn routes(admin_origins: &[HeaderValue]) -> OpenApiRouter<AppState> {
    let mut admin = admin::routes();
    if let Some(cors) = protection::admin_cors(admin_origins) {
        admin = admin.layer(cors);
    }
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(payments::initiate))
        .routes(routes!(payments::transaction))
        .routes(routes!(payments::status_stream))
        .routes(routes!(refunds::request_refund, refunds::list_refunds))
        .routes(routes!(refunds::refund))
        .routes(routes!(merchant_reads::whatsapp_usage))
        .routes(routes!(merchant::transactions::list))
        .routes(routes!(merchant::transactions::detail))
        .routes(routes!(merchant::wallet::wallet))
        .routes(routes!(merchant::wallet::entries))
        .routes(routes!(merchant::wallet::statement))
        .routes(routes!(merchant::invoices::list))
        .routes(routes!(merchant::invoices::get))
        .routes(routes!(merchant::usage::usage))
        .merge(webhook_endpoints::routes())
        .routes(routes!(checkout::checkout_page))
        .routes(routes!(checkout::checkout_ready))
        .routes(routes!(
            checkout::checkout_return,
            checkout::checkout_return_post
        ))
        .routes(routes!(webhooks::gateway_webhook))
        .routes(routes!(webhooks::merchant_webhook))
        .routes(routes!(payout_webhooks::razorpayx_webhook))
        .routes(routes!(health::alive))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
        .merge(admin)
}

/// Adds what every admin route may answer (401, 403, 503 `ADMIN_DISABLED`) to the document,
/// once, instead of in each handler's description.
fn with_admin_refusals(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let problem = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build()
    };
    let refusals = [
        (
            "401",
            "Missing, expired, revoked or wrongly signed admin token (merchant credentials never open admin routes)",
        ),
        (
            "403",
            "The token's email is not one of the people (`ADMIN_FORBIDDEN`), or their role does not allow this change (`ROLE_FORBIDDEN`)",
        ),
        (
            "503",
            "Admin authentication is not configured (ADMIN_DISABLED), or a dependency is unavailable",
        ),
    ];
    for (path, item) in openapi.paths.paths.iter_mut() {
        if !path.starts_with("/admin/") {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, description) in refusals {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(description)
                            .content("application/problem+json", problem())
                            .build()
                            .into()
                    });
            }
        }
    }
    openapi
}

/// The OpenAPI document of every route the API serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    document::completed(with_admin_refusals(routes(&[]).split_for_parts().1))
}

/// The OpenAPI document as committed in `api/openapi.json` (pretty JSON, trailing newline).
pub fn openapi_document() -> String {
    let mut text = openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let document = DOCUMENT.get_or_init(openapi_document).clone();
    ([(header::CONTENT_TYPE, "application/json")], document).into_response()
}

/// A browsable rendering of `/openapi.json`.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    responses((status = 200, description = "HTML documentation page", content_type = "text/html"))
)]
async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

/// Each request's span: method, route template, request id, and the admin once authenticated.
#[derive(Debug, Clone, Copy)]
struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> tracing::Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route,
            request_id,
            admin = tracing::field::Empty,
        )
    }
}

/// The whole API, with `extra` (e.g. the sandbox PSP under `/sandbox`) merged in.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so webhook IP
/// allow-lists see the caller's address.
pub fn app(state: AppState, extra: Router) -> Router {
    let (router, _) = routes(&state.config.admin_origins).split_for_parts();
    let request_id = HeaderName::from_static(text_guard::REQUEST_ID_HEADER);
    let timeout = state.config.request_timeout;
    let body_limit = state.config.body_limit_bytes;
    router
        // Innermost, so the guards above refuse unfit requests first, and per route, so it
        // sees the matched route's template.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::access::enforce,
        ))
        .with_state(state)
        .merge(extra)
        .fallback(|| async { ApiError::NotFound.into_response() })
        .layer(axum::middleware::from_fn(text_guard::guard_request_text))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        // Outside the timeout and every extractor, so their bare answers get a problem body.
        .layer(axum::middleware::from_fn(
            bare_errors::problem_for_bare_errors,
        ))
        // Outside the timeout, so a request that timed out is measured (as a 503) too.
        .layer(axum::middleware::from_fn(metrics::track_http))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(RequestSpan))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::from_fn(text_guard::drop_unfit_request_id))
}

/// A browsable rendering of `/openapi.json` (Redoc from its CDN).
const DOCS_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>LightSpeed API</title></head>\
<body><redoc spec-url=\"/openapi.json\"></redoc>\
<script src=\"https://cdn.redoc.ly/redoc/latest/bundles/redoc.standalone.js\"></script></body></html>";
