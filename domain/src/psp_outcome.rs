//! Outcomes a PSP reported for a payment, recorded once each before anything acts on them.
//!
//! Stream `psp_outcome-<key>`, where the key is derived from the gateway and the PSP's own
//! de-duplication key (Razorpay's event id, PayU's `mihpayid` + status, …) — see
//! [`outcome_key`]. A PSP that delivers the same webhook five times, or a status check that
//! finds what a webhook already said, records one fact; the payment is then moved from the
//! log, where the payment's own rules make a second success impossible.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::decider::Decider;
use crate::ids::{GatewayId, MerchantId, PaymentId, RefundId};
use crate::money::Paise;
use crate::provider::Provider;

/// What the PSP says happened to a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PspOutcome {
    /// Money was captured.
    Succeeded {
        /// The amount the PSP reports as paid.
        amount: Paise,
    },
    /// The payment failed.
    Failed {
        /// The PSP's error code.
        code: String,
        /// Its description.
        reason: String,
    },
    /// Nothing final yet.
    Pending,
    /// A refund of the payment moved.
    Refund {
        /// Our refund, when the PSP echoed its reference; `None` for a refund made elsewhere.
        refund_id: Option<RefundId>,
        /// The PSP's refund id.
        psp_refund_id: Option<String>,
        /// The amount refunded.
        amount: Paise,
        /// Where it stands.
        state: RefundState,
    },
    /// A report that says nothing about the outcome (e.g. an event type we do not act on).
    Ignored {
        /// Why it is ignored.
        why: String,
    },
}

/// Where a refund stands at a PSP, normalised over every provider's states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RefundState {
    /// Accepted or in progress; the outcome follows.
    Pending,
    /// The money went back to the payer (final).
    Succeeded,
    /// Refused or failed (final).
    Failed {
        /// The PSP's error code.
        code: String,
        /// The PSP's explanation.
        reason: String,
    },
}

/// How the outcome reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeSource {
    /// A webhook whose signature verified.
    Webhook,
    /// Our own query of the PSP's status API.
    StatusCheck,
}

