//! Merchant quotas: daily and monthly caps on a merchant's payment count and volume, and the
//! usage that counts against them.
//!
//! Two deciders:
//!
//! - [`MerchantQuota`], stream `quota-<MerchantId>`: the caps an admin set ([`QuotaCaps`]: any
//!   of a daily count, daily volume, monthly count and monthly volume; none by default).
//! - [`QuotaUsage`], stream `quota_usage-<MerchantId>.<YYYY-MM>` ([`usage_stream_key`]): one
//!   stream per merchant and IST calendar month, holding every admitted initiation
//!   (`QuotaUsed`) and every threshold crossed (`QuotaThresholdReached`). The month's totals
//!   and the current IST day's totals are folded from it, so both periods are decided on one
//!   stream, appended at the exact version it was decided on, in the same append as the
//!   payment and its gateway booking: of concurrent initiations at a cap's boundary exactly
//!   the cap is admitted. A new month starts a new stream, and the stream takes snapshots, so
//!   loading it stays bounded.
//!
//! Rules:
//! - A payment is admitted when, with it, no cap in force is passed; otherwise the initiation
//!   is refused with [`UsageError::Exceeded`], naming the cap, what is used, and when the
//!   period resets (00:00 IST the next day, or on the first of the next month).
//! - Usage counts initiations admitted, not payments that succeed: a payment that fails or
//!   expires does not give its share back (the cap bounds what a merchant may start).
//! - Reaching 80 % and 100 % of a cap is recorded once per period and cap
//!   (`QuotaThresholdReached`), decided with the admission that reaches it; the usage stream's
//!   version makes two replicas record it once.
//! - A command dated before the stream's latest IST day (a replica's clock behind another's)
//!   counts towards the latest day.

use crate::calendar::{IST, IstMonth};
use crate::decider::Decider;
use crate::ids::{MerchantId, PaymentId};
use crate::money::Paise;
use crate::validation::{FieldError, Problem};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Highest count cap an admin may set, payments per period.
pub const MAX_COUNT_CAP: i64 = 1_000_000_000;

/// Highest volume cap an admin may set: ₹10,00,00,00,00,000 (10^15 paise).
pub const MAX_VOLUME_CAP: Paise = Paise(1_000_000_000_000_000);

/// The shares of a cap whose reaching is recorded, in percent.
pub const THRESHOLDS_PERCENT: [u8; 2] = [80, 100];

/// A merchant's caps; `None` is no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaCaps {
    /// Payments a day (IST).
    #[serde(default)]
    pub daily_count: Option<i64>,
    /// Paise a day (IST).
    #[serde(default)]
    pub daily_volume: Option<Paise>,
    /// Payments a calendar month (IST).
    #[serde(default)]
    pub monthly_count: Option<i64>,
    /// Paise a calendar month (IST).
    #[serde(default)]
    pub monthly_volume: Option<Paise>,
}

impl QuotaCaps {
    /// No cap at all.
    pub const NONE: QuotaCaps = QuotaCaps {
        daily_count: None,
        daily_volume: None,
        monthly_count: None,
        monthly_volume: None,
    };

    /// Whether no cap is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::NONE
    }

    /// The cap of `kind`, if set (a count, or paise).
    pub fn limit(&self, kind: QuotaKind) -> Option<i64> {
        match kind {
            QuotaKind::DailyCount => self.daily_count,
            QuotaKind::DailyVolume => self.daily_volume.map(|p| p.0),
            QuotaKind::MonthlyCount => self.monthly_count,
            QuotaKind::MonthlyVolume => self.monthly_volume.map(|p| p.0),
        }
    }

    /// Accepts caps from 1 to [`MAX_COUNT_CAP`] payments and 1 paisa to [`MAX_VOLUME_CAP`].
    pub fn validate(&self) -> Result<(), FieldError> {
        for kind in QuotaKind::ALL {
            let Some(limit) = self.limit(kind) else {
                continue;
            };
            let max = if kind.is_count() {
                MAX_COUNT_CAP
            } else {
                MAX_VOLUME_CAP.0
            };
            if !(1..=max).contains(&limit) {
                return Err(Problem::OutOfRange { min: 1, max }.at(kind.as_str()));
            }
        }
        Ok(())
    }
}

