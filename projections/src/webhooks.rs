//! Merchant webhook deliveries and their attempts.
//!
//! - `read.webhook_deliveries`: one row per delivery: merchant, payment, event type, body,
//!   endpoint (URL and id), status, attempts, next attempt, last status code and error.
//! - `read.webhook_delivery_attempts`: one row per attempt (status code or transport error,
//!   duration, response excerpt), keyed by the attempt event's log position, since attempt
//!   numbers start again after a requeue.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lightspeed_domain::merchant::first_endpoint_id;
use lightspeed_domain::webhook_delivery::WebhookDeliveryEvent;
use lightspeed_domain::{Decider, WebhookDelivery};
use lightspeed_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::pagination::{Page, PageRequest, into_page};
use crate::projection::{
    Projection, RowCache, RowChange, insert_rows, position_i64, row_changes_of,
};

/// The webhook deliveries projection (`webhook_deliveries`, `webhook_delivery_attempts`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookDeliveries;

/// One delivery, as `read.webhook_deliveries` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    /// The delivery.
    pub delivery_id: Uuid,
    /// The merchant.
    pub merchant_id: Uuid,
    /// The payment reported on; none for a test event.
    pub payment_id: Option<Uuid>,
    /// The event type sent, e.g. `payment.succeeded`.
    pub event_type: String,
    /// The JSON body sent.
    pub payload: serde_json::Value,
    /// The merchant's endpoint.
    pub endpoint_url: String,
    /// Which of the merchant's endpoints.
    pub endpoint_id: Uuid,
    /// `pending`, `delivered` or `given_up`.
    pub status: String,
    /// Attempts since it was (re)queued.
    pub attempts: i32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last status code the endpoint answered.
    pub last_status_code: Option<i32>,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// When it was first queued.
    pub queued_at: DateTime<Utc>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was given up.
    pub given_up_at: Option<DateTime<Utc>>,
    /// When the last event changing this row happened.
    pub updated_at: DateTime<Utc>,
}

/// One attempt, as `read.webhook_delivery_attempts` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRow {
    /// The delivery.
    pub delivery_id: Uuid,
    /// The merchant.
    pub merchant_id: Uuid,
    /// Which attempt since the delivery was (re)queued, from 1.
    pub attempt: i32,
    /// The status code, if the endpoint answered.
    pub status_code: Option<i32>,
    /// The transport error, if it did not.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The start of the response body.
    pub response_excerpt: Option<String>,
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
    /// The attempt event's global log position.
    pub log_position: i64,
}

// The body is `json`, kept as the text written: the read model only shows it, and parsing it
// into `jsonb` was a tenth to a quarter of the server's work in writing a delivery row.
const DDL: &str = "
CREATE TABLE {s}.webhook_deliveries (
    delivery_id       uuid PRIMARY KEY,
    merchant_id       uuid NOT NULL,
    payment_id        uuid,
    event_type        text NOT NULL,
    payload           json NOT NULL,
    endpoint_url      text NOT NULL,
    endpoint_id       uuid NOT NULL,
    status            text NOT NULL,
    attempts          integer NOT NULL,
    next_attempt_at   timestamptz,
    last_status_code  integer,
    last_error        text,
    queued_at         timestamptz NOT NULL,
    delivered_at      timestamptz,
    given_up_at       timestamptz,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX ON {s}.webhook_deliveries (merchant_id, queued_at DESC);
CREATE INDEX ON {s}.webhook_deliveries (payment_id);
CREATE INDEX ON {s}.webhook_deliveries (status, queued_at DESC);
CREATE INDEX ON {s}.webhook_deliveries (endpoint_id, queued_at DESC);
CREATE TABLE {s}.webhook_delivery_attempts (
    delivery_id       uuid NOT NULL,
    merchant_id       uuid NOT NULL,
    attempt           integer NOT NULL,
    status_code       integer,
    error             text,
    duration_ms       bigint NOT NULL,
    response_excerpt  text,
    attempted_at      timestamptz NOT NULL,
    log_position      bigint PRIMARY KEY
);
CREATE INDEX ON {s}.webhook_delivery_attempts (delivery_id, log_position);
";

impl Projection for WebhookDeliveries {
    fn name(&self) -> &'static str {
        "webhook_deliveries"
    }

    fn layout(&self) -> i32 {
        4
    }

    fn categories(&self) -> Option<&'static [&'static str]> {
        Some(&[<WebhookDelivery as Decider>::CATEGORY])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["webhook_deliveries", "webhook_delivery_attempts"]
    }

    fn create_tables(&self, schema: &str) -> String {
        DDL.replace("{s}", schema)
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        schema: &'a str,
        events: &'a [RecordedEvent],
        rows: &'a mut RowCache,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(conn, schema, events, rows))
    }
}

