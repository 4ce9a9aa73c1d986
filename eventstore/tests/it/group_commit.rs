//! Group commit with duplicates: copies of one append (a retried command, a redelivered job)
//! racing each other and unrelated writers, over a real PostgreSQL.
//!
//! The test holds every committer on an append waiting for a row it keeps uncommitted, queues
//! everything else behind them, then lets go: each committer's next batch takes all its queue
//! at once. The runtime is single-threaded (the default of `#[tokio::test]`), so a committer
//! takes its batch without another one running in between.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use crate::common::{event, store};
use lightspeed_eventstore::testing::{APPEND_COMMITTERS, TestDatabase};
use lightspeed_eventstore::{
    AppendError, AppendResult, EventStore, ExpectedVersion, NewEvent, PgEventStore, StreamAppend,
    StreamId,
};
use sqlx::{PgPool, Postgres, Transaction};

type Appending = Pin<Box<dyn Future<Output = Result<AppendResult, AppendError>> + Send>>;

fn stream(name: &str) -> StreamId {
    StreamId::parse(name).expect("valid stream id")
}

/// Keeps version 1 of `stream` taken in `holder`'s open transaction: a `NoStream` append to it
/// waits until the transaction ends.
async fn hold_first_version(holder: &mut Transaction<'_, Postgres>, stream: &StreamId) {
    sqlx::query(
        "INSERT INTO ledger.events (event_id, stream_id, category, stream_version, event_type,
                                    schema_version, payload, metadata, recorded_at, row_hash)
         VALUES ($1, $2, $3, 1, 'Held', 1, '{}', '{}', now(), $4)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(stream.as_str())
    .bind(stream.category())
    .bind(vec![0u8; 32])
    .execute(&mut **holder)
    .await
    .expect("hold");
}

/// Waits (up to 60 s) until `count` statements on this database wait for a lock.
async fn wait_until_waiting(pool: &PgPool, count: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .expect("activity");
        if waiting >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} appends never waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts an append and polls it once: it is then queued for a committer.
async fn queued(store: &PgEventStore, appends: Vec<StreamAppend>) -> Appending {
    let store = store.clone();
    let mut appending: Appending = Box::pin(async move { store.append_many(appends).await });
    assert!(
        matches!(futures::poll!(appending.as_mut()), Poll::Pending),
        "queued, not done"
    );
    appending
}

fn any(stream_id: StreamId, events: Vec<NewEvent>) -> StreamAppend {
    StreamAppend {
        stream_id,
        expected: ExpectedVersion::Any,
        events,
    }
}

/// The stored rows of `streams`: (stream, version, event id, position, transaction id).
async fn rows_of(
    pool: &PgPool,
    streams: &[&StreamId],
) -> Vec<(String, i64, uuid::Uuid, i64, String)> {
    let names: Vec<&str> = streams.iter().map(|s| s.as_str()).collect();
    sqlx::query_as(
        "SELECT stream_id, stream_version, event_id, position, transaction_id::text
           FROM ledger.events WHERE stream_id = ANY($1) ORDER BY stream_id, stream_version",
    )
    .bind(&names)
    .fetch_all(pool)
    .await
    .expect("rows")
}

#[tokio::test]
async fn copies_of_one_append_racing_other_writers_store_it_once_and_answer_it_to_every_copy() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let mut holder = db.pool.begin().await.expect("begin");
    let mut held = Vec::new();
    for n in 0..APPEND_COMMITTERS {
        let gate = stream(&format!("gate-{n}"));
        hold_first_version(&mut holder, &gate).await;
        let store = store.clone();
        held.push(tokio::spawn(async move {
            store
                .append(gate, ExpectedVersion::NoStream, vec![event(0)])
                .await
        }));
        wait_until_waiting(&db.pool, i64::try_from(n + 1).expect("count")).await;
    }

    // Eight copies of one append on two streams with "any" version: in one batch each passes
    // its version check and they collide on their event ids, failing the batch as a whole.
    let (dup_a, dup_b) = (stream("dup-a"), stream("dup-b"));
    let copy = vec![
        any(dup_a.clone(), vec![event(1), event(2)]),
        any(dup_b.clone(), vec![event(3)]),
    ];
    let mut copies = Vec::new();
    for _ in 0..8 {
        copies.push(queued(&store, copy.clone()).await);
    }
    // Writers of their own streams queued for the copies' committer (so in their batch), and
    // writers of new streams that any committer takes.
    let slot = dup_a.slot(APPEND_COMMITTERS);
    let neighbours: Vec<StreamId> = (0..)
        .map(|n| stream(&format!("neighbour-{n}")))
        .filter(|s| s.slot(APPEND_COMMITTERS) == slot)
        .take(6)
        .collect();
    let mut others = Vec::new();
    for neighbour in &neighbours {
        others.push(queued(&store, vec![any(neighbour.clone(), vec![event(4)])]).await);
    }
    let strangers: Vec<StreamId> = (0..6).map(|n| stream(&format!("stranger-{n}"))).collect();
    for stranger in &strangers {
        let append = StreamAppend {
            stream_id: stranger.clone(),
            expected: ExpectedVersion::NoStream,
            events: vec![event(5)],
        };
        others.push(queued(&store, vec![append]).await);
    }
    holder.rollback().await.expect("let go");
    for held in held {
        held.await.expect("task").expect("held append");
    }
    let copies = futures::future::join_all(copies).await;
    let others = futures::future::join_all(others).await;

    // One stored copy; every copy is answered its positions and versions, one of them as new.
    let stored = rows_of(&db.pool, &[&dup_a, &dup_b]).await;
    let ids: Vec<uuid::Uuid> = copy
        .iter()
        .flat_map(|p| &p.events)
        .map(|e| e.event_id)
        .collect();
    assert_eq!(stored.iter().map(|r| r.2).collect::<Vec<_>>(), ids);
    let positions: Vec<u64> = stored
        .iter()
        .map(|r| u64::try_from(r.3).expect("position"))
        .collect();
    let mut new = 0;
    for answer in copies {
        let answer = answer.expect("every copy is answered");
        assert_eq!(answer.positions, positions);
        assert_eq!(answer.version_of(&dup_a), Some(2));
        assert_eq!(answer.version_of(&dup_b), Some(1));
        new += usize::from(!answer.idempotent_replay);
    }
    assert_eq!(new, 1, "one copy stored it, the others found it stored");

    // The other writers stored their own event, once, as new.
    for answer in others {
        let answer = answer.expect("unaffected");
        assert!(!answer.idempotent_replay);
        assert_eq!(answer.positions.len(), 1);
    }
    let own: Vec<&StreamId> = neighbours.iter().chain(&strangers).collect();
    let rows = rows_of(&db.pool, &own).await;
    assert_eq!(rows.len(), own.len());
    assert!(rows.iter().all(|r| r.1 == 1));

    // The batch with the copies failed and each of its requests was appended alone: the
    // neighbours and the stored copy each committed in a transaction of their own.
    let mut transactions: Vec<&str> = rows
        .iter()
        .filter(|r| r.0.starts_with("neighbour-"))
        .chain(&stored)
        .map(|r| r.4.as_str())
        .collect();
    transactions.sort_unstable();
    transactions.dedup();
    assert_eq!(transactions.len(), neighbours.len() + 1);
}
