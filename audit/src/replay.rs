//! The commission replay: per merchant, the wallet events folded with the domain's own
//! [`Wallet`] decider (`evolve`, the code the write side folds with), nothing from any read model.
//!
//! Payments succeeded and their volume come from `CommissionAccrued`, which the payment decider
//! guarantees exactly once per successful payment and which is appended atomically with
//! `PaymentSucceeded` (it carries the payment's amount); the read model counts them the same
//! way. The replay also reads every `PaymentInitiated` (for the payment's merchant) and
//! `PaymentSucceeded`, and matches each success with its one accrual: same merchant, amount, fee
//! and commission, and the commission is the domain's rule applied to them
//! ([`BasisPoints::of`]); anything else (a second accrual for a payment included) is an
//! [`Inconsistency`]. Each `CommissionReversed` (a refund's share of its payment's commission)
//! counts against the commission its payment accrued: a reversal of a payment that accrued
//! nothing, or reversals that together exceed its commission, are inconsistencies too. "As of"
//! an instant means the events recorded at or before it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};
use lightspeed_domain::payment::PaymentEvent;
use lightspeed_domain::wallet::WalletEvent;
use lightspeed_domain::{
    BasisPoints, Decider, DomainEvent, MerchantId, Paise, Payment, PaymentId, Wallet,
};
use lightspeed_eventstore::{LogPosition, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::error::AuditError;

/// Which events count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    /// Only events recorded at or before this instant (`None`: all of them).
    pub as_of: Option<DateTime<Utc>>,
    /// Only this merchant's wallet (`None`: every merchant).
    pub merchant: Option<MerchantId>,
}

/// One merchant's commission, reconstructed from the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantCommission {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// Payments that succeeded (one commission each).
    pub payments_succeeded: u64,
    /// Their total amount.
    pub volume_paise: Paise,
    /// Total commission accrued.
    pub commission_accrued_paise: Paise,
    /// Total commission reversed by refunds.
    pub commission_reversed_paise: Paise,
    /// Total paid out.
    pub paid_out_paise: Paise,
    /// Total restored by reversals of paid-out payouts.
    pub reversed_paise: Paise,
    /// Total settled manually.
    pub settled_paise: Paise,
    /// Reserved by payouts requested and not yet paid out or reversed.
    pub pending_payouts_paise: Paise,
    /// What the merchant owes: accrued − commission reversed − paid out + reversed − settled.
    pub balance_due_paise: Paise,
}

impl MerchantCommission {
    /// The figures of one merchant's folded wallet.
    fn of(merchant_id: MerchantId, folded: &Folded) -> Self {
        let wallet = &folded.wallet;
        Self {
            merchant_id,
            payments_succeeded: wallet.accruals(),
            volume_paise: folded.volume,
            commission_accrued_paise: wallet.accrued(),
            commission_reversed_paise: wallet.commission_reversed(),
            paid_out_paise: wallet.paid_out(),
            reversed_paise: wallet.reversed(),
            settled_paise: wallet.settled(),
            pending_payouts_paise: wallet.pending(),
            balance_due_paise: wallet.balance_due(),
        }
    }

    /// The figures by column name of `read.wallet_balances`, in the order `audit commission`
    /// compares them.
    pub fn figures(&self) -> [(&'static str, i64); 9] {
        [
            (
                "payments_succeeded",
                i64::try_from(self.payments_succeeded).unwrap_or(i64::MAX),
            ),
            ("volume_paise", self.volume_paise.0),
            ("commission_accrued_paise", self.commission_accrued_paise.0),
            (
                "commission_reversed_paise",
                self.commission_reversed_paise.0,
            ),
            ("paid_out_paise", self.paid_out_paise.0),
            ("reversed_paise", self.reversed_paise.0),
            ("settled_paise", self.settled_paise.0),
            ("pending_payouts_paise", self.pending_payouts_paise.0),
            ("balance_due_paise", self.balance_due_paise.0),
        ]
    }
}

/// One stored event as the replay needs it; the payload is its stored JSON text.
#[derive(Debug, Clone, Copy)]
pub struct ReplayEvent<'a> {
    /// Where it sits in the read order (for messages).
    pub log_position: LogPosition,
    /// Its stream, `wallet-<merchant id>` for the events the replay folds.
    pub stream_id: &'a str,
    /// Its type name.
    pub event_type: &'a str,
    /// Its payload shape version.
    pub schema_version: u16,
    /// Its payload, JSON text.
    pub payload: &'a str,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// A wallet and the volume of the payments it accrued commission on.
#[derive(Debug, Clone, Default)]
struct Folded {
    wallet: Wallet,
    volume: Paise,
}

/// What one side (the payment's success, or the wallet's accrual) says about a commission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Commission {
    merchant: Option<MerchantId>,
    amount: Paise,
    fee: BasisPoints,
    commission: Paise,
}

