//! WhatsApp template messages, through Meta's Cloud API or a BSP with expiring tokens.
//!
//! Both clients implement [`WhatsAppProvider`], so the sender worker does not care which one a
//! deployment uses. Failures are classified by [`WhatsAppError`]: back off on
//! [`WhatsAppError::RateLimited`], retry later on [`WhatsAppError::Unavailable`], alert ops on
//! [`WhatsAppError::TokenExpired`] from Meta (its tokens cannot be refreshed by us), drop the
//! message on [`WhatsAppError::Rejected`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lightspeed_domain::{Clock, SealedSecret};
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::json;

use crate::http::{Answer, ClientBuildError, Failure, HttpConfig, build_client, excerpt, join};
use crate::secrets::{Keyring, Secret};

/// A boxed future, so [`WhatsAppProvider`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One approved template to send to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateMessage {
    /// Recipient in international format without `+` (e.g. `919867800451`).
    pub to: String,
    /// Meta: the template's name. Gupshup: the template's id.
    pub template: String,
    /// Template language code (Meta only), e.g. `en`.
    pub language: String,
    /// Values of the body's `{{1}}`, `{{2}}`, ….
    pub body_params: Vec<String>,
    /// Value appended to the URL of the template's first button, if it has a dynamic URL button.
    pub button_url_param: Option<String>,
}

/// How a send failed. Never carries tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhatsAppError {
    /// The access token expired or was invalidated (HTTP 401, Graph codes 190 and 0).
    #[error("WhatsApp access token expired or invalid")]
    TokenExpired,
    /// A rate limit was hit (HTTP 429, Graph codes 130429, 131056, 80007, 4).
    #[error("WhatsApp rate limit hit")]
    RateLimited {
        /// How long the provider asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// Refused for good (bad number, unknown template, …): do not retry.
    #[error("WhatsApp provider rejected the message: {code}: {message}")]
    Rejected {
        /// Provider error code, or the HTTP status.
        code: String,
        /// Provider explanation.
        message: String,
    },
    /// 5xx, timeout or connection failure.
    #[error("WhatsApp provider unavailable: {reason}")]
    Unavailable {
        /// What went wrong.
        reason: String,
    },
    /// The answer could not be understood.
    #[error("WhatsApp provider answer not understood: {reason}")]
    Protocol {
        /// What was wrong with it.
        reason: String,
    },
}

impl From<Failure> for WhatsAppError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unavailable(reason) => Self::Unavailable { reason },
            Failure::RateLimited(retry_after) => Self::RateLimited { retry_after },
            Failure::Protocol(reason) => Self::Protocol { reason },
        }
    }
}

/// A WhatsApp provider that can send template messages.
pub trait WhatsAppProvider: Send + Sync {
    /// Sends one template message and returns the provider's message id.
    fn send_template<'a>(
        &'a self,
        message: &'a TemplateMessage,
    ) -> BoxFuture<'a, Result<String, WhatsAppError>>;
}

