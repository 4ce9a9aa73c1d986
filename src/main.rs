//! The `lightspeed` binary: configuration and subcommands; wiring only.

mod admin_cli;
mod alert_settings;
mod config;
mod console;
mod demo;
mod log_state;
mod roles;
mod success_rates;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use lightspeed_projections::ProjectorDeps;
use lightspeed_projections::rebuild::RebuildOptions;
use lightspeed_workers::QueueName;

use crate::config::{AdminAuth, Infra, Server, Telemetry};
use crate::roles::Roles;

/// The product's allocator (see the workspace manifest).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// LightSpeed ledger: an event-sourced payment aggregator core.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    infra: Infra,
    #[command(flatten)]
    telemetry: Telemetry,
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
    /// Runs a worker queue (`transaction-processing`, `webhook-processing`,
    /// `merchant-webhooks`, `settlement-processing`, `payouts`, `whatsapp-notifications`,
    /// `refund-processing`), or
    /// `all` with the schedules (daily payouts, reconciliation, low-balance watcher).
    Work {
        /// The queue, or `all`.
        queue: String,
    },
    /// Runs one projector (`all` for every one) that keeps a read model up to date.
    Project {
        /// The projection, or `all`.
        name: String,
    },
    /// Rebuilds a projection's current layout beside the one serving, then switches readers.
    Rebuild(RebuildArgs),
    /// Runs every role in one process: relay, API, workers and projectors.
    Run(Server),
    /// Migrates, runs everything, seeds a demo merchant with three sandbox gateways, drives one
    /// payment to success, prints it with a signed `curl` for the next one, and keeps serving.
    Demo(Server),
    /// Admin tooling.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Auditor tooling: export the log, verify it, replay commission from it.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Prints the log's state: events, streams, head, relay position, seals.
    Status,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Mints an admin bearer token (HS256 with `ADMIN_JWT_SECRET`) and prints it; refuses an
    /// email that is neither on `ADMIN_EMAILS` nor one of the people (read from the database).
    Token {
        /// The person's email.
        #[arg(long)]
        email: String,
        /// The token's role: admin, ops, finance or auditor. Requests are limited to what both
        /// it and the person's role at the time allow.
        #[arg(long, default_value = "admin")]
        role: String,
        /// How long it is valid, e.g. `8h`, `30m`.
        #[arg(long, default_value = "8h")]
        ttl: String,
        #[command(flatten)]
        admin: AdminAuth,
    },
    /// Prints a one-time sign-in link to the console for a person (`ADMIN_EMAILS` or the
    /// people registry), e.g. for the first sign-in on a fresh install.
    LoginLink(console::LoginLinkArgs),
    /// Revokes one admin token (`--token`), or every token and console session of a person
    /// (`--email`), by appending the revocation to the log: refused from the next request on.
    RevokeToken {
        /// The token to revoke.
        #[arg(long, conflicts_with = "email", required_unless_present = "email")]
        token: Option<String>,
        /// The person whose every token and session issued until now is revoked.
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        admin: AdminAuth,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Re-seals every merchant salt, webhook secret and gateway credential under the first key
    /// of `ENCRYPTION_KEY` by appending events (old events keep their old blobs). Put the new
    /// key first in `ENCRYPTION_KEY` on every process before running it; running it again
    /// finishes what a failure left.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Writes the log (events, row hashes, seals) to a self-contained file (zstd NDJSON).
    Export {
        /// The file to write.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Cut at this recording instant (RFC 3339).
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Checks every row hash, the seal chain, version continuity and order; names the first
    /// event changed, removed, inserted or reordered and exits non-zero.
    Verify(AuditSource),
    /// Replays commission per merchant from the events alone, as of any instant; with `--db`
    /// also compares it with the live wallet read model.
    Commission {
        #[command(flatten)]
        source: AuditSource,
        /// Figures as of this instant (RFC 3339; events recorded at or before it).
        #[arg(long)]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
        /// Only this merchant.
        #[arg(long)]
        merchant: Option<lightspeed_domain::MerchantId>,
        /// `table`, `csv` or `json`.
        #[arg(long, default_value = "table")]
        format: lightspeed_audit::OutputFormat,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct AuditSource {
    /// Read the live database (`DATABASE_URL`).
    #[arg(long)]
    db: bool,
    /// Read an export written by `lightspeed audit export`.
    file: Option<std::path::PathBuf>,
}

impl AuditSource {
    async fn resolve(&self, infra: &Infra) -> anyhow::Result<lightspeed_audit::Source> {
        Ok(match &self.file {
            Some(path) => lightspeed_audit::Source::File(path.clone()),
            None => lightspeed_audit::Source::Database(infra.database().await?),
        })
    }
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
    /// Rows per table kept in memory between writes (0: write and commit every batch).
    #[arg(long, default_value_t = lightspeed_projections::rebuild::KEPT_ROWS)]
    rows_kept: usize,
}

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

/// The Prometheus handle `/metrics` renders, when this process records metrics.
type Metrics = Option<metrics_exporter_prometheus::PrometheusHandle>;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    lightspeed_adapters::http::install_crypto_provider();
    let cli = Cli::parse();
    let _telemetry = lightspeed_api::telemetry::init(&cli.telemetry.config())?;
    let metrics = install_metrics();
    let infra = &cli.infra;
    match cli.command {
        Command::Migrate => migrate(infra).await?,
        Command::Relay => relay(infra, metrics).await?,
        Command::Serve(server) => serve(infra, &server, metrics).await?,
        Command::Work { queue } => work(infra, &queue, metrics).await?,
        Command::Project { name } => project(infra, &name, metrics).await?,
        Command::Rebuild(args) => rebuild(infra, &args, metrics).await?,
        Command::Run(server) => run(infra, &server, metrics).await?,
        Command::Demo(server) => demo::run(infra, &server, metrics).await?,
        Command::Audit(command) => return audit(infra, command).await,
        Command::Admin(command) => admin(infra, command).await?,
        Command::Keys(command) => keys(infra, command).await?,
        Command::Status => status(infra).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The Prometheus recorder; a process that cannot install it runs without metrics.
fn install_metrics() -> Metrics {
    match lightspeed_api::metrics::install() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics are not recorded in this process");
            None
        }
    }
}

/// `migrate`: creates the database if it does not exist and applies pending migrations.
async fn migrate(infra: &Infra) -> anyhow::Result<()> {
    infra.migrate().await?;
    tracing::info!(database = %config::redact(&infra.database_url), "migrated");
    Ok(())
}

/// `relay`: publishes the log to JetStream and seals it until Ctrl-C.
async fn relay(infra: &Infra, metrics: Metrics) -> anyhow::Result<()> {
    let roles = Roles::connect(infra, metrics).await?;
    tokio::select! {
        () = roles.relay() => {}
        () = ctrl_c() => tracing::info!("relay stopping"),
    }
    Ok(())
}

/// `serve`: the HTTP API until Ctrl-C.
async fn serve(infra: &Infra, server: &Server, metrics: Metrics) -> anyhow::Result<()> {
    server.api_config(infra)?;
    Roles::connect(infra, metrics)
        .await?
        .serve(server, ctrl_c())
        .await
}

/// `work`: one worker queue, or `all` of them with the schedules, until Ctrl-C.
async fn work(infra: &Infra, queue: &str, metrics: Metrics) -> anyhow::Result<()> {
    let roles = Roles::connect(infra, metrics).await?;
    let deps = roles.worker_deps()?;
    if queue == "all" {
        let (workers, ()) = tokio::join!(
            lightspeed_workers::run_all(deps, ctrl_c()),
            roles.schedules(ctrl_c())
        );
        workers?;
    } else {
        let queue: QueueName = queue.parse()?;
        lightspeed_workers::run(queue, deps, ctrl_c()).await?;
    }
    Ok(())
}

/// `project`: one projector, or `all` of them, until Ctrl-C.
async fn project(infra: &Infra, name: &str, metrics: Metrics) -> anyhow::Result<()> {
    let deps = Roles::connect(infra, metrics).await?.projector_deps();
    let run = async {
        if name == "all" {
            lightspeed_projections::run_all(deps).await
        } else {
            lightspeed_projections::run_projector(name, deps).await
        }
    };
    tokio::select! {
        result = run => result?,
        () = ctrl_c() => tracing::info!("projector stopping"),
    }
    Ok(())
}

/// `rebuild`: rebuilds a projection beside the version serving and prints the report.
async fn rebuild(infra: &Infra, args: &RebuildArgs, metrics: Metrics) -> anyhow::Result<()> {
    let store = Roles::connect(infra, metrics).await?.store;
    let deps = ProjectorDeps { store, live: None };
    let options = RebuildOptions {
        batch_size: args.batch_size,
        restart: args.restart,
        switch: !args.no_switch,
        drop_previous: args.drop_previous,
        rows_kept: args.rows_kept,
    };
    let progress = lightspeed_projections::progress::for_stderr();
    let report =
        lightspeed_projections::rebuild::rebuild(&args.name, &deps, &options, progress.as_ref())
            .await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `run`: every role in this process until Ctrl-C.
async fn run(infra: &Infra, server: &Server, metrics: Metrics) -> anyhow::Result<()> {
    server.api_config(infra)?;
    let roles = Roles::connect(infra, metrics).await?;
    run_all_roles(&roles, server, ctrl_c()).await
}

/// `admin`: mints an admin token for one of the people, or revokes tokens.
async fn admin(infra: &Infra, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Token {
            email,
            role,
            ttl,
            admin,
        } => println!(
            "{}",
            admin_cli::token(infra, &admin, &email, &role, &ttl).await?
        ),
        AdminCommand::RevokeToken {
            token,
            email,
            admin,
        } => println!("{}", admin_cli::revoke(infra, &admin, token, email).await?),
        AdminCommand::LoginLink(args) => console::login_link(infra, &args).await?,
    }
    Ok(())
}

/// `keys`: re-seals every secret under the first key and prints the report.
async fn keys(infra: &Infra, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate => {
            let roles = Roles::connect(infra, None).await?;
            let report = roles.rotate_keys().await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(())
}

/// `status`: prints the log's state.
async fn status(infra: &Infra) -> anyhow::Result<()> {
    let pool = infra.database().await?;
    println!(
        "{}",
        log_state::LogState::read(&pool, &infra.log_stream().stream_name).await?
    );
    Ok(())
}

/// Runs an audit subcommand; its exit code says clean, tampered, inconsistent or failed.
async fn audit(infra: &Infra, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let status = match command {
        AuditCommand::Export { out: file, until } => {
            let options = lightspeed_audit::ExportOptions {
                out: file,
                until,
                progress: true,
            };
            lightspeed_audit::run_export(&infra.database().await?, &options, &mut out, &mut err)
                .await
        }
        AuditCommand::Verify(source) => {
            let options = lightspeed_audit::VerifyOptions {
                source: source.resolve(infra).await?,
                progress: true,
            };
            lightspeed_audit::run_verify(&options, &mut out, &mut err).await
        }
        AuditCommand::Commission {
            source,
            as_of,
            merchant,
            format,
        } => {
            let options = lightspeed_audit::CommissionOptions {
                source: source.resolve(infra).await?,
                as_of,
                merchant,
                format,
                progress: true,
            };
            lightspeed_audit::run_commission(&options, &mut out, &mut err).await
        }
    };
    Ok(status.into())
}

/// Every role in this process until `shutdown`: relay and sealer, API, workers, projectors.
pub async fn run_all_roles(
    context: &Roles,
    server: &Server,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signal = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let deps = context.worker_deps()?;
    let relay = async {
        tokio::select! {
            () = context.relay() => {}
            () = signal(stopped.clone()) => {}
        }
        Ok::<_, anyhow::Error>(())
    };
    let api = context.serve(server, signal(stopped.clone()));
    let workers = async {
        let (workers, ()) = tokio::join!(
            lightspeed_workers::run_all(deps, signal(stopped.clone())),
            context.schedules(signal(stopped.clone()))
        );
        Ok::<_, anyhow::Error>(workers?)
    };
    let projectors = async {
        tokio::select! {
            result = lightspeed_projections::run_all(context.projector_deps()) => result?,
            () = signal(stopped.clone()) => {}
        }
        Ok::<_, anyhow::Error>(())
    };
    let stopper = async {
        shutdown.await;
        tracing::info!("stopping every role");
        let _ = stop.send(true);
        Ok::<_, anyhow::Error>(())
    };
    tokio::try_join!(relay, api, workers, projectors, stopper)?;
    Ok(())
}
