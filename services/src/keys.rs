//! Encryption key rotation (`lightspeed keys rotate`): every sealed secret in the ledger sealed
//! again under the current key, by appending events (`MerchantSecretsResealed`,
//! `WebhookEndpointSecretResealed` for each added webhook endpoint,
//! `GatewayCredentialsResealed`), never by editing old ones.
//!
//! To rotate: put the new key first in `ENCRYPTION_KEY` and keep the old one after it, deploy,
//! run [`Ledger::rotate_keys`] until its report shows no failure, then drop the old key.
//!
//! Which secrets exist is read from the merchant streams (each merchant and every gateway ever
//! attached to it), so the log alone decides what is covered, read models play no part. That
//! list is read from the log's table as committed now, not with the gap-safe reader, which stays
//! below the oldest transaction running anywhere on the cluster and could miss a merchant
//! onboarded a moment ago. Secrets sealed while a rotation runs are sealed by processes that
//! already hold the new key first, so nothing is left behind.

use lightspeed_domain::gateway::{Gateway, GatewayCommand};
use lightspeed_domain::merchant::{
    Merchant, MerchantCommand, MerchantEvent, ResealedEndpointSecrets, WebhookEndpoint,
    first_endpoint_id,
};
use lightspeed_domain::{GatewayId, MerchantId, SealedSecret};
use lightspeed_eventstore::{CommandContext, Metadata, StreamId, lookups, stream_of};
use serde::Serialize;

use crate::error::ServiceError;
use crate::ledger::Ledger;

/// The merchant events that name a holder of secrets: an onboarding (the merchant's own
/// secrets) and a gateway attached (its PSP credentials).
const SECRET_HOLDERS_NAMED_BY: [&str; 2] = ["MerchantOnboarded", "MerchantGatewayAttached"];

/// Seals secrets again under the current key. Implemented over the keyring by the caller, so
/// this crate never sees a key or a clear secret.
pub trait Resealer: Send + Sync {
    /// The id of the current key (logged, never the key).
    fn key_id(&self) -> &str;
    /// Whether `sealed` is already under the current key.
    fn is_current(&self, sealed: &SealedSecret) -> bool;
    /// The same secret sealed under the current key; the error names why (never the secret).
    fn reseal(&self, sealed: &SealedSecret) -> Result<SealedSecret, String>;
}

/// What a key rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResealReport {
    /// Merchants whose salt or webhook secrets were resealed.
    pub merchants_resealed: u64,
    /// Gateways whose credentials were resealed.
    pub gateways_resealed: u64,
    /// Merchants and gateways already entirely under the current key.
    pub already_current: u64,
    /// Streams that could not be resealed, and why (e.g. sealed under a key no longer held).
    pub failures: Vec<ResealFailure>,
}

/// One stream a rotation could not reseal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResealFailure {
    /// The stream, e.g. `gateway-0190…`.
    pub stream_id: String,
    /// Why.
    pub reason: String,
}

impl ResealReport {
    fn failed(&mut self, stream_id: &StreamId, reason: impl Into<String>) {
        self.failures.push(ResealFailure {
            stream_id: stream_id.to_string(),
            reason: reason.into(),
        });
    }
}

impl Ledger {
    /// Reseals every merchant salt, webhook secret and gateway credential not under
    /// `resealer`'s current key; `actor` is recorded on the events (e.g.
    /// `admin:ops@example.com` or `system:keys-rotate`).
    pub async fn rotate_keys(
        &self,
        resealer: &dyn Resealer,
        actor: &str,
    ) -> Result<ResealReport, ServiceError> {
        let context = CommandContext {
            command_id: None,
            metadata: Metadata {
                correlation_id: Some(uuid::Uuid::now_v7()),
                actor: Some(actor.to_owned()),
                ..Metadata::default()
            },
        };
        let report = self.reseal_secrets(resealer, &context).await?;
        tracing::info!(
            merchants = report.merchants_resealed,
            gateways = report.gateways_resealed,
            current = report.already_current,
            failures = report.failures.len(),
            key_id = resealer.key_id(),
            "secrets resealed"
        );
        Ok(report)
    }

    /// Seals every merchant salt, webhook secret (current and previous, of every endpoint) and
    /// gateway credential that is not under the current key again under it, one append per
    /// merchant or gateway.
    /// A stream that fails is reported and the others go on; running it again finishes the job.
    pub async fn reseal_secrets(
        &self,
        resealer: &dyn Resealer,
        context: &CommandContext,
    ) -> Result<ResealReport, ServiceError> {
        let (merchants, gateways) = self.holders_of_secrets().await?;
        let mut report = ResealReport::default();
        for merchant_id in merchants {
            let stream = stream_of::<Merchant>(merchant_id)?;
            match self.reseal_merchant(&stream, resealer, context).await {
                Ok(true) => report.merchants_resealed += 1,
                Ok(false) => report.already_current += 1,
                Err(reason) => report.failed(&stream, reason),
            }
        }
        for gateway_id in gateways {
            let stream = stream_of::<Gateway>(gateway_id)?;
            match self.reseal_gateway(&stream, resealer, context).await {
                Ok(true) => report.gateways_resealed += 1,
                Ok(false) => report.already_current += 1,
                Err(reason) => report.failed(&stream, reason),
            }
        }
        Ok(report)
    }

