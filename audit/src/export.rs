//! `audit export`: the log, its row hashes and its seals, streamed into one self-contained file.

use std::io::Write;

use chrono::{DateTime, Utc};
use indicatif::ProgressBar;
use lightspeed_eventstore::LogPosition;
use lightspeed_eventstore::hash::canonical_json;
use lightspeed_eventstore::seal::{Seal, load_seals};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::error::AuditError;
use crate::format::{
    EventOut, FORMAT_NAME, FORMAT_VERSION, Header, MetaLine, SealRecord, Trailer, write_event_line,
};

/// Events read from PostgreSQL per query (the log's own read limit).
pub const EXPORT_BATCH: i64 = lightspeed_eventstore::limits::MAX_READ_BATCH as i64;

/// zstd level of exports: fast to write, and far faster to read than to write.
pub const COMPRESSION_LEVEL: i32 = 3;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The header written (its counts are the file's).
    pub header: Header,
    /// The earliest recording instant among the events written.
    pub first_recorded_at: Option<DateTime<Utc>>,
    /// The latest recording instant among the events written.
    pub last_recorded_at: Option<DateTime<Utc>>,
}

/// Writes the log to `out` as a zstd-compressed audit file; answers what it wrote and `out`.
///
/// The file holds, in read order, every event up to a cut fixed when the export starts:
/// - without `until`, the last event a gap-safe reader sees then;
/// - with `until`, every event recorded at or before `until` (in the order of the log, an event
///   recorded later may come before one recorded earlier, when its transaction began first):
///   the cut is the last such event, moved on to the end of the seal covering it, so every
///   event of the file that the chain seals is covered by a whole seal. The events after `until`
///   that this keeps are in the file but never counted by `audit commission`, whose `--as-of`
///   defaults to `until`.
///
/// Seals are those whose range ends at or before the cut; events after the last of them are
/// checked by hash and order only, as in the database.
pub async fn export_log<W: Write>(
    pool: &PgPool,
    until: Option<DateTime<Utc>>,
    out: W,
    progress: &ProgressBar,
) -> Result<(ExportSummary, W), AuditError> {
    let mut out =
        zstd::stream::write::Encoder::new(out, COMPRESSION_LEVEL).map_err(AuditError::Output)?;
    let summary = export_lines(pool, until, &mut out, progress).await?;
    let out = out.finish().map_err(AuditError::Output)?;
    Ok((summary, out))
}

/// Writes the lines of an audit file, uncompressed, to `out` (see [`export_log`]).
pub(crate) async fn export_lines(
    pool: &PgPool,
    until: Option<DateTime<Utc>>,
    out: &mut impl Write,
    progress: &ProgressBar,
) -> Result<ExportSummary, AuditError> {
    let exported_at = Utc::now();
    let seals = load_seals(pool).await?;
    let end = cut(pool, until, &seals).await?;
    let seals: Vec<&Seal> = match end {
        Some(end) => seals.iter().filter(|s| s.last <= end).collect(),
        None => Vec::new(),
    };
    let events = match end {
        Some(end) => count_until(pool, end).await?,
        None => 0,
    };
    let header = Header {
        format: FORMAT_NAME.to_owned(),
        format_version: FORMAT_VERSION,
        exported_at,
        until,
        end,
        events,
        seals: seals.len() as u64,
    };
    progress.set_length(events);

    let mut buf = Vec::with_capacity(8 << 20);
    write_meta(&mut buf, &MetaLine::Header(header.clone()))?;
    for seal in &seals {
        write_meta(&mut buf, &MetaLine::Seal(SealRecord::from_seal(seal)))?;
    }
    out.write_all(&buf).map_err(AuditError::Output)?;

    let mut summary = ExportSummary {
        header,
        first_recorded_at: None,
        last_recorded_at: None,
    };
    let mut written = 0u64;
    if let Some(end) = end {
        let mut batch = read_batch(pool.clone(), LogPosition::START, end).await?;
        while let Some(last) = batch.last() {
            let last = read_position(last)?;
            // Read the next batch while this one is encoded and compressed.
            let next = tokio::spawn(read_batch(pool.clone(), last, end));
            buf.clear();
            for row in &batch {
                let recorded_at = encode_row(row, &mut buf)?;
                summary.first_recorded_at = Some(
                    summary
                        .first_recorded_at
                        .map_or(recorded_at, |t| t.min(recorded_at)),
                );
                summary.last_recorded_at = Some(
                    summary
                        .last_recorded_at
                        .map_or(recorded_at, |t| t.max(recorded_at)),
                );
            }
            out.write_all(&buf).map_err(AuditError::Output)?;
            written += batch.len() as u64;
            progress.inc(batch.len() as u64);
            batch = next
                .await
                .map_err(|e| AuditError::Interrupted(format!("the export's reader: {e}")))??;
        }
    }
    if written != summary.header.events {
        return Err(AuditError::Interrupted(format!(
            "counted {} events up to {:?} but read {written}",
            summary.header.events, summary.header.end
        )));
    }
    buf.clear();
    write_meta(
        &mut buf,
        &MetaLine::End(Trailer {
            events: written,
            seals: summary.header.seals,
        }),
    )?;
    out.write_all(&buf).map_err(AuditError::Output)?;
    progress.finish();
    Ok(summary)
}

