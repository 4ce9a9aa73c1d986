//! Calendar rules in India Standard Time and overflow-free instant arithmetic.
//!
//! IST is a fixed UTC+05:30 with no daylight saving, so a fixed offset is exact and no time-zone
//! database is needed. Gateway monthly limits reset at 00:00 IST on the first of each month.

use chrono::{DateTime, Datelike, FixedOffset, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// IST's offset from UTC in seconds (5 h 30 min).
pub const IST_OFFSET_SECS: i32 = 5 * 3600 + 1800;

/// India Standard Time, UTC+05:30.
pub const IST: FixedOffset = match FixedOffset::east_opt(IST_OFFSET_SECS) {
    Some(offset) => offset,
    // Evaluated at compile time: the offset is a constant within ±24 h.
    None => panic!("IST offset out of range"),
};

/// A calendar month in IST, e.g. March 2026; the unit of a gateway's monthly limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IstMonth {
    /// Calendar year, e.g. 2026.
    pub year: i32,
    /// Month of the year, 1 (January) to 12 (December).
    pub month: u32,
}

impl IstMonth {
    /// The IST calendar month an instant falls in.
    pub fn of(at: DateTime<Utc>) -> IstMonth {
        let local = at.with_timezone(&IST);
        IstMonth {
            year: local.year(),
            month: local.month(),
        }
    }
}

impl std::fmt::Display for IstMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// `at + duration`, saturating at the last representable instant instead of panicking.
pub fn plus(at: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at - duration`, saturating at the first representable instant instead of panicking.
pub fn minus(at: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| at.checked_sub_signed(delta))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `at + secs` seconds, saturating instead of panicking.
pub fn plus_secs(at: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    plus(at, std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("valid RFC 3339 instant")
    }

    #[test]
    fn the_ist_month_turns_at_midnight_ist_not_utc() {
        // 31 March 18:29:59 UTC is 23:59:59 IST; one second later it is 1 April in India.
        assert_eq!(
            IstMonth::of(utc("2026-03-31T18:29:59Z")),
            IstMonth {
                year: 2026,
                month: 3
            }
        );
        assert_eq!(
            IstMonth::of(utc("2026-03-31T18:30:00Z")),
            IstMonth {
                year: 2026,
                month: 4
            }
        );
        assert_eq!(
            IstMonth::of(utc("2026-12-31T18:30:00Z")),
            IstMonth {
                year: 2027,
                month: 1
            }
        );
        assert_eq!(
            IstMonth {
                year: 2026,
                month: 4
            }
            .to_string(),
            "2026-04"
        );
    }

    #[test]
    fn instant_arithmetic_saturates() {
        let max = DateTime::<Utc>::MAX_UTC;
        assert_eq!(plus_secs(max, 1), max);
        assert_eq!(plus(max, std::time::Duration::MAX), max);
        assert_eq!(
            minus(DateTime::<Utc>::MIN_UTC, std::time::Duration::from_secs(1)),
            DateTime::<Utc>::MIN_UTC
        );
        assert_eq!(
            plus_secs(utc("2026-01-01T00:00:00Z"), 90),
            utc("2026-01-01T00:01:30Z")
        );
    }
}
