//! Configuration shared by the subcommands: environment variables with developer defaults.

use std::time::Duration;

use anyhow::Context;
use lightspeed_eventstore::migrate::{check_migrated, ensure_database, migrate};
use lightspeed_eventstore::nats::LogStreamConfig;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// How this process logs and exports traces.
#[derive(Debug, Clone, clap::Args)]
pub struct Telemetry {
    /// `json` for JSON log lines; text otherwise.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
    /// Which logs are written, as a `tracing` filter (e.g. `info,lightspeed_api=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log_filter: String,
    /// OTLP/HTTP base URL spans are exported to (e.g. `http://otel-collector:4318`); none without.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// The service name exported spans carry.
    #[arg(
        long,
        env = "OTEL_SERVICE_NAME",
        default_value = "lightspeed",
        global = true
    )]
    pub otel_service_name: String,
}

impl Telemetry {
    /// The telemetry configuration these settings describe.
    pub fn config(&self) -> lightspeed_api::telemetry::TelemetryConfig {
        lightspeed_api::telemetry::TelemetryConfig {
            json: self.log_format.eq_ignore_ascii_case("json"),
            filter: self.log_filter.clone(),
            otlp_endpoint: self
                .otel_exporter_otlp_endpoint
                .clone()
                .filter(|url| !url.trim().is_empty()),
            service_name: self.otel_service_name.clone(),
        }
    }
}

/// Where the log, the broker and the outside services are.
#[derive(Debug, Clone, clap::Args)]
pub struct Infra {
    /// PostgreSQL holding the event log and the read models. The default is on loopback, where
    /// TLS would cost CPU on both ends and protect nothing; elsewhere use `sslmode=verify-full`.
    #[arg(
        long,
        env = "DATABASE_URL",
        // The URL may carry a password; `--help` must not print it.
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/lightspeed?sslmode=disable"
    )]
    pub database_url: String,
    /// Most connections this process opens to PostgreSQL.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
    /// NATS server with JetStream.
    #[arg(
        long,
        env = "NATS_URL",
        hide_env_values = true,
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// JetStream stream that carries the log.
    #[arg(long, env = "NATS_STREAM", default_value = "LEDGER")]
    pub nats_stream: String,
    /// First token of every subject the log is published on.
    #[arg(long, env = "NATS_SUBJECT_PREFIX", default_value = "ledger")]
    pub nats_subject_prefix: String,
    /// Where payers, merchants and PSPs reach the API (checkout, return and webhook URLs).
    #[arg(long, env = "PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub public_url: String,
    /// Development only: merchant webhook endpoints may use plain `http` and loopback addresses
    /// (otherwise `https` to public addresses only).
    #[arg(long, env = "WEBHOOK_ALLOW_LOOPBACK_HTTP", default_value_t = false)]
    pub webhook_allow_loopback_http: bool,
    /// Secret keys sealing credentials: `key_id:base64(32 bytes)[,…]`, the first one seals.
    /// Without it an insecure development key is used, and a warning says so.
    #[arg(long, env = "ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
    /// Commission payouts and reconciliation.
    #[command(flatten)]
    pub payouts: Payouts,
    /// WhatsApp notifications.
    #[command(flatten)]
    pub whatsapp: WhatsApp,
    /// Email (sign-in links, alerts, invoices).
    #[command(flatten)]
    pub mail: Mail,
    /// Tax lines on monthly commission invoices: `NAME:BASIS_POINTS[,…]`, e.g. `IGST:1800` or
    /// `CGST:900,SGST:900`; none by default. Each line is rounded half-up to the paisa.
    #[arg(long, env = "INVOICE_TAXES", default_value = "", value_parser = parse_invoice_taxes)]
    pub invoice_taxes: InvoiceTaxes,
}

/// The tax lines of `INVOICE_TAXES`.
#[derive(Debug, Clone, Default)]
pub struct InvoiceTaxes(pub Vec<lightspeed_domain::invoice::TaxRate>);

fn parse_invoice_taxes(text: &str) -> Result<InvoiceTaxes, String> {
    lightspeed_domain::invoice::TaxRate::parse_list(text).map(InvoiceTaxes)
}

