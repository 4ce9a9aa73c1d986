//! A merchant's checkout settings: how its payments are routed among its gateways and which
//! gateways booking may use (skip resting ones, the default requests-per-minute cap, how long a
//! gateway rests after a failure).
//!
//! Both the gateway's booking check and routing read these settings, so they live below both.

use crate::validation::{self, FieldError};
use serde::{Deserialize, Serialize};

/// The highest requests-per-minute cap a gateway (or a merchant default) may have. It bounds the
/// window of booking instants a gateway state keeps; for more traffic leave the gateway uncapped.
pub const MAX_RPM_CAP: u32 = 1_000;

/// Default rest after a gateway failure: 5 minutes.
pub const DEFAULT_TEMPORARY_FAILURE_SECS: u64 = 5 * 60;

/// Longest rest after a gateway failure a merchant may configure: one day.
pub const MAX_TEMPORARY_FAILURE_SECS: u64 = 24 * 3600;

/// How gateways are ordered among the eligible ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingMode {
    /// Priority (highest first), then success rate (highest first), then least recently used.
    #[default]
    Smart,
    /// Least recently used first (never used before all others), ties by priority.
    RoundRobin,
}

/// A merchant's checkout settings that shape routing and booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutSettings {
    /// Smart or round robin.
    pub routing_mode: RoutingMode,
    /// Whether temporarily failed gateways are skipped (default on). Off means a resting
    /// gateway still takes payments; the merchant chose that.
    pub skip_temporarily_failed: bool,
    /// RPM cap applied to gateways without one of their own; `None` (the default) for no cap.
    pub default_rpm_cap: Option<u32>,
    /// How long a gateway rests after a failure, in seconds (default 300).
    pub temporary_failure_secs: u64,
}

impl Default for CheckoutSettings {
    /// Smart routing, skip temporarily failed gateways, no default RPM cap, 5-minute rest.
    fn default() -> Self {
        CheckoutSettings {
            routing_mode: RoutingMode::Smart,
            skip_temporarily_failed: true,
            default_rpm_cap: None,
            temporary_failure_secs: DEFAULT_TEMPORARY_FAILURE_SECS,
        }
    }
}

impl CheckoutSettings {
    /// Refuses a default RPM cap outside `1..=MAX_RPM_CAP` or a rest outside one second to one day.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(cap) = self.default_rpm_cap {
            validation::range("default_rpm_cap", u64::from(cap), 1, u64::from(MAX_RPM_CAP))?;
        }
        validation::range(
            "temporary_failure_secs",
            self.temporary_failure_secs,
            1,
            MAX_TEMPORARY_FAILURE_SECS,
        )
    }
}
