//! Webhook delivery: every attempt is claimed, signed as of now, posted once and recorded with
//! when the next one is due; and the sweeps that make the attempts nobody is waiting on and
//! remove expired orders.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::join_all;
use lightspeed_adapters::merchant_webhook::{WebhookSecret, sign};
use lightspeed_adapters::sandbox::DeliveryAttempt;
use tokio::time::Instant;

use crate::store::{self, Claim};
use crate::{Sandbox, SandboxError};

/// Most webhooks one sweep claims; they are posted concurrently.
pub const SWEEP_BATCH: u32 = 64;
/// Most expired orders one sweep removes.
pub const RETENTION_BATCH: u32 = 1_000;
/// How much longer than a post may take its claim is leased: a lease that runs out means the
/// process that claimed the attempt is gone.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Shortest pause between sweeps, whatever the configuration says.
const MIN_SWEEP_INTERVAL: Duration = Duration::from_millis(10);

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sweep {
    /// Delivery attempts made.
    pub attempts: usize,
    /// Expired orders removed.
    pub removed: u64,
    /// Refunds settled by the auto-settle setting.
    pub refunds_settled: usize,
}

impl Sandbox {
    /// Makes the first attempts at order `order_id`'s owed webhook while the payer waits: until
    /// one is delivered, the attempts run out, or the next retry would start later than
    /// [`crate::SandboxConfig::payer_wait`] from now; the sweeps make the rest. Does nothing
    /// when some process claimed an attempt since the choice was recorded (the choice leases
    /// the first attempt to its click, so that happens only once the lease ran out).
    pub async fn deliver_owed(&self, order_id: &str) -> Result<(), SandboxError> {
        match store::payment_webhook(&self.inner.pool, order_id).await? {
            Some(webhook_id) => self.deliver_webhook(&webhook_id).await,
            None => Ok(()),
        }
    }

    /// Makes the first attempts at webhook `webhook_id` while a caller waits, as
    /// [`Sandbox::deliver_owed`] describes.
    pub(crate) async fn deliver_webhook(&self, webhook_id: &str) -> Result<(), SandboxError> {
        let stop_waiting = Instant::now() + self.inner.config.payer_wait;
        let mut attempts_seen = 0;
        loop {
            let claim = store::claim_next(
                &self.inner.pool,
                webhook_id,
                attempts_seen,
                self.lease_end(),
            )
            .await?;
            let Some(claim) = claim else {
                return Ok(());
            };
            let Some(pause) = self.attempt(&claim).await? else {
                return Ok(());
            };
            if Instant::now() + pause > stop_waiting {
                return Ok(());
            }
            tokio::time::sleep(pause).await;
            attempts_seen = claim.attempt;
        }
    }

    /// One sweep: settles the refunds whose auto-settlement is due (a bounded batch), claims
    /// the webhooks due (a bounded batch), makes one attempt at each, and removes a bounded batch
    /// of orders older than [`crate::SandboxConfig::retention`].
    pub async fn sweep_once(&self) -> Result<Sweep, SandboxError> {
        let pool = &self.inner.pool;
        let refunds_settled = self.settle_due_refunds().await?;
        let now = self.inner.clock.now();
        let claims = store::claim_due(pool, now, self.lease_end(), SWEEP_BATCH).await?;
        for (claim, result) in claims
            .iter()
            .zip(join_all(claims.iter().map(|claim| self.attempt(claim))).await)
        {
            // Unrecorded, the attempt is made again once its lease runs out.
            if let Err(e) = result {
                tracing::warn!(
                    order_id = %claim.order_id,
                    error = %e,
                    "sandbox webhook attempt not recorded"
                );
            }
        }
        let expired = earlier(now, self.inner.config.retention);
        let removed = store::remove_expired(pool, expired, RETENTION_BATCH).await?;
        Ok(Sweep {
            attempts: claims.len(),
            removed,
            refunds_settled,
        })
    }

