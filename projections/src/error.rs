//! Typed errors of the projections crate.

use lightspeed_eventstore::LogPosition;
use lightspeed_eventstore::subscription::SubscriptionError;

/// Why a projector, a rebuild or a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// No projection of this name exists.
    #[error("unknown projection {0:?}")]
    UnknownProjection(String),
    /// A read was asked with a filter, cursor or page that cannot be used.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The read model has no active version yet (its first build has not finished).
    #[error("read model {0} is not built yet")]
    NotBuilt(&'static str),
    /// A stored event does not decode into the domain's current shape.
    #[error("event {event_id} at {position} does not decode: {why}")]
    Decode {
        /// The event.
        event_id: uuid::Uuid,
        /// Where it sits in the log.
        position: LogPosition,
        /// What the decoder said.
        why: String,
    },
    /// An event about something whose first event the read model never saw (every stream
    /// starts with the event that creates its row): the log breaks the domain's rules.
    #[error("event {event_id} at {position} is about {id}, which no earlier event created")]
    Orphan {
        /// The event.
        event_id: uuid::Uuid,
        /// Where it sits in the log.
        position: LogPosition,
        /// The merchant, payment, gateway, delivery or notification it is about.
        id: uuid::Uuid,
    },
    /// A row could not be encoded to or decoded from its JSON form.
    #[error("read model row does not (de)serialise: {0}")]
    Row(#[from] serde_json::Error),
    /// The active version was written by a newer layout than this code knows.
    #[error(
        "projection {projection}: the active version has layout {active_layout}, newer than this binary's {code_layout}"
    )]
    Superseded {
        /// The projection.
        projection: &'static str,
        /// The active version's layout.
        active_layout: i32,
        /// This code's layout.
        code_layout: i32,
    },
    /// A version is not in the state the operation needs.
    #[error("projection {projection} v{version} is {state}: {why}")]
    WrongState {
        /// The projection.
        projection: String,
        /// The version.
        version: i32,
        /// Its state.
        state: String,
        /// What was asked of it.
        why: &'static str,
    },
    /// The log could not be read.
    #[error(transparent)]
    Read(#[from] lightspeed_eventstore::ReadError),
    /// The subscription to the log failed.
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    /// The database failed.
    #[error("projection database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl ProjectionError {
    /// The error for a view that does not exist yet, else the database error itself.
    pub(crate) fn from_read(view: &'static str, error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => {
                ProjectionError::NotBuilt(view)
            }
            _ => ProjectionError::Database(error),
        }
    }
}
