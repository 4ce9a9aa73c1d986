//! Reading the log by category: the same events, in the same order, as the whole log filtered.

use crate::common;

use common::{event, store};
use lightspeed_eventstore::testing::{TestDatabase, settled};
use lightspeed_eventstore::{
    EventStore, ExpectedVersion, LogPosition, LogReader, StreamAppend, StreamId,
};

#[tokio::test]
async fn reading_categories_in_small_batches_equals_the_whole_log_filtered() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    // Interleaved appends, some touching several categories at once.
    for n in 0..30i64 {
        let mut appends = vec![StreamAppend {
            stream_id: StreamId::parse(format!("payment-{n}")).expect("id"),
            expected: ExpectedVersion::NoStream,
            events: vec![event(n), event(n + 100)],
        }];
        if n % 3 == 0 {
            appends.push(StreamAppend {
                stream_id: StreamId::parse(format!("wallet-{n}")).expect("id"),
                expected: ExpectedVersion::NoStream,
                events: vec![event(n + 200)],
            });
        }
        if n % 7 == 0 {
            appends.push(StreamAppend {
                stream_id: StreamId::parse(format!("merchant-{n}")).expect("id"),
                expected: ExpectedVersion::NoStream,
                events: vec![event(n + 300)],
            });
        }
        store.append_many(appends).await.expect("append");
    }
    settled(&db.pool).await;
    let everything = store
        .read_log(LogPosition::START, None, 1_000)
        .await
        .expect("whole log");

    for categories in [
        vec!["wallet".to_owned()],
        vec!["payment".to_owned()],
        vec!["merchant".to_owned(), "wallet".to_owned()],
        vec![
            "payment".to_owned(),
            "merchant".to_owned(),
            "payment".to_owned(),
        ],
    ] {
        let expected: Vec<_> = everything
            .iter()
            .filter(|e| categories.iter().any(|c| c == e.stream_id.category()))
            .map(|e| e.event_id)
            .collect();
        let mut read = Vec::new();
        let mut after = LogPosition::START;
        loop {
            let batch = store
                .read_log(after, Some(&categories), 4)
                .await
                .expect("read");
            let Some(last) = batch.last() else { break };
            after = last.log_position;
            read.extend(batch.iter().map(|e| e.event_id));
        }
        assert!(!expected.is_empty());
        assert_eq!(read, expected, "{categories:?}");

        // The reader of rebuilds: the same events in the same order, whatever the batch size.
        for limit in [1, 3, 1_000] {
            let mut reader = LogReader::new(store.clone(), LogPosition::START, Some(&categories));
            let mut read = Vec::new();
            loop {
                let batch = reader.next_batch(limit).await.expect("read");
                if batch.is_empty() {
                    break;
                }
                assert!(batch.len() <= limit);
                read.extend(batch.iter().map(|e| e.event_id));
            }
            assert_eq!(read, expected, "{categories:?} by {limit}");
        }
    }
}

/// The product's connections never JIT-compile a read, whatever the server's setting: on a
/// large unanalysed log the planner's estimates would otherwise have every stream read compiled.
#[tokio::test]
async fn the_product_s_connections_have_jit_off() {
    let db = TestDatabase::new().await;
    let options =
        lightspeed_eventstore::migrate::connect_options(&db.url).expect("the test database's url");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("connect");
    let jit: String = sqlx::query_scalar("SHOW jit")
        .fetch_one(&pool)
        .await
        .expect("show jit");
    assert_eq!(jit, "off");
    pool.close().await;
}
