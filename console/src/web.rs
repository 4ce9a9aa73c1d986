//! What every console page shares: the console's state, cookies, security headers, the
//! signed-in viewer (session, role, language, theme) and the checks a change passes.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use lightspeed_api::AppState;
use lightspeed_domain::access::{Action, Role};
use lightspeed_eventstore::{CommandContext, Metadata};
use lightspeed_live::Hub;

use crate::i18n::{Lang, Msg};
use crate::layout;
use crate::live::Renderers;
use crate::rebuilds::Rebuilds;
use crate::session::{SessionFailure, SessionSettings, Sessions, SignedIn};

/// The session cookie: `<session id>.<secret>`.
pub const SESSION_COOKIE: &str = "ls_session";
/// The cookie that remembers the chosen theme (`light`, `dark`; none follows the system).
pub const THEME_COOKIE: &str = "ls_theme";

/// How the console behaves.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Where browsers reach the API (and so the console, under `/console`).
    pub public_url: String,
    /// Session and link lifetimes.
    pub sessions: SessionSettings,
    /// Sends sign-in links; without one, people get links from `lightspeed admin login-link`.
    pub mailer: Option<lightspeed_adapters::mailer::Mailer>,
}

impl ConsoleConfig {
    /// Whether cookies are `Secure` and HSTS is sent: everywhere but a loopback address over
    /// plain http (a developer's machine, the tests).
    pub fn secure(&self) -> bool {
        !is_loopback_http(&self.public_url)
    }
}

fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The console's state: the API's, the sessions, and its configuration; cheap to clone.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

/// The parts of [`Console`].
pub struct Inner {
    /// The API's state: the ledger, the pool, the queues.
    pub app: AppState,
    /// People's sessions.
    pub sessions: Sessions,
    /// Configuration.
    pub config: ConsoleConfig,
    /// The process's live hub, which the live pages follow.
    pub hub: Hub,
    /// How the live pages show the hub's items, made once.
    pub renderers: Renderers,
    /// Projection rebuilds started from the console in this process.
    pub rebuilds: Rebuilds,
}

impl std::ops::Deref for Console {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Console {
    /// The console over the API's state, its live pages following `hub`.
    pub fn new(app: AppState, config: ConsoleConfig, hub: Hub) -> Self {
        let sessions = Sessions::new(app.ledger.store().clone(), config.sessions);
        let rebuilds = Rebuilds::new(app.ledger.store().clone());
        Console(Arc::new(Inner {
            app,
            sessions,
            config,
            hub,
            renderers: Renderers::new(),
            rebuilds,
        }))
    }
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value for the console's paths: HttpOnly, SameSite=Strict, Secure outside
/// loopback; `max_age` none for a session cookie, zero to remove it.
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The console's content security policy: no inline script or style.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; \
                   frame-ancestors 'none'";

/// The security headers every console answer carries. An answer that sets its own, stricter
/// content security policy keeps it (a printable statement: no script at all).
pub fn security_headers(headers: &mut HeaderMap, secure: bool) {
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Sign-in links carry a secret in their path: never send it to another site.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The person looking at a page: their session, their role as of this request, and how they
/// like to read.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The session.
    pub session: SignedIn,
    /// Their role, read from the people registry at this request.
    pub role: Role,
    /// Their language.
    pub lang: Lang,
    /// Their theme: `light`, `dark` or `auto`.
    pub theme: &'static str,
    /// The request's id, carried into the events a change appends.
    pub request_id: Option<String>,
}

impl Viewer {
    /// Whether their role permits `action` (buttons for other actions are left out).
    pub fn may(&self, action: Action) -> bool {
        self.role.permits(action)
    }

    /// Checks a change: the form's CSRF token first, then the role.
    pub fn authorize(&self, action: Action, csrf: &str) -> Result<(), Refusal> {
        if !self.session.csrf_matches(csrf) {
            return Err(Refusal::Csrf(self.lang));
        }
        if !self.may(action) {
            return Err(Refusal::Forbidden(self.lang));
        }
        Ok(())
    }

    /// The actor their changes are recorded with.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.session.email)
    }

    /// The context of a command they issue: their email as the actor, the request's id.
    pub fn context(&self) -> CommandContext {
        CommandContext {
            command_id: None,
            metadata: Metadata {
                correlation_id: Some(uuid::Uuid::now_v7()),
                causation_id: None,
                actor: Some(self.actor()),
                request_id: self.request_id.clone(),
            },
        }
    }
}

/// The theme a request asks for.
pub fn theme_of(headers: &HeaderMap) -> &'static str {
    match cookie(headers, THEME_COOKIE).as_deref() {
        Some("light") => "light",
        Some("dark") => "dark",
        _ => "auto",
    }
}

