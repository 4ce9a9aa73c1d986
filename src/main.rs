//! The `lightspeed` binary: configuration and subcommands; wiring only.

mod config;
mod log_state;
mod success_rates;
mod telemetry;

use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use lightspeed_eventstore::PgEventStore;
use lightspeed_eventstore::relay::{Relay, RelayConfig};
use lightspeed_eventstore::seal::{Sealer, SealerConfig};
use lightspeed_projections::ProjectorDeps;
use lightspeed_projections::rebuild::RebuildOptions;

use crate::config::{Infra, Server};

/// LightSpeed ledger: an event-sourced payment aggregator core.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    infra: Infra,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates the database if it does not exist and applies every pending migration.
    Migrate,
    /// Publishes the log to NATS JetStream (one leader, others stand by) and seals it.
    Relay,
    /// Serves the HTTP API (merchant API, checkout, PSP webhooks, sandbox PSP).
    Serve(Server),
    /// Runs one projector (`all` for every one) that keeps a read model up to date.
    Project {
        /// The projection, or `all`.
        name: String,
    },
    /// Rebuilds a projection's current layout beside the one serving, then switches readers.
    Rebuild(RebuildArgs),
    /// Prints the log's state: events, streams, head, relay position, seals.
    Status,
}

#[derive(Debug, Args)]
struct RebuildArgs {
    /// The projection to rebuild.
    name: String,
    /// Events per batch.
    #[arg(long, default_value_t = lightspeed_projections::rebuild::MAX_REBUILD_BATCH)]
    batch_size: usize,
    /// Discard a build of this layout in progress and start from the beginning.
    #[arg(long)]
    restart: bool,
    /// Build and catch up, but leave readers on the current version.
    #[arg(long)]
    no_switch: bool,
    /// After switching, drop the version readers used before (irreversible).
    #[arg(long)]
    drop_previous: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lightspeed_gateways::http::install_crypto_provider();
    telemetry::init();
    let cli = Cli::parse();
    let infra = &cli.infra;
    match cli.command {
        Command::Migrate => {
            infra.migrate().await?;
            tracing::info!(database = %config::redact(&infra.database_url), "migrated");
        }
        Command::Relay => {
            let store = infra.store().await?;
            let relay = Relay::new(
                store.clone(),
                infra.jetstream().await?,
                infra.log_stream(),
                RelayConfig::default(),
            );
            let sealer = Sealer::new(store.pool().clone(), SealerConfig::default());
            tokio::select! {
                () = relay.run() => {}
                () = sealer.run() => {}
                _ = tokio::signal::ctrl_c() => tracing::info!("relay stopping"),
            }
        }
        Command::Serve(server) => {
            let store = infra.store().await?;
            let listener = tokio::net::TcpListener::bind(&server.listen)
                .await
                .with_context(|| format!("cannot listen on {}", server.listen))?;
            tracing::info!(listen = %server.listen, public_url = %server.public_url, "serving the API");
            axum::serve(listener, server.app(store)?)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
        }
        Command::Project { name } => {
            let deps = projector_deps(infra).await?;
            let run = async {
                if name == "all" {
                    lightspeed_projections::run_all(deps).await
                } else {
                    lightspeed_projections::run_projector(&name, deps).await
                }
            };
            tokio::select! {
                result = run => result?,
                _ = tokio::signal::ctrl_c() => tracing::info!("projector stopping"),
            }
        }
        Command::Rebuild(args) => {
            let deps = ProjectorDeps {
                store: infra.store().await?,
                live: None,
            };
            let options = RebuildOptions {
                batch_size: args.batch_size,
                restart: args.restart,
                switch: !args.no_switch,
                drop_previous: args.drop_previous,
            };
            let progress = lightspeed_projections::progress::for_stderr();
            let report = lightspeed_projections::rebuild::rebuild(
                &args.name,
                &deps,
                &options,
                progress.as_ref(),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Status => {
            let pool = infra.database().await?;
            println!(
                "{}",
                log_state::LogState::read(&pool, &infra.log_stream().stream_name).await?
            );
        }
    }
    Ok(())
}

async fn projector_deps(infra: &Infra) -> anyhow::Result<ProjectorDeps> {
    Ok(ProjectorDeps {
        store: infra.store().await?,
        live: Some((infra.jetstream().await?, infra.log_stream())),
    })
}

/// The clock every process reads time from.
fn clock() -> Arc<dyn lightspeed_domain::Clock> {
    Arc::new(lightspeed_domain::SystemClock)
}

impl Infra {
    /// The event log on a migrated database.
    async fn store(&self) -> anyhow::Result<PgEventStore> {
        Ok(PgEventStore::new(self.database().await?, clock()))
    }
}
