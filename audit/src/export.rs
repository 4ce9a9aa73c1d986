//! `audit export`: the log, its row hashes and its seals, streamed into one self-contained file.

use std::io::Write;

use chrono::{DateTime, Utc};
use indicatif::ProgressBar;
use lightspeed_eventstore::LogPosition;
use lightspeed_eventstore::audit_reads::{
    StoredEvent, count_through, events_between, last_position_until,
};
use lightspeed_eventstore::hash::canonical_json;
use lightspeed_eventstore::seal::{Seal, load_seals};
use sqlx::PgPool;

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
    let (header, seals) = plan(pool, until).await?;
    progress.set_length(header.events);
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
    let written = match summary.header.end {
        Some(end) => write_events(pool, end, out, &mut buf, progress, &mut summary).await?,
        None => 0,
    };
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

/// Fixes the export's cut and answers its header with the seals it covers.
async fn plan(
    pool: &PgPool,
    until: Option<DateTime<Utc>>,
) -> Result<(Header, Vec<Seal>), AuditError> {
    let exported_at = Utc::now();
    let seals = load_seals(pool).await?;
    let end = cut(pool, until, &seals).await?;
    let seals: Vec<Seal> = match end {
        Some(end) => seals.into_iter().filter(|s| s.last <= end).collect(),
        None => Vec::new(),
    };
    let events = match end {
        Some(end) => count_through(pool, end).await?,
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
    Ok((header, seals))
}

/// Writes every event up to `end` in batches; answers how many it wrote.
async fn write_events(
    pool: &PgPool,
    end: LogPosition,
    out: &mut impl Write,
    buf: &mut Vec<u8>,
    progress: &ProgressBar,
    summary: &mut ExportSummary,
) -> Result<u64, AuditError> {
    let mut written = 0u64;
    let mut batch = read_batch(pool.clone(), LogPosition::START, end).await?;
    while let Some(last) = batch.last() {
        let last = last.log_position;
        // Read the next batch while this one is encoded and compressed.
        let next = tokio::spawn(read_batch(pool.clone(), last, end));
        buf.clear();
        for event in &batch {
            let recorded_at = encode_event(event, buf)?;
            summary.saw(recorded_at);
        }
        out.write_all(buf).map_err(AuditError::Output)?;
        written += batch.len() as u64;
        progress.inc(batch.len() as u64);
        batch = next
            .await
            .map_err(|e| AuditError::Interrupted(format!("the export's reader: {e}")))??;
    }
    Ok(written)
}

impl ExportSummary {
    /// Widens the recorded-at range to include an event written.
    fn saw(&mut self, recorded_at: DateTime<Utc>) {
        self.first_recorded_at = Some(
            self.first_recorded_at
                .map_or(recorded_at, |t| t.min(recorded_at)),
        );
        self.last_recorded_at = Some(
            self.last_recorded_at
                .map_or(recorded_at, |t| t.max(recorded_at)),
        );
    }
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
    let Some(target) = last_position_until(pool, until).await? else {
        return Ok(None);
    };
    if until.is_none() {
        return Ok(Some(target));
    }
    let covering = seals
        .iter()
        .find(|seal| seal.first <= target && target <= seal.last);
    Ok(Some(covering.map_or(target, |seal| seal.last)))
}

async fn read_batch(
    pool: PgPool,
    after: LogPosition,
    end: LogPosition,
) -> Result<Vec<StoredEvent>, AuditError> {
    Ok(events_between(&pool, after, end, EXPORT_BATCH).await?)
}

/// Appends one event as an event line; answers its recording instant.
fn encode_event(event: &StoredEvent, buf: &mut Vec<u8>) -> Result<DateTime<Utc>, AuditError> {
    let bad = |why: String| AuditError::Undecodable {
        position: event.log_position.position,
        why,
    };
    let payload = canonical_json(&event.payload).map_err(|e| bad(e.to_string()))?;
    let metadata = canonical_json(&event.metadata).map_err(|e| bad(e.to_string()))?;
    write_event_line(
        buf,
        &EventOut {
            log_position: event.log_position,
            event_id: event.event_id,
            stream_id: &event.stream_id,
            stream_version: event.stream_version,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            row_hash: event.row_hash,
            payload: &payload,
            metadata: &metadata,
        },
    );
    Ok(event.recorded_at)
}
