//! Refunds, one row per refund (`read.refunds`), searchable by merchant, payment, status,
//! request date and amount, newest first, by cursor.
//!
//! A refund requested through us is keyed by its refund id; one the PSP reported without our
//! request (its `PaymentRefunded` names no refund of ours) has the nil refund id and is keyed by
//! the PSP's refund id. `read.refund_payments` keeps each payment's merchant, amount and
//! capturing gateway, which the refund events do not repeat.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lightspeed_domain::payment::PaymentEvent;
use lightspeed_domain::payment::refunds::{RefundCommission, RefundStatus};
use lightspeed_domain::{Decider, Payment, RefundId};
use lightspeed_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::pagination::{CursorPage, checked_limit};
use crate::projection::{
    Projection, RowCache, decode, keys_to_load, load_rows, stream_uuid, upsert_rows,
};
use crate::row_cache::TableRows;

/// The refunds projection (`refunds`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Refunds;

/// One refund, as `read.refunds` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRow {
    /// Our refund id as text, or the PSP's refund id for a refund it reported itself.
    pub refund_key: String,
    /// Our refund id; nil for a refund the PSP reported without our request.
    pub refund_id: Uuid,
    /// The merchant's refund id (its idempotency key); `None` for a refund the PSP reported.
    pub merchant_refund_id: Option<String>,
    /// The refunded payment.
    pub payment_id: Uuid,
    /// The payment's merchant.
    pub merchant_id: Uuid,
    /// The gateway that captured the payment (refunds go back through it).
    pub gateway_id: Uuid,
    /// Amount returned (or to return) to the payer.
    pub amount_paise: i64,
    /// `requested`, `submitted`, `succeeded` or `failed` ([`RefundStatus`]).
    pub status: String,
    /// The PSP's refund id, once known.
    pub psp_refund_id: Option<String>,
    /// Why it failed: the PSP's (or our) code.
    pub failure_code: Option<String>,
    /// Why it failed, in words.
    pub failure_reason: Option<String>,
    /// `retain` or `reverse_proportional`: the commission treatment taken at the request.
    pub commission_treatment: String,
    /// Commission reversed when it succeeded.
    pub commission_reversed_paise: i64,
    /// The merchant's reason.
    pub reason: String,
    /// When it was requested (for a refund the PSP reported: when it was recorded).
    pub requested_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

/// What the refund rows need of their payment, which the refund events do not carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPayment {
    /// The payment.
    pub payment_id: Uuid,
    /// Its merchant.
    pub merchant_id: Uuid,
    /// The gateway routed to, and once it succeeded, the one that captured it.
    pub gateway_id: Uuid,
    /// Its amount.
    pub amount_paise: i64,
}

const DDL: &str = "
CREATE TABLE {s}.refunds (
    refund_key                 text NOT NULL,
    refund_id                  uuid NOT NULL,
    merchant_refund_id         text,
    payment_id                 uuid NOT NULL,
    merchant_id                uuid NOT NULL,
    gateway_id                 uuid NOT NULL,
    amount_paise               bigint NOT NULL,
    status                     text NOT NULL,
    psp_refund_id              text,
    failure_code               text,
    failure_reason             text,
    commission_treatment       text NOT NULL,
    commission_reversed_paise  bigint NOT NULL,
    reason                     text NOT NULL,
    requested_at               timestamptz NOT NULL,
    updated_at                 timestamptz NOT NULL,
    PRIMARY KEY (payment_id, refund_key)
);
CREATE INDEX ON {s}.refunds (requested_at DESC, payment_id DESC, refund_key DESC);
CREATE INDEX ON {s}.refunds (merchant_id, requested_at DESC, payment_id DESC, refund_key DESC);
CREATE INDEX ON {s}.refunds (status, requested_at DESC, payment_id DESC, refund_key DESC);
CREATE INDEX ON {s}.refunds (refund_key);
CREATE TABLE {s}.refund_payments (
    payment_id    uuid PRIMARY KEY,
    merchant_id   uuid NOT NULL,
    gateway_id    uuid NOT NULL,
    amount_paise  bigint NOT NULL
);
";

