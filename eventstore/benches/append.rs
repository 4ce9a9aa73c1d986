//! Append throughput beside the raw PostgreSQL ceiling measured in the same run, on the same
//! database: `cargo bench -p lightspeed-eventstore --bench append`.
//!
//! Cases (16 concurrent writers each, several rounds interleaved, medians reported):
//! - raw single-row INSERT per transaction into a plain table (the ceiling for commands);
//! - single-event commands on new streams through the command handler (expected version
//!   `NoStream`, idempotency, row hash, gap-safe columns);
//! - single-event commands on 16 hot streams (one per writer; each command re-checks the
//!   expected version against the stream it has seen);
//! - raw 100-row INSERT per transaction (the ceiling for batches);
//! - 100-event appends to new streams.
//!
//! While the command cases run, a gap-safe reader follows the log and reports how far behind
//! the commits it reads (p50/p99 of now − recorded_at); the relay does the same to JetStream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use lightspeed_domain::{Decider, DomainEvent, SystemClock};
use lightspeed_eventstore::relay::{Relay, RelayConfig};
use lightspeed_eventstore::testing::{TestDatabase, TestNats};
use lightspeed_eventstore::{
    CommandContext, CommandHandler, EventStore, ExpectedVersion, Metadata, NewEvent, PgEventStore,
    StreamId, stream_of,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WRITERS: usize = 16;
const ROUND: Duration = Duration::from_secs(6);
const ROUNDS: usize = 3;
const BATCH: usize = 100;

struct Tally;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum TallyEvent {
    Tallied { merchant: Uuid, amount_paise: i64 },
}

impl DomainEvent for TallyEvent {
    fn event_type(&self) -> &'static str {
        "Tallied"
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never refused")]
struct Never;

impl Decider for Tally {
    const CATEGORY: &'static str = "tally";
    type State = i64;
    type Command = i64;
    type Event = TallyEvent;
    type Error = Never;

    fn decide(_: &i64, amount: &i64) -> Result<Vec<TallyEvent>, Never> {
        Ok(vec![TallyEvent::Tallied {
            merchant: Uuid::nil(),
            amount_paise: *amount,
        }])
    }

    fn evolve(state: i64, event: &TallyEvent) -> i64 {
        match event {
            TallyEvent::Tallied { amount_paise, .. } => state + amount_paise,
        }
    }
}

fn payload() -> serde_json::Value {
    serde_json::json!({ "merchant": Uuid::nil(), "amount_paise": 49_900 })
}

/// Runs `WRITERS` tasks calling `op` until the round ends; answers operations per second.
async fn measure<F, Fut>(op: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (op, done, stop) = (Arc::clone(&op), Arc::clone(&done), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    op(writer, n).await;
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(ROUND).await;
    stop.store(true, Ordering::Relaxed);
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    for task in tasks {
        task.await.expect("writer");
    }
    count as f64 / elapsed.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() - 1) as f64 * p).round() as usize;
    values[index]
}

/// Follows the log with the gap-safe reader, recording how long after its commit each event is read.
fn follow_log(store: PgEventStore, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<f64>> {
    tokio::spawn(async move {
        let mut after = store.head().await.expect("head");
        let mut lags = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let batch = store.read_log(after, None, 5_000).await.expect("read");
            let now = Utc::now();
            for event in &batch {
                lags.push(
                    (now - event.recorded_at).num_microseconds().unwrap_or(0) as f64 / 1000.0,
                );
            }
            match batch.last() {
                Some(last) => after = last.log_position,
                None => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
        lags
    })
}

/// Follows the relay's JetStream stream, recording how long after its commit each event arrives.
fn follow_relay(nats: &TestNats, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<f64>> {
    let js = nats.jetstream.clone();
    let config = nats.config.clone();
    tokio::spawn(async move {
        let stream = config.ensure_stream(&js).await.expect("stream");
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut lags = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let Ok(Some(Ok(message))) =
                tokio::time::timeout(Duration::from_millis(200), messages.next()).await
            else {
                continue;
            };
            let event = lightspeed_eventstore::nats::decode(0, &message.payload).expect("event");
            lags.push(
                (Utc::now() - event.recorded_at)
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1000.0,
            );
        }
        lags
    })
}

/// Waits until the relay has published everything committed so far.
async fn wait_for_relay(store: &PgEventStore, pool: &sqlx::PgPool, stream_name: &str) {
    let head = store.head().await.expect("head");
    let started = Instant::now();
    loop {
        let mark = lightspeed_eventstore::relay::load_mark(pool, stream_name)
            .await
            .expect("mark");
        if mark.is_some_and(|m| m.position >= head)
            || head == lightspeed_eventstore::LogPosition::START
        {
            eprintln!(
                "relay caught up in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each case's per-round rates and the lags seen while the command cases ran.
#[derive(Default)]
struct Figures {
    raw_single: Vec<f64>,
    commands_new: Vec<f64>,
    commands_hot: Vec<f64>,
    raw_batch: Vec<f64>,
    appends_batch: Vec<f64>,
    reader_lags: Vec<f64>,
    relay_lags: Vec<f64>,
}

#[tokio::main]
async fn main() {
    let db = TestDatabase::new().await;
    let nats = TestNats::new().await;
    let pool = db.another_pool(WRITERS as u32 + 4).await;
    sqlx::raw_sql(
        "CREATE TABLE bench_raw (id bigserial PRIMARY KEY, stream_id text NOT NULL,
                                 event_type text NOT NULL, payload jsonb NOT NULL,
                                 recorded_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&pool)
    .await
    .expect("raw table");
    let store = PgEventStore::new(pool.clone(), Arc::new(SystemClock));
    let relay = Relay::new(
        store.clone(),
        nats.jetstream.clone(),
        nats.config.clone(),
        RelayConfig {
            idle_poll: Duration::from_millis(2),
            ..RelayConfig::default()
        },
    );
    let relay = tokio::spawn(async move { relay.run().await });
    let hot: Arc<Vec<StreamId>> = Arc::new(
        (0..WRITERS)
            .map(|w| stream_of::<Tally>(format!("hot{w}")).expect("id"))
            .collect(),
    );
    let mut figures = Figures::default();
    for round in 0..ROUNDS {
        eprintln!("round {} of {ROUNDS}", round + 1);
        figures.raw_single.push(raw_single(&pool).await);
        // The batch cases of the previous round leave a backlog; measure lag from a steady state.
        wait_for_relay(&store, &pool, &nats.config.stream_name).await;
        let stop = Arc::new(AtomicBool::new(false));
        let reader = follow_log(store.clone(), Arc::clone(&stop));
        let relay_follower = follow_relay(&nats, Arc::clone(&stop));
        figures.commands_new.push(commands_new(&store).await);
        figures.commands_hot.push(commands_hot(&store, &hot).await);
        stop.store(true, Ordering::Relaxed);
        figures.reader_lags.extend(reader.await.expect("reader"));
        figures
            .relay_lags
            .extend(relay_follower.await.expect("relay follower"));
        figures.raw_batch.push(raw_batch(&pool).await);
        figures.appends_batch.push(appends_batch(&store).await);
    }
    relay.abort();
    report(figures);
}

/// The ceiling for commands: one raw row per transaction.
async fn raw_single(pool: &sqlx::PgPool) -> f64 {
    let pool = pool.clone();
    measure(move |_, _| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO bench_raw (stream_id, event_type, payload) VALUES ($1, 'Tallied', $2)",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(payload())
            .execute(&pool)
            .await
            .expect("raw insert");
        }
    })
    .await
}

/// Single-event commands, each on a new stream.
async fn commands_new(store: &PgEventStore) -> f64 {
    let handler = CommandHandler::<Tally, _>::new(store.clone());
    measure(move |_, _| {
        let handler = handler.clone();
        async move {
            let stream = stream_of::<Tally>(Uuid::now_v7()).expect("id");
            handler
                .execute(&stream, &49_900, &CommandContext::default())
                .await
                .expect("command");
        }
    })
    .await
}

/// Single-event commands, each writer on its own hot stream.
async fn commands_hot(store: &PgEventStore, hot: &Arc<Vec<StreamId>>) -> f64 {
    let handler = CommandHandler::<Tally, _>::new(store.clone());
    let hot = Arc::clone(hot);
    measure(move |writer, _| {
        let handler = handler.clone();
        let stream = hot[writer].clone();
        async move {
            handler
                .execute(&stream, &49_900, &CommandContext::default())
                .await
                .expect("command");
        }
    })
    .await
}

/// The ceiling for batches: `BATCH` raw rows per transaction; answers rows per second.
async fn raw_batch(pool: &sqlx::PgPool) -> f64 {
    let pool = pool.clone();
    let rate = measure(move |_, _| {
        let pool = pool.clone();
        async move {
            let streams: Vec<String> = (0..BATCH).map(|_| Uuid::now_v7().to_string()).collect();
            let payloads: Vec<serde_json::Value> = (0..BATCH).map(|_| payload()).collect();
            sqlx::query(
                "INSERT INTO bench_raw (stream_id, event_type, payload)
                 SELECT s, 'Tallied', p FROM unnest($1::text[], $2::jsonb[]) AS t(s, p)",
            )
            .bind(&streams)
            .bind(&payloads)
            .execute(&pool)
            .await
            .expect("raw batch");
        }
    })
    .await;
    BATCH as f64 * rate
}

/// `BATCH`-event appends to new streams; answers events per second.
async fn appends_batch(store: &PgEventStore) -> f64 {
    let store = store.clone();
    let rate = measure(move |_, _| {
        let store = store.clone();
        async move {
            let events = (0..BATCH)
                .map(|_| NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: "Tallied".into(),
                    schema_version: 1,
                    payload: payload(),
                    metadata: Metadata::default(),
                })
                .collect();
            let stream = stream_of::<Tally>(Uuid::now_v7()).expect("id");
            store
                .append(stream, ExpectedVersion::NoStream, events)
                .await
                .expect("batch");
        }
    })
    .await;
    BATCH as f64 * rate
}

/// Prints the medians beside their ceilings, then the lag percentiles.
fn report(mut figures: Figures) {
    let raw_single = median(figures.raw_single);
    let raw_batch = median(figures.raw_batch);
    let rows = [
        (
            "raw single-row INSERT per transaction",
            raw_single,
            raw_single,
        ),
        (
            "single-event commands, new streams",
            median(figures.commands_new),
            raw_single,
        ),
        (
            "single-event commands, 16 hot streams",
            median(figures.commands_hot),
            raw_single,
        ),
        (
            "raw 100-row INSERT per transaction (rows/s)",
            raw_batch,
            raw_batch,
        ),
        (
            "100-event appends, new streams (events/s)",
            median(figures.appends_batch),
            raw_batch,
        ),
    ];
    println!(
        "\n{WRITERS} writers, {ROUNDS} rounds of {}s each, medians:",
        ROUND.as_secs()
    );
    println!("| case | per second | of raw ceiling |");
    println!("|---|---:|---:|");
    for (name, rate, ceiling) in rows {
        println!("| {name} | {rate:.0} | {:.0} % |", 100.0 * rate / ceiling);
    }
    println!(
        "\ngap-safe reader lag behind commits: p50 {:.1} ms, p99 {:.1} ms ({} events)",
        percentile(&mut figures.reader_lags, 0.5),
        percentile(&mut figures.reader_lags, 0.99),
        figures.reader_lags.len()
    );
    println!(
        "relay lag, commit to JetStream consumer: p50 {:.1} ms, p99 {:.1} ms ({} events)",
        percentile(&mut figures.relay_lags, 0.5),
        percentile(&mut figures.relay_lags, 0.99),
        figures.relay_lags.len()
    );
}
