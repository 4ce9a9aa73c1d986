//! Verifying the log: every row hash, the seal chain, per-stream version continuity and the
//! read order. The same verifier checks the live database and an exported file.
//!
//! It reports the first discrepancy in log order and names the event: which one was changed,
//! which sealed position is missing, which row is not in its seal, which row is out of place.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::hash::{RowContent, SealHasher, row_hash};
use crate::model::LogPosition;
use crate::seal::{Seal, SealEntry};

/// One row of the log as an auditor sees it: payload and metadata as canonical JSON bytes.
#[derive(Debug, Clone, Copy)]
pub struct AuditRow<'a> {
    /// Where it sits in the read order.
    pub log_position: LogPosition,
    /// Its event id.
    pub event_id: Uuid,
    /// Its stream.
    pub stream_id: &'a str,
    /// Its version in the stream.
    pub stream_version: u64,
    /// Its type name.
    pub event_type: &'a str,
    /// Its payload shape version.
    pub schema_version: u16,
    /// Canonical payload bytes.
    pub payload: &'a [u8],
    /// Canonical metadata bytes.
    pub metadata: &'a [u8],
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The hash stored with it.
    pub row_hash: [u8; 32],
}

/// Where an event sits, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    /// Its stream.
    pub stream_id: String,
    /// Its version in the stream.
    pub stream_version: u64,
    /// Its place in the log.
    pub log_position: LogPosition,
}

impl std::fmt::Display for EventRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} version {} at position {}",
            self.stream_id, self.stream_version, self.log_position
        )
    }
}

/// The first thing found wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tampering {
    /// A row's content does not hash to its stored row hash.
    #[error("event changed: {0} does not match its row hash")]
    Changed(EventRef),
    /// A sealed row's content and row hash were both replaced.
    #[error("event changed: {event} is not the event seal {seal_number} recorded there")]
    Replaced {
        /// The event.
        event: EventRef,
        /// The seal that recorded the original.
        seal_number: u64,
    },
    /// A sealed event is missing.
    #[error(
        "event removed: position {position} sealed by seal {seal_number} is missing (noticed before {noticed_at:?})"
    )]
    Removed {
        /// Its global position.
        position: u64,
        /// The seal that covers it.
        seal_number: u64,
        /// The next event present, if any.
        noticed_at: Option<EventRef>,
    },
    /// A row that no seal covers sits inside the sealed part of the log.
    #[error("event inserted: {0} is inside the sealed part of the log but in no seal")]
    Inserted(EventRef),
    /// A row is out of the log's read order.
    #[error("events reordered: {event} comes after {after}")]
    Reordered {
        /// The row out of place.
        event: EventRef,
        /// The position it follows.
        after: LogPosition,
    },
    /// A stream's versions are not 1, 2, 3, … in log order.
    #[error("stream version gap: {event} follows version {previous} of its stream")]
    VersionGap {
        /// The row.
        event: EventRef,
        /// The stream's previous version in the log (0 for none).
        previous: u64,
    },
    /// A seal does not hash to its stored value, or does not link to the previous one.
    #[error("seal {seal_number} altered: {why}")]
    SealAltered {
        /// The seal.
        seal_number: u64,
        /// What does not hold.
        why: String,
    },
}

/// What a clean verification saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// Distinct streams.
    pub streams: u64,
    /// Seals checked.
    pub seals: u64,
    /// Events after the last seal (checked, but not yet sealed).
    pub unsealed_events: u64,
    /// The earliest and latest recording instants.
    pub first_recorded_at: Option<DateTime<Utc>>,
    /// The latest recording instant.
    pub last_recorded_at: Option<DateTime<Utc>>,
}

/// Where a sealed position belongs.
#[derive(Debug, Clone, Copy)]
struct Expected {
    seal_index: usize,
    entry_index: usize,
    hash_prefix: u64,
}

/// Checks a log fed to it row by row in read order.
#[derive(Debug)]
pub struct LogVerifier {
    seals: Vec<Seal>,
    sealed: HashMap<u64, Expected>,
    /// Next expected (seal, entry) in the sealed part of the log.
    cursor: (usize, usize),
    open_seal: Option<SealHasher>,
    last_sealed: Option<LogPosition>,
    previous: Option<LogPosition>,
    stream_versions: HashMap<String, u64>,
    report: VerifyReport,
}

