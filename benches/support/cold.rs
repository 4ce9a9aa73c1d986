//! One cold start of a merchant's initiation, and the figures of many: shared by the cold-start
//! and scale benches.

use std::time::{Duration, Instant};

use lightspeed_domain::Paise;
use lightspeed_domain::payment::PaymentDetails;
use lightspeed_eventstore::{CommandContext, PgEventStore};
use lightspeed_services::{Ledger, PaymentRequest};

use super::Merchant;

/// One cold start: a new ledger (empty caches) authenticates the merchant and initiates one
/// payment; the time of both.
pub async fn cold_start(store: &PgEventStore, merchant: &Merchant, order: String) -> Duration {
    let ledger = Ledger::new(store.clone());
    let started = Instant::now();
    let authenticated = ledger
        .merchant_by_client_key(&merchant.key)
        .await
        .expect("read")
        .expect("merchant");
    let request = PaymentRequest {
        amount: Paise(49_900),
        currency: "INR".into(),
        request_digest: order.clone(),
        order_id: order,
        details: PaymentDetails::default(),
    };
    ledger
        .initiate_payment(&authenticated, &request, &CommandContext::default())
        .await
        .expect("initiate");
    started.elapsed()
}

/// Median and 99th percentile, in milliseconds.
pub fn summary(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[index].as_secs_f64() * 1e3
    };
    (at(0.5), at(0.99))
}
