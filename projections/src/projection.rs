//! What a read model is to the runtime: a name, a table layout, the categories it reads, and a
//! batch `apply` that writes its rows on the runtime's transaction.
//!
//! Rows are moved between Rust and PostgreSQL as JSON arrays (`json_populate_recordset` to
//! write, sent as text so the server parses it once without building `jsonb`; `json_agg` to
//! load kept rows; `to_jsonb` in the read functions), or, for writes of [`COPY_FROM_ROWS`] rows
//! or more, in `COPY`'s text format: one statement per table per batch whatever the batch size,
//! and the row structs double as the typed answers of the read functions.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use lightspeed_domain::DomainEvent;
use lightspeed_domain::calendar::IST;
use lightspeed_eventstore::RecordedEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use crate::copy_text;
use crate::error::ProjectionError;
pub use crate::row_cache::RowCache;

/// A read model: how to lay out its tables and how to apply a batch of events to them.
///
/// Applying has no side effect outside the given transaction: no notification, webhook or call
/// out ever starts from a projection, so a rebuild replays the whole log safely.
pub trait Projection: Send + Sync + 'static {
    /// Stable name, e.g. `"wallets"`; versions live in schemas `proj_<name>_v<version>`.
    fn name(&self) -> &'static str;

    /// The table layout this code writes; bump it when the tables change, then rebuild.
    fn layout(&self) -> i32;

    /// The stream categories it reads; `None` for the whole log.
    fn categories(&self) -> Option<&'static [&'static str]>;

    /// Its tables; each is exposed to readers as the view `read.<table>`.
    fn tables(&self) -> &'static [&'static str];

    /// The DDL that creates its tables and indexes in `schema`, statements separated by `;`. A
    /// rebuild runs the plain `CREATE INDEX` statements only once the rows are in.
    fn create_tables(&self, schema: &str) -> String;

    /// Applies events (in log order, none applied before) to the tables in `schema`.
    /// Rows kept by key go through `rows` ([`RowCache`]), which the caller writes before the
    /// transaction commits: SQL of its own on such a table must first write `rows`.
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        schema: &'a str,
        events: &'a [RecordedEvent],
        rows: &'a mut RowCache,
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
}

/// The error for an event the projection cannot read, and why.
pub(crate) fn undecodable(event: &RecordedEvent, why: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Decode {
        event_id: event.event_id,
        position: event.log_position,
        why: why.to_string(),
    }
}

/// Decodes an event into its domain type, upcasting older shapes.
pub(crate) fn decode<E: DomainEvent>(event: &RecordedEvent) -> Result<E, ProjectionError> {
    event.decode::<E>().map_err(|e| undecodable(event, e))
}

/// The aggregate id in an event's stream name (`wallet-<merchant id>` gives the merchant id).
pub(crate) fn stream_uuid(event: &RecordedEvent) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(event.stream_id.id()).map_err(|e| {
        undecodable(
            event,
            format!("stream {} does not name a uuid: {e}", event.stream_id),
        )
    })
}

/// The calendar day in India Standard Time an instant falls on.
pub(crate) fn ist_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&IST).date_naive()
}

/// The global log position as a `bigint`, which is what the log stores it as.
pub(crate) fn position_i64(event: &RecordedEvent) -> i64 {
    i64::try_from(event.log_position.position).expect("a log position is read from a bigint")
}

/// The events of `category` in a batch, decoded, each with the aggregate id its stream names.
pub(crate) fn facts_of<'e, E: DomainEvent>(
    events: &'e [RecordedEvent],
    category: &str,
) -> Result<Vec<(Uuid, &'e RecordedEvent, E)>, ProjectionError> {
    facts_made_into(events, category, |event| event)
}

/// The events of `category` in a batch, decoded and made into what `of` makes of them, each
/// with the aggregate id its stream names; one pass, no intermediate list.
fn facts_made_into<'e, E: DomainEvent, T>(
    events: &'e [RecordedEvent],
    category: &str,
    of: impl Fn(E) -> T,
) -> Result<Vec<(Uuid, &'e RecordedEvent, T)>, ProjectionError> {
    let mut facts = Vec::with_capacity(events.len());
    for event in events {
        if event.stream_id.category() == category {
            facts.push((stream_uuid(event)?, event, of(decode::<E>(event)?)));
        }
    }
    Ok(facts)
}

