//! The ledger on an old log: `BENCH_EVENTS` (10 000 000) events, one merchant's busiest gateway
//! stream and wallet stream a tenth of them each, beside the same figures on a 10 000-event log
//! generated the same way in the same run: `cargo bench --bench scale`.
//!
//! Generation, through the domain's deciders and the store's appends, so the log is one the
//! product accepts as its own (the bench checks it with `lightspeed audit verify --db` and
//! `lightspeed audit commission --db`):
//! - 10 merchants onboarded through the ledger with 20 sandbox gateways each (the initiate
//!   bench's merchants); the first is the big merchant;
//! - the big merchant's payments, a tenth of the events in number: each initiated (booked on its
//!   first gateway), given its PSP order and succeeded with its commission accrued in its
//!   wallet, one every two seconds into the past; payment streams appended 16 to an append by
//!   `BENCH_WRITERS` (4) concurrent writers, the gateway's and the wallet's events in batches of
//!   1 000;
//! - the rest by the projections' scenario generator (payments that succeed, fail, are refused
//!   or refunded, payouts, settlements, webhook deliveries, notifications, admin changes) over
//!   `BENCH_OTHER_MERCHANTS` (1 000) more merchants at most (about one per 5 000 events), split
//!   among the writers, each appending its own scenario packed up to the log's limits;
//! - then the sealer seals the log.
//!
//! Measured on both logs:
//! - (a) the big merchant's first initiation after a cold start (a new `Ledger`), `BENCH_STARTS`
//!   (200) starts, and `BENCH_BARE_STARTS` (5) more with `ledger.snapshots` emptied before each
//!   (the streams folded from their first event, as the code without snapshots loads them);
//!   p50, p99 and the slowest. Before them each log's database is checkpointed, so the starts
//!   do not wait on the server writing back what generating and auditing the logs dirtied;
//! - (b) and (d): the initiate bench's load (`BENCH_CONNECTIONS` (64) connections over the 10
//!   merchants, 3 s warm-up, `BENCH_SECONDS` (60)) against the API in a child process (this
//!   binary again) that holds nothing but the API and the load generator; its resident memory
//!   (`VmRSS`, `VmHWM`) when the load ends;
//! - (c) `audit verify` and `audit commission` from the database, through the library calls
//!   behind the two commands, in events per second;
//! - (e) PostgreSQL's size of `ledger.events`, its indexes and TOAST, per million events.
//!
//! `BENCH_KEEP=1` keeps the big log's database (`ls_bench_scale_<events>`) and reuses it when it
//! is complete, so the measurements can be repeated without generating it again.

#[path = "support/load.rs"]
mod load;
mod support;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use futures::StreamExt;
use indicatif::ProgressBar;
use lightspeed_adapters::secrets::{Keyring, Secret};
use lightspeed_api::{ApiConfig, AppState, app};
use lightspeed_audit::{ReplayFilter, replay_database, verify_database};
use lightspeed_domain::gateway::{BookingRequest, GatewayCommand};
use lightspeed_domain::payment::{InitiatePayment, PaymentCommand, PaymentDetails};
use lightspeed_domain::wallet::WalletCommand;
use lightspeed_domain::{
    Decider, Gateway, GatewayId, MerchantId, Paise, Payment, PaymentId, SystemClock, Wallet,
};
use lightspeed_eventstore::handler::new_events;
use lightspeed_eventstore::migrate::{MIGRATOR, ensure_database};
use lightspeed_eventstore::seal::{Sealer, SealerConfig};
use lightspeed_eventstore::testing::admin_url;
use lightspeed_eventstore::{
    CommandContext, CommandHandler, EventStore, ExpectedVersion, PgEventStore, StreamAppend,
    StreamId, stream_of,
};
use lightspeed_projections::scenario::{Scenario, ScenarioConfig, append_packed};
use lightspeed_services::Ledger;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, Row};
use support::cold::{cold_start, summary};
use support::{Merchant, onboard};

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The key the merchants' secrets are sealed with, fixed so a kept log can be served again.
const ENCRYPTION_KEY: &str = "scale:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
/// The young log's size.
const YOUNG_EVENTS: u64 = 10_000;
/// Merchants the load signs for, the big one first (the initiate bench's 10).
const MERCHANTS: usize = 10;
/// Gateways per merchant (the initiate bench's 20).
const GATEWAYS: usize = 20;
/// Where the sandbox gateways send (initiation does not call the PSP).
const PSP_URL: &str = "http://127.0.0.1:9";
/// Events per append of one stream's history.
const BATCH: usize = 1_000;
/// The big merchant's payments decided between two rounds of appends.
const CHUNK: u64 = 20_000;
/// Each big-merchant payment's events: initiated, PSP order, succeeded, booked, accrued.
const EVENTS_PER_PAYMENT: u64 = 5;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn keyring() -> Keyring {
    Keyring::parse(ENCRYPTION_KEY).expect("keyring")
}

