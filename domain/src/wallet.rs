//! Wallet: the commission a merchant owes, per merchant.
//!
//! Stream `wallet-<MerchantId>`. Commission accrues once per successful payment (appended
//! atomically with `PaymentSucceeded`; the payment decider guarantees exactly once, so accrual
//! may be appended with expected version "any"). The wallet accepts only the commission the
//! payment's amount gives at its fee ([`BasisPoints::of`], half-up), so a wrong figure never
//! enters the log. A refund under the `reverse_proportional` treatment reverses part
//! of it (`CommissionReversed`, appended with the refund's `PaymentRefunded` in the same way; the
//! payment decides the amount, once per refund and never more than it accrued). What the merchant
//! owes is
//! collected by payouts: requested (pending, reserving the amount), then paid out (reduces the
//! balance due) or reversed (failed, rejected, cancelled or reversed by the bank: releases the
//! reservation, or restores the balance due if it had been paid out). Ops may record a manual
//! settlement (reduces the balance due).
//!
//! **Balance due = accrued − commission reversed − paid out + reversed − settled**, where
//! "reversed" totals only the reversals of payouts that had been paid out (a reversal of a
//! pending payout only releases its reservation). A payout or a settlement can never exceed the
//! balance due minus the pending payouts, so only a commission reversal can take the balance due
//! below zero: when the commission it reverses was already collected, the merchant holds a credit
//! that later commissions absorb (nothing is paid out while the balance due is not positive).
//!
//! Payout updates after a terminal state (reversed) or repeated ones are refused with errors
//! whose [`WalletError::is_already_recorded`] is true; callers treat them as idempotent no-ops.

use crate::decider::Decider;
use crate::ids::{PaymentId, PayoutId};
use crate::money::{BasisPoints, Paise};
use crate::standing::Thresholds;
use crate::validation::{self, FieldError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::standing::{Standing, standing};

/// Longest payout reference, settlement reference or note kept, in characters.
pub const MAX_REFERENCE_CHARS: usize = 200;

/// Where a payout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Requested; its amount is reserved.
    Pending,
    /// Paid out; the balance due was reduced. May still be reversed.
    PaidOut,
    /// Reversed (terminal).
    Reversed,
}

/// Why a payout did not (or no longer) count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutReversalReason {
    /// The transfer failed.
    Failed,
    /// The provider rejected it.
    Rejected,
    /// It was cancelled before processing.
    Cancelled,
    /// The bank reversed a processed transfer.
    Reversed,
}

/// One payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    /// Amount.
    pub amount: Paise,
    /// Where it stands.
    pub status: PayoutStatus,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
}

/// A merchant's wallet as its events describe it. A new stream is an empty wallet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    accrued: Paise,
    commission_reversed: Paise,
    paid_out: Paise,
    reversed: Paise,
    settled: Paise,
    pending: Paise,
    accruals: u64,
    payouts: BTreeMap<PayoutId, Payout>,
    last_payout_requested_at: Option<DateTime<Utc>>,
    last_paid_out_at: Option<DateTime<Utc>>,
}

impl Wallet {
    /// What the merchant owes: accrued − commission reversed − paid out + reversed − settled.
    pub fn balance_due(&self) -> Paise {
        self.accrued
            .saturating_sub(self.commission_reversed)
            .saturating_sub(self.paid_out)
            .saturating_add(self.reversed)
            .saturating_sub(self.settled)
    }

    /// Balance due not reserved by pending payouts: the most a new payout or settlement may take.
    pub fn available(&self) -> Paise {
        self.balance_due().saturating_sub(self.pending)
    }

    /// Total commission accrued.
    pub fn accrued(&self) -> Paise {
        self.accrued
    }

    /// Total commission reversed by refunds.
    pub fn commission_reversed(&self) -> Paise {
        self.commission_reversed
    }

    /// Total paid out.
    pub fn paid_out(&self) -> Paise {
        self.paid_out
    }

