//! The `lightspeed` binary: configuration and subcommands; wiring only.

mod config;
mod log_state;
mod telemetry;

use clap::{Parser, Subcommand};
use lightspeed_eventstore::PgEventStore;
use lightspeed_eventstore::relay::{Relay, RelayConfig};
use lightspeed_eventstore::seal::{Sealer, SealerConfig};

use crate::config::Infra;

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
    /// Prints the log's state: events, streams, head, relay position, seals.
    Status,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    telemetry::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Migrate => {
            cli.infra.migrate().await?;
            tracing::info!(database = %config::redact(&cli.infra.database_url), "migrated");
        }
        Command::Relay => {
            let pool = cli.infra.database().await?;
            let store = PgEventStore::new(
                pool.clone(),
                std::sync::Arc::new(lightspeed_domain::SystemClock),
            );
            let relay = Relay::new(
                store,
                cli.infra.jetstream().await?,
                cli.infra.log_stream(),
                RelayConfig::default(),
            );
            let sealer = Sealer::new(pool, SealerConfig::default());
            tokio::select! {
                () = relay.run() => {}
                () = sealer.run() => {}
                _ = tokio::signal::ctrl_c() => tracing::info!("relay stopping"),
            }
        }
        Command::Status => {
            let pool = cli.infra.database().await?;
            println!(
                "{}",
                log_state::LogState::read(&pool, &cli.infra.log_stream().stream_name).await?
            );
        }
    }
    Ok(())
}
