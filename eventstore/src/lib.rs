//! The LightSpeed event log on PostgreSQL.
//!
//! - [`PgEventStore`]: append with expected version (atomically over several streams),
//!   idempotent by event id, reads by stream, by category and of the whole log, gap-safe.
//! - [`CommandHandler`]: load, fold, decide, append, retry on conflict, over any [`Decider`].
//! - [`relay`]: publishes every committed event, in log order, to NATS JetStream.
//! - [`subscription`]: catch up from PostgreSQL, then follow JetStream live.
//! - [`seal`]: seals contiguous ranges of the log into a hash chain, in the background.
//!
//! Reads with optional filters (`$n IS NULL OR …`) are planned for each call's values
//! (`.persistent(false)`): a cached generic plan would serve every filter alike.
//!
//! [`Decider`]: lightspeed_domain::Decider

pub mod audit_reads;
pub mod backlog;
pub mod cache;
pub mod category_reads;
pub mod error;
mod group_commit;
pub mod handler;
pub mod hash;
mod hex32;
mod input;
pub mod limits;
pub mod log_counts;
pub mod lookups;
pub mod migrate;
pub mod model;
pub mod nats;
pub mod postgres;
mod prepare;
pub mod recent;
pub mod relay;
pub mod relay_lag;
mod rows;
pub mod seal;
pub mod snapshots;
pub mod store;
pub mod subscription;
#[cfg(feature = "testing")]
pub mod testing;
pub mod verify;

pub use category_reads::LogReader;
pub use error::{AppendError, InvalidInput, ReadError};
pub use handler::{CommandContext, CommandError, CommandHandler, Executed, Loaded, stream_of};
pub use model::{
    AppendResult, ExpectedVersion, LogPosition, Metadata, NewEvent, Payload, RecordedEvent,
    StreamAppend, StreamId,
};
pub use postgres::PgEventStore;
pub use store::EventStore;