fn protocol(what: &str) -> WhatsAppError {
    WhatsAppError::Protocol {
        reason: what.to_owned(),
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, WhatsAppError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| WhatsAppError::Rejected {
        code: "invalid_token".to_owned(),
        message: "token is not a valid header value".to_owned(),
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// Graph error codes that mean "slow down".
const GRAPH_RATE_LIMIT_CODES: [i64; 4] = [130429, 131056, 80007, 4];
/// Graph error codes that mean "the token is no good".
const GRAPH_TOKEN_CODES: [i64; 2] = [190, 0];

/// Meta's WhatsApp Cloud API.
#[derive(Debug, Clone)]
pub struct MetaCloudClient {
    http: reqwest::Client,
    base_url: String,
    phone_number_id: String,
    access_token: Secret,
}

impl MetaCloudClient {
    /// Graph API base with the version this client was written against.
    pub const DEFAULT_BASE_URL: &'static str = "https://graph.facebook.com/v21.0";

    /// A client sending from `phone_number_id` with a system-user `access_token`.
    pub fn new(
        http: reqwest::Client,
        base_url: Option<String>,
        phone_number_id: impl Into<String>,
        access_token: Secret,
    ) -> Self {
        Self {
            http,
            base_url: base_url.unwrap_or_else(|| Self::DEFAULT_BASE_URL.to_owned()),
            phone_number_id: phone_number_id.into(),
            access_token,
        }
    }

    /// The request body Meta documents for a template send.
    pub fn request_body(message: &TemplateMessage) -> serde_json::Value {
        let mut components = Vec::new();
        if !message.body_params.is_empty() {
            let parameters: Vec<_> = message
                .body_params
                .iter()
                .map(|text| json!({"type": "text", "text": text}))
                .collect();
            components.push(json!({"type": "body", "parameters": parameters}));
        }
        if let Some(param) = &message.button_url_param {
            components.push(json!({
                "type": "button", "sub_type": "url", "index": "0",
                "parameters": [{"type": "text", "text": param}],
            }));
        }
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to,
            "type": "template",
            "template": {
                "name": message.template,
                "language": {"code": message.language},
                "components": components,
            },
        })
    }

    async fn send(&self, message: &TemplateMessage) -> Result<String, WhatsAppError> {
        let token = self
            .access_token
            .expose_str()
            .map_err(|_| WhatsAppError::TokenExpired)?;
        let url = join(
            &self.base_url,
            &format!("/{}/messages", self.phone_number_id),
        );
        let request = self
            .http
            .post(url)
            .header(
                reqwest::header::AUTHORIZATION,
                sensitive(&format!("Bearer {token}"))?,
            )
            .json(&Self::request_body(message));
        let answer = crate::http::send(request).await?;
        if answer.status.is_success() {
            #[derive(Deserialize)]
            struct Sent {
                messages: Vec<SentMessage>,
            }
            #[derive(Deserialize)]
            struct SentMessage {
                id: String,
            }
            let sent: Sent =
                serde_json::from_slice(&answer.body).map_err(|_| protocol("Meta send answer"))?;
            return sent
                .messages
                .into_iter()
                .next()
                .map(|m| m.id)
                .ok_or_else(|| protocol("Meta sent no message id"));
        }
        Err(classify_graph_error(&answer))
    }
}

/// Classifies a Graph API error answer.
fn classify_graph_error(answer: &Answer) -> WhatsAppError {
    #[derive(Deserialize)]
    struct Envelope {
        error: GraphError,
    }
    #[derive(Deserialize)]
    struct GraphError {
        #[serde(default)]
        code: Option<i64>,
        #[serde(default)]
        message: Option<String>,
    }
    let error = serde_json::from_slice::<Envelope>(&answer.body)
        .ok()
        .map(|e| e.error);
    let code = error.as_ref().and_then(|e| e.code);
    if answer.status == StatusCode::UNAUTHORIZED
        || code.is_some_and(|c| GRAPH_TOKEN_CODES.contains(&c))
    {
        return WhatsAppError::TokenExpired;
    }
    if answer.status == StatusCode::TOO_MANY_REQUESTS
        || code.is_some_and(|c| GRAPH_RATE_LIMIT_CODES.contains(&c))
    {
        return WhatsAppError::RateLimited {
            retry_after: crate::http::retry_after(&answer.headers),
        };
    }
    if answer.status.is_server_error() {
        return WhatsAppError::Unavailable {
            reason: format!("Meta answered {}", answer.status.as_u16()),
        };
    }
    WhatsAppError::Rejected {
        code: code.map_or_else(|| answer.status.as_u16().to_string(), |c| c.to_string()),
        message: excerpt(&error.and_then(|e| e.message).unwrap_or_default()),
    }
}

impl WhatsAppProvider for MetaCloudClient {
    fn send_template<'a>(
        &'a self,
        message: &'a TemplateMessage,
    ) -> BoxFuture<'a, Result<String, WhatsAppError>> {
        Box::pin(self.send(message))
    }
}

/// Settings of the Gupshup Partner API client.
#[derive(Debug, Clone)]
pub struct GupshupConfig {
    /// Partner API base.
    pub base_url: String,
    /// The app (WhatsApp number) messages are sent from.
    pub app_id: String,
    /// Partner login email.
    pub email: String,
    /// Partner client secret.
    pub client_secret: Secret,
    /// Sender phone number (`source`).
    pub source: String,
    /// App name (`src.name`).
    pub src_name: String,
    /// How long a partner token lives (24 h at Gupshup).
    pub token_lifetime: Duration,
    /// How long before expiry the token is renewed.
    pub refresh_margin: Duration,
}

