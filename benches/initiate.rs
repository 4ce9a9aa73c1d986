//! `POST /payment/initiate` under concurrent load, beside the log's raw single-insert ceiling
//! measured in the same run: `cargo bench --bench initiate`.
//!
//! The API runs in this process on a loopback port; 64 client tasks (each its own HTTP/1.1
//! connection, on hyper's connection API: no pool, redirects or retries to pay for on the two
//! cores the API and the database use) send signed requests with distinct order ids.
//! Settings (environment): `BENCH_SECONDS` (60), `BENCH_CONNECTIONS` (64), `BENCH_MERCHANTS`
//! (10), `BENCH_GATEWAYS` (20); `BENCH_TIMELINE` (set to anything) also prints each second's
//! requests, p50, p99 and max to stderr, to tell a stall from a steady tail.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use lightspeed_adapters::merchant_auth::sign_request;
use lightspeed_adapters::secrets::Keyring;
use lightspeed_api::{ApiConfig, AppState, app};
use lightspeed_domain::SystemClock;
use lightspeed_eventstore::PgEventStore;
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_services::Ledger;

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

use support::{Merchant, onboard};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Outcome {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
    /// This process's CPU (API and load generator) per answered request, µs.
    process_us_per_request: f64,
    /// Cores the whole machine kept busy (PostgreSQL included), of the 2.
    busy_cores: f64,
}

/// CPU time so far: this process's, and the whole machine's busy and total, in clock ticks.
#[derive(Clone, Copy)]
struct CpuTicks {
    process: u64,
    busy: u64,
    total: u64,
}

/// Reads `/proc` (Linux): utime + stime of this process; busy and all jiffies of the machine.
fn cpu_ticks() -> CpuTicks {
    let own = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<u64> = own
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let process = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    let machine = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let jiffies: Vec<u64> = machine
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let total: u64 = jiffies.iter().take(8).sum();
    // idle and iowait are the 4th and 5th columns.
    let idle = jiffies.get(3).copied().unwrap_or(0) + jiffies.get(4).copied().unwrap_or(0);
    CpuTicks {
        process,
        busy: total - idle,
        total,
    }
}

/// One HTTP/1.1 connection to the API.
async fn connect(api: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(api).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// What every connection of a load run shares.
struct Driver {
    api: SocketAddr,
    merchants: Vec<(String, Vec<u8>)>,
    run: String,
    started: Instant,
    warmup: Duration,
    stop: AtomicBool,
    errors: AtomicU64,
}

impl Driver {
    /// One connection's requests until the run stops: (offset from start, latency) of each
    /// success after the warm-up.
    async fn connection(&self, task: usize) -> Vec<(Duration, Duration)> {
        let mut sender = connect(self.api).await;
        let host = self.api.to_string();
        let mut latencies = Vec::new();
        let mut n = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let (key, salt) = &self.merchants[(task + n as usize) % self.merchants.len()];
            let run = &self.run;
            let body = format!(
                r#"{{"amount":49900,"currency":"INR","order_id":"{run}-{task}-{n}","customer":{{"name":"Asha"}}}}"#
            );
            let sent = Instant::now();
            let ok = initiate(&mut sender, &host, key, salt, body).await;
            if sent.duration_since(self.started) >= self.warmup {
                if ok {
                    latencies.push((sent.duration_since(self.started), sent.elapsed()));
                } else {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            n += 1;
        }
        latencies
    }
}

/// Sends one signed initiation; answers whether it was created.
async fn initiate(
    sender: &mut SendRequest<Full<Bytes>>,
    host: &str,
    key: &str,
    salt: &[u8],
    body: String,
) -> bool {
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign_request(
        salt,
        timestamp,
        "POST",
        "/payment/initiate",
        body.as_bytes(),
    );
    let request = Request::post("/payment/initiate")
        .header(header::HOST, host)
        .header("x-client-key", key)
        .header("x-timestamp", timestamp.to_string())
        .header("x-signature", signature)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    if sender.ready().await.is_err() {
        return false;
    }
    match sender.send_request(request).await {
        Ok(response) => {
            let created = response.status() == StatusCode::CREATED;
            // Read to the end, so the connection serves the next request.
            response.into_body().collect().await.is_ok() && created
        }
        Err(_) => false,
    }
}

/// Drives `connections` connections for `seconds` after a warm-up; answers the run's figures.
async fn load(
    api: SocketAddr,
    merchants: &[Merchant],
    connections: usize,
    seconds: u64,
    run: &str,
) -> Outcome {
    let driver = Arc::new(Driver {
        api,
        merchants: merchants
            .iter()
            .map(|m| (m.key.clone(), m.salt.expose().to_vec()))
            .collect(),
        run: run.to_owned(),
        started: Instant::now(),
        warmup: Duration::from_secs(3),
        stop: AtomicBool::new(false),
        errors: AtomicU64::new(0),
    });
    let tasks: Vec<_> = (0..connections)
        .map(|task| {
            let driver = Arc::clone(&driver);
            tokio::spawn(async move { driver.connection(task).await })
        })
        .collect();
    tokio::time::sleep(driver.warmup).await;
    let before = cpu_ticks();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = cpu_ticks();
    driver.stop.store(true, Ordering::Relaxed);
    let mut timed = Vec::new();
    for task in tasks {
        timed.extend(task.await.expect("task"));
    }
    if std::env::var_os("BENCH_TIMELINE").is_some() {
        let wall = chrono::Utc::now() - driver.started.elapsed();
        eprintln!("{run} started at {wall}");
        print_timeline(run, &mut timed);
    }
    let mut latencies: Vec<Duration> = timed.into_iter().map(|(_, latency)| latency).collect();
    latencies.sort();
    Outcome {
        requests_per_s: latencies.len() as f64 / seconds as f64,
        p50_ms: quantile_ms(&latencies, 0.5),
        p99_ms: quantile_ms(&latencies, 0.99),
        max_ms: quantile_ms(&latencies, 1.0),
        errors: driver.errors.load(Ordering::Relaxed),
        // Clock ticks are 1/100 s on Linux.
        process_us_per_request: after.process.saturating_sub(before.process) as f64 * 10_000.0
            / latencies.len().max(1) as f64,
        // Saturating: the kernel's iowait count can step back, and busy with it.
        busy_cores: after.busy.saturating_sub(before.busy) as f64
            / after.total.saturating_sub(before.total).max(1) as f64
            * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
    }
}

/// Per second of the run: requests answered, p50, p99 and max latency (ms), to stderr.
fn print_timeline(run: &str, timed: &mut [(Duration, Duration)]) {
    timed.sort();
    for second in timed.chunk_by(|a, b| a.0.as_secs() == b.0.as_secs()) {
        let mut latencies: Vec<Duration> = second.iter().map(|(_, latency)| *latency).collect();
        latencies.sort();
        eprintln!(
            "{run} {:>3} s {:>5} {:>6.1} {:>6.1} {:>6.1}",
            second[0].0.as_secs(),
            latencies.len(),
            quantile_ms(&latencies, 0.5),
            quantile_ms(&latencies, 0.99),
            quantile_ms(&latencies, 1.0)
        );
    }
}

/// The latency at quantile `p` of `sorted`, in ms (0 when there is none).
fn quantile_ms(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * p) as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
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
    let many = load(api, &merchants, connections, seconds, "many").await;
    let one = load(api, &merchants[..1], connections, seconds, "one").await;

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
