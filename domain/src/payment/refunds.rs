//! Refunds of a payment, decided on the payment's own stream.
//!
//! Every refund is a request on the payment stream (`RefundRequested`), so what may still be
//! refunded is decided by the log: two refunds decided on the same version of the stream cannot
//! both be appended (the second append fails its expected version and is decided again on the
//! first one's result), so refunds together never exceed the captured amount.
//!
//! A refund goes requested → submitted (the PSP's refund id) → succeeded (`PaymentRefunded`) or
//! failed (`RefundFailed`). A requested or submitted refund holds its amount; a failed one gives
//! it back. A refund may succeed or fail straight from requested (the PSP's webhook can overtake
//! the record of its own create call). Succeeded and failed are final: a repeated outcome is
//! refused with an error whose [`PaymentError::is_already_recorded`] is true, and a success
//! reported after a failure is refused for ops to look at (money the ledger believes returned to
//! what may be refunded has left).
//!
//! Commission ([`RefundCommission`], the merchant's setting, taken when the refund is
//! requested): `retain` keeps it; `reverse_proportional` reverses, when the refund succeeds, the
//! commission's share of the refunded amount. The share is cumulative over the payment's
//! reversing refunds, `commission × reversing refunded / amount` rounded half-up, minus what was
//! reversed before, so the reversals of a payment add up to at most its commission, whatever
//! the split into partial refunds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    MAX_FAILURE_TEXT_CHARS, MAX_PAYMENT_AMOUNT, Payment, PaymentError, PaymentEvent, PaymentStatus,
    is_order_id_char, psp_id,
};
use crate::ids::RefundId;
use crate::money::Paise;
use crate::validation::{self, FieldError, Problem};

/// Longest merchant refund id (the merchant's idempotency key), in characters.
pub const MAX_REFUND_ID_CHARS: usize = 40;

/// Longest refund reason kept, in characters.
pub const MAX_REFUND_REASON_CHARS: usize = 200;

/// What a refund does to the commission of its payment: a merchant setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundCommission {
    /// The commission is kept: the payment was processed (what most PSPs do with their fee).
    #[default]
    Retain,
    /// The commission's share of the refunded amount is reversed, rounded half-up.
    ReverseProportional,
}

impl RefundCommission {
    /// The setting's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundCommission::Retain => "retain",
            RefundCommission::ReverseProportional => "reverse_proportional",
        }
    }
}

impl std::str::FromStr for RefundCommission {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Problem> {
        match s {
            "retain" => Ok(RefundCommission::Retain),
            "reverse_proportional" => Ok(RefundCommission::ReverseProportional),
            _ => Err(Problem::Unsupported),
        }
    }
}

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Recorded; its amount is held; the PSP has not been asked yet (or did not answer).
    Requested,
    /// The PSP accepted it and named its refund id; the outcome is awaited.
    Submitted,
    /// The PSP returned the money (final).
    Succeeded,
    /// The PSP refused or failed it; its amount may be refunded again (final).
    Failed,
}

impl RefundStatus {
    /// The status's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Requested => "requested",
            RefundStatus::Submitted => "submitted",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    /// True while the refund holds its amount and awaits an outcome.
    pub fn is_open(self) -> bool {
        matches!(self, RefundStatus::Requested | RefundStatus::Submitted)
    }
}

/// Why a refund failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundFailure {
    /// The PSP's (or our) error code.
    pub code: String,
    /// The reason, in words.
    pub reason: String,
}

/// One refund of a payment, as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// Our id. A refund the PSP reported without our request has the nil id.
    pub id: RefundId,
    /// The merchant's refund id (empty for a refund the PSP reported without our request).
    pub merchant_refund_id: String,
    /// Amount to return to the payer.
    pub amount: Paise,
    /// The merchant's reason.
    pub reason: String,
    /// The commission treatment in force when it was requested.
    pub commission: RefundCommission,
    /// Where it stands.
    pub status: RefundStatus,
    /// The PSP's refund id, once known.
    pub psp_refund_id: Option<String>,
    /// Why it failed.
    pub failure: Option<RefundFailure>,
    /// Commission reversed when it succeeded.
    pub commission_reversed: Paise,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

