//! The HTTP client every adapter shares, and the classification of upstream failures.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use rustls_platform_verifier::ConfigVerifierExt;

/// Largest response body an adapter reads; providers answer with a few KiB at most.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Timeouts of the shared HTTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Time allowed to open a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, answer included.
    pub request_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
        }
    }
}

/// The HTTP client could not be built (TLS setup failed).
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client: {0}")]
pub struct ClientBuildError(#[source] reqwest::Error);

/// Installs the ring rustls provider as the process default, unless one is installed already.
///
/// reqwest is built without a provider of its own (to keep aws-lc-rs out of the build) and
/// panics when asked to build a client before a provider is installed; every constructor in this
/// crate calls this first, so callers need not remember.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: some provider is then in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Builds a client with the given timeouts, no redirects followed (a PSP redirecting an API
/// call is a protocol error, not something to chase) and a recognisable user agent.
pub fn build_client(config: &HttpConfig) -> Result<reqwest::Client, ClientBuildError> {
    client_builder()
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("lightspeed-adapters/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(ClientBuildError)
}

/// A client builder over the process's one TLS configuration (the crypto provider installed).
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    let builder = reqwest::Client::builder();
    match shared_tls() {
        Some(tls) => builder.tls_backend_preconfigured(tls),
        // reqwest builds its own and reports why that fails.
        None => builder,
    }
}

/// The TLS configuration reqwest would build (the system's roots through the platform verifier,
/// HTTP/1.1), built once. Building it reads and parses every root certificate on the system,
/// which a client per webhook delivery would otherwise repeat each time.
fn shared_tls() -> Option<rustls::ClientConfig> {
    static TLS: OnceLock<Option<rustls::ClientConfig>> = OnceLock::new();
    TLS.get_or_init(|| {
        let mut tls = rustls::ClientConfig::with_platform_verifier().ok()?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(tls)
    })
    .clone()
}

/// An upstream answer: status, headers and a bounded body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// How a call to a provider failed, before each adapter maps it to its own error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Transport failure or 5xx: try again later or elsewhere.
    Unavailable(String),
    /// 429: slow down.
    RateLimited(Option<Duration>),
    /// The answer could not be understood.
    Protocol(String),
}

/// Sends a request and reads the answer, turning transport failures into
/// [`Failure::Unavailable`]. The status is left to the caller, which knows the provider's error
/// body. Error texts name the kind of failure only: reqwest's messages carry URLs, and URLs can
/// carry identifiers we would rather not spread through logs.
pub(crate) async fn send(request: RequestBuilder) -> Result<Answer, Failure> {
    let mut response = request
        .send()
        .await
        .map_err(|e| Failure::Unavailable(transport_kind(&e)))?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::Unavailable(transport_kind(&e)))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(Failure::Protocol(format!(
                "response body larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn transport_kind(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "response body could not be read"
    } else if error.is_request() {
        "request could not be sent"
    } else {
        "transport error"
    };
    kind.to_owned()
}

/// The `Retry-After` header in seconds, when present and numeric (HTTP dates are rare from
/// APIs and are ignored rather than guessed at).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The failure implied by a status that is neither success nor a client error, if any.
pub(crate) fn server_side_failure(answer: &Answer) -> Option<Failure> {
    if answer.status == StatusCode::TOO_MANY_REQUESTS {
        return Some(Failure::RateLimited(retry_after(&answer.headers)));
    }
    if answer.status.is_server_error() {
        return Some(Failure::Unavailable(format!(
            "upstream answered {}",
            answer.status.as_u16()
        )));
    }
    if answer.status.is_redirection() || answer.status.is_informational() {
        return Some(Failure::Protocol(format!(
            "unexpected status {}",
            answer.status.as_u16()
        )));
    }
    None
}

/// Joins a base URL and a path, tolerating a trailing slash on the base.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// Shortens provider text quoted in errors, so an error stays a line, not a page.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 300;
    let mut out: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().count() > MAX_CHARS {
        out.push('…');
    }
    out
}
