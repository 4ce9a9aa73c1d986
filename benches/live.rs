//! Live updates under payment load: `cargo bench --bench live`.
//!
//! The API runs in this process with the relay and a live hub following the log's JetStream
//! copy; its JSON streams are mounted at `/live/{topics}`. Payments are initiated through the
//! API at a fixed rate (`BENCH_RATE`, 1 000/s) from 50 connections. Two cases, interleaved in
//! `BENCH_ROUNDS` rounds of `BENCH_SECONDS` each after a 3 s warm-up:
//!
//! - no open page but one probe stream;
//! - `BENCH_PAGES` (200) more pages following the transactions feed, read by a child process
//!   (this binary again), so their reading costs this process nothing.
//!
//! Measured: from each initiate answer to the payment's item on the probe's SSE stream (p50,
//! p99), beside the same payments' arrival on a plain JetStream consumer in this process (the
//! floor: what the relay and NATS take); and this process's CPU time over the window
//! (`/proc/self/stat`), whose difference between the cases is the pages' cost.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use lightspeed_adapters::merchant_auth::sign_request;
use lightspeed_adapters::secrets::Keyring;
use lightspeed_api::{ApiConfig, AppState, app};
use lightspeed_domain::SystemClock;
use lightspeed_eventstore::PgEventStore;
use lightspeed_eventstore::testing::{TestDatabase, TestNats};
use lightspeed_live::{Hub, HubConfig, Topic};
use lightspeed_services::Ledger;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

/// Set in the child process that holds the pages open: the API's address.
const READER_ENV: &str = "LIVE_BENCH_READ_FROM";
/// The bearer token the bench's guard lets through.
const TOKEN: &str = "Bearer live-bench";
/// Connections the load is sent over.
const LOAD_CONNECTIONS: u64 = 50;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's CPU time so far (user + system), in clock ticks of 1/100 s.
fn process_ticks() -> u64 {
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
    fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
}

/// When each payment was answered, reached the probe page, and reached JetStream.
#[derive(Default)]
struct Arrivals {
    answered: Mutex<HashMap<String, Instant>>,
    on_page: Mutex<HashMap<String, Instant>>,
    on_jetstream: Mutex<HashMap<String, Instant>>,
}

fn note(map: &Mutex<HashMap<String, Instant>>, id: String) {
    map.lock()
        .expect("arrivals")
        .entry(id)
        .or_insert_with(Instant::now);
}

/// Opens `GET /live/{topics}` on a raw connection; answers the stream after the headers.
async fn open_page(api: SocketAddr, topics: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(api).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let request = format!(
        "GET /live/{topics} HTTP/1.1\r\nhost: {api}\r\nauthorization: {TOKEN}\r\naccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("request");
    stream
}

/// The probe page: notes when each payment's initiation arrives.
async fn probe(api: SocketAddr, arrivals: Arc<Arrivals>) {
    let mut stream = open_page(api, "transactions").await;
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the probe's stream ended");
        buffer.extend_from_slice(&chunk[..n]);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buffer.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let Ok(item) = serde_json::from_str::<serde_json::Value>(data) else {
                continue;
            };
            if item["change"]["change"] == "initiated"
                && let Some(id) = item["payment_id"].as_str()
            {
                note(&arrivals.on_page, id.to_owned());
            }
        }
    }
}

/// The floor: notes when each payment's initiation reaches a plain JetStream consumer.
async fn jetstream_floor(nats: &TestNats, arrivals: Arc<Arrivals>) {
    let stream = nats
        .config
        .ensure_stream(&nats.jetstream)
        .await
        .expect("stream");
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: nats
                .config
                .event_type_subject("payment", "PaymentInitiated"),
            deliver_policy: DeliverPolicy::New,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            if let Ok(event) = lightspeed_eventstore::nats::decode(0, &message.payload) {
                note(&arrivals.on_jetstream, event.stream_id.id().to_owned());
            }
        }
    });
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

