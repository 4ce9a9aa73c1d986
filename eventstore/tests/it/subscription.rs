//! Subscriptions: catch up from PostgreSQL, hand over to JetStream, never a gap or a repeat.

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{event, store};
use lightspeed_eventstore::subscription::{HEARTBEAT, Subscription};
use lightspeed_eventstore::testing::{PrivateNatsServer, TestDatabase, TestNats, settled};
use lightspeed_eventstore::{
    EventStore, ExpectedVersion, LogPosition, PgEventStore, RecordedEvent, StreamId,
};
use uuid::Uuid;

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
    // Writes go on until the subscription has followed JetStream for a while: a relay slowed
    // by a loaded machine can send it back to PostgreSQL for a heartbeat.
    let (stop_writing, mut writing) = tokio::sync::watch::channel(false);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut n = 60;
            while !*writing.borrow_and_update() {
                let category = if n % 3 == 0 { "wallet" } else { "payment" };
                let id = StreamId::parse(format!("{category}-{}", n % 5)).expect("id");
                store
                    .append(id, ExpectedVersion::Any, vec![event(n)])
                    .await
                    .expect("append");
                n += 1;
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
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut live_batches = 0;
    while seen.len() < 200 || live_batches < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the subscription handed over to JetStream"
        );
        let batch = tokio::time::timeout(Duration::from_secs(20), subscription.next_batch(25))
            .await
            .expect("events in time")
            .expect("batch");
        if subscription.is_live() {
            live_batches += 1;
        }
        seen.extend(batch);
    }
    stop_writing.send(true).expect("writer listens");
    writer.await.expect("writer");
    settled(store.pool()).await;
    let head = store.head().await.expect("head");
    while seen.last().is_some_and(|e| e.log_position < head) {
        let batch = tokio::time::timeout(Duration::from_secs(20), subscription.next_batch(25))
            .await
            .expect("events in time")
            .expect("batch");
        seen.extend(batch);
    }
    relay.abort();

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

/// Appends `count` events to streams of their own; answers their ids.
async fn append_payments(store: &PgEventStore, count: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for n in 0..count {
        let id = StreamId::parse(format!("payment-{}", Uuid::now_v7().simple())).expect("id");
        let new = event(n as i64);
        ids.push(new.event_id);
        store
            .append(id, ExpectedVersion::NoStream, vec![new])
            .await
            .expect("append");
    }
    ids
}

/// Takes batches until `count` more events arrived, within `bound`, giving up each wait after
/// half a heartbeat as a projector measuring its lag every second does; answers them.
async fn take(
    subscription: &mut Subscription,
    count: usize,
    bound: Duration,
) -> Vec<RecordedEvent> {
    let started = Instant::now();
    let mut taken: Vec<RecordedEvent> = Vec::new();
    while taken.len() < count {
        assert!(
            started.elapsed() < bound,
            "{} of {count} events within {bound:?}",
            taken.len()
        );
        if let Ok(batch) = tokio::time::timeout(HEARTBEAT / 2, subscription.next_batch(1_000)).await
        {
            taken.extend(batch.expect("batch"));
        }
    }
    taken
}

/// Calls the subscription until it follows JetStream (giving up each wait after 100 ms, as a
/// projector measuring its lag does), for at most `bound`; answers what it delivered meanwhile.
async fn take_until_live(subscription: &mut Subscription, bound: Duration) -> Vec<RecordedEvent> {
    let started = Instant::now();
    let mut taken = Vec::new();
    while !subscription.is_live() {
        assert!(started.elapsed() < bound, "not live again within {bound:?}");
        if let Ok(batch) =
            tokio::time::timeout(Duration::from_millis(100), subscription.next_batch(1_000)).await
        {
            taken.extend(batch.expect("batch"));
        }
    }
    taken
}

/// A lost consumer is noticed within a heartbeat: while NATS is down the subscription keeps
/// delivering from PostgreSQL, and once NATS is back it follows JetStream again, every event
/// once and in order throughout.
#[tokio::test]
async fn a_live_subscription_keeps_up_through_a_nats_restart_and_goes_live_again() {
    // A heartbeat and a margin for a loaded test machine.
    let bound = HEARTBEAT + Duration::from_secs(8);
    let db = TestDatabase::new().await;
    let mut server = PrivateNatsServer::start().await;
    let nats = TestNats::on(&server.url).await;
    let store = store(&db);
    let relay = nats.spawn_relay(&store);
    let mut subscription = Subscription::new(
        store.clone(),
        Some((nats.jetstream.clone(), nats.config.clone())),
        None,
        LogPosition::START,
    );
    let mut expected = append_payments(&store, 5).await;
    let mut seen = take(&mut subscription, 5, bound).await;
    seen.extend(take_until_live(&mut subscription, Duration::from_secs(15)).await);

    server.kill();
    for _ in 0..3 {
        expected.extend(append_payments(&store, 5).await);
        let started = Instant::now();
        seen.extend(take(&mut subscription, 5, bound).await);
        println!(
            "NATS down: 5 events delivered {} ms after they were appended",
            started.elapsed().as_millis()
        );
        assert!(!subscription.is_live(), "read from PostgreSQL");
    }

    server.restart().await;
    let started = Instant::now();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..40 {
                ids.extend(append_payments(&store, 1).await);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            ids
        })
    };
    seen.extend(take_until_live(&mut subscription, Duration::from_secs(15)).await);
    println!(
        "live again {} ms after NATS came back",
        started.elapsed().as_millis()
    );
    expected.extend(writer.await.expect("writer"));
    let rest = expected.len() - seen.len();
    seen.extend(take(&mut subscription, rest, bound).await);
    relay.abort();
    let delivered: Vec<Uuid> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(delivered, expected, "every event once, in log order");
}