    /// Sweeps every [`crate::SandboxConfig::sweep_interval`], forever. Spawn it in every
    /// process that serves the sandbox: concurrent sweeps share the work.
    pub async fn run(self) {
        let interval = self.inner.config.sweep_interval.max(MIN_SWEEP_INTERVAL);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = self.sweep_once().await {
                tracing::warn!(error = %e, "sandbox sweep failed");
            }
        }
    }

    /// When a claim made now runs out.
    pub(crate) fn lease_end(&self) -> DateTime<Utc> {
        let lease = self.inner.config.http.request_timeout + LEASE_MARGIN;
        later(self.inner.clock.now(), lease)
    }

    /// Posts `claim`'s webhook once and records what it got; answers the pause before the next
    /// attempt, or `None` when nothing more is owed.
    async fn attempt(&self, claim: &Claim) -> Result<Option<Duration>, SandboxError> {
        let attempted_at = self.inner.clock.now();
        let (outcome, pause) = match self.signing_key(claim) {
            Ok(secret) => {
                let outcome = self.post(claim, &secret).await;
                let pause = if delivered(&outcome) {
                    None
                } else {
                    self.retry_pause(claim.attempt)
                };
                (outcome, pause)
            }
            // Retrying cannot help.
            Err(reason) => (failed_attempt(reason), None),
        };
        if !delivered(&outcome) {
            tracing::warn!(
                order_id = %claim.order_id,
                refund_id = ?claim.refund_id,
                attempt = claim.attempt,
                status = ?outcome.status,
                error = ?outcome.error,
                "sandbox webhook delivery failed"
            );
        }
        let next_due = pause.map(|pause| later(self.inner.clock.now(), pause));
        store::record_attempt(&self.inner.pool, claim, &outcome, attempted_at, next_due).await?;
        Ok(pause)
    }

    /// The key `claim`'s order was created with, opened.
    fn signing_key(&self, claim: &Claim) -> Result<WebhookSecret, &'static str> {
        let key = self
            .inner
            .keyring
            .open(&claim.key())
            .map_err(|_| "account key cannot be opened")?;
        WebhookSecret::from_secret(&key).map_err(|_| "invalid account key")
    }

    /// The pause after failed attempt number `attempt`, doubling from the first; `None` after
    /// the last.
    fn retry_pause(&self, attempt: i32) -> Option<Duration> {
        let config = &self.inner.config;
        let attempt = u32::try_from(attempt).ok()?;
        if attempt >= config.delivery_attempts {
            return None;
        }
        let doublings = attempt.checked_sub(1)?;
        Some(
            config
                .first_retry_delay
                .saturating_mul(2u32.saturating_pow(doublings)),
        )
    }

    /// Signs `claim`'s webhook as of now and posts it once.
    async fn post(&self, claim: &Claim, secret: &WebhookSecret) -> DeliveryAttempt {
        let signed = sign(
            secret,
            &[],
            &claim.webhook_id,
            self.inner.clock.now().timestamp(),
            &claim.body,
        );
        let mut request = self
            .inner
            .http
            .post(&claim.callback_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(claim.body.clone());
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) => DeliveryAttempt {
                status: Some(response.status().as_u16()),
                error: None,
            },
            Err(e) => failed_attempt(if e.is_timeout() {
                "timed out"
            } else {
                "connection failed"
            }),
        }
    }
}

/// Whether the receiver took the webhook (a 2xx).
fn delivered(attempt: &DeliveryAttempt) -> bool {
    attempt
        .status
        .is_some_and(|code| (200..300).contains(&code))
}

/// An attempt that got no answer, and why.
fn failed_attempt(error: &str) -> DeliveryAttempt {
    DeliveryAttempt {
        status: None,
        error: Some(error.to_owned()),
    }
}

/// `pause` after `at`; a pause too long to represent never ends.
pub(crate) fn later(at: DateTime<Utc>, pause: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(pause)
        .ok()
        .and_then(|pause| at.checked_add_signed(pause))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `age` before `at`; an age too long to represent reaches back to the beginning of time.
fn earlier(at: DateTime<Utc>, age: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(age)
        .ok()
        .and_then(|age| at.checked_sub_signed(age))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