/// A merchant's request to refund (part of) a succeeded payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRefund {
    /// The new refund's id.
    pub refund_id: RefundId,
    /// The merchant's refund id: 1 to 40 of `A-Z a-z 0-9 - _ .`.
    pub merchant_refund_id: String,
    /// Amount (positive, at most what is left to refund).
    pub amount: Paise,
    /// The merchant's reason (may be empty).
    pub reason: String,
    /// The merchant's commission treatment now.
    pub commission: RefundCommission,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

impl Payment {
    /// Every refund, in the order requested (and those the PSP reported without a request).
    pub fn refunds(&self) -> &[Refund] {
        &self.refunds
    }

    /// A refund by our id.
    pub fn refund(&self, refund_id: RefundId) -> Option<&Refund> {
        self.refunds.iter().find(|refund| refund.id == refund_id)
    }

    /// Total of the refunds that succeeded.
    pub fn refunded(&self) -> Paise {
        self.total(|refund| refund.status == RefundStatus::Succeeded)
    }

    /// Total held by refunds awaiting their outcome.
    pub fn refunds_in_flight(&self) -> Paise {
        self.total(|refund| refund.status.is_open())
    }

    /// What may still be refunded: the amount less succeeded and in-flight refunds.
    pub fn refundable(&self) -> Paise {
        self.amount
            .saturating_sub(self.refunded())
            .saturating_sub(self.refunds_in_flight())
    }

    /// Commission reversed by this payment's refunds.
    pub fn commission_reversed(&self) -> Paise {
        self.commission_reversed
    }

    fn total(&self, counts: impl Fn(&Refund) -> bool) -> Paise {
        self.refunds
            .iter()
            .filter(|refund| counts(refund))
            .fold(Paise::ZERO, |total, refund| {
                total.saturating_add(refund.amount)
            })
    }

    /// The refund after one of its events; `None` for other events.
    pub(super) fn apply_refund_event(&mut self, event: &PaymentEvent) {
        match event {
            PaymentEvent::RefundRequested {
                refund_id,
                merchant_refund_id,
                amount,
                reason,
                commission,
                at,
            } => self.refunds.push(Refund {
                id: *refund_id,
                merchant_refund_id: merchant_refund_id.clone(),
                amount: *amount,
                reason: reason.clone(),
                commission: *commission,
                status: RefundStatus::Requested,
                psp_refund_id: None,
                failure: None,
                commission_reversed: Paise::ZERO,
                requested_at: *at,
                updated_at: *at,
            }),
            PaymentEvent::RefundSubmitted {
                refund_id,
                psp_refund_id,
                at,
            } => {
                if let Some(refund) = self.refund_mut(*refund_id) {
                    refund.status = RefundStatus::Submitted;
                    refund.psp_refund_id = Some(psp_refund_id.clone());
                    refund.updated_at = *at;
                }
            }
            PaymentEvent::RefundFailed {
                refund_id,
                code,
                reason,
                at,
                ..
            } => {
                if let Some(refund) = self.refund_mut(*refund_id) {
                    refund.status = RefundStatus::Failed;
                    refund.failure = Some(RefundFailure {
                        code: code.clone(),
                        reason: reason.clone(),
                    });
                    refund.updated_at = *at;
                }
            }
            PaymentEvent::PaymentRefunded { .. } => self.refund_succeeded(event),
            _ => {}
        }
    }

    fn refund_mut(&mut self, refund_id: RefundId) -> Option<&mut Refund> {
        self.refunds
            .iter_mut()
            .find(|refund| refund.id == refund_id)
    }