/// The SMTP server the product sends email through.
#[derive(Debug, Clone, clap::Args)]
pub struct Mail {
    /// SMTP server host; email is off without it.
    #[arg(long, env = "SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP server port (submission with STARTTLS).
    #[arg(long, env = "SMTP_PORT", default_value_t = lightspeed_adapters::mailer::DEFAULT_SMTP_PORT)]
    pub smtp_port: u16,
    /// SMTP user name.
    #[arg(long, env = "SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password.
    #[arg(long, env = "SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// The sender of every message, e.g. `LightSpeed <ops@example.com>`.
    #[arg(
        long,
        env = "SMTP_FROM",
        default_value = "LightSpeed <lightspeed@localhost>"
    )]
    pub smtp_from: String,
    /// Require STARTTLS; only a loopback SMTP_HOST may turn it off.
    #[arg(long, env = "SMTP_STARTTLS", default_value_t = true, action = clap::ArgAction::Set)]
    pub smtp_starttls: bool,
}

impl Mail {
    /// The mailer's settings; `None` without `SMTP_HOST`.
    pub fn config(&self) -> Option<lightspeed_adapters::mailer::MailerConfig> {
        Some(lightspeed_adapters::mailer::MailerConfig {
            host: self.smtp_host.clone()?,
            port: self.smtp_port,
            username: self.smtp_username.clone(),
            password: self.smtp_password.clone().map(Into::into),
            from: self.smtp_from.clone(),
            starttls: self.smtp_starttls,
        })
    }
}

/// The WhatsApp provider: Meta's Cloud API, or Gupshup (a BSP with expiring tokens).
#[derive(Debug, Clone, clap::Args)]
pub struct WhatsApp {
    /// `meta` or `gupshup`.
    #[arg(long, env = "WA_PROVIDER", default_value = "meta")]
    pub wa_provider: String,
    /// Provider base URL (default: the provider's own).
    #[arg(long, env = "WA_API_URL")]
    pub wa_api_url: Option<String>,
    /// Meta: system-user access token; Gupshup: partner client secret. WhatsApp is off without.
    #[arg(long, env = "WA_API_KEY", hide_env_values = true)]
    pub wa_api_key: Option<String>,
    /// Meta: the sending phone number id.
    #[arg(long, env = "WA_PHONE_NUMBER_ID")]
    pub wa_phone_number_id: Option<String>,
    /// Gupshup: the app id.
    #[arg(long, env = "WA_APP_ID")]
    pub wa_app_id: Option<String>,
    /// Gupshup: the partner login email.
    #[arg(long, env = "WA_PARTNER_EMAIL")]
    pub wa_partner_email: Option<String>,
    /// Gupshup: the sending number.
    #[arg(long, env = "WA_SOURCE")]
    pub wa_source: Option<String>,
    /// Gupshup: the app name (`src.name`).
    #[arg(long, env = "WA_APP_NAME")]
    pub wa_app_name: Option<String>,
    /// Template of `LOW_BALANCE` alerts (Gupshup: its id).
    #[arg(long, env = "WA_TEMPLATE_LOW_BALANCE", default_value = "low_balance")]
    pub wa_template_low_balance: String,
    /// Template of `TXN_UPDATE` messages (Gupshup: its id).
    #[arg(long, env = "WA_TEMPLATE_TXN_UPDATE", default_value = "txn_update")]
    pub wa_template_txn_update: String,
    /// Template of the suspension message (Gupshup: its id).
    #[arg(
        long,
        env = "WA_TEMPLATE_ACCOUNT_SUSPENDED",
        default_value = "account_suspended"
    )]
    pub wa_template_account_suspended: String,
    /// Template of the reinstatement message (Gupshup: its id).
    #[arg(
        long,
        env = "WA_TEMPLATE_ACCOUNT_REINSTATED",
        default_value = "account_reinstated"
    )]
    pub wa_template_account_reinstated: String,
    /// Template of the payout-sent message (Gupshup: its id).
    #[arg(long, env = "WA_TEMPLATE_PAYOUT_SENT", default_value = "payout_sent")]
    pub wa_template_payout_sent: String,
    /// Template of the payout-failed message (Gupshup: its id).
    #[arg(
        long,
        env = "WA_TEMPLATE_PAYOUT_FAILED",
        default_value = "payout_failed"
    )]
    pub wa_template_payout_failed: String,
    /// Template of the invoice-issued message (Gupshup: its id).
    #[arg(
        long,
        env = "WA_TEMPLATE_INVOICE_ISSUED",
        default_value = "invoice_issued"
    )]
    pub wa_template_invoice_issued: String,
    /// Template language (Meta).
    #[arg(long, env = "WA_LANGUAGE", default_value = "en")]
    pub wa_language: String,
    /// Messages sent at once.
    #[arg(long, env = "WA_CONCURRENCY", default_value_t = 30)]
    pub wa_concurrency: usize,
    /// Seconds between low-balance sweeps.
    #[arg(long, env = "LOW_BALANCE_INTERVAL_SECS", default_value_t = 600)]
    pub low_balance_interval_secs: u64,
}