/// A payment's commission, and what its refunds reversed of it so far.
#[derive(Debug, Clone, Copy)]
struct Reversible {
    accrued: Paise,
    reversed: Paise,
}

/// Where a payment's success and its wallet's commission do not agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Inconsistency {
    /// A payment succeeded, and no wallet accrued its commission.
    SuccessWithoutCommission {
        /// The payment.
        payment_id: PaymentId,
        /// Its merchant, if its initiation was seen.
        merchant_id: Option<MerchantId>,
        /// The commission its success decided.
        commission_paise: Paise,
    },
    /// A wallet accrued commission for a payment whose success is not in the log.
    CommissionWithoutSuccess {
        /// The payment.
        payment_id: PaymentId,
        /// The wallet's merchant.
        merchant_id: MerchantId,
        /// The commission accrued.
        commission_paise: Paise,
    },
    /// A wallet accrued commission for a payment it had already accrued it for.
    DuplicateCommission {
        /// The payment.
        payment_id: PaymentId,
        /// The wallet's merchant.
        merchant_id: MerchantId,
        /// The commission accrued again.
        commission_paise: Paise,
    },
    /// The success and the accrual disagree on a figure.
    Disagree {
        /// The payment.
        payment_id: PaymentId,
        /// The figure: `merchant_id`, `amount_paise`, `fee_bps` or `commission_paise`.
        field: String,
        /// What the payment's success says.
        payment: String,
        /// What the wallet's accrual says.
        wallet: String,
    },
    /// The commission accrued is not amount × fee / 10 000 rounded half-up.
    Miscomputed {
        /// The payment.
        payment_id: PaymentId,
        /// The wallet's merchant.
        merchant_id: MerchantId,
        /// The payment's amount.
        amount_paise: Paise,
        /// The fee carried.
        fee_bps: u32,
        /// The commission accrued.
        commission_paise: Paise,
        /// What the domain's rule gives.
        expected_paise: Paise,
    },
    /// A refund reversed commission of a payment whose commission the wallet never accrued.
    ReversalWithoutCommission {
        /// The payment.
        payment_id: PaymentId,
        /// The wallet's merchant.
        merchant_id: MerchantId,
        /// The commission reversed.
        reversed_paise: Paise,
    },
    /// Refunds reversed more commission than the payment accrued.
    ReversalExceedsCommission {
        /// The payment.
        payment_id: PaymentId,
        /// The wallet's merchant.
        merchant_id: MerchantId,
        /// The commission accrued for it.
        accrued_paise: Paise,
        /// What its refunds reversed in all so far.
        reversed_paise: Paise,
    },
}

