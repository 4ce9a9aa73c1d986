//! Routing's success rates, refreshed from the gateway health read model.

use std::collections::HashMap;
use std::num::TryFromIntError;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lightspeed_domain::GatewayId;
use lightspeed_domain::routing::SuccessRate;
use lightspeed_projections::gateways::{GatewayFilter, GatewayHealth, health};
use lightspeed_services::SuccessRates;
use sqlx::PgPool;

/// How often the rates are read again.
const REFRESH: Duration = Duration::from_secs(5);

/// The latest success rate of every gateway the read model knows.
#[derive(Debug, Default)]
pub struct ReadModelSuccessRates(RwLock<HashMap<GatewayId, SuccessRate>>);

impl SuccessRates for ReadModelSuccessRates {
    fn success_rate(&self, gateway: GatewayId) -> Option<SuccessRate> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&gateway)
            .copied()
    }
}

impl ReadModelSuccessRates {
    /// Rates kept fresh by a background task reading `pool`.
    pub fn spawn(pool: PgPool) -> Arc<Self> {
        let rates = Arc::new(Self::default());
        let refreshed = Arc::clone(&rates);
        tokio::spawn(async move {
            loop {
                refreshed.refresh(&pool).await;
                tokio::time::sleep(REFRESH).await;
            }
        });
        rates
    }

    /// Reads the rates again; keeps those it had when the read model cannot answer.
    async fn refresh(&self, pool: &PgPool) {
        let gateways = match health(pool, &GatewayFilter::default(), chrono::Utc::now()).await {
            Ok(gateways) => gateways,
            // Before the projection exists routing ranks every gateway as new.
            Err(e) => {
                tracing::debug!(error = %e, "success rates not available yet");
                return;
            }
        };
        match rates_of(&gateways) {
            Ok(fresh) => {
                *self
                    .0
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
            }
            Err(e) => tracing::error!(
                error = %e,
                "the gateway health read model holds a negative count; \
                 routing keeps the success rates it had"
            ),
        }
    }
}

/// Each gateway's success rate from its recent outcomes, which the read model counts from zero.
fn rates_of(
    gateways: &[GatewayHealth],
) -> Result<HashMap<GatewayId, SuccessRate>, TryFromIntError> {
    gateways
        .iter()
        .map(|g| {
            let rate = SuccessRate {
                succeeded: u64::try_from(g.gateway.recent_succeeded)?,
                attempted: u64::try_from(g.gateway.recent_attempted)?,
            };
            Ok((g.gateway.gateway_id.into(), rate))
        })
        .collect()
}