/// A database of the bench's own, dropped with the value unless kept.
struct Db {
    pool: PgPool,
    url: String,
    name: String,
    keep: bool,
}

impl Db {
    /// Opens database `name`, creating and migrating it if needed.
    async fn open(name: &str, keep: bool) -> Self {
        let admin = PgConnectOptions::from_str(&admin_url()).expect("TEST_DATABASE_URL");
        let url = admin.clone().database(name).to_url_lossy().to_string();
        ensure_database(&url).await.expect("create the database");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(lightspeed_eventstore::migrate::connect_options(&url).expect("url"))
            .await
            .expect("connect");
        let db = Self {
            pool,
            url,
            name: name.to_owned(),
            keep,
        };
        MIGRATOR.run(&db.pool).await.expect("migrate");
        db
    }

    /// Drops database `name` if it exists.
    async fn drop_database(name: &str) {
        let admin = PgConnectOptions::from_str(&admin_url()).expect("TEST_DATABASE_URL");
        let mut conn = admin.connect().await.expect("connect as admin");
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("drop the database");
        let _ = conn.close().await;
    }

    fn store(&self) -> PgEventStore {
        PgEventStore::new(self.pool.clone(), Arc::new(SystemClock))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let name = self.name.clone();
        // Drop has no runtime to await on; a short-lived one on its own thread drops it.
        let cleanup = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(Db::drop_database(&name));
            }
        });
        let _ = cleanup.join();
    }
}

/// A generated log and its merchants (the big one first).
struct Log {
    label: &'static str,
    db: Db,
    merchants: Vec<Merchant>,
    events: u64,
}

/// The young log (always generated), or the big one (reused when kept and complete).
async fn log(label: &'static str, events: u64, keep: bool, writers: usize) -> Log {
    let name = if keep {
        format!("ls_bench_scale_{events}")
    } else {
        format!("ls_bench_scale_{}", uuid::Uuid::now_v7().simple())
    };
    if keep {
        let db = Db::open(&name, true).await;
        if let Some(merchants) = stored_merchants(&db.pool).await {
            let events = count(&db.pool).await;
            eprintln!("{label}: reusing {name} ({events} events)");
            // Earlier runs' initiations are in the log: the sealer seals them first.
            seal(&db.pool, events).await;
            return Log {
                label,
                db,
                merchants,
                events,
            };
        }
        drop(db);
        Db::drop_database(&name).await;
    }
    let db = Db::open(&name, keep).await;
    let merchants = generate(&db, events, writers).await;
    let events = count(&db.pool).await;
    Log {
        label,
        db,
        merchants,
        events,
    }
}

async fn count(pool: &PgPool) -> u64 {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.events")
        .fetch_one(pool)
        .await
        .expect("count");
    n as u64
}

/// The merchants of a complete kept log, if it is one.
async fn stored_merchants(pool: &PgPool) -> Option<Vec<Merchant>> {
    let rows = sqlx::query(
        "SELECT merchant_id, client_key, salt, gateways FROM bench_scale.merchants
          WHERE EXISTS (SELECT 1 FROM bench_scale.complete) ORDER BY position",
    )
    .fetch_all(pool)
    .await
    .ok()?;
    let merchants: Vec<Merchant> = rows
        .iter()
        .map(|row| Merchant {
            id: MerchantId::from_str(row.get("merchant_id")).expect("merchant id"),
            key: row.get("client_key"),
            salt: Secret::new(row.get::<Vec<u8>, _>("salt")),
            gateways: row
                .get::<&str, _>("gateways")
                .split(',')
                .map(|g| GatewayId::from_str(g).expect("gateway id"))
                .collect(),
        })
        .collect();
    (!merchants.is_empty()).then_some(merchants)
}