impl WhatsApp {
    /// The provider client; `None` (WhatsApp off) without `WA_API_KEY`.
    pub fn provider(
        &self,
        keyring: &std::sync::Arc<lightspeed_adapters::secrets::Keyring>,
        clock: std::sync::Arc<dyn lightspeed_domain::Clock>,
    ) -> anyhow::Result<Option<std::sync::Arc<dyn lightspeed_adapters::whatsapp::WhatsAppProvider>>>
    {
        use lightspeed_adapters::http::{HttpConfig, build_client};
        use lightspeed_adapters::secrets::Secret;
        use lightspeed_adapters::whatsapp::{GupshupClient, GupshupConfig, MetaCloudClient};
        let Some(key) = &self.wa_api_key else {
            return Ok(None);
        };
        let required = |value: &Option<String>, name: &str| {
            value
                .clone()
                .with_context(|| format!("{name} is required for WA_PROVIDER={}", self.wa_provider))
        };
        let http = build_client(&HttpConfig::default())?;
        Ok(Some(match self.wa_provider.as_str() {
            "meta" => std::sync::Arc::new(MetaCloudClient::new(
                http,
                self.wa_api_url.clone(),
                required(&self.wa_phone_number_id, "WA_PHONE_NUMBER_ID")?,
                Secret::from(key.as_str()),
            )),
            "gupshup" => {
                let mut config = GupshupConfig::new(
                    required(&self.wa_app_id, "WA_APP_ID")?,
                    required(&self.wa_partner_email, "WA_PARTNER_EMAIL")?,
                    Secret::from(key.as_str()),
                    required(&self.wa_source, "WA_SOURCE")?,
                    required(&self.wa_app_name, "WA_APP_NAME")?,
                );
                if let Some(url) = &self.wa_api_url {
                    config.base_url = url.clone();
                }
                std::sync::Arc::new(GupshupClient::with_http(
                    http,
                    config,
                    std::sync::Arc::clone(keyring),
                    clock,
                ))
            }
            other => anyhow::bail!("WA_PROVIDER must be meta or gupshup, not {other:?}"),
        }))
    }

    /// Templates, language and concurrency of the sender.
    pub fn settings(&self) -> lightspeed_workers::WhatsAppSettings {
        let mut settings = lightspeed_workers::WhatsAppSettings::new(
            self.wa_template_low_balance.clone(),
            self.wa_template_txn_update.clone(),
        );
        settings.language = self.wa_language.clone();
        settings.concurrency = self.wa_concurrency;
        settings
    }

    /// The templates of account-status, payout and invoice messages.
    pub fn message_templates(&self) -> lightspeed_workers::MessageTemplates {
        lightspeed_workers::MessageTemplates {
            account_suspended: self.wa_template_account_suspended.clone(),
            account_reinstated: self.wa_template_account_reinstated.clone(),
            payout_sent: self.wa_template_payout_sent.clone(),
            payout_failed: self.wa_template_payout_failed.clone(),
            invoice_issued: self.wa_template_invoice_issued.clone(),
        }
    }

    /// How often the low-balance watcher sweeps.
    pub fn low_balance_interval(&self) -> Duration {
        Duration::from_secs(self.low_balance_interval_secs.max(1))
    }
}

