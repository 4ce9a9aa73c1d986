//! Subscriptions: catch up from a position by reading PostgreSQL, then follow live events from
//! JetStream, without gaps or duplicates at the hand-over.
//!
//! The hand-over works because the JetStream stream is an exact ordered copy of the log (see
//! [`crate::relay`]) and the relay records which stream sequence holds which log position.
//! Having caught up to position P, the subscription starts JetStream delivery just after the
//! relay's last recorded mark M and skips everything at or before P. M ≤ P, or M past P when
//! the log holds nothing of the subscription's categories between them (so a subscription of
//! a few categories goes live although the relay has published other events since). If the
//! mark cannot be trusted (stream recreated, relay not started), it keeps polling PostgreSQL.
//!
//! Live delivery is watched: when nothing has come for half a [`HEARTBEAT`], the subscription
//! asks the log whether it holds anything after its position (one gap-safe read of one event).
//! An event the log still holds undelivered at the next check means live delivery is stuck (a
//! NATS restart lost the consumer, NATS or the relay is down): the subscription drops it and
//! reads PostgreSQL, which keeps it current through the outage, and goes live again once the
//! relay's mark shows that JetStream holds the event it missed.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::StreamExt;

use crate::error::ReadError;
use crate::model::{LogPosition, RecordedEvent};
use crate::nats::{LogStreamConfig, NatsError, decode, position_of};
use crate::postgres::PgEventStore;
use crate::relay::{RelayMark, load_mark};
use crate::store::EventStore;

/// How long to wait between PostgreSQL polls when there is nothing new.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The longest a live subscription leaves an event the log holds for it undelivered before it
/// reads PostgreSQL instead; also the pause before it tries JetStream again after a failure.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Why a subscription could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// The log could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The database failed.
    #[error("subscription database error: {0}")]
    Database(#[from] sqlx::Error),
}

enum Source {
    Postgres,
    JetStream(Box<jetstream::consumer::pull::Ordered>),
}

/// What the subscription knows about live delivery while nothing arrives. Kept in the
/// subscription, not in a wait, so a caller that gives up waits does not restart the watch.
#[derive(Debug, Default)]
struct LiveWatch {
    /// When to ask the log whether it holds something undelivered.
    next_check: Option<Instant>,
    /// The first event the log held undelivered at the last check.
    owed: Option<LogPosition>,
}

/// Delivers the log's events in read order from a starting position.
pub struct Subscription {
    store: PgEventStore,
    live: Option<(jetstream::Context, LogStreamConfig)>,
    categories: Option<Vec<String>>,
    position: LogPosition,
    source: Source,
    watch: LiveWatch,
    /// After live delivery got stuck: the event it failed to bring; the subscription goes live
    /// again only once the relay's mark is at or past it.
    missed: Option<LogPosition>,
    /// No attempt to go live before this instant.
    retry_live_at: Option<Instant>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("position", &self.position)
            .field("categories", &self.categories)
            .field("live", &matches!(self.source, Source::JetStream(_)))
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Events after `position`, optionally only of some categories; live from JetStream when
    /// `live` is given, by polling PostgreSQL otherwise.
    pub fn new(
        store: PgEventStore,
        live: Option<(jetstream::Context, LogStreamConfig)>,
        categories: Option<Vec<String>>,
        position: LogPosition,
    ) -> Self {
        Self {
            store,
            live,
            categories,
            position,
            source: Source::Postgres,
            watch: LiveWatch::default(),
            missed: None,
            retry_live_at: None,
        }
    }

    /// The position of the last event delivered (or the start).
    pub fn position(&self) -> LogPosition {
        self.position
    }

    /// True while following JetStream rather than reading PostgreSQL.
    pub fn is_live(&self) -> bool {
        matches!(self.source, Source::JetStream(_))
    }

