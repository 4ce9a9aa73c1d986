//! Reading the log batch after batch, whole or by category, for readers that go through much of
//! it (rebuilds): the same events in the same gap-safe read order as [`EventStore::read_log`],
//! with one walk of `events_category_read_order` per category, merged in memory.
//!
//! A category's next events are selected with the bound written over the category index's
//! three columns, `(category, transaction_id, position) > (c, tx, pos) AND category <= c`, which
//! is `category = c AND (transaction_id, position) > (tx, pos)`. Written as an equality, the
//! planner may walk the primary key in read order and filter the category out instead (it
//! cannot tell a category's share of the log apart from a parameter, and judges the category
//! index's heap visits random): for a category of one event in eight that visits eight rows per
//! event read, and for a rare one the rest of the log on every batch. Without the equality, the
//! primary key cannot give the order asked for (`category` first), so only the category index
//! answers without sorting every later event.
//!
//! Merging several categories in SQL sorts every batch's rows (payloads included) on the
//! server; merging them here costs a comparison per event. Gap safety is kept per category and
//! across them: each category is read below a horizon (the oldest transaction still running, as
//! [`EventStore::read_log`] reads), and an event is handed out only once every category is known
//! up to it: up to its last event read when that read was full (more may follow), or up to the
//! horizon of its read when that read was short (nothing more below the horizon).
//!
//! [`EventStore::read_log`]: crate::EventStore::read_log

use std::collections::VecDeque;

use sqlx::postgres::PgPool;

use crate::error::ReadError;
use crate::limits::MAX_READ_BATCH;
use crate::model::{LogPosition, RecordedEvent};
use crate::postgres::{PgEventStore, read_limit};
use crate::rows::{decode_as_read, event_columns, to_i64};
use crate::store::EventStore;

/// Up to `limit` events of `category` after `after` in read order, below `horizon` (a
/// transaction id all transactions below which have ended), or below the oldest transaction
/// running now when `None`.
pub(crate) async fn read_category(
    pool: &PgPool,
    category: &str,
    after: LogPosition,
    horizon: Option<u64>,
    limit: i64,
) -> Result<Vec<RecordedEvent>, ReadError> {
    let sql = match horizon {
        Some(_) => concat!(
            "SELECT ",
            event_columns!(),
            " FROM ledger.events
              WHERE (category, transaction_id, position) > ($1, $2::text::xid8, $3)
                AND category <= $1
                AND transaction_id < $5::text::xid8
              ORDER BY category, transaction_id, position
              LIMIT $4"
        ),
        None => concat!(
            "SELECT ",
            event_columns!(),
            " FROM ledger.events
              WHERE (category, transaction_id, position) > ($1, $2::text::xid8, $3)
                AND category <= $1
                AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY category, transaction_id, position
              LIMIT $4"
        ),
    };
    let mut query = sqlx::query(sql)
        .bind(category)
        .bind(after.transaction_id.to_string())
        .bind(to_i64(after.position))
        .bind(limit);
    if let Some(horizon) = horizon {
        query = query.bind(horizon.to_string());
    }
    decode_as_read(query.fetch(pool), limit).await
}

/// The oldest transaction running now: every event below it is committed (or never will be).
async fn horizon(pool: &PgPool) -> Result<u64, ReadError> {
    let horizon: String =
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
            .fetch_one(pool)
            .await?;
    horizon
        .parse()
        .map_err(|e: std::num::ParseIntError| ReadError::Corrupt {
            position: 0,
            why: format!("transaction horizon {horizon:?}: {e}"),
        })
}

/// One category's events read ahead and not yet handed out.
#[derive(Debug)]
struct Source {
    category: String,
    buffered: VecDeque<RecordedEvent>,
    /// The last event read.
    read_up_to: LogPosition,
    /// When the last read was short: the horizon below which every event of the category was
    /// read. `None` after a full read (more may follow it).
    exhausted_below: Option<u64>,
}

impl Source {
    /// The last position up to which this category is known: events of the other categories up
    /// to it can be handed out.
    fn known_up_to(&self) -> LogPosition {
        match self.exhausted_below {
            Some(horizon) => LogPosition {
                transaction_id: horizon.saturating_sub(1),
                position: u64::MAX,
            },
            None => self.read_up_to,
        }
    }

