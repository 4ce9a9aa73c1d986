//! Merchant operations that touch more than the merchant's own stream.

use lightspeed_domain::claims::{AssignClientKey, ClientKeyClaim};
use lightspeed_domain::merchant::{ClientKey, Merchant, MerchantCommand, OnboardMerchant};
use lightspeed_domain::{Decider, MerchantId, SealedSecret};
use lightspeed_eventstore::{AppendError, CommandContext, Loaded, StreamId, stream_of};

use crate::error::{Inconsistency, ServiceError};
use crate::ledger::{Ledger, MAX_ATTEMPTS, STATE_REUSE};
use crate::unit_of_work::UnitOfWork;

/// A merchant to onboard: the domain command, with its generated keys already sealed.
pub type NewMerchant = OnboardMerchant;

/// A merchant found by its client key, with the key still current.
#[derive(Debug, Clone)]
pub struct AuthenticatedMerchant {
    /// Its state at `version`: just read from the log, or (for initiation) confirmed current
    /// within `STATE_REUSE`.
    pub merchant: Merchant,
    /// The stream version that state is at.
    pub version: u64,
}

impl Ledger {
    /// Onboards a merchant and claims its client key, atomically.
    pub async fn onboard_merchant(
        &self,
        command: NewMerchant,
        context: &CommandContext,
    ) -> Result<Merchant, ServiceError> {
        let merchant_stream = stream_of::<Merchant>(command.merchant_id)?;
        let key_stream = stream_of::<ClientKeyClaim>(command.client_key.as_str())?;
        let mut unit = UnitOfWork::new(context.clone());
        let claim = AssignClientKey {
            merchant_id: command.merchant_id,
            at: command.at,
        };
        unit.decide(&self.client_keys, &key_stream, &Loaded::default(), &claim)?;
        let events = unit.decide(
            &self.merchants,
            &merchant_stream,
            &Loaded::default(),
            &MerchantCommand::Onboard(command),
        )?;
        unit.commit(&self.store).await?;
        Merchant::fold(&events).ok_or(ServiceError::UnknownMerchant)
    }

