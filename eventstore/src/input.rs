//! What the log refuses before touching the database: names, payloads and sizes it does not
//! accept. Depends on nothing else in the crate, so every module that checks input can name it.

/// Input the log refuses before touching the database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    /// A stream id that does not match `<category>-<id>`.
    #[error("invalid stream id {stream_id:?}: {why}")]
    StreamId {
        /// The offending id (truncated).
        stream_id: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A category that is not a lowercase subject token.
    #[error("invalid category {0:?}: expected [a-z][a-z0-9_]{{0,39}}")]
    Category(String),
    /// An event type that is not a subject token.
    #[error("invalid event type {0:?}: expected [A-Za-z][A-Za-z0-9_]{{0,99}}")]
    EventType(String),
    /// A payload that cannot be stored.
    #[error("invalid payload: {0}")]
    Payload(String),
    /// A payload over the size limit.
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Its canonical size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Metadata over the size limit.
    #[error("metadata of {size} bytes exceeds the limit of {limit} bytes")]
    MetadataTooLarge {
        /// Its canonical size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many events in one append.
    #[error("{count} events in one append exceed the limit of {limit}")]
    TooManyEvents {
        /// How many were given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many streams in one atomic append, or the same stream twice.
    #[error("invalid set of streams: {0}")]
    Streams(String),
    /// The same event id twice in one append.
    #[error("event id {0} appears twice in one append")]
    DuplicateEventId(uuid::Uuid),
    /// An append with no events, or a part without events that checks nothing (`Any`,
    /// `Unchanged`).
    #[error("an append needs at least one event, and a part without events an exact version")]
    Empty,
    /// A log position that is not `<transaction id>:<position>`.
    #[error("invalid log position {0:?}: expected <transaction id>:<position>")]
    LogPosition(String),
}