impl std::fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SuccessWithoutCommission {
                payment_id,
                merchant_id,
                commission_paise,
            } => write!(
                f,
                "payment {payment_id} (merchant {}) succeeded with commission {} paise, and no wallet accrued it",
                merchant_id.map_or_else(|| "unknown".to_owned(), |m| m.to_string()),
                commission_paise.0
            ),
            Self::CommissionWithoutSuccess {
                payment_id,
                merchant_id,
                commission_paise,
            } => write!(
                f,
                "the wallet of merchant {merchant_id} accrued {} paise for payment {payment_id}, whose success is not in the log",
                commission_paise.0
            ),
            Self::DuplicateCommission {
                payment_id,
                merchant_id,
                commission_paise,
            } => write!(
                f,
                "the wallet of merchant {merchant_id} accrued {} paise for payment {payment_id} again, after its first accrual",
                commission_paise.0
            ),
            Self::Disagree {
                payment_id,
                field,
                payment,
                wallet,
            } => write!(
                f,
                "payment {payment_id}: its success says {field} {payment}, its wallet's accrual {wallet}"
            ),
            Self::Miscomputed {
                payment_id,
                merchant_id,
                amount_paise,
                fee_bps,
                commission_paise,
                expected_paise,
            } => write!(
                f,
                "payment {payment_id} (merchant {merchant_id}): commission {} paise on {} paise at {fee_bps} bps, the rule gives {}",
                commission_paise.0, amount_paise.0, expected_paise.0
            ),
            Self::ReversalWithoutCommission {
                payment_id,
                merchant_id,
                reversed_paise,
            } => write!(
                f,
                "the wallet of merchant {merchant_id} reversed {} paise of commission for payment {payment_id}, which it never accrued",
                reversed_paise.0
            ),
            Self::ReversalExceedsCommission {
                payment_id,
                merchant_id,
                accrued_paise,
                reversed_paise,
            } => write!(
                f,
                "payment {payment_id} (merchant {merchant_id}): refunds reversed {} paise of commission, more than the {} accrued",
                reversed_paise.0, accrued_paise.0
            ),
        }
    }
}

/// Folds events, in read order, into each merchant's commission, and matches every payment's
/// success with the commission its merchant's wallet accrued.
#[derive(Debug, Clone, Default)]
pub struct CommissionReplay {
    filter: ReplayFilter,
    merchants: HashMap<MerchantId, Folded>,
    /// Payments initiated and not yet succeeded, and their merchants.
    payment_merchants: HashMap<PaymentId, MerchantId>,
    /// Successes whose accrual has not been seen yet.
    successes: HashMap<PaymentId, Commission>,
    /// Accruals whose success has not been seen yet.
    accruals: HashMap<PaymentId, Commission>,
    /// Every payment accrued so far, with its commission and what refunds reversed of it, so a
    /// second accrual of one, or a reversal beyond its commission, is found.
    accrued_payments: HashMap<PaymentId, Reversible>,
    inconsistencies: Vec<Inconsistency>,
    /// The schema version the domain gives `PaymentInitiated` today, once one was decoded.
    initiated_version: Option<u16>,
    applied: u64,
}

/// The one figure the replay needs from a `PaymentInitiated` of the current shape.
#[derive(serde::Deserialize)]
struct InitiatedBy {
    merchant_id: MerchantId,
}

/// The payment events the replay reads to match successes with accruals.
pub(crate) const PAYMENT_TYPES: [&str; 2] = [PAYMENT_INITIATED, "PaymentSucceeded"];

/// The type of a payment's first event, which names its merchant.
const PAYMENT_INITIATED: &str = "PaymentInitiated";

/// True for the event types the replay reads (every wallet event, payment initiations and
/// successes); others are skipped unread.
pub fn folds(event_type: &str) -> bool {
    WalletEvent::EVENT_TYPES.contains(&event_type) || PAYMENT_TYPES.contains(&event_type)
}

/// An event of a stream the replay reads.
enum Fact {
    Wallet(MerchantId, WalletEvent),
    Payment(PaymentId, PaymentEvent),
}

impl CommissionReplay {
    /// An empty replay counting the events `filter` lets through.
    pub fn new(filter: ReplayFilter) -> Self {
        Self {
            filter,
            ..Self::default()
        }
    }

    /// Folds the next event in read order; answers whether it counted.
    pub fn apply(&mut self, event: &ReplayEvent<'_>) -> Result<bool, AuditError> {
        if !folds(event.event_type) || self.after_as_of(event.recorded_at) {
            return Ok(false);
        }
        let undecodable = |why: String| AuditError::Undecodable {
            position: event.log_position.position,
            why,
        };
        let fact = match stream_of(event.stream_id) {
            Some(Stream::Wallet(merchant)) => Fact::Wallet(
                merchant,
                decode_event(event.event_type, event.schema_version, event.payload)
                    .map_err(undecodable)?,
            ),
            Some(Stream::Payment(payment))
                if event.event_type == PAYMENT_INITIATED
                    && self.initiated_version == Some(event.schema_version) =>
            {
                // Of the shape the domain decoded before: only its merchant is read.
                let initiated: InitiatedBy =
                    serde_json::from_str(event.payload).map_err(|e| undecodable(e.to_string()))?;
                return Ok(self.initiated(payment, initiated.merchant_id));
            }
            Some(Stream::Payment(payment)) => {
                let decoded: PaymentEvent =
                    decode_event(event.event_type, event.schema_version, event.payload)
                        .map_err(undecodable)?;
                if matches!(decoded, PaymentEvent::PaymentInitiated { .. }) {
                    self.initiated_version = Some(decoded.schema_version());
                }
                Fact::Payment(payment, decoded)
            }
            None => return Err(undecodable(misplaced(event.event_type, event.stream_id))),
        };
        Ok(self.fold(fact))
    }