    /// A `PaymentRefunded`: the requested refund it names succeeded, or (naming none) the PSP
    /// reported a refund made without our request. Refunded in full once they reach the amount.
    fn refund_succeeded(&mut self, event: &PaymentEvent) {
        let PaymentEvent::PaymentRefunded {
            refund_id,
            amount,
            commission_reversed,
            psp_refund_id,
            at,
            ..
        } = event
        else {
            return;
        };
        let requested = refund_id.parse::<RefundId>().ok();
        match requested.and_then(|id| self.refund_mut(id)) {
            Some(refund) => {
                refund.status = RefundStatus::Succeeded;
                refund.commission_reversed = *commission_reversed;
                refund.psp_refund_id = psp_refund_id.clone().or(refund.psp_refund_id.take());
                refund.updated_at = *at;
            }
            None => self.refunds.push(Refund {
                id: RefundId(uuid::Uuid::nil()),
                merchant_refund_id: String::new(),
                amount: *amount,
                reason: String::new(),
                commission: RefundCommission::Retain,
                status: RefundStatus::Succeeded,
                psp_refund_id: Some(psp_refund_id.clone().unwrap_or(refund_id.clone())),
                failure: None,
                commission_reversed: *commission_reversed,
                requested_at: *at,
                updated_at: *at,
            }),
        }
        self.commission_reversed = self
            .commission_reversed
            .saturating_add(*commission_reversed);
        if self.refunded() >= self.amount {
            self.status = PaymentStatus::Refunded;
        }
    }
}

/// Refused unless the payment was paid (a fully refunded one has nothing left to refund).
fn ensure_paid(payment: &Payment) -> Result<(), PaymentError> {
    match payment.status {
        PaymentStatus::Succeeded | PaymentStatus::Refunded => Ok(()),
        status => Err(PaymentError::NotRefundable { status }),
    }
}

/// Refused when `amount` is more than what may still be refunded.
fn ensure_refundable(payment: &Payment, amount: Paise) -> Result<(), PaymentError> {
    let refundable = payment.refundable();
    if amount > refundable {
        return Err(PaymentError::RefundExceedsAmount {
            refundable,
            requested: amount,
        });
    }
    Ok(())
}

/// Checks a merchant refund id: 1 to [`MAX_REFUND_ID_CHARS`] of `A-Z a-z 0-9 - _ .`.
pub fn validate_merchant_refund_id(merchant_refund_id: &str) -> Result<(), FieldError> {
    validation::token(
        "refund_id",
        merchant_refund_id,
        MAX_REFUND_ID_CHARS,
        is_order_id_char,
        "letters, digits, '-', '_' and '.'",
    )
}

pub(super) fn request_refund(
    payment: &Payment,
    request: &RequestRefund,
) -> Result<Vec<PaymentEvent>, PaymentError> {
    validate_merchant_refund_id(&request.merchant_refund_id)?;
    validation::amount("amount", request.amount, MAX_PAYMENT_AMOUNT)?;
    if request.reason.chars().any(char::is_control) {
        return Err(Problem::BadCharacters {
            allowed: "printable characters",
        }
        .at("reason")
        .into());
    }
    if request.reason.chars().count() > MAX_REFUND_REASON_CHARS {
        return Err(Problem::TooLong {
            max: MAX_REFUND_REASON_CHARS,
        }
        .at("reason")
        .into());
    }
    if payment.refund(request.refund_id).is_some() {
        return Err(PaymentError::RefundAlreadyRequested(request.refund_id));
    }
    ensure_paid(payment)?;
    ensure_refundable(payment, request.amount)?;
    Ok(vec![PaymentEvent::RefundRequested {
        refund_id: request.refund_id,
        merchant_refund_id: request.merchant_refund_id.clone(),
        amount: request.amount,
        reason: request.reason.trim().to_owned(),
        commission: request.commission,
        at: request.at,
    }])
}

fn known_refund(payment: &Payment, refund_id: RefundId) -> Result<&Refund, PaymentError> {
    payment
        .refund(refund_id)
        .ok_or(PaymentError::UnknownRefund(refund_id))
}

pub(super) fn record_submitted(
    payment: &Payment,
    refund_id: RefundId,
    psp_refund_id: &str,
    at: DateTime<Utc>,
) -> Result<Vec<PaymentEvent>, PaymentError> {
    let refund = known_refund(payment, refund_id)?;
    psp_id("psp_refund_id", psp_refund_id)?;
    match (refund.status, refund.psp_refund_id.as_deref()) {
        (RefundStatus::Requested, _) => Ok(vec![PaymentEvent::RefundSubmitted {
            refund_id,
            psp_refund_id: psp_refund_id.to_owned(),
            at,
        }]),
        (RefundStatus::Submitted, Some(known)) if known != psp_refund_id => {
            Err(PaymentError::RefundSubmittedAs {
                psp_refund_id: known.to_owned(),
            })
        }
        // Already submitted as this, or its outcome overtook the record of the call.
        _ => Ok(vec![]),
    }
}

