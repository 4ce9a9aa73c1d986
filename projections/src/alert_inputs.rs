//! What the ops alert rules read from the read models: payments that failed, with their
//! merchant and gateway, and the WhatsApp messages whose latest attempt was recent.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ProjectionError;

/// A failed payment, with its merchant's name and its gateway when the read models know them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FailedPayment {
    /// The payment.
    pub payment_id: Uuid,
    /// Its merchant.
    pub merchant_id: Uuid,
    /// Its amount.
    pub amount_paise: i64,
    /// The PSP's failure code.
    pub failure_code: Option<String>,
    /// The PSP's failure description.
    pub failure_description: Option<String>,
    /// When it failed.
    pub failed_at: DateTime<Utc>,
    /// The merchant's company name.
    pub company_name: Option<String>,
    /// The gateway's provider.
    pub provider: Option<String>,
    /// The gateway's label.
    pub label: Option<String>,
}

/// Which failed payments: a window by (failure instant, payment id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedWindow {
    /// Only failures after this (instant, id).
    pub after: (DateTime<Utc>, Uuid),
    /// Only failures up to and including this (instant, id), when given.
    pub up_to: Option<(DateTime<Utc>, Uuid)>,
    /// Only payments initiated at or after this instant (bounds the scan to recent payments).
    pub initiated_since: DateTime<Utc>,
    /// Most payments answered.
    pub limit: i64,
}

/// The failed payments of `window`, by failure instant then id.
pub async fn failed_payments(
    pool: &PgPool,
    window: &FailedWindow,
) -> Result<Vec<FailedPayment>, ProjectionError> {
    sqlx::query_as(
        "SELECT t.payment_id, t.merchant_id, t.amount_paise, t.failure_code,
                t.failure_description, t.failed_at, m.company_name, g.provider, g.label
           FROM read.transactions t
           LEFT JOIN read.merchants m ON m.merchant_id = t.merchant_id
           LEFT JOIN read.gateways g ON g.gateway_id = t.gateway_id
          WHERE t.status = 'failed' AND t.initiated_at >= $5
            AND (t.failed_at, t.payment_id) > ($1, $2)
            AND ($3::timestamptz IS NULL OR (t.failed_at, t.payment_id) <= ($3, $4::uuid))
          ORDER BY t.failed_at, t.payment_id
          LIMIT $6",
    )
    .persistent(false)
    .bind(window.after.0)
    .bind(window.after.1)
    .bind(window.up_to.map(|(at, _)| at))
    .bind(window.up_to.map(|(_, id)| id))
    .bind(window.initiated_since)
    .bind(window.limit)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("transactions", e))
}

/// WhatsApp messages by the outcome of their latest attempt in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WhatsappOutcomes {
    /// Sent in the window.
    pub sent: i64,
    /// Whose latest attempt in the window failed (awaiting a retry, or given up on).
    pub failed: i64,
}

/// The outcomes of the WhatsApp messages whose latest attempt happened at or after `since`,
/// among those queued at or after `queued_since`.
pub async fn whatsapp_outcomes(
    pool: &PgPool,
    since: DateTime<Utc>,
    queued_since: DateTime<Utc>,
) -> Result<WhatsappOutcomes, ProjectionError> {
    let (sent, failed): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'sent' AND sent_at >= $1),
                count(*) FILTER (WHERE (status = 'failed' AND failed_at >= $1)
                                    OR (status = 'queued' AND last_error_code IS NOT NULL
                                        AND updated_at >= $1))
           FROM read.whatsapp_log
          WHERE queued_at >= $2 AND updated_at >= $1",
    )
    .bind(since)
    .bind(queued_since)
    .fetch_one(pool)
    .await
    .map_err(|e| ProjectionError::from_read("whatsapp_log", e))?;
    Ok(WhatsappOutcomes { sent, failed })
}

/// A gateway's use of its monthly limit, with its merchant's name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GatewayUsage {
    /// The gateway.
    pub gateway_id: Uuid,
    /// Its merchant.
    pub merchant_id: Uuid,
    /// Its provider.
    pub provider: String,
    /// Its label.
    pub label: String,
    /// The merchant's company name.
    pub company_name: Option<String>,
    /// Its monthly limit.
    pub monthly_limit_paise: i64,
    /// What it booked in `month`.
    pub month_volume_paise: i64,
}

/// The gateways (not retired) whose volume booked in the IST month `month` (`YYYY-MM`) is at
/// least `share_bps` basis points of their monthly limit, by gateway id.
pub async fn gateways_over_share(
    pool: &PgPool,
    month: &str,
    share_bps: u32,
) -> Result<Vec<GatewayUsage>, ProjectionError> {
    sqlx::query_as(
        "SELECT g.gateway_id, g.merchant_id, g.provider, g.label, m.company_name,
                g.monthly_limit_paise, g.month_volume_paise
           FROM read.gateways g
           LEFT JOIN read.merchants m ON m.merchant_id = g.merchant_id
          WHERE NOT g.retired AND g.monthly_limit_paise IS NOT NULL
            AND g.volume_month = $1
            AND g.month_volume_paise::numeric * 10000
                >= g.monthly_limit_paise::numeric * $2
          ORDER BY g.gateway_id",
    )
    .bind(month)
    .bind(i64::from(share_bps))
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("gateways", e))
}

