//! The commission replay: per merchant, the wallet events folded with the domain's own
//! [`Wallet`] decider (`evolve`, the code the write side folds with), nothing from any read model.
//!
//! Payments succeeded and their volume come from `CommissionAccrued`, which the payment decider
//! guarantees exactly once per successful payment and which is appended atomically with
//! `PaymentSucceeded` (it carries the payment's amount); the read model counts them the same
//! way. "As of" an instant means the events recorded at or before it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use lightspeed_domain::wallet::WalletEvent;
use lightspeed_domain::{Decider, DomainEvent, MerchantId, Paise, Wallet};
use lightspeed_eventstore::{LogPosition, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::error::AuditError;

/// Which events count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    /// Only events recorded at or before this instant (`None`: all of them).
    pub as_of: Option<DateTime<Utc>>,
    /// Only this merchant's wallet (`None`: every merchant).
    pub merchant: Option<MerchantId>,
}

/// One merchant's commission, reconstructed from the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantCommission {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// Payments that succeeded (one commission each).
    pub payments_succeeded: u64,
    /// Their total amount.
    pub volume_paise: Paise,
    /// Total commission accrued.
    pub commission_accrued_paise: Paise,
    /// Total paid out.
    pub paid_out_paise: Paise,
    /// Total restored by reversals of paid-out payouts.
    pub reversed_paise: Paise,
    /// Total settled manually.
    pub settled_paise: Paise,
    /// Reserved by payouts requested and not yet paid out or reversed.
    pub pending_payouts_paise: Paise,
    /// What the merchant owes: accrued − paid out + reversed − settled.
    pub balance_due_paise: Paise,
}

impl MerchantCommission {
    /// The figures of one merchant's folded wallet.
    fn of(merchant_id: MerchantId, folded: &Folded) -> Self {
        let wallet = &folded.wallet;
        Self {
            merchant_id,
            payments_succeeded: wallet.accruals(),
            volume_paise: folded.volume,
            commission_accrued_paise: wallet.accrued(),
            paid_out_paise: wallet.paid_out(),
            reversed_paise: wallet.reversed(),
            settled_paise: wallet.settled(),
            pending_payouts_paise: wallet.pending(),
            balance_due_paise: wallet.balance_due(),
        }
    }

    /// The figures by column name of `read.wallet_balances`, in the order `audit commission`
    /// compares them.
    pub fn figures(&self) -> [(&'static str, i64); 8] {
        [
            (
                "payments_succeeded",
                i64::try_from(self.payments_succeeded).unwrap_or(i64::MAX),
            ),
            ("volume_paise", self.volume_paise.0),
            ("commission_accrued_paise", self.commission_accrued_paise.0),
            ("paid_out_paise", self.paid_out_paise.0),
            ("reversed_paise", self.reversed_paise.0),
            ("settled_paise", self.settled_paise.0),
            ("pending_payouts_paise", self.pending_payouts_paise.0),
            ("balance_due_paise", self.balance_due_paise.0),
        ]
    }
}

/// One stored event as the replay needs it; the payload is its stored JSON text.
#[derive(Debug, Clone, Copy)]
pub struct ReplayEvent<'a> {
    /// Where it sits in the read order (for messages).
    pub log_position: LogPosition,
    /// Its stream, `wallet-<merchant id>` for the events the replay folds.
    pub stream_id: &'a str,
    /// Its type name.
    pub event_type: &'a str,
    /// Its payload shape version.
    pub schema_version: u16,
    /// Its payload, JSON text.
    pub payload: &'a str,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// A wallet and the volume of the payments it accrued commission on.
#[derive(Debug, Clone, Default)]
struct Folded {
    wallet: Wallet,
    volume: Paise,
}

/// Folds events, in read order, into each merchant's commission.
#[derive(Debug, Clone, Default)]
pub struct CommissionReplay {
    filter: ReplayFilter,
    merchants: HashMap<MerchantId, Folded>,
    applied: u64,
}

/// True for the event types the replay folds (every wallet event); others are skipped unread.
pub fn folds(event_type: &str) -> bool {
    WalletEvent::EVENT_TYPES.contains(&event_type)
}

impl CommissionReplay {
    /// An empty replay counting the events `filter` lets through.
    pub fn new(filter: ReplayFilter) -> Self {
        Self {
            filter,
            ..Self::default()
        }
    }

    /// Folds the next event in read order; answers whether it counted.
    pub fn apply(&mut self, event: &ReplayEvent<'_>) -> Result<bool, AuditError> {
        if !folds(event.event_type) || self.after_as_of(event.recorded_at) {
            return Ok(false);
        }
        let merchant = wallet_owner(event.stream_id).ok_or_else(|| AuditError::Undecodable {
            position: event.log_position.position,
            why: format!(
                "{} on stream {:?}, not a merchant's wallet",
                event.event_type, event.stream_id
            ),
        })?;
        if self
            .filter
            .merchant
            .is_some_and(|wanted| wanted != merchant)
        {
            return Ok(false);
        }
        let wallet_event = decode_wallet(event.event_type, event.schema_version, event.payload)
            .map_err(|why| AuditError::Undecodable {
                position: event.log_position.position,
                why,
            })?;
        self.fold(merchant, &wallet_event);
        Ok(true)
    }

