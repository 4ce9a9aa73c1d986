//! Retry schedules as pure functions: given the attempt that just failed (and a jitter drawn by
//! the caller), how long to wait before the next one, or `None` when attempts are exhausted.
//!
//! Attempts are numbered from 1; the first attempt is made at once.
//!
//! | what | attempts | waits after failed attempt 1, 2, … |
//! |---|---|---|
//! | PSP calls | 3 | 1 s, 2 s |
//! | WhatsApp | 4 | 30 s, 1 min, 2 min |
//! | WhatsApp, rate limited | 4 | 5 min, 10 min, 20 min |
//! | merchant webhooks | 8 | 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h |
//!
//! Every wait is scaled by a jitter of at most ±20 % ([`Jitter`]); the caller draws it, so the
//! functions stay deterministic.

use std::time::Duration;

/// A jitter fraction in basis points of the wait, clamped to ±2 000 (±20 %).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Jitter(i32);

impl Jitter {
    /// The largest jitter, in basis points of the wait (20 %).
    pub const MAX_BPS: i32 = 2_000;

    /// No jitter.
    pub const NONE: Jitter = Jitter(0);

    /// A jitter of `bps` basis points of the wait, clamped to ±[`Jitter::MAX_BPS`]. Callers draw
    /// it uniformly from `-2000..=2000`.
    pub const fn from_bps(bps: i32) -> Jitter {
        Jitter(if bps > Self::MAX_BPS {
            Self::MAX_BPS
        } else if bps < -Self::MAX_BPS {
            -Self::MAX_BPS
        } else {
            bps
        })
    }

    /// The jitter in basis points.
    pub const fn bps(self) -> i32 {
        self.0
    }

    /// `wait × (10 000 + bps) / 10 000`, in whole milliseconds.
    pub fn apply(self, wait: Duration) -> Duration {
        let millis = wait.as_millis();
        // 10 000 + bps lies in 8 000..=12 000, so the factor is positive.
        let factor = u128::from((10_000 + self.0).unsigned_abs());
        let scaled = millis.saturating_mul(factor) / 10_000;
        Duration::from_millis(u64::try_from(scaled).unwrap_or(u64::MAX))
    }
}

/// Exponential backoff: after failed attempt `n`, wait `base × 2^(n−1)`, at most `max_wait`,
/// until `max_attempts` attempts have been made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// Wait after the first failure.
    pub base: Duration,
    /// Longest wait.
    pub max_wait: Duration,
}

impl Backoff {
    /// The wait before the attempt after `failed_attempt` (1-based), or `None` when that was the
    /// last allowed attempt.
    pub fn wait_after(&self, failed_attempt: u32, jitter: Jitter) -> Option<Duration> {
        if failed_attempt == 0 || failed_attempt >= self.max_attempts {
            return None;
        }
        let doublings = (failed_attempt - 1).min(31);
        let wait = self.base.saturating_mul(1 << doublings).min(self.max_wait);
        Some(jitter.apply(wait))
    }
}

/// Calls to a PSP (create order, fetch status): 3 attempts, waits of 1 s then 2 s.
pub const PSP_CALLS: Backoff = Backoff {
    max_attempts: 3,
    base: Duration::from_secs(1),
    max_wait: Duration::from_secs(30),
};

/// WhatsApp sends: 4 attempts, waits of 30 s, 1 min, 2 min.
pub const WHATSAPP: Backoff = Backoff {
    max_attempts: 4,
    base: Duration::from_secs(30),
    max_wait: Duration::from_secs(30 * 60),
};

/// WhatsApp sends refused for rate limiting (e.g. Meta error 130429): same 4 attempts, waits of
/// 5, 10 and 20 minutes, since retrying soon only hits the limit again.
pub const WHATSAPP_RATE_LIMITED: Backoff = Backoff {
    max_attempts: 4,
    base: Duration::from_secs(5 * 60),
    max_wait: Duration::from_secs(60 * 60),
};

/// Attempts at delivering one merchant webhook: the immediate one and seven retries.
pub const WEBHOOK_MAX_ATTEMPTS: u32 = 8;

/// Waits before merchant webhook retries 2 to 8: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const WEBHOOK_WAITS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

