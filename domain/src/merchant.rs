//! Merchant (the seeds call it client): the business that calls the payment API.
//!
//! Stream `merchant-<MerchantId>`. Holds the merchant's public key (`client_key`) and sealed
//! salt, company name, webhook URL and sealed webhook secret, fee, thresholds, checkout settings,
//! WhatsApp contact and opt-ins, email contact and opt-ins, status, whether the webhook endpoint is disabled, and which
//! gateways are active (attached and not retired), at most [`MAX_ACTIVE_GATEWAYS`].
//!
//! Rules:
//! - Key rotation replaces the key and salt: the state keeps only the current pair, so old
//!   credentials are invalid from the rotation event on.
//! - A fee or threshold change applies to what happens after it: each payment carries the fee in
//!   force at its initiation and its commission is decided once, so history is never rewritten.
//! - Webhook secret rotation keeps the previous secret valid for a grace period (default 24 h,
//!   at most 7 days); only one previous secret is kept, so a second rotation within the grace
//!   period ends the first one's grace at once.
//! - Suspension here is the manual status set by ops. Suspension for unpaid commission is not
//!   recorded: it is derived from the wallet's balance due at the moment of each payment
//!   ([`standing`](crate::standing)), so it lifts by itself once the balance is paid.
//! - Closed is terminal: only detaching gateways and resealing secrets (encryption key rotation)
//!   are still accepted.
//! - Resealing replaces the sealed blobs of the salt and webhook secrets with the same secrets
//!   sealed under another key; it changes no secret and no grace period, so it is its own event
//!   (`MerchantSecretsResealed`) and never a rotation.
//! - A merchant may have its own payment API rate (requests per minute); without one the API's
//!   default applies.
//! - What a refund does to the commission ([`RefundCommission`]) is a setting: retained unless
//!   changed; each refund takes the setting in force when it is requested.
//! - Webhooks go to up to [`MAX_WEBHOOK_ENDPOINTS`] endpoints, each with its own filter and
//!   secret ([`endpoints`]); the original `webhook_url` is the first of them.

use crate::calendar;
use crate::checkout_settings::CheckoutSettings;
use crate::decider::Decider;
use crate::ids::{GatewayId, MerchantId};
use crate::money::{BasisPoints, Paise};
use crate::notification::{Channel, NotificationType};
use crate::payment::MerchantSnapshot;
use crate::payment::refunds::RefundCommission;
use crate::sealed::SealedSecret;
use crate::validation::{self, FieldError, Problem};
use crate::webhook_delivery::{EndpointHealth, endpoint_health};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use crate::standing::{MerchantStatus, Thresholds};

mod endpoint_decisions;
pub mod endpoints;

use crate::ids::WebhookEndpointId;
pub use endpoints::{
    EndpointChanges, EventFilter, MAX_WEBHOOK_ENDPOINTS, ResealedEndpointSecrets, WebhookEndpoint,
    first_endpoint_id,
};

/// Most gateways a merchant may have active (registered and not retired) at once.
pub const MAX_ACTIVE_GATEWAYS: usize = 50;

/// Default grace period during which the previous webhook secret still verifies: 24 hours.
pub const DEFAULT_WEBHOOK_SECRET_GRACE_SECS: u64 = 24 * 3600;

/// Longest grace period for a previous webhook secret: 7 days.
pub const MAX_WEBHOOK_SECRET_GRACE_SECS: u64 = 7 * 24 * 3600;

/// Longest company name, in characters.
pub const MAX_COMPANY_NAME_CHARS: usize = 200;

/// Longest suspension or closure reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Highest per-merchant payment API rate an admin may set, in requests per minute.
pub const MAX_API_RATE_PER_MINUTE: u32 = 60_000;

/// A merchant's public API key id: `ck_` then 16 to 64 ASCII letters or digits.
///
/// Public (it names the merchant in signed requests); the matching salt is a [`SealedSecret`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientKey(String);

impl ClientKey {
    /// The prefix every client key starts with.
    pub const PREFIX: &'static str = "ck_";

    /// Accepts `ck_` followed by 16 to 64 ASCII letters or digits.
    pub fn parse(value: &str) -> Result<ClientKey, FieldError> {
        let body = value.strip_prefix(Self::PREFIX).ok_or(
            Problem::BadCharacters {
                allowed: "ck_ then letters and digits",
            }
            .at("client_key"),
        )?;
        if !(16..=64).contains(&body.len()) {
            return Err(Problem::OutOfRange { min: 16, max: 64 }.at("client_key"));
        }
        validation::token(
            "client_key",
            body,
            64,
            |c| c.is_ascii_alphanumeric(),
            "ck_ then letters and digits",
        )?;
        Ok(ClientKey(value.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which WhatsApp notifications a merchant agreed to receive. Consent is explicit: all off by
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WhatsappOptIns {
    /// `LOW_BALANCE` alerts.
    pub low_balance: bool,
    /// `TXN_UPDATE` messages.
    pub transaction_updates: bool,
    /// `PAYOUT_UPDATE` messages.
    pub payout_updates: bool,
    /// `ACCOUNT_STATUS` messages (suspension, reinstatement, quota thresholds).
    pub account_status: bool,
    /// `INVOICE` messages (the month's invoice was issued; the PDF goes by email).
    #[serde(default)]
    pub invoices: bool,
}

impl WhatsappOptIns {
    /// Whether the merchant agreed to this kind of notification.
    pub fn allows(&self, kind: NotificationType) -> bool {
        match kind {
            NotificationType::LowBalance => self.low_balance,
            NotificationType::TxnUpdate => self.transaction_updates,
            NotificationType::PayoutUpdate => self.payout_updates,
            NotificationType::AccountStatus => self.account_status,
            NotificationType::Invoice => self.invoices,
        }
    }
}

/// Which email messages a merchant agreed to receive. Consent is explicit: all off by default.
/// Invoices are mailed to the invoice address instead ([`crate::invoice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EmailOptIns {
    /// `LOW_BALANCE` alerts.
    pub low_balance: bool,
    /// `PAYOUT_UPDATE` messages (payout sent, payout failed).
    pub payout_updates: bool,
    /// `ACCOUNT_STATUS` messages (suspension, reinstatement, quota thresholds).
    pub account_status: bool,
}

impl EmailOptIns {
    /// Whether the merchant agreed to this kind of email.
    pub fn allows(&self, kind: NotificationType) -> bool {
        match kind {
            NotificationType::LowBalance => self.low_balance,
            NotificationType::PayoutUpdate => self.payout_updates,
            NotificationType::AccountStatus => self.account_status,
            NotificationType::TxnUpdate | NotificationType::Invoice => false,
        }
    }
}

/// Where and what a merchant receives by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailContact {
    /// One address, e.g. `ops@acme.example` (trimmed).
    pub address: String,
    /// What they agreed to receive.
    pub opt_ins: EmailOptIns,
}

impl EmailContact {
    fn normalised(&self) -> Result<EmailContact, FieldError> {
        Ok(EmailContact {
            address: validation::email("email", &self.address)?,
            opt_ins: self.opt_ins,
        })
    }
}

/// Where and what a merchant receives on WhatsApp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsappContact {
    /// International format, digits only, e.g. `919867800451` (a leading `+` is accepted and dropped).
    pub number: String,
    /// What they agreed to receive.
    pub opt_ins: WhatsappOptIns,
}

impl WhatsappContact {
    fn normalised(&self) -> Result<WhatsappContact, FieldError> {
        Ok(WhatsappContact {
            number: validation::phone("whatsapp_number", &self.number)?,
            opt_ins: self.opt_ins,
        })
    }
}

/// A webhook secret that stays valid for a while after rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousWebhookSecret {
    /// The replaced secret.
    pub secret: SealedSecret,
    /// The end of its grace period (exclusive).
    pub valid_until: DateTime<Utc>,
}

