//! `POST /payment/initiate` under concurrent load, beside the log's raw single-insert ceiling
//! measured in the same run: `cargo bench --bench initiate`.
//!
//! The API runs in this process on a loopback port; 64 client tasks (each its own HTTP/1.1
//! connection, on hyper's connection API: no pool, redirects or retries to pay for on the two
//! cores the API and the database use) send signed requests with distinct order ids.
//! Settings (environment): `BENCH_SECONDS` (60), `BENCH_CONNECTIONS` (64), `BENCH_MERCHANTS`
//! (10), `BENCH_GATEWAYS` (20); `BENCH_TIMELINE` (set to anything) also prints each second's
//! requests, p50, p99 and max to stderr, to tell a stall from a steady tail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use lightspeed_adapters::secrets::Keyring;
use lightspeed_api::{ApiConfig, AppState, app};
use lightspeed_domain::SystemClock;
use lightspeed_eventstore::PgEventStore;
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_services::Ledger;

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/load.rs"]
mod load;
mod support;

use support::onboard;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Single-row INSERTs, one per transaction, from `writers` connections for `seconds`.
async fn raw_ceiling(db: &TestDatabase, writers: usize, seconds: u64) -> f64 {
    let pool = db.another_pool(writers as u32).await;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, stream_id text NOT NULL, payload jsonb NOT NULL)")
        .execute(&pool)
        .await
        .expect("table");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (pool, stop, done) = (pool.clone(), Arc::clone(&stop), Arc::clone(&done));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    sqlx::query("INSERT INTO bench_raw (stream_id, payload) VALUES ($1, '{\"amount\":49900}')")
                        .bind(uuid::Uuid::now_v7().to_string())
                        .execute(&pool)
                        .await
                        .expect("insert");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("writer");
    }
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}

#[tokio::main]
async fn main() {
    lightspeed_adapters::http::install_crypto_provider();
    let seconds = setting("BENCH_SECONDS", 60);
    let connections = setting("BENCH_CONNECTIONS", 64) as usize;
    let merchant_count = setting("BENCH_MERCHANTS", 10) as usize;
    let gateway_count = setting("BENCH_GATEWAYS", 20) as usize;

    let db = TestDatabase::new().await;
    let pool = db.another_pool(32).await;
    let store = PgEventStore::new(pool, Arc::new(SystemClock));
    let ledger = Ledger::new(store);
    let keyring = Arc::new(Keyring::random("bench").expect("keyring"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api = listener.local_addr().expect("addr");
    let url = format!("http://{api}");
    let mut config = ApiConfig::new(url.clone());
    config.initiate_per_minute = std::num::NonZeroU32::new(100_000_000).expect("non-zero");
    let state = AppState::new(ledger.clone(), Arc::clone(&keyring), config, None);
    let router = app(state, Router::new());
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });

    let mut merchants = Vec::new();
    for _ in 0..merchant_count {
        merchants.push(onboard(&ledger, &keyring, gateway_count, &url).await);
    }
    eprintln!(
        "{merchant_count} merchants with {gateway_count} gateways each; {connections} connections, {seconds} s per case"
    );

    let ceiling = raw_ceiling(&db, connections, 10).await;
    let many = load::load(api, &merchants, connections, seconds, "many").await;
    let one = load::load(api, &merchants[..1], connections, seconds, "one").await;

    println!(
        "| case | requests/s | p50 ms | p99 ms | max ms | errors | bench process CPU µs per request | busy cores |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| raw single-row INSERT per transaction ({connections} writers) | {ceiling:.0} | | | | | | |"
    );
    for (name, o) in [
        (
            format!("{merchant_count} merchants × {gateway_count} gateways"),
            &many,
        ),
        (format!("1 merchant × {gateway_count} gateways"), &one),
    ] {
        println!(
            "| initiate, {name} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.0} | {:.2} |",
            o.requests_per_s,
            o.p50_ms,
            o.p99_ms,
            o.max_ms,
            o.errors,
            o.process_us_per_request,
            o.busy_cores
        );
    }
}
