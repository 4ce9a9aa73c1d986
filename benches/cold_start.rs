//! The first payment a merchant initiates after a cold start (a new `Ledger`: every cache
//! empty), when its gateway's and wallet's streams hold a long history, beside the same on young
//! streams in the same run: `cargo bench --bench cold_start`.
//!
//! Three cases, each `BENCH_STARTS` (50) cold starts, median and p99 in milliseconds:
//! - young: the gateway and wallet streams hold about 1 000 events each;
//! - long: they hold `BENCH_HISTORY` (300 000) more, loaded from their snapshots;
//! - long, no snapshot: the same streams with `ledger.snapshots` emptied before each start, so
//!   they are folded from their first event (how every cold load went before snapshots).
//!
//! The history is decided by the domain's own deciders (gateway bookings, wallet commissions)
//! and appended through the store in batches, so the log is one the product accepts.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lightspeed_adapters::secrets::Keyring;
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::{BookingRequest, Gateway, GatewayCommand};
use lightspeed_domain::wallet::{Wallet, WalletCommand};
use lightspeed_domain::{BasisPoints, Decider, Paise, PaymentId, SystemClock};
use lightspeed_eventstore::handler::new_events;
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_eventstore::{
    CommandContext, CommandHandler, EventStore, ExpectedVersion, PgEventStore, StreamId, stream_of,
};
use lightspeed_services::Ledger;
use support::cold::{cold_start, summary};
use support::{Merchant, onboard};

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events appended per batch while growing a stream.
const BATCH: usize = 1_000;
/// Events the young streams are given.
const YOUNG: u64 = 1_000;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Appends `count` events decided by `D` from the stream's current state, `command(i)` each.
async fn grow<D: Decider>(
    store: &PgEventStore,
    stream: &StreamId,
    count: u64,
    command: impl Fn(u64) -> D::Command,
) {
    let loaded = CommandHandler::<D, _>::new(store.clone())
        .load(stream)
        .await
        .expect("load");
    let (mut state, mut version) = (loaded.state, loaded.version);
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..count {
        let events =
            D::decide(&state, &command(i)).unwrap_or_else(|e| panic!("refused at {i}: {e}"));
        state = events.iter().fold(state, |s, e| D::evolve(s, e));
        batch.extend(events);
        if batch.len() >= BATCH || i + 1 == count {
            let appended = new_events(stream, &batch, &CommandContext::default()).expect("encode");
            let expected = ExpectedVersion::Exact(version);
            version += appended.len() as u64;
            store
                .append(stream.clone(), expected, appended)
                .await
                .expect("append");
            batch.clear();
        }
    }
}

/// Gives the merchant's first gateway `count` bookings and its wallet `count` commissions,
/// spread over the past at one booking every two seconds.
async fn history(store: &PgEventStore, merchant: &Merchant, count: u64) {
    let now = chrono::Utc::now();
    let at = move |i: u64| now - chrono::Duration::seconds(2 * (count - i) as i64);
    let merchant_id = merchant.id;
    let gateway = stream_of::<Gateway>(merchant.gateways[0]).expect("stream");
    grow::<Gateway>(store, &gateway, count, |i| GatewayCommand::Book {
        payment_id: PaymentId::new(),
        request: BookingRequest {
            merchant_id,
            amount: Paise(49_900),
            settings: CheckoutSettings::default(),
            at: at(i),
        },
    })
    .await;
    let wallet = stream_of::<Wallet>(merchant_id).expect("stream");
    grow::<Wallet>(store, &wallet, count, |i| WalletCommand::AccrueCommission {
        payment_id: PaymentId::new(),
        amount: Paise(49_900),
        fee: BasisPoints::DEFAULT_FEE,
        commission: BasisPoints::DEFAULT_FEE.of(Paise(49_900)),
        at: at(i),
    })
    .await;
}

/// `starts` cold starts of the merchant, emptying the snapshots first when `without_snapshots`.
async fn measure(
    db: &TestDatabase,
    store: &PgEventStore,
    merchant: &Merchant,
    (case, starts, without_snapshots): (&str, u64, bool),
) -> (f64, f64) {
    let mut samples = Vec::new();
    for n in 0..starts {
        if without_snapshots {
            sqlx::query("TRUNCATE ledger.snapshots")
                .execute(&db.pool)
                .await
                .expect("truncate");
        }
        samples.push(cold_start(store, merchant, format!("{case}-{n}")).await);
        // Let the snapshot a cold load may write land before the next start.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    summary(samples)
}

#[tokio::main]
async fn main() {
    let long = setting("BENCH_HISTORY", 300_000);
    let starts = setting("BENCH_STARTS", 50);
    let db = TestDatabase::new().await;
    let store = PgEventStore::new(db.pool.clone(), Arc::new(SystemClock));
    let ledger = Ledger::new(store.clone());
    let keyring = Keyring::random("bench").expect("keyring");
    let url = "http://127.0.0.1:9";
    let young = onboard(&ledger, &keyring, 1, url).await;
    let old = onboard(&ledger, &keyring, 1, url).await;
    let grown = Instant::now();
    history(&store, &young, YOUNG).await;
    history(&store, &old, long).await;
    eprintln!(
        "history of {long} events per stream appended in {:?}",
        grown.elapsed()
    );
    // One load of the long streams keeps their first snapshots.
    cold_start(&store, &old, "prime".into()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cases = [
        ("young", &young, false, YOUNG),
        ("long", &old, false, long),
        ("long-no-snapshot", &old, true, long),
    ];
    println!("| case | events per stream | cold starts | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    for (case, merchant, without, events) in cases {
        let (p50, p99) = measure(&db, &store, merchant, (case, starts, without)).await;
        println!("| {case} | {events} | {starts} | {p50:.1} | {p99:.1} |");
    }
}
