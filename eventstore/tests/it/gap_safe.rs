//! Invariant 1: a reader that follows the log never skips an event, even while many writers
//! commit out of order.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::store;
use lightspeed_eventstore::testing::{TestDatabase, settled};
use lightspeed_eventstore::{EventStore, LogPosition, LogReader};
use uuid::Uuid;

/// Inserts one row inside an open transaction; the hash is irrelevant to reading.
async fn insert_row(conn: &mut sqlx::PgConnection, stream: &str, version: i64) -> (Uuid, i64) {
    let event_id = Uuid::now_v7();
    let position: i64 = sqlx::query_scalar(
        "INSERT INTO ledger.events (event_id, stream_id, category, stream_version, event_type,
                                    schema_version, payload, metadata, recorded_at, row_hash)
         VALUES ($1, $2, split_part($2, '-', 1), $3, 'Counted', 1, '{}', '{}', now(),
                 decode(repeat('00', 32), 'hex'))
         RETURNING position",
    )
    .bind(event_id)
    .bind(stream)
    .bind(version)
    .fetch_one(conn)
    .await
    .expect("insert");
    (event_id, position)
}

/// The reader a naive implementation would write: by position only.
async fn naive_read(pool: &sqlx::PgPool, after: i64) -> Vec<(Uuid, i64)> {
    sqlx::query_as(
        "SELECT event_id, position FROM ledger.events WHERE position > $1 ORDER BY position",
    )
    .bind(after)
    .fetch_all(pool)
    .await
    .expect("naive read")
}

#[tokio::test]
async fn an_earlier_position_committing_later_is_still_read_and_the_naive_reader_loses_it() {
    let db = TestDatabase::new().await;
    let store = store(&db);

    // A takes position p1 and stays open; B takes p2 > p1 and commits first.
    let mut a = db.pool.begin().await.expect("begin a");
    let (a_id, a_position) = insert_row(&mut a, "gap-a", 1).await;
    let mut b = db.pool.begin().await.expect("begin b");
    let (b_id, b_position) = insert_row(&mut b, "gap-b", 1).await;
    b.commit().await.expect("commit b");
    assert!(a_position < b_position);

    let naive = naive_read(&db.pool, 0).await;
    assert_eq!(
        naive,
        vec![(b_id, b_position)],
        "the naive reader sees B and moves past A"
    );
    let naive_mark = naive[0].1;

    let safe = store
        .read_log(LogPosition::START, None, 100)
        .await
        .expect("read");
    assert!(
        safe.is_empty(),
        "the gap-safe reader waits while A is open: {safe:?}"
    );

    a.commit().await.expect("commit a");
    assert!(
        naive_read(&db.pool, naive_mark).await.is_empty(),
        "A is lost to the naive reader"
    );
    settled(&db.pool).await;
    let safe: Vec<Uuid> = store
        .read_log(LogPosition::START, None, 100)
        .await
        .expect("read")
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(safe, vec![a_id, b_id]);
}

#[tokio::test]
async fn a_follower_sees_every_committed_event_exactly_once_under_concurrent_delayed_commits() {
    const WRITERS: usize = 16;
    const TRANSACTIONS: usize = 25;
    let db = TestDatabase::new().await;
    let store = store(&db);
    let writer_pool = db.another_pool(WRITERS as u32).await;

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let pool = writer_pool.clone();
            tokio::spawn(async move {
                let mut committed = Vec::new();
                let mut version = 0;
                for t in 0..TRANSACTIONS {
                    let mut tx = pool.begin().await.expect("begin");
                    let mut ids = Vec::new();
                    for _ in 0..(1 + (w + t) % 3) {
                        version += 1;
                        ids.push(insert_row(&mut tx, &format!("gap-w{w}"), version).await.0);
                    }
                    // Hold the transaction open a while, so later positions commit first.
                    let delay = ((w * 7 + t * 13) % 20) as u64;
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    if (w + t) % 10 == 9 {
                        tx.rollback().await.expect("rollback");
                        version -= ids.len() as i64;
                    } else {
                        tx.commit().await.expect("commit");
                        committed.extend(ids);
                    }
                }
                committed
            })
        })
        .collect();

    // The reader stops once it has seen as many events as were committed (it learns the count
    // when the writers finish), or after a generous deadline: a reader that skipped an event
    // never gets there and the comparison below names what it missed. An empty read proves
    // nothing on its own: another test's open transaction can hold the watermark back.
    let (committed_count, mut expected) = tokio::sync::watch::channel(None::<usize>);
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = LogPosition::START;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                if expected
                    .borrow_and_update()
                    .is_some_and(|n| seen.len() >= n)
                    || tokio::time::Instant::now() > deadline
                {
                    break;
                }
                let batch = store.read_log(after, None, 37).await.expect("read");
                if batch.is_empty() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                for event in batch {
                    assert!(event.log_position > after, "read order goes forward");
                    after = event.log_position;
                    seen.push(event.event_id);
                }
            }
            seen
        })
    };

    let mut committed = HashSet::new();
    for writer in writers {
        committed.extend(writer.await.expect("writer"));
    }
    committed_count.send_replace(Some(committed.len()));
    let seen = reader.await.expect("reader");
    let unique: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no event delivered twice");
    let missed = committed.difference(&unique).count();
    let extra = unique.difference(&committed).count();
    assert_eq!(
        (missed, extra),
        (0, 0),
        "every committed event delivered, nothing else"
    );
    assert!(
        committed.len() > 500,
        "the writers committed {} events",
        committed.len()
    );
}

