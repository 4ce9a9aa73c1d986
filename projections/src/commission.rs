//! Commission per IST day and merchant, and the commission ledger.
//!
//! - `read.commission_daily`: per IST calendar day and merchant: payments succeeded, their
//!   volume, the commission (fees) accrued, commission reversed by refunds, payouts paid out
//!   (count and amount), payouts reversed after being paid out, and manual settlements. Each
//!   fact counts on the IST day of its own instant.
//! - The ledger ([`ledger`]) reads `read.wallet_entries`, kept by the wallets projection.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use lightspeed_domain::wallet::WalletEvent;
use lightspeed_domain::{Decider, Wallet};
use lightspeed_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::pagination::{CursorPage, checked_limit};
use crate::projection::{Projection, RowCache, add_counts, decode, ist_day, stream_uuid};
use crate::wallets::WalletEntry;

/// The commission projection (`commission_daily`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Commission;

/// One merchant's commission on one IST day, as `read.commission_daily` holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionDay {
    /// The IST calendar day.
    pub day: NaiveDate,
    /// The merchant.
    pub merchant_id: Uuid,
    /// Payments that succeeded that day.
    pub payments: i64,
    /// Their total amount.
    pub volume_paise: i64,
    /// Commission accrued on them (the fees).
    pub commission_paise: i64,
    /// Commission reversed that day by refunds.
    pub commission_reversed_paise: i64,
    /// Payouts paid out that day.
    pub payouts: i64,
    /// Their total amount.
    pub payouts_paise: i64,
    /// Paid-out payouts reversed that day.
    pub payouts_reversed_paise: i64,
    /// Settled manually that day.
    pub settled_paise: i64,
}

const DDL: &str = "
CREATE TABLE {s}.commission_daily (
    day                     date NOT NULL,
    merchant_id             uuid NOT NULL,
    payments                bigint NOT NULL,
    volume_paise            bigint NOT NULL,
    commission_paise        bigint NOT NULL,
    commission_reversed_paise bigint NOT NULL,
    payouts                 bigint NOT NULL,
    payouts_paise           bigint NOT NULL,
    payouts_reversed_paise  bigint NOT NULL,
    settled_paise           bigint NOT NULL,
    PRIMARY KEY (day, merchant_id)
);
CREATE INDEX ON {s}.commission_daily (merchant_id, day DESC);
";

impl Projection for Commission {
    fn name(&self) -> &'static str {
        "commission"
    }

    fn layout(&self) -> i32 {
        2
    }

    fn categories(&self) -> Option<&'static [&'static str]> {
        Some(&[<Wallet as Decider>::CATEGORY])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["commission_daily"]
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
        Box::pin(apply(conn, schema, events))
    }
}

async fn apply(
    conn: &mut PgConnection,
    schema: &str,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    // Sums per (day, merchant) in memory, then one additive upsert for the batch.
    let mut days: BTreeMap<(NaiveDate, Uuid), CommissionDay> = BTreeMap::new();
    for event in events {
        if event.stream_id.category() != <Wallet as Decider>::CATEGORY
            || event.event_type == "PayoutRequested"
        {
            continue;
        }
        let wallet_event: WalletEvent = decode(event)?;
        let merchant_id = stream_uuid(event)?;
        let day = ist_day(wallet_event.at());
        days.entry((day, merchant_id))
            .or_insert_with(|| CommissionDay {
                day,
                merchant_id,
                ..CommissionDay::default()
            })
            .count(&wallet_event);
    }
    add_days(conn, schema, &days).await
}

impl CommissionDay {
    /// Adds a wallet event of this day and merchant to its sums.
    fn count(&mut self, event: &WalletEvent) {
        let add = |total: &mut i64, amount: i64| *total = total.saturating_add(amount);
        match event {
            WalletEvent::CommissionAccrued {
                amount, commission, ..
            } => {
                add(&mut self.payments, 1);
                add(&mut self.volume_paise, amount.0);
                add(&mut self.commission_paise, commission.0);
            }
            WalletEvent::CommissionReversed { commission, .. } => {
                add(&mut self.commission_reversed_paise, commission.0)
            }
            WalletEvent::CommissionPaidOut { amount, .. } => {
                add(&mut self.payouts, 1);
                add(&mut self.payouts_paise, amount.0);
            }
            WalletEvent::PayoutReversed {
                amount,
                was_paid_out: true,
                ..
            } => add(&mut self.payouts_reversed_paise, amount.0),
            WalletEvent::ManualSettlementRecorded { amount, .. } => {
                add(&mut self.settled_paise, amount.0)
            }
            WalletEvent::PayoutReversed { .. } | WalletEvent::PayoutRequested { .. } => {}
        }
    }
}

