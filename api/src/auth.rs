//! Merchant request signatures: `x-client-key`, `x-timestamp` (unix seconds) and `x-signature`,
//! a hex HMAC-SHA256 keyed with the merchant's client salt over
//! `"{timestamp}\n{METHOD}\n{path and query}\n{raw body}"`. The salt never travels.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use lightspeed_adapters::merchant_auth::{
    HEADER_CLIENT_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, RequestAuthError, verify_request,
};
use lightspeed_services::AuthenticatedMerchant;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;
use crate::text_guard::check_json_text;

/// A request whose signature verified, with its merchant and raw body.
#[derive(Debug)]
pub struct SignedRequest {
    /// The merchant, just read from the log (or, for [`SignedInitiation`], confirmed current
    /// within the last 100 ms).
    pub merchant: AuthenticatedMerchant,
    /// The raw body the signature covers.
    pub body: Bytes,
}

/// Reads a body of at most `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::MalformedJson(e.to_string())
        }
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ApiError> {
    let value = headers
        .get(name)
        .ok_or(ApiError::MissingCredentials(name))?;
    value.to_str().map_err(|_| ApiError::MalformedHeader(name))
}

/// A signed payment initiation: like [`SignedRequest`], but a merchant this process saw
/// moments ago is authenticated without a read; initiation then appends only if the merchant's
/// stream is still at that version, so a regenerated key is refused all the same.
#[derive(Debug)]
pub struct SignedInitiation(pub SignedRequest);

impl FromRequest<AppState> for SignedRequest {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        authenticate(request, state, false).await
    }
}

impl FromRequest<AppState> for SignedInitiation {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        authenticate(request, state, true)
            .await
            .map(SignedInitiation)
    }
}

/// Checks the request's signature against its merchant's salt; with `reuse_recent`, first
/// against the merchant as remembered, if it is recent.
async fn authenticate(
    request: Request,
    state: &AppState,
    reuse_recent: bool,
) -> Result<SignedRequest, ApiError> {
    let (parts, body) = request.into_parts();
    let client_key = header(&parts.headers, HEADER_CLIENT_KEY)?;
    let timestamp = header(&parts.headers, HEADER_TIMESTAMP)?;
    let signature = header(&parts.headers, HEADER_SIGNATURE)?;
    let body = read_body(body, state.config.body_limit_bytes).await?;
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let verify = |merchant: &AuthenticatedMerchant| {
        let salt = state
            .keyring
            .open(merchant.merchant.client_salt())
            .map_err(|e| ApiError::Internal(format!("cannot open a client salt: {e}")))?;
        verify_request(
            salt.expose(),
            timestamp,
            signature,
            parts.method.as_str(),
            path,
            &body,
            state.ledger.now(),
        )
        .map_err(|e| match e {
            RequestAuthError::Malformed(name) => ApiError::MalformedHeader(name),
            RequestAuthError::Stale { skew_secs } => ApiError::StaleTimestamp(skew_secs),
            RequestAuthError::BadSignature => ApiError::BadSignature,
        })
    };
    if reuse_recent
        && let Some(merchant) = state.ledger.recent_merchant_by_client_key(client_key)
        && verify(&merchant).is_ok()
    {
        return Ok(SignedRequest { merchant, body });
    }
    let merchant = state
        .ledger
        .merchant_by_client_key(client_key)
        .await?
        .ok_or(ApiError::UnknownClientKey)?;
    verify(&merchant)?;
    Ok(SignedRequest { merchant, body })
}

/// Parses a JSON body, naming the field at fault when it is well-formed JSON of the wrong shape;
/// text the log cannot store (NUL, bytes that are not UTF-8) is refused first.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    check_json_text(body)?;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => ApiError::InvalidField {
                field: if path == "." {
                    missing_field(&inner).unwrap_or(path)
                } else {
                    path
                },
                detail: inner.to_string(),
            },
            _ => ApiError::MalformedJson(inner.to_string()),
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

/// serde reports a missing or unknown field at the parent's path; the message names the field.
fn missing_field(error: &serde_json::Error) -> Option<String> {
    let message = error.to_string();
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    Some(rest.split('`').next()?.to_owned())
}
