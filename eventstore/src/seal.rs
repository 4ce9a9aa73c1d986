//! Background sealing: contiguous ranges of the log, in read order and below the gap-safe
//! watermark, are chained into seals. Appends never wait for it and take no global lock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::Row;

use crate::hash::SealHasher;
use crate::model::LogPosition;
use crate::rows::{read_position, to_i64, to_u64};

/// How the sealer paces itself.
#[derive(Debug, Clone)]
pub struct SealerConfig {
    /// Most events one seal covers.
    pub max_events_per_seal: usize,
    /// Pause when there is nothing (or little) to seal.
    pub interval: Duration,
}

impl Default for SealerConfig {
    fn default() -> Self {
        Self {
            max_events_per_seal: 10_000,
            interval: Duration::from_secs(1),
        }
    }
}

/// One link of the seal chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// 1, 2, 3, … without gaps.
    pub seal_number: u64,
    /// The first event it covers.
    pub first: LogPosition,
    /// The last event it covers.
    pub last: LogPosition,
    /// How many events it covers.
    pub event_count: u64,
    /// The previous seal's hash (zeros for the first seal).
    #[serde(with = "crate::hex32")]
    pub previous_hash: [u8; 32],
    /// This seal's hash (see [`crate::hash`]).
    #[serde(with = "crate::hex32")]
    pub seal_hash: [u8; 32],
    /// Per event in order: position and the first 8 bytes of its row hash.
    pub entries: Vec<SealEntry>,
    /// When it was made.
    pub sealed_at: DateTime<Utc>,
}

/// One event as its seal remembers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealEntry {
    /// The event's global position.
    pub position: u64,
    /// The first 8 bytes of its row hash, enough to tell which event sits there.
    pub hash_prefix: u64,
}

impl SealEntry {
    /// Bytes per entry in `ledger.seals.entries`.
    pub const SIZE: usize = 16;

    /// The entry of an event.
    pub fn of(position: u64, row_hash: &[u8; 32]) -> Self {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&row_hash[..8]);
        Self {
            position,
            hash_prefix: u64::from_be_bytes(prefix),
        }
    }

    fn encode_all(entries: &[SealEntry]) -> Vec<u8> {
        let mut out = Vec::with_capacity(entries.len() * Self::SIZE);
        for entry in entries {
            out.extend_from_slice(&entry.position.to_be_bytes());
            out.extend_from_slice(&entry.hash_prefix.to_be_bytes());
        }
        out
    }

    fn decode_all(bytes: &[u8]) -> Option<Vec<SealEntry>> {
        if !bytes.len().is_multiple_of(Self::SIZE) {
            return None;
        }
        bytes
            .chunks_exact(Self::SIZE)
            .map(|chunk| {
                let (position, prefix) = chunk.split_at(8);
                Some(SealEntry {
                    position: u64::from_be_bytes(position.try_into().ok()?),
                    hash_prefix: u64::from_be_bytes(prefix.try_into().ok()?),
                })
            })
            .collect()
    }
}

/// Why sealing failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The database failed.
    #[error("sealer database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row or seal is malformed.
    #[error("malformed row while sealing: {0}")]
    Malformed(String),
}

/// Seals the log in the background.
#[derive(Debug, Clone)]
pub struct Sealer {
    pool: PgPool,
    config: SealerConfig,
}

impl Sealer {
    /// A sealer over the log in `pool`.
    pub fn new(pool: PgPool, config: SealerConfig) -> Self {
        Self { pool, config }
    }

