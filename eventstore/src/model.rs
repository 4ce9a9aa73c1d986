//! The shapes the log stores and hands back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::input::InvalidInput;
use crate::limits::{MAX_CATEGORY_LEN, MAX_EVENT_TYPE_LEN, MAX_STREAM_ID_LEN};

/// A stream's name, `<category>-<id>`, e.g. `payment-0190f0c2-...`.
///
/// The category is a NATS subject token (`[a-z][a-z0-9_]*`); the id part is `[A-Za-z0-9_.:-]+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId {
    name: String,
    category_len: usize,
}

impl StreamId {
    /// Parses and checks a stream name.
    pub fn parse(name: impl Into<String>) -> Result<Self, InvalidInput> {
        let name = name.into();
        let bad = |why: &'static str| InvalidInput::StreamId {
            stream_id: name.chars().take(MAX_STREAM_ID_LEN).collect(),
            why,
        };
        if name.len() > MAX_STREAM_ID_LEN {
            return Err(bad("longer than 200 bytes"));
        }
        let Some((category, id)) = name.split_once('-') else {
            return Err(bad("expected <category>-<id>"));
        };
        check_category(category).map_err(|_| bad("category must match [a-z][a-z0-9_]{0,39}"))?;
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
        {
            return Err(bad("id must match [A-Za-z0-9_.:-]+"));
        }
        let category_len = category.len();
        Ok(Self { name, category_len })
    }

    /// The stream of one aggregate: `<category>-<id>`.
    pub fn of(category: &str, id: impl std::fmt::Display) -> Result<Self, InvalidInput> {
        Self::parse(format!("{category}-{id}"))
    }

    /// The whole name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Which of `slots` this stream falls in, the same in every run (spreads streams over
    /// locks and committers).
    pub fn slot(&self, slots: usize) -> usize {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(self);
        (hash as usize) % slots
    }

    /// The part before the first `-`.
    pub fn category(&self) -> &str {
        &self.name[..self.category_len]
    }

    /// The part after the first `-`.
    pub fn id(&self) -> &str {
        &self.name[self.category_len + 1..]
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl TryFrom<String> for StreamId {
    type Error = InvalidInput;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::parse(name)
    }
}

impl From<StreamId> for String {
    fn from(id: StreamId) -> String {
        id.name
    }
}

/// Checks a category name: a lowercase NATS subject token of at most 40 bytes.
pub fn check_category(category: &str) -> Result<(), InvalidInput> {
    let mut bytes = category.bytes();
    let ok = category.len() <= MAX_CATEGORY_LEN
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InvalidInput::Category(
            category.chars().take(MAX_CATEGORY_LEN).collect(),
        ))
    }
}

/// Checks an event type name: a NATS subject token `[A-Za-z][A-Za-z0-9_]*` of at most 100 bytes.
pub fn check_event_type(event_type: &str) -> Result<(), InvalidInput> {
    let mut bytes = event_type.bytes();
    let ok = event_type.len() <= MAX_EVENT_TYPE_LEN
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InvalidInput::EventType(
            event_type.chars().take(MAX_EVENT_TYPE_LEN).collect(),
        ))
    }
}

/// What the writer believes about a stream's current version (its number of events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must hold exactly this many events.
    Exact(u64),
    /// The stream may have grown since version `since`, but only by events of the types in
    /// `except`: for a decision those events cannot invalidate (a booking on a gateway without
    /// caps is not affected by other bookings, only by a toggle, a failure or a retirement).
    /// The events go after whatever the stream holds, like `Any`.
    Unchanged {
        /// The version the decision was made on.
        since: u64,
        /// Event types that may have been appended since without invalidating it.
        except: &'static [&'static str],
    },
}

/// Who and what caused an event: carried beside the payload, never part of the business facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Ties together every event caused by one outside request or job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The command (or event) that directly caused this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Who asked: `merchant:<id>`, `admin:<email>`, `psp:<provider>`, `system:<worker>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The HTTP request id (`x-request-id`), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique forever; appending the same id again is an idempotent retry.
    pub event_id: Uuid,
    /// Stable type name, e.g. `PaymentSucceeded`.
    pub event_type: String,
    /// Version of this type's payload shape.
    pub schema_version: u16,
    /// The facts, as JSON (integers only: money is paise).
    pub payload: serde_json::Value,
    /// Correlation, causation, actor, request id.
    pub metadata: Metadata,
}