pub(super) fn record_succeeded(
    payment: &Payment,
    refund_id: RefundId,
    psp_refund_id: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Vec<PaymentEvent>, PaymentError> {
    let refund = known_refund(payment, refund_id)?;
    match refund.status {
        RefundStatus::Succeeded => return Err(PaymentError::RefundAlreadySucceeded(refund_id)),
        RefundStatus::Failed => return Err(PaymentError::RefundSucceededAfterFailure(refund_id)),
        RefundStatus::Requested | RefundStatus::Submitted => {}
    }
    if let Some(id) = psp_refund_id {
        psp_id("psp_refund_id", id)?;
    }
    Ok(vec![PaymentEvent::PaymentRefunded {
        refund_id: refund_id.to_string(),
        amount: refund.amount,
        refunded_total: payment.refunded().saturating_add(refund.amount),
        commission_reversed: commission_reversal(payment, refund),
        psp_refund_id: psp_refund_id
            .map(str::to_owned)
            .or_else(|| refund.psp_refund_id.clone()),
        at,
    }])
}

/// The commission a succeeding refund reverses: the cumulative half-up share of the payment's
/// reversing refunds, less what they reversed already; never more than is left of the
/// commission.
fn commission_reversal(payment: &Payment, refund: &Refund) -> Paise {
    let Some(commission) = payment.commission() else {
        return Paise::ZERO;
    };
    if refund.commission != RefundCommission::ReverseProportional {
        return Paise::ZERO;
    }
    let reversing = payment
        .total(|r| {
            r.status == RefundStatus::Succeeded
                && r.commission == RefundCommission::ReverseProportional
        })
        .saturating_add(refund.amount);
    let left = commission.saturating_sub(payment.commission_reversed);
    commission
        .pro_rata(reversing, payment.amount)
        .saturating_sub(payment.commission_reversed)
        .clamp(Paise::ZERO, left.max(Paise::ZERO))
}

pub(super) fn record_failed(
    payment: &Payment,
    refund_id: RefundId,
    code: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Vec<PaymentEvent>, PaymentError> {
    let refund = known_refund(payment, refund_id)?;
    match refund.status {
        // A success is final: a late failure report never undoes it.
        RefundStatus::Succeeded => Err(PaymentError::RefundAlreadySucceeded(refund_id)),
        RefundStatus::Failed => Err(PaymentError::RefundAlreadyFailed(refund_id)),
        RefundStatus::Requested | RefundStatus::Submitted => Ok(vec![PaymentEvent::RefundFailed {
            refund_id,
            amount: refund.amount,
            code: validation::text("code", code, MAX_FAILURE_TEXT_CHARS)?,
            reason: validation::excerpt(reason, MAX_FAILURE_TEXT_CHARS),
            at,
        }]),
    }
}

/// A refund the PSP reported that was not requested through us (made in its dashboard): it
/// counts against what may be refunded and keeps the commission.
pub(super) fn record_external(
    payment: &Payment,
    psp_refund_id: &str,
    amount: Paise,
    at: DateTime<Utc>,
) -> Result<Vec<PaymentEvent>, PaymentError> {
    if payment
        .refunds
        .iter()
        .any(|refund| refund.psp_refund_id.as_deref() == Some(psp_refund_id))
    {
        return Err(PaymentError::RefundAlreadyRecorded {
            refund_id: psp_refund_id.to_owned(),
        });
    }
    if payment.status != PaymentStatus::Succeeded {
        return Err(PaymentError::NotRefundable {
            status: payment.status,
        });
    }
    psp_id("refund_id", psp_refund_id)?;
    validation::amount("amount", amount, MAX_PAYMENT_AMOUNT)?;
    ensure_refundable(payment, amount)?;
    Ok(vec![PaymentEvent::PaymentRefunded {
        refund_id: psp_refund_id.to_owned(),
        amount,
        refunded_total: payment.refunded().saturating_add(amount),
        commission_reversed: Paise::ZERO,
        psp_refund_id: None,
        at,
    }])
}

#[cfg(test)]
mod tests;
