//! Transactions (payments), one row per payment (`read.transactions`), searchable by merchant,
//! status, merchant order id and initiation date, newest first, by cursor; a merchant's own
//! search adds amount, gateway and refund filters, a streamed export and daily usage.

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use lightspeed_domain::payment::{PaymentEvent, PaymentStatus};
use lightspeed_domain::{Decider, Payment};
use lightspeed_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::pagination::{CursorPage, checked_limit};
use crate::projection::{Projection, RowCache, RowChange, row_changes_of};

/// The transactions projection (`transactions`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Transactions;

/// One payment, as `read.transactions` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct TransactionRow {
    /// The payment.
    pub payment_id: Uuid,
    /// The merchant.
    pub merchant_id: Uuid,
    /// The merchant's order id.
    pub merchant_order_id: String,
    /// Amount.
    pub amount_paise: i64,
    /// Currency code (`INR`).
    pub currency: String,
    /// `created`, `pending`, `succeeded`, `failed` or `refunded` ([`PaymentStatus`]).
    pub status: String,
    /// The gateway currently (or last) routed to.
    pub gateway_id: Uuid,
    /// Gateways tried.
    pub attempts: i32,
    /// Fee in force at initiation, in basis points.
    pub fee_bps: i32,
    /// Commission decided at success.
    pub commission_paise: Option<i64>,
    /// The PSP's order id.
    pub psp_order_id: Option<String>,
    /// The PSP's payment id.
    pub psp_payment_id: Option<String>,
    /// The last failure's code.
    pub failure_code: Option<String>,
    /// The last failure's description.
    pub failure_description: Option<String>,
    /// Whether the success followed a failure.
    pub late_success: bool,
    /// Total refunded.
    pub refunded_paise: i64,
    /// Refunds recorded.
    pub refunds: i32,
    /// Refunds requested and awaiting their outcome (our refund ids).
    #[sqlx(json)]
    pub open_refunds: Vec<String>,
    /// When it was initiated.
    pub initiated_at: DateTime<Utc>,
    /// When it succeeded.
    pub succeeded_at: Option<DateTime<Utc>>,
    /// When it (last) failed.
    pub failed_at: Option<DateTime<Utc>>,
    /// When the last event changing this row happened.
    pub updated_at: DateTime<Utc>,
}

const DDL: &str = "
CREATE TABLE {s}.transactions (
    payment_id           uuid PRIMARY KEY,
    merchant_id          uuid NOT NULL,
    merchant_order_id    text NOT NULL,
    amount_paise         bigint NOT NULL,
    currency             text NOT NULL,
    status               text NOT NULL,
    gateway_id           uuid NOT NULL,
    attempts             integer NOT NULL,
    fee_bps              integer NOT NULL,
    commission_paise     bigint,
    psp_order_id         text,
    psp_payment_id       text,
    failure_code         text,
    failure_description  text,
    late_success         boolean NOT NULL,
    refunded_paise       bigint NOT NULL,
    refunds              integer NOT NULL,
    open_refunds         jsonb NOT NULL,
    initiated_at         timestamptz NOT NULL,
    succeeded_at         timestamptz,
    failed_at            timestamptz,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX ON {s}.transactions (initiated_at DESC, payment_id DESC);
CREATE INDEX ON {s}.transactions (merchant_id, initiated_at DESC, payment_id DESC);
CREATE INDEX ON {s}.transactions (status, initiated_at DESC, payment_id DESC);
CREATE INDEX ON {s}.transactions (merchant_order_id);
";

impl Projection for Transactions {
    fn name(&self) -> &'static str {
        "transactions"
    }

    // Layout 2 names statuses as [`PaymentStatus::as_str`] does; layout 3 keeps the refunds
    // awaiting their outcome.
    fn layout(&self) -> i32 {
        3
    }

    fn categories(&self) -> Option<&'static [&'static str]> {
        Some(&[<Payment as Decider>::CATEGORY])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["transactions"]
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
    let changes = row_changes_of::<PaymentEvent, _>(
        events,
        <Payment as Decider>::CATEGORY,
        TransactionRow::of,
    )?;
    let payments = rows
        .load(
            conn,
            schema,
            "transactions",
            "payment_id",
            changes
                .iter()
                .map(|(payment_id, _, change)| (*payment_id, change.creates())),
            |row: &TransactionRow| row.payment_id,
        )
        .await?;
    for (payment_id, recorded, change) in changes {
        match change {
            RowChange::Created(row) => payments.insert(row.payment_id, row),
            RowChange::Changed(event) => payments.existing(payment_id, recorded)?.apply(event),
        }
    }
    Ok(())
}

