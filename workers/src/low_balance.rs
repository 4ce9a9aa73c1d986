//! The low-balance watcher: every [`DEFAULT_INTERVAL`], merchants whose balance due is at or
//! above their warn threshold, who opted in to `LOW_BALANCE` (by WhatsApp, email or both) and
//! got none in the last 6 hours, get exactly one alert (one message on each channel they chose),
//! however many replicas watch and however often they restart.
//!
//! Which merchants to look at: the watcher folds the `wallet`, `merchant` and `merchant_alerts`
//! events itself, incrementally from where its last sweep stopped ([`Watchlist`]), rather than
//! reading the wallets read model. Workers do not depend on the read side, the answer never
//! lags a projector, and after a replica's first sweep each sweep reads only what happened
//! since. The fold only picks candidates: the decision is taken again by
//! `Ledger::raise_low_balance_alert` on the streams themselves, where the merchant's alerts
//! stream (appended at the version it was decided on, atomically with the notification) lets
//! one replica through and refuses the rest for 6 hours. Nothing is remembered in memory that
//! the log does not also say, so a restart only costs one full fold.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use lightspeed_domain::merchant::MerchantEvent;
use lightspeed_domain::merchant_alerts::MerchantAlertsEvent;
use lightspeed_domain::notification::NotificationType;
use lightspeed_domain::wallet::WalletEvent;
use lightspeed_domain::{Decider, Merchant, MerchantAlerts, MerchantId, Wallet};
use lightspeed_eventstore::limits::MAX_READ_BATCH;
use lightspeed_eventstore::{CommandContext, EventStore, LogPosition, Metadata, RecordedEvent};
use lightspeed_services::{Ledger, LowBalanceAlert, ServiceError};

/// How often the watcher sweeps unless configured otherwise: 10 minutes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// The actor of the alerts the watcher raises.
pub const ACTOR: &str = "system:low-balance-watcher";

/// What one merchant looks like to the watcher.
#[derive(Debug, Default)]
struct Watched {
    merchant: Option<Merchant>,
    wallet: Wallet,
    alerts: MerchantAlerts,
}

/// The merchants' wallets, thresholds, opt-ins and last alerts, folded from the log up to
/// `position`.
#[derive(Debug, Default)]
pub struct Watchlist {
    position: LogPosition,
    merchants: HashMap<MerchantId, Watched>,
}

impl Watchlist {
    /// An empty watchlist; the first sweep folds the log from its start.
    pub fn new() -> Self {
        Self::default()
    }

    async fn catch_up(&mut self, ledger: &Ledger) -> Result<(), ServiceError> {
        let categories = [
            Wallet::CATEGORY.to_owned(),
            Merchant::CATEGORY.to_owned(),
            MerchantAlerts::CATEGORY.to_owned(),
        ];
        loop {
            let batch = ledger
                .store()
                .read_log(self.position, Some(&categories), MAX_READ_BATCH)
                .await?;
            let Some(last) = batch.last() else {
                return Ok(());
            };
            self.position = last.log_position;
            for event in &batch {
                self.apply(event)?;
            }
        }
    }

    fn apply(&mut self, event: &RecordedEvent) -> Result<(), ServiceError> {
        let Ok(merchant_id) = event.stream_id.id().parse::<MerchantId>() else {
            return Ok(());
        };
        let decode_failed = |e: &dyn std::fmt::Display| {
            ServiceError::Store(format!("event {}: {e}", event.event_id))
        };
        let watched = self.merchants.entry(merchant_id).or_default();
        match event.stream_id.category() {
            Wallet::CATEGORY => {
                let decoded: WalletEvent = event.decode().map_err(|e| decode_failed(&e))?;
                watched.wallet = Wallet::evolve(std::mem::take(&mut watched.wallet), &decoded);
            }
            Merchant::CATEGORY => {
                let decoded: MerchantEvent = event.decode().map_err(|e| decode_failed(&e))?;
                watched.merchant = Merchant::evolve(watched.merchant.take(), &decoded);
            }
            MerchantAlerts::CATEGORY => {
                let decoded: MerchantAlertsEvent = event.decode().map_err(|e| decode_failed(&e))?;
                watched.alerts =
                    MerchantAlerts::evolve(std::mem::take(&mut watched.alerts), &decoded);
            }
            _ => {}
        }
        Ok(())
    }

    /// Merchants who, as far as the log read so far says, are owed an alert at `now`.
    fn candidates(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<MerchantId> {
        let mut due: Vec<MerchantId> = self
            .merchants
            .iter()
            .filter(|(_, watched)| {
                watched.merchant.as_ref().is_some_and(|merchant| {
                    !merchant
                        .recipients_for(NotificationType::LowBalance)
                        .is_empty()
                        && watched.wallet.balance_due() >= merchant.thresholds().warn_at
                }) && watched
                    .alerts
                    .next_low_balance_allowed_at()
                    .is_none_or(|allowed| allowed <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        due.sort_unstable();
        due
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Merchants that looked due an alert.
    pub candidates: usize,
    /// Alerts this sweep raised (each with its notification queued).
    pub raised: usize,
    /// Candidates another replica alerted first, or whose balance or opt-in changed meanwhile.
    pub skipped: usize,
}

/// Catches the watchlist up with the log, then raises an alert (with its `template`
/// notification) for every merchant due one on the ledger's clock.
pub async fn sweep_once(
    ledger: &Ledger,
    template: &str,
    watchlist: &mut Watchlist,
) -> Result<Sweep, ServiceError> {
    watchlist.catch_up(ledger).await?;
    let candidates = watchlist.candidates(ledger.now());
    let mut sweep = Sweep {
        candidates: candidates.len(),
        ..Sweep::default()
    };
    for merchant_id in candidates {
        match ledger
            .raise_low_balance_alert(merchant_id, template, &context())
            .await?
        {
            LowBalanceAlert::Queued(notification_id) => {
                tracing::info!(%merchant_id, %notification_id, "low-balance alert raised");
                sweep.raised += 1;
            }
            LowBalanceAlert::BelowThreshold
            | LowBalanceAlert::CoolingDown
            | LowBalanceAlert::NotOptedIn => sweep.skipped += 1,
        }
    }
    Ok(sweep)
}

/// Sweeps every `interval` until `shutdown` completes; a failed sweep is logged and the next
/// one tries again.
pub async fn run(
    ledger: Ledger,
    template: String,
    interval: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut watchlist = Watchlist::new();
    tokio::pin!(shutdown);
    loop {
        match sweep_once(&ledger, &template, &mut watchlist).await {
            Ok(sweep) => tracing::debug!(?sweep, "low-balance sweep done"),
            Err(error) => tracing::warn!(%error, "low-balance sweep failed; the next one retries"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

fn context() -> CommandContext {
    CommandContext {
        command_id: None,
        metadata: Metadata {
            correlation_id: Some(uuid::Uuid::now_v7()),
            actor: Some(ACTOR.to_owned()),
            ..Metadata::default()
        },
    }
}
