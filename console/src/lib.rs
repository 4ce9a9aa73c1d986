//! The ops console: server-rendered pages at `/console` for the people who run the business,
//! with their sign-in by email link and server-side sessions kept in the log.
//!
//! Pages are HTML made on the server (maud) with a vendored htmx for forms that do not reload
//! the page; no script of our own, no Node at run time. Every change is a POST with the
//! session's CSRF token, checked against the person's role (read at each request) with
//! [`lightspeed_domain::access::Role::permits`], and made through the same `Ledger` calls as the
//! admin API, with `admin:<email>` as its actor.
//!
//! Overview, Transactions and Gateways are live: each follows one Server-Sent Events stream of
//! the process's [`Hub`] ([`live`]).
//!
//! The binary and the test harness mount [`router`] beside the API.

pub mod assets;
pub mod charts;
pub mod format;
pub mod i18n;
pub mod layout;
pub mod live;
pub mod mail;
pub mod pages;
pub mod people;
pub mod rebuilds;
pub mod session;
pub mod web;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use lightspeed_api::AppState;
use lightspeed_live::Hub;
use lightspeed_services::Ledger;

pub use session::{SessionSettings, Sessions};
pub use web::{Console, ConsoleConfig};

/// The console's routes under `/console`, with its security headers, over the API's state; its
/// live pages follow `hub` (the process's one hub).
pub fn router(app: AppState, config: ConsoleConfig, hub: Hub) -> Router {
    let secure = config.secure();
    let console = Console::new(app, config, hub);
    pages::routes()
        .route(
            "/console/live/rebuilds",
            get(pages::projections::rebuild_stream),
        )
        .route("/console/live/{page}", get(live::stream))
        .route("/console/assets/{name}", get(assets::serve))
        .route(
            "/console/sign-in",
            get(pages::sign_in::form).post(pages::sign_in::request_link),
        )
        .route(
            "/console/sign-in/{token}",
            get(pages::sign_in::confirm).post(pages::sign_in::redeem),
        )
        .route("/console/sign-out", post(pages::sign_in::sign_out))
        .route("/console/prefs", get(pages::sign_in::preferences))
        .with_state(console)
        .layer(axum::middleware::map_response(
            move |mut response: Response| async move {
                web::security_headers(response.headers_mut(), secure);
                response
            },
        ))
}

/// A one-time sign-in link for `email`, for `lightspeed admin login-link` and `lightspeed
/// demo`; recorded in the log with `actor`. `ledger` must know the bootstrap admins
/// (`Ledger::with_bootstrap_admins`).
pub async fn login_link(
    ledger: &Ledger,
    config: &ConsoleConfig,
    email: &str,
    actor: &str,
) -> Result<String, String> {
    let email = email.trim().to_ascii_lowercase();
    if people::role_of(ledger, &email).await?.is_none() {
        return Err(format!(
            "{email} may not use the console (not a known person)"
        ));
    }
    let sessions = Sessions::new(ledger.store().clone(), config.sessions);
    let token = sessions
        .issue_link(&email, actor)
        .await
        .map_err(|e| e.to_string())?;
    Ok(pages::sign_in::link_url(&config.public_url, &token))
}
