//! Given-events / when-command / then-events helpers, so tests read like the rules.

use crate::decider::Decider;
use chrono::{DateTime, TimeZone, Utc};
use std::fmt::Debug;

/// 2026-01-15 10:00:00 UTC (15:30 IST) plus `secs` seconds: the tests' clock.
pub(crate) fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_768_471_200 + secs, 0)
        .single()
        .expect("a valid test instant")
}

/// Starts a test from a stream's recorded history.
pub(crate) fn given<D: Decider>(history: impl IntoIterator<Item = D::Event>) -> Given<D> {
    Given {
        history: history.into_iter().collect(),
    }
}

/// A stream's history, before the command under test.
pub(crate) struct Given<D: Decider> {
    history: Vec<D::Event>,
}

impl<D: Decider> Given<D> {
    /// Decides `command` against the folded history.
    pub(crate) fn when(self, command: D::Command) -> Then<D> {
        let state = D::fold(&self.history);
        let result = D::decide(&state, &command);
        Then { state, result }
    }
}

/// What the decider answered.
pub(crate) struct Then<D: Decider> {
    state: D::State,
    result: Result<Vec<D::Event>, D::Error>,
}

impl<D: Decider> Then<D>
where
    D::Event: PartialEq + Debug,
    D::Error: PartialEq + Debug,
{
    /// Asserts the command decided exactly `expected`; returns the state after evolving them.
    #[track_caller]
    pub(crate) fn then(self, expected: impl IntoIterator<Item = D::Event>) -> D::State {
        let expected: Vec<D::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "decided events");
                events
                    .iter()
                    .fold(self.state, |state, event| D::evolve(state, event))
            }
            Err(error) => {
                panic!("expected events {expected:?}, but the command was refused: {error:?}")
            }
        }
    }

    /// Asserts the command decided no events (a request for the state the stream is already in).
    #[track_caller]
    pub(crate) fn then_nothing(self) {
        self.then([]);
    }

    /// Asserts the command was refused with `expected`.
    #[track_caller]
    pub(crate) fn then_error(self, expected: D::Error) {
        match self.result {
            Ok(events) => {
                panic!("expected refusal {expected:?}, but the command decided {events:?}")
            }
            Err(error) => assert_eq!(error, expected, "refusal"),
        }
    }
}

/// Fixed ids and sealed values, so expected events can be written out in full.
pub(crate) mod fixtures {
    use crate::ids::{
        GatewayId, MerchantId, NotificationId, PaymentId, PayoutId, RefundId, WebhookDeliveryId,
    };
    use crate::sealed::SealedSecret;
    use uuid::Uuid;

    /// The merchant most tests are about.
    pub(crate) fn merchant_id() -> MerchantId {
        MerchantId(Uuid::from_u128(0x1000))
    }

    /// Another merchant.
    pub(crate) fn other_merchant_id() -> MerchantId {
        MerchantId(Uuid::from_u128(0x1001))
    }

    /// Gateway number `n`.
    pub(crate) fn gateway_id(n: u128) -> GatewayId {
        GatewayId(Uuid::from_u128(0x2000 + n))
    }

    /// Payment number `n`.
    pub(crate) fn payment_id(n: u128) -> PaymentId {
        PaymentId(Uuid::from_u128(0x3000 + n))
    }

    /// Payout number `n`.
    pub(crate) fn payout_id(n: u128) -> PayoutId {
        PayoutId(Uuid::from_u128(0x4000 + n))
    }

    /// Refund number `n`.
    pub(crate) fn refund_id(n: u128) -> RefundId {
        RefundId(Uuid::from_u128(0x7000 + n))
    }

    /// Notification number `n`.
    pub(crate) fn notification_id(n: u128) -> NotificationId {
        NotificationId(Uuid::from_u128(0x5000 + n))
    }

    /// Webhook delivery number `n`.
    pub(crate) fn delivery_id(n: u128) -> WebhookDeliveryId {
        WebhookDeliveryId(Uuid::from_u128(0x6000 + n))
    }

    /// A sealed secret whose blob is `blob`.
    pub(crate) fn sealed(blob: &str) -> SealedSecret {
        SealedSecret {
            key_id: "k1".to_owned(),
            sealed: blob.to_owned(),
        }
    }
}
