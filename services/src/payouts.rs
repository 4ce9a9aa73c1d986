//! Commission payouts and manual settlements: the wallet commands that collect what merchants
//! owe.
//!
//! A payout run asks every merchant's wallet for its automatic payout amount and records
//! `PayoutRequested` under a payout id derived from the merchant and the run's label, so running
//! the same run again (a retry, a second replica, an admin click) requests nothing new. The
//! transfer itself is made from the log by the payouts worker; RazorpayX's webhooks come back
//! through [`Ledger::record_payout_update`], which ignores what arrives after a terminal state.

use lightspeed_domain::merchant::Merchant;
use lightspeed_domain::validation::Problem;
use lightspeed_domain::wallet::{
    PayoutReversalReason, PayoutStatus, Wallet, WalletCommand, WalletError,
};
use lightspeed_domain::{Decider, MerchantId, Paise, PayoutId};
use lightspeed_eventstore::lookups::{self, PayloadMatch};
use lightspeed_eventstore::{CommandContext, StreamId, stream_of};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ServiceError;
use crate::ledger::Ledger;

/// The payout a run makes for a merchant: the same merchant and run label give the same id.
pub fn payout_id_for(merchant_id: MerchantId, run: &str) -> PayoutId {
    let mut hasher = Sha256::new();
    hasher.update(b"commission-payout");
    for part in [merchant_id.as_uuid().as_bytes().as_slice(), run.as_bytes()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    PayoutId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// The wallet event that requests a payout.
const PAYOUT_REQUESTED: &str = "PayoutRequested";

/// The field of its payload naming the payout.
const PAYOUT_ID_FIELD: &str = "payout_id";

/// The merchant event that opens a merchant's stream.
const MERCHANT_ONBOARDED: &str = "MerchantOnboarded";

/// Longest payout run label, in characters.
pub const MAX_RUN_LABEL_CHARS: usize = 64;

/// One payout a run requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestedPayout {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// The payout.
    pub payout_id: PayoutId,
    /// Its amount.
    pub amount: Paise,
}

/// What a payout run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PayoutRunReport {
    /// The run's label (e.g. the IST date of a daily run).
    pub run: String,
    /// Payouts requested by this call.
    pub requested: Vec<RequestedPayout>,
    /// Merchants whose payout for this run was requested before.
    pub already_requested: u64,
    /// Merchants whose available balance is under their payout minimum.
    pub below_minimum: u64,
    /// Merchants that could not be handled, and why; running again retries them.
    pub failures: Vec<PayoutRunFailure>,
}

/// A merchant a payout run could not handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayoutRunFailure {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// Why.
    pub reason: String,
}

/// What RazorpayX (or anyone settling a payout) reports about a payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutSettlement {
    /// The money reached the beneficiary; `reference` is the bank's UTR or the provider's id.
    Paid {
        /// Reference kept with the payout.
        reference: String,
    },
    /// The payout failed, was rejected or cancelled, or was reversed after processing.
    Reversed {
        /// Why.
        reason: PayoutReversalReason,
        /// The provider's explanation.
        detail: String,
    },
}

/// What recording a payout update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutUpdateRecorded {
    /// The wallet recorded it; the payout is now in this status.
    Recorded(PayoutStatus),
    /// Nothing was appended: the update repeats what is known or arrived after a terminal state.
    Ignored,
}

impl Ledger {
    /// A merchant's wallet as the log has it now.
    pub async fn wallet(&self, merchant_id: MerchantId) -> Result<Wallet, ServiceError> {
        Ok(self.wallets.load(&wallet_stream(merchant_id)?).await?.state)
    }

