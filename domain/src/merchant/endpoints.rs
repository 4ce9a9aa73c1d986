//! A merchant's webhook endpoints: up to [`MAX_WEBHOOK_ENDPOINTS`], each with its URL,
//! description, enabled flag, event-type filter and own `whsec_` secret.
//!
//! The merchant's original single `webhook_url` is its first endpoint: the merchant's state
//! folds `MerchantOnboarded`, `MerchantProfileUpdated`, `MerchantWebhookSecretRotated`,
//! `MerchantWebhookEndpointDisabled`/`Enabled` and `MerchantSecretsResealed` into an endpoint
//! whose id is the merchant's own UUID ([`first_endpoint_id`]), receiving every event type. No
//! stored event is rewritten; the endpoint events below then apply to it like to any other.
//! Changes to the first endpoint are mirrored on the merchant's `webhook_url` and webhook secret,
//! so key rotation's resealing and the profile keep describing it.

use super::PreviousWebhookSecret;
use crate::ids::{MerchantId, WebhookEndpointId};
use crate::sealed::SealedSecret;
use crate::validation::{self, FieldError, Problem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most webhook endpoints a merchant may have.
pub const MAX_WEBHOOK_ENDPOINTS: usize = 10;

/// Longest endpoint description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// Most entries in one endpoint's event-type filter.
pub const MAX_FILTER_ENTRIES: usize = 16;

/// Every event type a merchant endpoint may receive.
pub const WEBHOOK_EVENT_TYPES: [&str; 6] = [
    "payment.created",
    "payment.succeeded",
    "payment.failed",
    "payment.refunded",
    "refund.succeeded",
    "refund.failed",
];

/// The id of the endpoint made from the merchant's original `webhook_url`: the merchant's UUID,
/// so it is known without any event naming it.
pub fn first_endpoint_id(merchant_id: MerchantId) -> WebhookEndpointId {
    WebhookEndpointId(merchant_id.0)
}

/// Which event types an endpoint receives: exact types (`payment.succeeded`), a group's
/// wildcard (`payment.*`, `refund.*`) or everything (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventFilter(Vec<String>);

impl EventFilter {
    /// Every event type.
    pub fn everything() -> EventFilter {
        EventFilter(vec!["*".to_owned()])
    }

    /// Accepts 1 to [`MAX_FILTER_ENTRIES`] entries, each a known type, a known group's wildcard
    /// or `*`; duplicates are dropped, order kept.
    pub fn parse(entries: &[String]) -> Result<EventFilter, FieldError> {
        const FIELD: &str = "event_types";
        if entries.is_empty() {
            return Err(Problem::Empty.at(FIELD));
        }
        if entries.len() > MAX_FILTER_ENTRIES {
            return Err(Problem::TooLong {
                max: MAX_FILTER_ENTRIES,
            }
            .at(FIELD));
        }
        let mut kept: Vec<String> = Vec::with_capacity(entries.len());
        for entry in entries {
            if !is_known_entry(entry) {
                return Err(Problem::Unsupported.at(FIELD));
            }
            if !kept.contains(entry) {
                kept.push(entry.clone());
            }
        }
        Ok(EventFilter(kept))
    }

    /// The entries as given.
    pub fn entries(&self) -> &[String] {
        &self.0
    }

    /// Whether an event of `event_type` passes the filter.
    pub fn matches(&self, event_type: &str) -> bool {
        self.0.iter().any(|entry| entry_matches(entry, event_type))
    }
}

fn entry_matches(entry: &str, event_type: &str) -> bool {
    match entry.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => entry == event_type,
    }
}

fn is_known_entry(entry: &str) -> bool {
    if entry == "*" {
        return true;
    }
    match entry.strip_suffix(".*") {
        Some(group) => WEBHOOK_EVENT_TYPES
            .iter()
            .any(|known| known.split('.').next() == Some(group)),
        None => WEBHOOK_EVENT_TYPES.contains(&entry),
    }
}

