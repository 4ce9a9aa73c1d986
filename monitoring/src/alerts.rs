//! Ops alerts: a task the binary spawns ([`AlertEvaluator::run`]) that looks at the read
//! models, records alerts in the log (`ops_alert-<key>` streams, shown at `GET /admin/alerts`)
//! and posts each newly recorded one to Slack when `SLACK_WEBHOOK_URL` is set.
//!
//! - **Failed payment**: one alert per payment that failed (key `payment_failed.<payment id>`).
//! - **WhatsApp failure rate**: among the WhatsApp messages whose latest attempt happened in the
//!   last 5 minutes, the share whose latest attempt failed (a failed attempt awaiting retry, or a
//!   message given up on) is over 5 %, with at least 20 such messages. Raised once while it
//!   holds (key `whatsapp_failure_rate`), resolved when the share is back at or under 5 %.
//!
//! Replicas may each run an evaluator: the log lets exactly one of them record an alert, and only
//! the one that recorded it posts to Slack.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lightspeed_adapters::http::{HttpConfig, build_client};
use lightspeed_domain::ops_alert::AlertKind;
use lightspeed_eventstore::{CommandContext, Metadata};
use lightspeed_projections::ProjectionError;
use lightspeed_projections::alert_inputs::{
    FailedPayment, FailedWindow, failed_payments, whatsapp_outcomes,
};
use lightspeed_services::{AlertChange, Ledger, ServiceError};
use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

/// The actor recorded on alert events.
pub const ALERTS_ACTOR: &str = "system:alerts";
/// The key of the WhatsApp failure-rate alert.
pub const WHATSAPP_ALERT_KEY: &str = "whatsapp_failure_rate";
/// Failed payments looked at per query.
const PAYMENT_BATCH: i64 = 500;
/// How far back a straggler (a failure the read model showed late) is still looked for.
const STRAGGLER_OVERLAP: TimeDelta = TimeDelta::minutes(2);
/// Payments failing later than this after their initiation are not looked for (it bounds the
/// query to recent payments).
const PAYMENT_HORIZON: TimeDelta = TimeDelta::days(7);
/// WhatsApp messages queued longer ago than this are not counted (retries end well before).
const WHATSAPP_HORIZON: TimeDelta = TimeDelta::days(2);