/// Sends one signed initiation; answers the transaction id when it was created.
async fn initiate(
    sender: &mut SendRequest<Full<Bytes>>,
    host: &str,
    merchant: &support::Merchant,
    order_id: &str,
) -> Option<String> {
    let body = format!(
        r#"{{"amount":49900,"currency":"INR","order_id":"{order_id}","customer":{{"name":"Asha"}}}}"#
    );
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign_request(
        merchant.salt.expose(),
        timestamp,
        "POST",
        "/payment/initiate",
        body.as_bytes(),
    );
    let request = Request::post("/payment/initiate")
        .header(header::HOST, host)
        .header("x-client-key", &merchant.key)
        .header("x-timestamp", timestamp.to_string())
        .header("x-signature", signature)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    sender.ready().await.ok()?;
    let response = sender.send_request(request).await.ok()?;
    let created = response.status() == StatusCode::CREATED;
    let body = response.into_body().collect().await.ok()?.to_bytes();
    let answer: serde_json::Value = serde_json::from_slice(&body).ok()?;
    created
        .then(|| answer["transaction_id"].as_str().map(str::to_owned))
        .flatten()
}

/// Initiates payments at `rate` per second until `stop`, noting each answer.
fn start_load(
    api: SocketAddr,
    merchants: Arc<Vec<support::Merchant>>,
    rate: u64,
    arrivals: Arc<Arrivals>,
    stop: Arc<AtomicBool>,
    errors: Arc<AtomicU64>,
) {
    let every = Duration::from_secs_f64(LOAD_CONNECTIONS as f64 / rate as f64);
    for task in 0..LOAD_CONNECTIONS {
        let (merchants, arrivals, stop, errors) = (
            Arc::clone(&merchants),
            Arc::clone(&arrivals),
            Arc::clone(&stop),
            Arc::clone(&errors),
        );
        tokio::spawn(async move {
            let mut sender = connect(api).await;
            let host = api.to_string();
            // Spread the connections over the interval.
            tokio::time::sleep(every.mul_f64(task as f64 / LOAD_CONNECTIONS as f64)).await;
            let mut ticks = tokio::time::interval(every);
            let run = uuid::Uuid::now_v7().simple().to_string();
            for n in 0u64.. {
                ticks.tick().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let merchant = &merchants[(task + n) as usize % merchants.len()];
                match initiate(&mut sender, &host, merchant, &format!("{run}-{task}-{n}")).await {
                    Some(id) => note(&arrivals.answered, id),
                    None => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
}

/// The child process: holds `BENCH_PAGES` pages open and reads them until its stdin closes;
/// prints the bytes read and how many streams the server ended.
async fn read_pages(api: SocketAddr) {
    let pages = setting("BENCH_PAGES", 200);
    let bytes = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicU64::new(0));
    for _ in 0..pages {
        let (bytes, ended) = (Arc::clone(&bytes), Arc::clone(&ended));
        tokio::spawn(async move {
            let mut stream = open_page(api, "transactions").await;
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => bytes.fetch_add(n as u64, Ordering::Relaxed),
                };
            }
            ended.fetch_add(1, Ordering::Relaxed);
        });
    }
    let mut rest = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut rest).await;
    println!(
        "{} {}",
        bytes.load(Ordering::Relaxed),
        ended.load(Ordering::Relaxed)
    );
}

/// Pages held open by a child process.
struct Pages {
    child: tokio::process::Child,
}

impl Pages {
    /// Starts the child and waits until the hub counts its pages.
    async fn open(api: SocketAddr, hub: &Hub, count: u64) -> Self {
        let before = hub.subscribers();
        let child = tokio::process::Command::new(std::env::current_exe().expect("exe"))
            .env(READER_ENV, api.to_string())
            .env("BENCH_PAGES", count.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("reader process");
        while hub.subscribers() < before + count as usize {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child }
    }

    /// Closes the pages; answers (bytes they read, streams the server ended).
    async fn close(mut self) -> (u64, u64) {
        drop(self.child.stdin.take());
        let output = self.child.wait_with_output().await.expect("reader output");
        let text = String::from_utf8_lossy(&output.stdout);
        let mut figures = text.split_whitespace().map(|f| f.parse().unwrap_or(0));
        (figures.next().unwrap_or(0), figures.next().unwrap_or(0))
    }
}

/// One case's figures.
struct Outcome {
    rate: f64,
    errors: u64,
    page_p50_ms: f64,
    page_p99_ms: f64,
    floor_p50_ms: f64,
    floor_p99_ms: f64,
    missing: usize,
    cpu_cores: f64,
    pages_bytes: u64,
    pages_ended: u64,
}

/// Latencies (ms, sorted) from each payment's answer to its arrival in `arrived`, for the
/// payments answered in `window`; and how many never arrived.
fn latencies(
    arrivals: &Arrivals,
    arrived: &Mutex<HashMap<String, Instant>>,
    window: (Instant, Instant),
) -> (Vec<f64>, usize) {
    let answered = arrivals.answered.lock().expect("answered");
    let arrived = arrived.lock().expect("arrived");
    let mut missing = 0;
    let mut ms = Vec::new();
    for (id, at) in answered
        .iter()
        .filter(|(_, at)| **at >= window.0 && **at < window.1)
    {
        match arrived.get(id) {
            // Zero when the item came first: the relay can publish before the answer is read.
            Some(seen) => ms.push(seen.saturating_duration_since(*at).as_secs_f64() * 1000.0),
            None => missing += 1,
        }
    }
    ms.sort_by(f64::total_cmp);
    (ms, missing)
}

fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * p) as usize)
        .copied()
        .unwrap_or(0.0)
}