impl LogVerifier {
    /// A verifier for a log with these seals (in chain order); checks the chain links at once.
    pub fn new(seals: Vec<Seal>) -> Result<Self, Tampering> {
        let mut sealed = HashMap::with_capacity(seals.iter().map(|s| s.entries.len()).sum());
        let mut previous_hash = [0u8; 32];
        for (seal_index, seal) in seals.iter().enumerate() {
            let altered = |why: String| Tampering::SealAltered {
                seal_number: seal.seal_number,
                why,
            };
            if seal.seal_number != seal_index as u64 + 1 {
                return Err(altered(format!("expected seal number {}", seal_index + 1)));
            }
            if seal.previous_hash != previous_hash {
                return Err(altered("does not link to the previous seal".into()));
            }
            if seal.entries.len() as u64 != seal.event_count
                || seal.entries.first().map(|e| e.position) != Some(seal.first.position)
                || seal.entries.last().map(|e| e.position) != Some(seal.last.position)
            {
                return Err(altered("its entries do not match its range".into()));
            }
            for (entry_index, entry) in seal.entries.iter().enumerate() {
                let expected = Expected {
                    seal_index,
                    entry_index,
                    hash_prefix: entry.hash_prefix,
                };
                if sealed.insert(entry.position, expected).is_some() {
                    return Err(altered(format!("position {} sealed twice", entry.position)));
                }
            }
            previous_hash = seal.seal_hash;
        }
        let last_sealed = seals.last().map(|s| s.last);
        let report = VerifyReport {
            seals: seals.len() as u64,
            ..VerifyReport::default()
        };
        Ok(Self {
            seals,
            sealed,
            cursor: (0, 0),
            open_seal: None,
            last_sealed,
            previous: None,
            stream_versions: HashMap::new(),
            report,
        })
    }

    /// Checks the next row in read order.
    pub fn push(&mut self, row: &AuditRow<'_>) -> Result<(), Tampering> {
        let event = || EventRef {
            stream_id: row.stream_id.to_owned(),
            stream_version: row.stream_version,
            log_position: row.log_position,
        };
        if let Some(previous) = self.previous
            && row.log_position <= previous
        {
            return Err(Tampering::Reordered {
                event: event(),
                after: previous,
            });
        }
        let computed = row_hash(&RowContent {
            event_id: row.event_id,
            stream_id: row.stream_id,
            event_type: row.event_type,
            schema_version: row.schema_version,
            payload: row.payload,
            metadata: row.metadata,
            recorded_at: row.recorded_at,
        });
        if computed != row.row_hash {
            return Err(Tampering::Changed(event()));
        }
        self.check_seal(row, &event)?;
        // One lookup per row: the stream's previous version, updated in place.
        match self.stream_versions.get_mut(row.stream_id) {
            Some(version) if version.checked_add(1) == Some(row.stream_version) => {
                *version = row.stream_version;
            }
            Some(version) => {
                return Err(Tampering::VersionGap {
                    event: event(),
                    previous: *version,
                });
            }
            None if row.stream_version == 1 => {
                self.stream_versions.insert(row.stream_id.to_owned(), 1);
            }
            None => {
                return Err(Tampering::VersionGap {
                    event: event(),
                    previous: 0,
                });
            }
        }
        self.previous = Some(row.log_position);
        self.report.events += 1;
        self.report.first_recorded_at = Some(
            self.report
                .first_recorded_at
                .map_or(row.recorded_at, |t| t.min(row.recorded_at)),
        );
        self.report.last_recorded_at = Some(
            self.report
                .last_recorded_at
                .map_or(row.recorded_at, |t| t.max(row.recorded_at)),
        );
        Ok(())
    }