/// Commission payouts through RazorpayX, and the pending-payment reconciliation.
#[derive(Debug, Clone, clap::Args)]
pub struct Payouts {
    /// RazorpayX key id; payouts are off without it.
    #[arg(long, env = "RAZORPAYX_KEY_ID")]
    pub razorpayx_key_id: Option<String>,
    /// RazorpayX key secret.
    #[arg(long, env = "RAZORPAYX_KEY_SECRET", hide_env_values = true)]
    pub razorpayx_key_secret: Option<String>,
    /// Secret of the RazorpayX payout webhook (`POST /webhook/razorpayx`).
    #[arg(long, env = "RAZORPAYX_WEBHOOK_SECRET", hide_env_values = true)]
    pub razorpayx_webhook_secret: Option<String>,
    /// Our RazorpayX account number, payouts are made from.
    #[arg(long, env = "RAZORPAYX_ACCOUNT_NUMBER")]
    pub razorpayx_account_number: Option<String>,
    /// The fund account (`fa_…`) commission is paid out to.
    #[arg(long, env = "RAZORPAYX_FUND_ACCOUNT_ID")]
    pub razorpayx_fund_account_id: Option<String>,
    /// RazorpayX API host.
    #[arg(long, env = "RAZORPAYX_BASE_URL", default_value = lightspeed_adapters::payouts::BASE_URL)]
    pub razorpayx_base_url: String,
    /// Transfer rail: IMPS, NEFT, RTGS or UPI.
    #[arg(long, env = "RAZORPAYX_PAYOUT_MODE", default_value = "IMPS")]
    pub razorpayx_payout_mode: String,
    /// Smallest payout made, in paise, whatever a merchant's own minimum.
    #[arg(long, env = "PAYOUT_MINIMUM_PAISE", default_value_t = 100)]
    pub payout_minimum_paise: i64,
    /// Time of the daily payout run, IST (`HH:MM`).
    #[arg(long, env = "PAYOUT_TIME_IST", default_value = "02:00")]
    pub payout_time_ist: chrono::NaiveTime,
    /// Seconds between reconciliation sweeps (also the window of one check per payment).
    #[arg(long, env = "RECONCILE_INTERVAL_SECS", default_value_t = 3600)]
    pub reconcile_interval_secs: u64,
    /// Seconds after initiation a payment without an outcome is checked with its PSP.
    #[arg(long, env = "RECONCILE_MIN_AGE_SECS", default_value_t = 1800)]
    pub reconcile_min_age_secs: u64,
    /// Seconds after its request a refund still requested or submitted is checked with its PSP
    /// (and created again if the PSP does not know it).
    #[arg(long, env = "RECONCILE_REFUND_MIN_AGE_SECS", default_value_t = 1800)]
    pub reconcile_refund_min_age_secs: u64,
}

impl Payouts {
    /// The smallest payout made.
    pub fn minimum(&self) -> lightspeed_domain::Paise {
        lightspeed_domain::Paise(self.payout_minimum_paise)
    }

    /// The payouts worker's settings; `None` (payouts off) unless the RazorpayX account is
    /// configured in full.
    pub fn worker_settings(&self) -> anyhow::Result<Option<lightspeed_workers::PayoutSettings>> {
        use lightspeed_adapters::secrets::Secret;
        let (Some(key_id), Some(key_secret), Some(account), Some(fund_account)) = (
            &self.razorpayx_key_id,
            &self.razorpayx_key_secret,
            &self.razorpayx_account_number,
            &self.razorpayx_fund_account_id,
        ) else {
            return Ok(None);
        };
        check_secret(
            "RAZORPAYX_WEBHOOK_SECRET",
            self.razorpayx_webhook_secret.as_deref(),
        )?;
        let mode = serde_json::from_value(serde_json::Value::String(
            self.razorpayx_payout_mode.to_ascii_uppercase(),
        ))
        .context("RAZORPAYX_PAYOUT_MODE must be IMPS, NEFT, RTGS or UPI")?;
        let mut settings = lightspeed_workers::PayoutSettings::new(
            key_id.clone(),
            Secret::from(key_secret.as_str()),
            Secret::from(self.razorpayx_webhook_secret.as_deref().unwrap_or_default()),
            account.clone(),
            fund_account.clone(),
        );
        settings.base_url = Some(self.razorpayx_base_url.clone());
        settings.mode = mode;
        Ok(Some(settings))
    }

    /// What the API needs: the payout webhook's secret and the smallest payout.
    pub fn api_settings(&self) -> lightspeed_api::PayoutApiSettings {
        lightspeed_api::PayoutApiSettings {
            webhook_secret: self
                .razorpayx_webhook_secret
                .as_deref()
                .map(lightspeed_adapters::secrets::Secret::from),
            minimum: self.minimum(),
        }
    }

    /// The daily payout run.
    pub fn schedule(&self) -> lightspeed_workers::payout_schedule::PayoutSchedule {
        lightspeed_workers::payout_schedule::PayoutSchedule {
            at: self.payout_time_ist,
            ..lightspeed_workers::payout_schedule::PayoutSchedule::daily(self.minimum())
        }
    }

