//! The daily payout run: at a configured IST time (02:00 by default) it asks the ledger to
//! request every due commission payout ([`Ledger::run_payouts`]); the payouts worker then makes
//! the transfers from the log.
//!
//! A run is labelled by its IST date, and payout ids derive from the merchant and that label, so
//! several replicas of the scheduler, a restart or an admin re-run of the same day request each
//! payout once. On start, a day's run whose time has passed is made at once (it requests nothing
//! that was already requested), so a process down at 02:00 does not skip the day.
//! Time is the ledger's clock, looked at again at least every `recheck`, so tests move a manual
//! clock instead of waiting.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use lightspeed_domain::Paise;
use lightspeed_eventstore::{CommandContext, Metadata};
use lightspeed_services::{Ledger, PayoutRunReport, ServiceError, ist};

/// The actor of scheduled runs.
pub const ACTOR: &str = "system:payout-scheduler";
/// The default time of day of the run, in IST: 02:00.
const DEFAULT_RUN_TIME: NaiveTime = match NaiveTime::from_hms_opt(2, 0, 0) {
    Some(time) => time,
    None => panic!("02:00:00 is a time of day"),
};

/// When the daily run happens and what it pays out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayoutSchedule {
    /// Time of day in IST (default 02:00).
    pub at: NaiveTime,
    /// Smallest payout made, whatever a merchant's own minimum.
    pub minimum: Paise,
    /// How often, at least, the clock is looked at again (default one minute).
    pub recheck: Duration,
}

impl PayoutSchedule {
    /// Daily at 02:00 IST, paying out at least `minimum`.
    pub fn daily(minimum: Paise) -> Self {
        Self {
            at: DEFAULT_RUN_TIME,
            minimum,
            recheck: Duration::from_secs(60),
        }
    }

    /// The latest run time at or before `now`.
    pub fn last_due(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.with_timezone(&ist()).date_naive();
        match self.on(today) {
            at if at <= now => at,
            _ => self.on(today.pred_opt().expect(IN_RANGE)),
        }
    }

    /// The first run time after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.with_timezone(&ist()).date_naive();
        match self.on(today) {
            at if at > now => at,
            _ => self.on(today.succ_opt().expect(IN_RANGE)),
        }
    }

    /// The run time on `day`. IST is one fixed offset, so every local time exists exactly once.
    fn on(&self, day: NaiveDate) -> DateTime<Utc> {
        ist()
            .from_local_datetime(&day.and_time(self.at))
            .single()
            .expect(IN_RANGE)
            .with_timezone(&Utc)
    }
}

/// Why the run times around the ledger's clock exist: chrono's dates span ±262 000 years.
const IN_RANGE: &str = "the ledger's clock is far inside chrono's date range";

/// The label of the run due at `at`: its IST date, `yyyy-mm-dd`.
pub fn run_label(at: DateTime<Utc>) -> String {
    at.with_timezone(&ist()).format("%Y-%m-%d").to_string()
}

/// Makes the run due at `due` (idempotent per IST day).
pub async fn run_once(
    ledger: &Ledger,
    schedule: &PayoutSchedule,
    due: DateTime<Utc>,
) -> Result<PayoutRunReport, ServiceError> {
    let context = CommandContext {
        command_id: None,
        metadata: Metadata {
            actor: Some(ACTOR.to_owned()),
            ..Metadata::default()
        },
    };
    let report = ledger
        .run_payouts(&run_label(due), schedule.minimum, &context)
        .await?;
    tracing::info!(run = %report.run, requested = report.requested.len(), already_requested = report.already_requested, below_minimum = report.below_minimum, failures = report.failures.len(), "payout run");
    for failure in &report.failures {
        tracing::warn!(run = %report.run, merchant_id = %failure.merchant_id, reason = %failure.reason, "payout not requested");
    }
    Ok(report)
}

/// Runs the daily payout run until `shutdown` completes. A run that fails (database down) is
/// tried again at the next look at the clock.
pub async fn run(ledger: Ledger, schedule: PayoutSchedule, shutdown: impl Future<Output = ()>) {
    let recheck = schedule.recheck.max(crate::MIN_DUE_RECHECK);
    let mut due = schedule.last_due(ledger.now());
    tokio::pin!(shutdown);
    loop {
        if ledger.now() >= due {
            match run_once(&ledger, &schedule, due).await {
                Ok(_) => due = schedule.next_after(due),
                Err(error) => tracing::warn!(%error, "payout run failed; trying again"),
            }
        }
        let until_due = (due - ledger.now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(until_due.min(recheck)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn runs_are_at_two_in_the_morning_ist() {
        let schedule = PayoutSchedule::daily(Paise(100));
        // 2026-11-24 01:00 IST is 2026-11-23 19:30 UTC: today's run is still ahead.
        let now = utc("2026-11-23T19:30:00Z");
        assert_eq!(schedule.next_after(now), utc("2026-11-23T20:30:00Z"));
        assert_eq!(schedule.last_due(now), utc("2026-11-22T20:30:00Z"));
        assert_eq!(run_label(utc("2026-11-23T20:30:00Z")), "2026-11-24");
        let at_run = utc("2026-11-23T20:30:00Z");
        assert_eq!(schedule.last_due(at_run), at_run);
        assert_eq!(schedule.next_after(at_run), utc("2026-11-24T20:30:00Z"));
    }
}