/// A merchant as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    id: MerchantId,
    company_name: String,
    webhook_url: Option<String>,
    whatsapp: Option<WhatsappContact>,
    #[serde(default)]
    email: Option<EmailContact>,
    status: MerchantStatus,
    client_key: ClientKey,
    client_salt: SealedSecret,
    keys_rotated_at: Option<DateTime<Utc>>,
    fee: BasisPoints,
    thresholds: Thresholds,
    checkout: CheckoutSettings,
    webhook_secret: SealedSecret,
    previous_webhook_secret: Option<PreviousWebhookSecret>,
    webhook_endpoint_disabled_at: Option<DateTime<Utc>>,
    active_gateways: BTreeSet<GatewayId>,
    api_rate_per_minute: Option<u32>,
    refund_commission: RefundCommission,
    onboarded_at: DateTime<Utc>,
    endpoints: Vec<WebhookEndpoint>,
}

impl Merchant {
    /// The merchant's id.
    pub fn id(&self) -> MerchantId {
        self.id
    }

    /// The email contact and opt-ins, if any.
    pub fn email(&self) -> Option<&EmailContact> {
        self.email.as_ref()
    }

    /// The address to email a notification of `kind` to, if the merchant opted in to it.
    pub fn email_recipient_for(&self, kind: NotificationType) -> Option<&str> {
        self.email
            .as_ref()
            .filter(|contact| contact.opt_ins.allows(kind))
            .map(|contact| contact.address.as_str())
    }

    /// Every channel and recipient a notification of `kind` goes to: WhatsApp first, then email.
    pub fn recipients_for(&self, kind: NotificationType) -> Vec<(Channel, &str)> {
        let whatsapp = self
            .whatsapp_recipient_for(kind)
            .map(|number| (Channel::Whatsapp, number));
        let email = self
            .email_recipient_for(kind)
            .map(|address| (Channel::Email, address));
        whatsapp.into_iter().chain(email).collect()
    }

    /// Registered company name.
    pub fn company_name(&self) -> &str {
        &self.company_name
    }

    /// Where payment webhooks are delivered, if configured.
    pub fn webhook_url(&self) -> Option<&str> {
        self.webhook_url.as_deref()
    }

    /// WhatsApp contact and opt-ins, if given.
    pub fn whatsapp(&self) -> Option<&WhatsappContact> {
        self.whatsapp.as_ref()
    }

    /// The number to send a notification of `kind` to, if the merchant opted in to it.
    pub fn whatsapp_recipient_for(&self, kind: NotificationType) -> Option<&str> {
        self.whatsapp
            .as_ref()
            .filter(|contact| contact.opt_ins.allows(kind))
            .map(|contact| contact.number.as_str())
    }

    /// Active, suspended or closed.
    pub fn status(&self) -> MerchantStatus {
        self.status
    }

    /// The current public key; any other key is invalid.
    pub fn client_key(&self) -> &ClientKey {
        &self.client_key
    }

    /// The current sealed salt for request signatures.
    pub fn client_salt(&self) -> &SealedSecret {
        &self.client_salt
    }

    /// When the keys were last rotated (`None` if never).
    pub fn keys_rotated_at(&self) -> Option<DateTime<Utc>> {
        self.keys_rotated_at
    }

    /// Whether `key` is the merchant's current public key.
    pub fn accepts_client_key(&self, key: &str) -> bool {
        self.client_key.as_str() == key
    }

    /// The fee for payments initiated from now on.
    pub fn fee(&self) -> BasisPoints {
        self.fee
    }

    /// Suspend, warn and automatic payout thresholds.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Routing mode, skipping of failed gateways, default RPM cap, rest after failure.
    pub fn checkout(&self) -> &CheckoutSettings {
        &self.checkout
    }

    /// The current sealed webhook secret (sign with this one).
    pub fn webhook_secret(&self) -> &SealedSecret {
        &self.webhook_secret
    }

    /// The replaced webhook secret and its grace deadline, if one was ever rotated out.
    pub fn previous_webhook_secret(&self) -> Option<&PreviousWebhookSecret> {
        self.previous_webhook_secret.as_ref()
    }

    /// The webhook secrets valid at `at`: the current one first, then the previous one while its
    /// grace period lasts.
    pub fn webhook_secrets_valid_at(&self, at: DateTime<Utc>) -> Vec<&SealedSecret> {
        let previous = self
            .previous_webhook_secret
            .as_ref()
            .filter(|previous| at < previous.valid_until);
        std::iter::once(&self.webhook_secret)
            .chain(previous.map(|previous| &previous.secret))
            .collect()
    }

    /// Whether webhooks are currently delivered (a URL is set and the endpoint is not disabled).
    pub fn webhook_endpoint_enabled(&self) -> bool {
        self.webhook_url.is_some() && self.webhook_endpoint_disabled_at.is_none()
    }

    /// When the endpoint was disabled for failing, if it is.
    pub fn webhook_endpoint_disabled_at(&self) -> Option<DateTime<Utc>> {
        self.webhook_endpoint_disabled_at
    }

