//! Pure business rules of the LightSpeed ledger.
//!
//! No I/O, no async, no SQL, no randomness, no clock reads: ids, money, commands, events,
//! deciders and policies. Every command carries the instant it was decided at (`at`) and every
//! generated value (ids, keys, sealed secrets, jitter); storage, HTTP and workers call these.
//!
//! # Units
//!
//! - Money: [`Paise`] (`i64`, 1 rupee = 100 paise). Never a float: the workspace lints warn on
//!   float arithmetic in this crate, and rates are compared as integer fractions.
//! - Fees: [`BasisPoints`] (350 = 3.50 %, at most 10 000).
//! - Instants: `DateTime<Utc>`; durations in events and settings are whole seconds (`*_secs`),
//!   schedules are `std::time::Duration`.
//! - Months: IST calendar months ([`calendar::IstMonth`]; IST is a fixed UTC+05:30).
//!
//! # Defaults (all configurable per merchant unless said otherwise)
//!
//! | setting | default | where |
//! |---|---|---|
//! | fee | 350 bps (3.50 %) | [`BasisPoints::DEFAULT_FEE`] |
//! | suspend threshold | ₹10,000 | [`standing::Thresholds`] |
//! | warn threshold | ₹5,000 | [`standing::Thresholds`] |
//! | automatic payout minimum | ₹1,000 | [`standing::Thresholds`] |
//! | routing mode | smart | [`checkout_settings::CheckoutSettings`] |
//! | skip temporarily failed gateways | on | [`checkout_settings::CheckoutSettings`] |
//! | default gateway RPM cap | none (a cap is a setting, at most 1 000/min) | [`checkout_settings::CheckoutSettings`] |
//! | temporary failure rest | 5 minutes | [`checkout_settings::CheckoutSettings`] |
//! | webhook secret grace on rotation | 24 hours (at most 7 days) | [`merchant`] |
//! | active gateways per merchant | at most 50 (fixed) | [`merchant::MAX_ACTIVE_GATEWAYS`] |
//! | gateways tried per payment | at most 3 (fixed) | [`payment::MAX_ATTEMPTS`] |
//! | payment amount | ₹0.01 to ₹1,00,00,000 (fixed) | [`payment::MAX_PAYMENT_AMOUNT`] |
//! | low-balance cool-down | 6 hours (fixed) | [`merchant_alerts::LOW_BALANCE_COOL_DOWN`] |
//! | webhook endpoint disabled after failing | 5 days (fixed) | [`webhook_delivery::ENDPOINT_DISABLE_AFTER`] |
//! | retry schedules | see [`retry`] (fixed) | [`retry`] |
//!
//! # Streams and deciders
//!
//! Streams are named `<category>-<id>`. Each aggregate implements [`Decider`]; its state is
//! `Option<Aggregate>` when the stream starts with a creation event, or the aggregate itself
//! when a new stream is meaningful as it is (wallet, merchant alerts).
//!
//! | category | decider | id | what it decides |
//! |---|---|---|---|
//! | `merchant` | [`Merchant`] | [`MerchantId`] | onboarding, keys, fee, thresholds, checkout settings, webhook secret and endpoint, status, active gateways |
//! | `gateway` | [`Gateway`] | [`GatewayId`] | registration, settings, toggle, bookings and releases, temporary failure, retirement |
//! | `payment` | [`Payment`] | [`PaymentId`] | initiation, PSP order, reroute, success with commission, failure, late success, refunds and what is left to refund |
//! | `wallet` | [`Wallet`] | [`MerchantId`] | commission accrued and reversed by refunds, payouts, payout reversals, manual settlement |
//! | `merchant_alerts` | [`MerchantAlerts`] | [`MerchantId`] | `LOW_BALANCE` alerts and their 6-hour cool-down |
//! | `notification` | [`Notification`] | [`NotificationId`] | WhatsApp message attempts |
//! | `webhook_delivery` | [`WebhookDelivery`] | [`WebhookDeliveryId`] | merchant webhook attempts |
//! | `queue` | [`queue::Queue`] | queue name | ops' pause and resume, and the retries and drains ops ran |
//! | `ops_alert` | [`ops_alert::OpsAlert`] | condition key | ops alerts: raised once while they hold, resolved after |
//! | `person` | [`person::Person`] | email ([`person::PersonEmail::stream_key`]) | the people who run the business: invitation, role, removal, revoked tokens and sessions |
//! | `quota` | [`quota::MerchantQuota`] | [`MerchantId`] | a merchant's quota caps (payments and paise a day and a month, IST) |
//! | `quota_usage` | [`quota::QuotaUsage`] | `<MerchantId>.<YYYY-MM>` | what a merchant used of its caps in one IST month, and the 80 % / 100 % thresholds reached |
//!
//! Some commands span streams; the event store appends their events atomically:
//!
//! | operation | appends |
//! |---|---|
//! | register a gateway | `merchant`: `MerchantGatewayAttached` + `gateway`: `GatewayRegistered` |
//! | retire a gateway | `gateway`: `GatewayRetired` + `merchant`: `MerchantGatewayDetached` |
//! | initiate a payment | `gateway`: `GatewayBooked` + `payment`: `PaymentInitiated` |
//! | reroute a payment | `payment`: `PaymentRerouted` + old `gateway`: `GatewayBookingReleased` + new `gateway`: `GatewayBooked` |
//! | payment fails | `payment`: `PaymentFailed` + `gateway`: `GatewayBookingReleased` |
//! | payment succeeds | `payment`: `PaymentSucceeded` + `wallet`: `CommissionAccrued` (+ `gateway`: `GatewayBooked` with `late_success` when it follows a failure) |
//! | request a refund | `merchant_refund`: `MerchantRefundClaimed` + `payment`: `RefundRequested` (at the version decided on) |
//! | a refund succeeds | `payment`: `PaymentRefunded` (+ `wallet`: `CommissionReversed` under `reverse_proportional`) |
//! | low balance | `merchant_alerts`: `LowBalanceAlertRaised` + `notification`: `NotificationQueued` |
//! | initiate a payment with quota caps | the above + `quota_usage`: `QuotaUsed` (+ `QuotaThresholdReached` + `notification`: `NotificationQueued`) |
//!
//! # Rules chosen
//!
//! - **Commission** = amount × fee / 10 000, rounded half-up, in integers ([`BasisPoints::of`]),
//!   decided once when a payment succeeds, with the fee carried in `PaymentInitiated` (the fee
//!   in force at initiation), and recorded in both `PaymentSucceeded` and `CommissionAccrued`.
//!   A fee change never rewrites past commission.
//! - **Exactly one commission per successful payment**: the payment refuses a second success
//!   (`AlreadySucceeded`); a success after a failure (late success) is accepted once.
//! - **Refunds** are requests on the payment's stream, so two racing refunds can never together
//!   exceed the amount ([`payment::refunds`]). The commission is retained by default (the
//!   payment was processed); a merchant set to `reverse_proportional` gets the commission's
//!   half-up share of each succeeded refund back as a `CommissionReversed` wallet event, never
//!   more than the payment accrued. Refunds do not touch the gateway's volume.
//! - **Suspension**: a merchant whose balance due is at least its suspend threshold, or whose
//!   status is suspended or closed, cannot start payments ([`payment::admit`]); at the warn
//!   threshold the merchant is warned ([`standing::standing`]).
//! - **Gateway volume**: bookings in the current IST month not released; see [`gateway`].
//! - **Routing**: see [`routing`]; eligibility is shared with booking.
//! - **Idempotency**: a command asking for the state an aggregate is already in (toggle on when
//!   on, suspend when suspended) decides no events. A repeated or stale *fact* (second success,
//!   a refund id already recorded, a payout update after its terminal state) is refused with a
//!   typed error whose `is_already_recorded()` is true; callers acknowledge it as a no-op.
//! - **Secrets** are only ever [`SealedSecret`]s (client salt, webhook secrets, gateway
//!   credentials); `client_key` is a public identifier.

