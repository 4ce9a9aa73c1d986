//! Wallet balances per merchant and the wallet entries ledger.
//!
//! - `read.wallet_balances`: one row per merchant: commission accrued, commission reversed by
//!   refunds, paid out, reversed, settled, pending payouts, balance due, last payout,
//!   thresholds, standing and whether new payments are refused (`suspended`), payments
//!   succeeded and their volume. Balance due = accrued − commission reversed − paid out +
//!   reversed − settled, exactly as the wallet decider computes it. The auditor tool relies on
//!   these column names.
//! - `read.wallet_entries`: one row per money fact: `COMMISSION` (per payment),
//!   `COMMISSION_REVERSED` (per refund that reversed commission), `COMMISSION_PAYOUT` (per
//!   payout paid out), `PAYOUT_REVERSED` (per payout reversed; its balance effect is zero when
//!   the payout had not been paid out), `MANUAL_SETTLEMENT` (per settlement event). Unique per
//!   type and payment, refund, payout or settlement event.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lightspeed_domain::merchant::MerchantEvent;
use lightspeed_domain::standing::{MerchantStatus, Thresholds};
use lightspeed_domain::standing::{Standing, standing};
use lightspeed_domain::wallet::WalletEvent;
use lightspeed_domain::{Decider, Merchant, Paise, Wallet};
use lightspeed_eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::pagination::{Page, PageRequest, escape_like, into_page};
use crate::projection::{
    Projection, RowCache, decode, insert_rows, position_i64, serde_name, stream_uuid,
};

/// The wallets projection (`wallet_balances`, `wallet_entries`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Wallets;

/// One merchant's wallet, as `read.wallet_balances` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletBalance {
    /// The merchant.
    pub merchant_id: Uuid,
    /// The merchant's company name, once onboarded.
    pub company_name: Option<String>,
    /// `active`, `suspended` or `closed` (the status set by ops).
    pub merchant_status: String,
    /// Total commission accrued.
    pub commission_accrued_paise: i64,
    /// Total commission reversed by refunds.
    pub commission_reversed_paise: i64,
    /// Total paid out.
    pub paid_out_paise: i64,
    /// Total restored by reversals of paid-out payouts.
    pub reversed_paise: i64,
    /// Total settled manually.
    pub settled_paise: i64,
    /// Reserved by payouts requested and not yet paid out or reversed.
    pub pending_payouts_paise: i64,
    /// What the merchant owes: accrued − commission reversed − paid out + reversed − settled
    /// (below zero: a credit).
    pub balance_due_paise: i64,
    /// Balance due not reserved by pending payouts.
    pub available_paise: i64,
    /// Payments that succeeded (one commission each).
    pub payments_succeeded: i64,
    /// Their total amount.
    pub volume_paise: i64,
    /// When the last payout was paid out.
    pub last_payout_at: Option<DateTime<Utc>>,
    /// Its amount.
    pub last_payout_paise: Option<i64>,
    /// Balance due from which new payments are refused.
    pub suspend_at_paise: i64,
    /// Balance due from which the merchant is warned.
    pub warn_at_paise: i64,
    /// Smallest balance the automatic payout collects.
    pub auto_payout_minimum_paise: i64,
    /// `good`, `warn` or `suspended`, from the balance due and the thresholds.
    pub standing: String,
    /// True when new payments are refused: suspended or closed by ops, or balance due at or
    /// above the suspend threshold.
    pub suspended: bool,
    /// When the last event changing this row happened.
    pub updated_at: DateTime<Utc>,
}

