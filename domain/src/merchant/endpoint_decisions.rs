//! Deciding and folding the webhook-endpoint commands and events of a merchant.

use super::endpoints::{
    self, EndpointChanges, EventFilter, MAX_WEBHOOK_ENDPOINTS, ResealedEndpointSecrets,
};
use super::{
    MAX_WEBHOOK_SECRET_GRACE_SECS, Merchant, MerchantCommand, MerchantError, MerchantEvent,
    PreviousWebhookSecret, WebhookEndpoint, first_endpoint_id,
};
use crate::calendar;
use crate::ids::WebhookEndpointId;
use crate::sealed::SealedSecret;
use crate::validation;
use crate::webhook_delivery::{EndpointHealth, endpoint_health};
use chrono::{DateTime, Utc};

/// Decides an endpoint command for an onboarded merchant that is not closed.
pub(super) fn decide(
    merchant: &Merchant,
    command: &MerchantCommand,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    match command {
        MerchantCommand::AddWebhookEndpoint {
            endpoint_id,
            url,
            description,
            event_types,
            secret,
            at,
        } => add(
            merchant,
            *endpoint_id,
            url,
            description,
            event_types,
            secret,
            *at,
        ),
        MerchantCommand::UpdateWebhookEndpoint {
            endpoint_id,
            changes,
            at,
        } => update(endpoint(merchant, *endpoint_id)?, changes, *at),
        MerchantCommand::RemoveWebhookEndpoint { endpoint_id, at } => {
            endpoint(merchant, *endpoint_id)?;
            Ok(vec![MerchantEvent::WebhookEndpointRemoved {
                endpoint_id: *endpoint_id,
                at: *at,
            }])
        }
        MerchantCommand::RotateWebhookEndpointSecret {
            endpoint_id,
            secret,
            grace_secs,
            at,
        } => rotate_secret(endpoint(merchant, *endpoint_id)?, secret, *grace_secs, *at),
        MerchantCommand::DisableFailingWebhookEndpoint {
            endpoint_id,
            failing_since,
            at,
        } => disable_failing(endpoint(merchant, *endpoint_id)?, *failing_since, *at),
        MerchantCommand::ResealWebhookEndpointSecrets { endpoints, at } => endpoints
            .iter()
            .filter_map(|resealed| reseal(merchant, resealed, *at).transpose())
            .collect(),
        _ => Ok(vec![]),
    }
}

fn endpoint(
    merchant: &Merchant,
    endpoint_id: WebhookEndpointId,
) -> Result<&WebhookEndpoint, MerchantError> {
    merchant
        .webhook_endpoint(endpoint_id)
        .ok_or(MerchantError::UnknownWebhookEndpoint(endpoint_id))
}

fn add(
    merchant: &Merchant,
    endpoint_id: WebhookEndpointId,
    url: &str,
    description: &str,
    event_types: &[String],
    secret: &SealedSecret,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    if merchant.webhook_endpoint(endpoint_id).is_some() {
        return Err(MerchantError::WebhookEndpointExists(endpoint_id));
    }
    if merchant.endpoints.len() >= MAX_WEBHOOK_ENDPOINTS {
        return Err(MerchantError::TooManyWebhookEndpoints {
            limit: MAX_WEBHOOK_ENDPOINTS,
        });
    }
    Ok(vec![MerchantEvent::WebhookEndpointAdded {
        endpoint_id,
        url: endpoints::endpoint_url(url)?,
        description: endpoints::description(description)?,
        event_types: EventFilter::parse(event_types)?,
        secret: secret.clone(),
        at,
    }])
}

/// The endpoint's settings with `changes` applied; enabling it, or moving a disabled one to a
/// new URL, also lifts a disabling for failure (the merchant fixed what failed).
fn update(
    endpoint: &WebhookEndpoint,
    changes: &EndpointChanges,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    let url = match &changes.url {
        Some(url) => endpoints::endpoint_url(url)?,
        None => endpoint.url.clone(),
    };
    let description = match &changes.description {
        Some(description) => endpoints::description(description)?,
        None => endpoint.description.clone(),
    };
    let event_types = match &changes.event_types {
        Some(entries) => EventFilter::parse(entries)?,
        None => endpoint.filter.clone(),
    };
    let enabled = changes.enabled.unwrap_or(endpoint.enabled);
    let mut events = Vec::new();
    if url != endpoint.url
        || description != endpoint.description
        || enabled != endpoint.enabled
        || event_types != endpoint.filter
    {
        events.push(MerchantEvent::WebhookEndpointUpdated {
            endpoint_id: endpoint.id,
            url: url.clone(),
            description,
            enabled,
            event_types,
            at,
        });
    }
    let fixed = changes.enabled == Some(true) || url != endpoint.url;
    if endpoint.disabled_at.is_some() && enabled && fixed {
        events.push(MerchantEvent::WebhookEndpointEnabled {
            endpoint_id: endpoint.id,
            at,
        });
    }
    Ok(events)
}

