//! The audit log of admin actions (`read.audit_log`): every event whose metadata actor is
//! `admin:<email>`, with who, what, on which stream, when, and before/after.
//!
//! Before/after come from the event's own fields where it has them (a fee change's `from` and
//! `to`, a toggle's previous and new state); otherwise `after` is the payload and `before` is
//! empty. Sealed secrets (any `{key_id, sealed}` object, e.g. rotated keys, webhook secrets,
//! gateway credentials) are replaced by `"[sealed]"` before anything is stored.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lightspeed_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::pagination::{CursorPage, checked_limit};
use crate::projection::{Projection, RowCache, insert_rows, position_i64, undecodable};

/// The prefix of an admin actor in event metadata.
pub const ADMIN_ACTOR_PREFIX: &str = "admin:";

/// The audit log projection (`audit_log`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditLog;

/// One admin action, as `read.audit_log` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The event recording the action.
    pub event_id: Uuid,
    /// Its global log position (the log's order and cursor).
    pub log_position: i64,
    /// The admin's email.
    pub actor: String,
    /// What was done: the event type, e.g. `MerchantFeeChanged`.
    pub action: String,
    /// The kind of thing acted on: the stream category, e.g. `merchant`.
    pub entity_type: String,
    /// Its id: the stream id's part after the category.
    pub entity_id: String,
    /// The state before, where the event says it.
    pub before: Option<Value>,
    /// The state after (or the payload), secrets sealed out.
    pub after: Value,
    /// The request id, if the action came over HTTP.
    pub request_id: Option<String>,
    /// The correlation id.
    pub correlation_id: Option<Uuid>,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

const DDL: &str = "
CREATE TABLE {s}.audit_log (
    event_id        uuid PRIMARY KEY,
    log_position    bigint NOT NULL UNIQUE,
    actor           text NOT NULL,
    action          text NOT NULL,
    entity_type     text NOT NULL,
    entity_id       text NOT NULL,
    before          jsonb,
    after           jsonb NOT NULL,
    request_id      text,
    correlation_id  uuid,
    at              timestamptz NOT NULL
);
CREATE INDEX ON {s}.audit_log (actor, log_position DESC);
CREATE INDEX ON {s}.audit_log (entity_type, entity_id, log_position DESC);
CREATE INDEX ON {s}.audit_log (at);
";

impl Projection for AuditLog {
    fn name(&self) -> &'static str {
        "audit_log"
    }

    fn layout(&self) -> i32 {
        1
    }

    fn categories(&self) -> Option<&'static [&'static str]> {
        None
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_log"]
    }

    fn create_tables(&self, schema: &str) -> String {
        DDL.replace("{s}", schema)
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        schema: &'a str,
        events: &'a [RecordedEvent],
        _rows: &'a mut RowCache,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let entries: Vec<AuditEntry> = events
                .iter()
                .filter_map(|event| entry(event).transpose())
                .collect::<Result<_, _>>()?;
            insert_rows(conn, schema, "audit_log", &entries).await
        })
    }
}

/// The audit entry of an event, if an admin caused it.
fn entry(event: &RecordedEvent) -> Result<Option<AuditEntry>, ProjectionError> {
    let Some(actor) =
        (event.metadata.actor.as_deref()).and_then(|actor| actor.strip_prefix(ADMIN_ACTOR_PREFIX))
    else {
        return Ok(None);
    };
    let payload = event
        .payload
        .to_value()
        .map_err(|e| undecodable(event, e))?;
    let (before, after) = before_after(&event.event_type, seal_secrets(payload));
    Ok(Some(AuditEntry {
        event_id: event.event_id,
        log_position: position_i64(event),
        actor: actor.to_owned(),
        action: event.event_type.clone(),
        entity_type: event.stream_id.category().to_owned(),
        entity_id: event.stream_id.id().to_owned(),
        before,
        after,
        request_id: event.metadata.request_id.clone(),
        correlation_id: event.metadata.correlation_id,
        at: event.recorded_at,
    }))
}

/// Before and after from the event's own fields where it states both.
fn before_after(event_type: &str, payload: Value) -> (Option<Value>, Value) {
    match event_type {
        "MerchantFeeChanged" => (
            Some(json!({ "fee_bps": payload.get("from") })),
            json!({ "fee_bps": payload.get("to") }),
        ),
        // A toggle is only recorded when it changes the state.
        "GatewayToggled" => match payload.get("enabled").and_then(Value::as_bool) {
            Some(enabled) => (
                Some(json!({ "enabled": !enabled })),
                json!({ "enabled": enabled }),
            ),
            None => (None, payload),
        },
        // Only an active merchant can be suspended, and only a suspended one reactivated.
        "MerchantSuspended" => (Some(json!({ "status": "active" })), payload),
        "MerchantReactivated" => (
            Some(json!({ "status": "suspended" })),
            json!({ "status": "active" }),
        ),
        _ => (None, payload),
    }
}

/// Replaces every sealed secret (`{"key_id": …, "sealed": …}`) by `"[sealed]"`.
fn seal_secrets(value: Value) -> Value {
    match value {
        Value::Object(map) if map.contains_key("sealed") && map.contains_key("key_id") => {
            Value::String("[sealed]".into())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, seal_secrets(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(seal_secrets).collect()),
        other => other,
    }
}

/// Which admin actions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Only this admin's (email).
    pub actor: Option<String>,
    /// Only this action (event type).
    pub action: Option<String>,
    /// Only on this kind of thing (stream category).
    pub entity_type: Option<String>,
    /// Only on this thing (stream id part after the category).
    pub entity_id: Option<String>,
    /// Recorded at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Rows per step (1 to 200).
    pub limit: u32,
}

/// Admin actions matching `filter`, newest first; `cursor` is a previous step's `next_cursor`.
pub async fn list(
    pool: &PgPool,
    filter: &AuditFilter,
    cursor: Option<&str>,
) -> Result<CursorPage<AuditEntry>, ProjectionError> {
    let limit = checked_limit(filter.limit)?;
    let before: Option<i64> = cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ProjectionError::InvalidQuery(format!("bad audit cursor {c:?}")))
        })
        .transpose()?;
    let rows: Vec<Json<AuditEntry>> = sqlx::query_scalar(
        "SELECT to_jsonb(a) FROM read.audit_log a
          WHERE ($1::text IS NULL OR actor = $1)
            AND ($2::text IS NULL OR action = $2)
            AND ($3::text IS NULL OR entity_type = $3)
            AND ($4::text IS NULL OR entity_id = $4)
            AND ($5::timestamptz IS NULL OR at >= $5)
            AND ($6::timestamptz IS NULL OR at < $6)
            AND ($7::bigint IS NULL OR log_position < $7)
          ORDER BY log_position DESC
          LIMIT $8",
    )
    .persistent(false)
    .bind(&filter.actor)
    .bind(&filter.action)
    .bind(&filter.entity_type)
    .bind(&filter.entity_id)
    .bind(filter.from)
    .bind(filter.to)
    .bind(before)
    .bind(limit + 1)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("audit_log", e))?;
    let rows = rows.into_iter().map(|Json(row)| row).collect();
    Ok(CursorPage::from_fetch(rows, limit, |entry: &AuditEntry| {
        entry.log_position.to_string()
    }))
}
