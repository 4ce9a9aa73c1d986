//! The read-model figures published as metrics gauges: payments by status and provider,
//! gateway success rates, WhatsApp totals. A read model not built yet answers
//! [`ProjectionError::NotBuilt`].

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ProjectionError;

/// How many payments have one status on one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentCount {
    /// The payment status, e.g. `initiated`.
    pub status: String,
    /// The gateway's provider, `unknown` when the gateway is not in the read model.
    pub provider: String,
    /// Payments.
    pub count: i64,
}

/// A gateway's success rate, for gateways not retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySuccessRate {
    /// The gateway.
    pub gateway_id: Uuid,
    /// Its provider.
    pub provider: String,
    /// Its success rate in basis points, once it has outcomes.
    pub success_rate_bps: Option<i32>,
}

/// WhatsApp messages sent and given up on, over all merchants and days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WhatsappTotals {
    /// Sent.
    pub sent: i64,
    /// Given up on.
    pub failed: i64,
}

/// Payments per status and provider.
pub async fn payment_counts(pool: &PgPool) -> Result<Vec<PaymentCount>, ProjectionError> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT t.status, coalesce(g.provider, 'unknown'), count(*)
           FROM read.transactions t
           LEFT JOIN read.gateways g ON g.gateway_id = t.gateway_id
          GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("transactions", e))?;
    Ok(rows
        .into_iter()
        .map(|(status, provider, count)| PaymentCount {
            status,
            provider,
            count,
        })
        .collect())
}

/// The success rate of every gateway not retired.
pub async fn gateway_success_rates(
    pool: &PgPool,
) -> Result<Vec<GatewaySuccessRate>, ProjectionError> {
    let rows: Vec<(Uuid, String, Option<i32>)> = sqlx::query_as(
        "SELECT gateway_id, provider, success_rate_bps FROM read.gateways WHERE NOT retired",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("gateways", e))?;
    Ok(rows
        .into_iter()
        .map(
            |(gateway_id, provider, success_rate_bps)| GatewaySuccessRate {
                gateway_id,
                provider,
                success_rate_bps,
            },
        )
        .collect())
}

/// WhatsApp messages sent and given up on in all.
pub async fn whatsapp_totals(pool: &PgPool) -> Result<WhatsappTotals, ProjectionError> {
    let (sent, failed): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(sent), 0)::bigint, coalesce(sum(failed), 0)::bigint
           FROM read.whatsapp_usage",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| ProjectionError::from_read("whatsapp", e))?;
    Ok(WhatsappTotals { sent, failed })
}