    /// The next events in order, at most `max`, waiting until there is at least one.
    ///
    /// Cancel-safe: a call dropped before it answers has taken nothing from the subscription
    /// (its waits hold no event yet, and the position moves only as it answers), so a caller
    /// may give up a wait and call again.
    pub async fn next_batch(
        &mut self,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, SubscriptionError> {
        loop {
            let batch = match &mut self.source {
                Source::Postgres => {
                    let batch = self
                        .store
                        .read_log(self.position, self.categories.as_deref(), max)
                        .await?;
                    if batch.is_empty() {
                        if !self.go_live().await {
                            tokio::time::sleep(POLL_INTERVAL).await;
                        }
                        continue;
                    }
                    batch
                }
                Source::JetStream(_) => match self.next_live(max).await? {
                    Some(batch) => batch,
                    None => continue,
                },
            };
            if let Some(last) = batch.last() {
                self.position = last.log_position;
                self.watch = LiveWatch::default();
                return Ok(batch);
            }
        }
    }

    /// What live delivery brings before the next check of the log is due; `None` when the check
    /// was made instead, or live delivery failed and was left.
    async fn next_live(
        &mut self,
        max: usize,
    ) -> Result<Option<Vec<RecordedEvent>>, SubscriptionError> {
        let Source::JetStream(messages) = &mut self.source else {
            return Ok(None);
        };
        let check_at = *self
            .watch
            .next_check
            .get_or_insert_with(|| Instant::now() + HEARTBEAT / 2);
        let received = tokio::time::timeout_at(
            check_at.into(),
            receive(messages, max, self.position, self.categories.as_deref()),
        )
        .await;
        match received {
            Ok(Ok(batch)) => Ok(Some(batch)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "live delivery failed; reading PostgreSQL");
                self.leave_live(None);
                Ok(None)
            }
            Err(_) => {
                self.check_live().await?;
                Ok(None)
            }
        }
    }

    /// Live delivery brought nothing for half a heartbeat: leaves it if the log has held an
    /// event for this subscription, undelivered, since the previous check.
    async fn check_live(&mut self) -> Result<(), SubscriptionError> {
        let pending = self
            .store
            .read_log(self.position, self.categories.as_deref(), 1)
            .await?;
        // Only once answered: a check given up by the caller is made again on the next call.
        self.watch.next_check = None;
        let Some(first) = pending.first() else {
            self.watch.owed = None;
            return Ok(());
        };
        if self.watch.owed.is_none() {
            self.watch.owed = Some(first.log_position);
            return Ok(());
        }
        tracing::warn!(
            position = %self.position,
            owed = %first.log_position,
            "live delivery brought nothing the log holds; reading PostgreSQL"
        );
        self.leave_live(Some(first.log_position));
        Ok(())
    }

    /// Drops live delivery for PostgreSQL; JetStream is tried again after a heartbeat, and
    /// after `missed` only once the relay has published it.
    fn leave_live(&mut self, missed: Option<LogPosition>) {
        self.source = Source::Postgres;
        self.watch = LiveWatch::default();
        self.missed = missed;
        self.retry_live_at = Some(Instant::now() + HEARTBEAT);
    }

    /// Switches to JetStream if NATS is connected and the relay's mark lets the hand-over be
    /// exact. An attempt takes at most half a heartbeat, and one that fails (or is given up
    /// by the caller) is not repeated for a heartbeat, so PostgreSQL keeps being read meanwhile.
    async fn go_live(&mut self) -> bool {
        let Some((js, config)) = &self.live else {
            return false;
        };
        if self.retry_live_at.is_some_and(|at| Instant::now() < at)
            || js.client().connection_state() != async_nats::connection::State::Connected
        {
            return false;
        }
        let attempt = start_live(
            &self.store,
            js,
            config,
            self.position,
            self.categories.as_deref(),
            self.missed,
        );
        self.retry_live_at = Some(Instant::now() + HEARTBEAT);
        match tokio::time::timeout(HEARTBEAT / 2, attempt).await {
            Ok(Ok(Some(messages))) => {
                self.source = Source::JetStream(Box::new(messages));
                self.watch = LiveWatch::default();
                self.missed = None;
                self.retry_live_at = None;
                true
            }
            Ok(Ok(None)) => {
                self.retry_live_at = None;
                false
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot follow JetStream yet");
                false
            }
            Err(_) => {
                tracing::debug!("JetStream did not answer; reading PostgreSQL");
                false
            }
        }
    }
}

