//! The work-queue runtime: a named queue is one or more durable JetStream pull consumers (one
//! filter subject each, as nats-server 2.9 allows), whose messages are handled as jobs, at most
//! `concurrency` at a time across all of the queue's consumers.
//!
//! A [`JobHandler`] answers each job with a [`JobOutcome`]:
//!
//! | outcome | acknowledgement | counted as |
//! |---|---|---|
//! | `Done` | `+ACK`, confirmed by the server (double ack) | `done` |
//! | `RetryAfter(d)` | `-NAK` with delay `d` | `retried` |
//! | `GiveUp(reason)` | kept on the failed-jobs stream, then `+TERM` | `failed` |
//!
//! A job given up on waits on the failed-jobs stream ([`crate::failed`]) until ops retry it; the
//! queue also consumes its `.retry` subject there. Before every fetch the queue asks its
//! [`PauseGate`]: a paused queue fetches nothing, so its jobs wait in the broker.
//!
//! Consumers are durable and named from the queue and the filter subject, so every replica of a
//! worker binds to the same consumers and they compete for its messages. Delivery is at least
//! once: handlers make every effect idempotent.
//!
//! A running job tells the server every [`PROGRESS_EVERY`] that it is still being worked on
//! (an "in progress" acknowledgement), which starts the consumer's short [`ACK_WAIT`] again: a
//! job whose worker died is handed to another worker within [`ACK_WAIT`] of its last sign of
//! life, and a job still running is never handed to a second one.
//!
//! Bounds, all named below: jobs in flight per queue ([`DEFAULT_CONCURRENCY`], at most
//! [`MAX_CONCURRENCY`]), time per job ([`JOB_TIMEOUT`]), silence before a job is redelivered
//! ([`ACK_WAIT`]), messages delivered and not yet acknowledged per consumer ([`MAX_ACK_PENDING`],
//! which includes jobs waiting out a delayed `nak`), deliveries per message ([`MAX_DELIVER`],
//! derived from the retry schedules), and the wait of one pull request ([`FETCH_WAIT`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::{ConsumerInfoErrorKind, GetStreamErrorKind};
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use lightspeed_domain::retry::{
    Backoff, Jitter, PSP_CALLS, WEBHOOK_LONGEST_WAIT, WHATSAPP, WHATSAPP_RATE_LIMITED,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::failed::{FailedJobStream, original_subject};

/// Jobs a queue runs at once unless configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 25;
/// Most jobs a queue may run at once.
pub const MAX_CONCURRENCY: usize = 1_000;
/// How long the server waits for an acknowledgement, or a sign of progress, before it delivers a
/// message again: how soon a job abandoned by a dead worker is retried.
pub const ACK_WAIT: Duration = Duration::from_secs(6);
/// How often a running job signals progress. Three signals per [`ACK_WAIT`], so a signal lost now
/// and then never hands a job that is still running to another worker.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);
const _: () = assert!(PROGRESS_EVERY.as_millis() * 3 <= ACK_WAIT.as_millis());
/// Longest a job may run; a job still running then is abandoned and retried.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(90);
/// Most messages one consumer has delivered and not yet seen acknowledged. Messages waiting out a
/// delayed `nak` count here too (the server keeps them pending), so this is far above the
/// concurrency: it bounds how many scheduled retries a consumer can hold.
pub const MAX_ACK_PENDING: i64 = 10_000;
/// Retries of a job that failed for a passing reason (database or NATS hiccup): 1 s doubling to
/// one minute, 64 attempts, which rides out about an hour of outage.
pub const TRANSIENT_RETRY: Backoff = Backoff {
    max_attempts: 64,
    base: Duration::from_secs(1),
    max_wait: Duration::from_secs(60),
};
/// Deliveries a job may spend waiting for its due time (a delayed `nak` per look) at the default
/// re-check ([`crate::DEFAULT_DUE_RECHECK`]): one look per re-check over the longest wait any
/// schedule sets (a merchant webhook's last slot, stretched by the largest jitter), and the look
/// that finds it due.
pub const DUE_WAIT_LOOKS: u64 = {
    let stretched_secs =
        WEBHOOK_LONGEST_WAIT.as_secs() * (10_000 + Jitter::MAX_BPS as u64) / 10_000;
    stretched_secs.div_ceil(crate::DEFAULT_DUE_RECHECK.as_secs()) + 1
};
// The merchant webhook schedule sets the longest wait of all.
const _: () = {
    let longest = WEBHOOK_LONGEST_WAIT.as_secs();
    assert!(PSP_CALLS.max_wait.as_secs() <= longest);
    assert!(WHATSAPP.max_wait.as_secs() <= longest);
    assert!(WHATSAPP_RATE_LIMITED.max_wait.as_secs() <= longest);
};
/// Deliveries a job may lose to workers that died or stopped while running it.
pub const ABANDONED_DELIVERIES: u64 = 8;
/// Most times one message is delivered: its longest wait for a due time, the longest retry
/// schedule it may follow, and workers lost on the way. A job still asking to be retried at its
/// last delivery is given up, so nothing is retried without end.
pub const MAX_DELIVER: i64 =
    (DUE_WAIT_LOOKS + TRANSIENT_RETRY.max_attempts as u64 + ABANDONED_DELIVERIES) as i64;
// Passing failures have the longest retry schedule: the PSP and RazorpayX ones fit inside it.
const _: () = {
    let longest = TRANSIENT_RETRY.max_attempts;
    assert!(PSP_CALLS.max_attempts <= longest);
    assert!(crate::payouts::RAZORPAYX_CALLS.max_attempts <= longest);
};
/// How long one pull request waits for messages before it is renewed.
pub const FETCH_WAIT: Duration = Duration::from_secs(2);
/// Most messages one pull request asks for.
pub const MAX_BATCH: usize = 64;
/// Pauses between failed pull requests (a NATS outage): 100 ms doubling to 5 s.
const FETCH_ERROR_BACKOFF: Backoff = Backoff {
    max_attempts: u32::MAX,
    base: Duration::from_millis(100),
    max_wait: Duration::from_secs(5),
};

/// How often a paused queue asks its [`PauseGate`] again.
pub const PAUSE_RECHECK: Duration = Duration::from_secs(1);

/// What a queue consumes: its name, the JetStream stream, the filter subjects (one durable
/// consumer each), where its failed jobs go, and how many jobs run at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// The queue's name, e.g. `transaction-processing`; used in consumer names and metrics.
    pub name: String,
    /// The JetStream stream the consumers read.
    pub stream: String,
    /// One subject per consumer.
    pub filters: Vec<String>,
    /// Where jobs given up on are kept, and retried from (one more consumer).
    pub failed: FailedJobStream,
    /// Jobs run at once, shared by all the queue's consumers.
    pub concurrency: usize,
}