impl FromRequestParts<Console> for Viewer {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Refusal> {
        let lang = Lang::of(&parts.headers);
        let expired = || {
            if parts.method == Method::GET {
                Refusal::SignIn
            } else {
                Refusal::Expired(lang)
            }
        };
        let cookie = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(expired)?;
        let session = match console.sessions.authenticate(&cookie).await {
            Ok(session) => session,
            Err(SessionFailure::Store(reason)) => return Err(Refusal::Unavailable(lang, reason)),
            Err(_) => return Err(expired()),
        };
        let role = crate::people::session_role(
            &console.app.ledger,
            &session.email,
            &session.session_id.to_string(),
            session.started_at,
        )
        .await
        .map_err(|reason| Refusal::Unavailable(lang, reason))?
        .ok_or_else(expired)?;
        Ok(Viewer {
            session,
            role,
            lang,
            theme: theme_of(&parts.headers),
            request_id: parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}

/// Why a console request was not served as asked.
#[derive(Debug)]
pub enum Refusal {
    /// No valid session on a page: go to the sign-in page.
    SignIn,
    /// No valid session on a change.
    Expired(Lang),
    /// The CSRF token is missing or wrong.
    Csrf(Lang),
    /// The role does not permit the change.
    Forbidden(Lang),
    /// Nothing by that id.
    NotFound(Lang),
    /// A dependency failed; the reason is logged, never shown.
    Unavailable(Lang, String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, lang, msg) = match self {
            Refusal::SignIn => return Redirect::to("/console/sign-in").into_response(),
            Refusal::Expired(lang) => (StatusCode::UNAUTHORIZED, lang, Msg::SessionExpired),
            Refusal::Csrf(lang) => (StatusCode::FORBIDDEN, lang, Msg::CsrfRefused),
            Refusal::Forbidden(lang) => (StatusCode::FORBIDDEN, lang, Msg::Forbidden),
            Refusal::NotFound(lang) => (StatusCode::NOT_FOUND, lang, Msg::NotFound),
            Refusal::Unavailable(lang, reason) => {
                tracing::warn!(%reason, "console request failed");
                (StatusCode::SERVICE_UNAVAILABLE, lang, Msg::Unavailable)
            }
        };
        (status, layout::message_page(lang, msg)).into_response()
    }
}

/// Turns a failed read or change into a refusal that logs its reason.
pub fn unavailable<E: std::fmt::Display>(lang: Lang) -> impl Fn(E) -> Refusal {
    move |error| Refusal::Unavailable(lang, error.to_string())
}

/// A page answered to a change, shown at `path`: htmx (which submits the console's forms)
/// replaces the address with it, so a reload reads that page instead of repeating the change.
pub fn answered_at(path: &str, page: maud::Markup) -> Response {
    let mut response = page.into_response();
    if let Ok(value) = HeaderValue::from_str(path) {
        response.headers_mut().insert("hx-replace-url", value);
    }
    response
}

/// `path?` with each given filter as a query parameter, in order, then `last` (the page or the
/// cursor of the next step), so a list's links keep its filters.
pub fn filtered_link(path: &str, fields: &[(&str, Option<String>)], last: (&str, &str)) -> String {
    let mut params = form_urlencoded::Serializer::new(String::new());
    for (key, value) in fields {
        if let Some(value) = value {
            params.append_pair(key, value);
        }
    }
    params.append_pair(last.0, last.1);
    format!("{path}?{}", params.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filtered_link_keeps_the_given_filters_encoded_and_ends_with_the_step() {
        let fields = [
            ("merchant", Some("m 1".to_owned())),
            ("status", None),
            ("q", Some("a&b".to_owned())),
        ];
        assert_eq!(
            filtered_link("/console/x", &fields, ("page", "2")),
            "/console/x?merchant=m+1&q=a%26b&page=2"
        );
    }

    #[test]
    fn only_loopback_over_http_is_not_secure() {
        let secure = |url: &str| {
            ConsoleConfig {
                public_url: url.into(),
                sessions: SessionSettings::default(),
                mailer: None,
            }
            .secure()
        };
        assert!(!secure("http://127.0.0.1:8080"));
        assert!(!secure("http://localhost:8080"));
        assert!(!secure("http://[::1]:8080"));
        assert!(secure("https://127.0.0.1"));
        assert!(secure("http://pay.example.com"));
        assert!(secure("http://127.0.0.1.example.com"));
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; ls_session=abc.def; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc.def"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