/// What the bench process shares between cases.
struct Bench {
    api: SocketAddr,
    hub: Hub,
    merchants: Arc<Vec<support::Merchant>>,
    rate: u64,
    seconds: u64,
    arrivals: Arc<Arrivals>,
}

impl Bench {
    /// Runs the load for a warm-up and a window, with `pages` pages open.
    async fn case(&self, pages: u64) -> Outcome {
        let opened = match pages {
            0 => None,
            n => Some(Pages::open(self.api, &self.hub, n).await),
        };
        let (stop, errors) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        start_load(
            self.api,
            Arc::clone(&self.merchants),
            self.rate,
            Arc::clone(&self.arrivals),
            Arc::clone(&stop),
            Arc::clone(&errors),
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (start, ticks_before) = (Instant::now(), process_ticks());
        let errors_before = errors.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(self.seconds)).await;
        let (end, ticks_after) = (Instant::now(), process_ticks());
        let errors_in_window = errors.load(Ordering::Relaxed) - errors_before;
        stop.store(true, Ordering::Relaxed);
        // Let the last payments of the window arrive.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (pages_bytes, pages_ended) = match opened {
            Some(pages) => pages.close().await,
            None => (0, 0),
        };
        self.outcome(
            (start, end),
            ticks_after - ticks_before,
            errors_in_window,
            (pages_bytes, pages_ended),
        )
    }

    fn outcome(
        &self,
        window: (Instant, Instant),
        ticks: u64,
        errors: u64,
        pages: (u64, u64),
    ) -> Outcome {
        let seconds = window.1.duration_since(window.0).as_secs_f64();
        let (page, missing) = latencies(&self.arrivals, &self.arrivals.on_page, window);
        let (floor, _) = latencies(&self.arrivals, &self.arrivals.on_jetstream, window);
        Outcome {
            rate: (page.len() + missing) as f64 / seconds,
            errors,
            page_p50_ms: quantile(&page, 0.5),
            page_p99_ms: quantile(&page, 0.99),
            floor_p50_ms: quantile(&floor, 0.5),
            floor_p99_ms: quantile(&floor, 0.99),
            missing,
            // Clock ticks are 1/100 s.
            cpu_cores: ticks as f64 / 100.0 / seconds,
            pages_bytes: pages.0,
            pages_ended: pages.1,
        }
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The API with the relay and a hub, on a loopback port.
async fn start_api(
    db: &TestDatabase,
    nats: &TestNats,
    keyring: &Arc<Keyring>,
) -> (SocketAddr, Hub, Ledger) {
    let pool = db.another_pool(32).await;
    let ledger = Ledger::new(PgEventStore::new(pool, Arc::new(SystemClock)));
    // The relay as the product runs it (its default idle poll).
    let relay = lightspeed_eventstore::relay::Relay::new(
        ledger.store().clone(),
        nats.jetstream.clone(),
        nats.config.clone(),
        lightspeed_eventstore::relay::RelayConfig::default(),
    );
    tokio::spawn(async move { relay.run().await });
    let hub = Hub::new(HubConfig::default());
    hub.follow_log(nats.jetstream.clone(), nats.config.clone())
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api = listener.local_addr().expect("addr");
    let mut config = ApiConfig::new(format!("http://{api}"));
    config.initiate_per_minute = std::num::NonZeroU32::new(100_000_000).expect("non-zero");
    let state = AppState::new(ledger.clone(), Arc::clone(keyring), config, None);
    let live = lightspeed_live::routes(hub.clone(), |headers| {
        match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some(TOKEN) => None,
            _ => Some(StatusCode::UNAUTHORIZED.into_response()),
        }
    });
    let router = app(state, live);
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (api, hub, ledger)
}