async fn apply(
    conn: &mut PgConnection,
    schema: &str,
    events: &[RecordedEvent],
    rows: &mut RowCache,
) -> Result<(), ProjectionError> {
    let changes = row_changes_of::<WebhookDeliveryEvent, _>(
        events,
        <WebhookDelivery as Decider>::CATEGORY,
        DeliveryRow::of,
    )?;
    let deliveries = rows
        .load(
            conn,
            schema,
            "webhook_deliveries",
            "delivery_id",
            changes
                .iter()
                .map(|(delivery_id, _, change)| (*delivery_id, change.creates())),
            |row: &DeliveryRow| row.delivery_id,
        )
        .await?;
    let mut attempts = Vec::new();
    for (delivery_id, recorded, change) in changes {
        match change {
            RowChange::Created(row) => deliveries.insert(row.delivery_id, row),
            RowChange::Changed(event) => {
                let row = deliveries.existing(delivery_id, recorded)?;
                attempts.extend(row.apply(event, position_i64(recorded)));
            }
        }
    }
    insert_rows(conn, schema, "webhook_delivery_attempts", &attempts).await
}

impl DeliveryRow {
    /// What `event` does to its row: a delivery's queueing creates it; any other event
    /// changes it.
    fn of(event: WebhookDeliveryEvent) -> RowChange<Self, WebhookDeliveryEvent> {
        let WebhookDeliveryEvent::WebhookDeliveryQueued {
            delivery_id,
            merchant_id,
            payment_id,
            event_type,
            payload,
            endpoint_url,
            endpoint_id,
            at,
        } = event
        else {
            return RowChange::Changed(event);
        };
        RowChange::Created(Self {
            delivery_id: delivery_id.0,
            merchant_id: merchant_id.0,
            payment_id: payment_id.map(|id| id.0),
            event_type,
            payload,
            endpoint_url,
            endpoint_id: endpoint_id
                .unwrap_or_else(|| first_endpoint_id(merchant_id))
                .0,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: Some(at),
            last_status_code: None,
            last_error: None,
            queued_at: at,
            delivered_at: None,
            given_up_at: None,
            updated_at: at,
        })
    }

    /// Applies an event of a queued delivery, recorded at `log_position`; answers the attempt
    /// row it records, if any.
    fn apply(&mut self, event: WebhookDeliveryEvent, log_position: i64) -> Option<AttemptRow> {
        let at = event.at();
        self.updated_at = at;
        match event {
            // It makes the row: see `of`.
            WebhookDeliveryEvent::WebhookDeliveryQueued { .. } => {}
            WebhookDeliveryEvent::WebhookDeliveryAttempted {
                attempt,
                status_code,
                error,
                duration_ms,
                response_excerpt,
                ..
            } => {
                let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
                let status_code = status_code.map(i32::from);
                self.attempts = attempt;
                self.last_status_code = status_code.or(self.last_status_code);
                self.last_error = error
                    .clone()
                    .or_else(|| status_code.map(|code| format!("HTTP {code}")));
                self.next_attempt_at = None;
                return Some(AttemptRow {
                    delivery_id: self.delivery_id,
                    merchant_id: self.merchant_id,
                    attempt,
                    status_code,
                    error,
                    duration_ms: i64::try_from(duration_ms).unwrap_or(i64::MAX),
                    response_excerpt,
                    attempted_at: at,
                    log_position,
                });
            }
            WebhookDeliveryEvent::WebhookDelivered { .. } => {
                self.status = "delivered".into();
                self.last_error = None;
                self.delivered_at = Some(at);
            }
            WebhookDeliveryEvent::WebhookRetryScheduled {
                next_attempt_at, ..
            } => self.next_attempt_at = Some(next_attempt_at),
            WebhookDeliveryEvent::WebhookDeliveryGivenUp { .. } => {
                self.status = "given_up".into();
                self.given_up_at = Some(at);
            }
            WebhookDeliveryEvent::WebhookDeliveryRequeued { .. } => {
                self.status = "pending".into();
                self.attempts = 0;
                self.next_attempt_at = Some(at);
            }
        }
        None
    }
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFilter {
    /// Only this merchant's.
    pub merchant_id: Option<Uuid>,
    /// Only about this payment.
    pub payment_id: Option<Uuid>,
    /// Only this status (`pending`, `delivered`, `given_up`).
    pub status: Option<String>,
}

/// Deliveries matching `filter`, newest first.
pub async fn deliveries(
    pool: &PgPool,
    filter: &DeliveryFilter,
    page: PageRequest,
) -> Result<Page<DeliveryRow>, ProjectionError> {
    let (limit, offset) = page.limit_offset()?;
    let rows: Vec<(Json<DeliveryRow>, i64)> = sqlx::query_as(
        "SELECT to_jsonb(d), count(*) OVER () FROM read.webhook_deliveries d
          WHERE ($1::uuid IS NULL OR merchant_id = $1)
            AND ($2::uuid IS NULL OR payment_id = $2)
            AND ($3::text IS NULL OR status = $3)
          ORDER BY queued_at DESC, delivery_id DESC
          LIMIT $4 OFFSET $5",
    )
    .persistent(false)
    .bind(filter.merchant_id)
    .bind(filter.payment_id)
    .bind(&filter.status)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("webhook_deliveries", e))?;
    Ok(into_page(rows, page))
}