/// A gateway resting after failures.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RestingGateway {
    /// The gateway.
    pub gateway_id: Uuid,
    /// Its merchant.
    pub merchant_id: Uuid,
    /// Its provider.
    pub provider: String,
    /// Its label.
    pub label: String,
    /// The merchant's company name.
    pub company_name: Option<String>,
    /// Until when it rests.
    pub until: DateTime<Utc>,
    /// Why, as recorded.
    pub reason: Option<String>,
}

/// The enabled gateways (not retired) marked temporarily failed past `now`, by gateway id.
pub async fn resting_gateways(
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<Vec<RestingGateway>, ProjectionError> {
    sqlx::query_as(
        "SELECT g.gateway_id, g.merchant_id, g.provider, g.label, m.company_name,
                g.temporarily_failed_until AS until, g.temporary_failure_reason AS reason
           FROM read.gateways g
           LEFT JOIN read.merchants m ON m.merchant_id = g.merchant_id
          WHERE g.enabled AND NOT g.retired AND g.temporarily_failed_until > $1
          ORDER BY g.gateway_id",
    )
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("gateways", e))
}

/// An active merchant none of whose gateways could take a payment now.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StrandedMerchant {
    /// The merchant.
    pub merchant_id: Uuid,
    /// Its company name.
    pub company_name: String,
    /// Gateways registered and not retired.
    pub gateways: i64,
}

/// The active merchants with at least one gateway that is not retired and none that could take
/// a payment at `now` in the IST month `month`: every one disabled, resting, or at its monthly
/// limit (the per-minute cap passes within a minute and is left out). Initiation answers them
/// `503 SERVICE_UNAVAILABLE`.
pub async fn merchants_without_gateway(
    pool: &PgPool,
    now: DateTime<Utc>,
    month: &str,
) -> Result<Vec<StrandedMerchant>, ProjectionError> {
    sqlx::query_as(
        "SELECT m.merchant_id, m.company_name, count(*) AS gateways
           FROM read.merchants m
           JOIN read.gateways g ON g.merchant_id = m.merchant_id AND NOT g.retired
          WHERE m.status = 'active'
          GROUP BY m.merchant_id, m.company_name
         HAVING NOT bool_or(
                    g.enabled
                AND (g.temporarily_failed_until IS NULL OR g.temporarily_failed_until <= $1)
                AND (g.monthly_limit_paise IS NULL OR g.volume_month IS DISTINCT FROM $2
                     OR g.month_volume_paise < g.monthly_limit_paise))
          ORDER BY m.merchant_id",
    )
    .bind(now)
    .bind(month)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("merchants", e))
}

/// A gateway's payment outcomes in a window.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GatewayOutcomes {
    /// The gateway.
    pub gateway_id: Uuid,
    /// Its merchant.
    pub merchant_id: Uuid,
    /// Its provider.
    pub provider: Option<String>,
    /// Its label.
    pub label: Option<String>,
    /// Payments that succeeded or failed in the window.
    pub decided: i64,
    /// Of them, succeeded.
    pub succeeded: i64,
}

/// Per gateway, the payments initiated at or after `initiated_since` that succeeded or failed
/// at or after `since`, by gateway id.
pub async fn gateway_outcomes(
    pool: &PgPool,
    since: DateTime<Utc>,
    initiated_since: DateTime<Utc>,
) -> Result<Vec<GatewayOutcomes>, ProjectionError> {
    sqlx::query_as(
        "SELECT t.gateway_id, t.merchant_id, g.provider, g.label,
                count(*) AS decided,
                count(*) FILTER (WHERE t.status <> 'failed') AS succeeded
           FROM read.transactions t
           LEFT JOIN read.gateways g ON g.gateway_id = t.gateway_id
          WHERE t.initiated_at >= $2
            AND (t.succeeded_at >= $1 OR (t.status = 'failed' AND t.failed_at >= $1))
          GROUP BY t.gateway_id, t.merchant_id, g.provider, g.label
          ORDER BY t.gateway_id",
    )
    .bind(since)
    .bind(initiated_since)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("transactions", e))
}

/// A payout that was reversed (failed), with its merchant's name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FailedPayout {
    /// The payout.
    pub payout_id: Uuid,
    /// Its merchant.
    pub merchant_id: Uuid,
    /// The merchant's company name.
    pub company_name: Option<String>,
    /// Its amount.
    pub amount_paise: i64,
    /// The provider's detail.
    pub detail: Option<String>,
    /// When it was reversed.
    pub reversed_at: DateTime<Utc>,
}

/// The payouts reversed at or after `since`, oldest first, at most `limit`.
pub async fn failed_payouts(
    pool: &PgPool,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<FailedPayout>, ProjectionError> {
    sqlx::query_as(
        "SELECT e.source_id AS payout_id, e.merchant_id, w.company_name, e.amount_paise,
                e.detail, e.occurred_at AS reversed_at
           FROM read.wallet_entries e
           LEFT JOIN read.wallet_balances w ON w.merchant_id = e.merchant_id
          WHERE e.entry_type = 'PAYOUT_REVERSED' AND e.occurred_at >= $1
          ORDER BY e.occurred_at, e.source_id
          LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("wallets", e))
}
