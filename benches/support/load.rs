//! The initiate bench's load, shared by the benches that drive it: client tasks,
//! each its own HTTP/1.1 connection (hyper's connection API: no pool, redirects or retries),
//! sending signed `POST /payment/initiate` requests with distinct order ids, round-robin over
//! the merchants. Included by path (`#[path = "support/load.rs"] mod load;`) by the benches that
//! use it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use lightspeed_adapters::merchant_auth::sign_request;

use crate::support::Merchant;

/// What one load run measured.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Created answers per second after the warm-up.
    pub requests_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Requests not answered `201 Created` after the warm-up.
    pub errors: u64,
    /// This process's CPU (API and load generator) per answered request, µs.
    pub process_us_per_request: f64,
    /// Cores the whole machine kept busy (PostgreSQL included) during the run.
    pub busy_cores: f64,
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
        busy: total.saturating_sub(idle),
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

/// Drives `connections` connections for a 3 s warm-up and then `seconds`, signing for
/// `merchants` in turn; answers the run's figures.
pub async fn load(
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
pub fn quantile_ms(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * p) as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
