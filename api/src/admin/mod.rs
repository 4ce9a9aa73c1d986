//! The admin API: merchant and gateway administration, queue control, alerts, the read models,
//! commission collection (payout runs, settlements, statements, reconciliation), and the people
//! who run the business. [`access::enforce`] admits every request to an admin route (a bearer
//! JWT of one of the people) and checks their role allows the change; every command a route
//! issues carries `admin:<email>` as its actor, whatever the person's role.

pub mod access;
pub mod alerts;
pub mod gateways;
pub mod invoices;
pub mod merchants;
pub mod notifications;
pub mod payouts;
pub mod people;
pub mod queues;
pub mod quotas;
pub mod reads;
pub mod refunds;
pub mod statements;
pub mod views;

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use lightspeed_services::ServiceError;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{parse_json, read_body};
use crate::error::ApiError;
use crate::state::AppState;

/// Every admin route, with its OpenAPI description.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(merchants::create, merchants::list))
        .routes(routes!(merchants::get, merchants::update))
        .routes(routes!(merchants::regenerate_keys))
        .routes(routes!(merchants::rotate_webhook_secret))
        .routes(routes!(quotas::get, quotas::set))
        .routes(routes!(gateways::create, gateways::list))
        .routes(routes!(gateways::health))
        .routes(routes!(gateways::update, gateways::retire))
        .routes(routes!(gateways::toggle))
        .routes(routes!(gateways::recover))
        .routes(routes!(gateways::set_priorities))
        .routes(routes!(gateways::test))
        .routes(routes!(queues::list))
        .routes(routes!(queues::series))
        .routes(routes!(queues::act))
        .routes(routes!(alerts::list))
        .routes(routes!(alerts::acknowledge))
        .routes(routes!(reads::whatsapp))
        .routes(routes!(notifications::resend))
        .routes(routes!(reads::commission_ledger))
        .routes(routes!(reads::commission_daily))
        .routes(routes!(reads::wallets))
        .routes(routes!(reads::transactions))
        .routes(routes!(refunds::payment))
        .routes(routes!(refunds::list))
        .routes(routes!(refunds::get))
        .routes(routes!(reads::audit_log))
        .routes(routes!(reads::projections))
        .routes(routes!(payouts::run_payouts))
        .routes(routes!(payouts::record_settlement))
        .routes(routes!(payouts::run_reconciliation))
        .routes(routes!(statements::statement))
        .routes(routes!(invoices::list))
        .routes(routes!(invoices::get))
        .routes(routes!(invoices::set_email))
        .routes(routes!(people::list, people::invite))
        .routes(routes!(people::change_role, people::remove))
        .routes(routes!(people::revoke_tokens))
}

/// The error for a failed admin operation: an unknown merchant is a 404 here (on the merchant
/// API it means an unknown client key).
pub(crate) fn admin_error(error: ServiceError) -> ApiError {
    match error {
        ServiceError::UnknownMerchant => ApiError::MerchantNotFound,
        other => other.into(),
    }
}

/// Query parameters, refused as `400 INVALID_QUERY` problem documents when they do not parse.
#[derive(Debug, Clone)]
pub struct AdminQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for AdminQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| AdminQuery(value))
            .map_err(|rejection| ApiError::InvalidQuery(rejection.body_text()))
    }
}

/// A JSON body: `application/json`, within the body limit, refused field by field.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let body = read_body(request.into_body(), state.config.body_limit_bytes).await?;
        parse_json(&body).map(JsonBody)
    }
}

/// Parses an id from a path segment, or answers `not_found`.
pub(crate) fn parse_id<T: std::str::FromStr>(
    text: &str,
    not_found: ApiError,
) -> Result<T, ApiError> {
    text.parse().map_err(|_| not_found)
}
