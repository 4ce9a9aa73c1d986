//! Sending sign-in links by the configured mailer. The link itself is never logged.

use lightspeed_adapters::mailer::Mail;

use crate::web::Console;

/// Sends `link` to `email`; without a mailer, only notes that a link was issued and not sent.
pub async fn send_sign_in_link(console: &Console, email: &str, link: &str) -> Result<(), String> {
    let Some(mailer) = &console.config.mailer else {
        tracing::info!(
            email,
            "sign-in link issued; no mailer is configured, so it was not sent"
        );
        return Ok(());
    };
    let minutes = console.config.sessions.link.as_secs() / 60;
    let mail = Mail {
        to: email.to_owned(),
        subject: "Your LightSpeed console sign-in link".into(),
        text: format!(
            "Sign in to the LightSpeed console with this link. It works once, for {minutes} \
             minutes:\n\n{link}\n\nIf you did not ask for it, ignore this message.\n"
        ),
    };
    mailer.send(&mail).await.map_err(|e| e.to_string())
}