impl Projection for Refunds {
    fn name(&self) -> &'static str {
        "refunds"
    }

    fn layout(&self) -> i32 {
        1
    }

    fn categories(&self) -> Option<&'static [&'static str]> {
        Some(&[<Payment as Decider>::CATEGORY])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["refunds", "refund_payments"]
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

/// The refund rows of the payments a batch touches, by (payment, refund key), and which of
/// them the batch changed.
struct BatchRefunds {
    rows: BTreeMap<(Uuid, String), RefundRow>,
    changed: Vec<(Uuid, String)>,
}

impl BatchRefunds {
    fn row(&mut self, payment_id: Uuid, key: &str) -> Option<&mut RefundRow> {
        let key = (payment_id, key.to_owned());
        let row = self.rows.get_mut(&key)?;
        if !self.changed.contains(&key) {
            self.changed.push(key);
        }
        Some(row)
    }

    fn insert(&mut self, row: RefundRow) {
        let key = (row.payment_id, row.refund_key.clone());
        if !self.changed.contains(&key) {
            self.changed.push(key.clone());
        }
        self.rows.insert(key, row);
    }

    fn changed_rows(&self) -> Vec<&RefundRow> {
        let mut keys: Vec<&(Uuid, String)> = self.changed.iter().collect();
        keys.sort_unstable();
        keys.into_iter().filter_map(|k| self.rows.get(k)).collect()
    }
}

/// Payment events that change neither a refund nor what its rows take from the payment: left
/// undecoded.
const IGNORED: [&str; 2] = ["PspOrderCreated", "PaymentFailed"];

/// The batch's payment events this projection reads, decoded, each with its payment.
fn facts(
    events: &[RecordedEvent],
) -> Result<Vec<(Uuid, &RecordedEvent, PaymentEvent)>, ProjectionError> {
    let category = <Payment as Decider>::CATEGORY;
    let mut facts = Vec::with_capacity(events.len());
    for event in events {
        if event.stream_id.category() == category && !IGNORED.contains(&event.event_type.as_str()) {
            facts.push((stream_uuid(event)?, event, decode::<PaymentEvent>(event)?));
        }
    }
    Ok(facts)
}

/// Whether `event` changes a refund row already made.
fn changes_a_refund(event: &PaymentEvent) -> bool {
    matches!(
        event,
        PaymentEvent::RefundSubmitted { .. }
            | PaymentEvent::RefundFailed { .. }
            | PaymentEvent::PaymentRefunded { .. }
    )
}

async fn apply(
    conn: &mut PgConnection,
    schema: &str,
    events: &[RecordedEvent],
    rows: &mut RowCache,
) -> Result<(), ProjectionError> {
    let facts = facts(events)?;
    let touched = || {
        facts.iter().map(|(payment_id, _, event)| {
            (
                *payment_id,
                matches!(event, PaymentEvent::PaymentInitiated { .. }),
            )
        })
    };
    let payments = rows
        .load(
            conn,
            schema,
            "refund_payments",
            "payment_id",
            touched(),
            |row: &RefundPayment| row.payment_id,
        )
        .await?;
    // Refund rows are loaded only for the payments whose stored refunds the batch changes.
    let refunded: HashSet<Uuid> = facts
        .iter()
        .filter(|(_, _, event)| changes_a_refund(event))
        .map(|(payment_id, _, _)| *payment_id)
        .collect();
    let mut to_load = keys_to_load(touched());
    to_load.retain(|payment_id| refunded.contains(payment_id));
    let stored: Vec<RefundRow> = load_rows(conn, schema, "refunds", "payment_id", &to_load).await?;
    let mut refunds = BatchRefunds {
        rows: stored
            .into_iter()
            .map(|row| ((row.payment_id, row.refund_key.clone()), row))
            .collect(),
        changed: Vec::new(),
    };
    for (payment_id, recorded, event) in facts {
        match event {
            PaymentEvent::PaymentInitiated {
                merchant_id,
                gateway_id,
                amount,
                ..
            } => payments.insert(
                payment_id,
                RefundPayment {
                    payment_id,
                    merchant_id: merchant_id.0,
                    gateway_id: gateway_id.0,
                    amount_paise: amount.0,
                },
            ),
            PaymentEvent::PaymentRerouted { to_gateway, .. } => {
                route(payments, payment_id, recorded, to_gateway.0)?;
            }
            PaymentEvent::PaymentSucceeded { gateway_id, .. } => {
                route(payments, payment_id, recorded, gateway_id.0)?;
            }
            refund_event => apply_refund_event(
                payments.stored(payment_id, recorded)?,
                &mut refunds,
                refund_event,
            ),
        }
    }
    upsert_rows(
        conn,
        schema,
        "refunds",
        "payment_id, refund_key",
        &refunds.changed_rows(),
    )
    .await
}

/// Records the gateway a payment is routed to (or captured at), writing its row only if that
/// changed it.
fn route(
    payments: &mut TableRows<RefundPayment>,
    payment_id: Uuid,
    recorded: &RecordedEvent,
    gateway_id: Uuid,
) -> Result<(), ProjectionError> {
    if payments.stored(payment_id, recorded)?.gateway_id != gateway_id {
        payments.existing(payment_id, recorded)?.gateway_id = gateway_id;
    }
    Ok(())
}

/// Applies one refund event of an initiated payment to its refunds.
fn apply_refund_event(payment: &RefundPayment, refunds: &mut BatchRefunds, event: PaymentEvent) {
    match event {
        PaymentEvent::RefundRequested {
            refund_id,
            merchant_refund_id,
            amount,
            reason,
            commission,
            at,
        } => refunds.insert(RefundRow {
            refund_key: refund_id.to_string(),
            refund_id: refund_id.0,
            merchant_refund_id: Some(merchant_refund_id),
            payment_id: payment.payment_id,
            merchant_id: payment.merchant_id,
            gateway_id: payment.gateway_id,
            amount_paise: amount.0,
            status: RefundStatus::Requested.as_str().into(),
            psp_refund_id: None,
            failure_code: None,
            failure_reason: None,
            commission_treatment: commission.as_str().into(),
            commission_reversed_paise: 0,
            reason,
            requested_at: at,
            updated_at: at,
        }),
        PaymentEvent::RefundSubmitted {
            refund_id,
            psp_refund_id,
            at,
        } => {
            if let Some(row) = refunds.row(payment.payment_id, &refund_id.to_string()) {
                row.status = RefundStatus::Submitted.as_str().into();
                row.psp_refund_id = Some(psp_refund_id);
                row.updated_at = at;
            }
        }
        PaymentEvent::RefundFailed {
            refund_id,
            code,
            reason,
            at,
            ..
        } => {
            if let Some(row) = refunds.row(payment.payment_id, &refund_id.to_string()) {
                row.status = RefundStatus::Failed.as_str().into();
                row.failure_code = Some(code);
                row.failure_reason = Some(reason);
                row.updated_at = at;
            }
        }
        refunded @ PaymentEvent::PaymentRefunded { .. } => {
            refund_succeeded(payment, refunds, refunded)
        }
        PaymentEvent::PaymentInitiated { .. }
        | PaymentEvent::PspOrderCreated { .. }
        | PaymentEvent::PaymentRerouted { .. }
        | PaymentEvent::PaymentSucceeded { .. }
        | PaymentEvent::PaymentFailed { .. } => {}
    }
}

/// A `PaymentRefunded`: the requested refund it names succeeded, or (naming none of ours) the
/// PSP reported a refund made without our request, which gets a row of its own.
fn refund_succeeded(payment: &RefundPayment, refunds: &mut BatchRefunds, event: PaymentEvent) {
    let PaymentEvent::PaymentRefunded {
        refund_id,
        amount,
        commission_reversed,
        psp_refund_id,
        at,
        ..
    } = event
    else {
        return;
    };
    let ours = refund_id
        .parse::<RefundId>()
        .is_ok()
        .then(|| refunds.row(payment.payment_id, &refund_id))
        .flatten();
    if let Some(row) = ours {
        row.status = RefundStatus::Succeeded.as_str().into();
        row.commission_reversed_paise = commission_reversed.0;
        row.psp_refund_id = psp_refund_id.or(row.psp_refund_id.take());
        row.updated_at = at;
        return;
    }
    let psp_refund_id = psp_refund_id.unwrap_or(refund_id);
    refunds.insert(RefundRow {
        refund_key: psp_refund_id.clone(),
        refund_id: Uuid::nil(),
        merchant_refund_id: None,
        payment_id: payment.payment_id,
        merchant_id: payment.merchant_id,
        gateway_id: payment.gateway_id,
        amount_paise: amount.0,
        status: RefundStatus::Succeeded.as_str().into(),
        psp_refund_id: Some(psp_refund_id),
        failure_code: None,
        failure_reason: None,
        commission_treatment: RefundCommission::Retain.as_str().into(),
        commission_reversed_paise: commission_reversed.0,
        reason: String::new(),
        requested_at: at,
        updated_at: at,
    });
}

/// Which refunds to find.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundSearch {
    /// Only this merchant's.
    pub merchant_id: Option<Uuid>,
    /// Only this payment's.
    pub payment_id: Option<Uuid>,
    /// Only this status (`requested`, `submitted`, `succeeded`, `failed`).
    pub status: Option<String>,
    /// Requested at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Requested before this instant.
    pub to: Option<DateTime<Utc>>,
    /// At least this amount.
    pub min_amount_paise: Option<i64>,
    /// At most this amount.
    pub max_amount_paise: Option<i64>,
    /// Rows per step (1 to 200).
    pub limit: u32,
}