/// Every attempt of one delivery, oldest first.
pub async fn attempts(
    pool: &PgPool,
    delivery_id: Uuid,
) -> Result<Vec<AttemptRow>, ProjectionError> {
    let rows: Vec<Json<AttemptRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(a) FROM read.webhook_delivery_attempts a
          WHERE delivery_id = $1 ORDER BY log_position",
    )
    .bind(delivery_id)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("webhook_deliveries", e))?;
    Ok(rows.into_iter().map(|Json(row)| row).collect())
}

/// Which of one merchant's deliveries to list, newest first from an optional cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantDeliveryFilter {
    /// Only to this endpoint.
    pub endpoint_id: Option<Uuid>,
    /// Only of this event type, e.g. `payment.succeeded`.
    pub event_type: Option<String>,
    /// Only this status (`pending`, `delivered`, `given_up`).
    pub status: Option<String>,
    /// Only queued at or after this instant.
    pub queued_from: Option<DateTime<Utc>>,
    /// Only queued before this instant.
    pub queued_to: Option<DateTime<Utc>>,
}

/// Where a page of deliveries continues: the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCursor {
    /// That row's queueing instant.
    pub queued_at: DateTime<Utc>,
    /// That row's id.
    pub delivery_id: Uuid,
}

/// Up to `limit` of a merchant's deliveries matching `filter`, newest first, after `after`
/// (keyset pagination on `(queued_at, delivery_id)`, so rows queued meanwhile never shift a page).
pub async fn merchant_deliveries(
    pool: &PgPool,
    merchant_id: Uuid,
    filter: &MerchantDeliveryFilter,
    after: Option<DeliveryCursor>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, ProjectionError> {
    let rows: Vec<Json<DeliveryRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(d) FROM read.webhook_deliveries d
          WHERE merchant_id = $1
            AND ($2::uuid IS NULL OR endpoint_id = $2)
            AND ($3::text IS NULL OR event_type = $3)
            AND ($4::text IS NULL OR status = $4)
            AND ($5::timestamptz IS NULL OR queued_at >= $5)
            AND ($6::timestamptz IS NULL OR queued_at < $6)
            AND ($7::timestamptz IS NULL OR (queued_at, delivery_id) < ($7, $8))
          ORDER BY queued_at DESC, delivery_id DESC
          LIMIT $9",
    )
    .persistent(false)
    .bind(merchant_id)
    .bind(filter.endpoint_id)
    .bind(&filter.event_type)
    .bind(&filter.status)
    .bind(filter.queued_from)
    .bind(filter.queued_to)
    .bind(after.map(|cursor| cursor.queued_at))
    .bind(after.map(|cursor| cursor.delivery_id))
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("webhook_deliveries", e))?;
    Ok(rows.into_iter().map(|Json(row)| row).collect())
}

/// One delivery by id, if the read model has it.
pub async fn delivery(
    pool: &PgPool,
    delivery_id: Uuid,
) -> Result<Option<DeliveryRow>, ProjectionError> {
    let row: Option<Json<DeliveryRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(d) FROM read.webhook_deliveries d WHERE delivery_id = $1",
    )
    .bind(delivery_id)
    .fetch_optional(pool)
    .await
    .map_err(|e| ProjectionError::from_read("webhook_deliveries", e))?;
    Ok(row.map(|Json(row)| row))
}
