//! The relay: every committed event reaches JetStream once, in log order, and across a NATS
//! restart. Relay processes killed mid-work and leader hand-overs are the end-to-end
//! `tests/relay_crash.rs`, on the `lightspeed relay` binary.

use crate::common;

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use common::{event, store};
use futures::StreamExt;
use lightspeed_eventstore::nats::{LogStreamConfig, MESSAGE_ID_HEADER, decode};
use lightspeed_eventstore::relay::{Relay, RelayConfig};
use lightspeed_eventstore::testing::{PrivateNatsServer, TestDatabase, TestNats, settled};
use lightspeed_eventstore::{EventStore, ExpectedVersion, LogPosition, PgEventStore, StreamId};
use uuid::Uuid;

fn quick() -> RelayConfig {
    RelayConfig {
        batch_size: 50,
        idle_poll: Duration::from_millis(5),
        standby_poll: Duration::from_millis(50),
        lock_check: Duration::from_millis(100),
        ..RelayConfig::default()
    }
}

async fn append_events(store: &PgEventStore, streams: usize, per_stream: usize) {
    for s in 0..streams {
        let id = StreamId::parse(format!("payment-{s}-{}", Uuid::now_v7().simple())).expect("id");
        for n in 0..per_stream {
            store
                .append(id.clone(), ExpectedVersion::Any, vec![event(n as i64)])
                .await
                .expect("append");
        }
    }
}

/// Every message the stream holds, in stream order: (event id, position, subject).
async fn published(
    js: &async_nats::jetstream::Context,
    config: &LogStreamConfig,
) -> Vec<(Uuid, LogPosition, String)> {
    let stream = js.get_stream(&config.stream_name).await.expect("stream");
    let count = stream.get_info().await.expect("info").state.messages;
    if count == 0 {
        return Vec::new();
    }
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::new();
    while (out.len() as u64) < count {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("message in time")
            .expect("some")
            .expect("ok");
        let event = decode(0, &message.payload).expect("event");
        let message_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(MESSAGE_ID_HEADER))
            .map(|id| id.as_str().to_owned());
        assert_eq!(
            message_id,
            Some(event.event_id.to_string()),
            "the message id is the event id"
        );
        out.push((
            event.event_id,
            event.log_position,
            message.subject.to_string(),
        ));
    }
    out
}

/// The log in read order: (event id, position).
async fn log(store: &PgEventStore) -> Vec<(Uuid, LogPosition)> {
    settled(store.pool()).await;
    let mut out = Vec::new();
    let mut after = LogPosition::START;
    loop {
        let batch = store.read_log(after, None, 1000).await.expect("read");
        let Some(last) = batch.last() else { return out };
        after = last.log_position;
        out.extend(batch.iter().map(|e| (e.event_id, e.log_position)));
    }
}

async fn wait_until_published(
    js: &async_nats::jetstream::Context,
    config: &LogStreamConfig,
    count: u64,
) {
    for _ in 0..400 {
        if let Ok(stream) = js.get_stream(&config.stream_name).await
            && stream
                .get_info()
                .await
                .map(|i| i.state.messages)
                .unwrap_or(0)
                >= count
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the relay did not publish {count} events in time");
}

fn assert_exact_copy(log: &[(Uuid, LogPosition)], published: &[(Uuid, LogPosition, String)]) {
    let published_ids: Vec<(Uuid, LogPosition)> =
        published.iter().map(|(id, p, _)| (*id, *p)).collect();
    assert_eq!(
        published_ids.len(),
        log.len(),
        "each event published exactly once"
    );
    assert_eq!(published_ids, log, "published in log order");
}

#[tokio::test]
async fn publishes_every_event_once_in_log_order_with_subjects_per_category_and_type() {
    let db = TestDatabase::new().await;
    let nats = TestNats::new().await;
    let store = store(&db);
    append_events(&store, 5, 20).await;
    let relay = Relay::new(
        store.clone(),
        nats.jetstream.clone(),
        nats.config.clone(),
        quick(),
    );
    let task = tokio::spawn(async move { relay.run().await });
    wait_until_published(&nats.jetstream, &nats.config, 100).await;
    append_events(&store, 2, 10).await;
    wait_until_published(&nats.jetstream, &nats.config, 120).await;
    task.abort();

    let published = published(&nats.jetstream, &nats.config).await;
    assert_exact_copy(&log(&store).await, &published);
    let subject = format!("{}.payment.Counted", nats.config.subject_prefix);
    assert!(
        published.iter().all(|(_, _, s)| *s == subject),
        "subject is <prefix>.<category>.<type>"
    );
    let info = nats
        .jetstream
        .get_stream(&nats.config.stream_name)
        .await
        .expect("stream")
        .get_info()
        .await
        .expect("info");
    assert!(
        info.config.deny_delete && info.config.deny_purge,
        "the copy of an audit trail cannot be edited"
    );
}

/// The target for projectors is 5 s from NATS coming back; the relay publishes what
/// they follow live, so it is held to a bound with room for a loaded test machine.
const RESUME_BOUND: Duration = Duration::from_secs(15);

/// Waits until the stream holds `count` messages; answers how long that took. Panics after
/// [`RESUME_BOUND`].
async fn time_to_publish(
    js: &async_nats::jetstream::Context,
    config: &LogStreamConfig,
    count: u64,
) -> Duration {
    let started = Instant::now();
    loop {
        let held = match js.get_stream(&config.stream_name).await {
            Ok(stream) => stream.get_info().await.map_or(0, |i| i.state.messages),
            Err(_) => 0,
        };
        if held >= count {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < RESUME_BOUND,
            "the stream held {held} of {count} events {} s after NATS came back",
            RESUME_BOUND.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_relay_rides_out_nats_restarts_and_the_copy_equals_the_log() {
    let db = TestDatabase::new().await;
    let mut server = PrivateNatsServer::start().await;
    let nats = TestNats::on(&server.url).await;
    let store = store(&db);
    let relay = Relay::new(
        store.clone(),
        nats.jetstream.clone(),
        nats.config.clone(),
        RelayConfig::default(),
    );
    let task = tokio::spawn(async move { relay.run().await });
    let (stop_writing, mut writing) = tokio::sync::watch::channel(false);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            while !*writing.borrow_and_update() {
                append_events(&store, 2, 5).await;
                let _ = tokio::time::timeout(Duration::from_millis(20), writing.changed()).await;
            }
        })
    };
    // The second outage outlasts JetStream's 5 s publish acknowledgement wait, so the relay's
    // publishes fail and it has to start leading again.
    for (sigkill, outage) in [
        (false, Duration::from_secs(2)),
        (true, Duration::from_secs(7)),
    ] {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if sigkill {
            server.kill();
        } else {
            server.stop().await;
        }
        // Events keep being committed while NATS is down.
        tokio::time::sleep(outage).await;
        server.restart().await;
        let logged = log(&store).await.len() as u64;
        let took = time_to_publish(&nats.jetstream, &nats.config, logged).await;
        let how = if sigkill { "SIGKILL" } else { "SIGTERM" };
        println!(
            "after a {how} and {} s down, the relay published the log head {} ms after NATS came back",
            outage.as_secs(),
            took.as_millis()
        );
    }
    stop_writing.send(true).expect("writer listens");
    writer.await.expect("writer");
    let logged = log(&store).await;
    wait_until_published(&nats.jetstream, &nats.config, logged.len() as u64).await;
    task.abort();
    assert_exact_copy(&logged, &published(&nats.jetstream, &nats.config).await);
}
