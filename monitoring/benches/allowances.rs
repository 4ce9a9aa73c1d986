//! What holding a rate across API replicas costs a request: the round trip of one claim
//! (`ops.claim_allowance`) beside a bare `SELECT 1` on the same pool (the ceiling: the least a
//! PostgreSQL call costs here), and the share of a claim each request carries at several rates,
//! since a replica claims a twentieth of a merchant's rate at a time.
//!
//! `cargo bench -p lightspeed-monitoring --bench allowances` (`BENCH_CLAIMS`, default 20 000).

use std::time::{Duration, Instant};

use chrono::Utc;
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_monitoring::allowances::{self, Rate};

/// A replica claims this fraction of a rate at a time (as `api`'s `protection.rs` does).
const CLAIM_FRACTION: u32 = 20;

#[tokio::main]
async fn main() {
    let claims: usize = std::env::var("BENCH_CLAIMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let db = TestDatabase::new().await;
    let ceiling = timed(claims, || async {
        sqlx::query("SELECT 1")
            .execute(&db.pool)
            .await
            .expect("select");
    })
    .await;
    // A rate no claim exhausts, so every claim takes the same path as an admitted request.
    let rate = Rate {
        per_minute: 60_000_000,
    };
    let claim = timed(claims, || async {
        allowances::claim(&db.pool, "bench-merchant", Utc::now(), 1, rate)
            .await
            .expect("claim");
    })
    .await;
    println!("calls: {claims} each, sequential, one connection at a time");
    println!(
        "SELECT 1 (ceiling): p50 {:?}  p99 {:?}",
        ceiling.0, ceiling.1
    );
    println!("claim:              p50 {:?}  p99 {:?}", claim.0, claim.1);
    for per_minute in [100_u32, 6_000, 600_000] {
        let per_claim = (per_minute / CLAIM_FRACTION).max(1);
        println!(
            "rate {per_minute}/min: one claim per {per_claim} requests, {:?} a request at the p50",
            claim.0 / per_claim
        );
    }
}

/// The p50 and p99 of `count` sequential calls of `call`.
async fn timed<F, Fut>(count: usize, call: F) -> (Duration, Duration)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut took = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        call().await;
        took.push(started.elapsed());
    }
    took.sort_unstable();
    (took[count / 2], took[count * 99 / 100])
}
