//! Questions about particular categories that the log's own indexes answer, for the ledger's
//! operations that span streams (payout runs and updates, reconciliation, key rotation).
//!
//! The one module of this crate that names categories and event types: each query is tuned to
//! the log's indexes, so it lives beside the table rather than in the crate that asks. Each
//! reads the table as committed now, not with the gap-safe reader, which stays below the oldest
//! transaction running anywhere on the cluster and could miss what was appended a moment ago.

use chrono::{DateTime, Utc};
use lightspeed_domain::{Decider, Merchant, Payment, PayoutId, Wallet};
use sqlx::PgPool;

use crate::{ReadError, StreamId};

/// One event's type, schema version and payload, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPayload {
    /// The event type.
    pub event_type: String,
    /// The payload's schema version, as stored (a `smallint`).
    pub schema_version: i16,
    /// The payload.
    pub payload: serde_json::Value,
}

/// The streams of payments initiated in `[initiated_from, initiated_before)` whose stream holds
/// no success, failure or refund, oldest first, at most `limit`. The `(stream_id,
/// stream_version)` index answers the "no outcome" test per payment.
pub async fn payments_awaiting_outcome(
    pool: &PgPool,
    initiated_from: DateTime<Utc>,
    initiated_before: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<StreamId>, ReadError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT i.stream_id FROM ledger.events i
          WHERE i.category = $1 AND i.event_type = 'PaymentInitiated'
            AND i.recorded_at >= $2 AND i.recorded_at < $3
            AND NOT EXISTS (
                SELECT 1 FROM ledger.events o
                 WHERE o.stream_id = i.stream_id
                   AND o.event_type IN ('PaymentSucceeded', 'PaymentFailed', 'PaymentRefunded'))
          ORDER BY i.recorded_at, i.stream_id
          LIMIT $4",
    )
    .bind(<Payment as Decider>::CATEGORY)
    .bind(initiated_from)
    .bind(initiated_before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    parse_streams(streams)
}

/// The wallet stream whose `PayoutRequested` named `payout_id`, if any.
pub async fn wallet_requesting_payout(
    pool: &PgPool,
    payout_id: PayoutId,
) -> Result<Option<StreamId>, ReadError> {
    let stream_id: Option<String> = sqlx::query_scalar(
        "SELECT stream_id FROM ledger.events
          WHERE category = $1 AND event_type = 'PayoutRequested'
            AND payload->>'payout_id' = $2
          LIMIT 1",
    )
    .bind(<Wallet as Decider>::CATEGORY)
    .bind(payout_id.to_string())
    .fetch_optional(pool)
    .await?;
    Ok(stream_id.map(StreamId::parse).transpose()?)
}

/// The stream of every merchant onboarded, in the order they were onboarded.
pub async fn merchants_onboarded(pool: &PgPool) -> Result<Vec<StreamId>, ReadError> {
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT stream_id FROM ledger.events
          WHERE category = $1 AND event_type = 'MerchantOnboarded'
          ORDER BY position",
    )
    .bind(<Merchant as Decider>::CATEGORY)
    .fetch_all(pool)
    .await?;
    parse_streams(streams)
}

/// Every event of `category` whose type is one of `event_types`, in log position order.
pub async fn events_of_types(
    pool: &PgPool,
    category: &str,
    event_types: &[&str],
) -> Result<Vec<StoredPayload>, ReadError> {
    let rows: Vec<(String, i16, serde_json::Value)> = sqlx::query_as(
        "SELECT event_type, schema_version, payload FROM ledger.events
          WHERE category = $1 AND event_type = ANY($2)
          ORDER BY position",
    )
    .bind(category)
    .bind(event_types)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(event_type, schema_version, payload)| StoredPayload {
            event_type,
            schema_version,
            payload,
        })
        .collect())
}

fn parse_streams(streams: Vec<String>) -> Result<Vec<StreamId>, ReadError> {
    Ok(streams
        .into_iter()
        .map(StreamId::parse)
        .collect::<Result<_, _>>()?)
}
