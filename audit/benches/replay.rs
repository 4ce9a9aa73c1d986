//! Audit benchmark: `audit verify` and `audit commission` over an export of a large log.
//!
//! `cargo bench -p lightspeed-audit --bench replay` (release build). Unless the export already
//! exists, it generates the log first: the projections' scenario generator drives the domain's
//! deciders into a fresh PostgreSQL database (appends packed up to the log's limits), the sealer
//! seals it, and `export_log` writes the file. Then it times `verify_path` and `replay_path`
//! (the library calls behind the two subcommands) `AUDIT_BENCH_RUNS` times each, alternating,
//! and prints the median, fastest and slowest runs.
//!
//! Each line also gives the CPU time of the median run (all threads), since on a shared
//! machine the wall time also measures the neighbours.
//!
//! Settings (environment): `AUDIT_BENCH_EVENTS` (default 1 000 000), `AUDIT_BENCH_RUNS`
//! (default 5), `AUDIT_BENCH_FILE` (default `target/audit-bench-<events>.ndjson.zst`),
//! `AUDIT_BENCH_ONLY` (`verify` or `commission`: time only that one).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use lightspeed_audit::{ReplayFilter, export_log, replay_path, verify_path};
use lightspeed_domain::SystemClock;
use lightspeed_eventstore::PgEventStore;
use lightspeed_eventstore::seal::{Sealer, SealerConfig};
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_projections::scenario::{Scenario, ScenarioConfig, append_packed};

/// The product's allocator, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn generate(path: &PathBuf, events: usize) {
    let db = TestDatabase::new().await;
    let store = PgEventStore::new(db.pool.clone(), Arc::new(SystemClock));
    let started = Instant::now();
    let (mut scenario, onboarding) = Scenario::new(ScenarioConfig {
        merchants: 50,
        gateways_per_merchant: 3,
        seed: 1,
    });
    let mut appended = append_packed(&store, onboarding).await.expect("append");
    while appended < events as u64 {
        let chunk = (events as u64 - appended).min(50_000) as usize;
        appended += append_packed(&store, scenario.more(chunk))
            .await
            .expect("append");
        eprint!("\rgenerated {appended} events");
    }
    eprintln!(" in {:.1?}", started.elapsed());
    let started = Instant::now();
    let sealer = Sealer::new(db.pool.clone(), SealerConfig::default());
    while sealer.seal_once().await.expect("seal").is_some() {}
    eprintln!("sealed in {:.1?}", started.elapsed());
    let started = Instant::now();
    let file = std::fs::File::create(path).expect("create the export");
    let (summary, _) = export_log(
        &db.pool,
        None,
        std::io::BufWriter::new(file),
        &ProgressBar::hidden(),
    )
    .await
    .expect("export");
    let elapsed = started.elapsed();
    eprintln!(
        "exported {} events, {} seals in {elapsed:.1?} ({:.0} events/s), {} bytes",
        summary.header.events,
        summary.header.seals,
        summary.header.events as f64 / elapsed.as_secs_f64(),
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    );
}

/// CPU time of this process so far (user and system, all threads; Linux), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// One timed run: wall time and CPU seconds.
fn timed<T>(run: impl FnOnce() -> T) -> (T, Duration, f64) {
    let cpu = cpu_seconds();
    let started = Instant::now();
    let out = run();
    (out, started.elapsed(), cpu_seconds() - cpu)
}

fn report(what: &str, events: u64, mut runs: Vec<(Duration, f64)>) {
    runs.sort_by_key(|run| run.0);
    let rate = |d: &Duration| events as f64 / d.as_secs_f64();
    let (median, cpu) = runs[runs.len() / 2];
    println!(
        "{what}: {events} events, median {median:.2?} = {:.0} events/s (fastest {:.0}, slowest {:.0}; {} runs); \
         median run used {cpu:.2} CPU s = {:.0} events per CPU second",
        rate(&median),
        rate(&runs[0].0),
        rate(&runs[runs.len() - 1].0),
        runs.len(),
        events as f64 / cpu.max(0.01)
    );
}

fn main() {
    let events = setting("AUDIT_BENCH_EVENTS", 1_000_000);
    let runs = setting("AUDIT_BENCH_RUNS", 5).max(1);
    let path = std::env::var("AUDIT_BENCH_FILE").map_or_else(
        |_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join(format!("audit-bench-{events}.ndjson.zst"))
        },
        PathBuf::from,
    );
    if !path.exists() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(generate(&path, events));
    }
    println!(
        "export {} ({} bytes)",
        path.display(),
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
    );
    let mut verify_runs = Vec::new();
    let mut replay_runs = Vec::new();
    let only = std::env::var("AUDIT_BENCH_ONLY").unwrap_or_default();
    let mut counted = (0, 0);
    for _ in 0..runs {
        if only != "commission" {
            let (verified, wall, cpu) = timed(|| verify_path(&path, false).expect("verify"));
            verify_runs.push((wall, cpu));
            counted.0 = verified.events;
        }
        if only != "verify" {
            let (replayed, wall, cpu) =
                timed(|| replay_path(&path, ReplayFilter::default(), false).expect("replay"));
            replay_runs.push((wall, cpu));
            counted.1 = replayed.events_read;
        }
    }
    if !verify_runs.is_empty() {
        report("audit verify", counted.0, verify_runs);
    }
    if !replay_runs.is_empty() {
        report("audit commission", counted.1, replay_runs);
    }
}