    fn check_seal(
        &mut self,
        row: &AuditRow<'_>,
        event: &dyn Fn() -> EventRef,
    ) -> Result<(), Tampering> {
        let position = row.log_position.position;
        // In an intact log the row is the entry the cursor waits for: no lookup needed.
        let expected = match self.next_expected() {
            Some(entry) if entry.position == position => Some(Expected {
                seal_index: self.cursor.0,
                entry_index: self.cursor.1,
                hash_prefix: entry.hash_prefix,
            }),
            _ => self.sealed.get(&position).copied(),
        };
        let Some(expected) = expected else {
            if self
                .last_sealed
                .is_some_and(|last| row.log_position <= last)
            {
                return Err(Tampering::Inserted(event()));
            }
            if let Some(missing) = self.next_expected() {
                return Err(self.removed(missing, Some(event())));
            }
            self.report.unsealed_events += 1;
            return Ok(());
        };
        if (expected.seal_index, expected.entry_index) != self.cursor {
            return Err(match self.next_expected() {
                Some(missing) if (expected.seal_index, expected.entry_index) > self.cursor => {
                    self.removed(missing, Some(event()))
                }
                _ => Tampering::Reordered {
                    event: event(),
                    after: self.previous.unwrap_or_default(),
                },
            });
        }
        let seal_number = self.seals[expected.seal_index].seal_number;
        if SealEntry::of(position, &row.row_hash).hash_prefix != expected.hash_prefix {
            return Err(Tampering::Replaced {
                event: event(),
                seal_number,
            });
        }
        let seal = &self.seals[expected.seal_index];
        let mut hasher = self
            .open_seal
            .take()
            .unwrap_or_else(|| SealHasher::new(seal.seal_number, &seal.previous_hash));
        hasher.push(position, &row.row_hash);
        if expected.entry_index + 1 == seal.entries.len() {
            if hasher.finish() != seal.seal_hash {
                return Err(Tampering::SealAltered {
                    seal_number,
                    why: "its hash does not match the events it covers".into(),
                });
            }
            self.cursor = (expected.seal_index + 1, 0);
        } else {
            self.open_seal = Some(hasher);
            self.cursor = (expected.seal_index, expected.entry_index + 1);
        }
        Ok(())
    }

    /// The sealed entry the verifier waits for next, if the sealed part is not finished.
    fn next_expected(&self) -> Option<SealEntry> {
        self.seals
            .get(self.cursor.0)
            .and_then(|seal| seal.entries.get(self.cursor.1))
            .copied()
    }

    fn removed(&self, missing: SealEntry, noticed_at: Option<EventRef>) -> Tampering {
        Tampering::Removed {
            position: missing.position,
            seal_number: self.seals.get(self.cursor.0).map_or(0, |s| s.seal_number),
            noticed_at,
        }
    }

    /// Ends the check: every sealed event must have been seen.
    pub fn finish(mut self) -> Result<VerifyReport, Tampering> {
        if let Some(missing) = self.next_expected() {
            return Err(self.removed(missing, None));
        }
        self.report.streams = self.stream_versions.len() as u64;
        Ok(self.report)
    }
}

/// Why a verification could not finish or found tampering.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log was altered.
    #[error(transparent)]
    Tampering(#[from] Tampering),
    /// The seals could not be loaded.
    #[error(transparent)]
    Seal(#[from] crate::seal::SealError),
    /// A row could not be read.
    #[error("cannot read the log: {0}")]
    Read(String),
    /// The database failed.
    #[error("database error while verifying: {0}")]
    Database(#[from] sqlx::Error),
}

/// Verifies the log stored in the database.
pub async fn verify_database(pool: &sqlx::PgPool) -> Result<VerifyReport, VerifyError> {
    use sqlx::Row;

    let mut verifier = LogVerifier::new(crate::seal::load_seals(pool).await?)?;
    let mut after = LogPosition::START;
    loop {
        let rows = sqlx::query(concat!(
            "SELECT ",
            crate::rows::event_columns!(),
            " FROM ledger.events WHERE (transaction_id, position) > ($1::text::xid8, $2)
                AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY transaction_id, position LIMIT 10000"
        ))
        .bind(after.transaction_id.to_string())
        .bind(crate::rows::to_i64(after.position))
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(verifier.finish()?);
        };
        after = crate::rows::read_position(last, "tx", "position")?;
        for row in &rows {
            let read = |e: &dyn std::fmt::Display| VerifyError::Read(e.to_string());
            let payload: serde_json::Value = row.try_get("payload")?;
            let metadata: serde_json::Value = row.try_get("metadata")?;
            let payload = crate::hash::canonical_json(&payload).map_err(|e| read(&e))?;
            let metadata = crate::hash::canonical_json(&metadata).map_err(|e| read(&e))?;
            let stream_id: String = row.try_get("stream_id")?;
            let event_type: String = row.try_get("event_type")?;
            let hash: Vec<u8> = row.try_get("row_hash")?;
            verifier.push(&AuditRow {
                log_position: crate::rows::read_position(row, "tx", "position")?,
                event_id: row.try_get("event_id")?,
                stream_id: &stream_id,
                stream_version: crate::rows::to_u64(row.try_get("stream_version")?)?,
                event_type: &event_type,
                schema_version: u16::try_from(row.try_get::<i16, _>("schema_version")?)
                    .map_err(|e| read(&e))?,
                payload: &payload,
                metadata: &metadata,
                recorded_at: row.try_get("recorded_at")?,
                row_hash: hash
                    .try_into()
                    .map_err(|_| read(&"a row hash is not 32 bytes"))?,
            })?;
        }
    }
}
