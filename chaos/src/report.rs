//! What the run prints: its plan, then its figures, recovery times and checks.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::checks::Check;
use crate::endpoint::Arrival;
use crate::facts::LogFacts;
use crate::faults::{self, Recovery};
use crate::load::{Outcome, Seen};
use crate::plan::Plan;
use crate::settle::Settled;

/// Problems printed per failed check; the rest are counted.
const SHOWN: usize = 5;

/// Prints what the run is about to do.
pub fn plan(plan: &Plan, dir: &Path) {
    println!(
        "chaos run: {} payments at {}/s for {} s over {} merchants, {} of each role, {} faults; \
         logs in {}",
        plan.payments(),
        plan.rate,
        plan.load.as_secs(),
        plan.merchants,
        plan.replicas,
        plan.faults.len(),
        dir.display()
    );
}

/// What the report shows besides the checks.
pub struct Figures<'a> {
    /// Every payment of the load.
    pub outcomes: &'a [Outcome],
    /// The log.
    pub log: &'a LogFacts,
    /// The webhooks that arrived.
    pub arrivals: &'a [Arrival],
    /// The faults.
    pub recoveries: &'a [Recovery],
    /// Settling.
    pub settled: &'a Settled,
    /// Roles that exited without being killed.
    pub unexpected_exits: &'a [String],
    /// From the start of the load to the end of the checks.
    pub total: Duration,
}

/// Prints the figures, the recoveries and every check.
pub fn results(figures: &Figures<'_>, checks: &[Check]) {
    println!("\n{}", load_figures(figures.outcomes));
    let log = figures.log;
    let count = |status: &str| {
        log.payments
            .values()
            .filter(|p| p.status() == status)
            .count()
    };
    println!(
        "log: {} events; {} payments: {} succeeded, {} failed, {} pending",
        log.events.len(),
        log.payments.len(),
        count("succeeded"),
        count("failed"),
        count("pending")
    );
    let distinct: HashSet<&str> = figures
        .arrivals
        .iter()
        .map(|a| a.webhook_id.as_str())
        .collect();
    println!(
        "webhooks: {} arrived, {} distinct webhook-ids, {} redelivered",
        figures.arrivals.len(),
        distinct.len(),
        figures.arrivals.len() - distinct.len()
    );
    println!(
        "settled in {:.1} s; whole run {:.1} s",
        figures.settled.waited.as_secs_f64(),
        figures.total.as_secs_f64()
    );
    for exit in figures.unexpected_exits {
        println!("note: {exit}");
    }
    println!("\nrecovery (fault → roles back at work):");
    for recovery in figures.recoveries {
        println!("{}", faults::line(recovery));
    }
    println!("{}", recovery_summary(figures.recoveries));
    println!("\nchecks:");
    for check in checks {
        print_check(check);
    }
}

fn load_figures(outcomes: &[Outcome]) -> String {
    let seen = |wanted: fn(&Seen) -> bool| outcomes.iter().filter(|o| wanted(&o.seen)).count();
    let mut took: Vec<Duration> = outcomes.iter().map(|o| o.took).collect();
    took.sort();
    let at = |share: usize| {
        took.get((took.len() * share / 100).min(took.len().saturating_sub(1)))
            .map_or(0.0, Duration::as_secs_f64)
    };
    format!(
        "load: {} payments: {} paid, {} failed, {} unfinished; initiation to the payer's answer \
         p50 {:.1} s, p99 {:.1} s, max {:.1} s",
        outcomes.len(),
        seen(|s| *s == Seen::Succeeded),
        seen(|s| *s == Seen::Failed),
        seen(|s| matches!(s, Seen::Unfinished(_))),
        at(50),
        at(99),
        took.last().map_or(0.0, Duration::as_secs_f64)
    )
}

/// Per kind of fault: how many, the shortest and the longest recovery.
fn recovery_summary(recoveries: &[Recovery]) -> String {
    let mut by_fault: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for recovery in recoveries {
        if let Some(took) = recovery.took {
            by_fault
                .entry(recovery.fault.name())
                .or_default()
                .push(took.as_secs_f64());
        }
    }
    by_fault
        .into_iter()
        .map(|(fault, mut times)| {
            times.sort_by(f64::total_cmp);
            format!(
                "  {fault:<32} {}×  {:.1} s to {:.1} s",
                times.len(),
                times[0],
                times[times.len() - 1]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn print_check(check: &Check) {
    if check.problems.is_empty() {
        println!("  PASS  {}", check.name);
        return;
    }
    println!("  FAIL  {} ({} problems)", check.name, check.problems.len());
    for problem in check.problems.iter().take(SHOWN) {
        println!("          {problem}");
    }
    if check.problems.len() > SHOWN {
        println!("          … and {} more", check.problems.len() - SHOWN);
    }
}
