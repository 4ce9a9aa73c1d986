//! Freshness benchmark: the log written at a steady rate of payments while the relay publishes
//! it to JetStream and every projector follows it live; reports, per projection, how long after
//! an append returned its events were applied (the projection's checkpoint passed them).
//!
//! Usage: `freshness-bench [payments_per_second] [seconds] [writers] [warm_up_seconds]`
//! (defaults 1 000, 30, 32 and 30), over a fresh database and JetStream stream of its own
//! (`TEST_DATABASE_URL`, `NATS_URL`), both removed at the end. The operations come from the
//! scenario generator (payments started and settled, deliveries, notifications, payouts, ...) in
//! independent shards (one per writer, 4 merchants each) appended concurrently; the rate counts
//! operations that start a payment. Nothing is measured during the warm-up: a fresh scenario has
//! no payments in flight yet, and the events per second grow for about 30 s until as many
//! payments settle as start. Then every 10th operation is sampled; checkpoints are polled every
//! 2 ms, so figures are accurate to about that.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightspeed_domain::SystemClock;
use lightspeed_eventstore::lookups::positions_of;
use lightspeed_eventstore::relay::{Relay, RelayConfig};
use lightspeed_eventstore::testing::{TestDatabase, TestNats};
use lightspeed_eventstore::{EventStore, LogPosition, PgEventStore};
use lightspeed_projections::scenario::{Operation, Scenario, ScenarioConfig, append_packed};
use lightspeed_projections::{ProjectorDeps, catalog};
use sqlx::PgPool;
use tokio::sync::mpsc;

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SAMPLE_EVERY: usize = 10;
const POLL: Duration = Duration::from_millis(2);

/// One sampled append: the last event of each category it wrote, and when the append returned.
struct Sample {
    committed: Instant,
    /// Category → (stream, version) of its last event in the operation.
    last_by_category: BTreeMap<String, (String, u64)>,
}

fn is_payment_start(operation: &Operation) -> bool {
    operation.0.iter().any(|append| {
        append
            .events
            .iter()
            .any(|e| e.event_type == "PaymentInitiated")
    })
}