impl TransactionRow {
    /// What `event` does to its row: a payment's initiation creates it; any other event
    /// changes it.
    fn of(event: PaymentEvent) -> RowChange<Self, PaymentEvent> {
        let PaymentEvent::PaymentInitiated {
            payment_id,
            merchant_id,
            amount,
            currency,
            merchant_order_id,
            gateway_id,
            fee,
            at,
            ..
        } = event
        else {
            return RowChange::Changed(event);
        };
        RowChange::Created(Self {
            payment_id: payment_id.0,
            merchant_id: merchant_id.0,
            merchant_order_id,
            amount_paise: amount.0,
            currency: currency.code().into(),
            status: PaymentStatus::Created.as_str().into(),
            gateway_id: gateway_id.0,
            attempts: 1,
            fee_bps: i32::try_from(fee.bps()).unwrap_or(i32::MAX),
            commission_paise: None,
            psp_order_id: None,
            psp_payment_id: None,
            failure_code: None,
            failure_description: None,
            late_success: false,
            refunded_paise: 0,
            refunds: 0,
            open_refunds: Vec::new(),
            initiated_at: at,
            succeeded_at: None,
            failed_at: None,
            updated_at: at,
        })
    }

    /// Applies an event of an initiated payment.
    fn apply(&mut self, event: PaymentEvent) {
        self.updated_at = event.at();
        match event {
            // It makes the row: see `of`.
            PaymentEvent::PaymentInitiated { .. } => {}
            PaymentEvent::PspOrderCreated { psp_order_id, .. } => {
                self.psp_order_id = Some(psp_order_id);
                self.status = PaymentStatus::Pending.as_str().into();
            }
            PaymentEvent::PaymentRerouted { to_gateway, .. } => {
                self.gateway_id = to_gateway.0;
                self.attempts = self.attempts.saturating_add(1);
            }
            PaymentEvent::PaymentSucceeded {
                commission,
                psp_payment_id,
                late_success,
                at,
                ..
            } => {
                self.status = PaymentStatus::Succeeded.as_str().into();
                self.commission_paise = Some(commission.0);
                self.psp_payment_id = Some(psp_payment_id);
                self.late_success = late_success;
                self.succeeded_at = Some(at);
            }
            PaymentEvent::PaymentFailed {
                code,
                description,
                at,
                ..
            } => {
                self.status = PaymentStatus::Failed.as_str().into();
                self.failure_code = Some(code);
                self.failure_description = Some(description);
                self.failed_at = Some(at);
            }
            PaymentEvent::PaymentRefunded {
                refund_id,
                refunded_total,
                ..
            } => {
                self.refunded_paise = refunded_total.0;
                self.refunds = self.refunds.saturating_add(1);
                self.open_refunds.retain(|open| *open != refund_id);
                if refunded_total.0 >= self.amount_paise {
                    self.status = PaymentStatus::Refunded.as_str().into();
                }
            }
            PaymentEvent::RefundRequested { refund_id, .. } => {
                self.open_refunds.push(refund_id.to_string());
            }
            PaymentEvent::RefundFailed { refund_id, .. } => {
                let refund_id = refund_id.to_string();
                self.open_refunds.retain(|open| *open != refund_id);
            }
            PaymentEvent::RefundSubmitted { .. } => {}
        }
    }
}

/// Which transactions to find.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionSearch {
    /// Only this merchant's.
    pub merchant_id: Option<Uuid>,
    /// Only this status (`created`, `pending`, `succeeded`, `failed`, `refunded`).
    pub status: Option<String>,
    /// Only this merchant order id (exact).
    pub merchant_order_id: Option<String>,
    /// Initiated at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Initiated before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Rows per step (1 to 200).
    pub limit: u32,
}