impl NewEvent {
    /// Encodes a domain event with a given id and metadata.
    pub fn from_domain<E: lightspeed_domain::DomainEvent>(
        event_id: Uuid,
        event: &E,
        metadata: Metadata,
    ) -> Result<Self, InvalidInput> {
        let (event_type, schema_version, payload) =
            lightspeed_domain::encode(event).map_err(|e| InvalidInput::Payload(e.to_string()))?;
        Ok(Self {
            event_id,
            event_type: event_type.to_owned(),
            schema_version,
            payload,
            metadata,
        })
    }
}

/// A place in the log's read order.
///
/// The log is read in the order of (writing transaction id, position): every event of a
/// transaction below the oldest transaction still running is visible, and no later commit can
/// land below it, so a reader that advances this mark never skips an event.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogPosition {
    /// The id of the transaction that wrote the event (a PostgreSQL `xid8`).
    pub transaction_id: u64,
    /// The event's global position, unique, handed out at insert time.
    pub position: u64,
}

impl LogPosition {
    /// Before the first event.
    pub const START: LogPosition = LogPosition {
        transaction_id: 0,
        position: 0,
    };
}

impl std::fmt::Display for LogPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.transaction_id, self.position)
    }
}

impl std::str::FromStr for LogPosition {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidInput::LogPosition(s.chars().take(64).collect());
        let (tx, pos) = s.split_once(':').ok_or_else(bad)?;
        Ok(Self {
            transaction_id: tx.parse().map_err(|_| bad())?,
            position: pos.parse().map_err(|_| bad())?,
        })
    }
}

/// An event as the log recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Where it sits in the log's read order.
    pub log_position: LogPosition,
    /// Unique forever.
    pub event_id: Uuid,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// 1 for the stream's first event, gapless.
    pub stream_version: u64,
    /// Stable type name.
    pub event_type: String,
    /// Version of the payload shape.
    pub schema_version: u16,
    /// The facts.
    pub payload: Payload,
    /// Correlation, causation, actor, request id.
    pub metadata: Metadata,
    /// When it was appended.
    pub recorded_at: DateTime<Utc>,
    /// SHA-256 over the event's content (see [`crate::hash::row_hash`]).
    #[serde(with = "crate::hex32")]
    pub row_hash: [u8; 32],
}

impl RecordedEvent {
    /// Decodes the payload into a domain event, upcasting older shapes.
    pub fn decode<E: lightspeed_domain::DomainEvent>(
        &self,
    ) -> Result<E, lightspeed_domain::UpcastError> {
        lightspeed_domain::decode_raw(&self.event_type, self.schema_version, &self.payload.0)
    }
}

/// A recorded event's payload as JSON text, as the log holds it: a reader decodes it straight
/// into the type it wants ([`RecordedEvent::decode`]), and the relay passes it on unread.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// `value` as a payload's JSON text.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The payload as a JSON value, for readers that inspect it rather than decode it.
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

/// The JSON text.
impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The same facts, however the text is spaced or its keys ordered.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
            || matches!((self.to_value(), other.to_value()), (Ok(a), Ok(b)) if a == b)
    }
}

/// What an append stored (or had already stored, for an idempotent retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// Per stream appended to, its version after the append.
    pub streams: Vec<(StreamId, u64)>,
    /// Global positions of the appended events, in the order given.
    pub positions: Vec<u64>,
    /// True when every event was already stored by an earlier identical append.
    pub idempotent_replay: bool,
}

impl AppendResult {
    /// The version of `stream` after the append, if it was part of it.
    pub fn version_of(&self, stream: &StreamId) -> Option<u64> {
        self.streams
            .iter()
            .find(|(s, _)| s == stream)
            .map(|(_, v)| *v)
    }
}

/// One stream's part of an atomic append.
#[derive(Debug, Clone)]
pub struct StreamAppend {
    /// Where to append.
    pub stream_id: StreamId,
    /// What the writer believes the stream holds.
    pub expected: ExpectedVersion,
    /// The events, in order. None makes the part a check: the append then depends on the
    /// stream holding exactly what `expected` says (`Exact` or `NoStream`) without adding to it.
    pub events: Vec<NewEvent>,
}
