//! `audit verify`: every row hash, the seal chain, per-stream version continuity and the read
//! order, over an audit file (with the event store's own [`LogVerifier`]) or the database.
//!
//! On a file, what the verifier reports first is sharpened by reading on where the file allows
//! it, so that the event or seal that was actually altered is the one named:
//! - a sealed event missing where expected is *removed* only if it does not turn up later;
//!   if it does, the two were *reordered*;
//! - a row repeated at its own position was *inserted* (a copy), not reordered;
//! - a sealed event whose row hash is right but disagrees with its seal's entry was *replaced*,
//!   unless the seal's own hash over the events as they are still holds: then the *seal* was
//!   altered;
//! - a broken link between two seals is blamed on the later seal only once the earlier one has
//!   been checked against its events.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

use chrono::{DateTime, Utc};
use indicatif::ProgressBar;
use lightspeed_eventstore::hash::SealHasher;
use lightspeed_eventstore::seal::Seal;
use lightspeed_eventstore::verify::{AuditRow, EventRef, LogVerifier, Tampering, VerifyReport};
use serde::Serialize;
use sqlx::PgPool;

use crate::error::AuditError;
use crate::export::export_lines;
use crate::file::{AuditFile, Prepare, RowFields};
use crate::format::{
    EventLine, FORMAT_NAME, FORMAT_VERSION, Header, MetaLine, is_end_line, locate_event,
};

/// What a clean verification of a file saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileVerification {
    /// The file's header.
    pub header: Header,
    /// What was checked.
    #[serde(flatten)]
    pub report: Report,
}

/// The verifier's summary, in a form that serializes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Events checked.
    pub events: u64,
    /// Distinct streams.
    pub streams: u64,
    /// Seals checked.
    pub seals: u64,
    /// Events after the last seal (checked by hash and order, not yet sealed).
    pub unsealed_events: u64,
    /// The earliest recording instant.
    pub first_recorded_at: Option<DateTime<Utc>>,
    /// The latest recording instant.
    pub last_recorded_at: Option<DateTime<Utc>>,
}

impl From<VerifyReport> for Report {
    fn from(report: VerifyReport) -> Self {
        Self {
            events: report.events,
            streams: report.streams,
            seals: report.seals,
            unsealed_events: report.unsealed_events,
            first_recorded_at: report.first_recorded_at,
            last_recorded_at: report.last_recorded_at,
        }
    }
}

/// Verifies the log stored in the database: it is exported, uncompressed, straight into the
/// file verifier on another thread, so both are checked by the same code and name what was
/// altered the same way. `progress` counts the events read.
pub async fn verify_database(pool: &PgPool, progress: &ProgressBar) -> Result<Report, AuditError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(PIPE_BATCHES);
    let verifier = tokio::task::spawn_blocking(move || {
        let name = Path::new("the database's log");
        let reader = PipeReader {
            batches: rx,
            batch: Vec::new(),
            offset: 0,
        };
        let mut file = AuditFile::from_reader(name, reader, Prepare::Rows, &ProgressBar::hidden())
            .map_err(|source| AuditError::Io {
                path: name.to_owned(),
                source,
            })?;
        verify_file(&mut file)
    });
    let mut writer = PipeWriter(tx);
    let exported = export_lines(pool, None, &mut writer, progress).await;
    drop(writer);
    let verified = verifier
        .await
        .map_err(|e| AuditError::Interrupted(format!("the verifier: {e}")))?;
    match (exported, verified) {
        (Ok(_), Ok(verified)) => Ok(verified.report),
        (_, Err(found @ (AuditError::Tampering(_) | AuditError::Counts(_)))) => Err(found),
        (Err(error), _) | (Ok(_), Err(error)) => Err(error),
    }
}

/// Batches of lines in flight between the database reader and the verifier.
const PIPE_BATCHES: usize = 4;

