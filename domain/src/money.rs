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

    /// Whole rupees as paise, e.g. `Paise::rupees(10_000)` for ₹10,000.
    pub const fn rupees(rupees: i64) -> Paise {
        Paise(rupees * 100)
    }

    /// Sum, or `None` on overflow.
    pub fn checked_add(self, other: Paise) -> Option<Paise> {
        self.0.checked_add(other.0).map(Paise)
    }

    /// Difference, or `None` on overflow.
    pub fn checked_sub(self, other: Paise) -> Option<Paise> {
        self.0.checked_sub(other.0).map(Paise)
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