/// The admin search's filters after the merchant, parameters `$2` to `$7`. A macro, so each
/// statement is one static text.
macro_rules! admin_filters {
    () => {
        "($2::text IS NULL OR status = $2)
            AND ($3::text IS NULL OR merchant_order_id = $3)
            AND ($4::timestamptz IS NULL OR initiated_at >= $4)
            AND ($5::timestamptz IS NULL OR initiated_at < $5)
            AND ($6::timestamptz IS NULL OR (initiated_at, payment_id) < ($6, $7::uuid))"
    };
}

/// Every merchant's rows, newest first: the `(initiated_at, payment_id)` index gives the order.
const ALL_MERCHANTS_SEARCH: &str = concat!(
    "SELECT to_jsonb(t) FROM read.transactions t WHERE $1::uuid[] IS NULL AND ",
    admin_filters!(),
    " ORDER BY initiated_at DESC, payment_id DESC LIMIT $8"
);

/// One merchant's rows, newest first. As in [`merchant_search`], the merchant is matched as
/// `= ANY($1)` and leads the order, so only the `(merchant_id, initiated_at, payment_id)` index
/// yields the order: with a plain `=` the planner may walk every merchant's newest-first index
/// and filter out other merchants' newer rows one by one.
const ONE_MERCHANT_SEARCH: &str = concat!(
    "SELECT to_jsonb(t) FROM read.transactions t WHERE merchant_id = ANY($1) AND ",
    admin_filters!(),
    " ORDER BY merchant_id, initiated_at DESC, payment_id DESC LIMIT $8"
);

/// Transactions matching `search`, newest first; `cursor` is a previous step's `next_cursor`.
pub async fn search(
    pool: &PgPool,
    search: &TransactionSearch,
    cursor: Option<&str>,
) -> Result<CursorPage<TransactionRow>, ProjectionError> {
    let limit = checked_limit(search.limit)?;
    if let Some(status) = &search.status
        && !PaymentStatus::ALL.iter().any(|s| s.as_str() == status)
    {
        return Err(ProjectionError::InvalidQuery(format!(
            "unknown status {status:?}"
        )));
    }
    let (before_at, before_id) = match cursor {
        Some(cursor) => {
            let (at, id) = parse_cursor(cursor)?;
            (Some(at), Some(id))
        }
        None => (None, None),
    };
    let sql = match search.merchant_id {
        Some(_) => ONE_MERCHANT_SEARCH,
        None => ALL_MERCHANTS_SEARCH,
    };
    let rows: Vec<Json<TransactionRow>> = sqlx::query_scalar(sql)
        .persistent(false)
        .bind(search.merchant_id.map(|m| [m]))
        .bind(&search.status)
        .bind(&search.merchant_order_id)
        .bind(search.from)
        .bind(search.to)
        .bind(before_at)
        .bind(before_id)
        .bind(limit + 1)
        .fetch_all(pool)
        .await
        .map_err(|e| ProjectionError::from_read("transactions", e))?;
    let rows = rows.into_iter().map(|Json(row)| row).collect();
    Ok(CursorPage::from_fetch(
        rows,
        limit,
        |row: &TransactionRow| {
            format!("{}_{}", row.initiated_at.timestamp_micros(), row.payment_id)
        },
    ))
}

fn parse_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ProjectionError> {
    let bad = || ProjectionError::InvalidQuery(format!("bad transactions cursor {cursor:?}"));
    let (micros, id) = cursor.split_once('_').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// One transaction.
pub async fn get(
    pool: &PgPool,
    payment_id: Uuid,
) -> Result<Option<TransactionRow>, ProjectionError> {
    let row: Option<Json<TransactionRow>> =
        sqlx::query_scalar("SELECT to_jsonb(t) FROM read.transactions t WHERE payment_id = $1")
            .bind(payment_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| ProjectionError::from_read("transactions", e))?;
    Ok(row.map(|Json(row)| row))
}

/// Where a step through a merchant's transactions stopped: the last row's initiation instant and
/// payment id. Written as an opaque text; parse it back with [`str::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionCursor {
    /// The last row's initiation instant.
    pub initiated_at: DateTime<Utc>,
    /// The last row's payment.
    pub payment_id: Uuid,
}

impl TransactionCursor {
    fn of(row: &TransactionRow) -> Self {
        Self {
            initiated_at: row.initiated_at,
            payment_id: row.payment_id,
        }
    }
}

