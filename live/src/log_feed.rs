//! The feed from the log's JetStream copy: one ordered consumer per process, from the present,
//! over every subject of the log; an event is told apart by its subject (`<prefix>.<category>.
//! <type>`) and decoded only when a feed shows it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::StreamExt;
use lightspeed_eventstore::nats::{LogStreamConfig, NatsError, decode};

use crate::from_log::{item_of, shown};
use crate::hub::{Hub, Inner};

/// The pause before following JetStream again after it failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

impl Hub {
    /// Publishes the payments, gateway health changes and ops alerts the log records from now
    /// on, as the relay copies them to JetStream (`log`). Answers once "now" is fixed: every
    /// event the relay publishes after that is shown (when JetStream cannot be reached yet,
    /// "now" is whenever it first can).
    pub async fn follow_log(&self, jetstream: jetstream::Context, log: LogStreamConfig) {
        let start =
            match tokio::time::timeout(RETRY_PAUSE * 2, next_on_stream(&jetstream, &log)).await {
                Ok(Ok(next)) => Some(next),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "live feed starts without JetStream");
                    None
                }
                Err(_) => None,
            };
        let inner = self.inner();
        self.keep(tokio::spawn(follow(inner, jetstream, log, start)));
    }
}

/// The sequence the log's stream will give its next message.
async fn next_on_stream(
    jetstream: &jetstream::Context,
    log: &LogStreamConfig,
) -> Result<u64, NatsError> {
    let mut stream = log.ensure_stream(jetstream).await?;
    let info = stream.info().await.map_err(NatsError::jetstream)?;
    Ok(info.state.last_sequence + 1)
}

/// Follows the log for good from `next_sequence`: after a failure, again from the message after
/// the last one seen, so a NATS restart loses no item.
async fn follow(
    hub: Arc<Inner>,
    jetstream: jetstream::Context,
    log: LogStreamConfig,
    mut next_sequence: Option<u64>,
) {
    loop {
        if let Err(e) = follow_once(&hub, &jetstream, &log, &mut next_sequence).await {
            tracing::warn!(error = %e, "live feed lost JetStream; following again");
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// One ordered consumer's life: from `next_sequence` (the present when none), publishing every
/// event a feed shows, until it fails.
async fn follow_once(
    hub: &Inner,
    jetstream: &jetstream::Context,
    log: &LogStreamConfig,
    next_sequence: &mut Option<u64>,
) -> Result<(), NatsError> {
    let stream = log.ensure_stream(jetstream).await?;
    let deliver_policy = match *next_sequence {
        Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
        None => DeliverPolicy::New,
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: log.all_subjects(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(NatsError::jetstream)?;
    let mut messages = consumer.messages().await.map_err(NatsError::jetstream)?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(NatsError::jetstream)?;
        let sequence = message
            .info()
            .map_err(NatsError::jetstream)?
            .stream_sequence;
        *next_sequence = Some(sequence + 1);
        let mut tokens = message.subject.rsplit('.');
        let (event_type, category) = (tokens.next(), tokens.next());
        if !shown(category.unwrap_or_default(), event_type.unwrap_or_default()) {
            continue;
        }
        match decode(sequence, &message.payload) {
            Ok(event) => {
                if let Some(item) = item_of(&event) {
                    hub.publish(item);
                }
            }
            Err(e) => tracing::warn!(error = %e, "live feed skips a message"),
        }
    }
    Err(NatsError::JetStream("live delivery ended".into()))
}
