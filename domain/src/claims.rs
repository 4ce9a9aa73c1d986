//! Unique claims: one stream per key, so the log itself guarantees a key has one owner.
//!
//! - `client_key-<key>`: which merchant a client key identifies. Written with the merchant's
//!   onboarding or key rotation, so a request's key resolves to its merchant without any index
//!   outside the log; whether the key is still the merchant's *current* one is the merchant
//!   stream's call.
//! - `merchant_order-<merchant id>.<order id>`: which payment a merchant's order id started,
//!   and a digest of the request that started it. The order id is the merchant's idempotency
//!   key: the same order id with the same request answers the same payment; with another
//!   request it is refused.
//! - `merchant_refund-<merchant id>.<refund id>`: which refund (of which payment) a merchant's
//!   refund id asked for, and a digest of the request. The same idempotency rule applies.
//! - `refund-<refund id>`: which payment one of our refunds belongs to. Written with the
//!   request, so a PSP report naming only the refund finds its payment in the log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::decider::Decider;
use crate::ids::{MerchantId, PaymentId, RefundId};

/// The merchant a client key was issued to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientKeyClaim {
    merchant_id: Option<MerchantId>,
}

impl ClientKeyClaim {
    /// The merchant the key was issued to, if it was.
    pub fn merchant_id(&self) -> Option<MerchantId> {
        self.merchant_id
    }
}

