//! What a PSP tells us, made fit for the log before anyone records it: PostgreSQL's text and
//! `jsonb` hold no NUL, and every text a PSP chooses has a bound. A signed message is the PSP's
//! word, so it is kept (never refused for its text, which would only make the PSP retry it
//! forever): NULs are dropped, long texts cut, and a long de-duplication key replaced by its
//! digest, so distinct keys stay distinct.

use lightspeed_domain::psp_outcome::RefundState;

use super::{PaymentOutcome, PspRefund, PspStatus, VerifiedWebhook};
use crate::crypto::sha256_hex;

/// Most characters kept of an id, code or reason a PSP sends.
pub const MAX_PSP_TEXT_CHARS: usize = 500;
/// Longest de-duplication key kept as sent, in bytes; a longer one becomes `sha256:<hex>`.
pub const MAX_DEDUPE_KEY_BYTES: usize = 200;

/// `text` without NULs and cut to [`MAX_PSP_TEXT_CHARS`].
fn text(text: String) -> String {
    if !text.contains('\0') && text.len() <= MAX_PSP_TEXT_CHARS {
        return text;
    }
    text.chars()
        .filter(|c| *c != '\0')
        .take(MAX_PSP_TEXT_CHARS)
        .collect()
}

fn dedupe_key(key: String) -> String {
    if key.len() <= MAX_DEDUPE_KEY_BYTES && !key.contains('\0') {
        return key;
    }
    format!("sha256:{}", sha256_hex(&[key.as_bytes()]))
}

fn outcome(outcome: PaymentOutcome) -> PaymentOutcome {
    match outcome {
        PaymentOutcome::Failed { code, reason } => PaymentOutcome::Failed {
            code: text(code),
            reason: text(reason),
        },
        PaymentOutcome::Refund {
            refund_id,
            psp_refund_id,
            amount,
            state,
        } => PaymentOutcome::Refund {
            refund_id,
            psp_refund_id: psp_refund_id.map(text),
            amount,
            state: refund_state(state),
        },
        PaymentOutcome::Ignored { why } => PaymentOutcome::Ignored { why: text(why) },
        other => other,
    }
}

fn refund_state(state: RefundState) -> RefundState {
    match state {
        RefundState::Failed { code, reason } => RefundState::Failed {
            code: text(code),
            reason: text(reason),
        },
        other => other,
    }
}

impl PspRefund {
    /// The same refund with every text fit for the log.
    pub(crate) fn storable(self) -> Self {
        PspRefund {
            psp_refund_id: self.psp_refund_id.map(text),
            amount: self.amount,
            state: refund_state(self.state),
        }
    }
}

impl VerifiedWebhook {
    /// The same message with every text fit for the log.
    pub(crate) fn storable(self) -> Self {
        VerifiedWebhook {
            dedupe_key: dedupe_key(self.dedupe_key),
            payment_reference: self.payment_reference,
            psp_order_id: self.psp_order_id.map(text),
            psp_payment_id: self.psp_payment_id.map(text),
            outcome: outcome(self.outcome),
        }
    }
}

impl PspStatus {
    /// The same status with every text fit for the log.
    pub(crate) fn storable(self) -> Self {
        PspStatus {
            psp_order_id: self.psp_order_id.map(text),
            psp_payment_id: self.psp_payment_id.map(text),
            outcome: outcome(self.outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nuls_go_long_texts_are_cut_and_long_keys_hashed() {
        let hook = VerifiedWebhook {
            dedupe_key: format!("razorpay:{}", "e".repeat(300)),
            payment_reference: None,
            psp_order_id: Some("order\0_1".into()),
            psp_payment_id: Some("p".repeat(2_000)),
            outcome: PaymentOutcome::Failed {
                code: "BAD\0".into(),
                reason: "r".into(),
            },
        }
        .storable();
        assert!(hook.dedupe_key.starts_with("sha256:"));
        assert_eq!(hook.dedupe_key.len(), "sha256:".len() + 64);
        assert_eq!(hook.psp_order_id.as_deref(), Some("order_1"));
        assert_eq!(
            hook.psp_payment_id.map(|id| id.chars().count()),
            Some(MAX_PSP_TEXT_CHARS)
        );
        assert_eq!(
            hook.outcome,
            PaymentOutcome::Failed {
                code: "BAD".into(),
                reason: "r".into()
            }
        );
        assert_eq!(dedupe_key("razorpay:evt_1".into()), "razorpay:evt_1");
    }
}