    /// Folds the next event in read order, as the event store hands it back.
    pub fn apply_recorded(&mut self, event: &RecordedEvent) -> Result<bool, AuditError> {
        if !folds(&event.event_type) || self.after_as_of(event.recorded_at) {
            return Ok(false);
        }
        let undecodable = |why: String| AuditError::Undecodable {
            position: event.log_position.position,
            why,
        };
        let fact = match stream_of(event.stream_id.as_str()) {
            Some(Stream::Wallet(merchant)) => Fact::Wallet(
                merchant,
                event.decode().map_err(|e| undecodable(e.to_string()))?,
            ),
            Some(Stream::Payment(payment)) => Fact::Payment(
                payment,
                event.decode().map_err(|e| undecodable(e.to_string()))?,
            ),
            None => {
                return Err(undecodable(misplaced(
                    &event.event_type,
                    event.stream_id.as_str(),
                )));
            }
        };
        Ok(self.fold(fact))
    }

    fn after_as_of(&self, recorded_at: DateTime<Utc>) -> bool {
        self.filter.as_of.is_some_and(|as_of| recorded_at > as_of)
    }

    fn wanted(&self, merchant: Option<MerchantId>) -> bool {
        self.filter
            .merchant
            .is_none_or(|wanted| merchant == Some(wanted))
    }

    /// Folds one fact; answers whether it counted for the merchants asked for.
    fn fold(&mut self, fact: Fact) -> bool {
        match fact {
            Fact::Wallet(merchant, event) => {
                if !self.wanted(Some(merchant)) {
                    return false;
                }
                if let WalletEvent::CommissionAccrued {
                    payment_id,
                    amount,
                    fee,
                    commission,
                    ..
                } = &event
                {
                    self.accrued(
                        *payment_id,
                        Commission {
                            merchant: Some(merchant),
                            amount: *amount,
                            fee: *fee,
                            commission: *commission,
                        },
                    );
                }
                if let WalletEvent::CommissionReversed {
                    payment_id,
                    commission,
                    ..
                } = &event
                {
                    self.reversed(*payment_id, merchant, *commission);
                }
                let folded = self.merchants.entry(merchant).or_default();
                if let WalletEvent::CommissionAccrued { amount, .. } = &event {
                    folded.volume = folded.volume.saturating_add(*amount);
                }
                folded.wallet =
                    <Wallet as Decider>::evolve(std::mem::take(&mut folded.wallet), &event);
            }
            Fact::Payment(payment, PaymentEvent::PaymentInitiated { merchant_id, .. }) => {
                return self.initiated(payment, merchant_id);
            }
            Fact::Payment(
                payment,
                PaymentEvent::PaymentSucceeded {
                    amount,
                    fee,
                    commission,
                    ..
                },
            ) => {
                // Once succeeded, a payment's merchant is no longer needed.
                let merchant = self.payment_merchants.remove(&payment);
                if !self.wanted(merchant) {
                    return false;
                }
                self.succeeded(
                    payment,
                    Commission {
                        merchant,
                        amount,
                        fee,
                        commission,
                    },
                );
            }
            Fact::Payment(..) => return false,
        }
        self.applied += 1;
        true
    }

    /// Remembers a payment's merchant; answers whether it counted.
    fn initiated(&mut self, payment: PaymentId, merchant: MerchantId) -> bool {
        if !self.wanted(Some(merchant)) {
            return false;
        }
        self.payment_merchants.insert(payment, merchant);
        self.applied += 1;
        true
    }

    fn succeeded(&mut self, payment: PaymentId, success: Commission) {
        match self.accruals.remove(&payment) {
            Some(accrual) => self.match_up(payment, &success, &accrual),
            None => {
                self.successes.insert(payment, success);
            }
        }
    }