/// One fact of the wallet entries ledger, as `read.wallet_entries` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletEntry {
    /// `COMMISSION`, `COMMISSION_REVERSED`, `COMMISSION_PAYOUT`, `PAYOUT_REVERSED` or
    /// `MANUAL_SETTLEMENT`.
    pub entry_type: String,
    /// The payment (commission), the refund (reversal), the payout, or the settlement's event
    /// id.
    pub source_id: Uuid,
    /// The merchant.
    pub merchant_id: Uuid,
    /// The amount of the fact (always positive).
    pub amount_paise: i64,
    /// How it moved the balance due (commission +, commission reversed −, payout −, reversal of
    /// a paid-out payout +, settlement −, reversal of a pending payout 0).
    pub balance_effect_paise: i64,
    /// For a commission: the payment's amount; for a commission reversal: the refund's.
    pub payment_amount_paise: Option<i64>,
    /// For a commission: the fee applied, in basis points.
    pub fee_bps: Option<i32>,
    /// The payout or settlement reference; for a commission reversal, the refunded payment.
    pub reference: Option<String>,
    /// Why a payout was reversed (and the provider's detail), or the settlement note.
    pub detail: Option<String>,
    /// When the fact happened.
    pub occurred_at: DateTime<Utc>,
    /// The event's global log position (the ledger's order and cursor).
    pub log_position: i64,
}

const DDL: &str = "
CREATE TABLE {s}.wallet_balances (
    merchant_id                uuid PRIMARY KEY,
    company_name               text,
    merchant_status            text NOT NULL,
    commission_accrued_paise   bigint NOT NULL,
    commission_reversed_paise  bigint NOT NULL,
    paid_out_paise             bigint NOT NULL,
    reversed_paise             bigint NOT NULL,
    settled_paise              bigint NOT NULL,
    pending_payouts_paise      bigint NOT NULL,
    balance_due_paise          bigint NOT NULL,
    available_paise            bigint NOT NULL,
    payments_succeeded         bigint NOT NULL,
    volume_paise               bigint NOT NULL,
    last_payout_at             timestamptz,
    last_payout_paise          bigint,
    suspend_at_paise           bigint NOT NULL,
    warn_at_paise              bigint NOT NULL,
    auto_payout_minimum_paise  bigint NOT NULL,
    standing                   text NOT NULL,
    suspended                  boolean NOT NULL,
    updated_at                 timestamptz NOT NULL
);
CREATE INDEX ON {s}.wallet_balances (balance_due_paise DESC, merchant_id);
CREATE TABLE {s}.wallet_entries (
    entry_type            text NOT NULL CHECK (entry_type IN
                              ('COMMISSION', 'COMMISSION_REVERSED', 'COMMISSION_PAYOUT',
                               'PAYOUT_REVERSED', 'MANUAL_SETTLEMENT')),
    source_id             uuid NOT NULL,
    merchant_id           uuid NOT NULL,
    amount_paise          bigint NOT NULL,
    balance_effect_paise  bigint NOT NULL,
    payment_amount_paise  bigint,
    fee_bps               integer,
    reference             text,
    detail                text,
    occurred_at           timestamptz NOT NULL,
    log_position          bigint NOT NULL UNIQUE,
    PRIMARY KEY (entry_type, source_id)
);
CREATE INDEX ON {s}.wallet_entries (merchant_id, log_position DESC);
CREATE INDEX ON {s}.wallet_entries (occurred_at);
";

impl Projection for Wallets {
    fn name(&self) -> &'static str {
        "wallets"
    }

    fn layout(&self) -> i32 {
        2
    }

    fn categories(&self) -> Option<&'static [&'static str]> {
        Some(&[
            <Merchant as Decider>::CATEGORY,
            <Wallet as Decider>::CATEGORY,
        ])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["wallet_balances", "wallet_entries"]
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

/// A wallet-relevant fact, decoded.
enum Fact {
    Merchant(Box<MerchantEvent>),
    Wallet(WalletEvent),
}

async fn apply(
    conn: &mut PgConnection,
    schema: &str,
    events: &[RecordedEvent],
    rows: &mut RowCache,
) -> Result<(), ProjectionError> {
    let mut facts = Vec::with_capacity(events.len());
    for event in events {
        let fact = match event.stream_id.category() {
            "wallet" => Fact::Wallet(decode(event)?),
            "merchant" if is_wallet_relevant(&event.event_type) => {
                Fact::Merchant(Box::new(decode(event)?))
            }
            _ => continue,
        };
        facts.push((stream_uuid(event)?, event, fact));
    }
    let balances = rows
        .load(
            conn,
            schema,
            "wallet_balances",
            "merchant_id",
            // A balance is made by whichever fact comes first, on top of any stored one.
            facts
                .iter()
                .map(|(merchant_id, _, _)| (*merchant_id, false)),
            |row: &WalletBalance| row.merchant_id,
        )
        .await?;
    let mut entries = Vec::new();
    for (merchant_id, event, fact) in &facts {
        let balance = balances.get_or_insert_with(*merchant_id, || {
            WalletBalance::new(*merchant_id, event.recorded_at)
        });
        match fact {
            Fact::Merchant(merchant_event) => balance.apply_merchant(merchant_event),
            Fact::Wallet(wallet_event) => {
                balance.apply_wallet(wallet_event);
                entries.extend(wallet_entry(*merchant_id, event, wallet_event));
            }
        }
    }
    insert_rows(conn, schema, "wallet_entries", &entries).await
}

fn is_wallet_relevant(event_type: &str) -> bool {
    matches!(
        event_type,
        "MerchantOnboarded"
            | "MerchantProfileUpdated"
            | "MerchantThresholdsChanged"
            | "MerchantSuspended"
            | "MerchantReactivated"
            | "MerchantClosed"
    )
}

fn status_name(status: MerchantStatus) -> &'static str {
    match status {
        MerchantStatus::Active => "active",
        MerchantStatus::Suspended => "suspended",
        MerchantStatus::Closed => "closed",
    }
}