    /// How often reconciliation sweeps.
    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.reconcile_interval_secs.max(60))
    }

    /// What a reconciliation sweep looks at.
    pub fn reconciliation(&self) -> lightspeed_workers::reconciliation::ReconciliationSettings {
        lightspeed_workers::reconciliation::ReconciliationSettings {
            min_age: Duration::from_secs(self.reconcile_min_age_secs),
            refund_min_age: Duration::from_secs(self.reconcile_refund_min_age_secs),
            window: self.reconcile_interval(),
            ..Default::default()
        }
    }
}

impl Infra {
    /// Which merchant webhook endpoint addresses webhooks may reach.
    pub fn webhook_targets(&self) -> lightspeed_adapters::webhook_target::TargetPolicy {
        lightspeed_adapters::webhook_target::TargetPolicy {
            allow_loopback_http: self.webhook_allow_loopback_http,
        }
    }

    /// The JetStream stream and subjects of the log.
    pub fn log_stream(&self) -> LogStreamConfig {
        LogStreamConfig {
            stream_name: self.nats_stream.clone(),
            subject_prefix: self.nats_subject_prefix.clone(),
        }
    }

    /// A pool on a database whose schema matches this binary; refuses an unmigrated one.
    pub async fn database(&self) -> anyhow::Result<PgPool> {
        let pool = self.pool().await?;
        check_migrated(&pool).await?;
        Ok(pool)
    }

    /// Creates the database if needed and applies every pending migration.
    pub async fn migrate(&self) -> anyhow::Result<PgPool> {
        ensure_database(&self.database_url).await?;
        let pool = self.pool().await?;
        migrate(&pool).await?;
        Ok(pool)
    }

    async fn pool(&self) -> anyhow::Result<PgPool> {
        PgPoolOptions::new()
            .max_connections(self.database_max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(lightspeed_eventstore::migrate::connect_options(
                &self.database_url,
            )?)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to PostgreSQL at {}",
                    redact(&self.database_url)
                )
            })
    }

    /// The keyring from `ENCRYPTION_KEY`, or the development key with a warning.
    pub fn keyring(&self) -> anyhow::Result<lightspeed_adapters::secrets::Keyring> {
        match &self.encryption_key {
            Some(spec) => Ok(lightspeed_adapters::secrets::Keyring::parse(spec)?),
            None => {
                tracing::warn!(
                    "ENCRYPTION_KEY is not set: sealing secrets with the insecure development key"
                );
                Ok(lightspeed_adapters::secrets::Keyring::dev_insecure())
            }
        }
    }

    /// A connection to the configured NATS server.
    pub async fn nats(&self) -> anyhow::Result<async_nats::Client> {
        async_nats::connect(&self.nats_url)
            .await
            .with_context(|| format!("cannot connect to NATS at {}", self.nats_url))
    }
}

/// A connection URL without its password, fit for a log line.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_a_log_line() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
    }
}

/// How the HTTP API is served.
#[derive(Debug, Clone, clap::Args)]
pub struct Server {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// `POST /payment/initiate` requests per minute per client key.
    #[arg(long, env = "INITIATE_RATE_PER_MINUTE", default_value_t = 100)]
    pub initiate_per_minute: u32,
    /// Largest request body, in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 64 * 1024)]
    pub body_limit_bytes: usize,
    /// Browser origins allowed to call the admin API (comma-separated); none by default.
    #[arg(long, env = "ADMIN_ORIGINS", default_value = "")]
    pub admin_origins: String,
    /// Source-address allow-lists for PSP webhooks, e.g. `razorpay=published;payu=10.0.0.0/8`;
    /// off by default.
    #[arg(long, env = "WEBHOOK_IP_ALLOWLIST", default_value = "")]
    pub webhook_ip_allowlist: String,
    /// Reverse proxies in front of the API whose `X-Forwarded-For` entries are trusted.
    #[arg(long, env = "TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub trusted_proxy_hops: usize,
    /// Days the sandbox PSP keeps an order after its creation; older ones are removed.
    #[arg(long, env = "SANDBOX_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub sandbox_retention_days: u32,
    /// Milliseconds after which the sandbox PSP settles each refund as processed, as a bank
    /// would; unset, only its settle control does (`lightspeed demo` sets 2 000).
    #[arg(long, env = "SANDBOX_REFUND_AUTO_SETTLE_MS")]
    pub sandbox_refund_auto_settle_ms: Option<u64>,
    /// Slack incoming-webhook URL ops alerts are posted to; alerts are only recorded without it.
    #[arg(long, env = "SLACK_WEBHOOK_URL", hide_env_values = true)]
    pub slack_webhook_url: Option<String>,
    /// Ops alerts: bounds, channels, routes.
    #[command(flatten)]
    pub alerts: crate::alert_settings::AlertSettings,
    /// Who may use the admin API.
    #[command(flatten)]
    pub admin: AdminAuth,
    /// How long console sessions last.
    #[command(flatten)]
    pub console: crate::console::ConsoleArgs,
}

