//! `audit commission`: the commission replay over an audit file or the database, and, on the
//! database, the comparison with the live wallet read model.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lightspeed_domain::payment::Payment;
use lightspeed_domain::wallet::Wallet;
use lightspeed_domain::{Decider, MerchantId};
use lightspeed_eventstore::LogPosition;
use lightspeed_eventstore::audit_reads::{ReplaySelection, SelectedEvents};
use lightspeed_projections::wallet_audit::{WalletFigures, wallets_for_audit};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::AuditError;
use crate::file::AuditFile;
use crate::format::{EventLine, Header, LaidOut, is_end_line, parse_instant, scan_event_type};
use crate::replay::{
    CommissionReplay, Inconsistency, MerchantCommission, PAYMENT_TYPES, ReplayEvent, ReplayFilter,
    folds,
};
use crate::verify::{read_header, read_trailer};

/// Events read from PostgreSQL per batch.
const DB_BATCH: usize = lightspeed_eventstore::limits::MAX_READ_BATCH;

/// The events the replay folds, as the log selects them: every wallet event, and the payment
/// events that match successes with their merchants.
const REPLAYED: ReplaySelection<'static> = ReplaySelection {
    every_event_of: <Wallet as Decider>::CATEGORY,
    some_events_of: <Payment as Decider>::CATEGORY,
    event_types: &PAYMENT_TYPES,
};

/// What a commission replay found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommissionReport {
    /// The instant the figures are as of (`None`: the end of the log read).
    pub as_of: Option<DateTime<Utc>>,
    /// The merchant asked for, if only one.
    pub merchant: Option<MerchantId>,
    /// Events read.
    pub events_read: u64,
    /// Events folded into the figures and the matching of payments with commissions.
    pub events_applied: u64,
    /// Each merchant with wallet activity, by merchant id.
    pub merchants: Vec<MerchantCommission>,
    /// Where a payment's success and its wallet's commission disagree (there should be none).
    pub inconsistencies: Vec<Inconsistency>,
    /// The comparison with the live read model (database only).
    pub read_model: Option<ReadModelCheck>,
}

impl CommissionReport {
    /// Every merchant's figures added up (saturating).
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for m in &self.merchants {
            totals.payments_succeeded = totals
                .payments_succeeded
                .saturating_add(m.payments_succeeded);
            for (total, value) in [
                (&mut totals.volume_paise, m.volume_paise),
                (
                    &mut totals.commission_accrued_paise,
                    m.commission_accrued_paise,
                ),
                (
                    &mut totals.commission_reversed_paise,
                    m.commission_reversed_paise,
                ),
                (&mut totals.paid_out_paise, m.paid_out_paise),
                (&mut totals.reversed_paise, m.reversed_paise),
                (&mut totals.settled_paise, m.settled_paise),
                (&mut totals.pending_payouts_paise, m.pending_payouts_paise),
                (&mut totals.balance_due_paise, m.balance_due_paise),
            ] {
                *total = total.saturating_add(value);
            }
        }
        totals
    }

    /// True when the replay found nothing to report: no inconsistency between payments and
    /// wallets, and no difference with the read model.
    pub fn agrees(&self) -> bool {
        self.inconsistencies.is_empty() && self.differences().is_empty()
    }

    /// The differences with the read model, if it was compared.
    pub fn differences(&self) -> &[Difference] {
        match &self.read_model {
            Some(ReadModelCheck::Compared(comparison)) => &comparison.differences,
            _ => &[],
        }
    }
}

/// Every merchant's figures added up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Payments that succeeded.
    pub payments_succeeded: u64,
    /// Their total amount.
    pub volume_paise: lightspeed_domain::Paise,
    /// Commission accrued.
    pub commission_accrued_paise: lightspeed_domain::Paise,
    /// Commission reversed by refunds.
    pub commission_reversed_paise: lightspeed_domain::Paise,
    /// Paid out.
    pub paid_out_paise: lightspeed_domain::Paise,
    /// Restored by reversals of paid-out payouts.
    pub reversed_paise: lightspeed_domain::Paise,
    /// Settled manually.
    pub settled_paise: lightspeed_domain::Paise,
    /// Reserved by pending payouts.
    pub pending_payouts_paise: lightspeed_domain::Paise,
    /// Owed.
    pub balance_due_paise: lightspeed_domain::Paise,
}

/// Whether the replay was compared with the live read model, and what that showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadModelCheck {
    /// Compared at the read model's own checkpoint.
    Compared(ReadModelComparison),
    /// Not compared, and why.
    Skipped(String),
}

