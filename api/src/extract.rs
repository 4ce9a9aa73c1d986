//! What handlers draw from a request and the shared state together: the signed-in admin
//! ([`AdminUser`]) and the caller's address ([`ClientAddr`]). Kept apart from `admin_auth` and
//! `protection`, which [`AppState`] holds the configuration of, so the state depends on them and
//! not the other way round.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::admin_auth::AdminUser;
use crate::error::ApiError;
use crate::protection::{ClientAddr, client_ip};
use crate::state::AppState;

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let config = state.config.admin.as_ref().ok_or(ApiError::AdminDisabled)?;
        let value = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or(ApiError::AdminTokenMissing)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::AdminTokenInvalid)?;
        let admin = config.verify(token, state.ledger.now())?;
        tracing::Span::current().record("admin", admin.email.as_str());
        Ok(admin)
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientAddr(client_ip(
            &parts.headers,
            peer,
            state.config.trusted_proxy_hops,
        )))
    }
}
