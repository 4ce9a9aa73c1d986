//! The relay: every committed event reaches JetStream once, in log order, across relay kills,
//! leader hand-overs and a NATS restart.

use crate::common;

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use common::{event, store};
use futures::StreamExt;
use lightspeed_eventstore::nats::{LogStreamConfig, decode};
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

#[tokio::test]
async fn a_relay_killed_again_and_again_resumes_without_losing_or_repeating_an_event() {
    let db = TestDatabase::new().await;
    let nats = TestNats::new().await;
    let store = store(&db);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { append_events(&store, 20, 15).await })
    };
    for round in 0..8 {
        let relay = Relay::new(
            store.clone(),
            nats.jetstream.clone(),
            nats.config.clone(),
            quick(),
        );
        let task = tokio::spawn(async move { relay.run().await });
        tokio::time::sleep(Duration::from_millis(60 + round * 17)).await;
        task.abort();
        let _ = task.await;
    }
    writer.await.expect("writer");
    let relay = Relay::new(
        store.clone(),
        nats.jetstream.clone(),
        nats.config.clone(),
        quick(),
    );
    let task = tokio::spawn(async move { relay.run().await });
    wait_until_published(&nats.jetstream, &nats.config, 300).await;
    task.abort();
    assert_exact_copy(
        &log(&store).await,
        &published(&nats.jetstream, &nats.config).await,
    );
}

#[tokio::test]
async fn only_one_relay_leads_and_a_standby_takes_over_when_it_dies() {
    let db = TestDatabase::new().await;
    let nats = TestNats::new().await;
    let store = store(&db);
    append_events(&store, 3, 10).await;
    let first = Relay::new(
        store.clone(),
        nats.jetstream.clone(),
        nats.config.clone(),
        quick(),
    );
    let first = tokio::spawn(async move { first.run().await });
    wait_until_published(&nats.jetstream, &nats.config, 30).await;
    let second = Relay::new(
        store.clone(),
        nats.jetstream.clone(),
        nats.config.clone(),
        quick(),
    );
    let second = tokio::spawn(async move { second.run().await });

    append_events(&store, 3, 10).await;
    wait_until_published(&nats.jetstream, &nats.config, 60).await;
    first.abort();
    let _ = first.await;
    append_events(&store, 3, 10).await;
    wait_until_published(&nats.jetstream, &nats.config, 90).await;
    second.abort();
    assert_exact_copy(
        &log(&store).await,
        &published(&nats.jetstream, &nats.config).await,
    );
}

#[tokio::test]
async fn the_relay_rides_out_a_nats_restart() {
    let db = TestDatabase::new().await;
    let mut server = PrivateNatsServer::start().await;
    let nats = TestNats::on(&server.url).await;
    let store = store(&db);
    let relay = Relay::new(
        store.clone(),
        nats.jetstream.clone(),
        nats.config.clone(),
        quick(),
    );
    let task = tokio::spawn(async move { relay.run().await });
    append_events(&store, 4, 10).await;
    wait_until_published(&nats.jetstream, &nats.config, 40).await;

    server.kill();
    // Events keep being committed while NATS is down.
    append_events(&store, 4, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart().await;
    append_events(&store, 2, 10).await;
    wait_until_published(&nats.jetstream, &nats.config, 100).await;
    task.abort();
    assert_exact_copy(
        &log(&store).await,
        &published(&nats.jetstream, &nats.config).await,
    );
}