    fn accrued(&mut self, payment: PaymentId, accrual: Commission) {
        match self.accrued_payments.entry(payment) {
            Entry::Occupied(_) => {
                if let Some(merchant_id) = accrual.merchant {
                    self.inconsistencies
                        .push(Inconsistency::DuplicateCommission {
                            payment_id: payment,
                            merchant_id,
                            commission_paise: accrual.commission,
                        });
                }
                return;
            }
            Entry::Vacant(entry) => {
                entry.insert(Reversible {
                    accrued: accrual.commission,
                    reversed: Paise::ZERO,
                });
            }
        }
        let expected = accrual.fee.of(accrual.amount);
        if let Some(merchant_id) = accrual.merchant
            && expected != accrual.commission
        {
            self.inconsistencies.push(Inconsistency::Miscomputed {
                payment_id: payment,
                merchant_id,
                amount_paise: accrual.amount,
                fee_bps: accrual.fee.bps(),
                commission_paise: accrual.commission,
                expected_paise: expected,
            });
        }
        match self.successes.remove(&payment) {
            Some(success) => self.match_up(payment, &success, &accrual),
            None => {
                self.accruals.insert(payment, accrual);
            }
        }
    }

    /// Counts a refund's reversal against its payment's commission.
    fn reversed(&mut self, payment: PaymentId, merchant_id: MerchantId, commission: Paise) {
        let Some(reversible) = self.accrued_payments.get_mut(&payment) else {
            self.inconsistencies
                .push(Inconsistency::ReversalWithoutCommission {
                    payment_id: payment,
                    merchant_id,
                    reversed_paise: commission,
                });
            return;
        };
        reversible.reversed = reversible.reversed.saturating_add(commission);
        if reversible.reversed > reversible.accrued {
            self.inconsistencies
                .push(Inconsistency::ReversalExceedsCommission {
                    payment_id: payment,
                    merchant_id,
                    accrued_paise: reversible.accrued,
                    reversed_paise: reversible.reversed,
                });
        }
    }

    /// Records every figure on which a success and its accrual differ.
    fn match_up(&mut self, payment: PaymentId, success: &Commission, accrual: &Commission) {
        let shown = |merchant: Option<MerchantId>| {
            merchant.map_or_else(|| "unknown".to_owned(), |m| m.to_string())
        };
        let figures = [
            (
                "merchant_id",
                shown(success.merchant),
                shown(accrual.merchant),
                success.merchant.is_some(),
            ),
            (
                "amount_paise",
                success.amount.0.to_string(),
                accrual.amount.0.to_string(),
                true,
            ),
            (
                "fee_bps",
                success.fee.bps().to_string(),
                accrual.fee.bps().to_string(),
                true,
            ),
            (
                "commission_paise",
                success.commission.0.to_string(),
                accrual.commission.0.to_string(),
                true,
            ),
        ];
        for (field, payment_says, wallet_says, known) in figures {
            if known && payment_says != wallet_says {
                self.inconsistencies.push(Inconsistency::Disagree {
                    payment_id: payment,
                    field: field.to_owned(),
                    payment: payment_says,
                    wallet: wallet_says,
                });
            }
        }
    }

    /// Every success without its accrual, accrual without its success, repeated accrual,
    /// disagreement and miscomputed commission so far.
    pub fn inconsistencies(&self) -> Vec<Inconsistency> {
        let mut found = self.inconsistencies.clone();
        let mut successes: Vec<_> = self.successes.iter().collect();
        successes.sort_unstable_by_key(|(payment, _)| **payment);
        for (payment, success) in successes {
            found.push(Inconsistency::SuccessWithoutCommission {
                payment_id: *payment,
                merchant_id: success.merchant,
                commission_paise: success.commission,
            });
        }
        let mut accruals: Vec<_> = self.accruals.iter().collect();
        accruals.sort_unstable_by_key(|(payment, _)| **payment);
        for (payment, accrual) in accruals {
            if let Some(merchant_id) = accrual.merchant {
                found.push(Inconsistency::CommissionWithoutSuccess {
                    payment_id: *payment,
                    merchant_id,
                    commission_paise: accrual.commission,
                });
            }
        }
        found
    }