fn rotate_secret(
    endpoint: &WebhookEndpoint,
    secret: &SealedSecret,
    grace_secs: u64,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    validation::range("grace_secs", grace_secs, 0, MAX_WEBHOOK_SECRET_GRACE_SECS)?;
    if *secret == endpoint.secret {
        return Ok(vec![]);
    }
    Ok(vec![MerchantEvent::WebhookEndpointSecretRotated {
        endpoint_id: endpoint.id,
        secret: secret.clone(),
        previous_valid_until: calendar::plus_secs(at, grace_secs),
        at,
    }])
}

/// The endpoint's secrets sealed under another key, when the blobs differ: exactly the secrets
/// it holds (a previous one exactly when it has one), never the first endpoint's, which are the
/// merchant's own webhook secrets.
fn reseal(
    merchant: &Merchant,
    resealed: &ResealedEndpointSecrets,
    at: DateTime<Utc>,
) -> Result<Option<MerchantEvent>, MerchantError> {
    if resealed.endpoint_id == first_endpoint_id(merchant.id) {
        return Err(MerchantError::FirstEndpointResealedApart);
    }
    let endpoint = endpoint(merchant, resealed.endpoint_id)?;
    let previous = endpoint.previous_secret.as_ref().map(|p| &p.secret);
    if previous.is_some() != resealed.previous_secret.is_some() {
        return Err(MerchantError::PreviousSecretMismatch);
    }
    if resealed.secret == endpoint.secret && resealed.previous_secret.as_ref() == previous {
        return Ok(None);
    }
    Ok(Some(MerchantEvent::WebhookEndpointSecretResealed {
        endpoint_id: endpoint.id,
        secret: resealed.secret.clone(),
        previous_secret: resealed.previous_secret.clone(),
        at,
    }))
}

