//! Orders: creating one for an account, reading it back, and the payer's choice on it.

use lightspeed_adapters::merchant_webhook::WebhookSecret;
use lightspeed_adapters::sandbox::{
    CreateOrder, DeliveryAttempt, EVENT_FAILED, EVENT_SUCCEEDED, FailureInfo, MAX_REFERENCE_LEN,
    OrderStatus, OrderView, SandboxEvent, order_id_for,
};
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::Paise;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{self, NewChoice, NewOrder, StoredOrder};
use crate::{Sandbox, SandboxError};

/// A sandbox account's key: the `whsec_` secret that authenticates its calls and signs its
/// orders' webhooks. The sandbox keeps no accounts; a key is one.
#[derive(Clone)]
pub struct AccountKey(Secret);

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountKey(<redacted>)")
    }
}

impl AccountKey {
    /// The key, if `key` is a Standard Webhooks secret.
    pub fn parse(key: &str) -> Option<Self> {
        WebhookSecret::parse(key).ok()?;
        Some(Self(Secret::from(key)))
    }

    /// What the order stores to recognise the account: SHA-256 of the key.
    pub(crate) fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.expose()).into()
    }

    /// Whether `order` was created with this key (in constant time).
    pub(crate) fn created(&self, order: &StoredOrder) -> bool {
        self.digest().ct_eq(order.key_digest.as_slice()).into()
    }
}

/// What the payer pressed on the checkout page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayerChoice {
    /// Pay: the payment succeeds.
    Pay,
    /// Fail: the payment fails with `SANDBOX_DECLINED`.
    Fail,
}

/// An order created, or found again for the same account and amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The order.
    pub order: OrderView,
    /// `false` when the order existed already.
    pub new: bool,
}

/// The payer's choice as recorded on an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The webhook the choice owes (an earlier choice's, if one was recorded first).
    pub event: SandboxEvent,
    /// Where the payer goes back to.
    pub return_url: String,
    /// `false` when an earlier choice stands and this one changed nothing.
    pub first: bool,
}

impl Sandbox {
    /// Creates the order `request` for the account `key`. An order whose reference was seen
    /// before is answered again (`new: false`) when the key and the amount are the same, and
    /// refused with [`SandboxError::OrderExists`] otherwise.
    pub async fn create_order(
        &self,
        key: &AccountKey,
        request: CreateOrder,
    ) -> Result<Created, SandboxError> {
        validate(&request)?;
        let id = order_id_for(&request.reference);
        let new = NewOrder {
            id: &id,
            key_digest: &key.digest(),
            key: &self.inner.keyring.seal(key.0.expose()),
            request: &request,
            created_at: self.inner.clock.now(),
        };
        if store::insert_order(&self.inner.pool, &new).await? {
            let order = self.view(&order_of(&id, key, request), Vec::new());
            return Ok(Created { order, new: true });
        }
        let existing = store::order(&self.inner.pool, &id)
            .await?
            .ok_or(SandboxError::OrderRemoved)?;
        if !key.created(&existing) || existing.amount_paise != request.amount.0 {
            return Err(SandboxError::OrderExists);
        }
        let attempts = store::attempts(&self.inner.pool, &id).await?;
        Ok(Created {
            order: self.view(&existing, attempts),
            new: false,
        })
    }

    /// The order `id` as the account `key` sees it: `None` when it does not exist or another
    /// account created it.
    pub async fn order(
        &self,
        id: &str,
        key: &AccountKey,
    ) -> Result<Option<OrderView>, SandboxError> {
        match store::order(&self.inner.pool, id).await? {
            Some(order) if key.created(&order) => {
                let attempts = store::attempts(&self.inner.pool, id).await?;
                Ok(Some(self.view(&order, attempts)))
            }
            _ => Ok(None),
        }
    }

    /// Records the payer's choice on order `id` and the webhook it owes, unless an earlier
    /// choice was recorded (which then stands); `None` for an unknown order. Nothing is sent:
    /// [`Sandbox::deliver_owed`] does, or the sweeps once the first attempt's lease ran out.
    pub async fn choose(
        &self,
        id: &str,
        choice: PayerChoice,
    ) -> Result<Option<Recorded>, SandboxError> {
        let pool = &self.inner.pool;
        let Some(mut order) = store::order(pool, id).await? else {
            return Ok(None);
        };
        if order.payment_id.is_none() {
            let event = event(&order, new_payment_id(), failure(choice));
            if self.record_choice(&event).await? {
                return Ok(Some(Recorded {
                    event,
                    return_url: order.return_url,
                    first: true,
                }));
            }
            // Another click was recorded first.
            order = store::order(pool, id)
                .await?
                .ok_or(SandboxError::OrderRemoved)?;
        }
        // Choices are never undone: a refused one means an earlier one is stored, unless the
        // order was removed and its reference reused in between.
        let payment_id = order.payment_id.clone().ok_or(SandboxError::OrderRemoved)?;
        Ok(Some(Recorded {
            event: event(&order, payment_id, stored_failure(&order)),
            return_url: order.return_url,
            first: false,
        }))
    }