    /// Total restored by reversals of paid-out payouts.
    pub fn reversed(&self) -> Paise {
        self.reversed
    }

    /// Total settled manually.
    pub fn settled(&self) -> Paise {
        self.settled
    }

    /// Total reserved by pending payouts.
    pub fn pending(&self) -> Paise {
        self.pending
    }

    /// Number of commissions accrued (one per successful payment).
    pub fn accruals(&self) -> u64 {
        self.accruals
    }

    /// A payout by id.
    pub fn payout(&self, payout_id: PayoutId) -> Option<&Payout> {
        self.payouts.get(&payout_id)
    }

    /// When a payout was last requested.
    pub fn last_payout_requested_at(&self) -> Option<DateTime<Utc>> {
        self.last_payout_requested_at
    }

    /// When a payout was last paid out.
    pub fn last_paid_out_at(&self) -> Option<DateTime<Utc>> {
        self.last_paid_out_at
    }

    /// Standing under `thresholds`.
    pub fn standing(&self, thresholds: &Thresholds) -> Standing {
        standing(self.balance_due(), thresholds)
    }

    /// The automatic payout policy: everything available, once it reaches the merchant's
    /// automatic payout minimum (default ₹1,000); `None` below it.
    pub fn automatic_payout_amount(&self, thresholds: &Thresholds) -> Option<Paise> {
        let available = self.available();
        (available.is_positive() && available >= thresholds.auto_payout_minimum)
            .then_some(available)
    }
}

