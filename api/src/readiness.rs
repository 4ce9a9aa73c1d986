//! What `GET /health/ready` checks: PostgreSQL answers, the relay and the projections are within
//! their lag bounds, no projector has gone deaf to a log that moves on, and every dependency the
//! binary plugged in, such as NATS, answers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lightspeed_eventstore::relay_lag::relay_lag;
use lightspeed_eventstore::subscription::HEARTBEAT;
use lightspeed_projections::status::ProjectionStatus;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

/// Longest any one readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What readiness requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessConfig {
    /// The JetStream stream the relay publishes the log to (its mark is in
    /// `ledger.relay_state`); `None` to leave the relay out.
    pub relay_stream: Option<String>,
    /// Oldest unpublished event allowed (default 30 s).
    pub max_relay_lag: Duration,
    /// Oldest unapplied event allowed per active projection, and the oldest lag measurement
    /// trusted (a projector that stopped measuring is not running) (default 30 s).
    pub max_projection_lag: Duration,
    /// The projectors' heartbeat: an active projection whose log has held an event unapplied
    /// for longer, while its checkpoint did not move for as long, has a projector that receives
    /// nothing (default [`HEARTBEAT`], the subscriptions' own).
    pub projector_heartbeat: Duration,
}

impl Default for ReadinessConfig {
    fn default() -> Self {
        Self {
            relay_stream: Some("LEDGER".to_owned()),
            max_relay_lag: Duration::from_secs(30),
            max_projection_lag: Duration::from_secs(30),
            projector_heartbeat: HEARTBEAT,
        }
    }
}

/// A dependency readiness checks besides PostgreSQL (the binary plugs in [`NatsConnection`]).
pub trait ReadinessCheck: Send + Sync {
    /// Its name in the answer, e.g. `nats`.
    fn name(&self) -> &'static str;
    /// `Err` with a short reason when it cannot be used now.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// NATS is ready while the process's connection to it is up.
pub struct NatsConnection(pub async_nats::Client);

impl ReadinessCheck for NatsConnection {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let state = self.0.connection_state();
        Box::pin(async move {
            match state {
                async_nats::connection::State::Connected => Ok(()),
                other => Err(format!("connection {other:?}")),
            }
        })
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    /// `postgres`, `relay`, `projections`, or a plugged-in dependency.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was measured, or why it failed.
    pub detail: Option<String>,
}

/// The readiness answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    /// Every check.
    pub checks: Vec<CheckResult>,
}

/// Runs every readiness check: PostgreSQL in `pool`, what `config` requires, and
/// `dependencies`.
pub async fn readiness(
    pool: &PgPool,
    config: &ReadinessConfig,
    dependencies: &[Arc<dyn ReadinessCheck>],
) -> Readiness {
    let mut checks = vec![
        timed("postgres", async {
            sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string())
        })
        .await,
    ];
    if let Some(stream) = &config.relay_stream {
        checks.push(
            timed("relay", async {
                let lag = relay_lag(pool, stream).await.map_err(|e| e.to_string())?;
                let detail = format!("{} events, oldest waiting {} ms", lag.events, lag.oldest_ms);
                if lag.oldest_ms > millis(config.max_relay_lag) {
                    Err(format!("behind: {detail}"))
                } else {
                    Ok(Some(detail))
                }
            })
            .await,
        );
    }
    checks.push(timed("projections", projections_ready(pool, config)).await);
    for dependency in dependencies {
        checks.push(
            timed(dependency.name(), async {
                dependency.check().await.map(|()| None)
            })
            .await,
        );
    }
    let ready = checks.iter().all(|check| check.ok);
    Readiness {
        status: if ready { "ready" } else { "not_ready" }.into(),
        checks,
    }
}

async fn timed(
    name: &str,
    check: impl std::future::Future<Output = Result<Option<String>, String>>,
) -> CheckResult {
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())));
    match outcome {
        Ok(detail) => CheckResult {
            name: name.to_owned(),
            ok: true,
            detail,
        },
        Err(why) => CheckResult {
            name: name.to_owned(),
            ok: false,
            detail: Some(why),
        },
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

async fn projections_ready(
    pool: &PgPool,
    config: &ReadinessConfig,
) -> Result<Option<String>, String> {
    let versions = lightspeed_projections::status::all(pool)
        .await
        .map_err(|e| e.to_string())?;
    let active: Vec<_> = versions.iter().filter(|v| v.state == "active").collect();
    if active.is_empty() {
        return Err("no read model is built yet".into());
    }
    let bound = config.max_projection_lag;
    let heartbeat = config.projector_heartbeat;
    let stale_before = before(Utc::now(), bound);
    let lagging = described(&active, |v| {
        v.lag_ms > millis(bound) || v.lag_measured_at.is_none_or(|at| at < stale_before)
    });
    let deaf = described(&active, |v| receives_nothing(v, heartbeat));
    let mut problems = Vec::new();
    if !lagging.is_empty() {
        problems.push(format!("behind or not running: {lagging}"));
    }
    if !deaf.is_empty() {
        problems.push(format!(
            "received nothing for over {} ms while the log moved on: {deaf}",
            millis(heartbeat)
        ));
    }
    if problems.is_empty() {
        Ok(Some(format!("{} active, all within bounds", active.len())))
    } else {
        Err(problems.join("; "))
    }
}

/// The versions that `failing` picks, each with its lag, comma-separated.
fn described(
    versions: &[&ProjectionStatus],
    failing: impl Fn(&ProjectionStatus) -> bool,
) -> String {
    versions
        .iter()
        .filter(|v| failing(v))
        .map(|v| {
            format!(
                "{} ({} events, {} ms)",
                v.projection, v.lag_events, v.lag_ms
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when, at its last lag measurement, the log had held an event for this version longer
/// than `heartbeat` and the checkpoint had not moved for as long: its projector is running (it
/// measures) but receives nothing. A projector catching up moves its checkpoint every batch.
fn receives_nothing(version: &ProjectionStatus, heartbeat: Duration) -> bool {
    let Some(measured_at) = version.lag_measured_at else {
        return false;
    };
    let still_since = before(measured_at, heartbeat);
    version.lag_events > 0
        && version.lag_ms > millis(heartbeat)
        && version.checkpoint_at.is_none_or(|at| at < still_since)
}

/// `duration` before `at`; the earliest instant for a duration longer than time.
fn before(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| at.checked_sub_signed(delta))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
