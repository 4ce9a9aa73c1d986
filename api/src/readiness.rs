//! `GET /health` (the process answers) and `GET /health/ready` (it can do its job: PostgreSQL
//! answers, the relay and the projections are within their lag bounds, and every dependency the
//! binary plugged in, such as NATS, answers). Not ready is a 503 with the failing checks.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::state::AppState;

/// Longest any one readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Events counted when measuring relay lag; a relay further behind shows this number.
pub const MAX_COUNTED_RELAY_LAG: i64 = 1_000_000;

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
}

impl Default for ReadinessConfig {
    fn default() -> Self {
        Self {
            relay_stream: Some("LEDGER".to_owned()),
            max_relay_lag: Duration::from_secs(30),
            max_projection_lag: Duration::from_secs(30),
        }
    }
}

/// A dependency readiness checks besides PostgreSQL (the binary plugs in NATS).
pub trait ReadinessCheck: Send + Sync {
    /// Its name in the answer, e.g. `nats`.
    fn name(&self) -> &'static str;
    /// `Err` with a short reason when it cannot be used now.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
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

/// Liveness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Alive {
    /// Always `alive`.
    pub status: String,
}

/// The process is up and answering.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Alive))
)]
pub async fn alive() -> Json<Alive> {
    Json(Alive {
        status: "alive".into(),
    })
}

/// PostgreSQL, NATS, relay lag and projection lag within bounds.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; the failing checks say why", body = Readiness),
    )
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let readiness = readiness(&state).await;
    let status = if readiness.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

/// Runs every readiness check.
pub async fn readiness(state: &AppState) -> Readiness {
    let config = &state.config.readiness;
    let pool = state.pool();
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
    checks.push(
        timed(
            "projections",
            projections_ready(pool, config.max_projection_lag),
        )
        .await,
    );
    for dependency in &state.readiness_checks {
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

async fn projections_ready(pool: &PgPool, bound: Duration) -> Result<Option<String>, String> {
    let versions = lightspeed_projections::status::all(pool)
        .await
        .map_err(|e| e.to_string())?;
    let active: Vec<_> = versions.iter().filter(|v| v.state == "active").collect();
    if active.is_empty() {
        return Err("no read model is built yet".into());
    }
    let now = chrono::Utc::now();
    let stale_before = now - chrono::TimeDelta::from_std(bound).unwrap_or_default();
    let lagging: Vec<String> = active
        .iter()
        .filter(|v| {
            v.lag_ms > millis(bound) || v.lag_measured_at.is_none_or(|at| at < stale_before)
        })
        .map(|v| {
            format!(
                "{} ({} events, {} ms)",
                v.projection, v.lag_events, v.lag_ms
            )
        })
        .collect();
    if lagging.is_empty() {
        Ok(Some(format!("{} active, all within bounds", active.len())))
    } else {
        Err(format!("behind or not running: {}", lagging.join(", ")))
    }
}

/// How far the relay is behind the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLag {
    /// Committed events not published yet (at most [`MAX_COUNTED_RELAY_LAG`]).
    pub events: i64,
    /// How long the oldest of them has waited, in milliseconds (0 when caught up).
    pub oldest_ms: i64,
}

/// Measures the relay's lag behind the log for JetStream stream `stream`.
pub async fn relay_lag(pool: &PgPool, stream: &str) -> Result<RelayLag, sqlx::Error> {
    let (events, oldest_ms): (i64, i64) = sqlx::query_as(
        "SELECT count(*),
                coalesce((extract(epoch FROM now() - min(p.recorded_at)) * 1000)::bigint, 0)
           FROM (SELECT e.recorded_at
                   FROM ledger.events e
                   LEFT JOIN ledger.relay_state r ON r.jetstream_stream = $1
                  WHERE (r.transaction_id IS NULL
                         OR (e.transaction_id, e.position) > (r.transaction_id, r.position))
                    AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                  ORDER BY e.transaction_id, e.position
                  LIMIT $2) p",
    )
    .bind(stream)
    .bind(MAX_COUNTED_RELAY_LAG)
    .fetch_one(pool)
    .await?;
    Ok(RelayLag {
        events,
        oldest_ms: oldest_ms.max(0),
    })
}