/// Hands what is written to the verifier's thread.
struct PipeWriter(SyncSender<Vec<u8>>);

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send(buf.to_vec()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the verifier stopped reading",
            )
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads what the [`PipeWriter`] sent; the end of input once it is dropped.
struct PipeReader {
    batches: Receiver<Vec<u8>>,
    batch: Vec<u8>,
    offset: usize,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.offset == self.batch.len() {
            match self.batches.recv() {
                Ok(batch) => {
                    self.batch = batch;
                    self.offset = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.batch.len() - self.offset);
        buf[..n].copy_from_slice(&self.batch[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

/// Reads the header line and checks it names a format this code reads.
pub(crate) fn read_header(file: &mut AuditFile) -> Result<Header, AuditError> {
    let line = file
        .next_line()?
        .ok_or_else(|| AuditError::Truncated("the file is empty".into()))?;
    let header = match serde_json::from_slice::<MetaLine>(line) {
        Ok(MetaLine::Header(header)) => header,
        Ok(_) => return Err(AuditError::format(1, "the first line is not the header")),
        Err(e) => {
            return Err(AuditError::format(
                1,
                format!("not an audit file header: {e}"),
            ));
        }
    };
    if header.format != FORMAT_NAME || header.format_version != FORMAT_VERSION {
        return Err(AuditError::format(
            1,
            format!(
                "format {} version {} (this code reads {FORMAT_NAME} version {FORMAT_VERSION})",
                header.format, header.format_version
            ),
        ));
    }
    Ok(header)
}

/// Reads the trailer from `line` and checks nothing follows it.
pub(crate) fn read_trailer(
    file: &mut AuditFile,
    header: &Header,
    line: &[u8],
    events: u64,
) -> Result<(), AuditError> {
    let trailer_line = file.line_number();
    let trailer = match serde_json::from_slice::<MetaLine>(line) {
        Ok(MetaLine::End(trailer)) => trailer,
        _ => return Err(AuditError::format(trailer_line, "malformed trailer")),
    };
    if file.next_line()?.is_some() {
        return Err(AuditError::format(
            file.line_number(),
            "lines follow the trailer",
        ));
    }
    if trailer.events != events || header.events != events || trailer.seals != header.seals {
        return Err(AuditError::Counts(format!(
            "the header counts {} events and {} seals, the trailer {} events and {} seals, \
             the file holds {events} events",
            header.events, header.seals, trailer.events, trailer.seals
        )));
    }
    Ok(())
}

/// Verifies an audit file from its first line to its trailer.
pub fn verify_file(file: &mut AuditFile) -> Result<FileVerification, AuditError> {
    let header = read_header(file)?;
    let mut seals = Vec::with_capacity(usize::try_from(header.seals).unwrap_or(0).min(1 << 20));
    for _ in 0..header.seals {
        let line = file
            .next_line()?
            .ok_or_else(|| AuditError::Truncated("the file stops among its seals".into()))?;
        let record = match serde_json::from_slice::<MetaLine>(line) {
            Ok(MetaLine::Seal(record)) => record,
            _ => {
                return Err(AuditError::format(
                    file.line_number(),
                    "expected a seal line",
                ));
            }
        };
        let seal = record
            .to_seal()
            .map_err(|why| AuditError::format(file.line_number(), why))?;
        seals.push(seal);
    }
    let mut check = Checker::new(seals)?;
    loop {
        let line_number = file.line_number() + 1;
        let Some((line, fields)) = file.next_prepared()? else {
            return Err(AuditError::Truncated(format!(
                "no trailer after {} events",
                check.pushed
            )));
        };
        if is_end_line(line) {
            let line = line.to_vec();
            let pushed = check.pushed;
            let report = check.finish()?;
            read_trailer(file, &header, &line, pushed)?;
            if let Some(end) = header.end
                && report.last != Some(end)
            {
                return Err(AuditError::Counts(format!(
                    "the header says the export ends at {end}, the file's last event is before it"
                )));
            }
            return Ok(FileVerification {
                header,
                report: report.into_report(),
            });
        }
        match check.push(line, fields, line_number) {
            Ok(()) => {}
            Err(Stop::Error(error)) => return Err(error),
            Err(Stop::Tampering(finding)) => {
                let Finding {
                    tampering,
                    event,
                    row_hash,
                } = *finding;
                return Err(check.sharpen(tampering, event, row_hash, file).into());
            }
        }
    }
}

/// A clean run's summary and where it ended.
struct Finished {
    report: VerifyReport,
    last: Option<lightspeed_eventstore::LogPosition>,
}

impl Finished {
    fn into_report(self) -> Report {
        self.report.into()
    }
}

/// Why checking stopped at a line.
enum Stop {
    /// A finding that needs no reading on.
    Error(AuditError),
    /// The verifier's finding, to sharpen by reading on.
    Tampering(Box<Finding>),
}

/// A finding of the event store's verifier and the row it was made on.
struct Finding {
    tampering: Tampering,
    event: EventRef,
    row_hash: [u8; 32],
}

/// The event store's verifier and what it takes to sharpen its findings.
struct Checker {
    verifier: LogVerifier,
    seals: Vec<Seal>,
    /// Events sealed by each seal and all before it.
    seal_ends: Vec<u64>,
    /// A broken link found up front: index of the later seal.
    broken_link: Option<usize>,
    /// (position, row hash) of the events of the seal being read.
    current_seal_rows: Vec<(u64, [u8; 32])>,
    current_seal: usize,
    pushed: u64,
    last: Option<lightspeed_eventstore::LogPosition>,
}

impl Checker {
    fn new(seals: Vec<Seal>) -> Result<Self, AuditError> {
        let mut seal_ends = Vec::with_capacity(seals.len());
        let mut total = 0u64;
        for seal in &seals {
            total += seal.entries.len() as u64;
            seal_ends.push(total);
        }
        let mut broken_link = None;
        let mut previous = [0u8; 32];
        for (index, seal) in seals.iter().enumerate() {
            if seal.previous_hash != previous {
                if index == 0 {
                    return Err(Tampering::SealAltered {
                        seal_number: seal.seal_number,
                        why: "the first seal does not start the chain (its previous hash is not zeros)"
                            .into(),
                    }
                    .into());
                }
                broken_link = Some(index);
                break;
            }
            previous = seal.seal_hash;
        }
        // With a broken link, check the seals before it against their events first.
        let trusted = broken_link.map_or(seals.as_slice(), |index| &seals[..index]);
        let verifier = LogVerifier::new(trusted.to_vec())?;
        Ok(Self {
            verifier,
            seals,
            seal_ends,
            broken_link,
            current_seal_rows: Vec::new(),
            current_seal: 0,
            pushed: 0,
            last: None,
        })
    }

    fn push(
        &mut self,
        line: &[u8],
        fields: Option<&RowFields>,
        line_number: u64,
    ) -> Result<(), Stop> {
        if let Some(row) = fields.and_then(|fields| fields.audit_row(line)) {
            return self.push_row(&row);
        }
        let event = match EventLine::parse(line) {
            Ok(event) => event,
            Err(why) => return Err(Stop::Error(unreadable(line, line_number, &why))),
        };
        let row = event
            .audit_row()
            .map_err(|why| Stop::Error(unreadable(line, line_number, &why)))?;
        self.push_row(&row)
    }

    fn push_row(&mut self, row: &AuditRow<'_>) -> Result<(), Stop> {
        if let Err(tampering) = self.verifier.push(row) {
            return Err(Stop::Tampering(Box::new(Finding {
                tampering,
                event: EventRef {
                    stream_id: row.stream_id.to_owned(),
                    stream_version: row.stream_version,
                    log_position: row.log_position,
                },
                row_hash: row.row_hash,
            })));
        }
        self.pushed += 1;
        self.last = Some(row.log_position);
        if let Some(&end) = self.seal_ends.get(self.current_seal) {
            self.current_seal_rows
                .push((row.log_position.position, row.row_hash));
            if self.pushed == end {
                self.current_seal += 1;
                self.current_seal_rows.clear();
            }
        }
        if let Some(index) = self.broken_link
            && self.pushed == self.seal_ends[index - 1]
        {
            return Err(Stop::Error(
                Tampering::SealAltered {
                    seal_number: self.seals[index].seal_number,
                    why: format!(
                        "its previous hash does not link to seal {}, whose hash matches the events it covers",
                        self.seals[index - 1].seal_number
                    ),
                }
                .into(),
            ));
        }
        Ok(())
    }

    /// Reads on where that tells what was altered (see the module documentation).
    fn sharpen(
        &mut self,
        tampering: Tampering,
        event: EventRef,
        row_hash: [u8; 32],
        file: &mut AuditFile,
    ) -> Tampering {
        match tampering {
            Tampering::Reordered { event, after } if event.log_position == after => {
                Tampering::Inserted(event)
            }
            Tampering::Removed {
                position,
                seal_number,
                noticed_at: Some(noticed_at),
            } => match find_later(file, position) {
                Some(moved) => Tampering::Reordered {
                    event: moved,
                    after: noticed_at.log_position,
                },
                None => Tampering::Removed {
                    position,
                    seal_number,
                    noticed_at: Some(noticed_at),
                },
            },
            Tampering::Replaced { seal_number, .. } => {
                let replaced = Tampering::Replaced {
                    event: event.clone(),
                    seal_number,
                };
                match self.seal_holds_without_entries(event.log_position.position, row_hash, file) {
                    true => Tampering::SealAltered {
                        seal_number,
                        why: format!(
                            "its entry for position {} does not match the event there, whose row hash the seal's own hash confirms",
                            event.log_position.position
                        ),
                    },
                    false => replaced,
                }
            }
            other => other,
        }
    }

    /// Whether the current seal's hash, over the events as the file holds them, still matches.
    fn seal_holds_without_entries(
        &self,
        position: u64,
        row_hash: [u8; 32],
        file: &mut AuditFile,
    ) -> bool {
        let (Some(seal), Some(&end)) = (
            self.seals.get(self.current_seal),
            self.seal_ends.get(self.current_seal),
        ) else {
            return false;
        };
        let mut rows = self.current_seal_rows.clone();
        rows.push((position, row_hash));
        let missing = end.saturating_sub(self.pushed + 1);
        for _ in 0..missing {
            let Ok(Some(line)) = file.next_line() else {
                return false;
            };
            let Ok(event) = EventLine::parse(line) else {
                return false;
            };
            let Ok(row) = event.audit_row() else {
                return false;
            };
            rows.push((row.log_position.position, row.row_hash));
        }
        let mut hasher = SealHasher::new(seal.seal_number, &seal.previous_hash);
        for (position, hash) in &rows {
            hasher.push(*position, hash);
        }
        hasher.finish() == seal.seal_hash
    }

    fn finish(self) -> Result<Finished, AuditError> {
        let report = self.verifier.finish()?;
        if let Some(index) = self.broken_link {
            return Err(Tampering::SealAltered {
                seal_number: self.seals[index].seal_number,
                why: "its previous hash does not link to the seal before it".into(),
            }
            .into());
        }
        Ok(Finished {
            report,
            last: self.last,
        })
    }
}

/// An event line that does not parse was altered: named when its identity can still be read.
fn unreadable(line: &[u8], line_number: u64, why: &str) -> AuditError {
    match locate_event(line) {
        Some(event) => Tampering::Changed(event).into(),
        None => AuditError::format(line_number, format!("not an event line: {why}")),
    }
}

/// The event at `position` further on in the file, if there is one.
fn find_later(file: &mut AuditFile, position: u64) -> Option<EventRef> {
    while let Ok(Some(line)) = file.next_line() {
        if is_end_line(line) {
            return None;
        }
        if let Ok(event) = EventLine::parse(line)
            && event.position == position
        {
            return Some(event.event_ref());
        }
    }
    None
}
