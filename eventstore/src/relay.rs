//! The relay: publishes every committed event, in log order, to NATS JetStream.
//!
//! The log is the source of truth and the relay its only publisher (the transactional-outbox
//! pattern without a separate outbox table). One relay leads at a time, elected by a PostgreSQL
//! advisory lock held on a dedicated connection: if the leader dies, its connection closes, the
//! lock is released and a standby takes over.
//!
//! The JetStream stream is kept an exact, ordered copy of the log: the relay resumes after the
//! last message the stream holds (not after a checkpoint that might be behind), every publish
//! carries `Nats-Msg-Id` = event id and expects the previous event's id as the stream's last
//! message id, so a stale second publisher is refused instead of interleaving.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use chrono::Utc;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use crate::error::ReadError;
use crate::model::{LogPosition, RecordedEvent};
use crate::nats::{LogStreamConfig, NatsError, encode, headers, position_of};
use crate::postgres::PgEventStore;
use crate::rows::{read_position, to_i64, to_u64};
use crate::store::EventStore;

/// How the relay paces itself.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Most events read and published per round.
    pub batch_size: usize,
    /// Pause when the log has nothing new.
    pub idle_poll: Duration,
    /// How often a standby tries to become the leader.
    pub standby_poll: Duration,
    /// How often the leader checks that its lock connection is alive.
    pub lock_check: Duration,
    /// How often progress is logged.
    pub progress_log: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 1_000,
            idle_poll: Duration::from_millis(10),
            standby_poll: Duration::from_secs(1),
            lock_check: Duration::from_secs(1),
            progress_log: Duration::from_secs(10),
        }
    }
}

/// Why the relay stopped leading.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// JetStream refused or failed.
    #[error(transparent)]
    Nats(#[from] NatsError),
    /// The log could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The database failed.
    #[error("relay database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An event could not be serialised.
    #[error("relay could not encode an event: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Publishes the log to JetStream.
#[derive(Debug, Clone)]
pub struct Relay {
    store: PgEventStore,
    jetstream: jetstream::Context,
    stream: LogStreamConfig,
    config: RelayConfig,
}

/// Where the relay stands, as stored in `ledger.relay_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayMark {
    /// The last event JetStream acknowledged.
    pub position: LogPosition,
    /// Its id.
    pub event_id: Option<uuid::Uuid>,
    /// Its stream sequence.
    pub jetstream_seq: u64,
}

impl Relay {
    /// A relay from `store` to the stream named in `stream`.
    pub fn new(
        store: PgEventStore,
        jetstream: jetstream::Context,
        stream: LogStreamConfig,
        config: RelayConfig,
    ) -> Self {
        Self {
            store,
            jetstream,
            stream,
            config,
        }
    }