impl QueueSpec {
    /// The durable consumer names, one per filter subject, in the order of the filters.
    pub fn durable_names(&self) -> Vec<String> {
        self.filters
            .iter()
            .map(|filter| durable_name(&self.name, filter))
            .collect()
    }

    /// The durable consumer of the queue's retried jobs on the failed-jobs stream.
    pub fn retry_durable_name(&self) -> String {
        durable_name(&self.name, &self.failed.retry_subject(&self.name))
    }

    /// Every consumer of the queue: (stream, durable name, filter subject), the retry one last.
    fn consumers(&self) -> Vec<(String, String, String)> {
        self.filters
            .iter()
            .map(|filter| {
                (
                    self.stream.clone(),
                    durable_name(&self.name, filter),
                    filter.clone(),
                )
            })
            .chain(std::iter::once((
                self.failed.stream_name.clone(),
                self.retry_durable_name(),
                self.failed.retry_subject(&self.name),
            )))
            .collect()
    }

    fn broker_error(&self, action: &'static str, e: &dyn std::fmt::Display) -> QueueError {
        QueueError::JetStream {
            queue: self.name.clone(),
            action,
            reason: e.to_string(),
        }
    }

    fn validate(&self) -> Result<(), QueueError> {
        if self.filters.is_empty() {
            return Err(QueueError::NoFilter {
                queue: self.name.clone(),
            });
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(QueueError::Concurrency {
                queue: self.name.clone(),
                concurrency: self.concurrency,
            });
        }
        Ok(())
    }
}

/// The durable consumer name of one filter of a queue: `<queue>--<filter>`, with every character
/// a consumer name may not hold (`.`, `*`, `>`, whitespace, …) replaced by `_`. The same inputs
/// give the same name on every replica and after every restart.
pub fn durable_name(queue: &str, filter: &str) -> String {
    let safe = |c: char| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        }
    };
    format!(
        "{}--{}",
        queue.chars().map(safe).collect::<String>(),
        filter.chars().map(safe).collect::<String>()
    )
}

