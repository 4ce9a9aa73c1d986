//! An append made ready for the database before any connection is taken: checked against the
//! log's bounds, payloads and metadata in canonical JSON, each row hash computed by the writer
//! (not in the committer every writer waits for).

use std::collections::HashSet;

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::hash::{RowContent, canonical_json, row_hash};
use crate::input::InvalidInput;
use crate::limits::{
    MAX_EVENTS_PER_APPEND, MAX_METADATA_BYTES, MAX_PAYLOAD_BYTES, MAX_STREAMS_PER_APPEND,
};
use crate::model::{ExpectedVersion, Metadata, NewEvent, StreamAppend, StreamId, check_event_type};

/// One event ready for the database: validated, canonical JSON, and its row hash.
#[derive(Debug)]
pub(crate) struct PreparedEvent {
    pub(crate) event_id: Uuid,
    pub(crate) event_type: String,
    pub(crate) schema_version: u16,
    pub(crate) payload: String,
    pub(crate) metadata: String,
    pub(crate) row_hash: [u8; 32],
}

/// One stream's part of an append, validated.
#[derive(Debug)]
pub(crate) struct PreparedStream {
    pub(crate) stream_id: StreamId,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<PreparedEvent>,
}

/// The instant an append is recorded at: PostgreSQL keeps microseconds, and the row hash must
/// cover exactly what is stored.
pub(crate) fn recorded_at(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(6)
}

/// Validates `appends` and encodes them as they will be stored, recorded at `recorded_at`.
pub(crate) fn prepare(
    appends: Vec<StreamAppend>,
    recorded_at: DateTime<Utc>,
) -> Result<Vec<PreparedStream>, InvalidInput> {
    let events = check_bounds(&appends)?;
    let mut preparation = Preparation {
        recorded_at,
        seen_streams: HashSet::with_capacity(appends.len()),
        seen_ids: HashSet::with_capacity(events),
        last_metadata: None,
    };
    let mut prepared = Vec::with_capacity(appends.len());
    for append in appends {
        prepared.push(preparation.stream(append)?);
    }
    Ok(prepared)
}

/// Checks the number of streams and events against the log's bounds, and that every part
/// either adds events or checks an exact version; answers the number of events.
fn check_bounds(appends: &[StreamAppend]) -> Result<usize, InvalidInput> {
    if appends.len() > MAX_STREAMS_PER_APPEND {
        return Err(InvalidInput::Streams(format!(
            "{} streams exceed the limit of {MAX_STREAMS_PER_APPEND}",
            appends.len()
        )));
    }
    let total: usize = appends.iter().map(|a| a.events.len()).sum();
    let checks_nothing = |a: &StreamAppend| {
        a.events.is_empty()
            && matches!(
                a.expected,
                ExpectedVersion::Any | ExpectedVersion::Unchanged { .. }
            )
    };
    if total == 0 || appends.iter().any(checks_nothing) {
        return Err(InvalidInput::Empty);
    }
    if total > MAX_EVENTS_PER_APPEND {
        return Err(InvalidInput::TooManyEvents {
            count: total,
            limit: MAX_EVENTS_PER_APPEND,
        });
    }
    Ok(total)
}

/// What preparing one append has seen so far.
struct Preparation {
    recorded_at: DateTime<Utc>,
    seen_streams: HashSet<StreamId>,
    seen_ids: HashSet<Uuid>,
    /// The events of one append nearly always share their metadata: it is encoded once.
    last_metadata: Option<(Metadata, String)>,
}

impl Preparation {
    /// One stream's part, refused if the append names the stream twice.
    fn stream(&mut self, append: StreamAppend) -> Result<PreparedStream, InvalidInput> {
        if !self.seen_streams.insert(append.stream_id.clone()) {
            return Err(InvalidInput::Streams(format!(
                "stream {} appears twice in one append",
                append.stream_id
            )));
        }
        let mut events = Vec::with_capacity(append.events.len());
        for event in append.events {
            events.push(self.event(&append.stream_id, event)?);
        }
        Ok(PreparedStream {
            stream_id: append.stream_id,
            expected: append.expected,
            events,
        })
    }

    /// One event of `stream_id`: its type, id and sizes checked, its row hash computed.
    fn event(
        &mut self,
        stream_id: &StreamId,
        event: NewEvent,
    ) -> Result<PreparedEvent, InvalidInput> {
        check_event_type(&event.event_type)?;
        if !self.seen_ids.insert(event.event_id) {
            return Err(InvalidInput::DuplicateEventId(event.event_id));
        }
        let payload = canonical_text(&event.payload)?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(InvalidInput::PayloadTooLarge {
                size: payload.len(),
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let metadata = self.metadata(event.metadata)?;
        if metadata.len() > MAX_METADATA_BYTES {
            return Err(InvalidInput::MetadataTooLarge {
                size: metadata.len(),
                limit: MAX_METADATA_BYTES,
            });
        }
        let row_hash = row_hash(&RowContent {
            event_id: event.event_id,
            stream_id: stream_id.as_str(),
            event_type: &event.event_type,
            schema_version: event.schema_version,
            payload: payload.as_bytes(),
            metadata: metadata.as_bytes(),
            recorded_at: self.recorded_at,
        });
        Ok(PreparedEvent {
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            payload,
            metadata,
            row_hash,
        })
    }

    /// The canonical text of `metadata`, encoded only when it differs from the last event's.
    fn metadata(&mut self, metadata: Metadata) -> Result<String, InvalidInput> {
        if let Some((same, text)) = &self.last_metadata
            && *same == metadata
        {
            return Ok(text.clone());
        }
        let value =
            serde_json::to_value(&metadata).map_err(|e| InvalidInput::Payload(e.to_string()))?;
        let text = canonical_text(&value)?;
        self.last_metadata = Some((metadata, text.clone()));
        Ok(text)
    }
}

/// Canonical JSON as text, the form the batch insert casts to `jsonb`.
pub(crate) fn canonical_text(value: &serde_json::Value) -> Result<String, InvalidInput> {
    String::from_utf8(canonical_json(value)?).map_err(|e| InvalidInput::Payload(e.to_string()))
}
