//! Injects the plan's faults while the load runs and measures each one's recovery: the time
//! from the fault to every role it hit seen at work again.
//!
//! What shows a role at work, read only once the fault has struck (after the kill, or once the
//! restarted server accepts connections) so work done before it never counts:
//! - relay: its mark moves (a batch published to JetStream, acknowledged and recorded);
//! - projectors: the `transactions` read model's checkpoint moves;
//! - workers: a merchant webhook arrives at the endpoint;
//! - API: a merchant request is answered successfully.

use std::time::Duration;

use lightspeed_eventstore::LogPosition;
use lightspeed_eventstore::relay::load_mark;
use lightspeed_eventstore::testing::PostgresStop;
use lightspeed_projections::versions;
use tokio::time::Instant;

use crate::load::LoadStats;
use crate::plan::{Fault, Plan, Target};
use crate::roles::{self, Kind};
use crate::site::Site;

/// Longest a role may take to be back at work after a fault before the run says it was not.
const RECOVERY_LIMIT: Duration = Duration::from_secs(120);
/// How often progress is read while waiting.
const POLL: Duration = Duration::from_millis(100);
/// Longest one read of progress may take (PostgreSQL or NATS may be away).
const READ_LIMIT: Duration = Duration::from_secs(5);

/// What the run measured of one fault.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The fault.
    pub fault: Fault,
    /// When it struck, from the start of the load.
    pub at: Duration,
    /// From the fault to the last role back at work; `None` if one never was.
    pub took: Option<Duration>,
    /// Each role's time, e.g. `relay 1.2 s, projectors 3.4 s`.
    pub detail: String,
}

/// A sign of one role at work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    Published,
    Projected,
    Delivered,
    Answered,
}

impl Sign {
    fn role(self) -> &'static str {
        match self {
            Sign::Published => "relay",
            Sign::Projected => "projectors",
            Sign::Delivered => "workers",
            Sign::Answered => "api",
        }
    }
}

/// Injects every fault of `plan` at its time; answers what each one measured. A fault whose
/// time comes after the load has ended (recoveries took longer than the plan left between
/// faults) is not injected: without load, no role would show it is back at work.
pub async fn inject_all(
    site: &mut Site,
    plan: &Plan,
    stats: &LoadStats,
    load_started: Instant,
) -> anyhow::Result<Vec<Recovery>> {
    let mut recoveries = Vec::new();
    for (index, fault) in plan.faults.iter().enumerate() {
        if load_started.elapsed() >= plan.load {
            recoveries.push(Recovery {
                fault: *fault,
                at: load_started.elapsed(),
                took: None,
                detail: "not injected: the load had ended".into(),
            });
            continue;
        }
        while Instant::now() < load_started + plan.fault_due(index) {
            site.roles.restart_exited()?;
            tokio::time::sleep(POLL).await;
        }
        let at = load_started.elapsed();
        let (struck, signs) = strike(site, plan, index).await?;
        let (took, detail) = recover(site, stats, struck, &signs).await?;
        let recovery = Recovery {
            fault: *fault,
            at,
            took,
            detail,
        };
        println!("{}", line(&recovery));
        recoveries.push(recovery);
    }
    Ok(recoveries)
}

/// How the report shows a recovery.
pub fn line(recovery: &Recovery) -> String {
    let took = recovery.took.map_or_else(
        || "NOT back at work".to_owned(),
        |took| format!("{:>5.1} s", took.as_secs_f64()),
    );
    format!(
        "  +{:>5.1} s  {:<32} {took}  ({})",
        recovery.at.as_secs_f64(),
        recovery.fault.name(),
        recovery.detail
    )
}

/// Applies the plan's `index`-th fault; answers when it struck and the signs of the roles it
/// hit.
async fn strike(
    site: &mut Site,
    plan: &Plan,
    index: usize,
) -> anyhow::Result<(Instant, Vec<Sign>)> {
    use Sign::*;
    let fault = plan.faults[index];
    Ok(match fault {
        Fault::Kill(target) => {
            let (kind, sign) = match target {
                Target::RelayLeader => (Kind::Relay, Published),
                Target::Api => (Kind::Api, Answered),
                Target::Workers => (Kind::Workers, Delivered),
                Target::Projectors => (Kind::Projectors, Projected),
            };
            let role = match target {
                Target::RelayLeader => leader(site).await,
                _ => in_turn(site, plan, index, kind),
            };
            (site.roles.kill_and_restart(&role).await?, vec![sign])
        }
        Fault::NatsRestart { kill } => {
            let struck = Instant::now();
            if !kill {
                site.nats.stop().await;
            }
            site.nats.restart().await;
            (struck, vec![Published, Projected, Delivered])
        }
        Fault::PostgresRestart => {
            let struck = Instant::now();
            site.postgres.stop(PostgresStop::Immediate).await;
            site.postgres.start_again().await;
            (struck, vec![Published, Projected, Delivered, Answered])
        }
    })
}