/// One message to handle.
#[derive(Debug, Clone)]
pub struct Job {
    /// The subject it was published on.
    pub subject: String,
    /// Its body.
    pub payload: bytes::Bytes,
    /// Its sequence in the stream.
    pub stream_sequence: u64,
    /// How many times it has been delivered, this time included (1 the first time).
    pub delivered: u64,
}

impl Job {
    /// The answer for a passing failure: retry after [`TRANSIENT_RETRY`]'s wait for this
    /// delivery.
    pub fn retry_transient(&self) -> JobOutcome {
        let attempt = u32::try_from(self.delivered).unwrap_or(u32::MAX);
        JobOutcome::RetryAfter(
            TRANSIENT_RETRY
                .wait_after(attempt, Jitter::NONE)
                .unwrap_or(TRANSIENT_RETRY.max_wait),
        )
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Handled (or nothing to do): acknowledge it.
    Done,
    /// Deliver it again after this long.
    RetryAfter(Duration),
    /// It can never succeed: drop it and count it as failed.
    GiveUp(String),
}

impl JobOutcome {
    /// The metrics label of the outcome.
    pub fn label(&self) -> &'static str {
        match self {
            JobOutcome::Done => "done",
            JobOutcome::RetryAfter(_) => "retried",
            JobOutcome::GiveUp(_) => "failed",
        }
    }
}

/// Handles the jobs of one queue.
pub trait JobHandler: Send + Sync + 'static {
    /// Handles one job; must be safe to run again for the same message (delivery is at least
    /// once).
    fn handle(&self, job: Job) -> impl Future<Output = JobOutcome> + Send;
}

/// Tells a queue whether it may fetch jobs now.
pub trait PauseGate: Send + Sync + 'static {
    /// Whether the queue must not fetch now.
    fn is_paused(&self) -> impl Future<Output = bool> + Send;
}

/// A gate that is never closed (for queues ops cannot pause, and tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverPaused;

impl PauseGate for NeverPaused {
    async fn is_paused(&self) -> bool {
        false
    }
}

/// Why a queue could not start.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A JetStream call failed.
    #[error("queue {queue}: {action}: {reason}")]
    JetStream {
        /// The queue.
        queue: String,
        /// What was being done.
        action: &'static str,
        /// What JetStream said.
        reason: String,
    },
    /// The queue names no subject.
    #[error("queue {queue} has no filter subject")]
    NoFilter {
        /// The queue.
        queue: String,
    },
    /// The concurrency is out of range.
    #[error("queue {queue}: concurrency must be 1 to {MAX_CONCURRENCY}, not {concurrency}")]
    Concurrency {
        /// The queue.
        queue: String,
        /// What was asked for.
        concurrency: usize,
    },
}

/// Jobs of a queue waiting, in progress and failed, from the server's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Messages not yet delivered (`num_pending`, summed over the queue's consumers).
    pub waiting: u64,
    /// Messages delivered and not yet acknowledged: running, or waiting out a retry delay
    /// (`num_ack_pending`, summed).
    pub active: u64,
    /// Jobs given up on, waiting for ops to retry them.
    pub failed: u64,
}

/// A queue's stream, or `None` before the relay has created it (a fresh start: nothing waits).
async fn existing_stream(
    jetstream: &jetstream::Context,
    spec: &QueueSpec,
    name: &str,
) -> Result<Option<jetstream::stream::Stream>, QueueError> {
    match jetstream.get_stream(name).await {
        Ok(stream) => Ok(Some(stream)),
        Err(e)
            if matches!(e.kind(), GetStreamErrorKind::JetStream(ref js)
                if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            Ok(None)
        }
        Err(e) => Err(spec.broker_error("find the stream", &e)),
    }
}

/// The queue's depth as its consumers report it; a stream or consumer not created yet counts
/// as empty.
pub async fn depth(
    jetstream: &jetstream::Context,
    spec: &QueueSpec,
) -> Result<QueueDepth, QueueError> {
    let mut depth = QueueDepth {
        failed: spec
            .failed
            .count(jetstream, &spec.name)
            .await
            .map_err(|e| spec.broker_error("count failed jobs", &e))?,
        ..QueueDepth::default()
    };
    for (stream, name, _) in spec.consumers() {
        let Some(stream) = existing_stream(jetstream, spec, &stream).await? else {
            continue;
        };
        match stream.consumer_info(&name).await {
            Ok(info) => {
                depth.waiting = depth.waiting.saturating_add(info.num_pending);
                depth.active = depth
                    .active
                    .saturating_add(u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX));
            }
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => {}
            Err(e) => return Err(spec.broker_error("read consumer info", &e)),
        }
    }
    Ok(depth)
}