    /// Requests, for every merchant whose available balance reaches its automatic payout
    /// minimum (and at least `floor`), a payout of all of it, under the id
    /// [`payout_id_for`] the merchant and `run`.
    pub async fn run_payouts(
        &self,
        run: &str,
        floor: Paise,
        context: &CommandContext,
    ) -> Result<PayoutRunReport, ServiceError> {
        let run = run.trim();
        let problem = if run.is_empty() {
            Some(Problem::Empty)
        } else if run.chars().count() > MAX_RUN_LABEL_CHARS {
            Some(Problem::TooLong {
                max: MAX_RUN_LABEL_CHARS,
            })
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(WalletError::Invalid(problem.at("run")).into());
        }
        let mut report = PayoutRunReport {
            run: run.to_owned(),
            ..PayoutRunReport::default()
        };
        for merchant_id in self.onboarded_merchants().await? {
            match self.request_payout(merchant_id, run, floor, context).await {
                Ok(Some(requested)) => report.requested.push(requested),
                Ok(None) => report.below_minimum += 1,
                Err(ServiceError::Wallet(error)) if error.is_already_recorded() => {
                    report.already_requested += 1
                }
                Err(error) => report.failures.push(PayoutRunFailure {
                    merchant_id,
                    reason: error.to_string(),
                }),
            }
        }
        Ok(report)
    }

    async fn request_payout(
        &self,
        merchant_id: MerchantId,
        run: &str,
        floor: Paise,
        context: &CommandContext,
    ) -> Result<Option<RequestedPayout>, ServiceError> {
        let merchant = self.merchant(merchant_id).await?;
        let stream = wallet_stream(merchant_id)?;
        let wallet = self.wallets.load(&stream).await?.state;
        let payout_id = payout_id_for(merchant_id, run);
        if wallet.payout(payout_id).is_some() {
            return Err(WalletError::PayoutAlreadyRequested(payout_id).into());
        }
        let Some(amount) = wallet
            .automatic_payout_amount(merchant.thresholds())
            .filter(|amount| *amount >= floor)
        else {
            return Ok(None);
        };
        let command = WalletCommand::RequestPayout {
            payout_id,
            amount,
            at: self.now(),
        };
        // The payout id names the command too, so a retried request (another replica's, deciding
        // on the same wallet at another instant) stores nothing new.
        let context = CommandContext {
            command_id: Some(payout_id.as_uuid()),
            metadata: context.metadata.clone(),
        };
        self.wallets
            .execute_observed(&stream, &command, &context)
            .await?;
        Ok(Some(RequestedPayout {
            merchant_id,
            payout_id,
            amount,
        }))
    }

    /// The merchant whose wallet requested `payout_id`, from the log.
    pub async fn payout_merchant(
        &self,
        payout_id: PayoutId,
    ) -> Result<Option<MerchantId>, ServiceError> {
        let requested = PayloadMatch {
            category: <Wallet as Decider>::CATEGORY,
            event_type: PAYOUT_REQUESTED,
            field: PAYOUT_ID_FIELD,
            value: &payout_id.to_string(),
        };
        let stream = lookups::stream_matching(self.store.pool(), &requested)
            .await
            .map_err(|e| ServiceError::Store(e.to_string()))?;
        Ok(stream.and_then(|stream| stream.id().parse::<Uuid>().ok().map(MerchantId)))
    }