    /// Replaces a merchant's client key and salt; the old ones stop working from this event on.
    pub async fn rotate_merchant_keys(
        &self,
        merchant_id: MerchantId,
        client_key: ClientKey,
        client_salt: SealedSecret,
        context: &CommandContext,
    ) -> Result<Merchant, ServiceError> {
        let merchant_stream = stream_of::<Merchant>(merchant_id)?;
        let key_stream = stream_of::<ClientKeyClaim>(client_key.as_str())?;
        for _ in 0..MAX_ATTEMPTS {
            let loaded = self.merchants.load(&merchant_stream).await?;
            let at = self.now();
            let mut unit = UnitOfWork::new(context.clone());
            let claim = AssignClientKey { merchant_id, at };
            unit.decide(&self.client_keys, &key_stream, &Loaded::default(), &claim)?;
            let command = MerchantCommand::RotateKeys {
                client_key: client_key.clone(),
                client_salt: client_salt.clone(),
                at,
            };
            let events = unit.decide(&self.merchants, &merchant_stream, &loaded, &command)?;
            match unit.commit(&self.store).await {
                Ok(_) => {
                    let state = events.iter().fold(loaded.state, Merchant::evolve);
                    return state.ok_or(ServiceError::UnknownMerchant);
                }
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
    }

    /// The merchant a client key identifies, if the key is its current one.
    ///
    /// Reads whatever the merchant's stream recorded since the last request, so a key rotated
    /// on any replica is refused here from the next request on.
    pub async fn merchant_by_client_key(
        &self,
        client_key: &str,
    ) -> Result<Option<AuthenticatedMerchant>, ServiceError> {
        let Some(merchant_id) = self.client_key_owner(client_key).await? else {
            return Ok(None);
        };
        let loaded = self
            .merchants
            .load(&stream_of::<Merchant>(merchant_id)?)
            .await?;
        let merchant = claimed_merchant(merchant_id, loaded.state)?;
        if !merchant.accepts_client_key(client_key) {
            return Ok(None);
        }
        Ok(Some(AuthenticatedMerchant {
            merchant,
            version: loaded.version,
        }))
    }

    /// A merchant's current state and version, as [`Ledger::initiate_payment`] takes it.
    pub async fn current_merchant(
        &self,
        merchant_id: MerchantId,
    ) -> Result<AuthenticatedMerchant, ServiceError> {
        let loaded = self
            .merchants
            .load(&stream_of::<Merchant>(merchant_id)?)
            .await?;
        let merchant = loaded.state.ok_or(ServiceError::UnknownMerchant)?;
        Ok(AuthenticatedMerchant {
            merchant,
            version: loaded.version,
        })
    }

    /// Like [`Ledger::merchant_by_client_key`], from memory only: the merchant if this process
    /// found its state current within `STATE_REUSE` (100 ms) and it still holds `client_key`. For a
    /// request whose effect is checked against the merchant's version when it is appended
    /// (payment initiation); a signature that fails against it must be checked again against a
    /// fresh read (the keys may have been regenerated by another replica).
    pub fn recent_merchant_by_client_key(&self, client_key: &str) -> Option<AuthenticatedMerchant> {
        let key_stream = client_key_stream(client_key)?;
        let merchant_id = self.client_keys.cached(&key_stream).state.merchant_id()?;
        let stream = stream_of::<Merchant>(merchant_id).ok()?;
        let (loaded, recent) = self.merchants.cached_within(&stream, STATE_REUSE);
        let merchant = loaded
            .state
            .filter(|m| recent && m.accepts_client_key(client_key))?;
        Some(AuthenticatedMerchant {
            merchant,
            version: loaded.version,
        })
    }

    /// The merchant a client key was ever issued to, current or rotated away.
    ///
    /// For PSP webhook intake only: there the key is part of an address configured in the PSP's
    /// dashboard, the PSP's signature is what authenticates the message, and a payment outcome
    /// must not be lost because the merchant's API keys were regenerated.
    pub async fn merchant_by_issued_client_key(
        &self,
        client_key: &str,
    ) -> Result<Option<Merchant>, ServiceError> {
        let Some(merchant_id) = self.client_key_owner(client_key).await? else {
            return Ok(None);
        };
        let merchant = self
            .merchants
            .load(&stream_of::<Merchant>(merchant_id)?)
            .await?
            .state;
        Ok(Some(claimed_merchant(merchant_id, merchant)?))
    }

    async fn client_key_owner(&self, client_key: &str) -> Result<Option<MerchantId>, ServiceError> {
        let Some(key_stream) = client_key_stream(client_key) else {
            return Ok(None);
        };
        // A claim never changes once made: the cache answers without a read when it knows it.
        Ok(
            match self.client_keys.cached(&key_stream).state.merchant_id() {
                Some(id) => Some(id),
                None => self
                    .client_keys
                    .load(&key_stream)
                    .await?
                    .state
                    .merchant_id(),
            },
        )
    }

    /// Decides `commands` in order on the merchant and appends all their events at once (an
    /// admin edit of several settings); any refusal appends nothing.
    pub async fn update_merchant(
        &self,
        merchant_id: MerchantId,
        commands: &[MerchantCommand],
        context: &CommandContext,
    ) -> Result<Merchant, ServiceError> {
        let stream = stream_of::<Merchant>(merchant_id)?;
        self.execute_all(&self.merchants, &stream, commands, context)
            .await?
            .state
            .ok_or(ServiceError::UnknownMerchant)
    }

    /// A merchant's current state.
    pub async fn merchant(&self, merchant_id: MerchantId) -> Result<Merchant, ServiceError> {
        Ok(self.current_merchant(merchant_id).await?.merchant)
    }
}

/// The stream of a client key's claim; `None` for a string that is no client key.
fn client_key_stream(client_key: &str) -> Option<StreamId> {
    let key = ClientKey::parse(client_key).ok()?;
    stream_of::<ClientKeyClaim>(key.as_str()).ok()
}

/// The merchant a client key's claim names: a key is claimed in the same append that onboards
/// its merchant or gives it the key, so the merchant always has a state.
fn claimed_merchant(
    merchant_id: MerchantId,
    merchant: Option<Merchant>,
) -> Result<Merchant, ServiceError> {
    merchant.ok_or(ServiceError::Inconsistent(
        Inconsistency::ClaimedByNoMerchant(merchant_id),
    ))
}
