//! `chaos`: a bounded, repeatable fault run of the whole product on one machine; see the
//! library's documentation. `scripts/chaos --short|--long|--replicated` builds and runs it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use lightspeed_chaos::{Plan, run_plan};

/// A fault run: load, kills and restarts, then checks.
#[derive(Debug, Parser)]
#[command(about)]
struct Cli {
    /// The long run: 25 payments a second for ten minutes, more faults.
    #[arg(long, conflicts_with_all = ["short", "replicated"])]
    long: bool,
    /// Two processes of every role, each killed once: 10 payments a second for 80 s.
    #[arg(long, conflicts_with = "short")]
    replicated: bool,
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
        } else if self.replicated {
            Plan::replicated()
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
    let passed = run_plan(&cli.lightspeed()?, &cli.plan(), cli.keep).await?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