    /// Records what the provider reports about a payout. Paid applies to a pending payout; a
    /// reversal applies to a pending payout, or (only as a bank reversal) to a paid-out one;
    /// anything after the reversal, or repeating what is known, is ignored. With a command id, a
    /// retry is answered with what its first try recorded, whatever the provider said this time.
    pub async fn record_payout_update(
        &self,
        merchant_id: MerchantId,
        payout_id: PayoutId,
        settlement: PayoutSettlement,
        context: &CommandContext,
    ) -> Result<PayoutUpdateRecorded, ServiceError> {
        let stream = wallet_stream(merchant_id)?;
        let wallet = self.wallets.load(&stream).await?.state;
        let status = wallet
            .payout(payout_id)
            .map(|payout| payout.status)
            .ok_or(WalletError::UnknownPayout(payout_id))?;
        let at = self.now();
        let command = match (status, settlement) {
            (PayoutStatus::Pending, PayoutSettlement::Paid { reference }) => {
                WalletCommand::RecordPayoutPaid {
                    payout_id,
                    reference,
                    at,
                }
            }
            (PayoutStatus::Pending, PayoutSettlement::Reversed { reason, detail })
            | (
                PayoutStatus::PaidOut,
                PayoutSettlement::Reversed {
                    reason: reason @ PayoutReversalReason::Reversed,
                    detail,
                },
            ) => WalletCommand::RecordPayoutReversed {
                payout_id,
                reason,
                detail,
                at,
            },
            _ => return Ok(PayoutUpdateRecorded::Ignored),
        };
        match self
            .wallets
            .execute_observed(&stream, &command, context)
            .await
        {
            Ok(executed) if executed.idempotent_replay => Ok(PayoutUpdateRecorded::Ignored),
            Ok(executed) => Ok(PayoutUpdateRecorded::Recorded(
                executed
                    .state
                    .payout(payout_id)
                    .map_or(status, |payout| payout.status),
            )),
            Err(lightspeed_eventstore::CommandError::Rejected(error))
                if error.is_already_recorded() =>
            {
                Ok(PayoutUpdateRecorded::Ignored)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Records a settlement made outside the payout system; answers the wallet after it.
    pub async fn record_manual_settlement(
        &self,
        merchant_id: MerchantId,
        reference: String,
        amount: Paise,
        note: String,
        context: &CommandContext,
    ) -> Result<Wallet, ServiceError> {
        // A merchant with no commission yet has no wallet stream: name the merchant first.
        self.merchant(merchant_id).await?;
        let command = WalletCommand::RecordManualSettlement {
            reference,
            amount,
            note,
            at: self.now(),
        };
        let executed = self
            .wallets
            .execute(&wallet_stream(merchant_id)?, &command, context)
            .await?;
        Ok(executed.state)
    }

    /// Every merchant onboarded, from the merchant streams (as committed now).
    async fn onboarded_merchants(&self) -> Result<Vec<MerchantId>, ServiceError> {
        let category = <Merchant as Decider>::CATEGORY;
        let streams = lookups::streams_recording(self.store.pool(), category, MERCHANT_ONBOARDED)
            .await
            .map_err(|e| ServiceError::Store(e.to_string()))?;
        streams
            .into_iter()
            .map(|stream| {
                stream
                    .id()
                    .parse::<Uuid>()
                    .map(MerchantId)
                    .map_err(|_| ServiceError::Store(format!("stream {stream} names no id")))
            })
            .collect()
    }
}

fn wallet_stream(merchant_id: MerchantId) -> Result<StreamId, ServiceError> {
    Ok(stream_of::<Wallet>(merchant_id)?)
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use lightspeed_domain::merchant::MerchantEvent;
    use lightspeed_domain::wallet::WalletEvent;

    use super::*;

    #[test]
    fn a_payout_request_is_found_by_its_type_and_payout_id_field() {
        let payout_id = PayoutId(Uuid::from_u128(7));
        let request = WalletEvent::PayoutRequested {
            payout_id,
            amount: Paise::rupees(1),
            at: DateTime::UNIX_EPOCH,
        };
        let (event_type, _, payload) = lightspeed_domain::encode(&request).expect("encodes");
        assert_eq!(event_type, PAYOUT_REQUESTED);
        assert_eq!(payload[PAYOUT_ID_FIELD], payout_id.to_string());
    }

    #[test]
    fn merchants_are_onboarded_by_a_merchant_event() {
        assert!(MerchantEvent::EVENT_TYPES.contains(&MERCHANT_ONBOARDED));
    }

    #[test]
    fn payout_ids_depend_on_merchant_and_run() {
        let a = MerchantId(Uuid::from_u128(1));
        let b = MerchantId(Uuid::from_u128(2));
        assert_eq!(
            payout_id_for(a, "2026-11-24"),
            payout_id_for(a, "2026-11-24")
        );
        assert_ne!(
            payout_id_for(a, "2026-11-24"),
            payout_id_for(a, "2026-11-25")
        );
        assert_ne!(
            payout_id_for(a, "2026-11-24"),
            payout_id_for(b, "2026-11-24")
        );
    }
}
