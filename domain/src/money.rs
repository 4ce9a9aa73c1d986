//! Money is integer paise; fees are basis points. No floating point anywhere.

use serde::{Deserialize, Serialize};

/// An amount of Indian rupees in paise (1 rupee = 100 paise).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Paise(pub i64);

impl Paise {
    /// Zero paise.
    pub const ZERO: Paise = Paise(0);

    /// Whole rupees as paise, e.g. `Paise::rupees(10_000)` for ₹10,000 (saturating, never
    /// overflowing).
    pub const fn rupees(rupees: i64) -> Paise {
        Paise(rupees.saturating_mul(100))
    }

    /// Sum, or `None` on overflow.
    pub fn checked_add(self, other: Paise) -> Option<Paise> {
        self.0.checked_add(other.0).map(Paise)
    }

    /// Difference, or `None` on overflow.
    pub fn checked_sub(self, other: Paise) -> Option<Paise> {
        self.0.checked_sub(other.0).map(Paise)
    }

    /// Sum, clamped at the bounds of `i64` instead of overflowing.
    ///
    /// Folds use this so that no stored event, however odd, can make a replay panic.
    pub const fn saturating_add(self, other: Paise) -> Paise {
        Paise(self.0.saturating_add(other.0))
    }

    /// Difference, clamped at the bounds of `i64` instead of overflowing.
    pub const fn saturating_sub(self, other: Paise) -> Paise {
        Paise(self.0.saturating_sub(other.0))
    }

    /// True for amounts above zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// `self × part / whole`, rounded half-up (away from zero at exactly one half), in
    /// integers; zero when `whole` is not positive. Used for a commission's share of a refund.
    pub fn pro_rata(self, part: Paise, whole: Paise) -> Paise {
        if !whole.is_positive() {
            return Paise::ZERO;
        }
        let numerator = i128::from(self.0) * i128::from(part.0);
        let whole = i128::from(whole.0);
        let magnitude = (numerator.abs() * 2 + whole) / (2 * whole);
        let signed = if numerator < 0 { -magnitude } else { magnitude };
        Paise(i64::try_from(signed).unwrap_or(if signed < 0 { i64::MIN } else { i64::MAX }))
    }
}

impl std::ops::Add for Paise {
    type Output = Paise;
    fn add(self, other: Paise) -> Paise {
        Paise(self.0 + other.0)
    }
}

impl std::ops::Sub for Paise {
    type Output = Paise;
    fn sub(self, other: Paise) -> Paise {
        Paise(self.0 - other.0)
    }
}

impl std::ops::AddAssign for Paise {
    fn add_assign(&mut self, other: Paise) {
        self.0 += other.0;
    }
}

impl std::ops::SubAssign for Paise {
    fn sub_assign(&mut self, other: Paise) {
        self.0 -= other.0;
    }
}

impl std::iter::Sum for Paise {
    fn sum<I: Iterator<Item = Paise>>(iter: I) -> Paise {
        Paise(iter.map(|p| p.0).sum())
    }
}

/// Shows rupees with two decimals, e.g. `₹1,234.50` is shown as `1234.50`.
impl std::fmt::Display for Paise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// A fee in basis points: 350 = 3.50 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BasisPoints(pub u32);

impl BasisPoints {
    /// The whole: 10 000 basis points = 100 %.
    pub const WHOLE: u32 = 10_000;

    /// The default merchant fee: 350 bps = 3.50 %.
    pub const DEFAULT_FEE: BasisPoints = BasisPoints(350);

    /// A fee between 0 and 100 % inclusive; anything above 10 000 bps is refused.
    pub const fn new(bps: u32) -> Result<BasisPoints, FeeOutOfRange> {
        if bps <= Self::WHOLE {
            Ok(BasisPoints(bps))
        } else {
            Err(FeeOutOfRange(bps))
        }
    }

    /// The raw number of basis points.
    pub const fn bps(self) -> u32 {
        self.0
    }