/// Disables the endpoint once it has failed long enough (see [`endpoint_health`]).
fn disable_failing(
    endpoint: &WebhookEndpoint,
    failing_since: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<Vec<MerchantEvent>, MerchantError> {
    if endpoint.disabled_at.is_some() {
        return Ok(vec![]);
    }
    match endpoint_health(Some(failing_since), at) {
        EndpointHealth::Disable { .. } => Ok(vec![MerchantEvent::WebhookEndpointDisabled {
            endpoint_id: endpoint.id,
            failing_since,
            at,
        }]),
        EndpointHealth::Failing { disable_at, .. } => {
            Err(MerchantError::EndpointNotFailingLongEnough {
                disable_from: disable_at,
            })
        }
        EndpointHealth::Healthy => Ok(vec![]),
    }
}

impl Merchant {
    /// The merchant with the endpoint its original `webhook_url` describes, if it has one.
    pub(super) fn with_first_endpoint(mut self, url: Option<&str>, at: DateTime<Utc>) -> Self {
        if let Some(url) = url {
            self.add_first_endpoint(url, at);
        }
        self
    }

    /// The first endpoint, from the merchant's webhook URL and secrets, receiving everything.
    pub(super) fn add_first_endpoint(&mut self, url: &str, at: DateTime<Utc>) {
        let endpoint = WebhookEndpoint {
            id: first_endpoint_id(self.id),
            url: url.to_owned(),
            description: String::new(),
            enabled: true,
            filter: EventFilter::everything(),
            secret: self.webhook_secret.clone(),
            previous_secret: self.previous_webhook_secret.clone(),
            disabled_at: self.webhook_endpoint_disabled_at,
            created_at: at,
        };
        self.endpoints.insert(0, endpoint);
    }

    pub(super) fn first_endpoint_mut(&mut self) -> Option<&mut WebhookEndpoint> {
        let first = first_endpoint_id(self.id);
        self.endpoints.iter_mut().find(|e| e.id == first)
    }

    /// The original endpoint's disabling, mirrored on its endpoint.
    pub(super) fn set_first_endpoint_disabled(&mut self, at: Option<DateTime<Utc>>) {
        self.webhook_endpoint_disabled_at = at;
        if let Some(first) = self.first_endpoint_mut() {
            first.disabled_at = at;
        }
    }

    /// Applies an endpoint event; one about the first endpoint is mirrored on the merchant's
    /// webhook URL, secrets and disabling.
    pub(super) fn apply_endpoint_event(&mut self, event: &MerchantEvent) {
        match event {
            MerchantEvent::WebhookEndpointAdded {
                endpoint_id,
                url,
                description,
                event_types,
                secret,
                at,
            } => self.endpoints.push(WebhookEndpoint {
                id: *endpoint_id,
                url: url.clone(),
                description: description.clone(),
                enabled: true,
                filter: event_types.clone(),
                secret: secret.clone(),
                previous_secret: None,
                disabled_at: None,
                created_at: *at,
            }),
            MerchantEvent::WebhookEndpointRemoved { endpoint_id, .. } => {
                self.endpoints.retain(|e| e.id != *endpoint_id);
                self.mirror_first(*endpoint_id, |merchant| merchant.webhook_url = None);
            }
            _ => self.change_endpoint(event),
        }
    }

    fn change_endpoint(&mut self, event: &MerchantEvent) {
        let first = first_endpoint_id(self.id);
        let Some(endpoint) =
            endpoint_id_of(event).and_then(|id| self.endpoints.iter_mut().find(|e| e.id == id))
        else {
            return;
        };
        let is_first = endpoint.id == first;
        match event {
            MerchantEvent::WebhookEndpointUpdated {
                url,
                description,
                enabled,
                event_types,
                ..
            } => {
                endpoint.url = url.clone();
                endpoint.description = description.clone();
                endpoint.enabled = *enabled;
                endpoint.filter = event_types.clone();
                if is_first {
                    self.webhook_url = Some(url.clone());
                }
            }
            MerchantEvent::WebhookEndpointSecretRotated {
                secret,
                previous_valid_until,
                ..
            } => {
                endpoint.rotate_secret(secret, *previous_valid_until);
                if is_first {
                    self.previous_webhook_secret = Some(PreviousWebhookSecret {
                        secret: std::mem::replace(&mut self.webhook_secret, secret.clone()),
                        valid_until: *previous_valid_until,
                    });
                }
            }
            MerchantEvent::WebhookEndpointSecretResealed {
                secret,
                previous_secret,
                ..
            } => {
                endpoint.reseal(secret, previous_secret.as_ref());
                if is_first {
                    self.reseal_first_endpoint_mirror(secret, previous_secret.as_ref());
                }
            }
            MerchantEvent::WebhookEndpointDisabled { at, .. } => {
                endpoint.disabled_at = Some(*at);
                if is_first {
                    self.webhook_endpoint_disabled_at = Some(*at);
                }
            }
            MerchantEvent::WebhookEndpointEnabled { .. } => {
                endpoint.disabled_at = None;
                if is_first {
                    self.webhook_endpoint_disabled_at = None;
                }
            }
            _ => {}
        }
    }

    /// The merchant's webhook secrets follow its first endpoint's (never decided today, kept so
    /// the two cannot drift whatever the log holds).
    fn reseal_first_endpoint_mirror(
        &mut self,
        secret: &SealedSecret,
        previous_secret: Option<&SealedSecret>,
    ) {
        self.webhook_secret = secret.clone();
        if let (Some(kept), Some(resealed)) =
            (self.previous_webhook_secret.as_mut(), previous_secret)
        {
            kept.secret = resealed.clone();
        }
    }

    fn mirror_first(&mut self, endpoint_id: WebhookEndpointId, mirror: impl FnOnce(&mut Merchant)) {
        if endpoint_id == first_endpoint_id(self.id) {
            mirror(self);
        }
    }
}

fn endpoint_id_of(event: &MerchantEvent) -> Option<WebhookEndpointId> {
    match event {
        MerchantEvent::WebhookEndpointUpdated { endpoint_id, .. }
        | MerchantEvent::WebhookEndpointSecretRotated { endpoint_id, .. }
        | MerchantEvent::WebhookEndpointDisabled { endpoint_id, .. }
        | MerchantEvent::WebhookEndpointEnabled { endpoint_id, .. }
        | MerchantEvent::WebhookEndpointSecretResealed { endpoint_id, .. } => Some(*endpoint_id),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
