//! A merchant's standing: the status ops set (active, suspended, closed), its money thresholds,
//! and where its balance due puts it (good, warned, suspended).
//!
//! Suspension for unpaid commission is never recorded: it is derived from the wallet's balance
//! due at the moment of each payment, so it lifts by itself once the balance is paid. The
//! merchant, its wallet and its payments all read these rules; none of them owns them.

use crate::money::Paise;
use crate::validation::{self, FieldError, Problem};
use serde::{Deserialize, Serialize};

/// Whether a merchant may take payments, as ops set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MerchantStatus {
    /// Takes payments (subject to the balance-due rule).
    Active,
    /// Suspended by ops; new payments are refused until reactivated.
    Suspended,
    /// Closed for good.
    Closed,
}

/// A merchant's money thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Balance due at or above which new payments are refused (default ₹10,000).
    pub suspend_at: Paise,
    /// Balance due at or above which the merchant is warned (default ₹5,000).
    pub warn_at: Paise,
    /// Smallest balance the automatic payout collects (default ₹1,000).
    pub auto_payout_minimum: Paise,
}

impl Default for Thresholds {
    /// Suspend at ₹10,000, warn at ₹5,000, automatic payout from ₹1,000.
    fn default() -> Self {
        Thresholds {
            suspend_at: Paise::rupees(10_000),
            warn_at: Paise::rupees(5_000),
            auto_payout_minimum: Paise::rupees(1_000),
        }
    }
}

impl Thresholds {
    /// Refuses non-positive thresholds and a warn threshold above the suspend threshold.
    pub fn validate(&self) -> Result<(), FieldError> {
        let max = Paise(i64::MAX);
        validation::amount("suspend_at", self.suspend_at, max)?;
        validation::amount("warn_at", self.warn_at, max)?;
        validation::amount("auto_payout_minimum", self.auto_payout_minimum, max)?;
        if self.warn_at > self.suspend_at {
            return Err(Problem::Exceeds {
                other: "suspend_at",
            }
            .at("warn_at"));
        }
        Ok(())
    }
}

/// Where a merchant stands given what it owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Below the warn threshold.
    Good,
    /// At or above the warn threshold, below the suspend threshold: warn the merchant.
    Warn,
    /// At or above the suspend threshold: new payments are refused.
    Suspended,
}

/// The suspension and warn rules: balance due ≥ suspend threshold → suspended; ≥ warn threshold
/// → warn; else good.
pub fn standing(balance_due: Paise, thresholds: &Thresholds) -> Standing {
    if balance_due >= thresholds.suspend_at {
        Standing::Suspended
    } else if balance_due >= thresholds.warn_at {
        Standing::Warn
    } else {
        Standing::Good
    }
}
