//! The ops alerts' settings: every rule's bound, the channels and the routes (`ALERT_*`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lightspeed_adapters::mailer::Mailer;
use lightspeed_adapters::merchant_webhook::WebhookSecret;
use lightspeed_adapters::whatsapp::WhatsAppProvider;
use lightspeed_monitoring::alerts::AlertConfig;
use lightspeed_monitoring::alerts::channels::{
    AlertRoutes, Channels, EmailChannel, WebhookChannel, WhatsappChannel,
};

/// Ops alerts: bounds, channels, routes.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertSettings {
    /// Seconds between evaluations (by the one replica that leads).
    #[arg(long, env = "ALERT_INTERVAL_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub alert_interval_secs: u64,
    /// Share of a gateway's monthly limit at which it is near it, in basis points.
    #[arg(long, env = "ALERT_GATEWAY_LIMIT_NEAR_BPS", default_value_t = 8_000,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub alert_gateway_limit_near_bps: u32,
    /// Share of a merchant's quota cap at which ops are told it is near it, in basis points
    /// (from 8 000, the share at which the merchant is told).
    #[arg(long, env = "ALERT_QUOTA_NEAR_BPS", default_value_t = 8_000,
          value_parser = clap::value_parser!(u32).range(8_000..=10_000))]
    pub alert_quota_near_bps: u32,
    /// Minutes of the gateway success-rate window.
    #[arg(long, env = "ALERT_SUCCESS_RATE_WINDOW_MINUTES", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub alert_success_rate_window_minutes: u64,
    /// Success share under which a gateway's alert fires, in basis points.
    #[arg(long, env = "ALERT_SUCCESS_RATE_MIN_BPS", default_value_t = 8_000,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub alert_success_rate_min_bps: u32,
    /// Fewest payments decided in the window for a gateway's success rate to count.
    #[arg(long, env = "ALERT_SUCCESS_RATE_MIN_PAYMENTS", default_value_t = 20)]
    pub alert_success_rate_min_payments: u32,
    /// Jobs waiting in a queue over which its alert fires.
    #[arg(long, env = "ALERT_QUEUE_MAX_WAITING", default_value_t = 1_000)]
    pub alert_queue_max_waiting: u64,
    /// Seconds a queue's oldest waiting job may have waited before its alert fires.
    #[arg(long, env = "ALERT_QUEUE_MAX_AGE_SECS", default_value_t = 600)]
    pub alert_queue_max_age_secs: u64,
    /// Seconds a projection may lag the log.
    #[arg(long, env = "ALERT_PROJECTION_MAX_LAG_SECS", default_value_t = 60)]
    pub alert_projection_max_lag_secs: u64,
    /// Seconds the relay may lag the log.
    #[arg(long, env = "ALERT_RELAY_MAX_LAG_SECS", default_value_t = 60)]
    pub alert_relay_max_lag_secs: u64,
    /// Share of WhatsApp messages failing in 5 minutes over which its alert fires, in bps.
    #[arg(long, env = "ALERT_WHATSAPP_MAX_FAILURE_BPS", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub alert_whatsapp_max_failure_bps: u32,
    /// Ops email addresses alerts are mailed to (comma-separated; needs `SMTP_HOST`).
    #[arg(long, env = "ALERT_EMAILS", default_value = "")]
    pub alert_emails: String,
    /// Ops WhatsApp numbers alerts are sent to (comma-separated; needs `WA_API_KEY`).
    #[arg(long, env = "ALERT_WHATSAPP_NUMBERS", default_value = "")]
    pub alert_whatsapp_numbers: String,
    /// The WhatsApp template of ops alerts (its body takes state, kind and summary).
    #[arg(long, env = "ALERT_WHATSAPP_TEMPLATE", default_value = "ops_alert")]
    pub alert_whatsapp_template: String,
    /// URL alerts are posted to, signed as Standard Webhooks with `ALERT_WEBHOOK_SECRET`.
    #[arg(long, env = "ALERT_WEBHOOK_URL", hide_env_values = true)]
    pub alert_webhook_url: Option<String>,
    /// The alert webhook's `whsec_<base64>` signing secret.
    #[arg(long, env = "ALERT_WEBHOOK_SECRET", hide_env_values = true)]
    pub alert_webhook_secret: Option<String>,
    /// Which alert kinds go to which channels, e.g.
    /// `payment_failed=slack;gateway_limit_reached=slack,email,whatsapp;*=slack,email`;
    /// empty: every kind to every configured channel.
    #[arg(long, env = "ALERT_ROUTES", default_value = "")]
    pub alert_routes: String,
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What the alert settings need from the rest of the process.
pub struct AlertPlumbing {
    /// The Slack incoming-webhook URL.
    pub slack_webhook_url: Option<String>,
    /// The configured mailer.
    pub mailer: Option<Mailer>,
    /// The WhatsApp provider.
    pub whatsapp: Option<Arc<dyn WhatsAppProvider>>,
    /// The WhatsApp template language.
    pub whatsapp_language: String,
    /// The JetStream stream the relay copies the log to.
    pub relay_stream: String,
}