    /// Seals forever.
    pub async fn run(&self) {
        loop {
            let full = match self.seal_once().await {
                Ok(Some(seal)) => {
                    metrics::counter!("seals_total").increment(1);
                    seal.event_count as usize >= self.config.max_events_per_seal
                }
                Ok(None) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "sealing failed; retrying");
                    false
                }
            };
            if !full {
                tokio::time::sleep(self.config.interval).await;
            }
        }
    }

    /// Seals the next range of unsealed, gap-safe events, if there is one.
    pub async fn seal_once(&self) -> Result<Option<Seal>, SealError> {
        let previous = last_seal(&self.pool).await?;
        let (after, previous_hash, seal_number) = match &previous {
            Some(seal) => (seal.last, seal.seal_hash, seal.seal_number + 1),
            None => (LogPosition::START, [0u8; 32], 1),
        };
        let rows = sqlx::query(
            "SELECT transaction_id::text AS tx, position, row_hash FROM ledger.events
              WHERE (transaction_id, position) > ($1::text::xid8, $2)
                AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY transaction_id, position LIMIT $3",
        )
        .bind(after.transaction_id.to_string())
        .bind(to_i64(after.position))
        .bind(to_i64(self.config.max_events_per_seal as u64))
        .fetch_all(&self.pool)
        .await?;
        let Some(first_row) = rows.first() else {
            return Ok(None);
        };
        let first = read_position(first_row, "tx", "position")?;
        let mut hasher = SealHasher::new(seal_number, &previous_hash);
        let mut entries = Vec::with_capacity(rows.len());
        let mut last = first;
        for row in &rows {
            let position = read_position(row, "tx", "position")?;
            let hash: Vec<u8> = row.try_get("row_hash")?;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| SealError::Malformed(format!("row hash at {position}")))?;
            hasher.push(position.position, &hash);
            entries.push(SealEntry::of(position.position, &hash));
            last = position;
        }
        let event_count = hasher.count();
        let seal = Seal {
            seal_number,
            first,
            last,
            event_count,
            previous_hash,
            seal_hash: hasher.finish(),
            entries,
            sealed_at: Utc::now(),
        };
        let inserted = self.store(&seal).await?;
        // Another sealer made this seal first; it covers the same range.
        Ok(inserted.then_some(seal))
    }

    /// Stores `seal` unless a seal of its number exists; answers whether it was stored.
    async fn store(&self, seal: &Seal) -> Result<bool, sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO ledger.seals (seal_number, first_transaction_id, first_position,
                 last_transaction_id, last_position, event_count, previous_hash, seal_hash,
                 entries, sealed_at)
             VALUES ($1, $2::text::xid8, $3, $4::text::xid8, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (seal_number) DO NOTHING",
        )
        .bind(to_i64(seal.seal_number))
        .bind(seal.first.transaction_id.to_string())
        .bind(to_i64(seal.first.position))
        .bind(seal.last.transaction_id.to_string())
        .bind(to_i64(seal.last.position))
        .bind(to_i64(seal.event_count))
        .bind(seal.previous_hash.as_slice())
        .bind(seal.seal_hash.as_slice())
        .bind(SealEntry::encode_all(&seal.entries))
        .bind(seal.sealed_at)
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }
}

const SEAL_COLUMNS: &str = "seal_number, first_transaction_id::text AS first_tx, first_position,
    last_transaction_id::text AS last_tx, last_position, event_count, previous_hash, seal_hash,
    entries, sealed_at";

fn decode_seal(row: &sqlx::postgres::PgRow) -> Result<Seal, SealError> {
    let hash = |column: &str| -> Result<[u8; 32], SealError> {
        let bytes: Vec<u8> = row.try_get(column)?;
        bytes
            .try_into()
            .map_err(|_| SealError::Malformed(format!("{column} is not 32 bytes")))
    };
    Ok(Seal {
        seal_number: to_u64(row.try_get("seal_number")?)?,
        first: read_position(row, "first_tx", "first_position")?,
        last: read_position(row, "last_tx", "last_position")?,
        event_count: to_u64(row.try_get("event_count")?)?,
        previous_hash: hash("previous_hash")?,
        seal_hash: hash("seal_hash")?,
        entries: SealEntry::decode_all(&row.try_get::<Vec<u8>, _>("entries")?)
            .ok_or_else(|| SealError::Malformed("entries are not 16-byte records".into()))?,
        sealed_at: row.try_get("sealed_at")?,
    })
}

/// The newest seal, if any.
pub async fn last_seal(pool: &PgPool) -> Result<Option<Seal>, SealError> {
    let sql = format!("SELECT {SEAL_COLUMNS} FROM ledger.seals ORDER BY seal_number DESC LIMIT 1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(decode_seal).transpose()
}

/// Every seal, in chain order.
pub async fn load_seals(pool: &PgPool) -> Result<Vec<Seal>, SealError> {
    let sql = format!("SELECT {SEAL_COLUMNS} FROM ledger.seals ORDER BY seal_number");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?;
    rows.iter().map(decode_seal).collect()
}
