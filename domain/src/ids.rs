//! Identifiers: UUID v7 (time-ordered) newtypes, one per kind of thing, so ids never mix.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// A merchant (the seeds call it client): the business that calls our payment API.
    MerchantId
);
id_type!(
    /// A gateway: one upstream PSP account owned by a merchant.
    GatewayId
);
id_type!(
    /// A payment (the API calls it transaction).
    PaymentId
);
id_type!(
    /// A commission payout to collect what a merchant owes.
    PayoutId
);
id_type!(
    /// A WhatsApp notification.
    NotificationId
);
id_type!(
    /// One delivery of a payment status change to a merchant's webhook endpoint.
    WebhookDeliveryId
);
id_type!(
    /// One of a merchant's webhook endpoints (the first one, from the merchant's original
    /// `webhook_url`, shares the merchant's UUID).
    WebhookEndpointId
);
id_type!(
    /// A refund of (part of) a payment, recorded on the payment's stream.
    RefundId
);