#![warn(clippy::float_arithmetic)]

#[macro_use]
mod macros;

pub mod access;
pub mod calendar;
pub mod catalog;
pub mod checkout_settings;
pub mod claims;
pub mod clock;
pub mod decider;
pub mod gateway;
pub mod ids;
pub mod invoice;
pub mod merchant;
pub mod merchant_alerts;
pub mod money;
pub mod notification;
pub mod ops_alert;
pub mod payment;
pub mod person;
pub mod provider;
pub mod psp_outcome;
pub mod queue;
pub mod quota;
pub mod retry;
pub mod routing;
pub mod sealed;
pub mod standing;
pub mod validation;
pub mod wallet;
pub mod webhook_delivery;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod testing;

pub use clock::{Clock, ManualClock, SystemClock};
pub use decider::{Decider, DomainEvent, UpcastError, decode, decode_raw, encode};
pub use gateway::Gateway;
pub use ids::{
    GatewayId, MerchantId, NotificationId, PaymentId, PayoutId, RefundId, WebhookDeliveryId,
    WebhookEndpointId,
};
pub use merchant::Merchant;
pub use merchant_alerts::MerchantAlerts;
pub use money::{BasisPoints, Currency, Paise};
pub use notification::Notification;
pub use payment::Payment;
pub use provider::Provider;
pub use sealed::SealedSecret;
pub use validation::FieldError;
pub use wallet::Wallet;
pub use webhook_delivery::WebhookDelivery;
