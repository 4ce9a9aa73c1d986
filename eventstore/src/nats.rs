//! How the log appears on NATS JetStream: one stream, subject `<prefix>.<category>.<event type>`,
//! message id = event id, the whole recorded event as JSON in the body.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};

use crate::model::{LogPosition, RecordedEvent};

/// Header carrying the event's [`LogPosition`] as `<transaction id>:<position>`.
pub const POSITION_HEADER: &str = "Ledger-Position";
/// JetStream's de-duplication header.
pub const MESSAGE_ID_HEADER: &str = "Nats-Msg-Id";
/// How long JetStream remembers message ids to drop a re-published event.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Which JetStream stream and subjects carry the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStreamConfig {
    /// JetStream stream name, e.g. `LEDGER`.
    pub stream_name: String,
    /// First subject token, e.g. `ledger`.
    pub subject_prefix: String,
}

impl Default for LogStreamConfig {
    fn default() -> Self {
        Self {
            stream_name: "LEDGER".into(),
            subject_prefix: "ledger".into(),
        }
    }
}

/// Why the log's JetStream stream could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// A JetStream call failed.
    #[error("jetstream: {0}")]
    JetStream(String),
    /// A message on the stream is not a recorded event (a bug, or a foreign publisher).
    #[error("message {sequence} on the log stream is not a recorded event: {why}")]
    Foreign {
        /// Its stream sequence.
        sequence: u64,
        /// What is wrong.
        why: String,
    },
}

impl NatsError {
    /// Wraps any JetStream error.
    pub fn jetstream(e: impl std::fmt::Display) -> Self {
        Self::JetStream(e.to_string())
    }
}

impl LogStreamConfig {
    /// The subject an event is published on.
    pub fn subject(&self, event: &RecordedEvent) -> String {
        format!(
            "{}.{}.{}",
            self.subject_prefix,
            event.stream_id.category(),
            event.event_type
        )
    }

    /// Subjects of one category's events.
    pub fn category_subjects(&self, category: &str) -> String {
        format!("{}.{category}.*", self.subject_prefix)
    }

    /// Subjects of one event type.
    pub fn event_type_subject(&self, category: &str, event_type: &str) -> String {
        format!("{}.{category}.{event_type}", self.subject_prefix)
    }

    /// Every subject of the log.
    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// Creates the stream if absent: file storage, kept forever, no deletes or purges, since it
    /// is a copy of an audit trail.
    pub async fn ensure_stream(
        &self,
        js: &jetstream::Context,
    ) -> Result<stream::Stream, NatsError> {
        js.get_or_create_stream(stream::Config {
            name: self.stream_name.clone(),
            subjects: vec![self.all_subjects()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            ..Default::default()
        })
        .await
        .map_err(NatsError::jetstream)
    }
}

/// The message body for an event.
pub fn encode(event: &RecordedEvent) -> Result<bytes::Bytes, serde_json::Error> {
    serde_json::to_vec(event).map(bytes::Bytes::from)
}

/// The event in a message body.
pub fn decode(sequence: u64, payload: &[u8]) -> Result<RecordedEvent, NatsError> {
    serde_json::from_slice(payload).map_err(|e| NatsError::Foreign {
        sequence,
        why: e.to_string(),
    })
}

/// The headers of an event's message.
pub fn headers(event: &RecordedEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(MESSAGE_ID_HEADER, event.event_id.to_string().as_str());
    headers.insert(POSITION_HEADER, event.log_position.to_string().as_str());
    headers
}

/// The position and event id a stored message's headers carry.
pub fn position_of(sequence: u64, headers: &HeaderMap) -> Result<(LogPosition, String), NatsError> {
    let foreign = |why: &str| NatsError::Foreign {
        sequence,
        why: why.to_owned(),
    };
    let position = headers
        .get(POSITION_HEADER)
        .ok_or_else(|| foreign("no Ledger-Position header"))?
        .as_str()
        .parse()
        .map_err(|_| foreign("bad Ledger-Position header"))?;
    let event_id = headers
        .get(MESSAGE_ID_HEADER)
        .ok_or_else(|| foreign("no Nats-Msg-Id header"))?
        .as_str()
        .to_owned();
    Ok((position, event_id))
}