/// One of a merchant's four caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaKind {
    /// Payments a day.
    DailyCount,
    /// Paise a day.
    DailyVolume,
    /// Payments a month.
    MonthlyCount,
    /// Paise a month.
    MonthlyVolume,
}

impl QuotaKind {
    /// Every cap, monthly first (a refusal names the cap with the latest reset).
    pub const ALL: [QuotaKind; 4] = [
        QuotaKind::MonthlyCount,
        QuotaKind::MonthlyVolume,
        QuotaKind::DailyCount,
        QuotaKind::DailyVolume,
    ];

    /// Its name in events and the API, e.g. `daily_count`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::DailyCount => "daily_count",
            QuotaKind::DailyVolume => "daily_volume",
            QuotaKind::MonthlyCount => "monthly_count",
            QuotaKind::MonthlyVolume => "monthly_volume",
        }
    }

    /// Whether it counts payments (else paise).
    pub fn is_count(self) -> bool {
        matches!(self, QuotaKind::DailyCount | QuotaKind::MonthlyCount)
    }

    /// Whether its period is the IST day (else the IST month).
    pub fn is_daily(self) -> bool {
        matches!(self, QuotaKind::DailyCount | QuotaKind::DailyVolume)
    }
}

/// The IST calendar day an instant falls in.
pub fn ist_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&IST).date_naive()
}

/// 00:00 IST on `day`, as an instant.
fn ist_midnight(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    IST.from_local_datetime(&midnight)
        .single()
        .map_or(DateTime::<Utc>::MAX_UTC, |local| local.with_timezone(&Utc))
}

/// When the IST day of `at` ends: 00:00 IST the next day.
pub fn day_resets_at(at: DateTime<Utc>) -> DateTime<Utc> {
    ist_day(at)
        .succ_opt()
        .map_or(DateTime::<Utc>::MAX_UTC, ist_midnight)
}

/// When the IST month of `at` ends: 00:00 IST on the first of the next month.
pub fn month_resets_at(at: DateTime<Utc>) -> DateTime<Utc> {
    let month = IstMonth::of(at);
    let (year, next) = if month.month == 12 {
        (month.year.saturating_add(1), 1)
    } else {
        (month.year, month.month + 1)
    };
    NaiveDate::from_ymd_opt(year, next, 1).map_or(DateTime::<Utc>::MAX_UTC, ist_midnight)
}

/// When the period of `kind` that `at` falls in resets.
pub fn resets_at(kind: QuotaKind, at: DateTime<Utc>) -> DateTime<Utc> {
    if kind.is_daily() {
        day_resets_at(at)
    } else {
        month_resets_at(at)
    }
}

/// The id part of the usage stream of `merchant` in the IST month of `at`: `<id>.<YYYY-MM>`.
pub fn usage_stream_key(merchant: MerchantId, at: DateTime<Utc>) -> String {
    format!("{merchant}.{}", IstMonth::of(at))
}

// ---------------------------------------------------------------------------------------------
// The caps

/// A merchant's caps, as an admin set them. A new stream has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantQuota {
    caps: QuotaCaps,
    set_at: Option<DateTime<Utc>>,
}

impl MerchantQuota {
    /// The caps in force.
    pub fn caps(&self) -> QuotaCaps {
        self.caps
    }

    /// When they were last changed.
    pub fn set_at(&self) -> Option<DateTime<Utc>> {
        self.set_at
    }
}