/// The replay against `read.wallet_balances`, at the read model's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadModelComparison {
    /// The last event the read model had applied; the replay was compared as of that event.
    pub checkpoint: LogPosition,
    /// The active version of the `wallets` projection.
    pub version: i32,
    /// Merchants compared.
    pub merchants: u64,
    /// Every figure that differs.
    pub differences: Vec<Difference>,
}

/// One figure on which the replay and the read model disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// The column of `read.wallet_balances`.
    pub field: String,
    /// What the replay of the events says.
    pub replay: i64,
    /// What the read model holds.
    pub read_model: i64,
}

/// Replays the commission from an audit file. `--as-of` defaults to the export's `--until`,
/// and may not lie after it.
pub fn replay_file(
    file: &mut AuditFile,
    filter: ReplayFilter,
) -> Result<CommissionReport, AuditError> {
    let header = read_header(file)?;
    let as_of = match (filter.as_of, header.until) {
        (Some(as_of), Some(until)) if as_of > until => {
            return Err(AuditError::AsOfAfterUntil { as_of, until });
        }
        (as_of, until) => as_of.or(until),
    };
    let mut replay = CommissionReplay::new(ReplayFilter { as_of, ..filter });
    skip_seals(file, header.seals)?;
    let events_read = replay_events(file, &header, &mut replay)?;
    Ok(CommissionReport {
        as_of,
        merchant: filter.merchant,
        events_read,
        events_applied: replay.applied(),
        merchants: replay.balances(),
        inconsistencies: replay.inconsistencies(),
        read_model: None,
    })
}

