//! The log's interface. Callers depend on this trait, so another backend (an embedded
//! single-node store) can be added without touching them.

use std::future::Future;

use crate::error::{AppendError, ReadError};
use crate::model::{
    AppendResult, ExpectedVersion, LogPosition, NewEvent, RecordedEvent, StreamAppend, StreamId,
};
use crate::snapshots::Snapshot;

/// The append-only event log.
pub trait EventStore: Clone + Send + Sync + 'static {
    /// Appends to one or more streams atomically: all events are stored, or none.
    ///
    /// Re-sending events whose ids are already stored with the same content stores nothing and
    /// answers the original result; the same id with other content is
    /// [`AppendError::IdempotencyConflict`].
    fn append_many(
        &self,
        appends: Vec<StreamAppend>,
    ) -> impl Future<Output = Result<AppendResult, AppendError>> + Send;

    /// Appends events to one stream.
    fn append(
        &self,
        stream_id: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, AppendError>> + Send {
        self.append_many(vec![StreamAppend {
            stream_id,
            expected,
            events,
        }])
    }

    /// Up to `limit` events of one stream with a version above `after_version`, in order.
    fn read_stream(
        &self,
        stream_id: &StreamId,
        after_version: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, ReadError>> + Send;

    /// The events of several streams, each after its own version, in stream then version order.
    fn read_streams(
        &self,
        after: &[(StreamId, u64)],
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, ReadError>> + Send;

    /// The stored events with these ids (in no particular order); unknown ids are left out.
    fn read_events(
        &self,
        event_ids: &[uuid::Uuid],
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, ReadError>> + Send;

    /// Up to `limit` events after `after` in log order, never skipping one that commits later.
    ///
    /// With `categories`, only events of those categories.
    fn read_log(
        &self,
        after: LogPosition,
        categories: Option<&[String]>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, ReadError>> + Send;

    /// The last position a gap-safe reader can see now (`START` for an empty log).
    fn head(&self) -> impl Future<Output = Result<LogPosition, ReadError>> + Send;

    /// The stream's snapshot of state shape `state_version`, while the log still matches it.
    fn read_snapshot(
        &self,
        stream_id: &StreamId,
        state_version: u32,
    ) -> impl Future<Output = Result<Option<Snapshot>, ReadError>> + Send;

    /// Keeps a snapshot of the stream's state, unless a later one is kept already.
    fn write_snapshot(
        &self,
        stream_id: &StreamId,
        state_version: u32,
        snapshot: &Snapshot,
    ) -> impl Future<Output = Result<(), ReadError>> + Send;
}