impl GupshupConfig {
    /// Gupshup's Partner API host.
    pub const DEFAULT_BASE_URL: &'static str = "https://partner.gupshup.io";

    /// Defaults for the given app and partner login.
    pub fn new(
        app_id: impl Into<String>,
        email: impl Into<String>,
        client_secret: Secret,
        source: impl Into<String>,
        src_name: impl Into<String>,
    ) -> Self {
        Self {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            app_id: app_id.into(),
            email: email.into(),
            client_secret,
            source: source.into(),
            src_name: src_name.into(),
            token_lifetime: Duration::from_secs(24 * 60 * 60),
            refresh_margin: Duration::from_secs(10 * 60),
        }
    }
}

struct CachedToken {
    /// The app token, sealed so a heap dump or a stray `Debug` shows no usable token.
    sealed: SealedSecret,
    expires_at: DateTime<Utc>,
    generation: u64,
}

/// A BSP modelled on the Gupshup Partner API: log in with email and client secret for a partner
/// token that expires in 24 hours, exchange it for the app's token, send with that.
///
/// The token is cached sealed with the [`Keyring`] and renewed shortly before it expires, and on
/// a 401 (then the send is retried once). Renewal happens under one async lock, so a burst of
/// sends that all find the token stale causes exactly one login.
pub struct GupshupClient {
    http: reqwest::Client,
    config: GupshupConfig,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    cache: tokio::sync::Mutex<Option<CachedToken>>,
    generations: AtomicU64,
    logins: AtomicU64,
}

impl std::fmt::Debug for GupshupClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GupshupClient")
            .field("app_id", &self.config.app_id)
            .finish_non_exhaustive()
    }
}

impl GupshupClient {
    /// A client with its own HTTP connection pool.
    pub fn new(
        config: GupshupConfig,
        http: &HttpConfig,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ClientBuildError> {
        Ok(Self::with_http(build_client(http)?, config, keyring, clock))
    }

    /// A client over an existing HTTP client.
    pub fn with_http(
        http: reqwest::Client,
        config: GupshupConfig,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            config,
            keyring,
            clock,
            cache: tokio::sync::Mutex::new(None),
            generations: AtomicU64::new(0),
            logins: AtomicU64::new(0),
        }
    }

