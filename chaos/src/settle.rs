//! After the load: waits until the system has settled (every payment final, its webhooks
//! delivered, no queue with work, the relay and every projection caught up), notes the queues,
//! then stops the roles in order: the writers first, so the relay and the projectors finish
//! what they wrote.

use std::collections::HashSet;
use std::time::Duration;

use lightspeed_domain::PaymentId;
use lightspeed_domain::payment::PaymentStatus;
use lightspeed_eventstore::backlog::backlog_after;
use lightspeed_eventstore::relay_lag::relay_lag;
use lightspeed_projections::{catalog, versions};
use lightspeed_workers::QueueName;
use lightspeed_workers::control::WorkQueues;
use tokio::time::Instant;

use crate::load::Outcome;
use crate::roles::Kind;
use crate::site::Site;

/// How often the run looks again while settling.
const POLL: Duration = Duration::from_secs(1);
/// Longest the relay and projectors may take to catch up once the writers stopped.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);

/// What settling found.
#[derive(Debug, Default)]
pub struct Settled {
    /// How long it took.
    pub waited: Duration,
    /// What had still not settled when the run stopped waiting (empty when all had).
    pub unsettled: Vec<String>,
    /// Each queue's depth once settled: `(queue, waiting, active, failed)`, or why it could
    /// not be read.
    pub queues: Vec<Result<(String, u64, u64, u64), String>>,
}

/// Waits (at most `limit`) for the run to settle, then stops every role.
pub async fn settle(site: &mut Site, outcomes: &[Outcome], limit: Duration) -> Settled {
    let started = Instant::now();
    let mut open: HashSet<PaymentId> = outcomes.iter().filter_map(|o| o.payment_id).collect();
    let mut unsettled;
    loop {
        site.roles.restart_exited().ok();
        unsettled = missing(site, &mut open).await;
        if unsettled.is_empty() || started.elapsed() > limit {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let settled = Settled {
        waited: started.elapsed(),
        unsettled,
        queues: queue_depths(site).await,
    };
    stop_all(site, &[Kind::Api, Kind::Workers]).await;
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    while !behind(site).await.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    stop_all(site, &[Kind::Relay, Kind::Projectors]).await;
    settled
}

/// Stops every process of `kinds`, one after the other.
async fn stop_all(site: &mut Site, kinds: &[Kind]) {
    for kind in kinds {
        for role in site.roles.names(*kind) {
            site.roles.stop(&role).await;
        }
    }
}

/// What has not settled yet; forgets the payments found final.
async fn missing(site: &Site, open: &mut HashSet<PaymentId>) -> Vec<String> {
    let mut missing = Vec::new();
    let mut still_open = HashSet::new();
    for id in open.iter() {
        let status = site
            .ledger
            .payment(*id)
            .await
            .ok()
            .flatten()
            .map(|p| p.status());
        if !matches!(
            status,
            Some(PaymentStatus::Succeeded | PaymentStatus::Failed | PaymentStatus::Refunded)
        ) {
            still_open.insert(*id);
        }
    }
    *open = still_open;
    if !open.is_empty() {
        missing.push(format!("{} payments not final", open.len()));
    }
    for queue in queue_depths(site).await {
        match queue {
            Ok((name, waiting, active, _)) if waiting + active > 0 => {
                missing.push(format!("{name}: {waiting} waiting, {active} active"));
            }
            Ok(_) => {}
            Err(why) => missing.push(why),
        }
    }
    missing.extend(behind(site).await);
    missing
}

/// Every queue's depth.
async fn queue_depths(site: &Site) -> Vec<Result<(String, u64, u64, u64), String>> {
    let queues = WorkQueues::new(site.jetstream.clone(), site.log_stream.clone());
    let mut depths = Vec::new();
    for queue in QueueName::ALL {
        depths.push(match queues.depth(queue).await {
            Ok(d) => Ok((queue.as_str().to_owned(), d.waiting, d.active, d.failed)),
            Err(e) => Err(format!("{}: depth unreadable: {e}", queue.as_str())),
        });
    }
    depths
}

/// The relay and the projections that have not caught up with the log.
pub async fn behind(site: &Site) -> Vec<String> {
    let mut behind = Vec::new();
    match relay_lag(site.pool(), &site.log_stream.stream_name).await {
        Ok(lag) if lag.events > 0 => behind.push(format!("relay {} events behind", lag.events)),
        Ok(_) => {}
        Err(e) => behind.push(format!("relay lag unreadable: {e}")),
    }
    for projection in catalog::all() {
        let lag = match versions::active(site.pool(), projection.name()).await {
            Ok(Some(active)) => backlog_after(
                site.pool(),
                active.checkpoint,
                projection.categories(),
                1_000_000,
            )
            .await
            .map(|b| b.events)
            .map_err(|e| e.to_string()),
            Ok(None) => Err("not built".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        match lag {
            Ok(0) => {}
            Ok(events) => behind.push(format!("{} {events} events behind", projection.name())),
            Err(why) => behind.push(format!("{}: {why}", projection.name())),
        }
    }
    behind
}