/// When the queue's oldest waiting job reached the broker: per consumer, the first message past
/// its delivered position that its filter takes; `None` when nothing waits.
pub async fn oldest_waiting(
    jetstream: &jetstream::Context,
    spec: &QueueSpec,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, QueueError> {
    let mut oldest: Option<chrono::DateTime<chrono::Utc>> = None;
    for (stream, name, filter) in spec.consumers() {
        let Some(stream) = existing_stream(jetstream, spec, &stream).await? else {
            continue;
        };
        let delivered = match stream.consumer_info(&name).await {
            Ok(info) if info.num_pending > 0 => info.delivered.stream_sequence,
            Ok(_) => continue,
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => continue,
            Err(e) => return Err(spec.broker_error("read consumer info", &e)),
        };
        let first = stream
            .get_first_raw_message_by_subject(&filter, delivered.saturating_add(1))
            .await
            .map_err(|e| spec.broker_error("read the oldest waiting job", &e))?;
        let nanos = i64::try_from(first.time.unix_timestamp_nanos()).unwrap_or(i64::MAX);
        let at = chrono::DateTime::from_timestamp_nanos(nanos);
        oldest = Some(oldest.map_or(at, |known| known.min(at)));
    }
    Ok(oldest)
}

/// Discards the queue's jobs that wait to be fetched, on every consumer (running jobs and jobs
/// waiting out a retry delay stay); answers how many.
pub async fn drain(jetstream: &jetstream::Context, spec: &QueueSpec) -> Result<u64, QueueError> {
    let mut discarded = 0u64;
    for (stream, name, _) in spec.consumers() {
        let Some(stream) = existing_stream(jetstream, spec, &stream).await? else {
            continue;
        };
        let waiting = match stream.consumer_info(&name).await {
            Ok(info) => info.num_pending,
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => continue,
            Err(e) => return Err(spec.broker_error("read consumer info", &e)),
        };
        let consumer: PullConsumer = stream
            .get_consumer(&name)
            .await
            .map_err(|e| spec.broker_error("bind the consumer", &e))?;
        discarded += discard_waiting(spec, &consumer, waiting).await?;
    }
    Ok(discarded)
}

/// Discards the jobs waiting on `consumer`, up to the count it had when asked; answers how many.
/// Jobs running or waiting out a retry delay are not delivered, so they stay.
async fn discard_waiting(
    spec: &QueueSpec,
    consumer: &PullConsumer,
    waiting: u64,
) -> Result<u64, QueueError> {
    let mut discarded = 0u64;
    while discarded < waiting {
        let want = usize::try_from(waiting - discarded)
            .unwrap_or(usize::MAX)
            .min(256);
        let mut batch = consumer
            .fetch()
            .max_messages(want)
            .messages()
            .await
            .map_err(|e| spec.broker_error("fetch waiting jobs", &e))?;
        let mut fetched = 0u64;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| spec.broker_error("fetch waiting jobs", &e))?;
            message
                .ack_with(AckKind::Term)
                .await
                .map_err(|e| spec.broker_error("discard a job", &e))?;
            fetched += 1;
        }
        if fetched == 0 {
            break;
        }
        discarded += fetched;
    }
    Ok(discarded)
}