/// Records the merchants of the log beside it, and that the log is complete.
async fn store_merchants(pool: &PgPool, merchants: &[Merchant]) {
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS bench_scale;
         CREATE TABLE bench_scale.merchants (position int PRIMARY KEY, merchant_id text NOT NULL,
             client_key text NOT NULL, salt bytea NOT NULL, gateways text NOT NULL);
         CREATE TABLE bench_scale.complete (at timestamptz NOT NULL DEFAULT now());",
    )
    .execute(pool)
    .await
    .expect("bench tables");
    for (position, m) in merchants.iter().enumerate() {
        let gateways: Vec<String> = m.gateways.iter().map(ToString::to_string).collect();
        sqlx::query("INSERT INTO bench_scale.merchants VALUES ($1, $2, $3, $4, $5)")
            .bind(position as i32)
            .bind(m.id.to_string())
            .bind(&m.key)
            .bind(m.salt.expose())
            .bind(gateways.join(","))
            .execute(pool)
            .await
            .expect("store a merchant");
    }
    sqlx::query("INSERT INTO bench_scale.complete DEFAULT VALUES")
        .execute(pool)
        .await
        .expect("complete");
}

/// Generates a log of about `events` events into `db` and seals it; answers its merchants.
async fn generate(db: &Db, events: u64, writers: usize) -> Vec<Merchant> {
    let started = Instant::now();
    let store = db.store();
    let ledger = Ledger::new(store.clone());
    let keyring = keyring();
    let mut merchants = Vec::new();
    for _ in 0..MERCHANTS {
        merchants.push(onboard(&ledger, &keyring, GATEWAYS, PSP_URL).await);
    }
    let payments = (events / 10).max(1);
    big_merchant(&store, &merchants[0], payments, writers).await;
    let after_big = count(&db.pool).await;
    eprintln!(
        "{events}: big merchant's {payments} payments ({after_big} events) in {:.1?}",
        started.elapsed()
    );
    let others = setting("BENCH_OTHER_MERCHANTS", 1_000) as usize;
    scenarios(&store, events.saturating_sub(after_big), others, writers).await;
    let generated = count(&db.pool).await;
    eprintln!(
        "{events}: {generated} events generated in {:.1?} ({:.0} events/s)",
        started.elapsed(),
        generated as f64 / started.elapsed().as_secs_f64()
    );
    let sealing = Instant::now();
    seal(&db.pool, generated).await;
    eprintln!("{events}: sealed in {:.1?}", sealing.elapsed());
    store_merchants(&db.pool, &merchants).await;
    merchants
}