fn standing_name(standing: Standing) -> &'static str {
    match standing {
        Standing::Good => "good",
        Standing::Warn => "warn",
        Standing::Suspended => "suspended",
    }
}

impl WalletBalance {
    /// An empty wallet with the default thresholds, until the merchant's own are seen.
    fn new(merchant_id: Uuid, at: DateTime<Utc>) -> Self {
        let thresholds = Thresholds::default();
        let mut balance = Self {
            merchant_id,
            company_name: None,
            merchant_status: status_name(MerchantStatus::Active).into(),
            commission_accrued_paise: 0,
            commission_reversed_paise: 0,
            paid_out_paise: 0,
            reversed_paise: 0,
            settled_paise: 0,
            pending_payouts_paise: 0,
            balance_due_paise: 0,
            available_paise: 0,
            payments_succeeded: 0,
            volume_paise: 0,
            last_payout_at: None,
            last_payout_paise: None,
            suspend_at_paise: thresholds.suspend_at.0,
            warn_at_paise: thresholds.warn_at.0,
            auto_payout_minimum_paise: thresholds.auto_payout_minimum.0,
            standing: String::new(),
            suspended: false,
            updated_at: at,
        };
        balance.derive();
        balance
    }

    fn thresholds(&self) -> Thresholds {
        Thresholds {
            suspend_at: Paise(self.suspend_at_paise),
            warn_at: Paise(self.warn_at_paise),
            auto_payout_minimum: Paise(self.auto_payout_minimum_paise),
        }
    }

    /// Recomputes the columns that follow from the others, with the domain's own rules.
    fn derive(&mut self) {
        let balance_due = Paise(self.commission_accrued_paise)
            .saturating_sub(Paise(self.commission_reversed_paise))
            .saturating_sub(Paise(self.paid_out_paise))
            .saturating_add(Paise(self.reversed_paise))
            .saturating_sub(Paise(self.settled_paise));
        self.balance_due_paise = balance_due.0;
        self.available_paise = balance_due
            .saturating_sub(Paise(self.pending_payouts_paise))
            .0;
        let standing = standing(balance_due, &self.thresholds());
        self.standing = standing_name(standing).into();
        self.suspended = self.merchant_status != status_name(MerchantStatus::Active)
            || standing == Standing::Suspended;
    }

    fn apply_merchant(&mut self, event: &MerchantEvent) {
        match event {
            MerchantEvent::MerchantOnboarded {
                company_name,
                thresholds,
                ..
            } => {
                self.company_name = Some(company_name.clone());
                self.set_thresholds(thresholds);
            }
            MerchantEvent::MerchantProfileUpdated { company_name, .. } => {
                self.company_name = Some(company_name.clone())
            }
            MerchantEvent::MerchantThresholdsChanged { thresholds, .. } => {
                self.set_thresholds(thresholds)
            }
            MerchantEvent::MerchantSuspended { .. } => {
                self.merchant_status = status_name(MerchantStatus::Suspended).into()
            }
            MerchantEvent::MerchantReactivated { .. } => {
                self.merchant_status = status_name(MerchantStatus::Active).into()
            }
            MerchantEvent::MerchantClosed { .. } => {
                self.merchant_status = status_name(MerchantStatus::Closed).into()
            }
            _ => return,
        }
        self.updated_at = event.at();
        self.derive();
    }