/// The error for an event about `id`, of which the read model holds no row: every stream
/// starts with the event that creates its row, so the log breaks the domain's rules.
pub(crate) fn orphan(event: &RecordedEvent, id: Uuid) -> ProjectionError {
    ProjectionError::Orphan {
        event_id: event.event_id,
        position: event.log_position,
        id,
    }
}

/// What an event does to a read model's row: the event that creates the row, already made into
/// it, or an event that changes the row made before it.
pub(crate) enum RowChange<R, E> {
    /// The new row.
    Created(R),
    /// An event for the existing row.
    Changed(E),
}

impl<R, E> RowChange<R, E> {
    /// Whether this change makes its row (so nothing stored before it needs loading).
    pub(crate) fn creates(&self) -> bool {
        matches!(self, RowChange::Created(_))
    }
}

/// What one event does to the row of the aggregate its stream names (that id first).
pub(crate) type KeyedChange<'e, R, E> = (Uuid, &'e RecordedEvent, RowChange<R, E>);

/// The events of `category` in a batch, each with the aggregate id its stream names, made into
/// what they do to their row by `of`.
pub(crate) fn row_changes_of<'e, E: DomainEvent, R>(
    events: &'e [RecordedEvent],
    category: &str,
    of: impl Fn(E) -> RowChange<R, E>,
) -> Result<Vec<KeyedChange<'e, R, E>>, ProjectionError> {
    facts_made_into(events, category, of)
}

/// The keys a batch touches whose rows must be loaded: those whose first fact in the batch does
/// not create the row. A row made by the batch replaces whatever a load would have found, so
/// loading it is wasted (and in a rebuild most rows are made by the batch that changes them).
pub(crate) fn keys_to_load(touched: impl IntoIterator<Item = (Uuid, bool)>) -> Vec<Uuid> {
    let mut seen = HashSet::new();
    let mut load = Vec::new();
    for (key, creates) in touched {
        if seen.insert(key) && !creates {
            load.push(key);
        }
    }
    load.sort_unstable();
    load
}

/// The rows of `table` whose `key` is one of `keys`.
pub(crate) async fn load_rows<T: DeserializeOwned + Send + Unpin + 'static>(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
    key: &str,
    keys: &[Uuid],
) -> Result<Vec<T>, ProjectionError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    // One index probe per key, whatever the statistics say: a version being built is never
    // analyzed, and with `key = ANY($1)` the planner filtered a scan of the whole table through
    // a hash of the keys on every batch, so a rebuild's cost grew with the square of the table.
    // `OFFSET 0` keeps the planner from folding the probe back into a join. The rows go out as
    // `json` text, which the server writes straight from each row: building `jsonb` first (to
    // sort and deduplicate keys nobody needs sorted) took three to four times as long.
    let sql = format!(
        "SELECT coalesce(json_agg(t), '[]'::json)
           FROM unnest($1::uuid[]) AS wanted(key)
          CROSS JOIN LATERAL (
              SELECT * FROM {schema}.{table} WHERE {key} = wanted.key OFFSET 0
          ) AS t"
    );
    let Json(rows): Json<Vec<T>> = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(keys)
        .fetch_one(conn)
        .await?;
    Ok(rows)
}

/// The columns a row struct writes: its serde field names, in the order serde gives them.
fn columns<T: Serialize>(row: &T) -> Result<Vec<String>, ProjectionError> {
    let mut columns = Vec::new();
    copy_text::write_row(&mut Vec::new(), row, Some(&mut columns))?;
    Ok(columns)
}

/// Writes `rows` into `table`, replacing the rows with the same `key`. Only the struct's columns
/// are written: a column it does not know keeps its value (or its default on a new row).
pub(crate) async fn upsert_rows<T: Serialize>(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
    key: &str,
    rows: &[T],
) -> Result<(), ProjectionError> {
    merge_rows(conn, schema, table, key, rows, |c| {
        format!("{c} = EXCLUDED.{c}")
    })
    .await
}

/// Adds `rows` to the rows of `table` with the same `key` (its columns, comma-separated), in one
/// statement: every other column of a row is a count, added to the stored one; a row not yet
/// stored is inserted as it is.
pub(crate) async fn add_counts<T: Serialize>(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
    key: &str,
    rows: &[T],
) -> Result<(), ProjectionError> {
    merge_rows(conn, schema, table, key, rows, |c| {
        format!("{c} = t.{c} + EXCLUDED.{c}")
    })
    .await
}