    /// Gateways attached and not retired.
    pub fn active_gateways(&self) -> &BTreeSet<GatewayId> {
        &self.active_gateways
    }

    /// The merchant's own payment API rate in requests per minute (`None`: the API's default).
    pub fn api_rate_per_minute(&self) -> Option<u32> {
        self.api_rate_per_minute
    }

    /// What a refund does to the commission of its payment.
    pub fn refund_commission(&self) -> RefundCommission {
        self.refund_commission
    }

    /// When the merchant was onboarded.
    pub fn onboarded_at(&self) -> DateTime<Utc> {
        self.onboarded_at
    }

    /// The webhook endpoints, the first one (from the original `webhook_url`) first, then in
    /// the order they were added.
    pub fn webhook_endpoints(&self) -> &[WebhookEndpoint] {
        &self.endpoints
    }

    /// One webhook endpoint by id.
    pub fn webhook_endpoint(&self, endpoint_id: WebhookEndpointId) -> Option<&WebhookEndpoint> {
        self.endpoints
            .iter()
            .find(|endpoint| endpoint.id == endpoint_id)
    }

    /// The endpoints that receive an event of `event_type` now.
    pub fn webhook_endpoints_for(
        &self,
        event_type: &str,
    ) -> impl Iterator<Item = &WebhookEndpoint> {
        self.endpoints
            .iter()
            .filter(move |endpoint| endpoint.wants(event_type))
    }

    /// What the payment decider needs to know about the merchant, with its wallet's balance due.
    pub fn snapshot(&self, balance_due: Paise) -> MerchantSnapshot {
        MerchantSnapshot {
            merchant_id: self.id,
            status: self.status,
            fee: self.fee,
            thresholds: self.thresholds,
            balance_due,
        }
    }

    /// Whether a new payment would be accepted given the wallet's balance due: the merchant is
    /// active and the balance due is below the suspend threshold.
    pub fn is_accepting_payments(&self, balance_due: Paise) -> bool {
        crate::payment::admit(&self.snapshot(balance_due)).is_ok()
    }
}

/// Everything needed to onboard a merchant. Keys and secrets are generated (and sealed) by the
/// caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardMerchant {
    /// The new merchant's id.
    pub merchant_id: MerchantId,
    /// Registered company name.
    pub company_name: String,
    /// Where payment webhooks go, if the merchant wants them.
    pub webhook_url: Option<String>,
    /// WhatsApp contact and opt-ins, if given.
    pub whatsapp: Option<WhatsappContact>,
    /// Generated public key.
    pub client_key: ClientKey,
    /// Generated salt, sealed.
    pub client_salt: SealedSecret,
    /// Generated `whsec_…` webhook secret, sealed.
    pub webhook_secret: SealedSecret,
    /// Fee (default [`BasisPoints::DEFAULT_FEE`]).
    pub fee: BasisPoints,
    /// Thresholds (default [`Thresholds::default`]).
    pub thresholds: Thresholds,
    /// Checkout settings (default [`CheckoutSettings::default`]).
    pub checkout: CheckoutSettings,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