impl std::fmt::Display for TransactionCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}_{}",
            self.initiated_at.timestamp_micros(),
            self.payment_id.simple()
        )
    }
}

impl std::str::FromStr for TransactionCursor {
    type Err = ProjectionError;

    fn from_str(cursor: &str) -> Result<Self, ProjectionError> {
        let (initiated_at, payment_id) = parse_cursor(cursor)?;
        Ok(Self {
            initiated_at,
            payment_id,
        })
    }
}

/// What a merchant's transactions may be narrowed by, beyond [`PaymentStatus`]'s names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusFilter {
    /// Payments in this status.
    Is(PaymentStatus),
    /// Succeeded payments refunded in part (some, not all, of the amount).
    PartiallyRefunded,
}

impl StatusFilter {
    /// The name of the partial-refund filter.
    pub const PARTIALLY_REFUNDED: &'static str = "partially_refunded";

    /// The filter named `name`: a [`PaymentStatus`] or `partially_refunded`.
    pub fn parse(name: &str) -> Option<Self> {
        if name == Self::PARTIALLY_REFUNDED {
            return Some(Self::PartiallyRefunded);
        }
        PaymentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
            .map(Self::Is)
    }

    fn status(self) -> Option<&'static str> {
        match self {
            Self::Is(status) => Some(status.as_str()),
            Self::PartiallyRefunded => None,
        }
    }
}

/// Which of one merchant's transactions to find. Every bound is optional but the merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantTransactionFilter {
    /// The merchant whose transactions these are.
    pub merchant_id: Uuid,
    /// Only this status, or only partially refunded payments.
    pub status: Option<StatusFilter>,
    /// Initiated at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Initiated before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Amount at least this.
    pub min_amount_paise: Option<i64>,
    /// Amount at most this.
    pub max_amount_paise: Option<i64>,
    /// Only this merchant order id (exact).
    pub merchant_order_id: Option<String>,
    /// Only routed (last) to this gateway.
    pub gateway_id: Option<Uuid>,
    /// Only payments with (true) or without (false) a succeeded refund.
    pub refunded: Option<bool>,
}

/// The filter's `WHERE` and order, parameters `$1` to `$10` in [`bind_filter`]'s order; `$11`
/// and `$12` bound the cursor. A macro, so each statement is one static text.
///
/// The merchant is matched as `= ANY($1)` and leads the order, so that only the
/// `(merchant_id, initiated_at, payment_id)` index yields the order without a sort: with a plain
/// `=` the planner drops the merchant from the order and may walk the newest-first index of
/// every merchant's rows instead, filtering out other merchants' newer rows one by one (40 ms
/// for a busy merchant behind 100 000 newer rows of others). A filter selective enough to beat
/// that index (an order id) still gets its own index and a sort of its few rows.
macro_rules! merchant_rows {
    () => {
        "merchant_id = ANY($1)
            AND ($2::text IS NULL OR status = $2)
            AND (NOT $3 OR (refunded_paise > 0 AND refunded_paise < amount_paise))
            AND ($4::timestamptz IS NULL OR initiated_at >= $4)
            AND ($5::timestamptz IS NULL OR initiated_at < $5)
            AND ($6::bigint IS NULL OR amount_paise >= $6)
            AND ($7::bigint IS NULL OR amount_paise <= $7)
            AND ($8::text IS NULL OR merchant_order_id = $8)
            AND ($9::uuid IS NULL OR gateway_id = $9)
            AND ($10::boolean IS NULL OR (refunded_paise > 0) = $10)
            AND ($11::timestamptz IS NULL OR (initiated_at, payment_id) < ($11, $12::uuid))
          ORDER BY merchant_id, initiated_at DESC, payment_id DESC"
    };
}

type RowQuery<'q> =
    sqlx::query::QueryAs<'q, sqlx::Postgres, TransactionRow, sqlx::postgres::PgArguments>;

