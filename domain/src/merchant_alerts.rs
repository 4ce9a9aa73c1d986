//! Merchant alerts: the per-merchant decision to raise a `LOW_BALANCE` alert, with its cool-down.
//!
//! Stream `merchant_alerts-<MerchantId>`. The balance watcher asks to raise an alert when a
//! merchant's balance due reaches its warn threshold; the stream remembers when the last one was
//! raised and refuses another within [`LOW_BALANCE_COOL_DOWN`] (6 hours). Two watcher replicas
//! racing on the same merchant both decide against the same version, so optimistic concurrency
//! lets exactly one append. The raise is appended atomically with the `NotificationQueued` of
//! the notification it names.
//!
//! Why a stream of its own rather than the merchant stream: alerts are frequent, machine-made
//! facts; on the merchant stream they would bump its version and make ops' edits (fee, keys,
//! status) conflict with the watcher, and every merchant read would fold them.

use crate::calendar;
use crate::decider::Decider;
use crate::ids::NotificationId;
use crate::money::Paise;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// No second `LOW_BALANCE` alert for a merchant within this long: 6 hours.
pub const LOW_BALANCE_COOL_DOWN: Duration = Duration::from_secs(6 * 3600);

/// A merchant's alert history, as far as the rules need it. A new stream has raised nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantAlerts {
    last_low_balance_at: Option<DateTime<Utc>>,
}

impl MerchantAlerts {
    /// When the last `LOW_BALANCE` alert was raised.
    pub fn last_low_balance_at(&self) -> Option<DateTime<Utc>> {
        self.last_low_balance_at
    }

    /// The first instant another `LOW_BALANCE` alert may be raised (`None`: any time).
    pub fn next_low_balance_allowed_at(&self) -> Option<DateTime<Utc>> {
        self.last_low_balance_at
            .map(|last| calendar::plus(last, LOW_BALANCE_COOL_DOWN))
    }
}

