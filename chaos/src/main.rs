//! `chaos`: a bounded, repeatable fault run of the whole product on one machine.
//!
//! It starts a private PostgreSQL cluster and a private NATS server, then every role as its own
//! `lightspeed` process (two relays, the API, the workers, the projectors). Payments arrive at
//! a steady rate through the merchant API from several merchants and are paid or failed on the
//! sandbox PSP's checkout, while each role is killed with SIGKILL several times and NATS and
//! PostgreSQL are restarted. Once everything has settled and stopped it asserts, from the log,
//! the read models, JetStream and the merchants' webhook endpoint, that nothing was lost or
//! doubled, and prints how long each fault took to recover from. Exits non-zero if any check
//! fails. `scripts/chaos --short|--long` builds and runs it.

mod checks;
mod endpoint;
mod facts;
mod faults;
mod load;
mod plan;
mod report;
mod roles;
mod settle;
mod site;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use tokio::time::Instant;

use crate::load::Load;
use crate::plan::Plan;
use crate::site::Site;

/// A fault run: load, kills and restarts, then checks.
#[derive(Debug, Parser)]
#[command(about)]
struct Cli {
    /// The long run: 25 payments a second for ten minutes, more faults.
    #[arg(long, conflicts_with = "short")]
    long: bool,
    /// The short run (the default): 10 payments a second for 110 seconds.
    #[arg(long)]
    short: bool,
    /// Seconds of load, instead of the run's own.
    #[arg(long)]
    seconds: Option<u64>,
    /// Payments a second, instead of the run's own.
    #[arg(long)]
    rate: Option<u32>,
    /// The `lightspeed` binary (default: the one beside this program).
    #[arg(long)]
    lightspeed: Option<PathBuf>,
    /// Keep the run's directory (the roles' logs) even when every check passes.
    #[arg(long)]
    keep: bool,
}

impl Cli {
    fn plan(&self) -> Plan {
        let mut plan = if self.long {
            Plan::long()
        } else {
            Plan::short()
        };
        if let Some(seconds) = self.seconds {
            plan.load = std::time::Duration::from_secs(seconds);
        }
        if let Some(rate) = self.rate {
            plan.rate = rate;
        }
        plan
    }

    fn lightspeed(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.lightspeed {
            return Ok(path.clone());
        }
        let beside = std::env::current_exe()?
            .parent()
            .context("this program has no directory")?
            .join("lightspeed");
        anyhow::ensure!(
            beside.exists(),
            "no lightspeed binary at {}; build it or pass --lightspeed",
            beside.display()
        );
        Ok(beside)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    lightspeed_adapters::http::install_crypto_provider();
    let cli = Cli::parse();
    let plan = cli.plan();
    let run_id = format!("C{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let dir = std::env::temp_dir().join(format!("lightspeed-chaos-{run_id}"));
    std::fs::create_dir_all(&dir)?;
    report::plan(&plan, &dir);
    let mut site = Site::start(&cli.lightspeed()?, plan.merchants, &dir).await?;
    let passed = run(&mut site, &plan, run_id).await?;
    if passed && !cli.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("\nthe roles' logs are in {}", dir.display());
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Load and faults, settling, checks and the report; answers whether every check passed.
async fn run(site: &mut Site, plan: &Plan, run_id: String) -> anyhow::Result<bool> {
    let started = Instant::now();
    let load = Arc::new(Load::new(
        site.roles.wiring().api_url(),
        site.shops(),
        run_id,
    )?);
    let stats = Arc::clone(&load.stats);
    let deadline = started + plan.load + plan.settle;
    let payments = tokio::spawn(load.run(plan.payments(), plan.rate, deadline));
    println!("faults (time from the start of the load, recovery: fault → roles back at work):");
    let recoveries = faults::inject_all(site, plan, &stats, started).await?;
    let outcomes = payments.await?;
    let load_took = started.elapsed();
    println!("load done after {:.1} s; settling", load_took.as_secs_f64());
    let settled = settle::settle(site, &outcomes, plan.settle).await;
    let log = facts::read(site.ledger.store()).await?;
    let arrivals = site.endpoint.arrivals();
    let merchants: Vec<_> = site.merchants.iter().map(|m| m.id).collect();
    let mut checks = vec![
        checks::load_finished(&outcomes),
        checks::one_payment_per_order(&outcomes, &merchants, &log),
        checks::successes_carry_one_commission(&outcomes, &log),
        checks::failures_stay_failed(&outcomes, &log),
        checks::none_pending(&log),
        checks::Check::new(
            "every payment, wallet and delivery event decodes",
            log.undecodable.clone(),
        ),
    ];
    checks.extend(verify::audit(&site.roles, &site.dir).await);
    checks.push(verify::read_models(site).await);
    checks.push(verify::jetstream_copy(site, &log).await);
    checks.push(checks::webhooks_delivered(&log, &arrivals));
    checks.push(checks::queues_idle(&settled));
    checks.push(checks::faults_recovered(&recoveries));
    let figures = report::Figures {
        outcomes: &outcomes,
        log: &log,
        arrivals: &arrivals,
        recoveries: &recoveries,
        settled: &settled,
        unexpected_exits: &site.roles.unexpected_exits,
        total: started.elapsed(),
    };
    report::results(&figures, &checks);
    Ok(checks.iter().all(|c| c.problems.is_empty()))
}
