//! Time from a PSP webhook received to its commission in the log: `cargo bench --bench
//! webhook_commission`.
//!
//! The whole product runs in this process (API, relay, every worker queue) over real PostgreSQL
//! and NATS JetStream, with a fake Razorpay on loopback. For each payment: initiate it, wait
//! for its PSP order, then time from sending Razorpay's signed `payment.captured` to the
//! `CommissionAccrued` row being visible in `ledger.events` (polled every millisecond). Payments
//! run `BENCH_PAYERS` at a time (default 1, then 16), `BENCH_PAYMENTS` each round (default 300).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lightspeed_adapters::psp::{PspCredentials, psp_reference};
use lightspeed_adapters::secrets::Secret;
use lightspeed_api::testing::TestMerchant;
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::{GatewayId, Paise};
use serde_json::{Value, json};
use support::{World, world_configured};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WEBHOOK_SECRET: &str = "rzp_bench_webhook_secret";
const POLL: Duration = Duration::from_millis(1);
const WAIT_LIMIT: Duration = Duration::from_secs(60);

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fake Razorpay: no existing orders; a created order is named after its receipt.
async fn razorpay(world: &World, merchant: &TestMerchant, psp: &MockServer) -> GatewayId {
    Mock::given(method("GET"))
        .and(path("/v1/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"entity": "collection", "count": 0, "items": []})),
        )
        .mount(psp)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/orders"))
        .respond_with(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let receipt = body["receipt"].as_str().unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(json!({
                "id": format!("order_{}", &receipt[receipt.len().saturating_sub(14)..]),
                "entity": "order", "amount": body["amount"], "amount_paid": 0,
                "amount_due": body["amount"], "currency": "INR", "receipt": receipt,
                "offer_id": null, "status": "created", "attempts": 0, "notes": body["notes"],
                "created_at": 1_756_455_561
            }))
        })
        .mount(psp)
        .await;
    let credentials = PspCredentials::Razorpay {
        key_id: "rzp_test_bench".into(),
        key_secret: Secret::from("rzp_bench_key_secret"),
        webhook_secret: Secret::from(WEBHOOK_SECRET),
    };
    world
        .app
        .gateway(merchant, credentials, &psp.uri(), 1)
        .await
}

/// Polls `sql` (one `$1` text parameter) until it finds a row.
async fn until_row(world: &World, sql: &'static str, id: &str) {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let found: Option<i32> = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_optional(&world.app.db.pool)
            .await
            .expect("poll");
        if found.is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never got there");
        tokio::time::sleep(POLL).await;
    }
}

/// One payment: initiate, wait for the PSP order, then time webhook → commission.
async fn one(world: &World, merchant: &TestMerchant, gateway: GatewayId, n: usize) -> Duration {
    let id = world.initiate(merchant, &format!("BENCH-{n}")).await;
    until_row(
        world,
        "SELECT 1 FROM ledger.events WHERE event_type = 'PspOrderCreated' AND stream_id = 'payment-' || $1",
        &id,
    )
    .await;
    let reference = psp_reference(id.parse().expect("uuid"));
    let body = json!({
        "entity": "event", "account_id": "acc_BFQ7uQEaa7j2z7", "event": "payment.captured",
        "contains": ["payment"],
        "payload": {"payment": {"entity": {
            "id": format!("pay_{n:014}"), "entity": "payment", "amount": 49_900, "currency": "INR",
            "status": "captured", "order_id": format!("order_{}", &reference[reference.len().saturating_sub(14)..]),
            "method": "upi", "captured": true, "notes": {"lightspeed_reference": reference},
            "error_code": null, "created_at": 1_567_674_599
        }}},
        "created_at": 1_567_674_606
    })
    .to_string()
    .into_bytes();
    let signature =
        lightspeed_adapters::psp::razorpay::sign_webhook_body(&Secret::from(WEBHOOK_SECRET), &body);
    let started = Instant::now();
    let response = world
        .app
        .http
        .post(format!(
            "{}/webhook/{}/{gateway}",
            world.app.url, merchant.client_key
        ))
        .header("x-razorpay-signature", signature)
        .header("x-razorpay-event-id", format!("evt_bench_{n}"))
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(response.status(), 200, "webhook refused");
    until_row(
        world,
        "SELECT 1 FROM ledger.events WHERE event_type = 'CommissionAccrued' AND payload->>'payment_id' = $1",
        &id,
    )
    .await;
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let payments = setting("BENCH_PAYMENTS", 300);
    let payer_rounds: Vec<usize> = match std::env::var("BENCH_PAYERS") {
        Ok(v) => v.split(',').filter_map(|p| p.trim().parse().ok()).collect(),
        Err(_) => vec![1, 16],
    };
    let world = Arc::new(
        world_configured(|config| {
            config.initiate_per_minute = std::num::NonZeroU32::new(1_000_000).expect("non-zero");
        })
        .await,
    );
    // Never suspended by the commission the run accrues.
    let merchant = Arc::new(
        world
            .merchant_with(Thresholds {
                suspend_at: Paise::rupees(1_000_000_000),
                warn_at: Paise::rupees(1_000_000_000),
                ..Thresholds::default()
            })
            .await,
    );
    let psp = MockServer::start().await;
    let gateway = razorpay(&world, &merchant, &psp).await;
    // Warm-up: connections, consumers and caches.
    for n in 0..20 {
        one(&world, &merchant, gateway, n).await;
    }
    println!(
        "webhook received → CommissionAccrued visible in the log ({payments} payments per round)"
    );
    println!(
        "{:>7} {:>9} {:>9} {:>9} {:>9}",
        "payers", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut next = 1_000;
    for payers in payer_rounds {
        let mut tasks = Vec::new();
        for payer in 0..payers {
            let (world, merchant) = (Arc::clone(&world), Arc::clone(&merchant));
            let share = payments / payers + usize::from(payer < payments % payers);
            let first = next + payer * payments;
            tasks.push(tokio::spawn(async move {
                let mut times = Vec::with_capacity(share);
                for n in first..first + share {
                    times.push(one(&world, &merchant, gateway, n).await);
                }
                times
            }));
        }
        next += payers * payments + payments;
        let mut times = Vec::new();
        for task in tasks {
            times.extend(task.await.expect("payer"));
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{payers:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            ms(percentile(&times, 0.50)),
            ms(percentile(&times, 0.90)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().expect("some"))
        );
    }
}