/// How the evaluator decides.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// How often it evaluates (default 30 s).
    pub interval: Duration,
    /// The WhatsApp window (default 5 minutes).
    pub whatsapp_window: Duration,
    /// Failure share over which the WhatsApp alert fires, in basis points (default 500 = 5 %).
    pub whatsapp_max_failure_bps: u32,
    /// Fewest messages in the window for the share to count (default 20).
    pub whatsapp_min_messages: i64,
    /// How far back failed payments are looked at when the evaluator starts (default 1 hour).
    pub payment_lookback: Duration,
    /// Where newly recorded alerts are posted (a Slack incoming webhook), if anywhere.
    pub slack_webhook_url: Option<String>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            whatsapp_window: Duration::from_secs(5 * 60),
            whatsapp_max_failure_bps: 500,
            whatsapp_min_messages: 20,
            payment_lookback: Duration::from_secs(3600),
            slack_webhook_url: None,
        }
    }
}

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A read model could not be read.
    #[error("read model: {0}")]
    Read(#[from] ProjectionError),
    /// The log refused or failed.
    #[error(transparent)]
    Ledger(#[from] ServiceError),
    /// The HTTP client for Slack could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// What one evaluation recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Keys of the alerts this evaluation raised.
    pub raised: Vec<String>,
    /// Keys of the alerts this evaluation resolved.
    pub resolved: Vec<String>,
}

/// Evaluates the alert rules; see the module documentation.
pub struct AlertEvaluator {
    ledger: Ledger,
    config: AlertConfig,
    slack: Option<reqwest::Client>,
    /// The last failed payment looked at: (failed at, payment id).
    cursor: Mutex<Option<(DateTime<Utc>, Uuid)>>,
}

impl AlertEvaluator {
    /// An evaluator over `ledger`'s log and read models.
    pub fn new(ledger: Ledger, config: AlertConfig) -> Result<Self, AlertError> {
        let slack = match config.slack_webhook_url {
            Some(_) => Some(
                build_client(&HttpConfig::default())
                    .map_err(|e| AlertError::Client(e.to_string()))?,
            ),
            None => None,
        };
        Ok(Self {
            ledger,
            config,
            slack,
            cursor: Mutex::new(None),
        })
    }

    /// Evaluates every [`AlertConfig::interval`] forever; spawn it.
    pub async fn run(self) {
        let mut ticks = tokio::time::interval(self.config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.evaluate_once().await {
                Ok(_) => {}
                // A fresh start: the projectors are building the first versions.
                Err(AlertError::Read(ProjectionError::NotBuilt(view))) => {
                    tracing::debug!(view, "alerts wait for a read model's first build");
                }
                Err(e) => tracing::warn!(error = %e, "alert evaluation failed"),
            }
        }
    }

    /// Evaluates every rule once.
    pub async fn evaluate_once(&self) -> Result<Evaluation, AlertError> {
        let mut evaluation = Evaluation::default();
        self.failed_payments(&mut evaluation).await?;
        self.whatsapp_failure_rate(&mut evaluation).await?;
        Ok(evaluation)
    }

    fn pool(&self) -> &PgPool {
        self.ledger.store().pool()
    }

    fn context() -> CommandContext {
        CommandContext {
            command_id: None,
            metadata: Metadata {
                correlation_id: Some(Uuid::now_v7()),
                actor: Some(ALERTS_ACTOR.to_owned()),
                ..Metadata::default()
            },
        }
    }

    async fn failed_payments(&self, evaluation: &mut Evaluation) -> Result<(), AlertError> {
        let mut cursor = self.cursor.lock().await;
        let now = self.ledger.now();
        let (after_at, after_id) = cursor.unwrap_or((
            now - TimeDelta::from_std(self.config.payment_lookback).unwrap_or_default(),
            Uuid::nil(),
        ));
        let fresh = self.failed_between((after_at, after_id), None, now).await?;
        let stragglers = self
            .failed_between(
                (after_at - STRAGGLER_OVERLAP, Uuid::nil()),
                Some((after_at, after_id)),
                now,
            )
            .await?;
        for payment in stragglers.iter().chain(&fresh) {
            let key = format!(
                "{}.{}",
                AlertKind::PaymentFailed.as_str(),
                payment.payment_id
            );
            if self.ledger.alert_known_raised(&key) {
                continue;
            }
            let summary = payment_summary(payment);
            let change = self
                .ledger
                .raise_alert(
                    &key,
                    AlertKind::PaymentFailed,
                    summary.clone(),
                    &Self::context(),
                )
                .await?;
            if change == AlertChange::Recorded {
                self.post(&format!(":x: {summary}")).await;
                evaluation.raised.push(key);
            }
        }
        if let Some(last) = fresh.last() {
            *cursor = Some((last.failed_at, last.payment_id));
        } else if cursor.is_none() {
            *cursor = Some((after_at, after_id));
        }
        Ok(())
    }

    /// Failed payments after `after` and up to `up_to` (both by failure instant, then id).
    async fn failed_between(
        &self,
        after: (DateTime<Utc>, Uuid),
        up_to: Option<(DateTime<Utc>, Uuid)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<FailedPayment>, AlertError> {
        let window = FailedWindow {
            after,
            up_to,
            initiated_since: now - PAYMENT_HORIZON,
            limit: PAYMENT_BATCH,
        };
        Ok(failed_payments(self.pool(), &window).await?)
    }

    async fn whatsapp_failure_rate(&self, evaluation: &mut Evaluation) -> Result<(), AlertError> {
        let now = self.ledger.now();
        let since = now - TimeDelta::from_std(self.config.whatsapp_window).unwrap_or_default();
        let outcomes = whatsapp_outcomes(self.pool(), since, now - WHATSAPP_HORIZON).await?;
        let (sent, failed) = (outcomes.sent, outcomes.failed);
        let total = sent + failed;
        let window_minutes = self.config.whatsapp_window.as_secs() / 60;
        let summary = format!(
            "WhatsApp: {failed} of {total} messages failed in the last {window_minutes} minutes"
        );
        // Shares compared as integer fractions: failed / total > bps / 10 000.
        let over = i128::from(failed) * 10_000
            > i128::from(total) * i128::from(self.config.whatsapp_max_failure_bps);
        let decided = if total >= self.config.whatsapp_min_messages && over {
            let change = self
                .ledger
                .raise_alert(
                    WHATSAPP_ALERT_KEY,
                    AlertKind::WhatsappFailureRate,
                    summary.clone(),
                    &Self::context(),
                )
                .await?;
            (change == AlertChange::Recorded).then(|| {
                evaluation.raised.push(WHATSAPP_ALERT_KEY.to_owned());
                format!(":warning: {summary}")
            })
        } else if !over {
            let change = self
                .ledger
                .resolve_alert(WHATSAPP_ALERT_KEY, summary.clone(), &Self::context())
                .await?;
            (change == AlertChange::Recorded).then(|| {
                evaluation.resolved.push(WHATSAPP_ALERT_KEY.to_owned());
                format!(":white_check_mark: resolved: {summary}")
            })
        } else {
            // Over the bound on too few messages to tell: leave the alert as it is.
            None
        };
        if let Some(text) = decided {
            self.post(&text).await;
        }
        Ok(())
    }

    /// Posts to Slack; a failure is logged (without the URL, which is a credential) and dropped:
    /// the alert is in the log either way.
    async fn post(&self, text: &str) {
        let (Some(client), Some(url)) = (&self.slack, &self.config.slack_webhook_url) else {
            return;
        };
        let sent = client
            .post(url)
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                tracing::warn!(
                    status = response.status().as_u16(),
                    "Slack refused an alert"
                )
            }
            Err(e) => tracing::warn!(error = %e.without_url(), "cannot post an alert to Slack"),
        }
    }
}

/// Rupees and paise as text, e.g. `₹1234.56`, in integers (no floating point near money).
fn rupees(paise: i64) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    let paise = paise.unsigned_abs();
    format!("{sign}₹{}.{:02}", paise / 100, paise % 100)
}

fn payment_summary(payment: &FailedPayment) -> String {
    format!(
        "Payment {} of {} ({}) failed on {} gateway {:?}: {} {} ({})",
        payment.payment_id,
        payment
            .company_name
            .as_deref()
            .unwrap_or("an unknown merchant"),
        payment.merchant_id,
        payment.provider.as_deref().unwrap_or("an unknown"),
        payment.label.as_deref().unwrap_or("?"),
        payment.failure_code.as_deref().unwrap_or("no code"),
        payment.failure_description.as_deref().unwrap_or(""),
        rupees(payment.amount_paise),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_shown_in_rupees_without_floats() {
        assert_eq!(rupees(49_900), "₹499.00");
        assert_eq!(rupees(5), "₹0.05");
        assert_eq!(rupees(-123_456), "-₹1234.56");
    }
}
