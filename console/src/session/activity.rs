//! `console.session_activity`: when each session was last seen (idle expiry) and the list of
//! open sessions admins see. The console owns this schema; no other crate writes SQL on it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Most sessions the admins' list shows.
pub const MAX_LISTED: i64 = 500;

/// One open session as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    /// The session.
    pub session_id: Uuid,
    /// Who.
    pub email: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it was last used.
    pub last_seen_at: DateTime<Utc>,
}

/// Records a session that just started.
pub async fn started(
    pool: &PgPool,
    session_id: Uuid,
    email: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO console.session_activity (session_id, email, started_at, last_seen_at)
         VALUES ($1, $2, $3, $3) ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(session_id)
    .bind(email)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}

/// When the session was last seen, if it is recorded and not ended.
pub async fn last_seen(
    pool: &PgPool,
    session_id: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT last_seen_at FROM console.session_activity
          WHERE session_id = $1 AND ended_at IS NULL",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await
}

/// Marks the session seen at `at` (never moving the mark back).
pub async fn seen(pool: &PgPool, session_id: Uuid, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE console.session_activity SET last_seen_at = greatest(last_seen_at, $2)
          WHERE session_id = $1",
    )
    .bind(session_id)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks the session ended (the log holds the decision; this only shortens the list).
pub async fn ended(pool: &PgPool, session_id: Uuid, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE console.session_activity SET ended_at = $2
          WHERE session_id = $1 AND ended_at IS NULL",
    )
    .bind(session_id)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Sessions not ended and seen since `idle_since`, most recently seen first.
pub async fn open(
    pool: &PgPool,
    idle_since: DateTime<Utc>,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT session_id, email, started_at, last_seen_at FROM console.session_activity
          WHERE ended_at IS NULL AND last_seen_at >= $1
          ORDER BY last_seen_at DESC LIMIT $2",
    )
    .bind(idle_since)
    .bind(MAX_LISTED)
    .fetch_all(pool)
    .await
}