#[tokio::test]
async fn a_reader_of_some_categories_sees_each_of_their_committed_events_once_in_read_order() {
    const WRITERS: usize = 12;
    const TRANSACTIONS: usize = 25;
    const CATEGORIES: [&str; 3] = ["gapa", "gapb", "gapc"];
    let db = TestDatabase::new().await;
    let store = store(&db);
    let writer_pool = db.another_pool(WRITERS as u32).await;

    // Each writer appends to one stream of its category; transactions of the three categories
    // interleave and commit out of order.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let pool = writer_pool.clone();
            tokio::spawn(async move {
                let stream = format!("{}-w{w}", CATEGORIES[w % CATEGORIES.len()]);
                let mut committed = Vec::new();
                let mut version = 0;
                for t in 0..TRANSACTIONS {
                    let mut tx = pool.begin().await.expect("begin");
                    let mut ids = Vec::new();
                    for _ in 0..(1 + (w + t) % 3) {
                        version += 1;
                        ids.push(insert_row(&mut tx, &stream, version).await.0);
                    }
                    let delay = ((w * 7 + t * 13) % 20) as u64;
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    if (w + t) % 10 == 9 {
                        tx.rollback().await.expect("rollback");
                        version -= ids.len() as i64;
                    } else {
                        tx.commit().await.expect("commit");
                        committed.extend(ids);
                    }
                }
                (w % CATEGORIES.len(), committed)
            })
        })
        .collect();

    let read = vec!["gapb".to_owned(), "gapa".to_owned()];
    let (committed_count, mut expected) = tokio::sync::watch::channel(None::<usize>);
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut reader = LogReader::new(store, LogPosition::START, Some(&read));
            let mut seen = Vec::new();
            let mut after = LogPosition::START;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                if expected
                    .borrow_and_update()
                    .is_some_and(|n| seen.len() >= n)
                    || tokio::time::Instant::now() > deadline
                {
                    break;
                }
                let batch = reader.next_batch(7).await.expect("read");
                if batch.is_empty() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                assert!(batch.len() <= 7, "a batch holds at most the limit");
                for event in batch {
                    assert!(event.log_position > after, "read order goes forward");
                    assert_ne!(
                        event.stream_id.category(),
                        "gapc",
                        "only the categories read"
                    );
                    after = event.log_position;
                    seen.push(event.event_id);
                }
                assert_eq!(reader.position(), after);
            }
            seen
        })
    };

    let mut committed = HashSet::new();
    let mut all = 0;
    for writer in writers {
        let (category, ids) = writer.await.expect("writer");
        all += ids.len();
        if category != 2 {
            committed.extend(ids);
        }
    }
    committed_count.send_replace(Some(committed.len()));
    let seen = reader.await.expect("reader");
    let unique: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no event delivered twice");
    let missed = committed.difference(&unique).count();
    let extra = unique.difference(&committed).count();
    assert_eq!(
        (missed, extra),
        (0, 0),
        "every committed event of the categories delivered, nothing else"
    );
    assert!(
        committed.len() > 300 && all > committed.len(),
        "the writers committed {} events, {} of them read",
        all,
        committed.len()
    );
}