    /// Whether to read this category now: one whose last read was full is topped up to at least
    /// a batch in hand, so the batch handed out is a full one (each category holds at most two
    /// batches); one whose short read was below an older horizon may have more below this one.
    fn wants_more(&self, horizon: u64, limit: usize) -> bool {
        match self.exhausted_below {
            None => self.buffered.len() < limit,
            Some(below) => below < horizon || self.buffered.is_empty(),
        }
    }
}

/// Reads the log from a position on, whole or some categories of it, in read order, batch after
/// batch: what [`EventStore::read_log`] answers when called after each batch's last event.
///
/// [`EventStore::read_log`]: crate::EventStore::read_log
#[derive(Debug)]
pub struct LogReader {
    store: PgEventStore,
    /// The whole log when `None`.
    sources: Option<Vec<Source>>,
    /// The last event handed out.
    after: LogPosition,
}

impl LogReader {
    /// A reader of the events of `categories` (the whole log when `None`) after `after`.
    pub fn new(store: PgEventStore, after: LogPosition, categories: Option<&[String]>) -> Self {
        let sources = categories.map(|categories| {
            let mut names: Vec<&String> = categories.iter().collect();
            names.sort_unstable();
            names.dedup();
            names
                .into_iter()
                .map(|category| Source {
                    category: category.clone(),
                    buffered: VecDeque::new(),
                    read_up_to: after,
                    exhausted_below: None,
                })
                .collect()
        });
        Self {
            store,
            sources,
            after,
        }
    }

    /// The last event handed out (where the reader started, before the first).
    pub fn position(&self) -> LogPosition {
        self.after
    }

    /// The next events, at most `limit` (clamped to the log's read limit), in read order; none
    /// when every event visible now has been handed out.
    pub async fn next_batch(&mut self, limit: usize) -> Result<Vec<RecordedEvent>, ReadError> {
        let limit = limit.clamp(1, MAX_READ_BATCH);
        let batch = match &mut self.sources {
            None => self.store.read_log(self.after, None, limit).await?,
            Some(sources) => next_merged(&self.store, sources, limit).await?,
        };
        if let Some(last) = batch.last() {
            self.after = last.log_position;
        }
        Ok(batch)
    }
}

/// Reads the categories that need it, then hands out in read order what every category is
/// known up to.
async fn next_merged(
    store: &PgEventStore,
    sources: &mut [Source],
    limit: usize,
) -> Result<Vec<RecordedEvent>, ReadError> {
    let horizon = horizon(store.pool()).await?;
    // The categories are read at once, each on a connection of its own.
    let reads = sources
        .iter_mut()
        .filter(|source| source.wants_more(horizon, limit))
        .map(|source| async move {
            let events = read_category(
                store.pool(),
                &source.category,
                source.read_up_to,
                Some(horizon),
                read_limit(limit),
            )
            .await?;
            source.exhausted_below = (events.len() < limit).then_some(horizon);
            if let Some(last) = events.last() {
                source.read_up_to = last.log_position;
            }
            source.buffered.extend(events);
            Ok::<_, ReadError>(())
        });
    futures::future::try_join_all(reads).await?;
    let known_up_to = sources
        .iter()
        .map(Source::known_up_to)
        .min()
        .unwrap_or(LogPosition::START);
    let mut buffers: Vec<_> = sources.iter_mut().map(|s| &mut s.buffered).collect();
    Ok(in_read_order(
        &mut buffers,
        |event| event.log_position,
        known_up_to,
        limit,
    ))
}

/// Hands out, in read order, at most `limit` of the events buffered (each buffer in read
/// order) that are at or before `known_up_to`.
pub(crate) fn in_read_order<T>(
    buffers: &mut [&mut VecDeque<T>],
    position: impl Fn(&T) -> LogPosition,
    known_up_to: LogPosition,
    limit: usize,
) -> Vec<T> {
    let mut batch = Vec::with_capacity(limit);
    while batch.len() < limit {
        let next = buffers
            .iter_mut()
            .filter_map(|buffer| buffer.front().map(&position).zip(Some(buffer)))
            .min_by_key(|(at, _)| *at);
        match next {
            Some((at, buffer)) if at <= known_up_to => batch.extend(buffer.pop_front()),
            _ => break,
        }
    }
    batch
}