/// Adds a batch's sums to the stored days, in one statement.
async fn add_days(
    conn: &mut PgConnection,
    schema: &str,
    days: &BTreeMap<(NaiveDate, Uuid), CommissionDay>,
) -> Result<(), ProjectionError> {
    let rows: Vec<&CommissionDay> = days.values().collect();
    add_counts(conn, schema, "commission_daily", "day, merchant_id", &rows).await
}

/// Which days to report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyFilter {
    /// Only this merchant.
    pub merchant_id: Option<Uuid>,
    /// From this IST day, inclusive.
    pub from: Option<NaiveDate>,
    /// Up to this IST day, inclusive.
    pub to: Option<NaiveDate>,
}

/// Commission per IST day and merchant, newest day first (at most 1 000 rows).
pub async fn daily(
    pool: &PgPool,
    filter: &DailyFilter,
) -> Result<Vec<CommissionDay>, ProjectionError> {
    let rows: Vec<Json<CommissionDay>> = sqlx::query_scalar(
        "SELECT to_jsonb(c) FROM read.commission_daily c
          WHERE ($1::uuid IS NULL OR merchant_id = $1)
            AND ($2::date IS NULL OR day >= $2)
            AND ($3::date IS NULL OR day <= $3)
          ORDER BY day DESC, merchant_id
          LIMIT 1000",
    )
    .persistent(false)
    .bind(filter.merchant_id)
    .bind(filter.from)
    .bind(filter.to)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("commission", e))?;
    Ok(rows.into_iter().map(|Json(row)| row).collect())
}

/// Which ledger entries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerFilter {
    /// Only this merchant.
    pub merchant_id: Option<Uuid>,
    /// Only this entry type (`COMMISSION`, `COMMISSION_REVERSED`, `COMMISSION_PAYOUT`,
    /// `PAYOUT_REVERSED`, `MANUAL_SETTLEMENT`).
    pub entry_type: Option<String>,
    /// Facts at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Facts before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Rows per step (1 to 200).
    pub limit: u32,
}

/// The wallet entries ledger, newest first; `cursor` is a previous step's `next_cursor`.
pub async fn ledger(
    pool: &PgPool,
    filter: &LedgerFilter,
    cursor: Option<&str>,
) -> Result<CursorPage<WalletEntry>, ProjectionError> {
    let limit = checked_limit(filter.limit)?;
    let before: Option<i64> = cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ProjectionError::InvalidQuery(format!("bad ledger cursor {c:?}")))
        })
        .transpose()?;
    if let Some(entry_type) = &filter.entry_type
        && ![
            "COMMISSION",
            "COMMISSION_REVERSED",
            "COMMISSION_PAYOUT",
            "PAYOUT_REVERSED",
            "MANUAL_SETTLEMENT",
        ]
        .contains(&entry_type.as_str())
    {
        return Err(ProjectionError::InvalidQuery(format!(
            "unknown entry type {entry_type:?}"
        )));
    }
    let rows: Vec<Json<WalletEntry>> = sqlx::query_scalar(
        "SELECT to_jsonb(e) FROM read.wallet_entries e
          WHERE ($1::uuid IS NULL OR merchant_id = $1)
            AND ($2::text IS NULL OR entry_type = $2)
            AND ($3::timestamptz IS NULL OR occurred_at >= $3)
            AND ($4::timestamptz IS NULL OR occurred_at < $4)
            AND ($5::bigint IS NULL OR log_position < $5)
          ORDER BY log_position DESC
          LIMIT $6",
    )
    .persistent(false)
    .bind(filter.merchant_id)
    .bind(&filter.entry_type)
    .bind(filter.from)
    .bind(filter.to)
    .bind(before)
    .bind(limit + 1)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("wallets", e))?;
    let rows = rows.into_iter().map(|Json(row)| row).collect();
    Ok(CursorPage::from_fetch(
        rows,
        limit,
        |entry: &WalletEntry| entry.log_position.to_string(),
    ))
}