/// What can be asked of a merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MerchantCommand {
    /// Onboards a new merchant.
    Onboard(OnboardMerchant),
    /// Changes company name and webhook URL; a new URL re-enables a disabled endpoint.
    UpdateProfile {
        /// Company name.
        company_name: String,
        /// Webhook URL, or `None` to stop webhooks.
        webhook_url: Option<String>,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Sets or removes the WhatsApp contact and opt-ins.
    ChangeWhatsappContact {
        /// The contact, or `None` to stop all WhatsApp messages.
        contact: Option<WhatsappContact>,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Sets or removes the email contact and opt-ins.
    ChangeEmailContact {
        /// The contact, or `None` to stop all email messages.
        contact: Option<EmailContact>,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Replaces the public key and salt; the old pair is invalid from this event on.
    RotateKeys {
        /// New public key.
        client_key: ClientKey,
        /// New salt, sealed.
        client_salt: SealedSecret,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Changes the fee for payments initiated from now on.
    ChangeFee {
        /// The new fee (at most 100 %).
        fee: BasisPoints,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Changes the suspend, warn and automatic payout thresholds.
    ChangeThresholds {
        /// The new thresholds.
        thresholds: Thresholds,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Changes routing mode, skipping of failed gateways, default RPM cap and rest after failure.
    ChangeCheckoutSettings {
        /// The new settings.
        settings: CheckoutSettings,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Replaces the webhook secret; the old one stays valid for `grace_secs`.
    RotateWebhookSecret {
        /// New `whsec_…` secret, sealed.
        secret: SealedSecret,
        /// Grace period of the old secret, in seconds (see [`DEFAULT_WEBHOOK_SECRET_GRACE_SECS`]).
        grace_secs: u64,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Disables the webhook endpoint after it failed continuously for 5 days.
    DisableWebhookEndpoint {
        /// Since when every delivery attempt has failed.
        failing_since: DateTime<Utc>,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Re-enables a disabled webhook endpoint.
    EnableWebhookEndpoint {
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Counts a newly registered gateway as active (appended atomically with `GatewayRegistered`).
    AttachGateway {
        /// The gateway.
        gateway_id: GatewayId,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Stops counting a retired gateway (appended atomically with `GatewayRetired`).
    DetachGateway {
        /// The gateway.
        gateway_id: GatewayId,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Suspends the merchant (ops).
    Suspend {
        /// Why.
        reason: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Lifts a suspension.
    Reactivate {
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Closes the merchant for good.
    Close {
        /// Why.
        reason: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Sets the merchant's own payment API rate, or `None` to use the API's default.
    ChangeApiRateLimit {
        /// Requests per minute, 1 to [`MAX_API_RATE_PER_MINUTE`].
        per_minute: Option<u32>,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Sets what refunds do to the commission of their payments.
    ChangeRefundCommission {
        /// The treatment for refunds requested from now on.
        policy: RefundCommission,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Adds a webhook endpoint (at most [`MAX_WEBHOOK_ENDPOINTS`]).
    AddWebhookEndpoint {
        /// The new endpoint's id.
        endpoint_id: WebhookEndpointId,
        /// Where events go.
        url: String,
        /// The merchant's note.
        description: String,
        /// Event-type filter entries.
        event_types: Vec<String>,
        /// Its generated `whsec_…` secret, sealed.
        secret: SealedSecret,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Changes an endpoint's URL, description, enabled flag or filter.
    UpdateWebhookEndpoint {
        /// The endpoint.
        endpoint_id: WebhookEndpointId,
        /// What changes.
        changes: EndpointChanges,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Removes an endpoint.
    RemoveWebhookEndpoint {
        /// The endpoint.
        endpoint_id: WebhookEndpointId,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Replaces an endpoint's secret; the old one stays valid for `grace_secs`.
    RotateWebhookEndpointSecret {
        /// The endpoint.
        endpoint_id: WebhookEndpointId,
        /// New `whsec_…` secret, sealed.
        secret: SealedSecret,
        /// Grace period of the old secret, at most [`MAX_WEBHOOK_SECRET_GRACE_SECS`].
        grace_secs: u64,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Disables an endpoint after it failed continuously for 5 days.
    DisableFailingWebhookEndpoint {
        /// The endpoint.
        endpoint_id: WebhookEndpointId,
        /// Since when every attempt to it has failed.
        failing_since: DateTime<Utc>,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records the same secrets sealed under another encryption key (key rotation).
    ResealSecrets {
        /// The client salt, resealed.
        client_salt: SealedSecret,
        /// The current webhook secret, resealed.
        webhook_secret: SealedSecret,
        /// The previous webhook secret, resealed; given exactly when the merchant has one.
        previous_webhook_secret: Option<SealedSecret>,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records the secrets of endpoints other than the first sealed under another encryption
    /// key (key rotation; the first endpoint's are resealed by [`MerchantCommand::ResealSecrets`]).
    ResealWebhookEndpointSecrets {
        /// Each endpoint's secrets, resealed.
        endpoints: Vec<ResealedEndpointSecrets>,
        /// When it is decided.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What a merchant stream records.
    pub enum MerchantEvent {
        /// A merchant was onboarded.
        MerchantOnboarded {
            /// The merchant's id.
            merchant_id: MerchantId,
            /// Company name.
            company_name: String,
            /// Webhook URL.
            webhook_url: Option<String>,
            /// WhatsApp contact and opt-ins.
            whatsapp: Option<WhatsappContact>,
            /// Public key.
            client_key: ClientKey,
            /// Sealed salt.
            client_salt: SealedSecret,
            /// Sealed webhook secret.
            webhook_secret: SealedSecret,
            /// Fee.
            fee: BasisPoints,
            /// Thresholds.
            thresholds: Thresholds,
            /// Checkout settings.
            checkout: CheckoutSettings,
            /// When.
            at: DateTime<Utc>,
        },
        /// Company name or webhook URL changed.
        MerchantProfileUpdated {
            /// Company name.
            company_name: String,
            /// Webhook URL.
            webhook_url: Option<String>,
            /// When.
            at: DateTime<Utc>,
        },
        /// The WhatsApp contact or opt-ins changed.
        MerchantWhatsappContactChanged {
            /// The new contact, or none.
            contact: Option<WhatsappContact>,
            /// When.
            at: DateTime<Utc>,
        },
        /// Public key and salt replaced; the old pair is invalid from here on.
        MerchantKeysRotated {
            /// New public key.
            client_key: ClientKey,
            /// New sealed salt.
            client_salt: SealedSecret,
            /// When.
            at: DateTime<Utc>,
        },
        /// The fee for future payments changed.
        MerchantFeeChanged {
            /// Fee before.
            from: BasisPoints,
            /// Fee from now on.
            to: BasisPoints,
            /// When.
            at: DateTime<Utc>,
        },
        /// Thresholds changed.
        MerchantThresholdsChanged {
            /// The new thresholds.
            thresholds: Thresholds,
            /// When.
            at: DateTime<Utc>,
        },
        /// Checkout settings changed.
        MerchantCheckoutSettingsChanged {
            /// The new settings.
            settings: CheckoutSettings,
            /// When.
            at: DateTime<Utc>,
        },
        /// The webhook secret was replaced; the previous one verifies until `previous_valid_until`.
        MerchantWebhookSecretRotated {
            /// New sealed secret.
            secret: SealedSecret,
            /// End of the previous secret's grace period.
            previous_valid_until: DateTime<Utc>,
            /// When.
            at: DateTime<Utc>,
        },
        /// The webhook endpoint was disabled after failing continuously.
        MerchantWebhookEndpointDisabled {
            /// Since when it failed.
            failing_since: DateTime<Utc>,
            /// When.
            at: DateTime<Utc>,
        },
        /// The webhook endpoint was re-enabled.
        MerchantWebhookEndpointEnabled {
            /// When.
            at: DateTime<Utc>,
        },
        /// A gateway became active for the merchant.
        MerchantGatewayAttached {
            /// The gateway.
            gateway_id: GatewayId,
            /// When.
            at: DateTime<Utc>,
        },
        /// A gateway stopped being active (retired).
        MerchantGatewayDetached {
            /// The gateway.
            gateway_id: GatewayId,
            /// When.
            at: DateTime<Utc>,
        },
        /// Ops suspended the merchant.
        MerchantSuspended {
            /// Why.
            reason: String,
            /// When.
            at: DateTime<Utc>,
        },
        /// A suspension was lifted.
        MerchantReactivated {
            /// When.
            at: DateTime<Utc>,
        },
        /// The merchant was closed for good.
        MerchantClosed {
            /// Why.
            reason: String,
            /// When.
            at: DateTime<Utc>,
        },
        /// The merchant's own payment API rate changed (`None`: the API's default).
        MerchantApiRateLimitChanged {
            /// Requests per minute.
            per_minute: Option<u32>,
            /// When.
            at: DateTime<Utc>,
        },
        /// What refunds do to the commission changed (for refunds requested from now on).
        MerchantRefundCommissionChanged {
            /// The treatment before.
            from: RefundCommission,
            /// The treatment from now on.
            to: RefundCommission,
            /// When.
            at: DateTime<Utc>,
        },
        /// A webhook endpoint was added.
        WebhookEndpointAdded {
            /// The endpoint.
            endpoint_id: WebhookEndpointId,
            /// Where events go.
            url: String,
            /// The merchant's note.
            description: String,
            /// Event-type filter.
            event_types: EventFilter,
            /// Its sealed secret.
            secret: SealedSecret,
            /// When.
            at: DateTime<Utc>,
        },
        /// A webhook endpoint's settings changed (all of them, as they now are).
        WebhookEndpointUpdated {
            /// The endpoint.
            endpoint_id: WebhookEndpointId,
            /// Where events go.
            url: String,
            /// The merchant's note.
            description: String,
            /// Whether the merchant wants it to receive events.
            enabled: bool,
            /// Event-type filter.
            event_types: EventFilter,
            /// When.
            at: DateTime<Utc>,
        },
        /// A webhook endpoint was removed.
        WebhookEndpointRemoved {
            /// The endpoint.
            endpoint_id: WebhookEndpointId,
            /// When.
            at: DateTime<Utc>,
        },
        /// An endpoint's secret was replaced; the previous one verifies until `previous_valid_until`.
        WebhookEndpointSecretRotated {
            /// The endpoint.
            endpoint_id: WebhookEndpointId,
            /// New sealed secret.
            secret: SealedSecret,
            /// End of the previous secret's grace period.
            previous_valid_until: DateTime<Utc>,
            /// When.
            at: DateTime<Utc>,
        },
        /// An endpoint was disabled after failing continuously.
        WebhookEndpointDisabled {
            /// The endpoint.
            endpoint_id: WebhookEndpointId,
            /// Since when it failed.
            failing_since: DateTime<Utc>,
            /// When.
            at: DateTime<Utc>,
        },
        /// An endpoint disabled for failing was enabled again.
        WebhookEndpointEnabled {
            /// The endpoint.
            endpoint_id: WebhookEndpointId,
            /// When.
            at: DateTime<Utc>,
        },
        /// The same secrets were sealed again under another encryption key.
        MerchantSecretsResealed {
            /// The client salt, resealed.
            client_salt: SealedSecret,
            /// The current webhook secret, resealed.
            webhook_secret: SealedSecret,
            /// The previous webhook secret, resealed (its grace period is unchanged).
            previous_webhook_secret: Option<SealedSecret>,
            /// When.
            at: DateTime<Utc>,
        },
        /// An endpoint's secrets were sealed again under another encryption key.
        WebhookEndpointSecretResealed {
            /// The endpoint.
            endpoint_id: WebhookEndpointId,
            /// The current secret, resealed.
            secret: SealedSecret,
            /// The previous secret, resealed (its grace period is unchanged).
            previous_secret: Option<SealedSecret>,
            /// When.
            at: DateTime<Utc>,
        },
        /// The email contact or opt-ins changed.
        MerchantEmailContactChanged {
            /// The new contact, or none.
            contact: Option<EmailContact>,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why a merchant command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerchantError {
    /// The stream has no `MerchantOnboarded` yet.
    #[error("merchant not onboarded")]
    NotOnboarded,
    /// `Onboard` on an existing merchant.
    #[error("merchant already onboarded")]
    AlreadyOnboarded,
    /// The merchant is closed.
    #[error("merchant is closed")]
    Closed,
    /// A field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The merchant already has [`MAX_ACTIVE_GATEWAYS`] active gateways.
    #[error("merchant already has {limit} active gateways")]
    TooManyGateways {
        /// The limit.
        limit: usize,
    },
    /// A key rotation must issue a new key; the current one was given again.
    #[error("the new client key equals the current one")]
    ClientKeyNotNew,
    /// A reseal must cover exactly the secrets the merchant holds: a previous webhook secret was
    /// given without one to replace, or left out while one exists.
    #[error("a reseal must include the previous webhook secret exactly when the merchant has one")]
    PreviousSecretMismatch,
    /// The first endpoint's secrets are the merchant's webhook secrets, resealed with them by
    /// [`MerchantCommand::ResealSecrets`], not as an endpoint of their own.
    #[error("the first webhook endpoint's secrets are resealed with the merchant's secrets")]
    FirstEndpointResealedApart,
    /// The merchant already has [`MAX_WEBHOOK_ENDPOINTS`] webhook endpoints.
    #[error("merchant already has {limit} webhook endpoints")]
    TooManyWebhookEndpoints {
        /// The limit.
        limit: usize,
    },
    /// No webhook endpoint with this id.
    #[error("unknown webhook endpoint {0}")]
    UnknownWebhookEndpoint(WebhookEndpointId),
    /// An endpoint with this id already exists.
    #[error("webhook endpoint {0} already exists")]
    WebhookEndpointExists(WebhookEndpointId),
    /// The endpoint has not failed long enough to be disabled.
    #[error("webhook endpoint has not failed long enough to be disabled (from {disable_from})")]
    EndpointNotFailingLongEnough {
        /// When it may be disabled if it keeps failing.
        disable_from: DateTime<Utc>,
    },
}

impl Decider for Merchant {
    const CATEGORY: &'static str = "merchant";
    type State = Option<Merchant>;
    type Command = MerchantCommand;
    type Event = MerchantEvent;
    type Error = MerchantError;

    fn decide(
        state: &Option<Merchant>,
        command: &MerchantCommand,
    ) -> Result<Vec<MerchantEvent>, MerchantError> {
        let merchant = match (state, command) {
            (None, MerchantCommand::Onboard(onboard)) => return onboard_merchant(onboard),
            (Some(_), MerchantCommand::Onboard(_)) => return Err(MerchantError::AlreadyOnboarded),
            (None, _) => return Err(MerchantError::NotOnboarded),
            (Some(merchant), _) => merchant,
        };
        if merchant.status == MerchantStatus::Closed
            && !matches!(
                command,
                MerchantCommand::DetachGateway { .. }
                    | MerchantCommand::ResealSecrets { .. }
                    | MerchantCommand::ResealWebhookEndpointSecrets { .. }
            )
        {
            return Err(MerchantError::Closed);
        }
        decide_for(merchant, command)
    }

    fn evolve(state: Option<Merchant>, event: &MerchantEvent) -> Option<Merchant> {
        match state {
            Some(merchant) => merchant.apply(event),
            // Events before the onboarding describe no merchant yet.
            None => Merchant::onboarded(event),
        }
    }
}

impl Merchant {
    /// The merchant an onboarding event starts; `None` for any other event.
    fn onboarded(event: &MerchantEvent) -> Option<Merchant> {
        let MerchantEvent::MerchantOnboarded {
            merchant_id,
            company_name,
            webhook_url,
            whatsapp,
            client_key,
            client_salt,
            webhook_secret,
            fee,
            thresholds,
            checkout,
            at,
        } = event
        else {
            return None;
        };
        Some(
            Merchant {
                id: *merchant_id,
                company_name: company_name.clone(),
                webhook_url: webhook_url.clone(),
                whatsapp: whatsapp.clone(),
                email: None,
                status: MerchantStatus::Active,
                client_key: client_key.clone(),
                client_salt: client_salt.clone(),
                keys_rotated_at: None,
                fee: *fee,
                thresholds: *thresholds,
                checkout: *checkout,
                webhook_secret: webhook_secret.clone(),
                previous_webhook_secret: None,
                webhook_endpoint_disabled_at: None,
                active_gateways: BTreeSet::new(),
                api_rate_per_minute: None,
                refund_commission: RefundCommission::default(),
                onboarded_at: *at,
                endpoints: Vec::new(),
            }
            .with_first_endpoint(webhook_url.as_deref(), *at),
        )
    }

    /// The merchant after `event`; an onboarding event starts it afresh.
    fn apply(mut self, event: &MerchantEvent) -> Option<Merchant> {
        match event {
            MerchantEvent::MerchantOnboarded { .. } => return Merchant::onboarded(event),
            MerchantEvent::MerchantProfileUpdated {
                company_name,
                webhook_url,
                at,
            } => self.update_profile(company_name, webhook_url.as_deref(), *at),
            MerchantEvent::MerchantWhatsappContactChanged { contact, .. } => {
                self.whatsapp = contact.clone()
            }
            MerchantEvent::MerchantEmailContactChanged { contact, .. } => {
                self.email = contact.clone()
            }
            MerchantEvent::MerchantKeysRotated {
                client_key,
                client_salt,
                at,
            } => self.rotate_keys(client_key, client_salt, *at),
            MerchantEvent::MerchantFeeChanged { to, .. } => self.fee = *to,
            MerchantEvent::MerchantThresholdsChanged { thresholds, .. } => {
                self.thresholds = *thresholds
            }
            MerchantEvent::MerchantCheckoutSettingsChanged { settings, .. } => {
                self.checkout = *settings
            }
            MerchantEvent::MerchantWebhookSecretRotated {
                secret,
                previous_valid_until,
                ..
            } => self.rotate_webhook_secret(secret, *previous_valid_until),
            MerchantEvent::MerchantWebhookEndpointDisabled { at, .. } => {
                self.set_first_endpoint_disabled(Some(*at))
            }
            MerchantEvent::MerchantWebhookEndpointEnabled { .. } => {
                self.set_first_endpoint_disabled(None)
            }
            MerchantEvent::WebhookEndpointAdded { .. }
            | MerchantEvent::WebhookEndpointUpdated { .. }
            | MerchantEvent::WebhookEndpointRemoved { .. }
            | MerchantEvent::WebhookEndpointSecretRotated { .. }
            | MerchantEvent::WebhookEndpointDisabled { .. }
            | MerchantEvent::WebhookEndpointEnabled { .. }
            | MerchantEvent::WebhookEndpointSecretResealed { .. } => {
                self.apply_endpoint_event(event)
            }
            MerchantEvent::MerchantGatewayAttached { gateway_id, .. } => {
                self.active_gateways.insert(*gateway_id);
            }
            MerchantEvent::MerchantGatewayDetached { gateway_id, .. } => {
                self.active_gateways.remove(gateway_id);
            }
            MerchantEvent::MerchantSuspended { .. } => self.status = MerchantStatus::Suspended,
            MerchantEvent::MerchantReactivated { .. } => self.status = MerchantStatus::Active,
            MerchantEvent::MerchantClosed { .. } => self.status = MerchantStatus::Closed,
            MerchantEvent::MerchantApiRateLimitChanged { per_minute, .. } => {
                self.api_rate_per_minute = *per_minute
            }
            MerchantEvent::MerchantRefundCommissionChanged { to, .. } => {
                self.refund_commission = *to
            }
            MerchantEvent::MerchantSecretsResealed {
                client_salt,
                webhook_secret,
                previous_webhook_secret,
                ..
            } => self.reseal_secrets(
                client_salt,
                webhook_secret,
                previous_webhook_secret.as_ref(),
            ),
        }
        Some(self)
    }

    fn update_profile(&mut self, company_name: &str, webhook_url: Option<&str>, at: DateTime<Utc>) {
        self.company_name = company_name.to_owned();
        let first = first_endpoint_id(self.id);
        match (
            webhook_url,
            self.endpoints.iter_mut().find(|e| e.id == first),
        ) {
            (Some(url), Some(endpoint)) => endpoint.url = url.to_owned(),
            (Some(url), None) => self.add_first_endpoint(url, at),
            (None, Some(_)) => self.endpoints.retain(|e| e.id != first),
            (None, None) => {}
        }
        self.webhook_url = webhook_url.map(str::to_owned);
    }

    fn rotate_keys(
        &mut self,
        client_key: &ClientKey,
        client_salt: &SealedSecret,
        at: DateTime<Utc>,
    ) {
        self.client_key = client_key.clone();
        self.client_salt = client_salt.clone();
        self.keys_rotated_at = Some(at);
    }

    /// The current secret becomes the previous one, valid until `previous_valid_until`.
    fn rotate_webhook_secret(
        &mut self,
        secret: &SealedSecret,
        previous_valid_until: DateTime<Utc>,
    ) {
        let previous = std::mem::replace(&mut self.webhook_secret, secret.clone());
        self.previous_webhook_secret = Some(PreviousWebhookSecret {
            secret: previous,
            valid_until: previous_valid_until,
        });
        if let Some(first) = self.first_endpoint_mut() {
            first.rotate_secret(secret, previous_valid_until);
        }
    }

    /// The same secrets under another key; the previous secret keeps its grace period.
    fn reseal_secrets(
        &mut self,
        client_salt: &SealedSecret,
        webhook_secret: &SealedSecret,
        previous_webhook_secret: Option<&SealedSecret>,
    ) {
        self.client_salt = client_salt.clone();
        self.webhook_secret = webhook_secret.clone();
        if let (Some(previous), Some(resealed)) = (
            self.previous_webhook_secret.as_mut(),
            previous_webhook_secret,
        ) {
            previous.secret = resealed.clone();
        }
        let (secret, previous) = (
            self.webhook_secret.clone(),
            self.previous_webhook_secret.clone(),
        );
        if let Some(first) = self.first_endpoint_mut() {
            first.secret = secret;
            if let (Some(kept), Some(resealed)) = (first.previous_secret.as_mut(), previous) {
                kept.secret = resealed.secret;
            }
        }
    }
}

fn onboard_merchant(onboard: &OnboardMerchant) -> Result<Vec<MerchantEvent>, MerchantError> {
    let company_name = validation::text(
        "company_name",
        &onboard.company_name,
        MAX_COMPANY_NAME_CHARS,
    )?;
    if let Some(url) = &onboard.webhook_url {
        validation::http_url("webhook_url", url)?;
    }
    let whatsapp = onboard
        .whatsapp
        .as_ref()
        .map(WhatsappContact::normalised)
        .transpose()?;
    validate_fee(onboard.fee)?;
    onboard.thresholds.validate()?;
    onboard.checkout.validate()?;
    Ok(vec![MerchantEvent::MerchantOnboarded {
        merchant_id: onboard.merchant_id,
        company_name,
        webhook_url: onboard.webhook_url.clone(),
        whatsapp,
        client_key: onboard.client_key.clone(),
        client_salt: onboard.client_salt.clone(),
        webhook_secret: onboard.webhook_secret.clone(),
        fee: onboard.fee,
        thresholds: onboard.thresholds,
        checkout: onboard.checkout,
        at: onboard.at,
    }])
}

fn validate_fee(fee: BasisPoints) -> Result<(), FieldError> {
    BasisPoints::new(fee.bps()).map(|_| ()).map_err(|_| {
        Problem::OutOfRange {
            min: 0,
            max: i64::from(BasisPoints::WHOLE),
        }
        .at("fee")
    })
}

/// Decides a command for an onboarded merchant that is not closed (or a detach or reseal on a
/// closed one).
fn decide_for(
    merchant: &Merchant,
    command: &MerchantCommand,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    match command {
        MerchantCommand::Onboard(_) => Err(MerchantError::AlreadyOnboarded),
        MerchantCommand::UpdateProfile {
            company_name,
            webhook_url,
            at,
        } => update_profile(merchant, company_name, webhook_url.as_deref(), *at),
        MerchantCommand::ChangeWhatsappContact { contact, at } => {
            change_whatsapp_contact(merchant, contact.as_ref(), *at)
        }
        MerchantCommand::ChangeEmailContact { contact, at } => {
            change_email_contact(merchant, contact.as_ref(), *at)
        }
        MerchantCommand::RotateKeys {
            client_key,
            client_salt,
            at,
        } => rotate_keys(merchant, client_key, client_salt, *at),
        MerchantCommand::ChangeFee { fee, at } => change_fee(merchant, *fee, *at),
        MerchantCommand::ChangeThresholds { thresholds, at } => {
            change_thresholds(merchant, thresholds, *at)
        }
        MerchantCommand::ChangeCheckoutSettings { settings, at } => {
            change_checkout_settings(merchant, settings, *at)
        }
        MerchantCommand::RotateWebhookSecret {
            secret,
            grace_secs,
            at,
        } => rotate_webhook_secret(merchant, secret, *grace_secs, *at),
        MerchantCommand::DisableWebhookEndpoint { failing_since, at } => {
            disable_webhook_endpoint(merchant, *failing_since, *at)
        }
        MerchantCommand::EnableWebhookEndpoint { at } => Ok(enable_webhook_endpoint(merchant, *at)),
        MerchantCommand::AttachGateway { gateway_id, at } => {
            attach_gateway(merchant, *gateway_id, *at)
        }
        MerchantCommand::DetachGateway { gateway_id, at } => {
            Ok(detach_gateway(merchant, *gateway_id, *at))
        }
        MerchantCommand::Suspend { reason, at } => suspend(merchant, reason, *at),
        MerchantCommand::Reactivate { at } => Ok(reactivate(merchant, *at)),
        MerchantCommand::Close { reason, at } => close(reason, *at),
        MerchantCommand::ChangeApiRateLimit { per_minute, at } => {
            change_api_rate_limit(merchant, *per_minute, *at)
        }
        MerchantCommand::ChangeRefundCommission { policy, at } => Ok((merchant.refund_commission
            != *policy)
            .then_some(MerchantEvent::MerchantRefundCommissionChanged {
                from: merchant.refund_commission,
                to: *policy,
                at: *at,
            })
            .into_iter()
            .collect()),
        MerchantCommand::AddWebhookEndpoint { .. }
        | MerchantCommand::UpdateWebhookEndpoint { .. }
        | MerchantCommand::RemoveWebhookEndpoint { .. }
        | MerchantCommand::RotateWebhookEndpointSecret { .. }
        | MerchantCommand::DisableFailingWebhookEndpoint { .. }
        | MerchantCommand::ResealWebhookEndpointSecrets { .. } => {
            endpoint_decisions::decide(merchant, command)
        }
        MerchantCommand::ResealSecrets {
            client_salt,
            webhook_secret,
            previous_webhook_secret: previous,
            at,
        } => reseal_secrets(
            merchant,
            client_salt,
            webhook_secret,
            previous.as_ref(),
            *at,
        ),
    }
}

/// Company name and webhook URL; a new URL for a disabled endpoint enables it again.
fn update_profile(
    merchant: &Merchant,
    company_name: &str,
    webhook_url: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    let company_name = validation::text("company_name", company_name, MAX_COMPANY_NAME_CHARS)?;
    if let Some(url) = webhook_url {
        validation::http_url("webhook_url", url)?;
    }
    let url_changed = webhook_url != merchant.webhook_url.as_deref();
    if company_name == merchant.company_name && !url_changed {
        return Ok(vec![]);
    }
    let mut events = vec![MerchantEvent::MerchantProfileUpdated {
        company_name,
        webhook_url: webhook_url.map(str::to_owned),
        at,
    }];
    // A merchant who fixes the URL of a disabled endpoint wants webhooks again.
    if webhook_url.is_some() && url_changed && merchant.webhook_endpoint_disabled_at.is_some() {
        events.push(MerchantEvent::MerchantWebhookEndpointEnabled { at });
    }
    Ok(events)
}

fn change_whatsapp_contact(
    merchant: &Merchant,
    contact: Option<&WhatsappContact>,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    let contact = contact.map(WhatsappContact::normalised).transpose()?;
    if contact == merchant.whatsapp {
        return Ok(vec![]);
    }
    Ok(vec![MerchantEvent::MerchantWhatsappContactChanged {
        contact,
        at,
    }])
}

fn change_email_contact(
    merchant: &Merchant,
    contact: Option<&EmailContact>,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    let contact = contact.map(EmailContact::normalised).transpose()?;
    if contact == merchant.email {
        return Ok(vec![]);
    }
    Ok(vec![MerchantEvent::MerchantEmailContactChanged {
        contact,
        at,
    }])
}

fn rotate_keys(
    merchant: &Merchant,
    client_key: &ClientKey,
    client_salt: &SealedSecret,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    if *client_key == merchant.client_key {
        return Err(MerchantError::ClientKeyNotNew);
    }
    Ok(vec![MerchantEvent::MerchantKeysRotated {
        client_key: client_key.clone(),
        client_salt: client_salt.clone(),
        at,
    }])
}

fn rotate_webhook_secret(
    merchant: &Merchant,
    secret: &SealedSecret,
    grace_secs: u64,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    validation::range("grace_secs", grace_secs, 0, MAX_WEBHOOK_SECRET_GRACE_SECS)?;
    if *secret == merchant.webhook_secret {
        return Ok(vec![]);
    }
    Ok(vec![MerchantEvent::MerchantWebhookSecretRotated {
        secret: secret.clone(),
        previous_valid_until: calendar::plus_secs(at, grace_secs),
        at,
    }])
}

/// The same secrets sealed under another key: exactly the secrets the merchant holds.
fn reseal_secrets(
    merchant: &Merchant,
    client_salt: &SealedSecret,
    webhook_secret: &SealedSecret,
    previous_webhook_secret: Option<&SealedSecret>,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    let current_previous = merchant
        .previous_webhook_secret
        .as_ref()
        .map(|previous| &previous.secret);
    if current_previous.is_some() != previous_webhook_secret.is_some() {
        return Err(MerchantError::PreviousSecretMismatch);
    }
    if *client_salt == merchant.client_salt
        && *webhook_secret == merchant.webhook_secret
        && previous_webhook_secret == current_previous
    {
        return Ok(vec![]);
    }
    Ok(vec![MerchantEvent::MerchantSecretsResealed {
        client_salt: client_salt.clone(),
        webhook_secret: webhook_secret.clone(),
        previous_webhook_secret: previous_webhook_secret.cloned(),
        at,
    }])
}

fn change_fee(
    merchant: &Merchant,
    fee: BasisPoints,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    validate_fee(fee)?;
    if fee == merchant.fee {
        return Ok(vec![]);
    }
    Ok(vec![MerchantEvent::MerchantFeeChanged {
        from: merchant.fee,
        to: fee,
        at,
    }])
}

fn change_thresholds(
    merchant: &Merchant,
    thresholds: &Thresholds,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    thresholds.validate()?;
    if *thresholds == merchant.thresholds {
        return Ok(vec![]);
    }
    Ok(vec![MerchantEvent::MerchantThresholdsChanged {
        thresholds: *thresholds,
        at,
    }])
}

fn change_checkout_settings(
    merchant: &Merchant,
    settings: &CheckoutSettings,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    settings.validate()?;
    if *settings == merchant.checkout {
        return Ok(vec![]);
    }
    Ok(vec![MerchantEvent::MerchantCheckoutSettingsChanged {
        settings: *settings,
        at,
    }])
}

fn change_api_rate_limit(
    merchant: &Merchant,
    per_minute: Option<u32>,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    if let Some(rate) = per_minute {
        validation::range(
            "api_rate_per_minute",
            u64::from(rate),
            1,
            u64::from(MAX_API_RATE_PER_MINUTE),
        )?;
    }
    if per_minute == merchant.api_rate_per_minute {
        return Ok(vec![]);
    }
    Ok(vec![MerchantEvent::MerchantApiRateLimitChanged {
        per_minute,
        at,
    }])
}

/// Disables the endpoint once it has failed long enough (see [`endpoint_health`]).
fn disable_webhook_endpoint(
    merchant: &Merchant,
    failing_since: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    if merchant.webhook_endpoint_disabled_at.is_some() {
        return Ok(vec![]);
    }
    match endpoint_health(Some(failing_since), at) {
        EndpointHealth::Disable { .. } => {
            Ok(vec![MerchantEvent::MerchantWebhookEndpointDisabled {
                failing_since,
                at,
            }])
        }
        EndpointHealth::Failing { disable_at, .. } => {
            Err(MerchantError::EndpointNotFailingLongEnough {
                disable_from: disable_at,
            })
        }
        EndpointHealth::Healthy => Ok(vec![]),
    }
}

fn enable_webhook_endpoint(merchant: &Merchant, at: DateTime<Utc>) -> Vec<MerchantEvent> {
    if merchant.webhook_endpoint_disabled_at.is_none() {
        return vec![];
    }
    vec![MerchantEvent::MerchantWebhookEndpointEnabled { at }]
}

fn attach_gateway(
    merchant: &Merchant,
    gateway_id: GatewayId,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    if merchant.active_gateways.contains(&gateway_id) {
        return Ok(vec![]);
    }
    if merchant.active_gateways.len() >= MAX_ACTIVE_GATEWAYS {
        return Err(MerchantError::TooManyGateways {
            limit: MAX_ACTIVE_GATEWAYS,
        });
    }
    Ok(vec![MerchantEvent::MerchantGatewayAttached {
        gateway_id,
        at,
    }])
}

fn detach_gateway(
    merchant: &Merchant,
    gateway_id: GatewayId,
    at: DateTime<Utc>,
) -> Vec<MerchantEvent> {
    if !merchant.active_gateways.contains(&gateway_id) {
        return vec![];
    }
    vec![MerchantEvent::MerchantGatewayDetached { gateway_id, at }]
}

fn suspend(
    merchant: &Merchant,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    let reason = validation::text("reason", reason, MAX_REASON_CHARS)?;
    if merchant.status == MerchantStatus::Suspended {
        return Ok(vec![]);
    }
    Ok(vec![MerchantEvent::MerchantSuspended { reason, at }])
}

fn reactivate(merchant: &Merchant, at: DateTime<Utc>) -> Vec<MerchantEvent> {
    if merchant.status == MerchantStatus::Active {
        return vec![];
    }
    vec![MerchantEvent::MerchantReactivated { at }]
}

fn close(reason: &str, at: DateTime<Utc>) -> Result<Vec<MerchantEvent>, MerchantError> {
    let reason = validation::text("reason", reason, MAX_REASON_CHARS)?;
    Ok(vec![MerchantEvent::MerchantClosed { reason, at }])
}

#[cfg(test)]
mod tests;
