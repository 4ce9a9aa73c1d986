//! Signing in by email link, signing out, and the language and theme switches.
//!
//! The link's page asks for one click before the session starts: mail scanners that open
//! links do not use it up, and the session cookie (SameSite=Strict) is set by a same-site
//! request, so the browser sends it on the very next page.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::i18n::{LANG_COOKIE, Lang, Msg};
use crate::layout::bare_page;
use crate::session::SessionFailure;
use crate::session::decider::EndReason;
use crate::web::{
    Console, Refusal, SESSION_COOKIE, THEME_COOKIE, Viewer, set_cookie, theme_of, unavailable,
};

/// A year, for the preference cookies.
const PREFERENCE_SECONDS: u64 = 365 * 24 * 3600;

/// `GET /console/sign-in`: the form.
pub async fn form(headers: HeaderMap) -> Markup {
    let lang = Lang::of(&headers);
    sign_in_page(lang, theme_of(&headers), None)
}

fn sign_in_page(lang: Lang, theme: &str, notice: Option<Msg>) -> Markup {
    bare_page(
        lang,
        theme,
        lang.t(Msg::SignIn),
        html! {
            h2 { (lang.t(Msg::SignIn)) }
            @if let Some(notice) = notice {
                p.notice role="status" { (lang.t(notice)) }
            }
            form.stack method="post" action="/console/sign-in" {
                label { (lang.t(Msg::Email)) input type="email" name="email" required autocomplete="email" maxlength="254"; }
                button type="submit" { (lang.t(Msg::SendLink)) }
            }
        },
    )
}

/// The sign-in form's field.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    email: String,
}

/// `POST /console/sign-in`: sends a link to a person who may use the console; answers the
/// same page whoever asked, so the form tells nobody who has an account.
pub async fn request_link(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let email = form.email.trim().to_ascii_lowercase();
    if let Err(reason) = send_link(&console, &email).await {
        tracing::warn!(%reason, "console sign-in link not sent");
    }
    sign_in_page(lang, theme_of(&headers), Some(Msg::LinkSent)).into_response()
}

async fn send_link(console: &Console, email: &str) -> Result<(), String> {
    if email.len() > 254
        || crate::people::role_of(
            &console.app.ledger,
            console.app.config.admin.as_ref(),
            email,
        )
        .await?
        .is_none()
    {
        return Ok(());
    }
    let token = console
        .sessions
        .issue_link(email, "console:sign-in")
        .await
        .map_err(|e| e.to_string())?;
    let link = link_url(&console.config.public_url, &token);
    crate::mail::send_sign_in_link(console, email, &link).await
}

/// The address of a sign-in link.
pub fn link_url(public_url: &str, token: &str) -> String {
    format!(
        "{}/console/sign-in/{token}",
        public_url.trim_end_matches('/')
    )
}

/// `GET /console/sign-in/{token}`: one button that uses the link.
pub async fn confirm(headers: HeaderMap, Path(token): Path<String>) -> Markup {
    let lang = Lang::of(&headers);
    bare_page(
        lang,
        theme_of(&headers),
        lang.t(Msg::SignIn),
        html! {
            form.stack method="post" action={ "/console/sign-in/" (token) } {
                button type="submit" autofocus { (lang.t(Msg::SignIn)) }
            }
        },
    )
}

/// `POST /console/sign-in/{token}`: uses the link once and starts the session.
pub async fn redeem(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let lang = Lang::of(&headers);
    if !same_origin(&headers, &console.config.public_url) {
        return Refusal::Csrf(lang).into_response();
    }
    match console.sessions.redeem(&token).await {
        Ok((cookie, _email)) => {
            let secure = console.config.secure();
            (
                [(
                    header::SET_COOKIE,
                    set_cookie(SESSION_COOKIE, &cookie, None, secure),
                )],
                Redirect::to("/console"),
            )
                .into_response()
        }
        Err(SessionFailure::Store(reason)) => Refusal::Unavailable(lang, reason).into_response(),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            sign_in_page(lang, theme_of(&headers), Some(Msg::LinkInvalid)),
        )
            .into_response(),
    }
}

/// Whether a request made before any session comes from the console's own pages: its
/// `Origin`, when the browser sends one, must be the console's.
fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            public_url.trim_end_matches('/').starts_with(origin) && {
                let rest = &public_url.trim_end_matches('/')[origin.len()..];
                rest.is_empty() || rest.starts_with('/')
            }
        }
    }
}

/// A form with nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/sign-out`.
pub async fn sign_out(
    State(console): State<Console>,
    viewer: Viewer,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Refusal> {
    if !viewer.session.csrf_matches(&form.csrf) {
        return Err(Refusal::Csrf(viewer.lang));
    }
    console
        .sessions
        .end(
            viewer.session.session_id,
            EndReason::SignedOut,
            &viewer.actor(),
        )
        .await
        .map_err(unavailable(viewer.lang))?;
    let secure = console.config.secure();
    Ok((
        [(
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", Some(0), secure),
        )],
        Redirect::to("/console/sign-in"),
    )
        .into_response())
}

/// The switches' query.
#[derive(Debug, Deserialize)]
pub struct Preferences {
    lang: Option<String>,
    theme: Option<String>,
    back: Option<String>,
}

/// `GET /console/prefs?lang=hi&back=/console/gateways`: remembers a language or theme and goes
/// back (only to a console page).
pub async fn preferences(
    State(console): State<Console>,
    Query(prefs): Query<Preferences>,
) -> Response {
    let secure = console.config.secure();
    let mut cookies = Vec::new();
    if let Some(lang) = prefs.lang.as_deref().and_then(Lang::parse) {
        cookies.push(set_cookie(
            LANG_COOKIE,
            lang.code(),
            Some(PREFERENCE_SECONDS),
            secure,
        ));
    }
    if let Some(theme) = prefs
        .theme
        .as_deref()
        .filter(|t| ["light", "dark"].contains(t))
    {
        cookies.push(set_cookie(
            THEME_COOKIE,
            theme,
            Some(PREFERENCE_SECONDS),
            secure,
        ));
    }
    let back = prefs
        .back
        .filter(|b| b.starts_with("/console") && !b.contains("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/console".into());
    let mut response = Redirect::to(&back).into_response();
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_consoles_own_origin_may_sign_in() {
        let mut headers = HeaderMap::new();
        assert!(same_origin(&headers, "http://127.0.0.1:8080"));
        headers.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&headers, "http://127.0.0.1:8080"));
        assert!(!same_origin(&headers, "http://127.0.0.1:80801"));
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&headers, "http://127.0.0.1:8080"));
    }
}