    fn set_thresholds(&mut self, thresholds: &Thresholds) {
        self.suspend_at_paise = thresholds.suspend_at.0;
        self.warn_at_paise = thresholds.warn_at.0;
        self.auto_payout_minimum_paise = thresholds.auto_payout_minimum.0;
    }

    /// Applies a wallet event to the balance.
    fn apply_wallet(&mut self, event: &WalletEvent) {
        let add = |total: i64, amount: Paise| Paise(total).saturating_add(amount).0;
        let sub = |total: i64, amount: Paise| Paise(total).saturating_sub(amount).0;
        match event {
            WalletEvent::CommissionAccrued {
                amount, commission, ..
            } => {
                self.commission_accrued_paise = add(self.commission_accrued_paise, *commission);
                self.payments_succeeded = self.payments_succeeded.saturating_add(1);
                self.volume_paise = add(self.volume_paise, *amount);
            }
            WalletEvent::CommissionReversed { commission, .. } => {
                self.commission_reversed_paise = add(self.commission_reversed_paise, *commission);
            }
            WalletEvent::PayoutRequested { amount, .. } => {
                self.pending_payouts_paise = add(self.pending_payouts_paise, *amount);
            }
            WalletEvent::CommissionPaidOut { amount, at, .. } => {
                self.pending_payouts_paise = sub(self.pending_payouts_paise, *amount);
                self.paid_out_paise = add(self.paid_out_paise, *amount);
                self.last_payout_at = Some(*at);
                self.last_payout_paise = Some(amount.0);
            }
            WalletEvent::PayoutReversed {
                amount,
                was_paid_out,
                ..
            } => {
                if *was_paid_out {
                    self.reversed_paise = add(self.reversed_paise, *amount);
                } else {
                    self.pending_payouts_paise = sub(self.pending_payouts_paise, *amount);
                }
            }
            WalletEvent::ManualSettlementRecorded { amount, .. } => {
                self.settled_paise = add(self.settled_paise, *amount);
            }
        }
        self.updated_at = event.at();
        self.derive();
    }
}

/// What every line a wallet event records shares: whose, when, and where in the log.
struct EntryOrigin {
    merchant_id: Uuid,
    occurred_at: DateTime<Utc>,
    log_position: i64,
}

impl EntryOrigin {
    /// A line without the details only some types carry.
    fn line(&self, entry_type: &str, source_id: Uuid, amount: Paise, effect: i64) -> WalletEntry {
        WalletEntry {
            entry_type: entry_type.into(),
            source_id,
            merchant_id: self.merchant_id,
            amount_paise: amount.0,
            balance_effect_paise: effect,
            payment_amount_paise: None,
            fee_bps: None,
            reference: None,
            detail: None,
            occurred_at: self.occurred_at,
            log_position: self.log_position,
        }
    }
}

