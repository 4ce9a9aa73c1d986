//! What handlers draw from a request and the shared state together: the signed-in person
//! ([`AdminUser`], their token checked and then admitted by the people registry in the log) and the caller's address ([`ClientAddr`]). Kept apart from `admin_auth` and
//! `protection`, which [`AppState`] holds the configuration of, so the state depends on them and
//! not the other way round.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::admin_auth::{AdminUser, admit, bearer_token};
use crate::error::ApiError;
use crate::protection::{ClientAddr, client_ip};
use crate::state::AppState;

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    /// The person the admin routes' access check admitted; elsewhere, the bearer token checked
    /// and admitted here.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(admitted) = parts.extensions.get::<AdminUser>() {
            return Ok(admitted.clone());
        }
        let config = state.config.admin.as_ref().ok_or(ApiError::AdminDisabled)?;
        let token = config.verify(bearer_token(&parts.headers)?, state.ledger.now())?;
        let admin = admit(&state.ledger, &token).await?;
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
