//! Subscriptions: catch up from PostgreSQL, hand over to JetStream, never a gap or a repeat.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::{event, store};
use lightspeed_eventstore::subscription::Subscription;
use lightspeed_eventstore::testing::{TestDatabase, TestNats};
use lightspeed_eventstore::{EventStore, ExpectedVersion, LogPosition, StreamId};

#[tokio::test]
async fn catches_up_then_follows_live_with_every_event_once_in_order() {
    let db = TestDatabase::new().await;
    let nats = TestNats::new().await;
    let store = store(&db);
    let relay = nats.spawn_relay(&store);

    // History before the subscriber starts, then more while it runs.
    for n in 0..60 {
        let id = StreamId::parse(format!("payment-{}", n % 7)).expect("id");
        store
            .append(id, ExpectedVersion::Any, vec![event(n)])
            .await
            .expect("append");
    }
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 60..200 {
                let category = if n % 3 == 0 { "wallet" } else { "payment" };
                let id = StreamId::parse(format!("{category}-{}", n % 5)).expect("id");
                store
                    .append(id, ExpectedVersion::Any, vec![event(n)])
                    .await
                    .expect("append");
                if n % 20 == 0 {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            }
        })
    };

    let mut subscription = Subscription::new(
        store.clone(),
        Some((nats.jetstream.clone(), nats.config.clone())),
        None,
        LogPosition::START,
    );
    let mut seen = Vec::new();
    let mut went_live = false;
    while seen.len() < 200 {
        let batch = tokio::time::timeout(Duration::from_secs(20), subscription.next_batch(25))
            .await
            .expect("events in time")
            .expect("batch");
        went_live |= subscription.is_live();
        seen.extend(batch);
    }
    writer.await.expect("writer");
    relay.abort();

    assert!(went_live, "the subscription handed over to JetStream");
    let positions: Vec<LogPosition> = seen.iter().map(|e| e.log_position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "strictly in log order, no repeats"
    );
    let ids: HashSet<_> = seen.iter().map(|e| e.event_id).collect();
    let mut logged = HashSet::new();
    let mut after = LogPosition::START;
    loop {
        let batch = store.read_log(after, None, 1000).await.expect("read");
        let Some(last) = batch.last() else { break };
        after = last.log_position;
        logged.extend(batch.iter().map(|e| e.event_id));
    }
    assert_eq!(ids, logged, "every event of the log delivered");
}

#[tokio::test]
async fn a_category_subscription_sees_only_its_category() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    for n in 0..30 {
        let category = if n % 2 == 0 { "wallet" } else { "payment" };
        let id = StreamId::parse(format!("{category}-{n}")).expect("id");
        store
            .append(id, ExpectedVersion::NoStream, vec![event(n)])
            .await
            .expect("append");
    }
    let mut subscription =
        Subscription::new(store, None, Some(vec!["wallet".into()]), LogPosition::START);
    let mut seen = Vec::new();
    while seen.len() < 15 {
        seen.extend(
            tokio::time::timeout(Duration::from_secs(10), subscription.next_batch(4))
                .await
                .expect("in time")
                .expect("batch"),
        );
    }
    assert!(seen.iter().all(|e| e.stream_id.category() == "wallet"));
    assert_eq!(seen.len(), 15);
}

/// A live batch takes every message already received: a projector that was busy applying one
/// batch finds the next one waiting whole. (Taken one by one under tokio's cooperative budget,
/// a batch stopped at 128 messages, which held a projector of busy categories below the rate
/// the log grew at.)
#[tokio::test]
async fn a_live_batch_takes_every_message_already_received() {
    let db = TestDatabase::new().await;
    let nats = TestNats::new().await;
    let store = store(&db);
    let relay = nats.spawn_relay(&store);
    let first = StreamId::parse("payment-first").expect("id");
    store
        .append(first, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("append");
    let mut subscription = Subscription::new(
        store.clone(),
        Some((nats.jetstream.clone(), nats.config.clone())),
        None,
        LogPosition::START,
    );
    let mut seen = subscription
        .next_batch(1_000)
        .await
        .expect("from PostgreSQL");
    // Waits given up on leave the subscription live and whole.
    for _ in 0..100 {
        if subscription.is_live() {
            break;
        }
        let _ =
            tokio::time::timeout(Duration::from_millis(100), subscription.next_batch(1_000)).await;
    }
    assert!(subscription.is_live(), "the subscription went live");

    for n in 0..6 {
        let id = StreamId::parse(format!("payment-{n}")).expect("id");
        let events = (0..100).map(|k| event(n * 100 + k)).collect();
        store
            .append(id, ExpectedVersion::NoStream, events)
            .await
            .expect("append");
    }
    let mut sizes = Vec::new();
    while seen.len() < 601 {
        // The time a projector spends applying the batch before.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let batch = tokio::time::timeout(Duration::from_secs(10), subscription.next_batch(1_000))
            .await
            .expect("events in time")
            .expect("batch");
        assert!(subscription.is_live(), "still live");
        sizes.push(batch.len());
        seen.extend(batch);
    }
    relay.abort();
    assert_eq!(seen.len(), 601, "every event once: {sizes:?}");
    assert!(
        sizes.iter().any(|&size| size > 128),
        "a batch took more than 128 waiting messages: {sizes:?}"
    );
}
