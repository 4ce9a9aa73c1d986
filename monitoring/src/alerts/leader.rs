//! One evaluator leads across replicas: the holder of a PostgreSQL session advisory lock, kept on
//! a connection of its own.
//!
//! Why an advisory lock rather than a lease row: the relay already elects its leader this way, so
//! there is one election mechanism to understand; PostgreSQL releases the lock the moment the
//! holder's connection ends (a crash, a kill, a network cut), so a standby takes over at its next
//! tick with no lease length to tune against clock skew or pauses; and nothing is written per
//! tick. A standby keeps its own connection and asks again each tick.

use sqlx::Connection as _;
use sqlx::PgPool;
use sqlx::postgres::PgConnection;

/// The lock's name (hashed to its key); advisory locks are per database.
pub const LEADER_LOCK: &str = "lightspeed-alerts";

/// This process's claim to lead the alert evaluation.
pub struct Leadership {
    pool: PgPool,
    conn: Option<PgConnection>,
    leading: bool,
}

impl Leadership {
    /// No claim yet; [`Leadership::hold`] makes one.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            conn: None,
            leading: false,
        }
    }

    /// Whether this process led at its last [`Leadership::hold`].
    pub fn leading(&self) -> bool {
        self.leading
    }

    /// Whether this process leads now: it keeps the lock if its connection still answers, or
    /// takes it if no one holds it. A connection that fails is dropped (releasing the lock on
    /// the server's side), and the next call starts over.
    pub async fn hold(&mut self) -> Result<bool, sqlx::Error> {
        let answer = self.ask().await;
        if answer.is_err() {
            if let Some(conn) = self.conn.take() {
                let _ = conn.close().await;
            }
            self.leading = false;
        }
        answer
    }

    async fn ask(&mut self) -> Result<bool, sqlx::Error> {
        if self.conn.is_none() {
            self.conn = Some(self.pool.acquire().await?.detach());
        }
        let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        if self.leading {
            conn.ping().await?;
            return Ok(true);
        }
        self.leading = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(LEADER_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        Ok(self.leading)
    }
}
