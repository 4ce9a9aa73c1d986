//! The HTTP API of the LightSpeed ledger.
//!
//! - Merchant API (HMAC-signed): `POST /payment/initiate`, `GET /transaction/{id}`; and
//!   `GET /status/{id}/stream` (Server-Sent Events) for the payer's browser.
//! - Hosted checkout: `GET /checkout/{id}` and the return page.
//! - PSP webhook intake: `POST /webhook/{client_key}[/{gateway_id}]`.
//! - The sandbox PSP, mounted under `/sandbox`.
//! - `GET /openapi.json` (generated from the handlers) and `GET /docs`.
//!
//! Every error is `application/problem+json` with a stable `code` ([`error::ApiError`]).

pub mod auth;
pub mod checkout;
pub mod error;
pub mod payments;
pub mod state;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::response::{Html, IntoResponse};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, Problem};
pub use state::{ApiConfig, AppState, StatusChecks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "LightSpeed ledger API",
        description = "Payment aggregation with an event-sourced commission ledger. Merchant requests are signed: `x-client-key`, `x-timestamp` (unix seconds, ±300 s) and `x-signature` = hex HMAC-SHA256 keyed with the client salt over `\"{timestamp}\\n{METHOD}\\n{path and query}\\n{raw body}\"`. Errors are `application/problem+json` with a stable `code`."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "payments", description = "Merchant payment API"),
        (name = "checkout", description = "Hosted checkout pages"),
        (name = "psp-webhooks", description = "PSP webhook intake"),
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
    }
}

/// Routes with their OpenAPI description.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(payments::initiate))
        .routes(routes!(payments::transaction))
        .routes(routes!(payments::status_stream))
        .routes(routes!(checkout::checkout_page))
        .routes(routes!(checkout::checkout_ready))
        .routes(routes!(
            checkout::checkout_return,
            checkout::checkout_return_post
        ))
        .routes(routes!(webhooks::gateway_webhook))
        .routes(routes!(webhooks::merchant_webhook))
}

/// The OpenAPI document of every route the API serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The whole API, with `extra` (e.g. the sandbox PSP under `/sandbox`) merged in.
pub fn app(state: AppState, extra: Router) -> Router {
    let (router, api) = routes().split_for_parts();
    let document = api.to_pretty_json().unwrap_or_default();
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = state.config.request_timeout;
    let body_limit = state.config.body_limit_bytes;
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    document.clone(),
                )
            }),
        )
        .route("/docs", axum::routing::get(|| async { Html(DOCS_PAGE) }))
        .with_state(state)
        .merge(extra)
        .fallback(|| async { ApiError::NotFound.into_response() })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// A browsable rendering of `/openapi.json` (Redoc from its CDN).
const DOCS_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>LightSpeed API</title></head>\
<body><redoc spec-url=\"/openapi.json\"></redoc>\
<script src=\"https://cdn.redoc.ly/redoc/latest/bundles/redoc.standalone.js\"></script></body></html>";