/// Runs a queue until `shutdown` turns true (or its sender is dropped): binds one durable
/// consumer per filter and one for retried jobs (creating them, or bringing consumers an earlier
/// release created to the current ack window and delivery bound), fetches jobs while there is
/// capacity and `gate` is open, and after the stop waits up to [`JOB_TIMEOUT`] for the jobs in
/// flight.
pub async fn run<H: JobHandler, G: PauseGate>(
    jetstream: &jetstream::Context,
    spec: &QueueSpec,
    handler: Arc<H>,
    gate: Arc<G>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), QueueError> {
    spec.validate()?;
    spec.failed
        .ensure_stream(jetstream)
        .await
        .map_err(|e| spec.broker_error("create the failed-jobs stream", &e))?;
    let retry_stream = spec.failed.stream_name.clone();
    let mut consumers = Vec::with_capacity(spec.filters.len() + 1);
    for (stream, durable, filter) in spec.consumers() {
        let retried = stream == retry_stream;
        let consumer: PullConsumer = jetstream
            .get_stream(&stream)
            .await
            .map_err(|e| spec.broker_error("find the stream", &e))?
            .create_consumer(consumer_config(&durable, &filter))
            .await
            .map_err(|e| spec.broker_error("bind the consumer", &e))?;
        consumers.push((consumer, retried));
    }

    let queue = Arc::new(Running {
        name: Arc::from(spec.name.as_str()),
        jetstream: jetstream.clone(),
        failed: spec.failed.clone(),
    });
    let permits = Arc::new(Semaphore::new(spec.concurrency));
    // Each pull asks for at most an even share of the capacity, so a consumer waiting on an idle
    // subject never holds all of it while another consumer has messages.
    let share = (spec.concurrency / consumers.len()).clamp(1, MAX_BATCH);
    tracing::info!(queue = %queue.name, consumers = consumers.len(), concurrency = spec.concurrency, "queue started");
    let mut loops = JoinSet::new();
    for (consumer, retried) in consumers {
        loops.spawn(fetch_loop(
            Arc::clone(&queue),
            Consumer { consumer, retried },
            Arc::clone(&handler),
            Arc::clone(&gate),
            Arc::clone(&permits),
            share,
            shutdown.clone(),
        ));
    }
    while loops.join_next().await.is_some() {}

    let all = u32::try_from(spec.concurrency).unwrap_or(u32::MAX);
    if tokio::time::timeout(JOB_TIMEOUT, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(queue = %queue.name, "stopped with jobs still running; they will be redelivered");
    }
    tracing::info!(queue = %queue.name, "queue stopped");
    Ok(())
}

fn consumer_config(durable: &str, filter: &str) -> pull::Config {
    pull::Config {
        durable_name: Some(durable.to_owned()),
        filter_subject: filter.to_owned(),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_deliver: MAX_DELIVER,
        max_ack_pending: MAX_ACK_PENDING,
        ..Default::default()
    }
}

fn is_stopped(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow()
}

/// Resolves once `shutdown` turns true or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Waits for one free job slot, then takes up to `share` in all without waiting; `None` once
/// the queue is stopping.
async fn reserve(
    permits: &Arc<Semaphore>,
    share: usize,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Vec<OwnedSemaphorePermit>> {
    if is_stopped(shutdown) {
        return None;
    }
    let first = tokio::select! {
        permit = Arc::clone(permits).acquire_owned() => permit.ok()?,
        () = stopped(shutdown) => return None,
    };
    let mut held = vec![first];
    while held.len() < share {
        match Arc::clone(permits).try_acquire_owned() {
            Ok(permit) => held.push(permit),
            Err(_) => break,
        }
    }
    Some(held)
}

/// A running queue, as its jobs see it.
struct Running {
    name: Arc<str>,
    jetstream: jetstream::Context,
    failed: FailedJobStream,
}

/// One of a queue's consumers; `retried` for the one reading its retried jobs.
struct Consumer {
    consumer: PullConsumer,
    retried: bool,
}

/// Resolves once `gate` is open; `false` if the queue stops first.
async fn wait_unpaused<G: PauseGate>(gate: &G, shutdown: &mut watch::Receiver<bool>) -> bool {
    while gate.is_paused().await {
        tokio::select! {
            () = tokio::time::sleep(PAUSE_RECHECK) => {}
            () = stopped(shutdown) => return false,
        }
    }
    !is_stopped(shutdown)
}

async fn fetch_loop<H: JobHandler, G: PauseGate>(
    queue: Arc<Running>,
    Consumer { consumer, retried }: Consumer,
    handler: Arc<H>,
    gate: Arc<G>,
    permits: Arc<Semaphore>,
    share: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    // Jobs are fetched only here, and only for free slots while the gate is open.
    while let Some(mut held) = reserve(&permits, share, &mut shutdown).await {
        if !wait_unpaused(gate.as_ref(), &mut shutdown).await {
            return;
        }
        let batch = consumer
            .batch()
            .max_messages(held.len())
            .expires(FETCH_WAIT)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => {
                failures = 0;
                batch
            }
            Err(error) => {
                drop(held);
                failures = failures.saturating_add(1);
                tracing::warn!(queue = %queue.name, %error, "pull request failed");
                let pause = FETCH_ERROR_BACKOFF
                    .wait_after(failures, Jitter::NONE)
                    .unwrap_or(FETCH_ERROR_BACKOFF.max_wait);
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = stopped(&mut shutdown) => return,
                }
            }
        };
        loop {
            let next = tokio::select! {
                next = batch.next() => next,
                () = stopped(&mut shutdown) => return,
            };
            match next {
                Some(Ok(message)) => match held.pop() {
                    Some(permit) => {
                        tokio::spawn(process(
                            Arc::clone(&queue),
                            Arc::clone(&handler),
                            message,
                            retried,
                            permit,
                        ));
                    }
                    // More messages than asked for: hand this one back at once rather than
                    // leave it waiting out the ack wait.
                    None => {
                        if let Err(error) = message.ack_with(AckKind::Nak(None)).await {
                            tracing::warn!(queue = %queue.name, %error, "could not hand back a message");
                        }
                    }
                },
                Some(Err(error)) => {
                    tracing::warn!(queue = %queue.name, %error, "pull request ended with an error");
                    break;
                }
                None => break,
            }
        }
    }
}

