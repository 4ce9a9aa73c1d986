//! The fault run of the whole product on one machine (the `chaos` program, and the replicated
//! run of the README's tests).
//!
//! It starts a private PostgreSQL cluster and a private NATS server, then every role as its own
//! `lightspeed` process (two relays, the API, the workers, the projectors; or two of each).
//! Payments arrive at a steady rate through the merchant API from several merchants and are
//! paid or failed on the sandbox PSP's checkout, while role processes are killed with SIGKILL
//! and NATS and PostgreSQL restarted as the plan says. Once everything has settled and stopped
//! it asserts, from the log, the read models, JetStream and the merchants' webhook endpoint,
//! that nothing was lost or doubled, and prints how long each fault took to recover from.

mod checks;
mod endpoint;
mod facts;
mod faults;
mod load;
pub mod plan;
mod report;
mod roles;
mod settle;
mod site;
mod verify;

use std::path::Path;
use std::sync::Arc;

use tokio::time::Instant;

use crate::load::Load;
pub use crate::plan::Plan;
use crate::site::Site;

/// Runs `plan` with the `lightspeed` binary at `lightspeed`, the roles' logs in a new directory
/// under the system's temporary one (removed when every check passed, unless `keep`); answers
/// whether every check passed.
pub async fn run_plan(lightspeed: &Path, plan: &Plan, keep: bool) -> anyhow::Result<bool> {
    let run_id = format!("C{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let dir = std::env::temp_dir().join(format!("lightspeed-chaos-{run_id}"));
    std::fs::create_dir_all(&dir)?;
    report::plan(plan, &dir);
    let mut site = Site::start(lightspeed, plan.merchants, plan.replicas, &dir).await?;
    let passed = run(&mut site, plan, run_id).await?;
    if passed && !keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("\nthe roles' logs are in {}", dir.display());
    }
    Ok(passed)
}

/// Load and faults, settling, checks and the report; answers whether every check passed.
async fn run(site: &mut Site, plan: &Plan, run_id: String) -> anyhow::Result<bool> {
    let started = Instant::now();
    let load = Arc::new(Load::new(
        site.roles.wiring().api_urls(),
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