    /// Folds the next event in read order, as the event store hands it back.
    pub fn apply_recorded(&mut self, event: &RecordedEvent) -> Result<bool, AuditError> {
        if !folds(&event.event_type) || self.after_as_of(event.recorded_at) {
            return Ok(false);
        }
        let undecodable = |why: String| AuditError::Undecodable {
            position: event.log_position.position,
            why,
        };
        let merchant = wallet_owner(event.stream_id.as_str()).ok_or_else(|| {
            undecodable(format!(
                "{} on stream {}, not a merchant's wallet",
                event.event_type, event.stream_id
            ))
        })?;
        if self
            .filter
            .merchant
            .is_some_and(|wanted| wanted != merchant)
        {
            return Ok(false);
        }
        let wallet_event: WalletEvent = event.decode().map_err(|e| undecodable(e.to_string()))?;
        self.fold(merchant, &wallet_event);
        Ok(true)
    }

    fn after_as_of(&self, recorded_at: DateTime<Utc>) -> bool {
        self.filter.as_of.is_some_and(|as_of| recorded_at > as_of)
    }

    fn fold(&mut self, merchant: MerchantId, event: &WalletEvent) {
        let folded = self.merchants.entry(merchant).or_default();
        if let WalletEvent::CommissionAccrued { amount, .. } = event {
            folded.volume = folded.volume.saturating_add(*amount);
        }
        folded.wallet = <Wallet as Decider>::evolve(std::mem::take(&mut folded.wallet), event);
        self.applied += 1;
    }

    /// How many events counted so far.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Each merchant's commission so far, by merchant id.
    pub fn balances(&self) -> Vec<MerchantCommission> {
        let mut balances: Vec<MerchantCommission> = self
            .merchants
            .iter()
            .map(|(merchant, folded)| MerchantCommission::of(*merchant, folded))
            .collect();
        balances.sort_unstable_by_key(|b| b.merchant_id);
        balances
    }
}

/// Replays events given in read order: each merchant's commission, by merchant id.
pub fn replay_commission<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
    filter: ReplayFilter,
) -> Result<Vec<MerchantCommission>, AuditError> {
    let mut replay = CommissionReplay::new(filter);
    for event in events {
        replay.apply_recorded(event)?;
    }
    Ok(replay.balances())
}

/// The merchant owning a wallet stream, `wallet-<merchant id>`.
fn wallet_owner(stream_id: &str) -> Option<MerchantId> {
    let id = stream_id
        .strip_prefix(<Wallet as Decider>::CATEGORY)?
        .strip_prefix('-')?;
    id.parse().ok()
}

/// Decodes a stored wallet event straight from its payload text; a payload of an older shape
/// goes through the domain's upcasting decoder.
fn decode_wallet(
    event_type: &str,
    schema_version: u16,
    payload: &str,
) -> Result<WalletEvent, String> {
    // The domain's events are adjacently tagged: {"type": <event type>, "data": <payload>}.
    let mut tagged = String::with_capacity(payload.len() + event_type.len() + 20);
    tagged.push_str(r#"{"type":"#);
    tagged.push_str(&serde_json::Value::from(event_type).to_string());
    tagged.push_str(r#","data":"#);
    tagged.push_str(payload);
    tagged.push('}');
    match serde_json::from_str::<WalletEvent>(&tagged) {
        Ok(event) if event.schema_version() == schema_version => Ok(event),
        _ => {
            let payload = serde_json::from_str(payload).map_err(|e| e.to_string())?;
            lightspeed_domain::decode(event_type, schema_version, payload)
                .map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallet_events_decode_from_payload_text_as_the_domain_decodes_them() {
        let merchant = MerchantId::new();
        let payment = lightspeed_domain::PaymentId::new();
        let at = DateTime::from_timestamp_micros(1_790_000_000_000_000).unwrap_or_default();
        let event = WalletEvent::CommissionAccrued {
            payment_id: payment,
            amount: Paise(10_001),
            fee: lightspeed_domain::BasisPoints(350),
            commission: Paise(350),
            at,
        };
        let (event_type, schema_version, payload) =
            lightspeed_domain::encode(&event).expect("encode");
        let text = payload.to_string();
        assert_eq!(
            decode_wallet(event_type, schema_version, &text),
            Ok(event.clone())
        );
        // Another schema version goes through the domain's own (upcasting) decoder.
        assert_eq!(
            decode_wallet(event_type, 9, &text).ok(),
            lightspeed_domain::decode::<WalletEvent>(event_type, 9, payload.clone()).ok()
        );

        let mut replay = CommissionReplay::new(ReplayFilter::default());
        let stream = format!("wallet-{merchant}");
        let counted = replay
            .apply(&ReplayEvent {
                log_position: LogPosition::START,
                stream_id: &stream,
                event_type,
                schema_version,
                payload: &text,
                recorded_at: at,
            })
            .expect("applies");
        assert!(counted);
        let balances = replay.balances();
        assert_eq!(balances.len(), 1);
        assert_eq!(balances[0].merchant_id, merchant);
        assert_eq!(balances[0].payments_succeeded, 1);
        assert_eq!(balances[0].volume_paise, Paise(10_001));
        assert_eq!(balances[0].balance_due_paise, Paise(350));
    }

    #[test]
    fn a_wallet_event_outside_a_wallet_stream_is_refused() {
        let mut replay = CommissionReplay::new(ReplayFilter::default());
        let result = replay.apply(&ReplayEvent {
            log_position: LogPosition::START,
            stream_id: "payment-0190f0c2-0000-7000-8000-000000000001",
            event_type: "ManualSettlementRecorded",
            schema_version: 1,
            payload: "{}",
            recorded_at: Utc::now(),
        });
        assert!(
            matches!(result, Err(AuditError::Undecodable { .. })),
            "{result:?}"
        );
    }
}