/// Every refund status's wire name.
const STATUSES: [RefundStatus; 4] = [
    RefundStatus::Requested,
    RefundStatus::Submitted,
    RefundStatus::Succeeded,
    RefundStatus::Failed,
];

/// Refunds matching `search`, newest request first; `cursor` is a previous step's
/// `next_cursor`.
pub async fn search(
    pool: &PgPool,
    search: &RefundSearch,
    cursor: Option<&str>,
) -> Result<CursorPage<RefundRow>, ProjectionError> {
    let limit = checked_limit(search.limit)?;
    check_search(search)?;
    let after = cursor.map(parse_cursor).transpose()?;
    let (before_at, before_payment, before_key) = match after {
        Some((at, payment, key)) => (Some(at), Some(payment), Some(key)),
        None => (None, None, None),
    };
    let rows: Vec<Json<RefundRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(r) FROM read.refunds r
          WHERE ($1::uuid IS NULL OR merchant_id = $1)
            AND ($2::uuid IS NULL OR payment_id = $2)
            AND ($3::text IS NULL OR status = $3)
            AND ($4::timestamptz IS NULL OR requested_at >= $4)
            AND ($5::timestamptz IS NULL OR requested_at < $5)
            AND ($6::bigint IS NULL OR amount_paise >= $6)
            AND ($7::bigint IS NULL OR amount_paise <= $7)
            AND ($8::timestamptz IS NULL
                 OR (requested_at, payment_id, refund_key) < ($8, $9::uuid, $10::text))
          ORDER BY requested_at DESC, payment_id DESC, refund_key DESC
          LIMIT $11",
    )
    .persistent(false)
    .bind(search.merchant_id)
    .bind(search.payment_id)
    .bind(&search.status)
    .bind(search.from)
    .bind(search.to)
    .bind(search.min_amount_paise)
    .bind(search.max_amount_paise)
    .bind(before_at)
    .bind(before_payment)
    .bind(before_key)
    .bind(limit + 1)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("refunds", e))?;
    let rows = rows.into_iter().map(|Json(row)| row).collect();
    Ok(CursorPage::from_fetch(rows, limit, |row: &RefundRow| {
        format!(
            "{}_{}_{}",
            row.requested_at.timestamp_micros(),
            row.payment_id,
            row.refund_key
        )
    }))
}