    /// How many times this client has logged in (for metrics and tests).
    pub fn login_count(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// The current app token and its generation, renewing it first if it is missing or due.
    async fn token(&self) -> Result<(Secret, u64), WhatsAppError> {
        let mut cache = self.cache.lock().await;
        let margin = chrono::Duration::from_std(self.config.refresh_margin).unwrap_or_default();
        if let Some(cached) = cache.as_ref()
            && self.clock.now() + margin < cached.expires_at
        {
            let token = self
                .keyring
                .open(&cached.sealed)
                .map_err(|_| protocol("cached token unreadable"))?;
            return Ok((token, cached.generation));
        }
        // Holding the lock across the login is the point: concurrent callers wait for this
        // renewal and then find the fresh token above.
        let (token, expires_at) = self.login().await?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        *cache = Some(CachedToken {
            sealed: self.keyring.seal(token.expose()),
            expires_at,
            generation,
        });
        Ok((token, generation))
    }

    /// Forgets the token of `generation` (if it is still the cached one) after the provider
    /// refused it; a token another caller already renewed stays.
    async fn invalidate(&self, generation: u64) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| c.generation == generation) {
            *cache = None;
        }
    }

    async fn login(&self) -> Result<(Secret, DateTime<Utc>), WhatsAppError> {
        self.logins.fetch_add(1, Ordering::Relaxed);
        tracing::info!(app_id = %self.config.app_id, "logging in to the WhatsApp BSP for a fresh token");
        let issued_at = self.clock.now();
        let secret = self
            .config
            .client_secret
            .expose_str()
            .map_err(|_| WhatsAppError::TokenExpired)?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("email", &self.config.email)
            .append_pair("secret", secret)
            .finish();
        let request = self
            .http
            .post(join(&self.config.base_url, "/partner/account/login"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form);
        let answer = gupshup_checked(crate::http::send(request).await?)?;
        #[derive(Deserialize)]
        struct Login {
            token: String,
        }
        let login: Login =
            serde_json::from_slice(&answer.body).map_err(|_| protocol("Gupshup login answer"))?;

        let url = join(
            &self.config.base_url,
            &format!("/partner/app/{}/token/", self.config.app_id),
        );
        let request = self
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, sensitive(&login.token)?);
        let answer = gupshup_checked(crate::http::send(request).await?)?;
        #[derive(Deserialize)]
        struct AppTokenAnswer {
            token: AppToken,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct AppToken {
            token: String,
            #[serde(default)]
            expires_on: i64,
        }
        let app: AppTokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|_| protocol("Gupshup app token answer"))?;
        let lifetime = chrono::Duration::from_std(self.config.token_lifetime).unwrap_or_default();
        let mut expires_at = issued_at + lifetime;
        // `expiresOn` is epoch milliseconds, 0 for "does not expire": the sooner bound wins.
        if let Some(app_expiry) = DateTime::from_timestamp_millis(app.token.expires_on)
            .filter(|_| app.token.expires_on > 0)
        {
            expires_at = expires_at.min(app_expiry);
        }
        Ok((Secret::from(app.token.token), expires_at))
    }

    async fn send_once(
        &self,
        token: &Secret,
        message: &TemplateMessage,
    ) -> Result<String, WhatsAppError> {
        let template = json!({"id": message.template, "params": message.body_params}).to_string();
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("source", &self.config.source)
            .append_pair("destination", &message.to)
            .append_pair("src.name", &self.config.src_name)
            .append_pair("template", &template)
            .finish();
        let url = join(
            &self.config.base_url,
            &format!("/partner/app/{}/template/msg", self.config.app_id),
        );
        let token = token
            .expose_str()
            .map_err(|_| WhatsAppError::TokenExpired)?;
        let request = self
            .http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, sensitive(token)?)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form);
        let answer = gupshup_checked(crate::http::send(request).await?)?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Submitted {
            message_id: String,
        }
        let submitted: Submitted =
            serde_json::from_slice(&answer.body).map_err(|_| protocol("Gupshup send answer"))?;
        Ok(submitted.message_id)
    }

    async fn send(&self, message: &TemplateMessage) -> Result<String, WhatsAppError> {
        let (token, generation) = self.token().await?;
        match self.send_once(&token, message).await {
            Err(WhatsAppError::TokenExpired) => {
                self.invalidate(generation).await;
                let (token, _) = self.token().await?;
                self.send_once(&token, message).await
            }
            other => other,
        }
    }
}

/// Classifies a Gupshup answer: 401 or a relayed Graph code 190 / 0 means the token is gone,
/// 429 or a relayed Graph rate-limit code means slow down.
fn gupshup_checked(answer: Answer) -> Result<Answer, WhatsAppError> {
    if answer.status.is_success() {
        return Ok(answer);
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        code: Option<serde_json::Value>,
        #[serde(default)]
        error: Option<GraphError>,
    }
    #[derive(Deserialize)]
    struct GraphError {
        #[serde(default)]
        code: Option<i64>,
        #[serde(default)]
        message: Option<String>,
    }
    let body = serde_json::from_slice::<ErrorBody>(&answer.body).ok();
    // BSPs relay Meta's error code either at the top level (number or text) or in a Graph
    // envelope.
    let code = body.as_ref().and_then(|b| {
        b.error
            .as_ref()
            .and_then(|e| e.code)
            .or_else(|| match &b.code {
                Some(serde_json::Value::Number(n)) => n.as_i64(),
                Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            })
    });
    if answer.status == StatusCode::UNAUTHORIZED
        || code.is_some_and(|c| GRAPH_TOKEN_CODES.contains(&c))
    {
        return Err(WhatsAppError::TokenExpired);
    }
    if code.is_some_and(|c| GRAPH_RATE_LIMIT_CODES.contains(&c)) {
        return Err(WhatsAppError::RateLimited {
            retry_after: crate::http::retry_after(&answer.headers),
        });
    }
    if let Some(failure) = crate::http::server_side_failure(&answer) {
        return Err(failure.into());
    }
    let message = body.and_then(|b| b.message.or_else(|| b.error.and_then(|e| e.message)));
    Err(WhatsAppError::Rejected {
        code: code.map_or_else(|| answer.status.as_u16().to_string(), |c| c.to_string()),
        message: excerpt(&message.unwrap_or_default()),
    })
}