    /// Every merchant, and every gateway ever attached to one, from the merchant streams.
    async fn holders_of_secrets(&self) -> Result<(Vec<MerchantId>, Vec<GatewayId>), ServiceError> {
        let rows = lookups::events_of_types(
            self.store.pool(),
            <Merchant as lightspeed_domain::Decider>::CATEGORY,
            &SECRET_HOLDERS_NAMED_BY,
        )
        .await
        .map_err(|e| ServiceError::Store(e.to_string()))?;
        let (mut merchants, mut gateways) = (Vec::new(), Vec::new());
        for row in rows {
            let schema_version = u16::try_from(row.schema_version).map_err(|_| {
                ServiceError::Store(format!("schema version {}", row.schema_version))
            })?;
            let event: MerchantEvent =
                lightspeed_domain::decode(&row.event_type, schema_version, &row.payload)
                    .map_err(|e| ServiceError::Store(e.to_string()))?;
            match event {
                MerchantEvent::MerchantOnboarded { merchant_id, .. } => merchants.push(merchant_id),
                MerchantEvent::MerchantGatewayAttached { gateway_id, .. } => {
                    gateways.push(gateway_id)
                }
                _ => {}
            }
        }
        gateways.sort_unstable();
        gateways.dedup();
        Ok((merchants, gateways))
    }

    /// True when something was resealed: the salt and webhook secrets (the first endpoint's)
    /// and every other endpoint's secrets, in one append.
    async fn reseal_merchant(
        &self,
        stream: &StreamId,
        resealer: &dyn Resealer,
        context: &CommandContext,
    ) -> Result<bool, String> {
        let merchant = self
            .merchants
            .load(stream)
            .await
            .map_err(|e| e.to_string())?
            .state
            .ok_or("no merchant state")?;
        if sealed_secrets_of(&merchant).all(|sealed| resealer.is_current(sealed)) {
            return Ok(false);
        }
        let renew = |sealed: &SealedSecret| {
            if resealer.is_current(sealed) {
                Ok(sealed.clone())
            } else {
                resealer.reseal(sealed)
            }
        };
        let at = self.now();
        let commands = [
            MerchantCommand::ResealSecrets {
                client_salt: renew(merchant.client_salt())?,
                webhook_secret: renew(merchant.webhook_secret())?,
                previous_webhook_secret: merchant
                    .previous_webhook_secret()
                    .map(|previous| renew(&previous.secret))
                    .transpose()?,
                at,
            },
            MerchantCommand::ResealWebhookEndpointSecrets {
                endpoints: added_endpoints(&merchant)
                    .map(|endpoint| {
                        Ok(ResealedEndpointSecrets {
                            endpoint_id: endpoint.id(),
                            secret: renew(endpoint.secret())?,
                            previous_secret: endpoint
                                .previous_secret()
                                .map(|previous| renew(&previous.secret))
                                .transpose()?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
                at,
            },
        ];
        self.execute_all(&self.merchants, stream, &commands, context)
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// True when the credentials were resealed.
    async fn reseal_gateway(
        &self,
        stream: &StreamId,
        resealer: &dyn Resealer,
        context: &CommandContext,
    ) -> Result<bool, String> {
        let gateway = self
            .gateways
            .load(stream)
            .await
            .map_err(|e| e.to_string())?
            .state
            .ok_or("no gateway state")?;
        if resealer.is_current(gateway.credentials()) {
            return Ok(false);
        }
        let command = GatewayCommand::ResealCredentials {
            credentials: resealer.reseal(gateway.credentials())?,
            at: self.now(),
        };
        self.gateways
            .execute(stream, &command, context)
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
    }
}

/// Every sealed secret a merchant holds: its salt, its webhook secrets (the first endpoint's)
/// and the current and previous secrets of every endpoint added since.
fn sealed_secrets_of(merchant: &Merchant) -> impl Iterator<Item = &SealedSecret> {
    let merchant_secrets = [
        Some(merchant.client_salt()),
        Some(merchant.webhook_secret()),
    ]
    .into_iter()
    .chain([merchant.previous_webhook_secret().map(|p| &p.secret)])
    .flatten();
    let endpoint_secrets = added_endpoints(merchant).flat_map(|endpoint| {
        std::iter::once(endpoint.secret()).chain(endpoint.previous_secret().map(|p| &p.secret))
    });
    merchant_secrets.chain(endpoint_secrets)
}

/// The endpoints other than the first (whose secrets are the merchant's webhook secrets).
fn added_endpoints(merchant: &Merchant) -> impl Iterator<Item = &WebhookEndpoint> {
    let first = first_endpoint_id(merchant.id());
    merchant
        .webhook_endpoints()
        .iter()
        .filter(move |endpoint| endpoint.id() != first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_holders_are_named_by_merchant_events() {
        for event_type in SECRET_HOLDERS_NAMED_BY {
            assert!(
                MerchantEvent::EVENT_TYPES.contains(&event_type),
                "{event_type}"
            );
        }
    }
}
