//! The CSV form of a merchant's transactions: one line per payment, written cell by cell into
//! chunks of the streamed body, with no text made per cell but the timestamps.

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use lightspeed_projections::ProjectionError;
use lightspeed_projections::transactions::TransactionRow;

use crate::error::ApiError;

/// Rows written into one chunk of the body.
const CHUNK_ROWS: usize = 256;

const HEADER: [&str; 19] = [
    "transaction_id",
    "order_id",
    "amount_paise",
    "currency",
    "status",
    "partially_refunded",
    "refunded_paise",
    "refunds",
    "open_refunds",
    "gateway_id",
    "attempts",
    "psp_order_id",
    "psp_payment_id",
    "commission_paise",
    "failure_code",
    "failure_reason",
    "created_at",
    "succeeded_at",
    "failed_at",
];

/// The header, then the rows in chunks; a read failing midway ends the body short (the
/// status line is sent), which the client sees as a broken download.
pub(super) fn body(
    rows: impl Stream<Item = Result<TransactionRow, ProjectionError>> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, ApiError>> + Send + 'static {
    let header = futures::stream::once(async { chunk(|out| out.write_record(HEADER)) });
    let chunks = rows.ready_chunks(CHUNK_ROWS).map(|rows| {
        let rows = rows
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .inspect_err(|e| tracing::error!(error = %e, "transactions export cut short"))?;
        chunk(|out| rows.iter().try_for_each(|row| write_row(out, row)))
    });
    header.chain(chunks)
}

/// The bytes `write` puts through a CSV writer.
fn chunk(
    write: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>,
) -> Result<Bytes, ApiError> {
    let failed = |e: &dyn std::fmt::Display| ApiError::Internal(format!("cannot write CSV: {e}"));
    let mut out = csv::Writer::from_writer(Vec::with_capacity(CHUNK_ROWS * 256));
    write(&mut out).map_err(|e| failed(&e))?;
    out.into_inner().map(Bytes::from).map_err(|e| failed(&e))
}

fn write_row(out: &mut csv::Writer<Vec<u8>>, row: &TransactionRow) -> csv::Result<()> {
    let mut uuid = uuid::Uuid::encode_buffer();
    let mut number = itoa::Buffer::new();
    let partially_refunded = row.refunded_paise > 0 && row.refunded_paise < row.amount_paise;
    out.write_field(row.payment_id.hyphenated().encode_lower(&mut uuid))?;
    text(out, Some(&row.merchant_order_id))?;
    out.write_field(number.format(row.amount_paise))?;
    text(out, Some(&row.currency))?;
    out.write_field(&row.status)?;
    out.write_field(if partially_refunded { "true" } else { "false" })?;
    out.write_field(number.format(row.refunded_paise))?;
    out.write_field(number.format(row.refunds))?;
    out.write_field(number.format(row.open_refunds.len()))?;
    out.write_field(row.gateway_id.hyphenated().encode_lower(&mut uuid))?;
    out.write_field(number.format(row.attempts))?;
    text(out, row.psp_order_id.as_deref())?;
    text(out, row.psp_payment_id.as_deref())?;
    match row.commission_paise {
        Some(commission) => out.write_field(number.format(commission))?,
        None => out.write_field("")?,
    }
    text(out, row.failure_code.as_deref())?;
    text(out, row.failure_description.as_deref())?;
    instant(out, Some(row.initiated_at))?;
    instant(out, row.succeeded_at)?;
    instant(out, row.failed_at)?;
    out.write_record(None::<&[u8]>)
}

/// A text cell; one a spreadsheet would read as a formula gets a leading `'`.
fn text(out: &mut csv::Writer<Vec<u8>>, value: Option<&str>) -> csv::Result<()> {
    match value {
        Some(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
            out.write_field(format!("'{text}"))
        }
        Some(text) => out.write_field(text),
        None => out.write_field(""),
    }
}

fn instant(out: &mut csv::Writer<Vec<u8>>, at: Option<DateTime<Utc>>) -> csv::Result<()> {
    out.write_field(at.map(|at| at.to_rfc3339()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> TransactionRow {
        let at = DateTime::from_timestamp(1_795_774_500, 0).expect("instant");
        TransactionRow {
            payment_id: uuid::Uuid::from_u128(1),
            merchant_id: uuid::Uuid::from_u128(2),
            merchant_order_id: "=ORD,1".into(),
            amount_paise: 49_900,
            currency: "INR".into(),
            status: "succeeded".into(),
            gateway_id: uuid::Uuid::from_u128(3),
            attempts: 1,
            fee_bps: 250,
            commission_paise: Some(1_247),
            psp_order_id: Some("order_1".into()),
            psp_payment_id: None,
            failure_code: None,
            failure_description: Some("said \"no\"".into()),
            late_success: false,
            refunded_paise: 100,
            refunds: 1,
            open_refunds: vec!["r1".into()],
            initiated_at: at,
            succeeded_at: Some(at),
            failed_at: None,
            updated_at: at,
        }
    }

    #[test]
    fn a_row_is_one_line_of_nineteen_cells_defused_and_quoted() {
        let bytes = chunk(|out| write_row(out, &row())).expect("csv");
        assert_eq!(
            std::str::from_utf8(&bytes).expect("utf-8"),
            "00000000-0000-0000-0000-000000000001,\"'=ORD,1\",49900,INR,succeeded,true,100,1,1,\
             00000000-0000-0000-0000-000000000003,1,order_1,,1247,,\"said \"\"no\"\"\",\
             2026-11-27T10:15:00+00:00,2026-11-27T10:15:00+00:00,\n"
        );
    }
}
