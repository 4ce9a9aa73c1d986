//! Prometheus metrics: the recorder ([`install`]), HTTP latency by route (a middleware every
//! route passes through), `GET /metrics`, and [`MetricsRefresher`], a library task the binary
//! spawns that publishes what the read models and the log say:
//!
//! | metric | labels | from |
//! |---|---|---|
//! | `http_request_duration_seconds` (histogram) | `method`, `route`, `status` | every request |
//! | `payments` (gauge) | `status`, `provider` | `read.transactions` |
//! | `gateway_success_rate_bps` (gauge) | `gateway_id`, `provider` | `read.gateways` |
//! | `queue_depth` (gauge) | `queue`, `state` | [`crate::queues::QueueSampler`] |
//! | `projection_lag_events`, `projection_lag_seconds` (gauges) | `projection` | `projections.versions` |
//! | `relay_lag_events`, `relay_lag_seconds` (gauges) | | `ledger.relay_state` and the log |
//! | `wa_sent_total`, `wa_failed_total` (counters) | | `read.whatsapp_usage` |
//!
//! Values read from the database are the same on every replica; aggregate them with `max`.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

use crate::error::ApiError;
use crate::health::relay_lag;
use crate::state::AppState;

/// How often [`MetricsRefresher`] reads the database.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(15);

/// Histogram buckets of request latency, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process-wide Prometheus recorder and answers its handle (give it to
/// [`crate::state::AppStateBuilder::metrics`] and to [`MetricsRefresher`]). Once per process.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("http_request_duration_seconds".to_owned()),
            LATENCY_BUCKETS,
        )?
        .install_recorder()
}

/// Records each request's latency by method, route template and status.
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    // The route template, not the path, so ids do not explode the label set.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// The metrics in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
        (status = 503, description = "Metrics are not enabled on this server", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            handle.render(),
        )
            .into_response(),
        None => ApiError::MetricsDisabled.into_response(),
    }
}

/// Publishes the database's numbers as metrics every [`REFRESH_INTERVAL`], and runs the
/// recorder's upkeep.
pub struct MetricsRefresher {
    pool: PgPool,
    relay_stream: Option<String>,
    handle: PrometheusHandle,
}

impl MetricsRefresher {
    /// A refresher reading `pool`, measuring the relay of `relay_stream` (if any).
    pub fn new(pool: PgPool, relay_stream: Option<String>, handle: PrometheusHandle) -> Self {
        Self {
            pool,
            relay_stream,
            handle,
        }
    }

    /// Refreshes forever; spawn it.
    pub async fn run(self) {
        let mut ticks = tokio::time::interval(REFRESH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = self.refresh_once().await {
                tracing::warn!(error = %e, "metrics refresh failed");
            }
            self.handle.run_upkeep();
        }
    }

    /// Reads every number once. A read model not built yet is skipped, not an error.
    pub async fn refresh_once(&self) -> Result<(), sqlx::Error> {
        // Gauges are floats by nature; every value here is a count, a rate in basis points or
        // a duration, never money.
        let payments: Vec<(String, String, i64)> = optional(
            sqlx::query_as(
                "SELECT t.status, coalesce(g.provider, 'unknown'), count(*)
                   FROM read.transactions t
                   LEFT JOIN read.gateways g ON g.gateway_id = t.gateway_id
                  GROUP BY 1, 2",
            )
            .fetch_all(&self.pool)
            .await,
        )?;
        for (status, provider, count) in payments {
            metrics::gauge!("payments", "status" => status, "provider" => provider)
                .set(count as f64);
        }
        let rates: Vec<(uuid::Uuid, String, Option<i32>)> = optional(
            sqlx::query_as(
                "SELECT gateway_id, provider, success_rate_bps FROM read.gateways WHERE NOT retired",
            )
            .fetch_all(&self.pool)
            .await,
        )?;
        for (gateway_id, provider, bps) in rates {
            if let Some(bps) = bps {
                metrics::gauge!(
                    "gateway_success_rate_bps",
                    "gateway_id" => gateway_id.to_string(),
                    "provider" => provider
                )
                .set(f64::from(bps));
            }
        }
        let whatsapp: Vec<(i64, i64)> = optional(
            sqlx::query_as(
                "SELECT coalesce(sum(sent), 0)::bigint, coalesce(sum(failed), 0)::bigint
                   FROM read.whatsapp_usage",
            )
            .fetch_all(&self.pool)
            .await,
        )?;
        if let Some((sent, failed)) = whatsapp.first() {
            metrics::counter!("wa_sent_total").absolute(u64::try_from(*sent).unwrap_or(0));
            metrics::counter!("wa_failed_total").absolute(u64::try_from(*failed).unwrap_or(0));
        }
        let versions = lightspeed_projections::status::all(&self.pool)
            .await
            .map_err(|e| match e {
                lightspeed_projections::ProjectionError::Database(e) => e,
                other => sqlx::Error::Protocol(other.to_string()),
            })?;
        for version in versions.iter().filter(|v| v.state == "active") {
            let name = version.projection.clone();
            metrics::gauge!("projection_lag_events", "projection" => name.clone())
                .set(version.lag_events as f64);
            metrics::gauge!("projection_lag_seconds", "projection" => name)
                .set(version.lag_ms as f64 / 1_000.0);
        }
        if let Some(stream) = &self.relay_stream {
            let lag = relay_lag(&self.pool, stream).await?;
            metrics::gauge!("relay_lag_events").set(lag.events as f64);
            metrics::gauge!("relay_lag_seconds").set(lag.oldest_ms as f64 / 1_000.0);
        }
        Ok(())
    }
}

/// Rows of a read model, or none when the model is not built yet (its view does not exist).
fn optional<T>(rows: Result<Vec<T>, sqlx::Error>) -> Result<Vec<T>, sqlx::Error> {
    match rows {
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => Ok(Vec::new()),
        other => other,
    }
}
