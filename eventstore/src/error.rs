//! Typed errors of the event log: why an append stored nothing and why a read failed. Both
//! carry [`InvalidInput`], the refusal of input before the database is touched.

pub use crate::input::InvalidInput;
use crate::model::{ExpectedVersion, StreamId};

/// Why an append stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The input was refused before touching the database.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// Optimistic concurrency: the stream is not at the version the writer expected.
    #[error("stream {stream_id} is at version {actual}, expected {expected:?}")]
    WrongExpectedVersion {
        /// The stream.
        stream_id: StreamId,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// What the stream holds.
        actual: u64,
    },
    /// Concurrent writers kept winning a race this append could only win by retrying.
    #[error("append gave up after {attempts} attempts against concurrent writers")]
    Contended {
        /// How many times it tried.
        attempts: usize,
    },
    /// An event id already stored with different content.
    #[error("event {event_id} was already stored with different content")]
    IdempotencyConflict {
        /// The reused id.
        event_id: uuid::Uuid,
    },
    /// The database failed.
    #[error("event store database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The input was refused before touching the database.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A stored row does not decode (a bug or tampering).
    #[error("stored event at position {position} is unreadable: {why}")]
    Corrupt {
        /// Its global position.
        position: u64,
        /// What is wrong.
        why: String,
    },
    /// The database failed.
    #[error("event store database error: {0}")]
    Database(#[from] sqlx::Error),
}