/// Issues a client key to a merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignClientKey {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// What a client key stream records.
    pub enum ClientKeyEvent {
        /// The key was issued to a merchant.
        ClientKeyAssigned {
            /// The merchant.
            merchant_id: MerchantId,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why a claim is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The client key already belongs to a merchant (keys are random, so this is a collision
    /// or a replay; generate another).
    #[error("client key already issued to merchant {0}")]
    ClientKeyTaken(MerchantId),
    /// The merchant already used this order id.
    #[error("order id already started payment {}", .0.payment_id)]
    OrderTaken(MerchantOrder),
    /// The merchant already used this refund id.
    #[error("refund id already asked for refund {}", .0.refund_id)]
    RefundIdTaken(MerchantRefund),
    /// The refund already belongs to a payment.
    #[error("refund already belongs to payment {0}")]
    RefundLocated(PaymentId),
}

impl Decider for ClientKeyClaim {
    const CATEGORY: &'static str = "client_key";
    type State = ClientKeyClaim;
    type Command = AssignClientKey;
    type Event = ClientKeyEvent;
    type Error = ClaimError;

    fn decide(
        state: &Self::State,
        command: &AssignClientKey,
    ) -> Result<Vec<ClientKeyEvent>, ClaimError> {
        match state.merchant_id {
            Some(owner) => Err(ClaimError::ClientKeyTaken(owner)),
            None => Ok(vec![ClientKeyEvent::ClientKeyAssigned {
                merchant_id: command.merchant_id,
                at: command.at,
            }]),
        }
    }

    fn evolve(state: Self::State, event: &ClientKeyEvent) -> Self::State {
        match event {
            ClientKeyEvent::ClientKeyAssigned { merchant_id, .. } => ClientKeyClaim {
                merchant_id: state.merchant_id.or(Some(*merchant_id)),
            },
        }
    }
}

/// A merchant order id and the payment it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantOrder {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// The merchant's order id.
    pub order_id: String,
    /// The payment it started.
    pub payment_id: PaymentId,
    /// Hex SHA-256 of the request body that started it.
    pub request_digest: String,
}

/// The claim on a merchant order id: `None` until a payment starts with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerchantOrderClaim(Option<MerchantOrder>);

impl MerchantOrderClaim {
    /// The order, once claimed.
    pub fn order(&self) -> Option<&MerchantOrder> {
        self.0.as_ref()
    }
}

/// Claims an order id for a new payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimOrder {
    /// The order and its payment.
    pub order: MerchantOrder,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// What a merchant order stream records.
    pub enum MerchantOrderEvent {
        /// The order id started a payment.
        MerchantOrderClaimed {
            /// The order and its payment.
            order: MerchantOrder,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

impl Decider for MerchantOrderClaim {
    const CATEGORY: &'static str = "merchant_order";
    type State = MerchantOrderClaim;
    type Command = ClaimOrder;
    type Event = MerchantOrderEvent;
    type Error = ClaimError;

    fn decide(
        state: &Self::State,
        command: &ClaimOrder,
    ) -> Result<Vec<MerchantOrderEvent>, ClaimError> {
        match &state.0 {
            Some(existing) => Err(ClaimError::OrderTaken(existing.clone())),
            None => Ok(vec![MerchantOrderEvent::MerchantOrderClaimed {
                order: command.order.clone(),
                at: command.at,
            }]),
        }
    }

    fn evolve(state: Self::State, event: &MerchantOrderEvent) -> Self::State {
        match event {
            MerchantOrderEvent::MerchantOrderClaimed { order, .. } => {
                MerchantOrderClaim(state.0.or_else(|| Some(order.clone())))
            }
        }
    }
}

/// The id part of a merchant order stream: `<merchant id>.<order id>`.
pub fn merchant_order_key(merchant_id: MerchantId, order_id: &str) -> String {
    format!("{merchant_id}.{order_id}")
}

/// A merchant refund id and the refund it asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantRefund {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// The merchant's refund id.
    pub merchant_refund_id: String,
    /// The refunded payment.
    pub payment_id: PaymentId,
    /// Our refund id.
    pub refund_id: RefundId,
    /// Hex SHA-256 of the request (payment and body) that asked for it.
    pub request_digest: String,
}

/// The claim on a merchant refund id: `None` until a refund is requested with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerchantRefundClaim(Option<MerchantRefund>);

impl MerchantRefundClaim {
    /// The refund, once claimed.
    pub fn refund(&self) -> Option<&MerchantRefund> {
        self.0.as_ref()
    }
}

/// Claims a refund id for a new refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRefund {
    /// The refund id and its refund.
    pub refund: MerchantRefund,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// What a merchant refund stream records.
    pub enum MerchantRefundEvent {
        /// The refund id asked for a refund.
        MerchantRefundClaimed {
            /// The refund id and its refund.
            refund: MerchantRefund,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

impl Decider for MerchantRefundClaim {
    const CATEGORY: &'static str = "merchant_refund";
    type State = MerchantRefundClaim;
    type Command = ClaimRefund;
    type Event = MerchantRefundEvent;
    type Error = ClaimError;

    fn decide(
        state: &Self::State,
        command: &ClaimRefund,
    ) -> Result<Vec<MerchantRefundEvent>, ClaimError> {
        match &state.0 {
            Some(existing) => Err(ClaimError::RefundIdTaken(existing.clone())),
            None => Ok(vec![MerchantRefundEvent::MerchantRefundClaimed {
                refund: command.refund.clone(),
                at: command.at,
            }]),
        }
    }

    fn evolve(state: Self::State, event: &MerchantRefundEvent) -> Self::State {
        match event {
            MerchantRefundEvent::MerchantRefundClaimed { refund, .. } => {
                MerchantRefundClaim(state.0.or_else(|| Some(refund.clone())))
            }
        }
    }
}

/// The id part of a merchant refund stream: `<merchant id>.<refund id>`.
pub fn merchant_refund_key(merchant_id: MerchantId, merchant_refund_id: &str) -> String {
    format!("{merchant_id}.{merchant_refund_id}")
}

/// Which payment one of our refunds belongs to: `None` until the refund is requested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefundLocator(Option<PaymentId>);

impl RefundLocator {
    /// The refund's payment, once requested.
    pub fn payment_id(&self) -> Option<PaymentId> {
        self.0
    }
}

/// Records which payment a new refund belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocateRefund {
    /// The refund.
    pub refund_id: RefundId,
    /// Its payment.
    pub payment_id: PaymentId,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// What a refund locator stream records.
    pub enum RefundLocatorEvent {
        /// The refund was requested on this payment.
        RefundLocated {
            /// The refund.
            refund_id: RefundId,
            /// Its payment.
            payment_id: PaymentId,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

impl Decider for RefundLocator {
    const CATEGORY: &'static str = "refund";
    type State = RefundLocator;
    type Command = LocateRefund;
    type Event = RefundLocatorEvent;
    type Error = ClaimError;

    fn decide(
        state: &Self::State,
        command: &LocateRefund,
    ) -> Result<Vec<RefundLocatorEvent>, ClaimError> {
        match state.0 {
            Some(payment_id) => Err(ClaimError::RefundLocated(payment_id)),
            None => Ok(vec![RefundLocatorEvent::RefundLocated {
                refund_id: command.refund_id,
                payment_id: command.payment_id,
                at: command.at,
            }]),
        }
    }

    fn evolve(state: Self::State, event: &RefundLocatorEvent) -> Self::State {
        match event {
            RefundLocatorEvent::RefundLocated { payment_id, .. } => {
                RefundLocator(state.0.or(Some(*payment_id)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, t};

    fn order(digest: &str) -> MerchantOrder {
        MerchantOrder {
            merchant_id: MerchantId(uuid::Uuid::from_u128(1)),
            order_id: "ORD-1".into(),
            payment_id: PaymentId(uuid::Uuid::from_u128(2)),
            request_digest: digest.into(),
        }
    }

    #[test]
    fn a_client_key_is_issued_once() {
        let merchant_id = MerchantId(uuid::Uuid::from_u128(7));
        let other = MerchantId(uuid::Uuid::from_u128(8));
        given::<ClientKeyClaim>([])
            .when(AssignClientKey {
                merchant_id,
                at: t(0),
            })
            .then([ClientKeyEvent::ClientKeyAssigned {
                merchant_id,
                at: t(0),
            }]);
        given::<ClientKeyClaim>([ClientKeyEvent::ClientKeyAssigned {
            merchant_id,
            at: t(0),
        }])
        .when(AssignClientKey {
            merchant_id: other,
            at: t(1),
        })
        .then_error(ClaimError::ClientKeyTaken(merchant_id));
    }

    #[test]
    fn a_refund_id_asks_for_one_refund() {
        let refund = |digest: &str| MerchantRefund {
            merchant_id: MerchantId(uuid::Uuid::from_u128(1)),
            merchant_refund_id: "RF-1".into(),
            payment_id: PaymentId(uuid::Uuid::from_u128(2)),
            refund_id: RefundId(uuid::Uuid::from_u128(3)),
            request_digest: digest.into(),
        };
        let claimed = MerchantRefundEvent::MerchantRefundClaimed {
            refund: refund("aa"),
            at: t(0),
        };
        given::<MerchantRefundClaim>([])
            .when(ClaimRefund {
                refund: refund("aa"),
                at: t(0),
            })
            .then([claimed.clone()]);
        given::<MerchantRefundClaim>([claimed])
            .when(ClaimRefund {
                refund: refund("bb"),
                at: t(1),
            })
            .then_error(ClaimError::RefundIdTaken(refund("aa")));
    }

    #[test]
    fn a_refund_is_located_on_one_payment() {
        let refund_id = RefundId(uuid::Uuid::from_u128(3));
        let payment_id = PaymentId(uuid::Uuid::from_u128(2));
        let located = RefundLocatorEvent::RefundLocated {
            refund_id,
            payment_id,
            at: t(0),
        };
        given::<RefundLocator>([])
            .when(LocateRefund {
                refund_id,
                payment_id,
                at: t(0),
            })
            .then([located.clone()]);
        given::<RefundLocator>([located])
            .when(LocateRefund {
                refund_id,
                payment_id: PaymentId(uuid::Uuid::from_u128(4)),
                at: t(1),
            })
            .then_error(ClaimError::RefundLocated(payment_id));
    }

    #[test]
    fn an_order_id_starts_one_payment_and_answers_it_afterwards() {
        given::<MerchantOrderClaim>([])
            .when(ClaimOrder {
                order: order("aa"),
                at: t(0),
            })
            .then([MerchantOrderEvent::MerchantOrderClaimed {
                order: order("aa"),
                at: t(0),
            }]);
        given::<MerchantOrderClaim>([MerchantOrderEvent::MerchantOrderClaimed {
            order: order("aa"),
            at: t(0),
        }])
        .when(ClaimOrder {
            order: order("bb"),
            at: t(1),
        })
        .then_error(ClaimError::OrderTaken(order("aa")));
    }
}