    /// Stores the choice `event` tells and its webhook, leased to this click for its first
    /// attempt; `false` when another choice was stored first.
    async fn record_choice(&self, event: &SandboxEvent) -> Result<bool, SandboxError> {
        let choice = NewChoice {
            order_id: &event.order_id,
            payment_id: &event.payment_id,
            failure: event.failure.as_ref(),
            chosen_at: self.inner.clock.now(),
            webhook_id: &webhook_id(event),
            body: &serde_json::to_vec(event)?,
            first_attempt_until: self.lease_end(),
        };
        Ok(store::record_choice(&self.inner.pool, &choice).await?)
    }

    /// The order `id` as stored, for its checkout page.
    pub(crate) async fn stored(&self, id: &str) -> Result<Option<StoredOrder>, SandboxError> {
        Ok(store::order(&self.inner.pool, id).await?)
    }

    fn view(&self, order: &StoredOrder, deliveries: Vec<DeliveryAttempt>) -> OrderView {
        OrderView {
            id: order.id.clone(),
            reference: order.reference.clone(),
            amount: Paise(order.amount_paise),
            currency: order.currency.clone(),
            status: status(order),
            checkout_url: format!(
                "{}/checkout/{}",
                self.inner.config.public_url.trim_end_matches('/'),
                order.id
            ),
            payment_id: order.payment_id.clone(),
            failure: stored_failure(order),
            deliveries,
        }
    }
}

/// Where `order` stands.
pub(crate) fn status(order: &StoredOrder) -> OrderStatus {
    match (&order.payment_id, &order.failure_code) {
        (None, _) => OrderStatus::Created,
        (Some(_), None) => OrderStatus::Paid,
        (Some(_), Some(_)) => OrderStatus::Failed,
    }
}

/// A just-created order as it would read back.
fn order_of(id: &str, key: &AccountKey, request: CreateOrder) -> StoredOrder {
    StoredOrder {
        id: id.to_owned(),
        key_digest: key.digest().to_vec(),
        reference: request.reference,
        amount_paise: request.amount.0,
        currency: request.currency,
        description: request.description,
        return_url: request.return_url,
        payment_id: None,
        failure_code: None,
        failure_reason: None,
    }
}

fn validate(request: &CreateOrder) -> Result<(), SandboxError> {
    if !valid_reference(&request.reference) {
        return Err(SandboxError::InvalidReference);
    }
    if request.amount.0 <= 0 {
        return Err(SandboxError::InvalidAmount);
    }
    let texts = [
        &request.currency,
        &request.description,
        &request.callback_url,
        &request.return_url,
    ];
    if texts.iter().any(|text| text.contains('\0')) {
        return Err(SandboxError::InvalidText);
    }
    if !valid_web_url(&request.callback_url) || !valid_web_url(&request.return_url) {
        return Err(SandboxError::InvalidUrl);
    }
    Ok(())
}

/// Whether `reference` is 1–64 chars of `[A-Za-z0-9_-]` (orders' and refunds').
pub(crate) fn valid_reference(reference: &str) -> bool {
    !reference.is_empty()
        && reference.len() <= MAX_REFERENCE_LEN
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_web_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// A fresh `sbp_…` payment id.
fn new_payment_id() -> String {
    let mut random = [0u8; 9];
    rand::fill(&mut random);
    format!("sbp_{}", hex::encode(random))
}

fn failure(choice: PayerChoice) -> Option<FailureInfo> {
    (choice == PayerChoice::Fail).then(|| FailureInfo {
        code: "SANDBOX_DECLINED".to_owned(),
        reason: "The payer chose Fail on the sandbox checkout".to_owned(),
    })
}

fn stored_failure(order: &StoredOrder) -> Option<FailureInfo> {
    Some(FailureInfo {
        code: order.failure_code.clone()?,
        reason: order.failure_reason.clone()?,
    })
}

/// The webhook telling `order`'s payment.
fn event(order: &StoredOrder, payment_id: String, failure: Option<FailureInfo>) -> SandboxEvent {
    SandboxEvent {
        kind: if failure.is_none() {
            EVENT_SUCCEEDED
        } else {
            EVENT_FAILED
        }
        .to_owned(),
        order_id: order.id.clone(),
        reference: order.reference.clone(),
        payment_id,
        amount: Paise(order.amount_paise),
        currency: order.currency.clone(),
        failure,
    }
}

/// The `webhook-id` of `event`'s every attempt.
fn webhook_id(event: &SandboxEvent) -> String {
    format!("sbevt_{}", event.payment_id)
}
