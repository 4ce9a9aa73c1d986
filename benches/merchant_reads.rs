//! A merchant's reads of its transactions when it holds a million payments among 10 000
//! merchants: `GET /transactions` pages and the CSV export, against `lightspeed serve` running
//! as its own process, beside ceilings measured in the same run: `cargo bench --bench
//! merchant_reads`.
//!
//! The merchants are onboarded through the ledger (each with a sandbox gateway); their
//! payments are decided by the payment decider and applied to the transactions read model by
//! the projector's own batch function (see `tests/support/transactions_fill.rs`), then the
//! table is analysed as autovacuum would after such a load. Every request is signed with the
//! merchant's key and salt and sent over one keep-alive HTTP/1.1 connection, one at a time.
//!
//! Per round: `/health` (the HTTP floor) and a signed one-row lookup by order id (the signed
//! floor); the first page (50 rows) and a page 900 000 rows deep in the cursor, each without
//! a filter, with `status=succeeded`, an amount range, a created range, and all three; then the
//! CSV export of all the merchant's rows (rows/s, and the API process's resident memory sampled
//! every 10 ms, its growth over the export) beside PostgreSQL's `COPY (SELECT …) TO STDOUT` of
//! the same columns in the same order.
//!
//! Settings (environment): `BENCH_MERCHANTS` (10 000), `BENCH_PAYMENTS` (1 000 000, the big
//! merchant's), `BENCH_OTHER_PAYMENTS` (10 per other merchant), `BENCH_REQUESTS` (300 per
//! case and round), `BENCH_ROUNDS` (3).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use lightspeed_api::testing::TestMerchant;
use lightspeed_domain::{GatewayId, Paise};
use lightspeed_projections::ProjectorDeps;
use lightspeed_projections::transactions::TransactionCursor;
use support::served_api::ServedApi;
use support::transactions_fill::{FilledPayment, PaymentRun, ensure_read_model, fill};
use support::{World, bare_world};

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Time between two of the big merchant's payments (a million span 35 days).
const SPACING_SECONDS: i64 = 3;
/// How deep the deep page starts: nine tenths of the rows from the newest (900 000 of a
/// million).
fn deep(payments: &[FilledPayment]) -> usize {
    payments.len() / 10 * 9
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A merchant with one sandbox gateway, and how initiation sees it.
async fn onboard(
    world: &World,
) -> (
    TestMerchant,
    GatewayId,
    lightspeed_domain::payment::MerchantSnapshot,
) {
    let merchant = world.app.merchant().await;
    let (gateway, _) = world.app.sandbox_gateway(&merchant, 0, None).await;
    let snapshot = world
        .app
        .ledger
        .current_merchant(merchant.id)
        .await
        .expect("merchant")
        .merchant
        .snapshot(Paise(0));
    (merchant, gateway, snapshot)
}

/// The merchants, the big one first, and the big one's payments, oldest first.
async fn populate(world: &World) -> (TestMerchant, Vec<FilledPayment>) {
    let (merchants, big, others) = (
        setting("BENCH_MERCHANTS", 10_000),
        setting("BENCH_PAYMENTS", 1_000_000),
        setting("BENCH_OTHER_PAYMENTS", 10),
    );
    let started = Instant::now();
    let onboarded: Vec<_> = futures::stream::iter(0..merchants)
        .map(|_| onboard(world))
        .buffered(16)
        .collect()
        .await;
    eprintln!(
        "{merchants} merchants onboarded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    lightspeed_eventstore::testing::settled(&world.app.db.pool).await;
    ensure_read_model(&ProjectorDeps {
        store: world.app.ledger.store().clone(),
        live: None,
    })
    .await;
    let spacing = TimeDelta::seconds(SPACING_SECONDS);
    let now = Utc::now();
    let runs: Vec<PaymentRun<'_>> = onboarded
        .iter()
        .enumerate()
        .map(|(m, (_, gateway, snapshot))| {
            let count = if m == 0 { big } else { others };
            PaymentRun {
                merchant: *snapshot,
                gateways: std::slice::from_ref(gateway),
                count,
                first: now - spacing * i32::try_from(count).expect("count"),
                spacing,
                order_prefix: "ORD",
            }
        })
        .collect();
    let started = Instant::now();
    let mut filled = fill(&world.app.db.pool, &runs).await;
    let rows: usize = filled.iter().map(Vec::len).sum();
    eprintln!(
        "{rows} payments applied in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    analyse(world).await;
    let (merchant, _, _) = onboarded.into_iter().next().expect("a merchant");
    (merchant, filled.swap_remove(0))
}

/// What autovacuum does after a bulk load: the planner's statistics and the visibility map.
async fn analyse(world: &World) {
    let version = lightspeed_projections::versions::active(&world.app.db.pool, "transactions")
        .await
        .expect("versions")
        .expect("active");
    let sql = format!("VACUUM ANALYZE {}.transactions", version.schema_name);
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&world.app.db.pool)
        .await
        .expect("vacuum analyze");
}

/// p50 and p99 of `samples`, in ms.
fn quantiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

/// Times `requests` GETs of `path` (signed as `merchant` when given), after 20 unmeasured;
/// each must answer 200 with at least `min_items` items when it is a page.
async fn latency(
    api: &ServedApi,
    merchant: Option<&TestMerchant>,
    path: &str,
    requests: usize,
    min_items: usize,
) -> (f64, f64) {
    let mut samples = Vec::with_capacity(requests);
    for n in 0..requests + 20 {
        let request = match merchant {
            Some(merchant) => api.signed_get(merchant, path),
            None => api.http.get(format!("{}{path}", api.url)),
        };
        let sent = Instant::now();
        let response = request.send().await.expect("request");
        let status = response.status();
        let body = response.bytes().await.expect("body");
        let elapsed = sent.elapsed();
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        if n == 0 && min_items > 0 {
            let page: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let items = page["items"].as_array().map_or(0, Vec::len);
            assert!(items >= min_items, "{path}: {items} items");
        }
        if n >= 20 {
            samples.push(elapsed);
        }
    }
    quantiles(samples)
}

fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The page cases: (name, query), each asked first without a cursor, then ~900 000 rows deep.
fn filters(payments: &[FilledPayment]) -> Vec<(&'static str, String)> {
    let newest = |k: usize| payments[payments.len() - 1 - k].initiated_at;
    let (deep, window) = (deep(payments), payments.len() / 20);
    let created = format!(
        "from={}&to={}",
        instant(newest(deep + window)),
        instant(newest(deep - window))
    );
    let amount = "min_amount=100000&max_amount=300000";
    vec![
        ("no filter", String::new()),
        ("status=succeeded", "status=succeeded".into()),
        ("amount ₹1 000–₹3 000", amount.into()),
        ("created range (a tenth of the rows)", created.clone()),
        ("all three", format!("status=succeeded&{amount}&{created}")),
    ]
}

/// The cursor after the row [`deep`] rows from the newest.
fn deep_cursor(payments: &[FilledPayment]) -> String {
    let row = &payments[payments.len() - 1 - deep(payments)];
    TransactionCursor {
        initiated_at: row.initiated_at,
        payment_id: row.payment_id.0,
    }
    .to_string()
}

/// One round's figures, in the order they are printed.
struct Round {
    latencies: Vec<(String, f64, f64)>,
    export_rows_per_s: f64,
    export_rss_growth_mib: f64,
    copy_rows_per_s: f64,
}

/// The CSV export of every row: rows/s and the API's resident memory growth (MiB), sampled
/// every 10 ms while it streams.
async fn export(api: &ServedApi, merchant: &TestMerchant, rows: usize) -> (f64, f64) {
    let before = api.memory().resident;
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done, pid) = (Arc::clone(&peak), Arc::clone(&done), api.pid);
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(resident_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let started = Instant::now();
    let mut response = api
        .signed_get(merchant, "/transactions")
        .header("accept", "text/csv")
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), 200);
    let mut lines = 0;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.await.expect("sampler");
    assert_eq!(lines, rows + 1, "a header and every row");
    let growth = peak.load(Ordering::Relaxed).saturating_sub(before);
    (rows as f64 / secs, growth as f64 / 1024.0)
}

fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// PostgreSQL's own CSV of the same columns in the same order: rows/s.
async fn copy_ceiling(world: &World, merchant: &TestMerchant, rows: usize) -> f64 {
    let sql = format!(
        "COPY (SELECT payment_id, merchant_order_id, amount_paise, currency, status,
                      refunded_paise > 0 AND refunded_paise < amount_paise, refunded_paise,
                      refunds, jsonb_array_length(open_refunds), gateway_id, attempts,
                      psp_order_id, psp_payment_id, commission_paise, failure_code,
                      failure_description, initiated_at, succeeded_at, failed_at
                 FROM read.transactions WHERE merchant_id = '{}'
                ORDER BY initiated_at DESC, payment_id DESC) TO STDOUT (FORMAT csv)",
        merchant.id.0
    );
    let mut conn = world.app.db.pool.acquire().await.expect("connection");
    let started = Instant::now();
    let mut out = conn.copy_out_raw(&sql).await.expect("copy");
    let mut lines = 0;
    while let Some(chunk) = out.try_next().await.expect("copy chunk") {
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    assert_eq!(lines, rows);
    rows as f64 / started.elapsed().as_secs_f64()
}

async fn round(
    world: &World,
    api: &ServedApi,
    merchant: &TestMerchant,
    payments: &[FilledPayment],
) -> Round {
    let requests = setting("BENCH_REQUESTS", 300);
    let one_order = format!("/transactions?order_id=ORD-{}", payments.len() / 2);
    let mut latencies = vec![
        (
            "/health (HTTP floor)".to_owned(),
            latency(api, None, "/health", requests, 0).await,
        ),
        (
            "signed one-row lookup by order id (signed floor)".to_owned(),
            latency(api, Some(merchant), &one_order, requests, 1).await,
        ),
    ];
    let cursor = deep_cursor(payments);
    for (name, query) in filters(payments) {
        let separator = if query.is_empty() { "" } else { "&" };
        let first = format!("/transactions?{query}");
        let deep = format!("/transactions?{query}{separator}cursor={cursor}");
        for (depth, path) in [("first page", first), ("deep page", deep)] {
            let figures = latency(api, Some(merchant), &path, requests, 50).await;
            latencies.push((format!("{depth}, {name}"), figures));
        }
    }
    let (export_rows_per_s, export_rss_growth_mib) = export(api, merchant, payments.len()).await;
    let copy_rows_per_s = copy_ceiling(world, merchant, payments.len()).await;
    Round {
        latencies: latencies
            .into_iter()
            .map(|(name, (p50, p99))| (name, p50, p99))
            .collect(),
        export_rows_per_s,
        export_rss_growth_mib,
        copy_rows_per_s,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn print(rounds: &[Round]) {
    let floor_p99 = median(rounds.iter().map(|r| r.latencies[1].2).collect());
    println!("| case | p50 ms | p99 ms | p99 ÷ signed floor's p99 |");
    println!("|---|---:|---:|---:|");
    for (i, (name, _, _)) in rounds[0].latencies.iter().enumerate() {
        let p50 = median(rounds.iter().map(|r| r.latencies[i].1).collect());
        let p99 = median(rounds.iter().map(|r| r.latencies[i].2).collect());
        println!("| {name} | {p50:.2} | {p99:.2} | {:.2} |", p99 / floor_p99);
    }
    let export = median(rounds.iter().map(|r| r.export_rows_per_s).collect());
    let copy = median(rounds.iter().map(|r| r.copy_rows_per_s).collect());
    let growth = median(rounds.iter().map(|r| r.export_rss_growth_mib).collect());
    println!();
    println!("| case | rows/s | of COPY | API RSS growth MiB |");
    println!("|---|---:|---:|---:|");
    println!("| PostgreSQL COPY … TO STDOUT (CSV), ceiling | {copy:.0} | 100 % | |");
    println!(
        "| CSV export over HTTP | {export:.0} | {:.0} % | {growth:.1} |",
        export / copy * 100.0
    );
    for (n, r) in rounds.iter().enumerate() {
        eprintln!(
            "round {}: export {:.0} rows/s (COPY {:.0}), RSS +{:.1} MiB; {}",
            n + 1,
            r.export_rows_per_s,
            r.copy_rows_per_s,
            r.export_rss_growth_mib,
            r.latencies
                .iter()
                .map(|(name, p50, p99)| format!("{name} {p50:.2}/{p99:.2}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

#[tokio::main]
async fn main() {
    lightspeed_adapters::http::install_crypto_provider();
    let world = bare_world().await;
    let (merchant, payments) = populate(&world).await;
    let api = world.served_api().await;
    let mut rounds = Vec::new();
    for _ in 0..setting("BENCH_ROUNDS", 3) {
        rounds.push(round(&world, &api, &merchant, &payments).await);
    }
    print(&rounds);
}