/// Inserts `rows` into `table`; a row that is already there is an error (a fact twice).
pub(crate) async fn insert_rows<T: Serialize>(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
    rows: &[T],
) -> Result<(), ProjectionError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let columns = columns(first)?;
    if rows.len() >= COPY_FROM_ROWS {
        return copy_in(conn, &format!("{schema}.{table}"), &columns, rows).await;
    }
    let list = columns.join(", ");
    let insert = format!(
        "INSERT INTO {schema}.{table} ({list}) SELECT {list} FROM {}",
        json_rows(schema, table)
    );
    sqlx::query(AssertSqlSafe(insert))
        .bind(serde_json::to_string(rows)?)
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts `rows` into `table` (stored as `t`); a row whose `key` (its columns, comma-separated)
/// is stored already sets every other column to `assign(column)` instead.
async fn merge_rows<T: Serialize>(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
    key: &str,
    rows: &[T],
    assign: impl Fn(&str) -> String,
) -> Result<(), ProjectionError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let columns = columns(first)?;
    let keys: Vec<&str> = key.split(',').map(str::trim).collect();
    let assignments: Vec<String> = columns
        .iter()
        .filter(|c| !keys.contains(&c.as_str()))
        .map(|c| assign(c))
        .collect();
    let list = columns.join(", ");
    let merge = |source: &str| {
        format!(
            "INSERT INTO {schema}.{table} AS t ({list}) SELECT {list} FROM {source}
             ON CONFLICT ({key}) DO UPDATE SET {}",
            assignments.join(", ")
        )
    };
    if rows.len() < COPY_FROM_ROWS {
        sqlx::query(AssertSqlSafe(merge(&json_rows(schema, table))))
            .bind(serde_json::to_string(rows)?)
            .execute(conn)
            .await?;
        return Ok(());
    }
    // COPY cannot resolve conflicts, so the rows go to a temporary table first (dropped at once:
    // a transaction may write the same table again).
    let staged = format!("pg_temp.staged_{table}");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TEMPORARY TABLE staged_{table} (LIKE {schema}.{table} INCLUDING DEFAULTS)"
    )))
    .execute(&mut *conn)
    .await?;
    copy_in(conn, &staged, &columns, rows).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "{}; DROP TABLE {staged}",
        merge(&staged)
    )))
    .execute(conn)
    .await?;
    Ok(())
}

/// The rows of `table` sent as one JSON text in `$1`, as a row source.
fn json_rows(schema: &str, table: &str) -> String {
    format!("json_populate_recordset(NULL::{schema}.{table}, $1::text::json)")
}

/// Batches of at least this many rows are written with `COPY`, smaller ones as one JSON
/// parameter. `json_populate_recordset` takes about 22 µs a row (151 331 transaction rows: 3.3 to
/// 4.2 s); `COPY` into a temporary table and inserting from it took 2.2 to 2.9 s for the same
/// rows. Below this, creating the temporary table costs more than parsing the JSON.
const COPY_FROM_ROWS: usize = 1_000;

/// Bytes of `COPY` text sent at a time: large writes stream instead of building one buffer.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// Sends `rows` to `target`'s `columns` with `COPY … FROM STDIN` (text format).
async fn copy_in<T: Serialize>(
    conn: &mut PgConnection,
    target: &str,
    columns: &[String],
    rows: &[T],
) -> Result<(), ProjectionError> {
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {target} ({}) FROM STDIN",
            columns.join(", ")
        ))
        .await?;
    let mut data = Vec::with_capacity(COPY_CHUNK_BYTES + COPY_CHUNK_BYTES / 4);
    for row in rows {
        if copy_text::write_row(&mut data, row, None)? != columns.len() {
            return Err(ProjectionError::Row(serde::ser::Error::custom(
                "every row of a write must have the same columns",
            )));
        }
        if data.len() >= COPY_CHUNK_BYTES {
            copy.send(data.as_slice()).await?;
            data.clear();
        }
    }
    copy.send(data.as_slice()).await?;
    copy.finish().await?;
    Ok(())
}

/// The name serde gives a unit enum variant, e.g. `"round_robin"` for `RoutingMode::RoundRobin`.
///
/// Only for fieldless enums: they serialise to a string, infallibly.
pub(crate) fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => panic!("serde_name takes a unit enum variant, which names itself; got {other:?}"),
    }
}
