//! Rows kept by key (a payment's transaction row, a gateway's row, a merchant's wallet balance):
//! loaded when a batch needs them, changed in memory, written back (those new to the table
//! inserted, those it holds replaced).
//!
//! A live projector writes them at the end of every batch and forgets them. A rebuild keeps them
//! across batches and writes the changed ones only every so often, in the transaction that moves
//! the checkpoint past the events that changed them: a payment's events lie far apart in the log
//! (in the rebuild benchmark's log half of them span more than 89 000 positions), so with one
//! write per batch most rows were loaded and written again in nearly every batch that touched
//! them.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::future::BoxFuture;
use lightspeed_eventstore::RecordedEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::projection::{insert_rows, keys_to_load, load_rows, orphan, upsert_rows};

/// The rows a projection keeps by key, per table, between writes.
pub struct RowCache {
    tables: BTreeMap<&'static str, Box<dyn KeptTable>>,
    /// The batch being applied; each row remembers the last batch that used it.
    batch: u64,
    /// Rows per table that stay in memory after a write (the least recently used go).
    capacity: usize,
}

impl RowCache {
    /// Rows for one batch: written at its end, then forgotten.
    pub fn for_batch() -> Self {
        Self::keeping(0)
    }

    /// Rows kept across batches: after each write at most `capacity` per table stay.
    pub fn keeping(capacity: usize) -> Self {
        Self {
            tables: BTreeMap::new(),
            batch: 0,
            capacity,
        }
    }

    /// Starts the next batch (rows used from now on count as used by it).
    pub(crate) fn next_batch(&mut self) {
        self.batch += 1;
    }

    /// How many rows are changed and not yet written.
    pub fn changed(&self) -> usize {
        self.tables.values().map(|table| table.changed()).sum()
    }

    /// Writes every changed row to its table in `schema`, then forgets the least recently used
    /// rows beyond the capacity.
    pub async fn write(
        &mut self,
        conn: &mut PgConnection,
        schema: &str,
    ) -> Result<(), ProjectionError> {
        for table in self.tables.values_mut() {
            table.write(conn, schema).await?;
            table.forget_beyond(self.capacity);
        }
        Ok(())
    }

    /// The rows of `table` (keyed by its column `key`) for a batch that touches the `touched`
    /// keys: those neither kept nor made by the batch (the flag beside each key, see
    /// [`keys_to_load`]) are loaded; `key_of` reads a row's key back.
    pub(crate) async fn load<T: KeptRow>(
        &mut self,
        conn: &mut PgConnection,
        schema: &str,
        table: &'static str,
        key: &'static str,
        touched: impl IntoIterator<Item = (Uuid, bool)>,
        key_of: impl Fn(&T) -> Uuid,
    ) -> Result<&mut TableRows<T>, ProjectionError> {
        let batch = self.batch;
        let rows = self
            .tables
            .entry(table)
            .or_insert_with(|| Box::new(TableRows::<T>::new(table, key)))
            .as_any()
            .downcast_mut::<TableRows<T>>()
            .expect("a table's rows are always of one type");
        rows.load(conn, schema, touched, key_of, batch).await?;
        Ok(rows)
    }
}

/// What a kept row must be: written and read as JSON, moved between tasks.
pub(crate) trait KeptRow:
    Serialize + DeserializeOwned + Send + Sync + Unpin + 'static
{
}

impl<T: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static> KeptRow for T {}

/// A table's kept rows, whatever their type.
trait KeptTable: Send {
    fn as_any(&mut self) -> &mut dyn Any;
    fn changed(&self) -> usize;
    fn write<'a>(
        &'a mut self,
        conn: &'a mut PgConnection,
        schema: &'a str,
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
    fn forget_beyond(&mut self, capacity: usize);
}

/// A row, the last batch that used it, and whether its table holds a row of its key (loaded,
/// or written since): a row it does not hold is inserted, one it does is replaced.
struct Kept<T> {
    row: T,
    used: u64,
    stored: bool,
}

/// One table's kept rows, by key.
pub(crate) struct TableRows<T> {
    table: &'static str,
    key: &'static str,
    /// The keys of the rows changed since the last write, in key order (the order written).
    changed: BTreeSet<Uuid>,
    rows: HashMap<Uuid, Kept<T>>,
    /// The batch being applied.
    batch: u64,
}

