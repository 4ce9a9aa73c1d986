//! Ops alerts: a task the binary spawns ([`AlertEvaluator::run`]) that looks at the read models,
//! the log, the queues and the projectors' lag, records alerts in the log (`ops_alert-<key>`
//! streams, shown at `GET /admin/alerts`, acknowledged at `POST /admin/alerts/{id}/ack`) and
//! tells ops through the channels each kind is routed to ([`channels`]).
//!
//! The rules ([`rules`]; every bound is in [`AlertConfig`], set by the binary's `ALERT_*`
//! settings):
//!
//! - **Failed payment**: one alert per payment that failed (key `payment_failed.<payment id>`).
//! - **Failed payout**: one alert per payout reversed (key `payout_failed.<payout id>`).
//! - **WhatsApp failure rate**: among the WhatsApp messages whose latest attempt happened in the
//!   window (5 minutes), the share whose latest attempt failed is over 5 %, with at least 20
//!   such messages (key `whatsapp_failure_rate`).
//! - **Gateway near / at its monthly limit**: this IST month's volume is at least 80 % / 100 %
//!   of the limit (keys `gateway_limit_near.<gateway>`, `gateway_limit_reached.<gateway>`).
//! - **Merchant near / at a quota cap**: a merchant's use of one of its quota caps this period
//!   (IST day or month) is at least 80 % of the cap / the cap; resolved when the period resets
//!   or the cap is raised or lifted (keys `quota_near.<merchant>.<cap>`,
//!   `quota_reached.<merchant>.<cap>`, the cap being e.g. `daily_count`).
//! - **No gateway available**: an active merchant with gateways, none of which could take a
//!   payment (key `no_gateway_available.<merchant>`).
//! - **Gateway temporarily failed**: an enabled gateway resting after failures
//!   (`gateway_temporarily_failed.<gateway>`).
//! - **Gateway success rate**: under 80 % of the payments decided in the window (15 minutes),
//!   with at least 20 of them (`gateway_success_rate.<gateway>`).
//! - **Queue backlog**: more than 1 000 jobs waiting, or the oldest waiting job (its time in
//!   the broker) waiting for over 10 minutes (`queue_backlog.<queue>`).
//! - **Projection lag**, **relay lag**: over a minute behind the log
//!   (`projection_lag.<projection>`, `relay_lag`).
//! - **Webhook endpoint disabled**: a merchant endpoint disabled after failing deliveries
//!   (`webhook_endpoint_disabled.<merchant>.<endpoint>`).
//!
//! A condition is raised once while it holds, resolved when it stops, and raised again only
//! when it returns; a one-off fact (a failed payment or payout) is raised once and acknowledged.
//! One evaluator leads across replicas ([`leader`]); the log's optimistic concurrency still lets
//! exactly one of two racing raises append, so a second leader for a moment records nothing
//! twice and only the evaluator that recorded a change tells people of it.

pub mod channels;
pub mod leader;
pub mod rules;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lightspeed_adapters::http::{HttpConfig, build_client};
use lightspeed_domain::Decider;
use lightspeed_domain::ops_alert::{AlertKind, FIRING_EVENT_TYPES, OpsAlert};
use lightspeed_eventstore::recent::{NewestEvents, newest_events};
use lightspeed_eventstore::{CommandContext, Metadata, ReadError};
use lightspeed_projections::ProjectionError;
use lightspeed_projections::alert_inputs::{
    FailedPayment, FailedWindow, failed_payments, whatsapp_outcomes,
};
use lightspeed_services::{AlertChange, Ledger, ServiceError};
use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::queues::QueueControl;
use channels::{Channels, Notice};
use leader::Leadership;

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
/// Most firing alerts of one kind read back from the log when an evaluator starts to lead.
const MAX_FIRING_PER_KIND: i64 = 1_000;