/// Counts a job as active for as long as it lives, even if its handler panics.
struct Active(Arc<str>);

impl Active {
    fn enter(queue: &Arc<str>) -> Self {
        metrics::gauge!("queue_active", "queue" => queue.to_string()).increment(1.0);
        Self(Arc::clone(queue))
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        metrics::gauge!("queue_active", "queue" => self.0.to_string()).decrement(1.0);
    }
}

async fn process<H: JobHandler>(
    running: Arc<Running>,
    handler: Arc<H>,
    message: jetstream::Message,
    retried: bool,
    _permit: OwnedSemaphorePermit,
) {
    let queue = &running.name;
    let _active = Active::enter(queue);
    let job = job_of(&message, retried);
    let work = async {
        let outcome = run_job(queue, handler.as_ref(), &job).await;
        metrics::counter!("queue_jobs_total", "queue" => queue.to_string(), "outcome" => outcome.label())
            .increment(1);
        match &outcome {
            JobOutcome::Done => message.double_ack().await,
            JobOutcome::RetryAfter(delay) => message.ack_with(AckKind::Nak(Some(*delay))).await,
            JobOutcome::GiveUp(reason) => give_up(&running, &message, &job, reason).await,
        }
    };
    if let Err(error) = while_in_progress(queue, &message, work).await {
        // The message comes back after the ack wait; handlers are idempotent.
        tracing::warn!(queue = %queue, stream_sequence = job.stream_sequence, %error, "acknowledgement failed");
    }
}

/// Runs `work` on `message`, telling the server every [`PROGRESS_EVERY`] that the message is
/// still being worked on, so its [`ACK_WAIT`] starts again and no other worker is handed it.
async fn while_in_progress<T>(
    queue: &str,
    message: &jetstream::Message,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let start = tokio::time::Instant::now() + PROGRESS_EVERY;
    let mut beats = tokio::time::interval_at(start, PROGRESS_EVERY);
    beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = beats.tick() => {
                // Bounded, so a stalled connection never holds up the work itself.
                let signal = message.ack_with(AckKind::Progress);
                match tokio::time::timeout(PROGRESS_EVERY, signal).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(queue = %queue, %error, "could not signal progress");
                    }
                    Err(_) => tracing::warn!(queue = %queue, "progress signal timed out"),
                }
            }
        }
    }
}

/// The job a message carries; a retried job has the subject it was first published on.
fn job_of(message: &jetstream::Message, retried: bool) -> Job {
    let (stream_sequence, delivered) = match message.info() {
        Ok(info) => (
            info.stream_sequence,
            u64::try_from(info.delivered).unwrap_or(1),
        ),
        Err(_) => (0, 1),
    };
    let subject = retried
        .then(|| original_subject(message.headers.as_ref()))
        .flatten()
        .unwrap_or_else(|| message.subject.to_string());
    Job {
        subject,
        payload: message.payload.clone(),
        stream_sequence,
        delivered,
    }
}