fn write_meta(buf: &mut Vec<u8>, line: &MetaLine) -> Result<(), AuditError> {
    serde_json::to_writer(&mut *buf, line)
        .map_err(|e| AuditError::Output(std::io::Error::other(e)))?;
    buf.push(b'\n');
    Ok(())
}

/// The last event the export holds (see [`export_log`]).
async fn cut(
    pool: &PgPool,
    until: Option<DateTime<Utc>>,
    seals: &[Seal],
) -> Result<Option<LogPosition>, AuditError> {
    let row = sqlx::query(
        "SELECT transaction_id::text AS tx, position FROM ledger.events
          WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
            AND ($1::timestamptz IS NULL OR recorded_at <= $1)
          ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .bind(until)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let target = read_position(&row)?;
    if until.is_none() {
        return Ok(Some(target));
    }
    let covering = seals
        .iter()
        .find(|seal| seal.first <= target && target <= seal.last);
    Ok(Some(covering.map_or(target, |seal| seal.last)))
}

async fn count_until(pool: &PgPool, end: LogPosition) -> Result<u64, AuditError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ledger.events
          WHERE (transaction_id, position) <= ($1::text::xid8, $2)",
    )
    .bind(end.transaction_id.to_string())
    .bind(to_i64(end.position))
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

async fn read_batch(
    pool: PgPool,
    after: LogPosition,
    end: LogPosition,
) -> Result<Vec<PgRow>, AuditError> {
    let rows = sqlx::query(
        "SELECT transaction_id::text AS tx, position, event_id, stream_id, stream_version,
                event_type, schema_version, payload, metadata, recorded_at, row_hash
           FROM ledger.events
          WHERE (transaction_id, position) > ($1::text::xid8, $2)
            AND (transaction_id, position) <= ($3::text::xid8, $4)
          ORDER BY transaction_id, position LIMIT $5",
    )
    .bind(after.transaction_id.to_string())
    .bind(to_i64(after.position))
    .bind(end.transaction_id.to_string())
    .bind(to_i64(end.position))
    .bind(EXPORT_BATCH)
    .fetch_all(&pool)
    .await?;
    Ok(rows)
}

/// Appends one row as an event line; answers its recording instant.
fn encode_row(row: &PgRow, buf: &mut Vec<u8>) -> Result<DateTime<Utc>, AuditError> {
    let log_position = read_position(row)?;
    let bad = |why: String| AuditError::Undecodable {
        position: log_position.position,
        why,
    };
    let payload: serde_json::Value = row.try_get("payload")?;
    let metadata: serde_json::Value = row.try_get("metadata")?;
    let payload = canonical_json(&payload).map_err(|e| bad(e.to_string()))?;
    let metadata = canonical_json(&metadata).map_err(|e| bad(e.to_string()))?;
    let stream_id: String = row.try_get("stream_id")?;
    let event_type: String = row.try_get("event_type")?;
    let row_hash: Vec<u8> = row.try_get("row_hash")?;
    let recorded_at: DateTime<Utc> = row.try_get("recorded_at")?;
    write_event_line(
        buf,
        &EventOut {
            log_position,
            event_id: row.try_get("event_id")?,
            stream_id: &stream_id,
            stream_version: u64::try_from(row.try_get::<i64, _>("stream_version")?)
                .map_err(|e| bad(e.to_string()))?,
            event_type: &event_type,
            schema_version: u16::try_from(row.try_get::<i16, _>("schema_version")?)
                .map_err(|e| bad(e.to_string()))?,
            recorded_at,
            row_hash: row_hash
                .try_into()
                .map_err(|_| bad("row hash is not 32 bytes".into()))?,
            payload: &payload,
            metadata: &metadata,
        },
    );
    Ok(recorded_at)
}

/// The `tx` and `position` columns of a row as a log position.
pub(crate) fn read_position(row: &PgRow) -> Result<LogPosition, AuditError> {
    let tx: String = row.try_get("tx")?;
    let position: i64 = row.try_get("position")?;
    Ok(LogPosition {
        transaction_id: tx
            .parse()
            .map_err(|_| AuditError::Unreadable(format!("transaction id {tx:?}")))?,
        position: u64::try_from(position)
            .map_err(|_| AuditError::Unreadable(format!("position {position}")))?,
    })
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