/// Refuses an unknown status and an amount range that cannot match.
fn check_search(search: &RefundSearch) -> Result<(), ProjectionError> {
    if let Some(status) = &search.status
        && !STATUSES.iter().any(|s| s.as_str() == status)
    {
        return Err(ProjectionError::InvalidQuery(format!(
            "unknown status {status:?}"
        )));
    }
    if let (Some(min), Some(max)) = (search.min_amount_paise, search.max_amount_paise)
        && min > max
    {
        return Err(ProjectionError::InvalidQuery(format!(
            "min_amount_paise {min} is above max_amount_paise {max}"
        )));
    }
    Ok(())
}

/// `<micros>_<payment id>_<refund key>`: neither of the first two holds an underscore.
fn parse_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid, String), ProjectionError> {
    let bad = || ProjectionError::InvalidQuery(format!("bad refunds cursor {cursor:?}"));
    let mut parts = cursor.splitn(3, '_');
    let (Some(micros), Some(payment), Some(key)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    let payment = Uuid::parse_str(payment).map_err(|_| bad())?;
    Ok((at, payment, key.to_owned()))
}

/// One refund by its key: our refund id, or the PSP's refund id for a refund it reported
/// itself (the oldest, should two payments' PSPs have used the same id).
pub async fn get(pool: &PgPool, refund_key: &str) -> Result<Option<RefundRow>, ProjectionError> {
    let row: Option<Json<RefundRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(r) FROM read.refunds r WHERE refund_key = $1
          ORDER BY requested_at, payment_id LIMIT 1",
    )
    .bind(refund_key)
    .fetch_optional(pool)
    .await
    .map_err(|e| ProjectionError::from_read("refunds", e))?;
    Ok(row.map(|Json(row)| row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_keeps_a_psp_refund_id_with_underscores() {
        let payment = Uuid::from_u128(7);
        let cursor = format!("1790000000000000_{payment}_rfnd_A_b");
        let (at, parsed, key) = parse_cursor(&cursor).expect("parses");
        assert_eq!(at.timestamp_micros(), 1_790_000_000_000_000);
        assert_eq!(parsed, payment);
        assert_eq!(key, "rfnd_A_b");
        assert!(parse_cursor("12_not-a-uuid_x").is_err());
        assert!(parse_cursor("12").is_err());
    }

    #[test]
    fn the_payment_events_left_undecoded_are_payment_event_types() {
        for ignored in IGNORED {
            assert!(PaymentEvent::EVENT_TYPES.contains(&ignored), "{ignored}");
        }
    }
}