/// The admin API's sign-in: the token signing secret and the allow-list.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminAuth {
    /// Secret signing admin tokens (HS256), at least 32 bytes, e.g. `openssl rand -base64 32`;
    /// the admin API answers 503 ADMIN_DISABLED without it.
    #[arg(long, env = "ADMIN_JWT_SECRET", hide_env_values = true)]
    pub admin_jwt_secret: Option<String>,
    /// Emails allowed to use the admin API, comma-separated (case-insensitive).
    #[arg(long, env = "ADMIN_EMAILS", default_value = "")]
    pub admin_emails: String,
}

impl AdminAuth {
    /// The admin API's configuration; `None` without a secret. A secret shorter than 32 bytes or
    /// an empty allow-list is refused.
    pub fn config(&self) -> anyhow::Result<Option<lightspeed_api::admin_auth::AdminAuthConfig>> {
        let Some(secret) = &self.admin_jwt_secret else {
            return Ok(None);
        };
        let emails = self
            .admin_emails
            .split(',')
            .filter(|e| !e.trim().is_empty());
        lightspeed_api::admin_auth::AdminAuthConfig::new(secret.as_str(), emails)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{e} (ADMIN_JWT_SECRET is {} bytes)", secret.len()))
    }
}

/// The shortest secret of our own choosing accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Refuses a secret we choose (not one a provider issues) shorter than [`MIN_SECRET_BYTES`].
fn check_secret(name: &str, secret: Option<&str>) -> anyhow::Result<()> {
    match secret {
        Some(secret) if secret.len() < MIN_SECRET_BYTES => anyhow::bail!(
            "{name} must be at least {MIN_SECRET_BYTES} bytes (it is {}); generate one with `openssl rand -base64 32`",
            secret.len()
        ),
        _ => Ok(()),
    }
}

impl Server {
    /// The sandbox PSP's configuration, for an API reached at `public_url`.
    pub fn sandbox_config(&self, public_url: &str) -> lightspeed_sandbox::SandboxConfig {
        let mut config = lightspeed_sandbox::SandboxConfig::new(format!("{public_url}/sandbox"));
        config.retention = Duration::from_secs(u64::from(self.sandbox_retention_days) * 86_400);
        config.refund_auto_settle = self
            .sandbox_refund_auto_settle_ms
            .map(Duration::from_millis);
        config
    }

    /// The API's configuration: these settings, the public URL, and the admin sign-in; refuses
    /// a secret of ours shorter than 32 bytes.
    pub fn api_config(&self, infra: &Infra) -> anyhow::Result<lightspeed_api::ApiConfig> {
        use anyhow::Context as _;
        let mut config = lightspeed_api::ApiConfig::new(infra.public_url.clone());
        config.initiate_per_minute = std::num::NonZeroU32::new(self.initiate_per_minute)
            .context("INITIATE_RATE_PER_MINUTE must be at least 1")?;
        config.body_limit_bytes = self.body_limit_bytes;
        config.admin = self.admin.config()?;
        check_secret(
            "RAZORPAYX_WEBHOOK_SECRET",
            infra.payouts.razorpayx_webhook_secret.as_deref(),
        )?;
        config.admin_origins = lightspeed_api::protection::parse_origins(&self.admin_origins)
            .map_err(|e| anyhow::anyhow!("ADMIN_ORIGINS: {e}"))?;
        config.webhook_ip_allowlist =
            lightspeed_api::protection::WebhookIpAllowlist::parse(&self.webhook_ip_allowlist)
                .map_err(|e| anyhow::anyhow!("WEBHOOK_IP_ALLOWLIST: {e}"))?;
        config.trusted_proxy_hops = self.trusted_proxy_hops;
        config.readiness.relay_stream = Some(infra.nats_stream.clone());
        config.payouts = infra.payouts.api_settings();
        config.webhook_targets = infra.webhook_targets();
        if config.admin.is_none() {
            tracing::info!("ADMIN_JWT_SECRET is not set: the admin API answers 503 ADMIN_DISABLED");
        }
        Ok(config)
    }
}