/// Records what a PSP reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportOutcome {
    /// The merchant whose gateway it is.
    pub merchant_id: MerchantId,
    /// The gateway (PSP account) that reported.
    pub gateway_id: GatewayId,
    /// Its provider.
    pub provider: Provider,
    /// The PSP's de-duplication key.
    pub dedupe_key: String,
    /// Our payment, when the report names it.
    pub payment_id: Option<PaymentId>,
    /// The PSP's order id, when given.
    pub psp_order_id: Option<String>,
    /// The PSP's payment id, when given.
    pub psp_payment_id: Option<String>,
    /// What happened.
    pub outcome: PspOutcome,
    /// Webhook or status check.
    pub source: OutcomeSource,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// What a PSP outcome stream records.
    pub enum PspOutcomeEvent {
        /// A PSP reported an outcome.
        PspOutcomeReported {
            /// The report.
            report: ReportOutcome,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Whether this report was already recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PspOutcomeRecord {
    report: Option<ReportOutcome>,
}

impl PspOutcomeRecord {
    /// The recorded report, if any.
    pub fn report(&self) -> Option<&ReportOutcome> {
        self.report.as_ref()
    }
}

/// Why a report is not recorded again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PspOutcomeError {
    /// The same report was already recorded; acknowledge it and do nothing.
    #[error("this PSP report was already recorded")]
    AlreadyRecorded,
}

impl Decider for PspOutcomeRecord {
    const CATEGORY: &'static str = "psp_outcome";
    type State = PspOutcomeRecord;
    type Command = ReportOutcome;
    type Event = PspOutcomeEvent;
    type Error = PspOutcomeError;

    fn decide(
        state: &Self::State,
        report: &ReportOutcome,
    ) -> Result<Vec<PspOutcomeEvent>, PspOutcomeError> {
        if state.report.is_some() {
            return Err(PspOutcomeError::AlreadyRecorded);
        }
        Ok(vec![PspOutcomeEvent::PspOutcomeReported {
            report: report.clone(),
            at: report.at,
        }])
    }

    fn evolve(state: Self::State, event: &PspOutcomeEvent) -> Self::State {
        match event {
            PspOutcomeEvent::PspOutcomeReported { report, .. } => PspOutcomeRecord {
                report: state.report.or_else(|| Some(report.clone())),
            },
        }
    }
}

/// Longest outcome key, in bytes: what a stream id (200 bytes) leaves after `psp_outcome-`.
pub const MAX_OUTCOME_KEY_LEN: usize = 200 - "psp_outcome-".len();

/// The stream key of a report: the gateway and the PSP's key, in stream-id characters, at most
/// [`MAX_OUTCOME_KEY_LEN`] bytes.
///
/// Hex of each byte keeps any PSP key (which may hold `|`, spaces, …) a valid stream id while
/// staying reversible for whoever reads the log. A key whose hex would not fit (a PSP's long
/// event id, or a body digest used when its event id header is missing) is named by its
/// SHA-256 instead, `sha256:<hex>`: distinct keys stay distinct, whatever their length.
pub fn outcome_key(gateway_id: GatewayId, dedupe_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let gateway = gateway_id.to_string();
    let mut key = String::with_capacity(MAX_OUTCOME_KEY_LEN);
    key.push_str(&gateway);
    key.push('.');
    if gateway.len() + 1 + 2 * dedupe_key.len() <= MAX_OUTCOME_KEY_LEN {
        key.push_str(&hex::encode(dedupe_key));
    } else {
        key.push_str("sha256:");
        key.push_str(&hex::encode(Sha256::digest(dedupe_key.as_bytes())));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, t};

    fn report() -> ReportOutcome {
        ReportOutcome {
            merchant_id: MerchantId(uuid::Uuid::from_u128(1)),
            gateway_id: GatewayId(uuid::Uuid::from_u128(2)),
            provider: Provider::Razorpay,
            dedupe_key: "evt_1".into(),
            payment_id: Some(PaymentId(uuid::Uuid::from_u128(3))),
            psp_order_id: Some("order_1".into()),
            psp_payment_id: Some("pay_1".into()),
            outcome: PspOutcome::Succeeded {
                amount: Paise(49_900),
            },
            source: OutcomeSource::Webhook,
            at: t(0),
        }
    }

    #[test]
    fn a_report_is_recorded_once() {
        given::<PspOutcomeRecord>([])
            .when(report())
            .then([PspOutcomeEvent::PspOutcomeReported {
                report: report(),
                at: t(0),
            }]);
        given::<PspOutcomeRecord>([PspOutcomeEvent::PspOutcomeReported {
            report: report(),
            at: t(0),
        }])
        .when(report())
        .then_error(PspOutcomeError::AlreadyRecorded);
    }

    #[test]
    fn keys_are_valid_stream_ids_for_any_psp_key() {
        let key = outcome_key(GatewayId(uuid::Uuid::from_u128(2)), "27553387529|failure x");
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        );
        assert!(key.ends_with("7c6661696c7572652078"));
    }

    #[test]
    fn long_keys_are_hashed_into_a_bounded_distinct_stream_id() {
        let gateway = GatewayId(uuid::Uuid::from_u128(2));
        let digest_key = format!("razorpay:body:{}", "ab".repeat(32));
        let long = outcome_key(gateway, &digest_key);
        assert!(long.len() <= MAX_OUTCOME_KEY_LEN, "{}", long.len());
        assert!(long.contains(".sha256:"));
        let other = outcome_key(gateway, &format!("razorpay:body:{}", "cd".repeat(32)));
        assert_ne!(long, other);
        // Two keys alike in their first 80 bytes stay apart.
        let a = outcome_key(gateway, &format!("{}a", "x".repeat(300)));
        let b = outcome_key(gateway, &format!("{}b", "x".repeat(300)));
        assert_ne!(a, b);
        // The longest key kept in hex still fits; one byte more is hashed.
        let fits = "k".repeat((MAX_OUTCOME_KEY_LEN - 37) / 2);
        assert_eq!(outcome_key(gateway, &fits).len(), 37 + 2 * fits.len());
        assert!(outcome_key(gateway, &format!("{fits}k")).contains("sha256:"));
    }
}