impl<T: KeptRow> TableRows<T> {
    fn new(table: &'static str, key: &'static str) -> Self {
        Self {
            table,
            key,
            changed: BTreeSet::new(),
            rows: HashMap::new(),
            batch: 0,
        }
    }

    /// Marks the touched keys' kept rows used by `batch` and loads those missing that the batch
    /// does not make.
    async fn load(
        &mut self,
        conn: &mut PgConnection,
        schema: &str,
        touched: impl IntoIterator<Item = (Uuid, bool)>,
        key_of: impl Fn(&T) -> Uuid,
        batch: u64,
    ) -> Result<(), ProjectionError> {
        self.batch = batch;
        let mut missing = keys_to_load(touched);
        missing.retain(|key| match self.rows.get_mut(key) {
            Some(kept) => {
                kept.used = batch;
                false
            }
            None => true,
        });
        for row in load_rows::<T>(conn, schema, self.table, self.key, &missing).await? {
            let kept = Kept {
                row,
                used: batch,
                stored: true,
            };
            self.rows.insert(key_of(&kept.row), kept);
        }
        Ok(())
    }

    /// Puts a new row in (replacing any of the same key).
    pub(crate) fn insert(&mut self, key: Uuid, row: T) {
        self.changed.insert(key);
        let used = self.batch;
        let stored = self.rows.get(&key).is_some_and(|kept| kept.stored);
        self.rows.insert(key, Kept { row, used, stored });
    }

    /// The row of `key`, which an earlier event created, to change; `event`, about `key`, is an
    /// orphan if there is none.
    pub(crate) fn existing(
        &mut self,
        key: Uuid,
        event: &RecordedEvent,
    ) -> Result<&mut T, ProjectionError> {
        let kept = self.rows.get_mut(&key).ok_or_else(|| orphan(event, key))?;
        self.changed.insert(key);
        Ok(&mut kept.row)
    }

    /// The row of `key`, which an earlier event created, only to read; `event`, about `key`, is
    /// an orphan if there is none.
    pub(crate) fn stored(&self, key: Uuid, event: &RecordedEvent) -> Result<&T, ProjectionError> {
        self.rows
            .get(&key)
            .map(|kept| &kept.row)
            .ok_or_else(|| orphan(event, key))
    }

    /// The row of `key` to change, made with `new` if there is none yet.
    pub(crate) fn get_or_insert_with(&mut self, key: Uuid, new: impl FnOnce() -> T) -> &mut T {
        self.changed.insert(key);
        let used = self.batch;
        let kept = self.rows.entry(key).or_insert_with(|| Kept {
            row: new(),
            used,
            stored: false,
        });
        kept.used = used;
        &mut kept.row
    }
}

impl<T: KeptRow> KeptTable for TableRows<T> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn changed(&self) -> usize {
        self.changed.len()
    }

    /// Writes the changed rows back: those the table does not hold yet inserted (in a rebuild,
    /// most rows are new when first written, and a plain `COPY` skips staging them for an
    /// upsert), those it holds replaced, one statement each.
    fn write<'a>(
        &'a mut self,
        conn: &'a mut PgConnection,
        schema: &'a str,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let (mut new, mut stored) = (Vec::new(), Vec::new());
            for kept in self.changed.iter().filter_map(|key| self.rows.get(key)) {
                if kept.stored { &mut stored } else { &mut new }.push(&kept.row);
            }
            insert_rows(conn, schema, self.table, &new).await?;
            upsert_rows(conn, schema, self.table, self.key, &stored).await?;
            for key in std::mem::take(&mut self.changed) {
                if let Some(kept) = self.rows.get_mut(&key) {
                    kept.stored = true;
                }
            }
            Ok(())
        })
    }

    /// Forgets the least recently used rows until at most `capacity` remain (rows last used by
    /// the same batch go together, so a few more may go). Called after a write, when every row
    /// is stored.
    fn forget_beyond(&mut self, capacity: usize) {
        let Some(excess) = self.rows.len().checked_sub(capacity).filter(|n| *n > 0) else {
            return;
        };
        let mut used: Vec<u64> = self.rows.values().map(|kept| kept.used).collect();
        let (_, oldest_kept, _) = used.select_nth_unstable(excess - 1);
        let cutoff = *oldest_kept;
        self.rows.retain(|_, kept| kept.used > cutoff);
    }
}
