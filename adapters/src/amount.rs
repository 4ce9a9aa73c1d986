//! Decimal rupee text ↔ [`Paise`], by exact integer parsing (never through a float).
//!
//! PSPs send rupees as decimal text (`"499.00"`, Cashfree's JSON number `2.00`); the ledger counts
//! integer paise. A float would turn `0.29` into `28.999…` paise, so both directions work on the
//! digits themselves.

use lightspeed_domain::Paise;

/// Why a rupee amount could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a plain non-negative decimal number (`123`, `123.4` or `123.45`).
    #[error("not a decimal rupee amount")]
    NotDecimal,
    /// More than two digits after the decimal point: not representable in paise.
    #[error("more than two decimal places")]
    TooPrecise,
    /// Larger than the ledger can count.
    #[error("amount too large")]
    Overflow,
    /// Zero or negative where only a positive amount makes sense (a refund).
    #[error("amount must be positive")]
    NotPositive,
}

/// Parses non-negative decimal rupees (`"499"`, `"499.5"`, `"499.00"`) into paise, exactly.
///
/// Accepts at most two decimals; a trailing zero beyond them (`"2.000"`) is refused too, because
/// a provider that sends three decimals is not speaking the format we were told about.
pub fn parse_rupees(text: &str) -> Result<Paise, AmountError> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountError::NotDecimal);
    }
    if text.contains('.') && fraction.is_empty() {
        return Err(AmountError::NotDecimal);
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountError::NotDecimal);
    }
    if fraction.len() > 2 {
        return Err(AmountError::TooPrecise);
    }
    let rupees: i64 = whole.parse().map_err(|_| AmountError::Overflow)?;
    let mut paise_part: i64 = 0;
    for (i, digit) in fraction.bytes().enumerate() {
        let place = if i == 0 { 10 } else { 1 };
        paise_part += i64::from(digit - b'0') * place;
    }
    rupees
        .checked_mul(100)
        .and_then(|p| p.checked_add(paise_part))
        .map(Paise)
        .ok_or(AmountError::Overflow)
}

/// Formats paise as rupees with exactly two decimals (`Paise(49900)` → `"499.00"`).
pub fn format_rupees(amount: Paise) -> String {
    amount.to_string()
}

/// Formats a positive amount as rupees with two decimals; refuses zero and negative amounts,
/// which no PSP may be asked to move (a refund of `-1.00` is not a refund).
pub fn format_positive_rupees(amount: Paise) -> Result<String, AmountError> {
    if amount.0 <= 0 {
        return Err(AmountError::NotPositive);
    }
    Ok(format_rupees(amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_shapes_providers_send() {
        assert_eq!(parse_rupees("499.00"), Ok(Paise(49900)));
        assert_eq!(parse_rupees("2.00"), Ok(Paise(200)));
        assert_eq!(parse_rupees("10.34"), Ok(Paise(1034)));
        assert_eq!(parse_rupees("0.29"), Ok(Paise(29)));
        assert_eq!(parse_rupees("22"), Ok(Paise(2200)));
        assert_eq!(parse_rupees("2.5"), Ok(Paise(250)));
        assert_eq!(parse_rupees("0"), Ok(Paise(0)));
    }

    #[test]
    fn refuses_what_is_not_exact_rupees() {
        assert_eq!(parse_rupees("2.001"), Err(AmountError::TooPrecise));
        assert_eq!(parse_rupees("2.000"), Err(AmountError::TooPrecise));
        for bad in [
            "", ".5", "5.", "-1.00", "+1", "1e3", "1,000.00", " 1.00", "1.0a", "NaN",
        ] {
            assert_eq!(parse_rupees(bad), Err(AmountError::NotDecimal), "{bad:?}");
        }
        assert_eq!(
            parse_rupees("92233720368547758.08"),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            parse_rupees("99999999999999999999"),
            Err(AmountError::Overflow)
        );
    }

    #[test]
    fn formats_two_decimals() {
        assert_eq!(format_rupees(Paise(49900)), "499.00");
        assert_eq!(format_rupees(Paise(1034)), "10.34");
        assert_eq!(format_rupees(Paise(5)), "0.05");
    }

    #[test]
    fn positive_amounts_only() {
        assert_eq!(format_positive_rupees(Paise(1)), Ok("0.01".to_owned()));
        assert_eq!(
            format_positive_rupees(Paise(0)),
            Err(AmountError::NotPositive)
        );
        assert_eq!(
            format_positive_rupees(Paise(-100)),
            Err(AmountError::NotPositive)
        );
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(paise in 0i64..=i64::MAX) {
            prop_assert_eq!(parse_rupees(&format_rupees(Paise(paise))), Ok(Paise(paise)));
        }
    }
}
