//! `lightspeed keys rotate`: seals every secret in the ledger again under the current key of
//! `ENCRYPTION_KEY`, by appending events (never by editing old ones).
//!
//! To rotate: put the new key first in `ENCRYPTION_KEY` and keep the old one after it, deploy,
//! run [`rotate_keys`] until its report shows no failure, then drop the old key.

use lightspeed_adapters::secrets::Keyring;
use lightspeed_domain::SealedSecret;
use lightspeed_eventstore::{CommandContext, Metadata};
use lightspeed_services::{Ledger, ResealReport, Resealer, ServiceError};

/// The keyring as the ledger's resealer: it opens with whichever key a blob names and seals
/// with the first key.
struct KeyringResealer<'a>(&'a Keyring);

impl Resealer for KeyringResealer<'_> {
    fn is_current(&self, sealed: &SealedSecret) -> bool {
        self.0.is_current(sealed)
    }

    fn reseal(&self, sealed: &SealedSecret) -> Result<SealedSecret, String> {
        self.0.reseal(sealed).map_err(|e| e.to_string())
    }
}

/// Reseals every merchant salt, webhook secret and gateway credential not under `keyring`'s
/// sealing key; `actor` is recorded on the events (e.g. `admin:ops@example.com` or
/// `system:keys-rotate`).
pub async fn rotate_keys(
    ledger: &Ledger,
    keyring: &Keyring,
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
    let report = ledger
        .reseal_secrets(&KeyringResealer(keyring), &context)
        .await?;
    tracing::info!(
        merchants = report.merchants_resealed,
        gateways = report.gateways_resealed,
        current = report.already_current,
        failures = report.failures.len(),
        key_id = keyring.sealing_key_id(),
        "secrets resealed"
    );
    Ok(report)
}