fn bind_filter<'q>(
    query: RowQuery<'q>,
    filter: &'q MerchantTransactionFilter,
    after: Option<TransactionCursor>,
) -> RowQuery<'q> {
    // Planned for each call's values (an unnamed statement): a plan PostgreSQL caches for the
    // statement serves every filter alike, its `$n IS NULL OR …` left unresolved, and walks the
    // merchant's whole index for a deep cursor or an order id (over a second at a million rows).
    query
        .persistent(false)
        .bind([filter.merchant_id])
        .bind(filter.status.and_then(StatusFilter::status))
        .bind(filter.status == Some(StatusFilter::PartiallyRefunded))
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.min_amount_paise)
        .bind(filter.max_amount_paise)
        .bind(filter.merchant_order_id.as_deref())
        .bind(filter.gateway_id)
        .bind(filter.refunded)
        .bind(after.map(|c| c.initiated_at))
        .bind(after.map(|c| c.payment_id))
}

/// One merchant's transactions matching `filter`, newest first, `limit` (1 to 200) after
/// `after` (a previous step's `next_cursor`).
pub async fn merchant_search(
    pool: &PgPool,
    filter: &MerchantTransactionFilter,
    limit: u32,
    after: Option<TransactionCursor>,
) -> Result<CursorPage<TransactionRow>, ProjectionError> {
    let limit = checked_limit(limit)?;
    let sql = concat!(
        "SELECT * FROM read.transactions WHERE ",
        merchant_rows!(),
        " LIMIT $13"
    );
    let rows = bind_filter(sqlx::query_as(sql), filter, after)
        .bind(limit + 1)
        .fetch_all(pool)
        .await
        .map_err(|e| ProjectionError::from_read("transactions", e))?;
    Ok(CursorPage::from_fetch(
        rows,
        limit,
        |row: &TransactionRow| TransactionCursor::of(row).to_string(),
    ))
}

/// Rows an export reads ahead of its consumer.
const EXPORT_READ_AHEAD: usize = 512;

/// Every one of a merchant's transactions matching `filter`, newest first, read by one query as
/// the consumer takes them: at most [`EXPORT_READ_AHEAD`] rows are held whatever the count.
/// Dropping the stream stops the query.
pub fn merchant_export(
    pool: PgPool,
    filter: MerchantTransactionFilter,
) -> impl futures::Stream<Item = Result<TransactionRow, ProjectionError>> + Send + 'static {
    let (rows, received) = tokio::sync::mpsc::channel(EXPORT_READ_AHEAD);
    tokio::spawn(async move {
        let sql = concat!("SELECT * FROM read.transactions WHERE ", merchant_rows!());
        let mut fetched = bind_filter(sqlx::query_as(sql), &filter, None).fetch(&pool);
        while let Some(row) = futures::StreamExt::next(&mut fetched).await {
            let row = row.map_err(|e| ProjectionError::from_read("transactions", e));
            let failed = row.is_err();
            // A closed channel: the consumer went away, so the query stops here.
            if rows.send(row).await.is_err() || failed {
                break;
            }
        }
    });
    futures::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|row| (row, received))
    })
}

/// One merchant's payments of one status on one gateway, initiated on one IST day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentUsageDay {
    /// The IST calendar day of initiation.
    pub day: NaiveDate,
    /// The gateway routed (last) to.
    pub gateway_id: Uuid,
    /// Where these payments stand now.
    pub status: String,
    /// How many.
    pub payments: i64,
    /// Their total amount.
    pub volume_paise: i64,
}

/// A merchant's payments initiated from the IST day `from` to `to`, both included, counted by
/// day, gateway and status, newest day first.
pub async fn merchant_usage(
    pool: &PgPool,
    merchant_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<PaymentUsageDay>, ProjectionError> {
    let rows: Vec<Json<PaymentUsageDay>> = sqlx::query_scalar(
        "SELECT jsonb_build_object('day', day, 'gateway_id', gateway_id, 'status', status,
                                   'payments', count(*), 'volume_paise', sum(amount_paise))
           FROM (SELECT (initiated_at AT TIME ZONE 'Asia/Kolkata')::date AS day,
                        gateway_id, status, amount_paise
                   FROM read.transactions
                  WHERE merchant_id = $1
                    AND initiated_at >= ($2::date::timestamp AT TIME ZONE 'Asia/Kolkata')
                    AND initiated_at < (($3::date + 1)::timestamp AT TIME ZONE 'Asia/Kolkata')) t
          GROUP BY day, gateway_id, status
          ORDER BY day DESC, gateway_id, status",
    )
    .bind(merchant_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("transactions", e))?;
    Ok(rows.into_iter().map(|Json(row)| row).collect())
}
