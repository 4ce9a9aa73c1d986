//! Routing's success rates, refreshed from the gateway health read model.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lightspeed_domain::GatewayId;
use lightspeed_domain::routing::SuccessRate;
use lightspeed_projections::gateways::{GatewayFilter, health};
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
                match health(&pool, &GatewayFilter::default(), chrono::Utc::now()).await {
                    Ok(gateways) => {
                        let fresh = gateways
                            .iter()
                            .map(|g| {
                                let rate = SuccessRate {
                                    succeeded: u64::try_from(g.gateway.recent_succeeded)
                                        .unwrap_or(0),
                                    attempted: u64::try_from(g.gateway.recent_attempted)
                                        .unwrap_or(0),
                                };
                                (g.gateway.gateway_id.into(), rate)
                            })
                            .collect();
                        *refreshed
                            .0
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
                    }
                    // Before the projection exists routing ranks every gateway as new.
                    Err(e) => tracing::debug!(error = %e, "success rates not available yet"),
                }
                tokio::time::sleep(REFRESH).await;
            }
        });
        rates
    }
}
