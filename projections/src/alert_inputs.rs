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