/// Seals until the seals cover all `events` events (other sessions' transactions can hold
/// the gap-safe mark back for a while).
async fn seal(pool: &PgPool, events: u64) {
    let sealer = Sealer::new(pool.clone(), SealerConfig::default());
    loop {
        while sealer.seal_once().await.expect("seal").is_some() {}
        let sealed: i64 =
            sqlx::query_scalar("SELECT coalesce(sum(event_count), 0)::bigint FROM ledger.seals")
                .fetch_one(pool)
                .await
                .expect("sealed events");
        if sealed as u64 >= events {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The big merchant's `payments` payments, each initiated on its first gateway, given its PSP
/// order and succeeded with its commission, one every two seconds into the past.
async fn big_merchant(store: &PgEventStore, merchant: &Merchant, payments: u64, writers: usize) {
    let merchant_state = CommandHandler::<lightspeed_domain::Merchant, _>::new(store.clone())
        .load(&stream_of::<lightspeed_domain::Merchant>(merchant.id).expect("stream"))
        .await
        .expect("load")
        .state
        .expect("onboarded");
    let gateway_id = merchant.gateways[0];
    let gateway_stream = stream_of::<Gateway>(gateway_id).expect("stream");
    let wallet_stream = stream_of::<Wallet>(merchant.id).expect("stream");
    let gateway = CommandHandler::<Gateway, _>::new(store.clone())
        .load(&gateway_stream)
        .await
        .expect("load");
    let wallet = CommandHandler::<Wallet, _>::new(store.clone())
        .load(&wallet_stream)
        .await
        .expect("load");
    let (mut gateway_state, mut gateway_version) = (gateway.state, gateway.version);
    let (mut wallet_state, mut wallet_version) = (wallet.state, wallet.version);
    let now = chrono::Utc::now();
    let context = CommandContext::default();
    let started = Instant::now();
    let mut done = 0;
    while done < payments {
        let chunk = CHUNK.min(payments - done);
        let mut payment_appends = Vec::with_capacity(chunk as usize);
        let mut booked = Vec::with_capacity(chunk as usize);
        let mut accrued = Vec::with_capacity(chunk as usize);
        for i in done..done + chunk {
            let at = now - chrono::Duration::seconds(2 * (payments - i) as i64);
            let amount = Paise(100 + (i as i64 * 7_919) % 2_000_000);
            let payment_id = PaymentId::new();
            let book = GatewayCommand::Book {
                payment_id,
                request: BookingRequest {
                    merchant_id: merchant.id,
                    amount,
                    settings: *merchant_state.checkout(),
                    at,
                },
            };
            let events = decide::<Gateway>(&mut gateway_state, &book);
            booked.extend(events);
            let mut payment = None;
            let mut events = decide::<Payment>(
                &mut payment,
                &PaymentCommand::Initiate(InitiatePayment {
                    payment_id,
                    merchant: merchant_state.snapshot(wallet_state.balance_due()),
                    amount,
                    currency: "INR".into(),
                    merchant_order_id: format!("scale-{i}"),
                    details: PaymentDetails::default(),
                    gateway_id,
                    at,
                }),
            );
            events.extend(decide::<Payment>(
                &mut payment,
                &PaymentCommand::RecordPspOrder {
                    gateway_id,
                    psp_order_id: format!("order_scale_{i}"),
                    checkout: serde_json::json!({ "url": format!("https://psp.example/pay/{i}") }),
                    at: at + chrono::Duration::seconds(1),
                },
            ));
            let succeeded = decide::<Payment>(
                &mut payment,
                &PaymentCommand::RecordSuccess {
                    psp_payment_id: format!("pay_scale_{i}"),
                    amount,
                    at: at + chrono::Duration::seconds(40),
                },
            );
            let accrual = succeeded
                .iter()
                .find_map(|event| WalletCommand::accrual_for(payment_id, event))
                .expect("a success accrues commission");
            accrued.extend(decide::<Wallet>(&mut wallet_state, &accrual));
            events.extend(succeeded);
            let stream_id = stream_of::<Payment>(payment_id).expect("stream");
            payment_appends.push(StreamAppend {
                events: new_events(&stream_id, &events, &context).expect("encode"),
                stream_id,
                expected: ExpectedVersion::Exact(0),
            });
        }
        let payments_appended = futures::stream::iter(chunked(payment_appends))
            .map(|appends| async move { store.append_many(appends).await.expect("append") })
            .buffer_unordered(writers)
            .count();
        let bookings = append_history(store, &gateway_stream, gateway_version, &booked, &context);
        let accruals = append_history(store, &wallet_stream, wallet_version, &accrued, &context);
        tokio::join!(payments_appended, bookings, accruals);
        gateway_version += booked.len() as u64;
        wallet_version += accrued.len() as u64;
        done += chunk;
        eprint!(
            "\r  big merchant: {done} of {payments} payments, {:.0} events/s",
            (done * EVENTS_PER_PAYMENT) as f64 / started.elapsed().as_secs_f64()
        );
    }
    eprintln!();
}

/// Decides `command` on `state`, folds the events into it and answers them.
fn decide<D: Decider>(state: &mut D::State, command: &D::Command) -> Vec<D::Event> {
    let events = D::decide(state, command).unwrap_or_else(|e| panic!("refused: {e}"));
    for event in &events {
        *state = D::evolve(std::mem::take(state), event);
    }
    events
}

/// New streams' appends, 16 to an append (the log's limit of streams per append).
fn chunked(appends: Vec<StreamAppend>) -> Vec<Vec<StreamAppend>> {
    let mut out = Vec::new();
    let mut appends = appends.into_iter().peekable();
    while appends.peek().is_some() {
        out.push(
            appends
                .by_ref()
                .take(lightspeed_eventstore::limits::MAX_STREAMS_PER_APPEND)
                .collect(),
        );
    }
    out
}

/// Appends one stream's `events` after `version`, in batches.
async fn append_history<E: lightspeed_domain::DomainEvent>(
    store: &PgEventStore,
    stream: &StreamId,
    mut version: u64,
    events: &[E],
    context: &CommandContext,
) {
    for batch in events.chunks(BATCH) {
        let appended = new_events(stream, batch, context).expect("encode");
        let expected = ExpectedVersion::Exact(version);
        version += appended.len() as u64;
        store
            .append(stream.clone(), expected, appended)
            .await
            .expect("append");
    }
}

/// `events` more events by the scenario generator over `merchants` merchants, split among
/// `writers` scenarios appended concurrently.
async fn scenarios(store: &PgEventStore, events: u64, merchants: usize, writers: usize) {
    let started = Instant::now();
    let share = events / writers as u64;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                // About 5 000 events per merchant, up to `merchants` in all.
                let own = (share / 5_000).clamp(1, (merchants / writers).max(1) as u64);
                let (mut scenario, onboarding) = Scenario::new(ScenarioConfig {
                    merchants: own as usize,
                    gateways_per_merchant: 3,
                    seed: w as u64 + 1,
                });
                let mut appended = append_packed(&store, onboarding).await.expect("append");
                while appended < share {
                    let chunk = (share - appended).min(20_000) as usize;
                    appended += append_packed(&store, scenario.more(chunk))
                        .await
                        .expect("append");
                    if w == 0 {
                        eprint!(
                            "\r  scenarios: about {} of {events} events, {:.0} events/s",
                            appended * writers as u64,
                            (appended * writers as u64) as f64 / started.elapsed().as_secs_f64()
                        );
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("scenario writer");
    }
    eprintln!();
}

/// `starts` cold starts of the log's big merchant, emptying the snapshots first when
/// `without_snapshots`: p50, p99 and the slowest, in milliseconds.
async fn cold_starts(log: &Log, starts: u64, without_snapshots: bool) -> (f64, f64, f64) {
    let store = log.db.store();
    let mut samples = Vec::new();
    for n in 0..starts {
        if without_snapshots {
            sqlx::query("TRUNCATE ledger.snapshots")
                .execute(&log.db.pool)
                .await
                .expect("truncate");
        }
        let order = format!(
            "c{}{}",
            u8::from(without_snapshots),
            uuid::Uuid::now_v7().simple()
        );
        samples.push(cold_start(&store, &log.merchants[0], order).await);
        eprint!("\r  {} cold starts: {} of {starts}", log.label, n + 1);
        // Let the snapshot a cold load may write land before the next start.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!();
    let slowest = samples.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let (p50, p99) = summary(samples);
    (p50, p99, slowest)
}

/// Events in the big merchant's first gateway stream and wallet stream.
async fn stream_lengths(log: &Log) -> (u64, u64) {
    let store = log.db.store();
    let merchant = &log.merchants[0];
    let gateway = store
        .stream_version(&stream_of::<Gateway>(merchant.gateways[0]).expect("stream"))
        .await
        .expect("version");
    let wallet = store
        .stream_version(&stream_of::<Wallet>(merchant.id).expect("stream"))
        .await
        .expect("version");
    (gateway, wallet)
}

/// Audit figures: verify's and commission's events per second, and events commission read.
struct Audit {
    verify_per_s: f64,
    commission_per_s: f64,
    commission_read: u64,
}

/// `audit verify --db` and `audit commission --db` through their library calls, `runs` times
/// each; the median rates. Panics if the log does not verify or the commission disagrees.
async fn audit(log: &Log, runs: usize) -> Audit {
    let mut verify = Vec::new();
    let mut commission = Vec::new();
    let mut read = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let report = verify_database(&log.db.pool, &ProgressBar::hidden())
            .await
            .unwrap_or_else(|e| panic!("{}: the log does not verify: {e}", log.label));
        verify.push(report.events as f64 / started.elapsed().as_secs_f64());
        assert_eq!(report.events, log.events, "{}: verified events", log.label);
        assert_eq!(report.unsealed_events, 0, "{}: unsealed events", log.label);
        let started = Instant::now();
        let replayed = replay_database(&log.db.pool, ReplayFilter::default())
            .await
            .unwrap_or_else(|e| panic!("{}: commission replay failed: {e}", log.label));
        commission.push(replayed.events_read as f64 / started.elapsed().as_secs_f64());
        assert!(
            replayed.inconsistencies.is_empty(),
            "{}: {} payments and wallets disagree",
            log.label,
            replayed.inconsistencies.len()
        );
        read = replayed.events_read;
    }
    let median = |mut rates: Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    Audit {
        verify_per_s: median(verify),
        commission_per_s: median(commission),
        commission_read: read,
    }
}

/// Runs `lightspeed audit <args> --db` on the log; answers its exit code and wall time.
async fn audit_command(log: &Log, args: &[&str]) -> (i32, Duration) {
    let started = Instant::now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_lightspeed"))
        .arg("audit")
        .args(args)
        .arg("--db")
        .env("DATABASE_URL", &log.db.url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run lightspeed audit");
    let elapsed = started.elapsed();
    if !output.status.success() {
        eprintln!(
            "{}: lightspeed audit {args:?} --db: {}\n{}",
            log.label,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    (output.status.code().unwrap_or(-1), elapsed)
}

/// PostgreSQL's bytes for `ledger.events`: table, indexes, TOAST.
async fn sizes(pool: &PgPool) -> (i64, i64, i64) {
    let row = sqlx::query(
        "SELECT pg_relation_size('ledger.events') AS heap,
                pg_indexes_size('ledger.events') AS indexes,
                pg_total_relation_size('ledger.events') - pg_relation_size('ledger.events')
                  - pg_indexes_size('ledger.events') AS toast",
    )
    .fetch_one(pool)
    .await
    .expect("sizes");
    (row.get("heap"), row.get("indexes"), row.get("toast"))
}

/// What a load child reports.
struct Served {
    outcome: load::Outcome,
    rss_kib: u64,
    hwm_kib: u64,
}

/// Runs this binary again as the API and the load on `log`; answers what it reports.
async fn serve_and_load(log: &Log, run: &str) -> Served {
    let output = tokio::process::Command::new(std::env::current_exe().expect("this binary"))
        .env("SCALE_LOAD_DATABASE_URL", &log.db.url)
        .env("SCALE_LOAD_RUN", run)
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .expect("run the load child");
    assert!(
        output.status.success(),
        "{}: the load child failed",
        log.label
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("LOAD "))
        .expect("the load child's figures");
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|v| v.parse().expect("a figure"))
        .collect();
    Served {
        outcome: load::Outcome {
            requests_per_s: f[0],
            p50_ms: f[1],
            p99_ms: f[2],
            max_ms: f[3],
            errors: f[4] as u64,
            busy_cores: f[5],
            process_us_per_request: f[8],
        },
        rss_kib: f[6] as u64,
        hwm_kib: f[7] as u64,
    }
}

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The load child: the API in this process on the log at `url`, the initiate bench's load on
/// it, then the figures and this process's resident memory on one `LOAD` line.
async fn load_child(url: &str, run: &str) {
    lightspeed_adapters::http::install_crypto_provider();
    let seconds = setting("BENCH_SECONDS", 60);
    let connections = setting("BENCH_CONNECTIONS", 64) as usize;
    let pool = PgPoolOptions::new()
        .max_connections(32)
        .connect_with(lightspeed_eventstore::migrate::connect_options(url).expect("url"))
        .await
        .expect("connect");
    let merchants = stored_merchants(&pool).await.expect("the log's merchants");
    let ledger = Ledger::new(PgEventStore::new(pool, Arc::new(SystemClock)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api = listener.local_addr().expect("addr");
    let mut config = ApiConfig::new(format!("http://{api}"));
    config.initiate_per_minute = std::num::NonZeroU32::new(100_000_000).expect("non-zero");
    let state = AppState::new(ledger, Arc::new(keyring()), config, None);
    let router = app(state, Router::new());
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    let o = load::load(api, &merchants, connections, seconds, run).await;
    println!(
        "LOAD {} {} {} {} {} {} {} {} {}",
        o.requests_per_s,
        o.p50_ms,
        o.p99_ms,
        o.max_ms,
        o.errors,
        o.busy_cores,
        status_kib("VmRSS:"),
        status_kib("VmHWM:"),
        o.process_us_per_request
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main]
async fn main() {
    if let Ok(url) = std::env::var("SCALE_LOAD_DATABASE_URL") {
        let run = std::env::var("SCALE_LOAD_RUN").unwrap_or_else(|_| "load".into());
        load_child(&url, &run).await;
        return;
    }
    let events = setting("BENCH_EVENTS", 10_000_000);
    let keep = std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1");
    let writers = setting("BENCH_WRITERS", 4).max(1) as usize;
    let starts = setting("BENCH_STARTS", 200);
    let bare_starts = setting("BENCH_BARE_STARTS", 5);
    eprintln!("load average {}", load_average());

    let young = log("young", YOUNG_EVENTS, false, writers).await;
    let old = log("old", events, keep, writers).await;
    let logs = [&young, &old];
    eprintln!("load average {}", load_average());

    // The product's own commands accept both logs.
    for log in logs {
        for command in [&["verify"][..], &["commission", "--format", "csv"][..]] {
            let (code, took) = audit_command(log, command).await;
            eprintln!(
                "{}: lightspeed audit {} --db exited {code} in {took:.1?}",
                log.label, command[0]
            );
            assert_eq!(code, 0, "{}: lightspeed audit {}", log.label, command[0]);
        }
    }

    println!("load average at the start: {}", load_average());
    println!();
    println!("| log | events | big merchant's gateway stream | its wallet stream |");
    println!("|---|---:|---:|---:|");
    for log in logs {
        let (gateway, wallet) = stream_lengths(log).await;
        println!("| {} | {} | {gateway} | {wallet} |", log.label, log.events);
    }

    // (e) sizes.
    println!();
    println!(
        "| log | events | table MiB | indexes MiB | TOAST MiB | table + indexes + TOAST MiB per million events |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for log in logs {
        let (heap, indexes, toast) = sizes(&log.db.pool).await;
        let mib = |b: i64| b as f64 / (1024.0 * 1024.0);
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.0} |",
            log.label,
            log.events,
            mib(heap),
            mib(indexes),
            mib(toast),
            mib(heap + indexes + toast) / (log.events as f64 / 1e6)
        );
    }

    // (c) audit rates.
    let young_audit = audit(&young, 5).await;
    let old_audit = audit(&old, 1).await;
    println!();
    println!(
        "| log | events | verify events/s | commission: events read | commission events read/s |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (log, a) in [(&young, &young_audit), (&old, &old_audit)] {
        println!(
            "| {} | {} | {:.0} | {} | {:.0} |",
            log.label, log.events, a.verify_per_s, a.commission_read, a.commission_per_s
        );
    }
    println!(
        "old ÷ young: verify {:.2}, commission {:.2} (load average {})",
        old_audit.verify_per_s / young_audit.verify_per_s,
        old_audit.commission_per_s / young_audit.commission_per_s,
        load_average()
    );

    // (a) cold starts: one load of each log first keeps its snapshots.
    for log in logs {
        sqlx::query("CHECKPOINT")
            .execute(&log.db.pool)
            .await
            .expect("checkpoint");
        cold_start(
            &log.db.store(),
            &log.merchants[0],
            format!("p{}", uuid::Uuid::now_v7().simple()),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut cold = Vec::new();
    for (log, n, bare) in [
        (&young, starts, false),
        (&old, starts, false),
        (&young, bare_starts, true),
        (&old, bare_starts, true),
    ] {
        cold.push((log.label, n, bare, cold_starts(log, n, bare).await));
    }
    println!();
    println!("| log | snapshots | cold starts | p50 ms | p99 ms | slowest ms |");
    println!("|---|---|---:|---:|---:|---:|");
    for (label, n, bare, (p50, p99, slowest)) in cold {
        let snapshots = if bare { "emptied" } else { "kept" };
        println!("| {label} | {snapshots} | {n} | {p50:.1} | {p99:.1} | {slowest:.1} |");
    }
    println!("(load average {})", load_average());

    // (b) and (d): the initiate bench's load on each log, the API in a child process.
    let young_load = serve_and_load(&young, "young").await;
    let young_load_average = load_average();
    let old_load = serve_and_load(&old, "old").await;
    let old_load_average = load_average();
    println!();
    println!(
        "| log | requests/s | p50 ms | p99 ms | max ms | errors | busy cores | API process RSS MiB | its peak MiB | load average |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (log, s, average) in [
        (&young, &young_load, young_load_average),
        (&old, &old_load, old_load_average),
    ] {
        let o = s.outcome;
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.2} | {:.0} | {:.0} | {average} |",
            log.label,
            o.requests_per_s,
            o.p50_ms,
            o.p99_ms,
            o.max_ms,
            o.errors,
            o.busy_cores,
            s.rss_kib as f64 / 1024.0,
            s.hwm_kib as f64 / 1024.0
        );
    }
    println!(
        "old ÷ young throughput: {:.2}",
        old_load.outcome.requests_per_s / young_load.outcome.requests_per_s
    );
    if keep {
        println!("kept {} ({})", old.db.name, old.db.url);
    }
}