async fn start_live(
    store: &PgEventStore,
    js: &jetstream::Context,
    config: &LogStreamConfig,
    position: LogPosition,
    categories: Option<&[String]>,
    missed: Option<LogPosition>,
) -> Result<Option<jetstream::consumer::pull::Ordered>, NatsError> {
    let Some(mark) = usable_mark(store, config, position, categories, missed).await? else {
        return Ok(None);
    };
    let stream = js
        .get_stream(&config.stream_name)
        .await
        .map_err(NatsError::jetstream)?;
    let at_mark = stream
        .get_raw_message(mark.jetstream_seq)
        .await
        .map_err(NatsError::jetstream)?;
    let (marked_position, _) = position_of(mark.jetstream_seq, &at_mark.headers)?;
    if marked_position != mark.position {
        tracing::warn!(
            seq = mark.jetstream_seq,
            "relay mark does not match the stream; polling"
        );
        return Ok(None);
    }
    let filter_subject = match categories {
        Some([only]) => config.category_subjects(only),
        _ => config.all_subjects(),
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject,
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: mark.jetstream_seq + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(NatsError::jetstream)?;
    let messages = consumer.messages().await.map_err(NatsError::jetstream)?;
    Ok(Some(messages))
}

/// The relay's mark, if JetStream delivery may start just after it without a gap: at or before
/// `position`, or past it with nothing of `categories` in between (an event of other categories
/// is nothing to this subscription), and at or past `missed`.
async fn usable_mark(
    store: &PgEventStore,
    config: &LogStreamConfig,
    position: LogPosition,
    categories: Option<&[String]>,
    missed: Option<LogPosition>,
) -> Result<Option<RelayMark>, NatsError> {
    let mark = load_mark(store.pool(), &config.stream_name)
        .await
        .map_err(NatsError::jetstream)?;
    let Some(mark) = mark.filter(|m| m.jetstream_seq > 0 && missed.is_none_or(|p| m.position >= p))
    else {
        return Ok(None);
    };
    if mark.position <= position {
        return Ok(Some(mark));
    }
    // Read after the mark was loaded, the log shows every event the relay had published by
    // then (it publishes only what a gap-safe reader sees), so this finds any event of these
    // categories that starting after the mark would skip.
    let next = store
        .read_log(position, categories, 1)
        .await
        .map_err(NatsError::jetstream)?;
    let skipped = next
        .first()
        .is_some_and(|e| e.log_position <= mark.position);
    Ok((!skipped).then_some(mark))
}

/// Waits for one message, then takes whatever else is already there, up to `max`.
async fn receive(
    messages: &mut jetstream::consumer::pull::Ordered,
    max: usize,
    after: LogPosition,
    categories: Option<&[String]>,
) -> Result<Vec<RecordedEvent>, NatsError> {
    let mut batch = Vec::new();
    let mut last = after;
    while batch.len() < max {
        let next = if batch.is_empty() {
            messages.next().await
        } else {
            // Unconstrained: tokio's cooperative budget (128 polls) would otherwise answer
            // "not ready" for messages already received and cap every batch at 128 messages.
            match futures::FutureExt::now_or_never(tokio::task::unconstrained(messages.next())) {
                Some(next) => next,
                None => break,
            }
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(NatsError::jetstream(e)),
            None => return Err(NatsError::JetStream("live delivery ended".into())),
        };
        let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
        // Position and category come from the headers and the subject, so an event of another
        // category (a consumer of several categories takes every subject) is never decoded.
        let Some(headers) = &message.headers else {
            return Err(NatsError::Foreign {
                sequence,
                why: "no headers".into(),
            });
        };
        let (position, _) = position_of(sequence, headers)?;
        if position <= last {
            continue;
        }
        last = position;
        let category = message.subject.rsplit('.').nth(1).unwrap_or_default();
        if categories.is_none_or(|c| c.iter().any(|c| c == category)) {
            batch.push(decode(sequence, &message.payload)?);
        }
    }
    Ok(batch)
}