/// Steps over the export's seal lines, which the commission replay does not need.
fn skip_seals(file: &mut AuditFile, seals: u64) -> Result<(), AuditError> {
    for _ in 0..seals {
        match file.next_line()? {
            Some(line) if line.starts_with(br#"{"record":"seal""#) => {}
            Some(_) => {
                return Err(AuditError::format(
                    file.line_number(),
                    "expected a seal line",
                ));
            }
            None => {
                return Err(AuditError::Truncated(
                    "the file stops among its seals".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Folds every event line up to the trailer into `replay`; answers how many events were read.
fn replay_events(
    file: &mut AuditFile,
    header: &Header,
    replay: &mut CommissionReplay,
) -> Result<u64, AuditError> {
    let mut events_read = 0u64;
    loop {
        let line_number = file.line_number() + 1;
        let Some(line) = file.next_line()? else {
            return Err(AuditError::Truncated(format!(
                "no trailer after {events_read} events"
            )));
        };
        if let Some(event_type) = scan_event_type(line)
            && !std::str::from_utf8(event_type).is_ok_and(folds)
        {
            events_read += 1;
            continue;
        }
        if is_end_line(line) {
            let line = line.to_vec();
            read_trailer(file, header, &line, events_read)?;
            break;
        }
        events_read += 1;
        replay_line(line, line_number, replay)?;
    }
    Ok(events_read)
}

/// Folds one event line, read in the exporter's layout or, failing that, as JSON.
fn replay_line(
    line: &[u8],
    line_number: u64,
    replay: &mut CommissionReplay,
) -> Result<(), AuditError> {
    let bad = |why: String| AuditError::format(line_number, why);
    // The exporter's layout read directly; anything else through the JSON parser.
    if let Some(event) = LaidOut::read(line) {
        if !folds(event.event_type) {
            return Ok(());
        }
        replay.apply(&ReplayEvent {
            log_position: event.log_position,
            stream_id: event.stream_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            payload: std::str::from_utf8(event.payload).map_err(|e| bad(e.to_string()))?,
            recorded_at: parse_instant(event.recorded_at).map_err(bad)?,
        })?;
        return Ok(());
    }
    let event = EventLine::parse(line).map_err(bad)?;
    if !folds(&event.event_type) {
        return Ok(());
    }
    replay.apply(&ReplayEvent {
        log_position: event.log_position(),
        stream_id: &event.stream_id,
        event_type: &event.event_type,
        schema_version: event.schema_version,
        payload: event.payload.get(),
        recorded_at: event.recorded_at().map_err(bad)?,
    })?;
    Ok(())
}

/// Replays the commission from the database's log (wallet events, payment initiations and
/// successes), in one consistent snapshot; without
/// `as_of`, also compares it with the live wallet read model at that model's checkpoint.
pub async fn replay_database(
    pool: &PgPool,
    filter: ReplayFilter,
) -> Result<CommissionReport, AuditError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let read_model = match filter.as_of {
        Some(_) => Err("the live read model holds the present, not an earlier instant".to_owned()),
        None => live_read_model(&mut tx, filter.merchant).await?,
    };
    let checkpoint = read_model
        .as_ref()
        .ok()
        .map(|(checkpoint, _, _)| *checkpoint);
    let mut replay = CommissionReplay::new(filter);
    let mut at_checkpoint = None;
    let mut events_read = 0u64;
    let mut selected = SelectedEvents::new(&REPLAYED);
    loop {
        let events = selected.next_batch(&mut tx, DB_BATCH).await?;
        if events.is_empty() {
            break;
        }
        for event in &events {
            if let Some(checkpoint) = checkpoint
                && at_checkpoint.is_none()
                && event.log_position > checkpoint
            {
                at_checkpoint = Some(replay.balances());
            }
            events_read += 1;
            replay.apply(&ReplayEvent {
                log_position: event.log_position,
                stream_id: &event.stream_id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: &event.payload,
                recorded_at: event.recorded_at,
            })?;
        }
    }
    tx.rollback().await?;
    let merchants = replay.balances();
    let read_model = match read_model {
        Ok((checkpoint, version, rows)) => {
            let replayed = at_checkpoint.unwrap_or_else(|| merchants.clone());
            ReadModelCheck::Compared(compare(&replayed, &rows, checkpoint, version))
        }
        Err(reason) => ReadModelCheck::Skipped(reason),
    };
    Ok(CommissionReport {
        as_of: filter.as_of,
        merchant: filter.merchant,
        events_read,
        events_applied: replay.applied(),
        merchants,
        inconsistencies: replay.inconsistencies(),
        read_model: Some(read_model),
    })
}

/// One row of `read.wallet_balances`: the merchant and its [`COMPARED_COLUMNS`].
type ReadModelRow = (MerchantId, [i64; 9]);

/// The columns of `read.wallet_balances` the replay is compared on.
const COMPARED_COLUMNS: [&str; 9] = [
    "payments_succeeded",
    "volume_paise",
    "commission_accrued_paise",
    "commission_reversed_paise",
    "paid_out_paise",
    "reversed_paise",
    "settled_paise",
    "pending_payouts_paise",
    "balance_due_paise",
];

/// The wallets read model's checkpoint, active version and rows; `Err` says why there is none.
async fn live_read_model(
    conn: &mut sqlx::PgConnection,
    merchant: Option<MerchantId>,
) -> Result<Result<(LogPosition, i32, Vec<ReadModelRow>), String>, AuditError> {
    let Some(wallets) = wallets_for_audit(conn, merchant).await? else {
        return Ok(Err("no active version of the wallets projection".into()));
    };
    let rows = wallets.wallets.iter().map(compared_figures).collect();
    Ok(Ok((wallets.checkpoint, wallets.version, rows)))
}

/// A read-model row's merchant and figures, in the order of [`COMPARED_COLUMNS`].
fn compared_figures(row: &WalletFigures) -> ReadModelRow {
    (
        MerchantId(row.merchant_id),
        [
            row.payments_succeeded,
            row.volume_paise,
            row.commission_accrued_paise,
            row.commission_reversed_paise,
            row.paid_out_paise,
            row.reversed_paise,
            row.settled_paise,
            row.pending_payouts_paise,
            row.balance_due_paise,
        ],
    )
}

/// Every figure on which the replay and the read model differ; a merchant missing on one side
/// counts as all zeros there.
fn compare(
    replayed: &[MerchantCommission],
    rows: &[ReadModelRow],
    checkpoint: LogPosition,
    version: i32,
) -> ReadModelComparison {
    let mut merchants: BTreeMap<MerchantId, ([i64; 9], [i64; 9])> = BTreeMap::new();
    for m in replayed {
        merchants.entry(m.merchant_id).or_default().0 = m.figures().map(|(_, value)| value);
    }
    for (merchant, figures) in rows {
        merchants.entry(*merchant).or_default().1 = *figures;
    }
    let mut differences = Vec::new();
    for (merchant, (replay, read_model)) in &merchants {
        for (column, (ours, theirs)) in COMPARED_COLUMNS.iter().zip(replay.iter().zip(read_model)) {
            if ours != theirs {
                differences.push(Difference {
                    merchant_id: *merchant,
                    field: (*column).to_owned(),
                    replay: *ours,
                    read_model: *theirs,
                });
            }
        }
    }
    ReadModelComparison {
        checkpoint,
        version,
        merchants: merchants.len() as u64,
        differences,
    }
}
