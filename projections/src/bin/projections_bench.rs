//! Rebuild benchmark: fills a database's log with generated events (through the real deciders)
//! up to a target, then rebuilds the wallets, commission and gateways projections from scratch
//! several times and reports the median rate of each.
//!
//! Usage: `DATABASE_URL=... projections-bench [events] [runs]` (defaults: 1 000 000 events, 3
//! runs). The database is created and migrated if needed; events already there are reused.

use std::sync::Arc;
use std::time::Instant;

use lightspeed_domain::SystemClock;
use lightspeed_eventstore::log_counts::{events_after, log_counts};
use lightspeed_eventstore::migrate::{ensure_database, migrate};
use lightspeed_eventstore::{LogPosition, PgEventStore};
use lightspeed_projections::progress::Silent;
use lightspeed_projections::scenario::{ScenarioConfig, append_packed, generate};
use lightspeed_projections::{ProjectorDeps, RebuildOptions, rebuild};
use sqlx::PgPool;

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let target: i64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let runs: usize = args.next().map_or(Ok(3), |a| a.parse())?;
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
    for name in ["wallets", "commission", "gateways"] {
        bench_rebuild(name, &deps, runs, log_events).await?;
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
    let counts = log_counts(pool).await?;
    println!("log: {} events {:?}", counts.events, counts.by_category);
    Ok(counts.events)
}

/// Rebuilds the projection `name` from scratch `runs` times; prints each run and the median.
async fn bench_rebuild(
    name: &str,
    deps: &ProjectorDeps,
    runs: usize,
    log_events: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rates = Vec::new();
    for run in 1..=runs {
        let started = Instant::now();
        let report = rebuild(
            name,
            deps,
            &RebuildOptions {
                restart: true,
                drop_previous: true,
                ..RebuildOptions::default()
            },
            &Silent,
        )
        .await?;
        let secs = started.elapsed().as_secs_f64();
        let log_rate = log_events as f64 / secs;
        let applied_rate = report.events_applied as f64 / secs;
        println!(
            "{name} run {run}: {secs:.2}s, {} events applied ({applied_rate:.0}/s), whole log {log_rate:.0} events/s",
            report.events_applied
        );
        rates.push((log_rate, applied_rate, secs));
    }
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (log_rate, applied_rate, secs) = rates[rates.len() / 2];
    println!(
        "{name} median: {secs:.2}s, {log_rate:.0} log events/s, {applied_rate:.0} applied events/s"
    );
    Ok(())
}