#[tokio::main]
async fn main() {
    if let Ok(api) = std::env::var(READER_ENV) {
        return read_pages(api.parse().expect("address")).await;
    }
    lightspeed_adapters::http::install_crypto_provider();
    let rate = setting("BENCH_RATE", 1_000);
    let pages = setting("BENCH_PAGES", 200);
    let seconds = setting("BENCH_SECONDS", 20);
    let rounds = setting("BENCH_ROUNDS", 3);

    let db = TestDatabase::new().await;
    let nats = TestNats::new().await;
    let keyring = Arc::new(Keyring::random("bench").expect("keyring"));
    let (api, hub, ledger) = start_api(&db, &nats, &keyring).await;
    let mut merchants = Vec::new();
    for _ in 0..10 {
        merchants.push(support::onboard(&ledger, &keyring, 20, &format!("http://{api}")).await);
    }
    let arrivals = Arc::new(Arrivals::default());
    jetstream_floor(&nats, Arc::clone(&arrivals)).await;
    tokio::spawn(probe(api, Arc::clone(&arrivals)));
    while hub.subscribers() < 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bench = Bench {
        api,
        hub: hub.clone(),
        merchants: Arc::new(merchants),
        rate,
        seconds,
        arrivals,
    };
    eprintln!("{rate} payments/s, {pages} pages, {rounds} rounds of {seconds} s per case");
    let mut results: Vec<(u64, Outcome)> = Vec::new();
    for round in 1..=rounds {
        for case_pages in [0, pages] {
            let o = bench.case(case_pages).await;
            eprintln!(
                "round {round}, {case_pages} pages: {:.0}/s, page p50 {:.1} p99 {:.1} ms, jetstream p50 {:.1} p99 {:.1} ms, missing {}, errors {}, process {:.3} cores, pages read {} B, ended {}",
                o.rate,
                o.page_p50_ms,
                o.page_p99_ms,
                o.floor_p50_ms,
                o.floor_p99_ms,
                o.missing,
                o.errors,
                o.cpu_cores,
                o.pages_bytes,
                o.pages_ended
            );
            results.push((case_pages, o));
        }
    }
    report(&results, pages, hub.retained(Topic::Transactions));
}

/// Prints the medians of the rounds as a markdown table.
fn report(results: &[(u64, Outcome)], pages: u64, retained: usize) {
    let of = |p: u64| results.iter().filter(move |(n, _)| *n == p).map(|(_, o)| o);
    println!(
        "| open pages | payments/s | page p50 ms | page p99 ms | JetStream p50 ms | JetStream p99 ms | missing | errors | process CPU, cores |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in [0, pages] {
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {:.3} |",
            p + 1,
            median(of(p).map(|o| o.rate)),
            median(of(p).map(|o| o.page_p50_ms)),
            median(of(p).map(|o| o.page_p99_ms)),
            median(of(p).map(|o| o.floor_p50_ms)),
            median(of(p).map(|o| o.floor_p99_ms)),
            of(p).map(|o| o.missing).sum::<usize>(),
            of(p).map(|o| o.errors).sum::<u64>(),
            median(of(p).map(|o| o.cpu_cores)),
        );
    }
    let differences: Vec<f64> = of(pages)
        .zip(of(0))
        .map(|(with, without)| (with.cpu_cores - without.cpu_cores) * 100.0)
        .collect();
    println!(
        "\n{pages} pages cost {:.1} % of one core (median of the rounds' differences: {:?}); streams the server ended: {}; replay buffer held {retained} items",
        median(differences.iter().copied()),
        differences
            .iter()
            .map(|d| format!("{d:.1}"))
            .collect::<Vec<_>>(),
        of(pages).map(|o| o.pages_ended).sum::<u64>(),
    );
}