/// How the evaluator decides and whom it tells.
#[derive(Clone)]
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
    /// How far back reversed payouts are looked at, each evaluation (default 24 hours).
    pub payout_lookback: Duration,
    /// Share of its monthly limit at which a gateway is near it, in basis points (default 8 000).
    pub gateway_limit_near_bps: u32,
    /// Share of a quota cap at which a merchant is near it, in basis points (default 8 000; at
    /// least that, the share the domain records first).
    pub quota_near_bps: u32,
    /// The gateway success-rate window (default 15 minutes).
    pub success_rate_window: Duration,
    /// Success share under which a gateway's alert fires, in basis points (default 8 000).
    pub success_rate_min_bps: u32,
    /// Fewest payments decided in the window for the share to count (default 20).
    pub success_rate_min_payments: i64,
    /// Jobs waiting in a queue over which its alert fires (default 1 000).
    pub queue_max_waiting: u64,
    /// How long a queue's oldest waiting job may have waited before its alert fires (default
    /// 10 minutes).
    pub queue_max_age: Duration,
    /// How far a projection may lag the log (default 1 minute).
    pub projection_max_lag: Duration,
    /// How far the relay may lag the log (default 1 minute).
    pub relay_max_lag: Duration,
    /// The JetStream stream the relay copies the log to; no relay rule without it.
    pub relay_stream: Option<String>,
    /// Where newly recorded alerts are posted (a Slack incoming webhook), if anywhere.
    pub slack_webhook_url: Option<String>,
    /// The other channels and the routes.
    pub channels: Channels,
}

