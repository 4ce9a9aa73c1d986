//! A category's events, newest first, a page at a time: for lists people browse of a category
//! small enough to be read from the log directly (no read model holds it).
//!
//! Read from the table as committed now, not with the gap-safe reader: a list for people shows
//! what was appended a moment ago.

use sqlx::PgPool;

use crate::rows::{decode_row, event_columns};
use crate::{ReadError, RecordedEvent};

/// Which events of a category to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewestEvents<'a> {
    /// The category.
    pub category: &'a str,
    /// Only streams whose id (the part after `<category>-`), up to its first `.`, is this.
    pub id_first_part: Option<&'a str>,
    /// Only events before this log position (a cursor).
    pub before: Option<i64>,
    /// Only events that are the latest of their stream, and of one of these types.
    pub latest_of_types: Option<&'a [&'a str]>,
    /// Most events answered.
    pub limit: i64,
}

/// The events `page` asks for, newest first (by log position).
pub async fn newest_events(
    pool: &PgPool,
    page: &NewestEvents<'_>,
) -> Result<Vec<RecordedEvent>, ReadError> {
    let rows = sqlx::query(concat!(
        "WITH events AS (
             SELECT e.*, substr(e.stream_id, length($1) + 2) AS id
               FROM ledger.events e
              WHERE e.category = $1
         ), latest AS (
             SELECT DISTINCT ON (stream_id) position FROM events
              ORDER BY stream_id, stream_version DESC
         )
         SELECT ",
        event_columns!(),
        " FROM events
          WHERE ($2::text IS NULL OR split_part(id, '.', 1) = $2)
            AND ($3::bigint IS NULL OR position < $3)
            AND ($4::text[] IS NULL
                 OR (event_type = ANY($4) AND position IN (SELECT position FROM latest)))
          ORDER BY position DESC
          LIMIT $5"
    ))
    .persistent(false)
    .bind(page.category)
    .bind(page.id_first_part)
    .bind(page.before)
    .bind(page.latest_of_types)
    .bind(page.limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(decode_row).collect()
}
