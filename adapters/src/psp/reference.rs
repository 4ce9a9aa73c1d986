//! Our payment reference as PSPs see it.
//!
//! PayU caps `txnid` at 25 characters and PhonePe allows only letters, digits and `_`/`-`, so a
//! hyphenated UUID (36) does not fit everywhere. The reference is the payment's 128-bit UUID in
//! base62, left-padded to a fixed 22 characters of `[0-9A-Za-z]` (62²² > 2¹²⁸). The alphabet is in
//! ASCII order, so references sort like the time-ordered ids they encode.
//!
//! A refund's reference is `R` and its refund id in the same base62: 23 characters, which fits
//! PayU's refund token (at most 23), Cashfree's `refund_id`, PhonePe's transaction ids and
//! Razorpay's idempotency key (at least 10).

use lightspeed_domain::{PaymentId, RefundId};
use uuid::Uuid;

/// Length of every payment reference.
pub const REFERENCE_LEN: usize = 22;
/// The first character of every refund reference.
pub const REFUND_REFERENCE_PREFIX: char = 'R';
/// Length of every refund reference.
pub const REFUND_REFERENCE_LEN: usize = REFERENCE_LEN + 1;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The fixed-length base62 reference of a payment.
pub fn psp_reference(payment: PaymentId) -> String {
    base62(payment.as_uuid().as_u128())
}

/// The fixed-length reference of a refund: the id the PSP is given, and its idempotency key.
pub fn refund_reference(refund: RefundId) -> String {
    format!("{REFUND_REFERENCE_PREFIX}{}", base62(refund.0.as_u128()))
}

/// The refund a refund reference names, or `None` if it is not one of ours.
pub fn parse_refund_reference(reference: &str) -> Option<RefundId> {
    let digits = reference.strip_prefix(REFUND_REFERENCE_PREFIX)?;
    from_base62(digits).map(RefundId)
}

fn base62(mut value: u128) -> String {
    let mut digits = [b'0'; REFERENCE_LEN];
    for slot in digits.iter_mut().rev() {
        // The remainder is below 62, so the cast is exact and the index in bounds.
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

/// The payment a reference names, or `None` if it is not one of ours.
pub fn parse_psp_reference(reference: &str) -> Option<PaymentId> {
    from_base62(reference).map(PaymentId)
}

fn from_base62(reference: &str) -> Option<Uuid> {
    if reference.len() != REFERENCE_LEN {
        return None;
    }
    let mut value: u128 = 0;
    for byte in reference.bytes() {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'A'..=b'Z' => byte - b'A' + 10,
            b'a'..=b'z' => byte - b'a' + 36,
            _ => return None,
        };
        value = value.checked_mul(62)?.checked_add(u128::from(digit))?;
    }
    Some(Uuid::from_u128(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fixed_length_and_known_values() {
        assert_eq!(psp_reference(PaymentId(Uuid::nil())), "0".repeat(22));
        assert_eq!(
            psp_reference(PaymentId(Uuid::max())),
            "7n42DGM5Tflk9n8mt7Fhc7"
        );
        assert_eq!(
            parse_psp_reference("7n42DGM5Tflk9n8mt7Fhc7"),
            Some(PaymentId(Uuid::max()))
        );
    }

    #[test]
    fn refuses_foreign_strings() {
        assert_eq!(parse_psp_reference(""), None);
        assert_eq!(parse_psp_reference("receipt#1"), None);
        assert_eq!(
            parse_psp_reference("7n42DGM5Tflk9n8mt7Fhc8"),
            None,
            "above u128::MAX"
        );
        assert_eq!(parse_psp_reference("zzzzzzzzzzzzzzzzzzzzzz"), None);
        assert_eq!(parse_psp_reference("000000000000000000000-"), None);
        assert_eq!(parse_psp_reference("00000000000000000000000"), None);
    }

    #[test]
    fn order_follows_the_ids() {
        let earlier = PaymentId(Uuid::from_u128(1 << 100));
        let later = PaymentId(Uuid::from_u128((1 << 100) + 1));
        assert!(psp_reference(earlier) < psp_reference(later));
    }

    proptest! {
        #[test]
        fn round_trips(raw in any::<u128>()) {
            let id = PaymentId(Uuid::from_u128(raw));
            let reference = psp_reference(id);
            prop_assert_eq!(reference.len(), REFERENCE_LEN);
            prop_assert!(reference.bytes().all(|b| b.is_ascii_alphanumeric()));
            prop_assert_eq!(parse_psp_reference(&reference), Some(id));
        }

        #[test]
        fn refund_references_round_trip(raw in any::<u128>()) {
            let id = RefundId(Uuid::from_u128(raw));
            let reference = refund_reference(id);
            prop_assert_eq!(reference.len(), REFUND_REFERENCE_LEN);
            prop_assert!(reference.bytes().all(|b| b.is_ascii_alphanumeric()));
            prop_assert_eq!(parse_refund_reference(&reference), Some(id));
            prop_assert_eq!(parse_psp_reference(&reference), None);
        }
    }
}