/// What can be asked of a wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalletCommand {
    /// Records the commission of a successful payment; refused unless `commission` is `amount`
    /// at `fee`.
    AccrueCommission {
        /// The payment.
        payment_id: PaymentId,
        /// Its amount.
        amount: Paise,
        /// The fee applied.
        fee: BasisPoints,
        /// The commission decided by the payment.
        commission: Paise,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records the commission a refund reversed (never refused: the payment decided it).
    ReverseCommission {
        /// The refunded payment.
        payment_id: PaymentId,
        /// The refund (its id as the payment's `PaymentRefunded` names it).
        refund_id: String,
        /// The refund's amount.
        refund_amount: Paise,
        /// Commission reversed.
        commission: Paise,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Requests a payout of `amount`, reserving it.
    RequestPayout {
        /// The new payout's id.
        payout_id: PayoutId,
        /// Amount (at most what is available).
        amount: Paise,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records that a pending payout was paid out.
    RecordPayoutPaid {
        /// The payout.
        payout_id: PayoutId,
        /// The provider's reference (UTR, payout id).
        reference: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records that a payout failed, was rejected or cancelled, or was reversed after payment.
    RecordPayoutReversed {
        /// The payout.
        payout_id: PayoutId,
        /// Why.
        reason: PayoutReversalReason,
        /// The provider's detail.
        detail: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records a settlement made outside the payout system.
    RecordManualSettlement {
        /// Reference of the settlement (bank transfer, receipt).
        reference: String,
        /// Amount (at most what is available).
        amount: Paise,
        /// Note from ops.
        note: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
}

impl WalletCommand {
    /// The accrual to append with a payment's `PaymentSucceeded` event; `None` for other events.
    pub fn accrual_for(
        payment_id: PaymentId,
        event: &crate::payment::PaymentEvent,
    ) -> Option<WalletCommand> {
        match event {
            crate::payment::PaymentEvent::PaymentSucceeded {
                amount,
                fee,
                commission,
                at,
                ..
            } => Some(WalletCommand::AccrueCommission {
                payment_id,
                amount: *amount,
                fee: *fee,
                commission: *commission,
                at: *at,
            }),
            _ => None,
        }
    }

    /// The reversal to append with a payment's `PaymentRefunded` event when it reverses
    /// commission; `None` otherwise.
    pub fn reversal_for(
        payment_id: PaymentId,
        event: &crate::payment::PaymentEvent,
    ) -> Option<WalletCommand> {
        match event {
            crate::payment::PaymentEvent::PaymentRefunded {
                refund_id,
                amount,
                commission_reversed,
                at,
                ..
            } if commission_reversed.is_positive() => Some(WalletCommand::ReverseCommission {
                payment_id,
                refund_id: refund_id.clone(),
                refund_amount: *amount,
                commission: *commission_reversed,
                at: *at,
            }),
            _ => None,
        }
    }
}

event_enum! {
    /// What a wallet stream records.
    pub enum WalletEvent {
        /// Commission of a successful payment accrued.
        CommissionAccrued {
            /// The payment.
            payment_id: PaymentId,
            /// Its amount.
            amount: Paise,
            /// The fee applied.
            fee: BasisPoints,
            /// The commission.
            commission: Paise,
            /// When.
            at: DateTime<Utc>,
        },
        /// A refund reversed part of a payment's commission; the balance due went down.
        CommissionReversed {
            /// The refunded payment.
            payment_id: PaymentId,
            /// The refund.
            refund_id: String,
            /// The refund's amount.
            refund_amount: Paise,
            /// Commission reversed.
            commission: Paise,
            /// When.
            at: DateTime<Utc>,
        },
        /// A payout was requested; its amount is reserved.
        PayoutRequested {
            /// The payout.
            payout_id: PayoutId,
            /// Amount.
            amount: Paise,
            /// When.
            at: DateTime<Utc>,
        },
        /// A payout was paid out; the balance due went down.
        CommissionPaidOut {
            /// The payout.
            payout_id: PayoutId,
            /// Amount.
            amount: Paise,
            /// The provider's reference.
            reference: String,
            /// When.
            at: DateTime<Utc>,
        },
        /// A payout was reversed; if it had been paid out, the balance due is restored.
        PayoutReversed {
            /// The payout.
            payout_id: PayoutId,
            /// Amount.
            amount: Paise,
            /// Whether it had been paid out (and so the balance due goes back up).
            was_paid_out: bool,
            /// Why.
            reason: PayoutReversalReason,
            /// The provider's detail.
            detail: String,
            /// When.
            at: DateTime<Utc>,
        },
        /// A settlement outside the payout system was recorded.
        ManualSettlementRecorded {
            /// Reference.
            reference: String,
            /// Amount.
            amount: Paise,
            /// Note from ops.
            note: String,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why a wallet command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// A field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The payout would exceed the balance due not already reserved.
    #[error("payout of {requested} exceeds the available {available}")]
    PayoutExceedsBalance {
        /// Asked for.
        requested: Paise,
        /// Balance due minus pending payouts.
        available: Paise,
    },
    /// The settlement would exceed the balance due not already reserved.
    #[error("settlement of {requested} exceeds the available {available}")]
    SettlementExceedsBalance {
        /// Asked for.
        requested: Paise,
        /// Balance due minus pending payouts.
        available: Paise,
    },
    /// A payout with this id was already requested.
    #[error("payout {0} already requested")]
    PayoutAlreadyRequested(PayoutId),
    /// No payout with this id.
    #[error("payout {0} unknown")]
    UnknownPayout(PayoutId),
    /// The payout was already paid out.
    #[error("payout {0} already paid out")]
    PayoutAlreadyPaidOut(PayoutId),
    /// The payout was already reversed (terminal).
    #[error("payout {0} already reversed")]
    PayoutAlreadyReversed(PayoutId),
    /// The commission is not the payment's amount at its fee, rounded half-up.
    #[error(
        "commission {commission} on {amount} at {fee} for payment {payment_id}; the fee gives {expected}"
    )]
    CommissionMismatch {
        /// The payment.
        payment_id: PaymentId,
        /// Its amount.
        amount: Paise,
        /// The fee carried.
        fee: BasisPoints,
        /// The commission given.
        commission: Paise,
        /// What the fee gives on the amount.
        expected: Paise,
    },
}

impl WalletError {
    /// True for a repeated or late payout update: the fact is already reflected, or the payout
    /// reached its terminal state. Callers acknowledge it without effect.
    pub fn is_already_recorded(&self) -> bool {
        matches!(
            self,
            WalletError::PayoutAlreadyRequested(_)
                | WalletError::PayoutAlreadyPaidOut(_)
                | WalletError::PayoutAlreadyReversed(_)
        )
    }
}

impl Decider for Wallet {
    const SNAPSHOT_VERSION: Option<u32> = Some(1);
    const CATEGORY: &'static str = "wallet";
    type State = Wallet;
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;

    fn snapshot(state: &Wallet) -> Option<serde_json::Value> {
        serde_json::to_value(state).ok()
    }

    fn restore(snapshot: serde_json::Value) -> Option<Wallet> {
        serde_json::from_value(snapshot).ok()
    }

    fn decide(wallet: &Wallet, command: &WalletCommand) -> Result<Vec<WalletEvent>, WalletError> {
        match command {
            WalletCommand::AccrueCommission {
                payment_id,
                amount,
                fee,
                commission,
                at,
            } => accrue_commission(*payment_id, *amount, *fee, *commission, *at),
            WalletCommand::ReverseCommission {
                payment_id,
                refund_id,
                refund_amount,
                commission,
                at,
            } => Ok(vec![WalletEvent::CommissionReversed {
                payment_id: *payment_id,
                refund_id: refund_id.clone(),
                refund_amount: *refund_amount,
                commission: *commission,
                at: *at,
            }]),
            WalletCommand::RequestPayout {
                payout_id,
                amount,
                at,
            } => request_payout(wallet, *payout_id, *amount, *at),
            WalletCommand::RecordPayoutPaid {
                payout_id,
                reference,
                at,
            } => record_payout_paid(wallet, *payout_id, reference, *at),
            WalletCommand::RecordPayoutReversed {
                payout_id,
                reason,
                detail,
                at,
            } => record_payout_reversed(wallet, *payout_id, *reason, detail, *at),
            WalletCommand::RecordManualSettlement {
                reference,
                amount,
                note,
                at,
            } => record_manual_settlement(wallet, reference, *amount, note, *at),
        }
    }

    fn evolve(mut wallet: Wallet, event: &WalletEvent) -> Wallet {
        match event {
            WalletEvent::CommissionAccrued { commission, .. } => {
                wallet.accrued = wallet.accrued.saturating_add(*commission);
                wallet.accruals = wallet.accruals.saturating_add(1);
            }
            WalletEvent::CommissionReversed { commission, .. } => {
                wallet.commission_reversed = wallet.commission_reversed.saturating_add(*commission);
            }
            WalletEvent::PayoutRequested {
                payout_id,
                amount,
                at,
            } => {
                wallet.payouts.insert(
                    *payout_id,
                    Payout {
                        amount: *amount,
                        status: PayoutStatus::Pending,
                        requested_at: *at,
                    },
                );
                wallet.pending = wallet.pending.saturating_add(*amount);
                wallet.last_payout_requested_at = Some(*at);
            }
            WalletEvent::CommissionPaidOut {
                payout_id,
                amount,
                at,
                ..
            } => {
                if let Some(payout) = wallet.payouts.get_mut(payout_id) {
                    payout.status = PayoutStatus::PaidOut;
                }
                wallet.pending = wallet.pending.saturating_sub(*amount);
                wallet.paid_out = wallet.paid_out.saturating_add(*amount);
                wallet.last_paid_out_at = Some(*at);
            }
            WalletEvent::PayoutReversed {
                payout_id,
                amount,
                was_paid_out,
                ..
            } => {
                if let Some(payout) = wallet.payouts.get_mut(payout_id) {
                    payout.status = PayoutStatus::Reversed;
                }
                if *was_paid_out {
                    wallet.reversed = wallet.reversed.saturating_add(*amount);
                } else {
                    wallet.pending = wallet.pending.saturating_sub(*amount);
                }
            }
            WalletEvent::ManualSettlementRecorded { amount, .. } => {
                wallet.settled = wallet.settled.saturating_add(*amount);
            }
        }
        wallet
    }
}

/// Accrues a payment's commission, if it is the payment's amount at its fee.
fn accrue_commission(
    payment_id: PaymentId,
    amount: Paise,
    fee: BasisPoints,
    commission: Paise,
    at: DateTime<Utc>,
) -> Result<Vec<WalletEvent>, WalletError> {
    validation::amount("amount", amount, Paise(i64::MAX))?;
    let expected = fee.of(amount);
    if commission != expected {
        return Err(WalletError::CommissionMismatch {
            payment_id,
            amount,
            fee,
            commission,
            expected,
        });
    }
    Ok(vec![WalletEvent::CommissionAccrued {
        payment_id,
        amount,
        fee,
        commission,
        at,
    }])
}

/// Reserves `amount` of what is available for a new payout.
fn request_payout(
    wallet: &Wallet,
    payout_id: PayoutId,
    amount: Paise,
    at: DateTime<Utc>,
) -> Result<Vec<WalletEvent>, WalletError> {
    if wallet.payouts.contains_key(&payout_id) {
        return Err(WalletError::PayoutAlreadyRequested(payout_id));
    }
    validation::amount("amount", amount, Paise(i64::MAX))?;
    if amount > wallet.available() {
        return Err(WalletError::PayoutExceedsBalance {
            requested: amount,
            available: wallet.available(),
        });
    }
    Ok(vec![WalletEvent::PayoutRequested {
        payout_id,
        amount,
        at,
    }])
}

fn record_payout_paid(
    wallet: &Wallet,
    payout_id: PayoutId,
    reference: &str,
    at: DateTime<Utc>,
) -> Result<Vec<WalletEvent>, WalletError> {
    let payout = open_payout(wallet, payout_id)?;
    if payout.status == PayoutStatus::PaidOut {
        return Err(WalletError::PayoutAlreadyPaidOut(payout_id));
    }
    Ok(vec![WalletEvent::CommissionPaidOut {
        payout_id,
        amount: payout.amount,
        reference: validation::text("reference", reference, MAX_REFERENCE_CHARS)?,
        at,
    }])
}

/// A reversal releases a pending payout's reservation, or restores a paid-out one's amount.
fn record_payout_reversed(
    wallet: &Wallet,
    payout_id: PayoutId,
    reason: PayoutReversalReason,
    detail: &str,
    at: DateTime<Utc>,
) -> Result<Vec<WalletEvent>, WalletError> {
    let payout = open_payout(wallet, payout_id)?;
    Ok(vec![WalletEvent::PayoutReversed {
        payout_id,
        amount: payout.amount,
        was_paid_out: payout.status == PayoutStatus::PaidOut,
        reason,
        detail: validation::excerpt(detail, MAX_REFERENCE_CHARS),
        at,
    }])
}

fn record_manual_settlement(
    wallet: &Wallet,
    reference: &str,
    amount: Paise,
    note: &str,
    at: DateTime<Utc>,
) -> Result<Vec<WalletEvent>, WalletError> {
    let reference = validation::text("reference", reference, MAX_REFERENCE_CHARS)?;
    validation::amount("amount", amount, Paise(i64::MAX))?;
    if amount > wallet.available() {
        return Err(WalletError::SettlementExceedsBalance {
            requested: amount,
            available: wallet.available(),
        });
    }
    Ok(vec![WalletEvent::ManualSettlementRecorded {
        reference,
        amount,
        note: validation::excerpt(note, MAX_REFERENCE_CHARS),
        at,
    }])
}

/// The payout, unless unknown or already reversed.
fn open_payout(wallet: &Wallet, payout_id: PayoutId) -> Result<Payout, WalletError> {
    match wallet.payouts.get(&payout_id) {
        None => Err(WalletError::UnknownPayout(payout_id)),
        Some(payout) if payout.status == PayoutStatus::Reversed => {
            Err(WalletError::PayoutAlreadyReversed(payout_id))
        }
        Some(payout) => Ok(*payout),
    }
}

#[cfg(test)]
mod tests;