/// What can be asked of a merchant's caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuotaCommand {
    /// Replaces the caps (a `None` removes that cap).
    SetCaps {
        /// The merchant.
        merchant_id: MerchantId,
        /// The caps from now on.
        caps: QuotaCaps,
        /// When it is decided.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What a merchant's caps stream records.
    pub enum QuotaEvent {
        /// The caps changed.
        QuotaCapsSet {
            /// The merchant.
            merchant_id: MerchantId,
            /// The caps before.
            previous: QuotaCaps,
            /// The caps from now on.
            caps: QuotaCaps,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why caps are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// A cap is out of range.
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

impl Decider for MerchantQuota {
    const CATEGORY: &'static str = "quota";
    type State = MerchantQuota;
    type Command = QuotaCommand;
    type Event = QuotaEvent;
    type Error = QuotaError;

    fn decide(
        quota: &MerchantQuota,
        command: &QuotaCommand,
    ) -> Result<Vec<QuotaEvent>, QuotaError> {
        match command {
            QuotaCommand::SetCaps {
                merchant_id,
                caps,
                at,
            } => {
                caps.validate()?;
                if *caps == quota.caps {
                    return Ok(Vec::new());
                }
                Ok(vec![QuotaEvent::QuotaCapsSet {
                    merchant_id: *merchant_id,
                    previous: quota.caps,
                    caps: *caps,
                    at: *at,
                }])
            }
        }
    }

    fn evolve(mut quota: MerchantQuota, event: &QuotaEvent) -> MerchantQuota {
        match event {
            QuotaEvent::QuotaCapsSet { caps, at, .. } => {
                quota.caps = *caps;
                quota.set_at = Some(*at);
            }
        }
        quota
    }
}

// ---------------------------------------------------------------------------------------------
// The usage

/// A merchant's usage in one IST month, and in the latest IST day of it. A new stream has used
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUsage {
    month: Option<IstMonth>,
    day: Option<NaiveDate>,
    month_count: i64,
    month_volume: Paise,
    day_count: i64,
    day_volume: Paise,
    /// Thresholds recorded this month for monthly caps, and this day for daily caps.
    reached: BTreeSet<(QuotaKind, u8)>,
}

impl QuotaUsage {
    /// The month this stream counts, once it counted anything.
    pub fn month(&self) -> Option<IstMonth> {
        self.month
    }

    /// The latest IST day it counted.
    pub fn day(&self) -> Option<NaiveDate> {
        self.day
    }

    /// What is used of `kind` in the period of `at` (a count, or paise): a day other than the
    /// latest counted has used nothing.
    pub fn used(&self, kind: QuotaKind, at: DateTime<Utc>) -> i64 {
        let today = self.day.map_or(ist_day(at), |day| day.max(ist_day(at)));
        match kind {
            QuotaKind::MonthlyCount => self.month_count,
            QuotaKind::MonthlyVolume => self.month_volume.0,
            _ if self.day != Some(today) => 0,
            QuotaKind::DailyCount => self.day_count,
            QuotaKind::DailyVolume => self.day_volume.0,
        }
    }

    /// Whether reaching `percent` of `kind` was recorded in the period of `at`.
    pub fn has_reached(&self, kind: QuotaKind, percent: u8, at: DateTime<Utc>) -> bool {
        let same_day = self.day.is_some_and(|day| day >= ist_day(at));
        (!kind.is_daily() || same_day) && self.reached.contains(&(kind, percent))
    }
}

/// What can be asked of a usage stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UsageCommand {
    /// Admits a payment under the caps, or refuses it.
    Admit {
        /// The merchant.
        merchant_id: MerchantId,
        /// The payment being initiated.
        payment_id: PaymentId,
        /// Its amount.
        amount: Paise,
        /// The caps in force.
        caps: QuotaCaps,
        /// When it is decided.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What a usage stream records.
    pub enum UsageEvent {
        /// A payment was admitted and counts against the merchant's caps.
        QuotaUsed {
            /// The merchant.
            merchant_id: MerchantId,
            /// The payment.
            payment_id: PaymentId,
            /// Its amount.
            amount: Paise,
            /// The IST day it counts towards.
            day: NaiveDate,
            /// When.
            at: DateTime<Utc>,
        },
        /// The usage of a cap reached a threshold (80 % or 100 %) for the first time in its
        /// period. Ops alerting and the merchant's notification read this.
        QuotaThresholdReached {
            /// The merchant.
            merchant_id: MerchantId,
            /// Which cap.
            quota: QuotaKind,
            /// 80 or 100.
            percent: u8,
            /// The cap (a count, or paise).
            limit: i64,
            /// What is used with the payment that reached it.
            used: i64,
            /// The period: `YYYY-MM-DD` for daily caps, `YYYY-MM` for monthly ones (IST).
            period: String,
            /// When the period resets.
            resets_at: DateTime<Utc>,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why a payment is not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// The payment would pass a cap.
    #[error(
        "the {} quota of {limit} is used up to {used}; it resets at {resets_at}",
        quota.as_str()
    )]
    Exceeded {
        /// Which cap.
        quota: QuotaKind,
        /// The cap (a count, or paise).
        limit: i64,
        /// What is used already.
        used: i64,
        /// When its period resets.
        resets_at: DateTime<Utc>,
    },
    /// The command's instant is not in the stream's month (a caller's bug).
    #[error("the usage stream of {stream} cannot count a payment of {asked}")]
    WrongMonth {
        /// The stream's month.
        stream: IstMonth,
        /// The command's month.
        asked: IstMonth,
    },
}

/// Whether `used` reaches `percent` of `limit`, in integers.
fn reaches(used: i64, limit: i64, percent: u8) -> bool {
    i128::from(used) * 100 >= i128::from(limit) * i128::from(percent)
}

impl Decider for QuotaUsage {
    const CATEGORY: &'static str = "quota_usage";
    const SNAPSHOT_VERSION: Option<u32> = Some(1);
    type State = QuotaUsage;
    type Command = UsageCommand;
    type Event = UsageEvent;
    type Error = UsageError;

    fn snapshot(state: &QuotaUsage) -> Option<serde_json::Value> {
        serde_json::to_value(state).ok()
    }

    fn restore(snapshot: serde_json::Value) -> Option<QuotaUsage> {
        serde_json::from_value(snapshot).ok()
    }

    fn decide(usage: &QuotaUsage, command: &UsageCommand) -> Result<Vec<UsageEvent>, UsageError> {
        let UsageCommand::Admit {
            merchant_id,
            payment_id,
            amount,
            caps,
            at,
        } = command;
        let asked = IstMonth::of(*at);
        if let Some(stream) = usage.month
            && stream != asked
        {
            return Err(UsageError::WrongMonth { stream, asked });
        }
        let day = usage.day.map_or(ist_day(*at), |d| d.max(ist_day(*at)));
        let resets = |kind: QuotaKind| {
            if kind.is_daily() {
                day.succ_opt()
                    .map_or(DateTime::<Utc>::MAX_UTC, ist_midnight)
            } else {
                month_resets_at(*at)
            }
        };
        let used_before = |kind: QuotaKind| usage.used(kind, ist_midnight(day));
        let adding = |kind: QuotaKind| if kind.is_count() { 1 } else { amount.0 };
        for kind in QuotaKind::ALL {
            let Some(limit) = caps.limit(kind) else {
                continue;
            };
            let used = used_before(kind);
            if used.saturating_add(adding(kind)) > limit {
                return Err(UsageError::Exceeded {
                    quota: kind,
                    limit,
                    used,
                    resets_at: resets(kind),
                });
            }
        }
        let mut events = vec![UsageEvent::QuotaUsed {
            merchant_id: *merchant_id,
            payment_id: *payment_id,
            amount: *amount,
            day,
            at: *at,
        }];
        let new_day = usage.day != Some(day);
        for kind in QuotaKind::ALL {
            let Some(limit) = caps.limit(kind) else {
                continue;
            };
            let used = used_before(kind).saturating_add(adding(kind));
            for percent in THRESHOLDS_PERCENT {
                let recorded =
                    usage.reached.contains(&(kind, percent)) && !(kind.is_daily() && new_day);
                if !recorded && reaches(used, limit, percent) {
                    events.push(UsageEvent::QuotaThresholdReached {
                        merchant_id: *merchant_id,
                        quota: kind,
                        percent,
                        limit,
                        used,
                        period: if kind.is_daily() {
                            day.format("%Y-%m-%d").to_string()
                        } else {
                            asked.to_string()
                        },
                        resets_at: resets(kind),
                        at: *at,
                    });
                }
            }
        }
        Ok(events)
    }

    fn evolve(mut usage: QuotaUsage, event: &UsageEvent) -> QuotaUsage {
        match event {
            UsageEvent::QuotaUsed {
                amount, day, at, ..
            } => {
                usage.month.get_or_insert(IstMonth::of(*at));
                if usage.day.is_none_or(|latest| *day > latest) {
                    usage.day = Some(*day);
                    usage.day_count = 0;
                    usage.day_volume = Paise::ZERO;
                    usage.reached.retain(|(kind, _)| !kind.is_daily());
                }
                if usage.day == Some(*day) {
                    usage.day_count = usage.day_count.saturating_add(1);
                    usage.day_volume = usage.day_volume.saturating_add(*amount);
                }
                usage.month_count = usage.month_count.saturating_add(1);
                usage.month_volume = usage.month_volume.saturating_add(*amount);
            }
            UsageEvent::QuotaThresholdReached { quota, percent, .. } => {
                usage.reached.insert((*quota, *percent));
            }
        }
        usage
    }
}

#[cfg(test)]
mod tests;
