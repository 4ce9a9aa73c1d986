//! Refunds: creating one of an order's payment (idempotently, within what is left to refund),
//! reading it back, and settling it as the bank would, with the webhook that owes.

use lightspeed_adapters::sandbox::{
    CreateRefund, EVENT_REFUND_FAILED, EVENT_REFUND_PROCESSED, FailureInfo, MIN_REFUND,
    OrderStatus, RefundEvent, RefundStatus, RefundView, refund_id_for,
};
use lightspeed_domain::Paise;
use subtle::ConstantTimeEq;

use crate::delivery::later;
use crate::orders::{AccountKey, status, valid_reference};
use crate::store::{self, NewRefund, RefundInsert, Settlement, StoredRefund};
use crate::{Sandbox, SandboxError};

/// Most due refunds one sweep settles by itself.
pub const SETTLE_BATCH: u32 = 64;

/// A refund created, or found again for the same request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedRefund {
    /// The refund as it stands.
    pub refund: RefundView,
    /// `false` when the same request was made before (a replay).
    pub new: bool,
}

impl Sandbox {
    /// Refunds `request.amount` of order `order_id`'s payment for the account `key`; `None`
    /// when the order does not exist or another account created it. A reference seen before
    /// answers that refund (`new: false`) when the account, order, amount and reason are the
    /// same, and is refused with [`SandboxError::RefundExists`] otherwise.
    pub async fn create_refund(
        &self,
        key: &AccountKey,
        order_id: &str,
        request: CreateRefund,
    ) -> Result<Option<CreatedRefund>, SandboxError> {
        validate(&request)?;
        let pool = &self.inner.pool;
        let Some(order) = store::order(pool, order_id).await? else {
            return Ok(None);
        };
        if !key.created(&order) {
            return Ok(None);
        }
        if status(&order) != OrderStatus::Paid {
            return Err(SandboxError::OrderNotPaid);
        }
        let id = refund_id_for(&request.reference);
        let now = self.inner.clock.now();
        let new = NewRefund {
            id: &id,
            order_id,
            key_digest: &key.digest(),
            reference: &request.reference,
            amount_paise: request.amount.0,
            reason: &request.reason,
            created_at: now,
            settle_due_at: self.inner.config.refund_auto_settle.map(|d| later(now, d)),
        };
        match store::insert_refund(pool, &new).await? {
            RefundInsert::OverRefund => Err(SandboxError::OverRefund),
            RefundInsert::Stored => self.created(&id, true).await,
            RefundInsert::Exists => self.replay(&id, key, order_id, &request).await,
        }
    }

    /// The refund `id` as the account `key` sees it: `None` when it does not exist or another
    /// account asked for it.
    pub async fn refund(
        &self,
        id: &str,
        key: &AccountKey,
    ) -> Result<Option<RefundView>, SandboxError> {
        Ok(store::refund(&self.inner.pool, id)
            .await?
            .filter(|refund| asked_by(key, refund))
            .map(|refund| view(&refund)))
    }

    /// Settles the pending refund `id` of the account `key` as `outcome` (`processed` or
    /// `failed`) and records the webhook it owes, leased to the caller for its first attempt
    /// ([`Sandbox::deliver_refund_webhook`] makes it). Settling it again the same way answers
    /// it unchanged; the other way is [`SandboxError::RefundSettled`]. `None` for a refund the
    /// account does not have.
    pub async fn settle_refund(
        &self,
        id: &str,
        key: &AccountKey,
        outcome: RefundStatus,
    ) -> Result<Option<RefundView>, SandboxError> {
        if outcome == RefundStatus::Pending {
            return Err(SandboxError::InvalidSettlement);
        }
        let Some(refund) = self.refund(id, key).await? else {
            return Ok(None);
        };
        if refund.status == RefundStatus::Pending {
            self.settle(&refund, outcome, self.lease_end()).await?;
        }
        let settled = self
            .refund(id, key)
            .await?
            .ok_or(SandboxError::OrderRemoved)?;
        if settled.status == outcome {
            Ok(Some(settled))
        } else {
            Err(SandboxError::RefundSettled)
        }
    }

    /// Makes the first attempts at the webhook refund `id`'s settlement owes, as
    /// [`Sandbox::deliver_owed`] does for a payment's.
    pub async fn deliver_refund_webhook(&self, id: &str) -> Result<(), SandboxError> {
        self.deliver_webhook(&webhook_id(id)).await
    }