async fn shard(
    store: PgEventStore,
    seed: u64,
    rate: f64,
    warm_up: Duration,
    run_for: Duration,
    samples: mpsc::UnboundedSender<Sample>,
) -> (u64, u64) {
    let (mut scenario, setup) = Scenario::new(ScenarioConfig {
        merchants: 4,
        gateways_per_merchant: 4,
        seed,
    });
    append_packed(&store, setup).await.expect("set-up");
    let started = Instant::now();
    let measured_from = started + warm_up;
    let ends = measured_from + run_for;
    let (mut started_payments, mut payments, mut events, mut operations) = (0u64, 0u64, 0u64, 0);
    while Instant::now() < ends {
        let Some(operation) = scenario.step() else {
            continue;
        };
        let starts_payment = is_payment_start(&operation);
        if starts_payment {
            started_payments += 1;
            // Hold the pace: payment n is not started before n / rate seconds.
            let due = started + Duration::from_secs_f64(started_payments as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let measuring = Instant::now() >= measured_from;
        if measuring {
            payments += u64::from(starts_payment);
            events += operation.events() as u64;
            operations += 1;
        }
        // A sampled operation keeps its streams, to look up their versions once appended.
        let sampled = measuring && operations % SAMPLE_EVERY == 0;
        let streams: Vec<(String, String)> = if sampled {
            operation
                .0
                .iter()
                .map(|a| {
                    (
                        a.stream_id.category().to_owned(),
                        a.stream_id.as_str().to_owned(),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let result = store.append_many(operation.0).await.expect("append");
        let committed = Instant::now();
        if sampled {
            let last_by_category = streams
                .into_iter()
                .filter_map(|(category, stream)| {
                    let version = result.streams.iter().find(|(s, _)| s.as_str() == stream)?.1;
                    Some((category, (stream, version)))
                })
                .collect();
            let _ = samples.send(Sample {
                committed,
                last_by_category,
            });
        }
    }
    (payments, events)
}

/// What a projection still has to apply for a sample to be visible in it.
struct Pending {
    projection: String,
    committed: Instant,
    at: LogPosition,
}

/// Per projection, the categories it reads (`None` for the whole log).
type ProjectionCategories = Vec<(String, Option<Vec<String>>)>;

/// Follows samples and checkpoints until `samples` closes and everything is visible; answers
/// commit-to-visible times per projection.
async fn watch(
    pool: PgPool,
    mut samples: mpsc::UnboundedReceiver<Sample>,
) -> BTreeMap<String, Vec<Duration>> {
    let categories: ProjectionCategories = catalog::all()
        .iter()
        .map(|p| {
            let categories = p
                .categories()
                .map(|c| c.iter().map(|s| s.to_string()).collect());
            (p.name().to_owned(), categories)
        })
        .collect();
    let mut pending: Vec<Pending> = Vec::new();
    let mut visible: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut closed = false;
    while !closed || !pending.is_empty() {
        let received = receive(&mut samples, &mut closed);
        let positions = positions(&pool, &received).await;
        for (sample, positions) in received.iter().zip(&positions) {
            pending.extend(pending_of(sample, positions, &categories));
        }
        let checkpoints = active_checkpoints(&pool).await;
        let now = Instant::now();
        pending.retain(|p| match checkpoints.get(&p.projection) {
            Some(checkpoint) if *checkpoint >= p.at => {
                visible
                    .entry(p.projection.clone())
                    .or_default()
                    .push(now - p.committed);
                false
            }
            _ => true,
        });
        tokio::time::sleep(POLL).await;
    }
    visible
}

/// The samples waiting in `samples`; sets `closed` once the writers are all done.
fn receive(samples: &mut mpsc::UnboundedReceiver<Sample>, closed: &mut bool) -> Vec<Sample> {
    let mut received = Vec::new();
    loop {
        match samples.try_recv() {
            Ok(sample) => received.push(sample),
            Err(mpsc::error::TryRecvError::Empty) => break,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                *closed = true;
                break;
            }
        }
    }
    received
}

/// Per sample, the log position of its last event of each category.
async fn positions<'s>(
    pool: &PgPool,
    received: &'s [Sample],
) -> Vec<BTreeMap<&'s String, LogPosition>> {
    // One query for every sample received since the last poll: a query per sample let the
    // watcher fall behind the writers and measure its own backlog.
    let lookups: Vec<(usize, &String, &(String, u64))> = received
        .iter()
        .enumerate()
        .flat_map(|(n, s)| s.last_by_category.iter().map(move |(c, at)| (n, c, at)))
        .collect();
    let events: Vec<(&str, u64)> = lookups
        .iter()
        .map(|(_, _, (stream, version))| (stream.as_str(), *version))
        .collect();
    let found = if events.is_empty() {
        Vec::new()
    } else {
        positions_of(pool, &events).await.expect("positions")
    };
    let mut positions = vec![BTreeMap::new(); received.len()];
    for ((sample, category, _), at) in lookups.into_iter().zip(found) {
        if let Some(at) = at {
            positions[sample].insert(category, at);
        }
    }
    positions
}

/// What each projection must apply for `sample` to be visible in it: the furthest of the
/// sample's positions in the categories it reads.
fn pending_of<'a>(
    sample: &'a Sample,
    positions: &'a BTreeMap<&String, LogPosition>,
    categories: &'a ProjectionCategories,
) -> impl Iterator<Item = Pending> + 'a {
    categories.iter().filter_map(move |(projection, wanted)| {
        let furthest = positions
            .iter()
            .filter(|(c, _)| wanted.as_ref().is_none_or(|w| w.contains(c)))
            .map(|(_, at)| *at)
            .max()?;
        Some(Pending {
            projection: projection.clone(),
            committed: sample.committed,
            at: furthest,
        })
    })
}

/// Each projection's active checkpoint.
async fn active_checkpoints(pool: &PgPool) -> BTreeMap<String, LogPosition> {
    sqlx::query_as::<_, (String, String, i64)>(
        "SELECT projection, transaction_id::text, position
           FROM projections.versions WHERE state = 'active'",
    )
    .fetch_all(pool)
    .await
    .expect("checkpoints")
    .into_iter()
    .map(|(projection, tx, position)| {
        let checkpoint = LogPosition {
            transaction_id: tx.parse().expect("a transaction id"),
            position: u64::try_from(position).expect("a position"),
        };
        (projection, checkpoint)
    })
    .collect()
}

/// Prints, per projection, the commit-to-visible percentiles of its samples.
fn print_visible(visible: BTreeMap<String, Vec<Duration>>) {
    println!("commit → visible in the projection (sampled 1 operation in {SAMPLE_EVERY})");
    println!(
        "{:<20} {:>7} {:>8} {:>8} {:>8}",
        "projection", "samples", "p50 ms", "p99 ms", "max ms"
    );
    for (projection, mut times) in visible {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{projection:<20} {:>7} {:>8.1} {:>8.1} {:>8.1}",
            times.len(),
            ms(percentile(&times, 0.50)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().unwrap_or(&Duration::ZERO))
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rate: f64 = args.next().map_or(Ok(1_000.0), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(30), |a| a.parse())?;
    let writers: usize = args.next().map_or(Ok(32), |a| a.parse())?;
    let warm_up = Duration::from_secs(args.next().map_or(Ok(30), |a| a.parse())?);
    let db = TestDatabase::new().await;
    let nats = TestNats::new().await;
    let pool = db.another_pool(48).await;
    let store = PgEventStore::new(pool.clone(), Arc::new(SystemClock));

    let relay = Relay::new(
        store.clone(),
        nats.jetstream.clone(),
        nats.config.clone(),
        RelayConfig::default(),
    );
    let relay = tokio::spawn(async move { relay.run().await });
    let deps = ProjectorDeps {
        store: store.clone(),
        live: Some((nats.jetstream.clone(), nats.config.clone())),
    };
    let projectors = tokio::spawn(lightspeed_projections::run_all(deps));

    let (samples, sampled) = mpsc::unbounded_channel();
    let watcher = tokio::spawn(watch(pool.clone(), sampled));
    let run_for = Duration::from_secs(seconds);
    let writers: Vec<_> = (0..writers)
        .map(|n| {
            tokio::spawn(shard(
                store.clone(),
                1_000 + n as u64,
                rate / writers as f64,
                warm_up,
                run_for,
                samples.clone(),
            ))
        })
        .collect();
    drop(samples);
    let (mut payments, mut events) = (0, 0);
    for writer in writers {
        let (p, e) = writer.await?;
        payments += p;
        events += e;
    }
    println!(
        "after {} s of warm-up, appended {payments} payments ({:.0}/s), {events} events ({:.0}/s) \
         in {seconds} s",
        warm_up.as_secs(),
        payments as f64 / seconds as f64,
        events as f64 / seconds as f64
    );
    let visible = watcher.await?;
    print_visible(visible);
    relay.abort();
    projectors.abort();
    Ok(())
}