    /// `amount × self / 10 000`, rounded half-up (away from zero at exactly one half).
    pub fn of(self, amount: Paise) -> Paise {
        let numerator = i128::from(amount.0) * i128::from(self.0);
        let whole = i128::from(Self::WHOLE);
        let magnitude = (numerator.abs() * 2 + whole) / (2 * whole);
        let signed = if numerator < 0 { -magnitude } else { magnitude };
        // |amount| ≤ i64::MAX and bps is a fee (≤ 10 000 in practice): the result fits.
        Paise(i64::try_from(signed).unwrap_or(if signed < 0 { i64::MIN } else { i64::MAX }))
    }
}

/// Shows the fee as a percentage with two decimals, e.g. `3.50%` for 350 bps.
impl std::fmt::Display for BasisPoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}%", self.0 / 100, self.0 % 100)
    }
}

/// A fee above 100 % (10 000 bps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fee of {0} bps is above 10000 bps (100 %)")]
pub struct FeeOutOfRange(pub u32);

/// The currency of a payment. Only Indian rupees are supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Currency {
    /// Indian rupee; amounts are in paise.
    #[default]
    #[serde(rename = "INR")]
    Inr,
}

impl Currency {
    /// The ISO 4217 code, e.g. `"INR"`.
    pub const fn code(self) -> &'static str {
        match self {
            Currency::Inr => "INR",
        }
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Currency {
    type Err = UnsupportedCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "INR" => Ok(Currency::Inr),
            other => Err(UnsupportedCurrency(other.to_owned())),
        }
    }
}

/// A currency code other than `INR`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported currency {0:?}; only INR is supported")]
pub struct UnsupportedCurrency(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commission_rounds_half_up() {
        // 3.50 % of ₹1.01 = 3.535 paise → 4 paise; of ₹1.00 = 3.5 paise → 4 paise; of 1 paisa → 0.
        assert_eq!(BasisPoints(350).of(Paise(101)), Paise(4));
        assert_eq!(BasisPoints(350).of(Paise(100)), Paise(4));
        assert_eq!(BasisPoints(350).of(Paise(1)), Paise(0));
        assert_eq!(BasisPoints(350).of(Paise(14_286)), Paise(500));
        assert_eq!(BasisPoints(10_000).of(Paise(i64::MAX)), Paise(i64::MAX));
    }

    #[test]
    fn a_pro_rata_share_rounds_half_up() {
        // 175 × 1/2 = 87.5 → 88; 175 × 1/3 = 58.33 → 58; 175 × 2/3 = 116.67 → 117.
        assert_eq!(Paise(175).pro_rata(Paise(1), Paise(2)), Paise(88));
        assert_eq!(Paise(175).pro_rata(Paise(1), Paise(3)), Paise(58));
        assert_eq!(Paise(175).pro_rata(Paise(2), Paise(3)), Paise(117));
        assert_eq!(Paise(175).pro_rata(Paise(3), Paise(3)), Paise(175));
        assert_eq!(Paise(175).pro_rata(Paise(1), Paise(0)), Paise(0));
        assert_eq!(
            Paise(i64::MAX).pro_rata(Paise(i64::MAX), Paise(i64::MAX)),
            Paise(i64::MAX)
        );
    }

    #[test]
    fn rupees_saturate_instead_of_overflowing() {
        assert_eq!(Paise::rupees(10_000), Paise(1_000_000));
        assert_eq!(Paise::rupees(i64::MAX), Paise(i64::MAX));
        assert_eq!(Paise(i64::MAX).saturating_add(Paise(1)), Paise(i64::MAX));
    }

    #[test]
    fn fees_above_one_hundred_percent_are_refused() {
        assert_eq!(BasisPoints::new(10_000), Ok(BasisPoints(10_000)));
        assert_eq!(BasisPoints::new(10_001), Err(FeeOutOfRange(10_001)));
    }

    #[test]
    fn display_shows_rupees_and_percentages() {
        assert_eq!(Paise(123_450).to_string(), "1234.50");
        assert_eq!(Paise(-5).to_string(), "-0.05");
        assert_eq!(BasisPoints::DEFAULT_FEE.to_string(), "3.50%");
    }

    #[test]
    fn only_inr_is_a_currency() {
        assert_eq!("INR".parse::<Currency>(), Ok(Currency::Inr));
        assert!("USD".parse::<Currency>().is_err());
        assert_eq!(
            serde_json::to_string(&Currency::Inr).ok().as_deref(),
            Some("\"INR\"")
        );
    }
}