    /// How many events counted so far.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Each merchant's commission so far, by merchant id.
    pub fn balances(&self) -> Vec<MerchantCommission> {
        let mut balances: Vec<MerchantCommission> = self
            .merchants
            .iter()
            .map(|(merchant, folded)| MerchantCommission::of(*merchant, folded))
            .collect();
        balances.sort_unstable_by_key(|b| b.merchant_id);
        balances
    }
}

/// Replays events given in read order: each merchant's commission, by merchant id.
pub fn replay_commission<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
    filter: ReplayFilter,
) -> Result<Vec<MerchantCommission>, AuditError> {
    let mut replay = CommissionReplay::new(filter);
    for event in events {
        replay.apply_recorded(event)?;
    }
    Ok(replay.balances())
}

/// A stream the replay reads.
enum Stream {
    Wallet(MerchantId),
    Payment(PaymentId),
}

/// `wallet-<merchant id>` or `payment-<payment id>`.
fn stream_of(stream_id: &str) -> Option<Stream> {
    let (category, id) = stream_id.split_once('-')?;
    if category == <Wallet as Decider>::CATEGORY {
        Some(Stream::Wallet(id.parse().ok()?))
    } else if category == <Payment as Decider>::CATEGORY {
        Some(Stream::Payment(id.parse().ok()?))
    } else {
        None
    }
}

fn misplaced(event_type: &str, stream_id: &str) -> String {
    format!("{event_type} on stream {stream_id:?}, not a merchant's wallet or a payment")
}

/// Decodes a stored event from its payload text (see [`lightspeed_domain::decode_raw`]).
fn decode_event<E: DomainEvent>(
    event_type: &str,
    schema_version: u16,
    payload: &str,
) -> Result<E, String> {
    let payload: &serde_json::value::RawValue =
        serde_json::from_str(payload).map_err(|e| e.to_string())?;
    lightspeed_domain::decode_raw(event_type, schema_version, payload).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallet_events_decode_from_payload_text_as_the_domain_decodes_them() {
        let merchant = MerchantId::new();
        let payment = lightspeed_domain::PaymentId::new();
        let at = DateTime::from_timestamp_micros(1_790_000_000_000_000).unwrap_or_default();
        let event = WalletEvent::CommissionAccrued {
            payment_id: payment,
            amount: Paise(10_001),
            fee: lightspeed_domain::BasisPoints(350),
            commission: Paise(350),
            at,
        };
        let (event_type, schema_version, payload) =
            lightspeed_domain::encode(&event).expect("encode");
        let text = payload.to_string();
        assert_eq!(
            decode_event::<WalletEvent>(event_type, schema_version, &text),
            Ok(event.clone())
        );
        // Another schema version goes through the domain's own (upcasting) decoder.
        assert_eq!(
            decode_event::<WalletEvent>(event_type, 9, &text).ok(),
            lightspeed_domain::decode::<WalletEvent>(event_type, 9, &payload).ok()
        );

        let mut replay = CommissionReplay::new(ReplayFilter::default());
        let stream = format!("wallet-{merchant}");
        let counted = replay
            .apply(&ReplayEvent {
                log_position: LogPosition::START,
                stream_id: &stream,
                event_type,
                schema_version,
                payload: &text,
                recorded_at: at,
            })
            .expect("applies");
        assert!(counted);
        let balances = replay.balances();
        assert_eq!(balances.len(), 1);
        assert_eq!(balances[0].merchant_id, merchant);
        assert_eq!(balances[0].payments_succeeded, 1);
        assert_eq!(balances[0].volume_paise, Paise(10_001));
        assert_eq!(balances[0].balance_due_paise, Paise(350));
    }

    #[test]
    fn a_wallet_event_outside_a_wallet_stream_is_refused() {
        let mut replay = CommissionReplay::new(ReplayFilter::default());
        let result = replay.apply(&ReplayEvent {
            log_position: LogPosition::START,
            stream_id: "payment-0190f0c2-0000-7000-8000-000000000001",
            event_type: "ManualSettlementRecorded",
            schema_version: 1,
            payload: "{}",
            recorded_at: Utc::now(),
        });
        assert!(
            matches!(result, Err(AuditError::Undecodable { .. })),
            "{result:?}"
        );
    }
}
