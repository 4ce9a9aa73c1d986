//! What the log says happened, read once from its first event to its last: every event's id
//! and position in order, each payment with its commission, each merchant webhook delivery.

use std::collections::HashMap;

use lightspeed_domain::payment::PaymentEvent;
use lightspeed_domain::wallet::WalletEvent;
use lightspeed_domain::webhook_delivery::WebhookDeliveryEvent;
use lightspeed_domain::{
    BasisPoints, Decider, MerchantId, Paise, Payment, Wallet, WebhookDelivery,
};
use lightspeed_eventstore::limits::MAX_READ_BATCH;
use lightspeed_eventstore::{EventStore, LogPosition, PgEventStore, RecordedEvent};

/// One payment as the log tells it.
#[derive(Debug, Clone)]
pub struct PaymentFacts {
    /// Its merchant.
    pub merchant_id: MerchantId,
    /// The merchant's order id.
    pub order_id: String,
    /// Amount.
    pub amount: Paise,
    /// The fee in force at initiation.
    pub fee: BasisPoints,
    /// The commission of each `PaymentSucceeded`.
    pub successes: Vec<Paise>,
    /// How many `PaymentFailed`.
    pub failures: u32,
    /// Whether it was refunded.
    pub refunded: bool,
    /// The commission of each `CommissionAccrued` for it.
    pub commissions: Vec<Paise>,
}

impl PaymentFacts {
    /// `succeeded`, `failed` or `pending` (a success after a failure counts).
    pub fn status(&self) -> &'static str {
        if !self.successes.is_empty() || self.refunded {
            "succeeded"
        } else if self.failures > 0 {
            "failed"
        } else {
            "pending"
        }
    }
}

/// One merchant webhook delivery.
#[derive(Debug, Clone)]
pub struct DeliveryFacts {
    /// The payment it is about.
    pub payment_id: String,
    /// `payment.created`, …
    pub event_type: String,
    /// Whether the merchant's endpoint accepted it.
    pub delivered: bool,
}

/// The log, read.
#[derive(Debug, Default)]
pub struct LogFacts {
    /// Every event's id and position, in log order.
    pub events: Vec<(uuid::Uuid, LogPosition)>,
    /// Payments by id.
    pub payments: HashMap<String, PaymentFacts>,
    /// Deliveries by id (their `webhook-id`).
    pub deliveries: HashMap<String, DeliveryFacts>,
    /// Events of these streams that did not decode.
    pub undecodable: Vec<String>,
}

/// Reads the whole log.
pub async fn read(store: &PgEventStore) -> anyhow::Result<LogFacts> {
    let mut facts = LogFacts::default();
    let mut after = LogPosition::START;
    loop {
        let batch = store.read_log(after, None, MAX_READ_BATCH).await?;
        let Some(last) = batch.last() else {
            return Ok(facts);
        };
        after = last.log_position;
        for event in &batch {
            facts.events.push((event.event_id, event.log_position));
            if let Err(why) = facts.absorb(event) {
                facts.undecodable.push(format!(
                    "{} in {}: {why}",
                    event.event_type, event.stream_id
                ));
            }
        }
    }
}

impl LogFacts {
    fn absorb(&mut self, event: &RecordedEvent) -> Result<(), lightspeed_domain::UpcastError> {
        let stream = event.stream_id.id().to_owned();
        match event.stream_id.category() {
            c if c == <Payment as Decider>::CATEGORY => self.payment(stream, event.decode()?),
            c if c == <Wallet as Decider>::CATEGORY => self.wallet(event.decode()?),
            c if c == <WebhookDelivery as Decider>::CATEGORY => {
                self.delivery(stream, event.decode()?);
            }
            _ => {}
        }
        Ok(())
    }

    fn payment(&mut self, id: String, event: PaymentEvent) {
        if let PaymentEvent::PaymentInitiated {
            merchant_id,
            amount,
            merchant_order_id,
            fee,
            ..
        } = &event
        {
            // A second PaymentInitiated in one stream would be a broken decider: keep the first.
            self.payments.entry(id.clone()).or_insert(PaymentFacts {
                merchant_id: *merchant_id,
                order_id: merchant_order_id.clone(),
                amount: *amount,
                fee: *fee,
                successes: Vec::new(),
                failures: 0,
                refunded: false,
                commissions: Vec::new(),
            });
        }
        let Some(payment) = self.payments.get_mut(&id) else {
            return;
        };
        match event {
            PaymentEvent::PaymentSucceeded { commission, .. } => payment.successes.push(commission),
            PaymentEvent::PaymentFailed { .. } => payment.failures += 1,
            PaymentEvent::PaymentRefunded { .. } => payment.refunded = true,
            _ => {}
        }
    }

    fn wallet(&mut self, event: WalletEvent) {
        if let WalletEvent::CommissionAccrued {
            payment_id,
            commission,
            ..
        } = event
            && let Some(payment) = self.payments.get_mut(&payment_id.to_string())
        {
            payment.commissions.push(commission);
        }
    }

    fn delivery(&mut self, id: String, event: WebhookDeliveryEvent) {
        match event {
            // Test events report on no payment, so nothing is checked of them.
            WebhookDeliveryEvent::WebhookDeliveryQueued {
                payment_id: Some(payment_id),
                event_type,
                ..
            } => {
                self.deliveries.insert(
                    id,
                    DeliveryFacts {
                        payment_id: payment_id.to_string(),
                        event_type,
                        delivered: false,
                    },
                );
            }
            WebhookDeliveryEvent::WebhookDelivered { .. } => {
                if let Some(delivery) = self.deliveries.get_mut(&id) {
                    delivery.delivered = true;
                }
            }
            _ => {}
        }
    }
}
