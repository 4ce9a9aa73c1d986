//! Pure business rules of the LightSpeed ledger.
//!
//! No I/O, no async, no SQL: ids, money, commands, events, deciders and policies. Everything
//! else (storage, HTTP, workers) calls these.

pub mod calendar;
pub mod clock;
pub mod decider;
pub mod ids;
pub mod money;
pub mod provider;
pub mod sealed;

pub use clock::{Clock, ManualClock, SystemClock};
pub use decider::{Decider, DomainEvent, UpcastError, decode, encode};
pub use ids::{GatewayId, MerchantId, NotificationId, PaymentId, PayoutId, WebhookDeliveryId};
pub use money::{BasisPoints, Currency, Paise};
pub use provider::Provider;
pub use sealed::SealedSecret;