/// The line of `wallet_entries` a wallet event of `merchant_id` records, if any.
fn wallet_entry(
    merchant_id: Uuid,
    recorded: &RecordedEvent,
    event: &WalletEvent,
) -> Option<WalletEntry> {
    let origin = EntryOrigin {
        merchant_id,
        occurred_at: event.at(),
        log_position: position_i64(recorded),
    };
    match event {
        WalletEvent::CommissionAccrued {
            payment_id,
            amount,
            fee,
            commission,
            ..
        } => Some(WalletEntry {
            payment_amount_paise: Some(amount.0),
            fee_bps: Some(i32::try_from(fee.bps()).unwrap_or(i32::MAX)),
            ..origin.line("COMMISSION", payment_id.0, *commission, commission.0)
        }),
        WalletEvent::CommissionReversed {
            payment_id,
            refund_id,
            refund_amount,
            commission,
            ..
        } => Some(WalletEntry {
            payment_amount_paise: Some(refund_amount.0),
            reference: Some(payment_id.to_string()),
            // Reversals come from refunds requested through us, whose ids are UUIDs.
            ..origin.line(
                "COMMISSION_REVERSED",
                refund_id.parse().unwrap_or(recorded.event_id),
                *commission,
                -commission.0,
            )
        }),
        WalletEvent::PayoutRequested { .. } => None,
        WalletEvent::CommissionPaidOut {
            payout_id,
            amount,
            reference,
            ..
        } => Some(WalletEntry {
            reference: Some(reference.clone()),
            ..origin.line("COMMISSION_PAYOUT", payout_id.0, *amount, -amount.0)
        }),
        WalletEvent::PayoutReversed {
            payout_id,
            amount,
            was_paid_out,
            reason,
            detail,
            ..
        } => {
            // Paid out, the reversal gives the amount back to the balance due; still pending, it
            // only releases the hold.
            let effect = if *was_paid_out { amount.0 } else { 0 };
            Some(WalletEntry {
                detail: Some(format!("{}: {detail}", serde_name(reason))),
                ..origin.line("PAYOUT_REVERSED", payout_id.0, *amount, effect)
            })
        }
        WalletEvent::ManualSettlementRecorded {
            reference,
            amount,
            note,
            ..
        } => Some(WalletEntry {
            reference: Some(reference.clone()),
            detail: Some(note.clone()),
            ..origin.line("MANUAL_SETTLEMENT", recorded.event_id, *amount, -amount.0)
        }),
    }
}

/// Which wallets to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletFilter {
    /// Only this merchant.
    pub merchant_id: Option<Uuid>,
    /// Only wallets whose merchant may (false) or may not (true) take payments.
    pub suspended: Option<bool>,
    /// Only this standing: `good`, `warn` or `suspended`.
    pub standing: Option<String>,
    /// Only wallets owing at least this much.
    pub min_balance_due_paise: Option<i64>,
    /// Company name contains this (case-insensitive).
    pub q: Option<String>,
}

/// Wallets matching `filter`, largest balance due first.
pub async fn list(
    pool: &PgPool,
    filter: &WalletFilter,
    page: PageRequest,
) -> Result<Page<WalletBalance>, ProjectionError> {
    let (limit, offset) = page.limit_offset()?;
    if let Some(standing) = &filter.standing
        && !["good", "warn", "suspended"].contains(&standing.as_str())
    {
        return Err(ProjectionError::InvalidQuery(format!(
            "standing must be good, warn or suspended, not {standing:?}"
        )));
    }
    let rows: Vec<(Json<WalletBalance>, i64)> = sqlx::query_as(
        "SELECT to_jsonb(w), count(*) OVER () FROM read.wallet_balances w
          WHERE ($1::uuid IS NULL OR merchant_id = $1)
            AND ($2::boolean IS NULL OR suspended = $2)
            AND ($3::text IS NULL OR standing = $3)
            AND ($4::bigint IS NULL OR balance_due_paise >= $4)
            AND ($5::text IS NULL OR company_name ILIKE '%' || $5 || '%')
          ORDER BY balance_due_paise DESC, merchant_id
          LIMIT $6 OFFSET $7",
    )
    .persistent(false)
    .bind(filter.merchant_id)
    .bind(filter.suspended)
    .bind(&filter.standing)
    .bind(filter.min_balance_due_paise)
    .bind(filter.q.as_deref().map(escape_like))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
    .map_err(|e| ProjectionError::from_read("wallets", e))?;
    Ok(into_page(rows, page))
}

/// One merchant's wallet, if it has one.
pub async fn get(
    pool: &PgPool,
    merchant_id: Uuid,
) -> Result<Option<WalletBalance>, ProjectionError> {
    let row: Option<Json<WalletBalance>> =
        sqlx::query_scalar("SELECT to_jsonb(w) FROM read.wallet_balances w WHERE merchant_id = $1")
            .bind(merchant_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| ProjectionError::from_read("wallets", e))?;
    Ok(row.map(|Json(row)| row))
}
