//! Runs one projector against `DATABASE_URL`, polling PostgreSQL (no NATS): a standalone runner
//! for local debugging and for the crash tests, which kill it with SIGKILL mid-batch.
//!
//! Usage: `projector-runner <projection> [batch size]`.

use std::sync::Arc;

use lightspeed_domain::SystemClock;
use lightspeed_eventstore::PgEventStore;
use lightspeed_projections::{ProjectorDeps, RunConfig, catalog, run_projection};

/// The product's allocator (see the workspace manifest).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .ok_or("usage: projector-runner <projection> [batch size]")?;
    let batch_size = match args.next() {
        Some(size) => size.parse()?,
        None => RunConfig::default().batch_size,
    };
    let projection = catalog::by_name(&name).ok_or_else(|| format!("unknown projection {name}"))?;
    let url = std::env::var("DATABASE_URL")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await?;
    let deps = ProjectorDeps {
        store: PgEventStore::new(pool, Arc::new(SystemClock)),
        live: None,
    };
    let config = RunConfig {
        batch_size,
        ..RunConfig::default()
    };
    run_projection(projection, deps, config).await?;
    Ok(())
}