/// Runs the handler for at most [`JOB_TIMEOUT`]; a job still asking to be retried at its
/// [`MAX_DELIVER`]th delivery is given up.
async fn run_job<H: JobHandler>(queue: &str, handler: &H, job: &Job) -> JobOutcome {
    let (stream_sequence, delivered) = (job.stream_sequence, job.delivered);
    let span = tracing::info_span!("job", queue = %queue, subject = %job.subject, stream_sequence, delivered);
    let handled = tokio::time::timeout(JOB_TIMEOUT, handler.handle(job.clone())).instrument(span);
    let outcome = match handled.await {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::warn!(queue = %queue, subject = %job.subject, stream_sequence, "job timed out");
            job.retry_transient()
        }
    };
    match outcome {
        JobOutcome::RetryAfter(_) if delivered >= MAX_DELIVER.unsigned_abs() => {
            JobOutcome::GiveUp(format!("still not done after {delivered} deliveries"))
        }
        other => other,
    }
}

/// Keeps a job given up on in the failed-jobs stream, then terminates its message; a job that
/// could not be kept is not dropped either, but comes back for another try.
async fn give_up(
    running: &Running,
    message: &jetstream::Message,
    job: &Job,
    reason: &str,
) -> Result<(), async_nats::Error> {
    let queue = &running.name;
    let (stream_sequence, delivered) = (job.stream_sequence, job.delivered);
    tracing::error!(queue = %queue, subject = %job.subject, stream_sequence, delivered, %reason, "job given up");
    let source = message
        .info()
        .map(|info| info.stream.to_owned())
        .unwrap_or_default();
    let kept = running
        .failed
        .keep(
            &running.jetstream,
            queue,
            &job.subject,
            job.payload.clone(),
            &format!("{source}:{stream_sequence}"),
            reason,
        )
        .await;
    match kept {
        Ok(()) => message.ack_with(AckKind::Term).await,
        Err(error) => {
            tracing::warn!(queue = %queue, stream_sequence, %error, "could not keep a failed job");
            match job.retry_transient() {
                JobOutcome::RetryAfter(delay) => message.ack_with(AckKind::Nak(Some(delay))).await,
                _ => message.ack_with(AckKind::Nak(None)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_names_are_stable_and_valid() {
        let name = durable_name("transaction-processing", "ledger.payment.PaymentInitiated");
        assert_eq!(
            name,
            "transaction-processing--ledger_payment_PaymentInitiated"
        );
        assert_eq!(
            durable_name("settlement-processing", "ledger_jobs.status_check >*"),
            "settlement-processing--ledger_jobs_status_check___"
        );
    }

    #[test]
    fn transient_retries_back_off_and_stay_bounded() {
        let job = |delivered| Job {
            subject: "s".into(),
            payload: bytes::Bytes::new(),
            stream_sequence: 1,
            delivered,
        };
        assert_eq!(
            job(1).retry_transient(),
            JobOutcome::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            job(3).retry_transient(),
            JobOutcome::RetryAfter(Duration::from_secs(4))
        );
        assert_eq!(
            job(u64::MAX).retry_transient(),
            JobOutcome::RetryAfter(Duration::from_secs(60))
        );
    }

    #[test]
    fn transient_retries_ride_out_about_an_hour() {
        let total: Duration = (1..TRANSIENT_RETRY.max_attempts)
            .filter_map(|attempt| TRANSIENT_RETRY.wait_after(attempt, Jitter::NONE))
            .sum();
        assert!((55 * 60..=65 * 60).contains(&total.as_secs()), "{total:?}");
    }

    #[test]
    fn deliveries_cover_the_longest_wait_and_the_longest_schedule() {
        // A webhook's last wait, 10 h + 20 %, looked at hourly: 12 looks and the one that finds
        // it due.
        assert_eq!(DUE_WAIT_LOOKS, 13);
        assert_eq!(MAX_DELIVER, 13 + 64 + 8);
    }

    #[test]
    fn a_spec_needs_a_filter_and_a_sane_concurrency() {
        let spec = |filters: Vec<String>, concurrency| QueueSpec {
            name: "q".into(),
            stream: "S".into(),
            filters,
            failed: FailedJobStream::for_log(&Default::default()),
            concurrency,
        };
        assert!(matches!(
            spec(vec![], 1).validate(),
            Err(QueueError::NoFilter { .. })
        ));
        assert!(matches!(
            spec(vec!["a".into()], 0).validate(),
            Err(QueueError::Concurrency { .. })
        ));
        assert!(spec(vec!["a".into()], MAX_CONCURRENCY).validate().is_ok());
    }
}