    /// Settles as `processed` a bounded batch of the refunds whose auto-settlement is due; their
    /// webhooks are due at once. Answers how many this call settled.
    pub(crate) async fn settle_due_refunds(&self) -> Result<usize, SandboxError> {
        let now = self.inner.clock.now();
        let due = store::refunds_due(&self.inner.pool, now, SETTLE_BATCH).await?;
        let mut settled = 0;
        for id in due {
            let Some(stored) = store::refund(&self.inner.pool, &id).await? else {
                continue;
            };
            // A racing sweep or a settle call may have settled it first; that one stands.
            if self
                .settle(&view(&stored), RefundStatus::Processed, now)
                .await?
            {
                settled += 1;
            }
        }
        Ok(settled)
    }

    /// Records `refund`'s settlement as `outcome` and its webhook, first due at `first_attempt_at`;
    /// `false` when it was settled already.
    async fn settle(
        &self,
        refund: &RefundView,
        outcome: RefundStatus,
        first_attempt_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, SandboxError> {
        let event = event(refund, outcome);
        let settlement = Settlement {
            refund_id: &refund.id,
            status: status_text(outcome),
            settled_at: self.inner.clock.now(),
            webhook_id: &webhook_id(&refund.id),
            body: &serde_json::to_vec(&event)?,
            first_attempt_at,
        };
        Ok(store::settle_refund(&self.inner.pool, &settlement).await?)
    }

    async fn created(&self, id: &str, new: bool) -> Result<Option<CreatedRefund>, SandboxError> {
        let refund = store::refund(&self.inner.pool, id)
            .await?
            .ok_or(SandboxError::OrderRemoved)?;
        Ok(Some(CreatedRefund {
            refund: view(&refund),
            new,
        }))
    }

    /// The answer to a reference seen before: the same request is replayed, another refused.
    async fn replay(
        &self,
        id: &str,
        key: &AccountKey,
        order_id: &str,
        request: &CreateRefund,
    ) -> Result<Option<CreatedRefund>, SandboxError> {
        let existing = store::refund(&self.inner.pool, id)
            .await?
            .ok_or(SandboxError::OrderRemoved)?;
        let same = asked_by(key, &existing)
            && existing.order_id == order_id
            && existing.amount_paise == request.amount.0
            && existing.reason == request.reason;
        if !same {
            return Err(SandboxError::RefundExists);
        }
        self.created(id, false).await
    }
}

fn validate(request: &CreateRefund) -> Result<(), SandboxError> {
    if !valid_reference(&request.reference) {
        return Err(SandboxError::InvalidReference);
    }
    if request.amount < MIN_REFUND {
        return Err(SandboxError::RefundTooSmall);
    }
    if request.reason.contains('\0') {
        return Err(SandboxError::InvalidText);
    }
    Ok(())
}

/// Whether the account `key` asked for `refund` (in constant time).
fn asked_by(key: &AccountKey, refund: &StoredRefund) -> bool {
    key.digest().ct_eq(refund.key_digest.as_slice()).into()
}

fn refund_status(stored: &str) -> RefundStatus {
    match stored {
        "processed" => RefundStatus::Processed,
        "failed" => RefundStatus::Failed,
        _ => RefundStatus::Pending,
    }
}

fn status_text(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Pending => "pending",
        RefundStatus::Processed => "processed",
        RefundStatus::Failed => "failed",
    }
}

/// Why a sandbox refund failed: the settle control (or nothing else) fails one.
fn failure(status: RefundStatus) -> Option<FailureInfo> {
    (status == RefundStatus::Failed).then(|| FailureInfo {
        code: "SANDBOX_REFUND_FAILED".to_owned(),
        reason: "The refund was settled as failed on the sandbox".to_owned(),
    })
}

fn view(refund: &StoredRefund) -> RefundView {
    let status = refund_status(&refund.status);
    RefundView {
        id: refund.id.clone(),
        reference: refund.reference.clone(),
        order_id: refund.order_id.clone(),
        order_reference: refund.order_reference.clone(),
        payment_id: refund.payment_id.clone(),
        amount: Paise(refund.amount_paise),
        currency: refund.currency.clone(),
        status,
        failure: failure(status),
    }
}

/// The webhook telling that `refund` settled as `outcome`.
fn event(refund: &RefundView, outcome: RefundStatus) -> RefundEvent {
    RefundEvent {
        kind: if outcome == RefundStatus::Failed {
            EVENT_REFUND_FAILED
        } else {
            EVENT_REFUND_PROCESSED
        }
        .to_owned(),
        refund_id: refund.id.clone(),
        reference: refund.reference.clone(),
        order_id: refund.order_id.clone(),
        order_reference: refund.order_reference.clone(),
        payment_id: refund.payment_id.clone(),
        amount: refund.amount,
        currency: refund.currency.clone(),
        failure: failure(outcome),
    }
}

/// The `webhook-id` of every attempt at refund `id`'s webhook: one per refund.
fn webhook_id(id: &str) -> String {
    format!("sbevt_{id}")
}
