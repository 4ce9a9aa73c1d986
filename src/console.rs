//! The console's part of the binary: its settings, `lightspeed admin login-link`, and the
//! router `serve` mounts beside the API.

use std::sync::Arc;
use std::time::Duration;

use lightspeed_api::AppState;
use lightspeed_console::{ConsoleConfig, SessionSettings};
use lightspeed_domain::SystemClock;
use lightspeed_eventstore::PgEventStore;
use lightspeed_services::Ledger;

use crate::config::{AdminAuth, Infra};

/// How long console sessions last.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Minutes a console session may stay unused before it ends.
    #[arg(long, env = "CONSOLE_IDLE_MINUTES", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub console_idle_minutes: u64,
    /// Hours after which a console session ends however busy.
    #[arg(long, env = "CONSOLE_ABSOLUTE_HOURS", default_value_t = 12,
          value_parser = clap::value_parser!(u64).range(1..=168))]
    pub console_absolute_hours: u64,
}

impl ConsoleArgs {
    /// The console's configuration for an API reached at `public_url`.
    pub fn config(&self, public_url: &str) -> ConsoleConfig {
        ConsoleConfig {
            public_url: public_url.to_owned(),
            sessions: SessionSettings {
                idle: Duration::from_secs(self.console_idle_minutes * 60),
                absolute: Duration::from_secs(self.console_absolute_hours * 3600),
                ..SessionSettings::default()
            },
            mailer: None,
        }
    }
}

/// `lightspeed admin login-link`'s arguments.
#[derive(Debug, clap::Args)]
pub struct LoginLinkArgs {
    /// Who signs in: an email of `ADMIN_EMAILS` or of the people registry.
    #[arg(long)]
    pub email: String,
    #[command(flatten)]
    pub admin: AdminAuth,
    #[command(flatten)]
    pub console: ConsoleArgs,
}

/// Prints a one-time sign-in link to the console (for a first sign-in on a fresh install, or
/// where no mailer is configured); recorded in the log as issued by `system:login-link`.
pub async fn login_link(infra: &Infra, args: &LoginLinkArgs) -> anyhow::Result<()> {
    let store = PgEventStore::new(infra.database().await?, Arc::new(SystemClock));
    let admins = args.admin.config()?;
    let ledger = Ledger::new(store).with_bootstrap_admins(
        admins
            .iter()
            .flat_map(|admins| admins.bootstrap_admins().iter().cloned()),
    );
    let link = lightspeed_console::login_link(
        &ledger,
        &args.console.config(&infra.public_url),
        &args.email,
        "system:login-link",
    )
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    println!("{link}");
    Ok(())
}

/// The console's routes over the API's state, its live pages following `hub`, sign-in links
/// sent through the SMTP server of `mail` when one is set.
pub fn router(
    state: &AppState,
    args: &ConsoleArgs,
    mail: &crate::config::Mail,
    hub: lightspeed_live::Hub,
) -> anyhow::Result<axum::Router> {
    let mut config = args.config(&state.config.public_url);
    config.mailer = mail
        .config()
        .map(|mail| lightspeed_adapters::mailer::Mailer::new(&mail))
        .transpose()?;
    Ok(lightspeed_console::router(state.clone(), config, hub))
}

/// What `lightspeed demo` prints about the console: its address, and a sign-in link for the
/// first of `ADMIN_EMAILS` (or how to get one).
pub async fn demo_lines(
    ledger: &Ledger,
    server: &crate::config::Server,
    public_url: &str,
) -> String {
    let address = format!("{public_url}/console");
    let first = server
        .admin
        .admin_emails
        .split(',')
        .map(str::trim)
        .find(|e| !e.is_empty());
    let admins = server.admin.config().ok().flatten();
    let link = match (first, admins) {
        (Some(email), Some(admins)) => lightspeed_console::login_link(
            &ledger
                .clone()
                .with_bootstrap_admins(admins.bootstrap_admins().iter().cloned()),
            &server.console.config(public_url),
            email,
            "system:demo",
        )
        .await
        .map(|link| format!("sign in as {email} with this one-time link: {link}")),
        _ => Err("set ADMIN_JWT_SECRET and ADMIN_EMAILS to sign in".to_owned()),
    };
    match link {
        Ok(link) => format!("The ops console is at {address}; {link}"),
        Err(why) => format!("The ops console is at {address} ({why})."),
    }
}