impl std::fmt::Debug for AlertConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertConfig")
            .field("interval", &self.interval)
            .field("gateway_limit_near_bps", &self.gateway_limit_near_bps)
            .field("success_rate_min_bps", &self.success_rate_min_bps)
            .finish_non_exhaustive()
    }
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            whatsapp_window: Duration::from_secs(5 * 60),
            whatsapp_max_failure_bps: 500,
            whatsapp_min_messages: 20,
            payment_lookback: Duration::from_secs(3600),
            payout_lookback: Duration::from_secs(24 * 3600),
            gateway_limit_near_bps: 8_000,
            quota_near_bps: 8_000,
            success_rate_window: Duration::from_secs(15 * 60),
            success_rate_min_bps: 8_000,
            success_rate_min_payments: 20,
            queue_max_waiting: 1_000,
            queue_max_age: Duration::from_secs(10 * 60),
            projection_max_lag: Duration::from_secs(60),
            relay_max_lag: Duration::from_secs(60),
            relay_stream: None,
            slack_webhook_url: None,
            channels: Channels::default(),
        }
    }
}

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A read model could not be read.
    #[error("read model: {0}")]
    Read(#[from] ProjectionError),
    /// The log could not be read.
    #[error("log: {0}")]
    Log(#[from] ReadError),
    /// The leader election or an `ops` table failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The log refused or failed.
    #[error(transparent)]
    Ledger(#[from] ServiceError),
    /// The HTTP client for the channels could not be built.
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

/// Where a condition holds now: one finding per subject (`None`: the whole system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is about, e.g. a gateway id; `None` for the whole system.
    pub subject: Option<String>,
    /// For people, with the figures.
    pub summary: String,
}

/// What a rule saw: where its condition holds, and subjects it cannot tell about now (too few
/// payments to judge a rate), whose alerts are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Where the condition holds.
    pub findings: Vec<Finding>,
    /// Keys left as they are.
    pub undecided: BTreeSet<String>,
}

/// Evaluates the alert rules; see the module documentation.
pub struct AlertEvaluator {
    ledger: Ledger,
    config: AlertConfig,
    channels: Channels,
    http: reqwest::Client,
    queues: Option<Arc<dyn QueueControl>>,
    leadership: Mutex<Leadership>,
    /// The last failed payment looked at: (failed at, payment id).
    cursor: Mutex<Option<(DateTime<Utc>, Uuid)>>,
    /// The keys of firing condition alerts, by kind, as this evaluator last knew them; read
    /// from the log when it starts to lead.
    firing: Mutex<Option<HashMap<AlertKind, BTreeSet<String>>>>,
}

impl AlertEvaluator {
    /// An evaluator over `ledger`'s log and read models.
    pub fn new(ledger: Ledger, config: AlertConfig) -> Result<Self, AlertError> {
        let http =
            build_client(&HttpConfig::default()).map_err(|e| AlertError::Client(e.to_string()))?;
        let mut channels = config.channels.clone();
        if config.slack_webhook_url.is_some() {
            channels.slack_url = config.slack_webhook_url.clone();
        }
        let leadership = Mutex::new(Leadership::new(ledger.store().pool().clone()));
        Ok(Self {
            ledger,
            config,
            channels,
            http,
            queues: None,
            leadership,
            cursor: Mutex::new(None),
            firing: Mutex::new(None),
        })
    }

    /// Also watches the work queues' depths through `queues`.
    pub fn with_queues(mut self, queues: Arc<dyn QueueControl>) -> Self {
        self.queues = Some(queues);
        self
    }

    /// Every [`AlertConfig::interval`], evaluates if this process leads; forever; spawn it.
    pub async fn run(self) {
        let mut ticks = tokio::time::interval(self.config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.tick().await {
                Ok(_) => {}
                // A fresh start: the projectors are building the first versions.
                Err(AlertError::Read(ProjectionError::NotBuilt(view))) => {
                    tracing::debug!(view, "alerts wait for a read model's first build");
                }
                Err(e) => tracing::warn!(error = %e, "alert evaluation failed"),
            }
        }
    }

    /// Evaluates every rule once if this process leads (`None`: another replica leads).
    pub async fn tick(&self) -> Result<Option<Evaluation>, AlertError> {
        let leads = {
            let mut leadership = self.leadership.lock().await;
            let was = leadership_flag(&leadership);
            let now = leadership.hold().await?;
            if now != was {
                // Starting to lead, or stopping: what is firing is read again from the log.
                *self.firing.lock().await = None;
            }
            now
        };
        if !leads {
            return Ok(None);
        }
        self.evaluate_once().await.map(Some)
    }

    /// Evaluates every rule once, leader or not (the log still records each change once).
    pub async fn evaluate_once(&self) -> Result<Evaluation, AlertError> {
        let mut evaluation = Evaluation::default();
        self.failed_payments(&mut evaluation).await?;
        let payouts = rules::failed_payouts(self).await?;
        for finding in payouts {
            self.one_off(AlertKind::PayoutFailed, finding, &mut evaluation)
                .await?;
        }
        self.whatsapp_failure_rate(&mut evaluation).await?;
        let now = self.ledger.now();
        let (near, reached) = rules::gateway_limits(self, now).await?;
        self.settle(AlertKind::GatewayLimitNear, near, &mut evaluation)
            .await?;
        self.settle(AlertKind::GatewayLimitReached, reached, &mut evaluation)
            .await?;
        let (quota_near, quota_reached) = rules::quota_use(self, now).await?;
        self.settle(AlertKind::QuotaNear, quota_near, &mut evaluation)
            .await?;
        self.settle(AlertKind::QuotaReached, quota_reached, &mut evaluation)
            .await?;
        let stranded = rules::no_gateway_available(self, now).await?;
        self.settle(AlertKind::NoGatewayAvailable, stranded, &mut evaluation)
            .await?;
        let resting = rules::resting_gateways(self, now).await?;
        self.settle(
            AlertKind::GatewayTemporarilyFailed,
            resting,
            &mut evaluation,
        )
        .await?;
        let rates = rules::success_rates(self, now).await?;
        self.settle(AlertKind::GatewaySuccessRate, rates, &mut evaluation)
            .await?;
        if let Some(queues) = &self.queues {
            let backlog = rules::queue_backlog(self, queues.as_ref(), now).await?;
            self.settle(AlertKind::QueueBacklog, backlog, &mut evaluation)
                .await?;
        }
        let (projections, relay) = rules::lag(self).await?;
        self.settle(AlertKind::ProjectionLag, projections, &mut evaluation)
            .await?;
        if let Some(relay) = relay {
            self.settle(AlertKind::RelayLag, relay, &mut evaluation)
                .await?;
        }
        let endpoints = rules::disabled_endpoints(self).await?;
        self.settle(
            AlertKind::WebhookEndpointDisabled,
            endpoints,
            &mut evaluation,
        )
        .await?;
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

    /// Raises the condition alerts of `kind` where `observed` holds and resolves the firing ones
    /// where it no longer does.
    async fn settle(
        &self,
        kind: AlertKind,
        observed: Observed,
        evaluation: &mut Evaluation,
    ) -> Result<(), AlertError> {
        let mut firing = self.firing_of(kind).await?;
        let mut holding = BTreeSet::new();
        for finding in observed.findings {
            let key = kind.key(finding.subject.as_deref());
            holding.insert(key.clone());
            let change = self
                .ledger
                .raise_alert(&key, kind, finding.summary.clone(), &Self::context())
                .await?;
            firing.insert(key.clone());
            if change == AlertChange::Recorded {
                self.tell(kind, &key, "raised", finding.summary).await;
                evaluation.raised.push(key);
            }
        }
        let cleared: Vec<String> = firing
            .iter()
            .filter(|key| !holding.contains(*key) && !observed.undecided.contains(*key))
            .cloned()
            .collect();
        for key in cleared {
            let summary = format!("{} cleared for {}", kind.as_str(), subject_of(&key));
            let change = self
                .ledger
                .resolve_alert(&key, summary.clone(), &Self::context())
                .await?;
            firing.remove(&key);
            if change == AlertChange::Recorded {
                self.tell(kind, &key, "resolved", summary).await;
                evaluation.resolved.push(key);
            }
        }
        self.firing
            .lock()
            .await
            .get_or_insert_with(HashMap::new)
            .insert(kind, firing);
        Ok(())
    }

    /// The firing alerts of `kind`, from memory or else from the log.
    async fn firing_of(&self, kind: AlertKind) -> Result<BTreeSet<String>, AlertError> {
        if let Some(known) = self.firing.lock().await.as_ref().and_then(|m| m.get(&kind)) {
            return Ok(known.clone());
        }
        let page = NewestEvents {
            category: <OpsAlert as Decider>::CATEGORY,
            id_first_part: Some(kind.as_str()),
            before: None,
            latest_of_types: Some(&FIRING_EVENT_TYPES),
            limit: MAX_FIRING_PER_KIND,
        };
        let keys: BTreeSet<String> = newest_events(self.pool(), &page)
            .await?
            .into_iter()
            .map(|event| event.stream_id.id().to_owned())
            .collect();
        let mut firing = BTreeSet::new();
        for key in keys {
            if self
                .ledger
                .alert(&key)
                .await?
                .is_some_and(|alert| alert.is_firing())
            {
                firing.insert(key);
            }
        }
        Ok(firing)
    }

    /// Raises the one-off alert of `kind` about `finding` unless it was raised.
    async fn one_off(
        &self,
        kind: AlertKind,
        finding: Finding,
        evaluation: &mut Evaluation,
    ) -> Result<(), AlertError> {
        let key = kind.key(finding.subject.as_deref());
        if self.ledger.alert_known_raised(&key) {
            return Ok(());
        }
        let change = self
            .ledger
            .raise_alert(&key, kind, finding.summary.clone(), &Self::context())
            .await?;
        if change == AlertChange::Recorded {
            self.tell(kind, &key, "raised", finding.summary).await;
            evaluation.raised.push(key);
        }
        Ok(())
    }

    async fn tell(&self, kind: AlertKind, key: &str, state: &'static str, summary: String) {
        let notice = Notice {
            key: key.to_owned(),
            kind: kind.as_str(),
            state,
            summary,
            at: self.ledger.now(),
        };
        self.channels.send(&self.http, kind, &notice).await;
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
            let finding = Finding {
                subject: Some(payment.payment_id.to_string()),
                summary: payment_summary(payment),
            };
            self.one_off(AlertKind::PaymentFailed, finding, evaluation)
                .await?;
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
        let mut observed = Observed::default();
        if total >= self.config.whatsapp_min_messages && over {
            observed.findings.push(Finding {
                subject: None,
                summary,
            });
        } else if over {
            // Over the bound on too few messages to tell: leave the alert as it is.
            observed.undecided.insert(WHATSAPP_ALERT_KEY.to_owned());
        }
        self.settle(AlertKind::WhatsappFailureRate, observed, evaluation)
            .await
    }
}

fn leadership_flag(leadership: &Leadership) -> bool {
    leadership.leading()
}

/// The part of a key after its kind (`relay_lag` for a key without one).
fn subject_of(key: &str) -> &str {
    key.split_once('.').map_or(key, |(_, subject)| subject)
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
