//! Given events, when a command, then events: the caps and the usage they bound.

use super::*;
use crate::testing::{given, t};

const DAY: i64 = 24 * 3600;

fn merchant() -> MerchantId {
    MerchantId(uuid::Uuid::from_u128(7))
}

fn payment(n: u128) -> PaymentId {
    PaymentId(uuid::Uuid::from_u128(n))
}

fn caps(daily_count: Option<i64>, monthly_volume: Option<i64>) -> QuotaCaps {
    QuotaCaps {
        daily_count,
        monthly_volume: monthly_volume.map(Paise),
        ..QuotaCaps::NONE
    }
}

fn admit(n: u128, amount: i64, caps: QuotaCaps, at: DateTime<Utc>) -> UsageCommand {
    UsageCommand::Admit {
        merchant_id: merchant(),
        payment_id: payment(n),
        amount: Paise(amount),
        caps,
        at,
    }
}

fn used(n: u128, amount: i64, at: DateTime<Utc>) -> UsageEvent {
    UsageEvent::QuotaUsed {
        merchant_id: merchant(),
        payment_id: payment(n),
        amount: Paise(amount),
        day: ist_day(at),
        at,
    }
}

fn reached(quota: QuotaKind, percent: u8, limit: i64, used: i64, at: DateTime<Utc>) -> UsageEvent {
    UsageEvent::QuotaThresholdReached {
        merchant_id: merchant(),
        quota,
        percent,
        limit,
        used,
        period: if quota.is_daily() {
            ist_day(at).format("%Y-%m-%d").to_string()
        } else {
            IstMonth::of(at).to_string()
        },
        resets_at: resets_at(quota, at),
        at,
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 instant")
}

#[test]
fn periods_reset_at_midnight_ist() {
    // 15 January 2026 15:30 IST: the day resets at 16 January 00:00 IST (15 January 18:30 UTC).
    assert_eq!(day_resets_at(t(0)), utc("2026-01-15T18:30:00Z"));
    assert_eq!(month_resets_at(t(0)), utc("2026-01-31T18:30:00Z"));
    // 31 December 23:59 IST belongs to December; the month resets on 1 January.
    assert_eq!(
        month_resets_at(utc("2026-12-31T18:29:00Z")),
        utc("2026-12-31T18:30:00Z")
    );
    assert_eq!(
        usage_stream_key(merchant(), utc("2026-03-31T18:30:00Z")),
        format!("{}.2026-04", merchant())
    );
}

#[test]
fn an_admin_sets_caps_and_the_event_says_what_they_were() {
    let new = caps(Some(100), Some(1_000_000));
    given::<MerchantQuota>([])
        .when(QuotaCommand::SetCaps {
            merchant_id: merchant(),
            caps: new,
            at: t(0),
        })
        .then([QuotaEvent::QuotaCapsSet {
            merchant_id: merchant(),
            previous: QuotaCaps::NONE,
            caps: new,
            at: t(0),
        }]);
}

#[test]
fn setting_the_same_caps_again_records_nothing() {
    let same = caps(Some(100), None);
    given::<MerchantQuota>([QuotaEvent::QuotaCapsSet {
        merchant_id: merchant(),
        previous: QuotaCaps::NONE,
        caps: same,
        at: t(0),
    }])
    .when(QuotaCommand::SetCaps {
        merchant_id: merchant(),
        caps: same,
        at: t(1),
    })
    .then_nothing();
}

#[test]
fn a_cap_of_zero_or_past_the_maximum_is_refused() {
    given::<MerchantQuota>([])
        .when(QuotaCommand::SetCaps {
            merchant_id: merchant(),
            caps: caps(Some(0), None),
            at: t(0),
        })
        .then_error(QuotaError::Invalid(
            Problem::OutOfRange {
                min: 1,
                max: MAX_COUNT_CAP,
            }
            .at("daily_count"),
        ));
    given::<MerchantQuota>([])
        .when(QuotaCommand::SetCaps {
            merchant_id: merchant(),
            caps: caps(None, Some(MAX_VOLUME_CAP.0 + 1)),
            at: t(0),
        })
        .then_error(QuotaError::Invalid(
            Problem::OutOfRange {
                min: 1,
                max: MAX_VOLUME_CAP.0,
            }
            .at("monthly_volume"),
        ));
}

#[test]
fn a_payment_under_every_cap_is_admitted() {
    given::<QuotaUsage>([])
        .when(admit(1, 500, caps(Some(10), Some(100_000)), t(0)))
        .then([used(1, 500, t(0))]);
}

#[test]
fn the_payment_past_the_daily_count_is_refused_with_the_days_reset() {
    let cap = caps(Some(2), None);
    given::<QuotaUsage>([used(1, 100, t(0)), used(2, 100, t(1))])
        .when(admit(3, 100, cap, t(2)))
        .then_error(UsageError::Exceeded {
            quota: QuotaKind::DailyCount,
            limit: 2,
            used: 2,
            resets_at: day_resets_at(t(2)),
        });
}

#[test]
fn the_payment_that_would_pass_the_monthly_volume_is_refused() {
    let cap = caps(None, Some(1_000));
    given::<QuotaUsage>([used(1, 700, t(0))])
        .when(admit(2, 301, cap, t(1)))
        .then_error(UsageError::Exceeded {
            quota: QuotaKind::MonthlyVolume,
            limit: 1_000,
            used: 700,
            resets_at: month_resets_at(t(1)),
        });
    // What fits exactly is admitted, and reaching 100 % is recorded with it.
    given::<QuotaUsage>([
        used(1, 700, t(0)),
        reached(QuotaKind::MonthlyVolume, 80, 1_000, 800, t(0)),
    ])
    .when(admit(2, 300, cap, t(1)))
    .then([
        used(2, 300, t(1)),
        reached(QuotaKind::MonthlyVolume, 100, 1_000, 1_000, t(1)),
    ]);
}

#[test]
fn reaching_eighty_and_a_hundred_percent_is_recorded_once_each() {
    let cap = caps(Some(5), None);
    // The fourth payment of five reaches 80 %.
    let history = vec![used(1, 10, t(0)), used(2, 10, t(1)), used(3, 10, t(2))];
    given::<QuotaUsage>(history.clone())
        .when(admit(4, 10, cap, t(3)))
        .then([
            used(4, 10, t(3)),
            reached(QuotaKind::DailyCount, 80, 5, 4, t(3)),
        ]);
    // The fifth reaches 100 %, and 80 % is not recorded again.
    let mut history = history;
    history.extend([
        used(4, 10, t(3)),
        reached(QuotaKind::DailyCount, 80, 5, 4, t(3)),
    ]);
    given::<QuotaUsage>(history)
        .when(admit(5, 10, cap, t(4)))
        .then([
            used(5, 10, t(4)),
            reached(QuotaKind::DailyCount, 100, 5, 5, t(4)),
        ]);
}

#[test]
fn one_payment_can_reach_both_thresholds_of_a_cap() {
    let cap = caps(None, Some(1_000));
    given::<QuotaUsage>([])
        .when(admit(1, 1_000, cap, t(0)))
        .then([
            used(1, 1_000, t(0)),
            reached(QuotaKind::MonthlyVolume, 80, 1_000, 1_000, t(0)),
            reached(QuotaKind::MonthlyVolume, 100, 1_000, 1_000, t(0)),
        ]);
}

#[test]
fn the_next_day_admits_again_and_records_its_thresholds_anew() {
    let cap = caps(Some(1), None);
    let history = [
        used(1, 10, t(0)),
        reached(QuotaKind::DailyCount, 80, 1, 1, t(0)),
        reached(QuotaKind::DailyCount, 100, 1, 1, t(0)),
    ];
    given::<QuotaUsage>(history.clone())
        .when(admit(2, 10, cap, t(1)))
        .then_error(UsageError::Exceeded {
            quota: QuotaKind::DailyCount,
            limit: 1,
            used: 1,
            resets_at: day_resets_at(t(0)),
        });
    let tomorrow = day_resets_at(t(0));
    let state = given::<QuotaUsage>(history)
        .when(admit(2, 10, cap, tomorrow))
        .then([
            used(2, 10, tomorrow),
            reached(QuotaKind::DailyCount, 80, 1, 1, tomorrow),
            reached(QuotaKind::DailyCount, 100, 1, 1, tomorrow),
        ]);
    assert_eq!(state.used(QuotaKind::DailyCount, tomorrow), 1);
    assert_eq!(state.used(QuotaKind::MonthlyCount, tomorrow), 2);
}

#[test]
fn the_monthly_count_spans_the_days_of_the_month() {
    let cap = QuotaCaps {
        monthly_count: Some(2),
        ..QuotaCaps::NONE
    };
    given::<QuotaUsage>([used(1, 10, t(0)), used(2, 10, t(DAY))])
        .when(admit(3, 10, cap, t(2 * DAY)))
        .then_error(UsageError::Exceeded {
            quota: QuotaKind::MonthlyCount,
            limit: 2,
            used: 2,
            resets_at: month_resets_at(t(0)),
        });
}

#[test]
fn a_command_from_a_clock_behind_counts_towards_the_latest_day() {
    let cap = caps(Some(2), None);
    let late = t(DAY);
    given::<QuotaUsage>([used(1, 10, late)])
        .when(admit(2, 10, cap, t(0)))
        .then([
            UsageEvent::QuotaUsed {
                merchant_id: merchant(),
                payment_id: payment(2),
                amount: Paise(10),
                day: ist_day(late),
                at: t(0),
            },
            UsageEvent::QuotaThresholdReached {
                merchant_id: merchant(),
                quota: QuotaKind::DailyCount,
                percent: 80,
                limit: 2,
                used: 2,
                period: ist_day(late).format("%Y-%m-%d").to_string(),
                resets_at: day_resets_at(late),
                at: t(0),
            },
            UsageEvent::QuotaThresholdReached {
                merchant_id: merchant(),
                quota: QuotaKind::DailyCount,
                percent: 100,
                limit: 2,
                used: 2,
                period: ist_day(late).format("%Y-%m-%d").to_string(),
                resets_at: day_resets_at(late),
                at: t(0),
            },
        ]);
}

#[test]
fn a_usage_stream_counts_only_its_own_month() {
    let next_month = month_resets_at(t(0));
    given::<QuotaUsage>([used(1, 10, t(0))])
        .when(admit(2, 10, caps(Some(5), None), next_month))
        .then_error(UsageError::WrongMonth {
            stream: IstMonth::of(t(0)),
            asked: IstMonth::of(next_month),
        });
}

#[test]
fn with_no_caps_usage_is_still_only_counted() {
    given::<QuotaUsage>([])
        .when(admit(1, 10, QuotaCaps::NONE, t(0)))
        .then([used(1, 10, t(0))]);
}

#[test]
fn two_replicas_deciding_on_the_same_version_cannot_both_pass_the_cap() {
    // Both decide on the same history and would each be admitted; the event store lets one
    // append at that version, and the other, decided again on the new version, is refused.
    let cap = caps(Some(2), None);
    let history = [used(1, 10, t(0))];
    given::<QuotaUsage>(history.clone())
        .when(admit(2, 10, cap, t(1)))
        .then([
            used(2, 10, t(1)),
            reached(QuotaKind::DailyCount, 80, 2, 2, t(1)),
            reached(QuotaKind::DailyCount, 100, 2, 2, t(1)),
        ]);
    given::<QuotaUsage>([
        used(1, 10, t(0)),
        used(2, 10, t(1)),
        reached(QuotaKind::DailyCount, 80, 2, 2, t(1)),
        reached(QuotaKind::DailyCount, 100, 2, 2, t(1)),
    ])
    .when(admit(3, 10, cap, t(1)))
    .then_error(UsageError::Exceeded {
        quota: QuotaKind::DailyCount,
        limit: 2,
        used: 2,
        resets_at: day_resets_at(t(1)),
    });
}

#[test]
fn the_snapshot_restores_the_same_state() {
    let state = QuotaUsage::fold(&[
        used(1, 10, t(0)),
        reached(QuotaKind::DailyCount, 80, 1, 1, t(0)),
    ]);
    let snapshot = QuotaUsage::snapshot(&state).expect("a snapshot");
    assert_eq!(QuotaUsage::restore(snapshot), Some(state));
}