// The schedule alone decides when a delivery is given up: one slot per retry.
const _: () = assert!(WEBHOOK_WAITS.len() + 1 == WEBHOOK_MAX_ATTEMPTS as usize);

/// The longest wait of the merchant webhook schedule: its last slot, since it never shortens.
pub const WEBHOOK_LONGEST_WAIT: Duration = WEBHOOK_WAITS[WEBHOOK_WAITS.len() - 1];

// Each wait is at least the one before, so the last slot is the longest.
const _: () = {
    let mut slot = 1;
    while slot < WEBHOOK_WAITS.len() {
        assert!(WEBHOOK_WAITS[slot - 1].as_millis() <= WEBHOOK_WAITS[slot].as_millis());
        slot += 1;
    }
};

/// The wait before the next merchant webhook attempt after `failed_attempt` (1-based) failed,
/// jittered; `None` after the eighth.
pub fn webhook_wait_after(failed_attempt: u32, jitter: Jitter) -> Option<Duration> {
    let index = usize::try_from(failed_attempt.checked_sub(1)?).ok()?;
    WEBHOOK_WAITS.get(index).map(|&wait| jitter.apply(wait))
}

/// The wait before the next WhatsApp attempt after `failed_attempt` failed; rate-limited
/// failures back off longer.
pub fn whatsapp_wait_after(
    failed_attempt: u32,
    rate_limited: bool,
    jitter: Jitter,
) -> Option<Duration> {
    let schedule = if rate_limited {
        WHATSAPP_RATE_LIMITED
    } else {
        WHATSAPP
    };
    schedule.wait_after(failed_attempt, jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn psp_calls_make_three_attempts_with_exponential_waits() {
        let waits: Vec<_> = (1..=3)
            .map(|n| PSP_CALLS.wait_after(n, Jitter::NONE))
            .collect();
        assert_eq!(waits, [Some(secs(1)), Some(secs(2)), None]);
    }

    #[test]
    fn whatsapp_makes_four_attempts_and_backs_off_longer_when_rate_limited() {
        let waits: Vec<_> = (1..=4)
            .map(|n| whatsapp_wait_after(n, false, Jitter::NONE))
            .collect();
        assert_eq!(
            waits,
            [Some(secs(30)), Some(secs(60)), Some(secs(120)), None]
        );
        let limited: Vec<_> = (1..=4)
            .map(|n| whatsapp_wait_after(n, true, Jitter::NONE))
            .collect();
        assert_eq!(
            limited,
            [Some(secs(300)), Some(secs(600)), Some(secs(1200)), None]
        );
    }

    #[test]
    fn webhooks_follow_the_published_schedule_then_stop() {
        let waits: Vec<_> = (1..=8)
            .map(|n| webhook_wait_after(n, Jitter::NONE))
            .collect();
        let expected = [5, 300, 1800, 7200, 18_000, 36_000, 36_000].map(|s| Some(secs(s)));
        assert_eq!(waits[..7], expected);
        assert_eq!(waits[7], None);
        assert_eq!(webhook_wait_after(0, Jitter::NONE), None);
        assert_eq!(webhook_wait_after(u32::MAX, Jitter::NONE), None);
    }

    #[test]
    fn jitter_scales_waits_by_at_most_twenty_percent() {
        assert_eq!(
            webhook_wait_after(2, Jitter::from_bps(2_000)),
            Some(secs(360))
        );
        assert_eq!(
            webhook_wait_after(2, Jitter::from_bps(-2_000)),
            Some(secs(240))
        );
        assert_eq!(Jitter::from_bps(9_999), Jitter::from_bps(2_000));
        assert_eq!(Jitter::from_bps(i32::MIN).bps(), -2_000);
        assert_eq!(
            Jitter::from_bps(1_000).apply(Duration::from_millis(5)),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn backoff_never_overflows() {
        let huge = Backoff {
            max_attempts: u32::MAX,
            base: Duration::MAX,
            max_wait: Duration::MAX,
        };
        assert!(
            huge.wait_after(u32::MAX - 1, Jitter::from_bps(2_000))
                .is_some()
        );
        assert_eq!(PSP_CALLS.wait_after(0, Jitter::NONE), None);
    }
}