/// The process of `kind` the plan's `index`-th fault kills: each of the kind's processes in
/// turn, so with replicas every one of them is killed.
fn in_turn(site: &Site, plan: &Plan, index: usize, kind: Kind) -> String {
    let fault = plan.faults[index];
    let earlier = plan.faults[..index].iter().filter(|f| **f == fault).count();
    let names = site.roles.names(kind);
    names[earlier % names.len()].clone()
}

/// The relay holding the leader lock (the first relay if none does within ten seconds).
async fn leader(site: &Site) -> String {
    let relays = site.roles.names(Kind::Relay);
    let connections: Vec<String> = relays.iter().map(|r| roles::application_name(r)).collect();
    for _ in 0..100 {
        let holder: Option<String> = sqlx::query_scalar(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = ANY($1)",
        )
        .bind(&connections)
        .fetch_optional(site.pool())
        .await
        .ok()
        .flatten();
        if let Some(at) = connections
            .iter()
            .position(|c| holder.as_deref() == Some(c.as_str()))
        {
            return relays[at].clone();
        }
        tokio::time::sleep(POLL).await;
    }
    relays[0].clone()
}

/// Waits until every sign moved on from its first reading, starting again any role that exits
/// meanwhile as a supervisor would; answers the longest wait (from `struck`) and each role's.
async fn recover(
    site: &mut Site,
    stats: &LoadStats,
    struck: Instant,
    signs: &[Sign],
) -> anyhow::Result<(Option<Duration>, String)> {
    let mut baselines: Vec<Option<Reading>> = vec![None; signs.len()];
    let mut back: Vec<Option<Duration>> = vec![None; signs.len()];
    while back.iter().any(Option::is_none) && struck.elapsed() < RECOVERY_LIMIT {
        site.roles.restart_exited()?;
        for (i, sign) in signs.iter().enumerate() {
            if back[i].is_some() {
                continue;
            }
            let reading = read(site, stats, *sign).await;
            match (&baselines[i], reading) {
                (_, None) => {}
                (None, Some(first)) => baselines[i] = Some(first),
                (Some(base), Some(now)) if now.moved_from(base, struck) => {
                    back[i] = Some(struck.elapsed());
                }
                _ => {}
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let detail = signs
        .iter()
        .zip(&back)
        .map(|(sign, took)| match took {
            Some(took) => format!("{} {:.1} s", sign.role(), took.as_secs_f64()),
            None => format!("{} not back", sign.role()),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let took = back.iter().copied().collect::<Option<Vec<_>>>();
    Ok((took.and_then(|t| t.into_iter().max()), detail))
}

/// One reading of a sign.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reading {
    Sequence(u64),
    Checkpoint(LogPosition),
    Count(usize),
    AnsweredAt(Option<Instant>),
}

impl Reading {
    /// Whether this reading shows work done since `base` (an answer: since the fault).
    fn moved_from(&self, base: &Reading, struck: Instant) -> bool {
        match (self, base) {
            (Reading::AnsweredAt(at), _) => at.is_some_and(|at| at > struck),
            (Reading::Sequence(now), Reading::Sequence(then)) => now > then,
            (Reading::Checkpoint(now), Reading::Checkpoint(then)) => now > then,
            (Reading::Count(now), Reading::Count(then)) => now > then,
            _ => false,
        }
    }
}

/// Reads a sign; `None` while its source cannot be read.
async fn read(site: &Site, stats: &LoadStats, sign: Sign) -> Option<Reading> {
    match sign {
        Sign::Published => {
            let mark = load_mark(site.pool(), &site.log_stream.stream_name);
            let mark = tokio::time::timeout(READ_LIMIT, mark).await.ok()?.ok()?;
            Some(Reading::Sequence(mark.map_or(0, |m| m.jetstream_seq)))
        }
        Sign::Projected => {
            let active = versions::active(site.pool(), "transactions");
            let active = tokio::time::timeout(READ_LIMIT, active)
                .await
                .ok()?
                .ok()??;
            Some(Reading::Checkpoint(active.checkpoint))
        }
        Sign::Delivered => Some(Reading::Count(site.endpoint.count())),
        Sign::Answered => Some(Reading::AnsweredAt(stats.api_answered())),
    }
}
