//! Rebuild benchmark: fills a database's log with generated events (through the real deciders)
//! up to a target, then rebuilds every projection from scratch several times and reports, per
//! projection, the median run's seconds, events applied and applied events per second, beside
//! its ceiling measured in the same run: reading the same events without applying them.
//!
//! Usage: `DATABASE_URL=... projections-bench [events] [runs] [names]` (defaults: 1 000 000
//! events, 3 runs, every projection; names are comma-separated). The database is created and
//! migrated if needed; events already there are reused.

use std::sync::Arc;
use std::time::Instant;

use lightspeed_domain::SystemClock;
use lightspeed_eventstore::log_counts::{events_after, log_bytes, log_counts, vacuum_analyze};
use lightspeed_eventstore::migrate::{ensure_database, migrate};
use lightspeed_eventstore::{LogPosition, LogReader, PgEventStore};
use lightspeed_projections::catalog;
use lightspeed_projections::progress::Silent;
use lightspeed_projections::rebuild::MAX_REBUILD_BATCH;
use lightspeed_projections::scenario::{ScenarioConfig, append_packed, generate};
use lightspeed_projections::{Projection, ProjectorDeps, RebuildOptions, rebuild_projection};
use sqlx::PgPool;

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let target: i64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let runs: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    let only: Option<Vec<String>> = args
        .next()
        .map(|a| a.split(',').map(str::to_owned).collect());
    let url = std::env::var("DATABASE_URL")?;
    ensure_database(&url).await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await?;
    migrate(&pool).await?;
    let store = PgEventStore::new(pool.clone(), Arc::new(SystemClock));
    let log_events = fill_log(&pool, &store, target).await?;
    let deps = ProjectorDeps { store, live: None };
    println!(
        "{:<20} {:>8} {:>10} {:>12} {:>12} {:>6}",
        "projection", "seconds", "applied", "applied/s", "ceiling/s", "ratio"
    );
    let chosen = catalog::all().into_iter().filter(|p| {
        only.as_ref()
            .is_none_or(|o| o.iter().any(|n| n == p.name()))
    });
    for projection in chosen {
        let ceiling = bench_read(&projection, &deps.store, runs).await?;
        let rebuilt = bench_rebuild(&projection, &deps, runs).await?;
        println!(
            "{:<20} {:>8.2} {:>10} {:>12.0} {:>12.0} {:>6.2}   (whole log {:.0} events/s)",
            projection.name(),
            rebuilt.secs,
            rebuilt.events,
            rebuilt.rate(),
            ceiling.rate(),
            rebuilt.rate() / ceiling.rate(),
            log_events as f64 / rebuilt.secs,
        );
    }
    Ok(())
}

/// Appends generated events until the log holds `target`; answers how many it holds.
async fn fill_log(
    pool: &PgPool,
    store: &PgEventStore,
    target: i64,
) -> Result<i64, Box<dyn std::error::Error>> {
    let existing = i64::try_from(events_after(pool, LogPosition::START, None).await?)?;
    if existing < target {
        let started = Instant::now();
        let missing = usize::try_from(target - existing)?;
        let (_, operations) = generate(
            ScenarioConfig {
                merchants: 50,
                gateways_per_merchant: 4,
                seed: u64::try_from(existing)?,
            },
            missing,
        );
        let appended = append_packed(store, operations).await?;
        println!(
            "generated {appended} events in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    // What autovacuum does to a table that only grows (this machine's PostgreSQL runs without
    // it): statistics for the planner and the visibility map for index-only counts.
    let started = Instant::now();
    vacuum_analyze(pool).await?;
    println!(
        "vacuumed and analyzed the log in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let counts = log_counts(pool).await?;
    let bytes = log_bytes(pool).await?;
    println!(
        "log: {} events, {} MB with its indexes, {:?}",
        counts.events,
        bytes / 1_000_000,
        counts.by_category
    );
    Ok(counts.events)
}

/// One timed pass: its seconds and the events it handled.
#[derive(Clone, Copy)]
struct Run {
    secs: f64,
    events: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.events as f64 / self.secs
    }
}

/// The run of median duration.
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    runs[runs.len() / 2]
}

/// Rebuilds `projection` from scratch `runs` times; answers the median run.
async fn bench_rebuild(
    projection: &Arc<dyn Projection>,
    deps: &ProjectorDeps,
    runs: usize,
) -> Result<Run, Box<dyn std::error::Error>> {
    let mut timed = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let report = rebuild_projection(
            projection.clone(),
            deps,
            &RebuildOptions {
                restart: true,
                drop_previous: true,
                ..RebuildOptions::default()
            },
            &Silent,
        )
        .await?;
        timed.push(Run {
            secs: started.elapsed().as_secs_f64(),
            events: report.events_applied,
        });
    }
    Ok(median(timed))
}

/// The ceiling of a rebuild of `projection`: reading (and decoding into recorded events) the
/// events it applies, in the rebuild's batches and with the next batch read while one is
/// handled, applying nothing. Answers the median of `runs` passes.
async fn bench_read(
    projection: &Arc<dyn Projection>,
    store: &PgEventStore,
    runs: usize,
) -> Result<Run, Box<dyn std::error::Error>> {
    let categories: Option<Vec<String>> = projection
        .categories()
        .map(|c| c.iter().map(|c| (*c).to_owned()).collect());
    let mut timed = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let events = read_all(store, categories.clone()).await?;
        timed.push(Run {
            secs: started.elapsed().as_secs_f64(),
            events,
        });
    }
    Ok(median(timed))
}

/// Reads every event of `categories` from the start of the log as a rebuild reads it (the same
/// reader and batches, a batch ahead); answers how many.
async fn read_all(
    store: &PgEventStore,
    categories: Option<Vec<String>>,
) -> Result<u64, Box<dyn std::error::Error>> {
    let mut events = 0u64;
    let mut reader = LogReader::new(store.clone(), LogPosition::START, categories.as_deref());
    let mut batch = reader.next_batch(MAX_REBUILD_BATCH).await?;
    while !batch.is_empty() {
        events += batch.len() as u64;
        let next = tokio::spawn(async move {
            let next = reader.next_batch(MAX_REBUILD_BATCH).await;
            (reader, next)
        });
        drop(std::mem::take(&mut batch));
        let (returned, next) = next.await?;
        reader = returned;
        batch = next?;
    }
    Ok(events)
}