impl AlertSettings {
    /// The evaluator's configuration; refuses unknown routes and a webhook without its secret.
    pub fn config(&self, plumbing: AlertPlumbing) -> anyhow::Result<AlertConfig> {
        let routes = AlertRoutes::parse(&self.alert_routes)
            .map_err(|e| anyhow::anyhow!("ALERT_ROUTES: {e}"))?;
        let emails = list(&self.alert_emails);
        let numbers = list(&self.alert_whatsapp_numbers);
        let email = match (plumbing.mailer, emails.is_empty()) {
            (Some(mailer), false) => Some(EmailChannel { mailer, to: emails }),
            (None, false) => {
                tracing::warn!("ALERT_EMAILS is set but SMTP_HOST is not: alerts are not emailed");
                None
            }
            _ => None,
        };
        let whatsapp = match (plumbing.whatsapp, numbers.is_empty()) {
            (Some(provider), false) => Some(WhatsappChannel {
                provider,
                numbers,
                template: self.alert_whatsapp_template.clone(),
                language: plumbing.whatsapp_language,
            }),
            (None, false) => {
                tracing::warn!(
                    "ALERT_WHATSAPP_NUMBERS is set but WA_API_KEY is not: alerts are not sent by WhatsApp"
                );
                None
            }
            _ => None,
        };
        let webhook = match (&self.alert_webhook_url, &self.alert_webhook_secret) {
            (Some(url), Some(secret)) if !url.trim().is_empty() => Some(WebhookChannel {
                url: url.clone(),
                secret: WebhookSecret::parse(secret)
                    .ok()
                    .context("ALERT_WEBHOOK_SECRET must be whsec_ followed by base64")?,
            }),
            (Some(url), None) if !url.trim().is_empty() => {
                anyhow::bail!("ALERT_WEBHOOK_URL needs ALERT_WEBHOOK_SECRET")
            }
            _ => None,
        };
        let secs = Duration::from_secs;
        Ok(AlertConfig {
            interval: secs(self.alert_interval_secs),
            whatsapp_max_failure_bps: self.alert_whatsapp_max_failure_bps,
            gateway_limit_near_bps: self.alert_gateway_limit_near_bps,
            quota_near_bps: self.alert_quota_near_bps,
            success_rate_window: secs(self.alert_success_rate_window_minutes * 60),
            success_rate_min_bps: self.alert_success_rate_min_bps,
            success_rate_min_payments: i64::from(self.alert_success_rate_min_payments),
            queue_max_waiting: self.alert_queue_max_waiting,
            queue_max_age: secs(self.alert_queue_max_age_secs),
            projection_max_lag: secs(self.alert_projection_max_lag_secs),
            relay_max_lag: secs(self.alert_relay_max_lag_secs),
            relay_stream: Some(plumbing.relay_stream),
            slack_webhook_url: plumbing
                .slack_webhook_url
                .filter(|url| !url.trim().is_empty()),
            channels: Channels {
                slack_url: None,
                email,
                whatsapp,
                webhook,
                routes,
            },
            ..AlertConfig::default()
        })
    }
}