/// What can be asked of a merchant's alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MerchantAlertsCommand {
    /// Raises a `LOW_BALANCE` alert, to be sent as notification `notification_id`.
    RaiseLowBalanceAlert {
        /// The notification that will carry it (queued in the same append).
        notification_id: NotificationId,
        /// The balance due observed.
        balance_due: Paise,
        /// The merchant's warn threshold.
        warn_at: Paise,
        /// When it is decided.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What a merchant alerts stream records.
    pub enum MerchantAlertsEvent {
        /// A `LOW_BALANCE` alert was raised.
        LowBalanceAlertRaised {
            /// The notification carrying it.
            notification_id: NotificationId,
            /// The balance due observed.
            balance_due: Paise,
            /// The warn threshold then.
            warn_at: Paise,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why an alert is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerchantAlertsError {
    /// The balance due is below the warn threshold; nothing to warn about.
    #[error("balance due {balance_due} is below the warn threshold {warn_at}")]
    BelowWarnThreshold {
        /// The balance due.
        balance_due: Paise,
        /// The warn threshold.
        warn_at: Paise,
    },
    /// A `LOW_BALANCE` alert was raised less than 6 hours ago.
    #[error(
        "a low-balance alert was raised at {last_raised_at}; the next one is allowed from {next_allowed_at}"
    )]
    CoolingDown {
        /// When the last one was raised.
        last_raised_at: DateTime<Utc>,
        /// When the next one is allowed.
        next_allowed_at: DateTime<Utc>,
    },
}

impl Decider for MerchantAlerts {
    const CATEGORY: &'static str = "merchant_alerts";
    type State = MerchantAlerts;
    type Command = MerchantAlertsCommand;
    type Event = MerchantAlertsEvent;
    type Error = MerchantAlertsError;

    fn decide(
        alerts: &MerchantAlerts,
        command: &MerchantAlertsCommand,
    ) -> Result<Vec<MerchantAlertsEvent>, MerchantAlertsError> {
        match command {
            MerchantAlertsCommand::RaiseLowBalanceAlert {
                notification_id,
                balance_due,
                warn_at,
                at,
            } => {
                if balance_due < warn_at {
                    return Err(MerchantAlertsError::BelowWarnThreshold {
                        balance_due: *balance_due,
                        warn_at: *warn_at,
                    });
                }
                if let (Some(last_raised_at), Some(next_allowed_at)) = (
                    alerts.last_low_balance_at,
                    alerts.next_low_balance_allowed_at(),
                ) && *at < next_allowed_at
                {
                    return Err(MerchantAlertsError::CoolingDown {
                        last_raised_at,
                        next_allowed_at,
                    });
                }
                Ok(vec![MerchantAlertsEvent::LowBalanceAlertRaised {
                    notification_id: *notification_id,
                    balance_due: *balance_due,
                    warn_at: *warn_at,
                    at: *at,
                }])
            }
        }
    }

    fn evolve(mut alerts: MerchantAlerts, event: &MerchantAlertsEvent) -> MerchantAlerts {
        match event {
            MerchantAlertsEvent::LowBalanceAlertRaised { at, .. } => {
                alerts.last_low_balance_at =
                    Some(alerts.last_low_balance_at.map_or(*at, |last| last.max(*at)));
            }
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, t};

    const HOUR: i64 = 3600;

    fn raise(at: DateTime<Utc>, balance_due: i64) -> MerchantAlertsCommand {
        MerchantAlertsCommand::RaiseLowBalanceAlert {
            notification_id: NotificationId(uuid::Uuid::from_u128(
                at.timestamp().unsigned_abs().into(),
            )),
            balance_due: Paise::rupees(balance_due),
            warn_at: Paise::rupees(5_000),
            at,
        }
    }

    fn raised(at: DateTime<Utc>, balance_due: i64) -> MerchantAlertsEvent {
        let MerchantAlertsCommand::RaiseLowBalanceAlert {
            notification_id,
            balance_due,
            warn_at,
            at,
        } = raise(at, balance_due);
        MerchantAlertsEvent::LowBalanceAlertRaised {
            notification_id,
            balance_due,
            warn_at,
            at,
        }
    }

    #[test]
    fn the_first_low_balance_alert_is_raised() {
        given::<MerchantAlerts>([])
            .when(raise(t(0), 5_000))
            .then([raised(t(0), 5_000)]);
    }

    #[test]
    fn no_second_low_balance_alert_within_six_hours() {
        given::<MerchantAlerts>([raised(t(0), 6_000)])
            .when(raise(t(6 * HOUR - 1), 7_000))
            .then_error(MerchantAlertsError::CoolingDown {
                last_raised_at: t(0),
                next_allowed_at: t(6 * HOUR),
            });
    }

    #[test]
    fn another_alert_is_raised_once_the_cool_down_is_over() {
        given::<MerchantAlerts>([raised(t(0), 6_000)])
            .when(raise(t(6 * HOUR), 7_000))
            .then([raised(t(6 * HOUR), 7_000)]);
    }

    #[test]
    fn no_alert_below_the_warn_threshold() {
        given::<MerchantAlerts>([])
            .when(raise(t(0), 4_999))
            .then_error(MerchantAlertsError::BelowWarnThreshold {
                balance_due: Paise::rupees(4_999),
                warn_at: Paise::rupees(5_000),
            });
    }

    #[test]
    fn two_replicas_deciding_on_the_same_version_cannot_both_append() {
        // Both decide against the same (empty) history; the event store lets one append, the
        // other retries against the new version and is refused.
        let first = given::<MerchantAlerts>([])
            .when(raise(t(0), 6_000))
            .then([raised(t(0), 6_000)]);
        assert_eq!(first.last_low_balance_at(), Some(t(0)));
        given::<MerchantAlerts>([raised(t(0), 6_000)])
            .when(raise(t(1), 6_000))
            .then_error(MerchantAlertsError::CoolingDown {
                last_raised_at: t(0),
                next_allowed_at: t(6 * HOUR),
            });
    }
}
