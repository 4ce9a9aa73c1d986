//! The ops alerts recorded in the log (`ops_alert-<key>` streams), newest first, for
//! `GET /admin/alerts`.
//!
//! Read from the log's `ops_alert` category directly: it is small (one stream per condition, a
//! few events each) and no read model holds it yet.

use chrono::{DateTime, Utc};
use lightspeed_domain::Decider;
use lightspeed_domain::ops_alert::OpsAlert;
use sqlx::PgPool;

use crate::ReadError;

/// Which alert events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter<'a> {
    /// Only this kind (the key's first dot-separated part), e.g. `payment_failed`.
    pub kind: Option<&'a str>,
    /// Only events before this log position (a cursor).
    pub before: Option<i64>,
    /// Only alerts firing now: their stream's latest event is a raise.
    pub firing: bool,
    /// Most events answered.
    pub limit: i64,
}

/// One alert event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlertEvent {
    /// The event's log position (the order and cursor).
    pub log_position: i64,
    /// The condition, e.g. `payment_failed.<payment id>` or `whatsapp_failure_rate`.
    pub key: String,
    /// The key's first part, e.g. `payment_failed`.
    pub kind: String,
    /// `raised` or `resolved`.
    pub state: String,
    /// For people.
    pub summary: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// The alert events `filter` asks for, newest first.
pub async fn alert_events(
    pool: &PgPool,
    filter: &AlertFilter<'_>,
) -> Result<Vec<AlertEvent>, ReadError> {
    Ok(sqlx::query_as(
        "WITH events AS (
             SELECT e.position, e.stream_id, e.stream_version, e.event_type, e.payload, e.recorded_at,
                    substr(e.stream_id, length($1) + 2) AS key
               FROM ledger.events e
              WHERE e.category = $1
         ), latest AS (
             SELECT DISTINCT ON (stream_id) position FROM events
              ORDER BY stream_id, stream_version DESC
         )
         SELECT position AS log_position, key, split_part(key, '.', 1) AS kind,
                CASE event_type WHEN 'OpsAlertRaised' THEN 'raised' ELSE 'resolved' END AS state,
                coalesce(payload->>'summary', '') AS summary, recorded_at AS at
           FROM events
          WHERE ($2::text IS NULL OR split_part(key, '.', 1) = $2)
            AND ($3::bigint IS NULL OR position < $3)
            AND (NOT $4 OR (event_type = 'OpsAlertRaised' AND position IN (SELECT position FROM latest)))
          ORDER BY position DESC
          LIMIT $5",
    )
    .bind(<OpsAlert as Decider>::CATEGORY)
    .bind(filter.kind)
    .bind(filter.before)
    .bind(filter.firing)
    .bind(filter.limit)
    .fetch_all(pool)
    .await?)
}