impl WhatsAppProvider for GupshupClient {
    fn send_template<'a>(
        &'a self,
        message: &'a TemplateMessage,
    ) -> BoxFuture<'a, Result<String, WhatsAppError>> {
        Box::pin(self.send(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../fixtures/whatsapp/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn meta_request_matches_the_documented_template_json() {
        let message = TemplateMessage {
            to: "919867800451".into(),
            template: "order_confirmation".into(),
            language: "en".into(),
            body_params: vec!["Asha".into(), "ORD-9271".into()],
            button_url_param: Some("ORD-9271".into()),
        };
        let expected: serde_json::Value =
            serde_json::from_slice(&fixture("meta_template_request.json")).unwrap();
        assert_eq!(MetaCloudClient::request_body(&message), expected);
    }

    fn answer(status: u16, body: &[u8]) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn gupshup_errors_are_classified() {
        assert_eq!(
            gupshup_checked(answer(401, b"")).unwrap_err(),
            WhatsAppError::TokenExpired
        );
        assert_eq!(
            gupshup_checked(answer(400, &fixture("meta_error_token_expired.json"))).unwrap_err(),
            WhatsAppError::TokenExpired
        );
        assert_eq!(
            gupshup_checked(answer(
                400,
                br#"{"status":"error","code":"190","message":"expired"}"#
            ))
            .unwrap_err(),
            WhatsAppError::TokenExpired
        );
        assert_eq!(
            gupshup_checked(answer(
                400,
                br#"{"status":"error","code":131056,"message":"pair"}"#
            ))
            .unwrap_err(),
            WhatsAppError::RateLimited { retry_after: None }
        );
        assert!(matches!(
            gupshup_checked(answer(
                429,
                br#"{"status":"error","message":"Too Many Requests"}"#
            )),
            Err(WhatsAppError::RateLimited { .. })
        ));
        assert_eq!(
            gupshup_checked(answer(
                400,
                br#"{"status":"error","message":"Invalid destination"}"#
            ))
            .unwrap_err(),
            WhatsAppError::Rejected {
                code: "400".into(),
                message: "Invalid destination".into()
            }
        );
    }

    #[test]
    fn graph_errors_are_classified() {
        assert_eq!(
            classify_graph_error(&answer(400, &fixture("meta_error_rate_limit.json"))),
            WhatsAppError::RateLimited { retry_after: None }
        );
        assert_eq!(
            classify_graph_error(&answer(401, &fixture("meta_error_token_expired.json"))),
            WhatsAppError::TokenExpired
        );
        assert_eq!(
            classify_graph_error(&answer(400, &fixture("meta_error_token_expired.json"))),
            WhatsAppError::TokenExpired
        );
        assert_eq!(
            classify_graph_error(&answer(
                400,
                br#"{"error":{"code":0,"message":"AuthException"}}"#
            )),
            WhatsAppError::TokenExpired
        );
        for code in [131056, 80007, 4] {
            let body = format!(r#"{{"error":{{"code":{code},"message":"slow down"}}}}"#);
            assert!(matches!(
                classify_graph_error(&answer(400, body.as_bytes())),
                WhatsAppError::RateLimited { .. }
            ));
        }
        assert!(matches!(
            classify_graph_error(&answer(429, b"")),
            WhatsAppError::RateLimited { .. }
        ));
        assert!(matches!(
            classify_graph_error(&answer(503, b"")),
            WhatsAppError::Unavailable { .. }
        ));
        assert_eq!(
            classify_graph_error(&answer(
                400,
                br#"{"error":{"code":132001,"message":"Template name does not exist"}}"#
            )),
            WhatsAppError::Rejected {
                code: "132001".into(),
                message: "Template name does not exist".into()
            }
        );
    }
}