/// Checks an endpoint URL's shape: an absolute `http(s)` URL. Whether its host may be reached
/// (https outside loopback, no private addresses) needs DNS and is checked by the caller.
pub(crate) fn endpoint_url(url: &str) -> Result<String, FieldError> {
    validation::http_url("url", url)?;
    Ok(url.to_owned())
}

/// An endpoint's description: trimmed, at most [`MAX_DESCRIPTION_CHARS`]; may be empty.
pub(crate) fn description(value: &str) -> Result<String, FieldError> {
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    validation::text("description", value, MAX_DESCRIPTION_CHARS)
}

/// One webhook endpoint as the merchant's events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub(crate) id: WebhookEndpointId,
    pub(crate) url: String,
    pub(crate) description: String,
    pub(crate) enabled: bool,
    pub(crate) filter: EventFilter,
    pub(crate) secret: SealedSecret,
    pub(crate) previous_secret: Option<PreviousWebhookSecret>,
    pub(crate) disabled_at: Option<DateTime<Utc>>,
    pub(crate) created_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    /// The endpoint's id.
    pub fn id(&self) -> WebhookEndpointId {
        self.id
    }

    /// Where events are POSTed.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The merchant's note about it.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether the merchant wants it to receive events.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// When it was disabled for failing continuously, if it is.
    pub fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.disabled_at
    }

    /// Whether events are delivered to it: enabled and not disabled for failing.
    pub fn is_receiving(&self) -> bool {
        self.enabled && self.disabled_at.is_none()
    }

    /// Which event types it receives.
    pub fn filter(&self) -> &EventFilter {
        &self.filter
    }

    /// Whether it receives events of `event_type` now.
    pub fn wants(&self, event_type: &str) -> bool {
        self.is_receiving() && self.filter.matches(event_type)
    }

    /// The current sealed secret (sign with this one).
    pub fn secret(&self) -> &SealedSecret {
        &self.secret
    }

    /// The replaced secret and its grace deadline, if one was rotated out.
    pub fn previous_secret(&self) -> Option<&PreviousWebhookSecret> {
        self.previous_secret.as_ref()
    }

    /// The secrets valid at `at`: the current one first, then the previous one during its grace.
    pub fn secrets_valid_at(&self, at: DateTime<Utc>) -> Vec<&SealedSecret> {
        let previous = self
            .previous_secret
            .as_ref()
            .filter(|previous| at < previous.valid_until);
        std::iter::once(&self.secret)
            .chain(previous.map(|previous| &previous.secret))
            .collect()
    }

    /// When it was added (for the first endpoint: when its URL was first set).
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// The same secrets sealed under another key; the grace deadline is kept.
    pub(crate) fn reseal(&mut self, secret: &SealedSecret, previous_secret: Option<&SealedSecret>) {
        self.secret = secret.clone();
        if let (Some(kept), Some(resealed)) = (self.previous_secret.as_mut(), previous_secret) {
            kept.secret = resealed.clone();
        }
    }

    /// The current secret becomes the previous one, valid until `previous_valid_until`.
    pub(crate) fn rotate_secret(
        &mut self,
        secret: &SealedSecret,
        previous_valid_until: DateTime<Utc>,
    ) {
        let previous = std::mem::replace(&mut self.secret, secret.clone());
        self.previous_secret = Some(PreviousWebhookSecret {
            secret: previous,
            valid_until: previous_valid_until,
        });
    }
}

/// A change to an endpoint; fields left `None` keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointChanges {
    /// New URL.
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Enable or disable it; enabling also lifts a disabling for failure.
    pub enabled: Option<bool>,
    /// New event-type filter entries.
    pub event_types: Option<Vec<String>>,
}

/// One endpoint's secrets sealed again under another encryption key (key rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResealedEndpointSecrets {
    /// The endpoint (not the first one: its secrets are the merchant's webhook secrets).
    pub endpoint_id: WebhookEndpointId,
    /// The current secret, resealed.
    pub secret: SealedSecret,
    /// The previous secret, resealed; given exactly when the endpoint has one.
    pub previous_secret: Option<SealedSecret>,
}