    /// Runs forever: stands by until it holds the lock, then publishes; after any failure it
    /// lets go of the lock and starts over.
    pub async fn run(&self) {
        loop {
            match self.acquire_leadership().await {
                Ok(mut lock) => {
                    tracing::info!(stream = %self.stream.stream_name, "relay is leading");
                    if let Err(e) = self.lead(&mut lock).await {
                        tracing::warn!(error = %e, "relay stopped leading; retrying");
                        metrics::counter!("relay_restarts_total").increment(1);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "relay cannot reach the database"),
            }
            tokio::time::sleep(self.config.standby_poll).await;
        }
    }

    /// Waits until this relay holds the leader lock; the returned connection holds it.
    async fn acquire_leadership(&self) -> Result<PgConnection, sqlx::Error> {
        let mut conn = self.store.pool().acquire().await?.detach();
        loop {
            let leader: bool =
                sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                    .bind(format!("lightspeed-relay:{}", self.stream.stream_name))
                    .fetch_one(&mut conn)
                    .await?;
            if leader {
                return Ok(conn);
            }
            tokio::time::sleep(self.config.standby_poll).await;
        }
    }

    /// Publishes until something fails.
    async fn lead(&self, lock: &mut PgConnection) -> Result<(), RelayError> {
        let stream = self.stream.ensure_stream(&self.jetstream).await?;
        let (mut position, mut last_id, mut last_seq) = resume_point(&stream).await?;
        tracing::info!(%position, jetstream_seq = last_seq, "relay resumes");
        let mut last_lock_check = Instant::now();
        let mut progress = ProgressLog::new(self.config.progress_log);
        loop {
            if last_lock_check.elapsed() >= self.config.lock_check {
                lock.ping().await?;
                last_lock_check = Instant::now();
            }
            progress.maybe_log(position, last_seq);
            let events = self
                .store
                .read_log(position, None, self.config.batch_size)
                .await?;
            let (Some(first), Some(last)) = (events.first(), events.last()) else {
                metrics::gauge!("relay_lag_seconds").set(0.0);
                tokio::time::sleep(self.config.idle_poll).await;
                continue;
            };
            let lag = (Utc::now() - first.recorded_at)
                .to_std()
                .unwrap_or_default();
            metrics::gauge!("relay_lag_seconds").set(lag.as_secs_f64());
            last_seq = self.publish(&events, &mut last_id, last_seq).await?;
            position = last.log_position;
            progress.published += events.len() as u64;
            metrics::counter!("relay_published_total").increment(events.len() as u64);
            save_mark(
                self.store.pool(),
                &self.stream.stream_name,
                &RelayMark {
                    position,
                    event_id: Some(last.event_id),
                    jetstream_seq: last_seq,
                },
            )
            .await?;
        }
    }

    /// Publishes `events` in order, each expecting the one before it (`last_id`) as the
    /// stream's last message, then waits for every acknowledgement; answers the stream sequence
    /// of the last one acknowledged (`last_seq` when there were none).
    async fn publish(
        &self,
        events: &[RecordedEvent],
        last_id: &mut Option<String>,
        last_seq: u64,
    ) -> Result<u64, RelayError> {
        let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(events.len());
        for event in events {
            let mut message = PublishMessage::build()
                .payload(encode(event)?)
                .headers(headers(event));
            if let Some(previous) = last_id.as_ref() {
                message = message.expected_last_message_id(previous);
            }
            let ack = self
                .jetstream
                .send_publish(self.stream.subject(event), message)
                .await
                .map_err(NatsError::jetstream)?;
            acks.push(ack);
            *last_id = Some(event.event_id.to_string());
        }
        let mut sequence = last_seq;
        for ack in acks {
            sequence = ack.await.map_err(NatsError::jetstream)?.sequence;
        }
        Ok(sequence)
    }
}

/// The relay's periodic progress line: what it published since the last one, and how fast.
struct ProgressLog {
    every: Duration,
    since: Instant,
    published: u64,
}

impl ProgressLog {
    fn new(every: Duration) -> Self {
        Self {
            every,
            since: Instant::now(),
            published: 0,
        }
    }

    /// Logs progress if `every` has passed since the last line.
    fn maybe_log(&mut self, position: LogPosition, last_seq: u64) {
        if self.since.elapsed() < self.every {
            return;
        }
        let elapsed_ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            %position,
            jetstream_seq = last_seq,
            published = self.published,
            rate_per_s = self.published * 1000 / elapsed_ms.max(1),
            "relay progress"
        );
        self.published = 0;
        self.since = Instant::now();
    }
}

/// The position, event id and sequence of the last message the stream holds.
async fn resume_point(
    stream: &jetstream::stream::Stream,
) -> Result<(LogPosition, Option<String>, u64), NatsError> {
    let info = stream.get_info().await.map_err(NatsError::jetstream)?;
    let last_seq = info.state.last_sequence;
    if info.state.messages == 0 {
        return Ok((LogPosition::START, None, last_seq));
    }
    let message = stream
        .get_raw_message(last_seq)
        .await
        .map_err(NatsError::jetstream)?;
    let (position, event_id) = position_of(last_seq, &message.headers)?;
    Ok((position, Some(event_id), last_seq))
}

/// Records where the relay stands.
async fn save_mark(
    pool: &sqlx::PgPool,
    stream_name: &str,
    mark: &RelayMark,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ledger.relay_state
             (jetstream_stream, transaction_id, position, event_id, jetstream_seq, updated_at)
         VALUES ($1, $2::text::xid8, $3, $4, $5, now())
         ON CONFLICT (jetstream_stream) DO UPDATE SET
             transaction_id = EXCLUDED.transaction_id, position = EXCLUDED.position,
             event_id = EXCLUDED.event_id, jetstream_seq = EXCLUDED.jetstream_seq,
             updated_at = EXCLUDED.updated_at",
    )
    .bind(stream_name)
    .bind(mark.position.transaction_id.to_string())
    .bind(to_i64(mark.position.position))
    .bind(mark.event_id)
    .bind(to_i64(mark.jetstream_seq))
    .execute(pool)
    .await?;
    Ok(())
}

/// Where the relay of `stream_name` last stood, if it ever published.
pub async fn load_mark(
    pool: &sqlx::PgPool,
    stream_name: &str,
) -> Result<Option<RelayMark>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT transaction_id::text AS tx, position, event_id, jetstream_seq
           FROM ledger.relay_state WHERE jetstream_stream = $1",
    )
    .bind(stream_name)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(RelayMark {
        position: read_position(&row, "tx", "position")?,
        event_id: row.try_get("event_id")?,
        jetstream_seq: to_u64(row.try_get("jetstream_seq")?)?,
    }))
}
