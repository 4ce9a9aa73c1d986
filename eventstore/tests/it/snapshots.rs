//! Snapshots of long streams: taken as a stream passes each interval, used to load it cold, and
//! never trusted over the log.

use std::time::Duration;

use crate::common::{self, CounterEvent, event, store};
use lightspeed_domain::Decider;
use lightspeed_eventstore::snapshots::SNAPSHOT_EVERY;
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_eventstore::{CommandHandler, EventStore, ExpectedVersion, StreamId, stream_of};

/// A sum without limit whose states are snapshotted.
struct Sum;

impl Decider for Sum {
    const SNAPSHOT_VERSION: Option<u32> = Some(1);
    const CATEGORY: &'static str = "sum";
    type State = i64;
    type Command = i64;
    type Event = CounterEvent;
    type Error = common::OverLimit;

    fn snapshot(state: &i64) -> Option<serde_json::Value> {
        Some(serde_json::json!(state))
    }

    fn restore(snapshot: serde_json::Value) -> Option<i64> {
        snapshot.as_i64()
    }

    fn decide(_: &i64, by: &i64) -> Result<Vec<CounterEvent>, common::OverLimit> {
        Ok(vec![CounterEvent::Counted { by: *by }])
    }

    fn evolve(state: i64, event: &CounterEvent) -> i64 {
        match event {
            CounterEvent::Counted { by } => state + by,
        }
    }
}

/// A stream of `count` events of 1 each, appended in batches.
async fn history(db: &TestDatabase, count: u64) -> StreamId {
    let stream = stream_of::<Sum>("long").expect("stream id");
    let log = store(db);
    for _ in 0..count / 500 {
        let batch = (0..500).map(|_| event(1)).collect();
        log.append(stream.clone(), ExpectedVersion::Any, batch)
            .await
            .expect("append");
    }
    stream
}

/// The version of the stream's kept snapshot, once one is kept (it is written in the background).
async fn kept_version(db: &TestDatabase, stream: &StreamId) -> i64 {
    for _ in 0..200 {
        let kept: Option<i64> =
            sqlx::query_scalar("SELECT stream_version FROM ledger.snapshots WHERE stream_id = $1")
                .bind(stream.as_str())
                .fetch_optional(&db.pool)
                .await
                .expect("query");
        if let Some(version) = kept {
            return version;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no snapshot kept for {stream}");
}

/// Runs an `UPDATE ledger.snapshots … WHERE stream_id = $1` on the stream's snapshot.
async fn set(db: &TestDatabase, stream: &StreamId, update: &'static str) {
    sqlx::query(update)
        .bind(stream.as_str())
        .execute(&db.pool)
        .await
        .expect("update snapshot");
}

/// A cold load of a long stream keeps a snapshot; the next cold load starts from it (shown by
/// a marked snapshot state), folding only the events after it.
#[tokio::test]
async fn cold_loads_start_from_the_last_snapshot() {
    let db = TestDatabase::new().await;
    let stream = history(&db, 2 * SNAPSHOT_EVERY + 500).await;
    let first = CommandHandler::<Sum, _>::new(store(&db));
    assert_eq!(first.load(&stream).await.expect("load").state, 2_500);
    assert_eq!(kept_version(&db, &stream).await, 2_500);

    set(
        &db,
        &stream,
        "UPDATE ledger.snapshots SET state = '1000000' WHERE stream_id = $1",
    )
    .await;
    let fresh = CommandHandler::<Sum, _>::new(store(&db));
    fresh
        .execute(&stream, &7, &Default::default())
        .await
        .expect("execute");
    let loaded = CommandHandler::<Sum, _>::new(store(&db))
        .load(&stream)
        .await
        .expect("load");
    assert_eq!((loaded.version, loaded.state), (2_501, 1_000_007));
}

/// A snapshot whose event is not the log's at its version, or of another state shape, is
/// ignored: the state is folded from the log.
#[tokio::test]
async fn snapshots_that_do_not_match_the_log_are_ignored() {
    let db = TestDatabase::new().await;
    let stream = history(&db, SNAPSHOT_EVERY).await;
    CommandHandler::<Sum, _>::new(store(&db))
        .load(&stream)
        .await
        .expect("load");
    kept_version(&db, &stream).await;
    for tampering in [
        "UPDATE ledger.snapshots SET state = '-5', event_id = gen_random_uuid() WHERE stream_id = $1",
        "UPDATE ledger.snapshots SET state = '-5', state_version = 2 WHERE stream_id = $1",
    ] {
        set(&db, &stream, tampering).await;
        let loaded = CommandHandler::<Sum, _>::new(store(&db))
            .load(&stream)
            .await
            .expect("load");
        assert_eq!(
            (loaded.version, loaded.state),
            (1_000, 1_000),
            "{tampering}"
        );
    }
}

/// Warming a cold cache remembers the snapshot as never confirmed, so a caller that reuses only
/// recently confirmed states still reads what follows it.
#[tokio::test]
async fn warmed_states_are_not_taken_as_current() {
    let db = TestDatabase::new().await;
    let stream = history(&db, SNAPSHOT_EVERY).await;
    CommandHandler::<Sum, _>::new(store(&db))
        .load(&stream)
        .await
        .expect("load");
    kept_version(&db, &stream).await;
    let cold = CommandHandler::<Sum, _>::new(store(&db));
    cold.warm(std::slice::from_ref(&stream))
        .await
        .expect("warm");
    let (loaded, recent) = cold.cached_within(&stream, Duration::from_secs(3600));
    assert_eq!(
        (loaded.version, loaded.state, recent),
        (1_000, 1_000, false)
    );
}

/// Appends through the handler keep a snapshot each time the stream passes an interval.
#[tokio::test]
async fn appends_keep_a_snapshot_at_each_interval() {
    let db = TestDatabase::new().await;
    let stream = history(&db, SNAPSHOT_EVERY - 500).await;
    let handler = CommandHandler::<Sum, _>::new(store(&db));
    handler.load(&stream).await.expect("load");
    for _ in 0..500 {
        handler
            .execute(&stream, &1, &Default::default())
            .await
            .expect("execute");
    }
    assert_eq!(kept_version(&db, &stream).await, 1_000);
}
