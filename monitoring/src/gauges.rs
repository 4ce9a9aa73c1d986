//! [`MetricsRefresher`], a task the binary spawns that publishes what the read models and the
//! log say as gauges (the API serves them at `GET /metrics`):
//!
//! | metric | labels | from |
//! |---|---|---|
//! | `payments` (gauge) | `status`, `provider` | the transactions and gateways read models |
//! | `gateway_success_rate_bps` (gauge) | `gateway_id`, `provider` | the gateways read model |
//! | `projection_lag_events`, `projection_lag_seconds` (gauges) | `projection` | each active projection version |
//! | `relay_lag_events`, `relay_lag_seconds` (gauges) | | the relay's mark and the log |
//! | `wa_sent_total`, `wa_failed_total` (counters) | | the WhatsApp usage read model |
//!
//! Values read from the database are the same on every replica; aggregate them with `max`.

use std::time::Duration;

use lightspeed_eventstore::ReadError;
use lightspeed_eventstore::relay_lag::relay_lag;
use lightspeed_projections::ProjectionError;
use lightspeed_projections::gauges::{gateway_success_rates, payment_counts, whatsapp_totals};
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

/// How often [`MetricsRefresher`] reads the database.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(15);

/// Why a refresh stopped.
#[derive(Debug, thiserror::Error)]
pub enum GaugeError {
    /// A read model could not be read.
    #[error("read model: {0}")]
    Read(#[from] ProjectionError),
    /// The log could not be read.
    #[error("log: {0}")]
    Log(#[from] ReadError),
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
    pub async fn refresh_once(&self) -> Result<(), GaugeError> {
        // Gauges are floats by nature; every value here is a count, a rate in basis points or
        // a duration, never money.
        for payments in built(payment_counts(&self.pool).await)? {
            metrics::gauge!(
                "payments",
                "status" => payments.status,
                "provider" => payments.provider
            )
            .set(payments.count as f64);
        }
        for gateway in built(gateway_success_rates(&self.pool).await)? {
            if let Some(bps) = gateway.success_rate_bps {
                metrics::gauge!(
                    "gateway_success_rate_bps",
                    "gateway_id" => gateway.gateway_id.to_string(),
                    "provider" => gateway.provider
                )
                .set(f64::from(bps));
            }
        }
        if let Some(whatsapp) = built(whatsapp_totals(&self.pool).await.map(Some))? {
            metrics::counter!("wa_sent_total").absolute(u64::try_from(whatsapp.sent).unwrap_or(0));
            metrics::counter!("wa_failed_total")
                .absolute(u64::try_from(whatsapp.failed).unwrap_or(0));
        }
        self.projection_lags().await?;
        if let Some(stream) = &self.relay_stream {
            let lag = relay_lag(&self.pool, stream).await?;
            metrics::gauge!("relay_lag_events").set(lag.events as f64);
            metrics::gauge!("relay_lag_seconds").set(lag.oldest_ms as f64 / 1_000.0);
        }
        Ok(())
    }

    async fn projection_lags(&self) -> Result<(), GaugeError> {
        let versions = lightspeed_projections::status::all(&self.pool).await?;
        for version in versions.iter().filter(|v| v.state == "active") {
            let name = version.projection.clone();
            metrics::gauge!("projection_lag_events", "projection" => name.clone())
                .set(version.lag_events as f64);
            metrics::gauge!("projection_lag_seconds", "projection" => name)
                .set(version.lag_ms as f64 / 1_000.0);
        }
        Ok(())
    }
}

/// What a read model answered, or nothing when it is not built yet (its view does not exist).
fn built<T: Default>(answer: Result<T, ProjectionError>) -> Result<T, ProjectionError> {
    match answer {
        Err(ProjectionError::NotBuilt(_)) => Ok(T::default()),
        other => other,
    }
}
