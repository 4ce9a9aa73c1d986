//! Appending: expected versions, idempotency, atomic multi-stream appends, limits, and the
//! append-only guarantee, over a real PostgreSQL.

use crate::common;

use common::{event, store};
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_eventstore::{
    AppendError, EventStore, ExpectedVersion, InvalidInput, StreamAppend, StreamId,
};

fn stream(name: &str) -> StreamId {
    StreamId::parse(name).expect("valid stream id")
}

#[tokio::test]
async fn two_writers_expecting_the_same_version_one_wins_the_other_gets_a_conflict() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let id = stream("counter-1");
    store
        .append(id.clone(), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .expect("first");

    let (a, b) = tokio::join!(
        store.append(id.clone(), ExpectedVersion::Exact(1), vec![event(2)]),
        store.append(id.clone(), ExpectedVersion::Exact(1), vec![event(3)]),
    );
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one writer must win: {other:?}"),
    };
    assert_eq!(won.version_of(&id), Some(2));
    match lost {
        AppendError::WrongExpectedVersion {
            stream_id,
            expected,
            actual,
        } => {
            assert_eq!(stream_id, id);
            assert_eq!(expected, ExpectedVersion::Exact(1));
            assert_eq!(actual, 2);
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
    assert_eq!(store.read_stream(&id, 0, 100).await.expect("read").len(), 2);
}

#[tokio::test]
async fn expected_versions_are_checked_exactly() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let id = stream("counter-2");
    let refused = store
        .append(id.clone(), ExpectedVersion::Exact(3), vec![event(1)])
        .await;
    assert!(matches!(
        refused,
        Err(AppendError::WrongExpectedVersion { actual: 0, .. })
    ));
    store
        .append(
            id.clone(),
            ExpectedVersion::NoStream,
            vec![event(1), event(2)],
        )
        .await
        .expect("new");
    let refused = store
        .append(id.clone(), ExpectedVersion::NoStream, vec![event(3)])
        .await;
    assert!(matches!(
        refused,
        Err(AppendError::WrongExpectedVersion { actual: 2, .. })
    ));
    let refused = store
        .append(id.clone(), ExpectedVersion::Exact(1), vec![event(3)])
        .await;
    assert!(matches!(
        refused,
        Err(AppendError::WrongExpectedVersion { actual: 2, .. })
    ));
    let any = store
        .append(id.clone(), ExpectedVersion::Any, vec![event(3)])
        .await
        .expect("any");
    assert_eq!(any.version_of(&id), Some(3));
    let versions: Vec<u64> = store
        .read_stream(&id, 0, 100)
        .await
        .expect("read")
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
}

#[tokio::test]
async fn concurrent_appends_with_any_version_all_land_without_gaps() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let id = stream("wallet-hot");
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                for j in 0..10 {
                    store
                        .append(id.clone(), ExpectedVersion::Any, vec![event(i * 100 + j)])
                        .await
                        .expect("any");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let versions: Vec<u64> = store
        .read_stream(&id, 0, 1000)
        .await
        .expect("read")
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, (1..=160).collect::<Vec<_>>());
}

#[tokio::test]
async fn retrying_the_same_events_stores_nothing_new_and_answers_the_original_result() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let id = stream("payment-1");
    let events = vec![event(1), event(2)];
    let first = store
        .append(id.clone(), ExpectedVersion::NoStream, events.clone())
        .await
        .expect("first");
    assert!(!first.idempotent_replay);

    // The retry carries the same expected version, which no longer holds: still answered.
    let retry = store
        .append(id.clone(), ExpectedVersion::NoStream, events.clone())
        .await
        .expect("retry");
    assert!(retry.idempotent_replay);
    assert_eq!(retry.positions, first.positions);
    assert_eq!(retry.version_of(&id), Some(2));
    assert_eq!(store.read_stream(&id, 0, 100).await.expect("read").len(), 2);

    // Same ids, other content: refused, nothing stored.
    let mut altered = events.clone();
    altered[1].payload = serde_json::json!({ "by": 99 });
    let conflict = store
        .append(id.clone(), ExpectedVersion::Any, altered)
        .await;
    assert!(
        matches!(conflict, Err(AppendError::IdempotencyConflict { event_id }) if event_id == events[1].event_id),
        "{conflict:?}"
    );
    assert_eq!(store.read_stream(&id, 0, 100).await.expect("read").len(), 2);
}

#[tokio::test]
async fn a_multi_stream_append_is_all_or_nothing() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let payment = stream("payment-7");
    let wallet = stream("wallet-7");
    store
        .append(wallet.clone(), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .expect("wallet");

    let refused = store
        .append_many(vec![
            StreamAppend {
                stream_id: payment.clone(),
                expected: ExpectedVersion::NoStream,
                events: vec![event(2)],
            },
            StreamAppend {
                stream_id: wallet.clone(),
                expected: ExpectedVersion::Exact(5),
                events: vec![event(3)],
            },
        ])
        .await;
    assert!(
        matches!(refused, Err(AppendError::WrongExpectedVersion { ref stream_id, actual: 1, .. }) if *stream_id == wallet)
    );
    assert!(
        store
            .read_stream(&payment, 0, 10)
            .await
            .expect("read")
            .is_empty(),
        "nothing stored"
    );

    let stored = store
        .append_many(vec![
            StreamAppend {
                stream_id: payment.clone(),
                expected: ExpectedVersion::NoStream,
                events: vec![event(2)],
            },
            StreamAppend {
                stream_id: wallet.clone(),
                expected: ExpectedVersion::Any,
                events: vec![event(3)],
            },
        ])
        .await
        .expect("both");
    assert_eq!(stored.version_of(&payment), Some(1));
    assert_eq!(stored.version_of(&wallet), Some(2));
}

#[tokio::test]
async fn a_part_without_events_makes_the_append_depend_on_a_stream_it_leaves_alone() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let merchant = stream("merchant-8");
    store
        .append(merchant.clone(), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .expect("merchant");
    let decided_on = |version, payment: &str| {
        vec![
            StreamAppend {
                stream_id: stream(payment),
                expected: ExpectedVersion::NoStream,
                events: vec![event(2)],
            },
            StreamAppend {
                stream_id: merchant.clone(),
                expected: ExpectedVersion::Exact(version),
                events: Vec::new(),
            },
        ]
    };
    let stored = store
        .append_many(decided_on(1, "payment-8"))
        .await
        .expect("merchant unchanged");
    assert_eq!(stored.version_of(&merchant), Some(1));
    assert_eq!(stored.positions.len(), 1);

    store
        .append(merchant.clone(), ExpectedVersion::Exact(1), vec![event(3)])
        .await
        .expect("merchant moves on");
    let refused = store.append_many(decided_on(1, "payment-9")).await;
    assert!(
        matches!(
            &refused,
            Err(AppendError::WrongExpectedVersion { stream_id, actual: 2, .. }) if *stream_id == merchant
        ),
        "{refused:?}"
    );
    assert!(
        store
            .read_stream(&stream("payment-9"), 0, 10)
            .await
            .expect("read")
            .is_empty()
    );

    // A part without events that checks nothing is a mistake, not a no-op.
    let mut pointless = decided_on(2, "payment-10");
    pointless[1].expected = ExpectedVersion::Any;
    assert!(matches!(
        store.append_many(pointless).await,
        Err(AppendError::Invalid(InvalidInput::Empty))
    ));
}

#[tokio::test]
async fn bad_input_is_refused_with_a_typed_error_and_stores_nothing() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    for bad in [
        "",
        "nocategory",
        "Upper-1",
        "9lives-1",
        "payment-",
        "payment-a b",
        "payment-x/y",
    ] {
        assert!(
            matches!(StreamId::parse(bad), Err(InvalidInput::StreamId { .. })),
            "{bad:?} must be refused"
        );
    }
    assert!(StreamId::parse(format!("payment-{}", "x".repeat(300))).is_err());

    let id = stream("payment-limits");
    let mut huge = event(1);
    huge.payload = serde_json::json!({ "blob": "x".repeat(70 * 1024) });
    let refused = store
        .append(id.clone(), ExpectedVersion::Any, vec![huge])
        .await;
    assert!(
        matches!(
            refused,
            Err(AppendError::Invalid(InvalidInput::PayloadTooLarge { .. }))
        ),
        "{refused:?}"
    );

    let mut float = event(1);
    float.payload = serde_json::json!({ "amount": 10.5 });
    let refused = store
        .append(id.clone(), ExpectedVersion::Any, vec![float])
        .await;
    assert!(
        matches!(refused, Err(AppendError::Invalid(InvalidInput::Payload(_)))),
        "{refused:?}"
    );

    let mut bad_type = event(1);
    bad_type.event_type = "payment.succeeded".into();
    let refused = store
        .append(id.clone(), ExpectedVersion::Any, vec![bad_type])
        .await;
    assert!(
        matches!(
            refused,
            Err(AppendError::Invalid(InvalidInput::EventType(_)))
        ),
        "{refused:?}"
    );

    let too_many: Vec<_> = (0..1_001).map(event).collect();
    let refused = store
        .append(id.clone(), ExpectedVersion::Any, too_many)
        .await;
    assert!(
        matches!(
            refused,
            Err(AppendError::Invalid(InvalidInput::TooManyEvents { .. }))
        ),
        "{refused:?}"
    );

    let refused = store.append(id.clone(), ExpectedVersion::Any, vec![]).await;
    assert!(matches!(
        refused,
        Err(AppendError::Invalid(InvalidInput::Empty))
    ));

    let twice = event(1);
    let refused = store
        .append(id.clone(), ExpectedVersion::Any, vec![twice.clone(), twice])
        .await;
    assert!(matches!(
        refused,
        Err(AppendError::Invalid(InvalidInput::DuplicateEventId(_)))
    ));

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.events")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(count, 0);
}

#[tokio::test]
async fn the_log_refuses_updates_deletes_and_truncation_even_from_the_owner() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    store
        .append(
            stream("payment-9"),
            ExpectedVersion::NoStream,
            vec![event(1)],
        )
        .await
        .expect("append");
    for sql in [
        "UPDATE ledger.events SET payload = '{}'",
        "DELETE FROM ledger.events",
        "TRUNCATE ledger.events",
    ] {
        let refused = sqlx::query(sql).execute(&db.pool).await;
        let message = refused.expect_err(sql).to_string();
        assert!(message.contains("append-only"), "{sql}: {message}");
    }
}

#[tokio::test]
async fn stored_events_read_back_exactly_with_verifiable_hashes() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let id = stream("merchant-abc");
    let mut original = event(1);
    original.payload = serde_json::json!({ "z": 1, "a": { "nested": [1, "two", null, true] }, "name": "Asha \"A\" ✓" });
    store
        .append(
            id.clone(),
            ExpectedVersion::NoStream,
            vec![original.clone()],
        )
        .await
        .expect("append");
    let read = store.read_stream(&id, 0, 10).await.expect("read");
    assert_eq!(read.len(), 1);
    assert_eq!(
        read[0].payload.to_value().ok(),
        Some(original.payload.clone())
    );
    assert_eq!(
        read[0].payload,
        lightspeed_eventstore::Payload::of(&original.payload).expect("payload"),
        "payloads compare by their facts, not their spacing"
    );
    assert_eq!(read[0].metadata, original.metadata);
    assert_eq!(read[0].event_id, original.event_id);
    // The verifier reads below the gap-safe watermark, which other tests' transactions on the
    // same server can hold back for a moment.
    for _ in 0..100 {
        let report = lightspeed_eventstore::verify::verify_database(&db.pool)
            .await
            .expect("verifies");
        if report.events == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the appended event never became visible to the verifier");
}

#[tokio::test]
async fn concurrent_writers_share_commits_and_each_keeps_its_own_outcome() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    // 40 writers at once: 20 on streams of their own, and 10 pairs racing for the same new stream.
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let name = if n < 20 {
                    format!("solo-{n}")
                } else {
                    format!("pair-{}", n % 10)
                };
                let id = StreamId::parse(name).expect("id");
                (
                    n,
                    store
                        .append(id, ExpectedVersion::NoStream, vec![event(n)])
                        .await,
                )
            })
        })
        .collect();
    let mut solo_ok = 0;
    let mut pair_ok = 0;
    let mut pair_conflicts = 0;
    for task in tasks {
        let (n, result) = task.await.expect("task");
        match (n < 20, result) {
            (true, Ok(_)) => solo_ok += 1,
            (false, Ok(_)) => pair_ok += 1,
            (false, Err(AppendError::WrongExpectedVersion { actual: 1, .. })) => {
                pair_conflicts += 1
            }
            (_, other) => panic!("writer {n}: unexpected {other:?}"),
        }
    }
    assert_eq!((solo_ok, pair_ok, pair_conflicts), (20, 10, 10));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.events")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(count, 30);
}

#[tokio::test]
async fn unchanged_since_tolerates_only_the_named_event_types() {
    const TOLERATED: &[&str] = &["Counted"];
    let db = TestDatabase::new().await;
    let store = store(&db);
    let id = stream("gateway-hot");
    store
        .append(id.clone(), ExpectedVersion::NoStream, vec![event(0)])
        .await
        .expect("first");
    // Twenty writers all decided on version 1; their events are of a tolerated type.
    let writers: Vec<_> = (0..20)
        .map(|n| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let expected = ExpectedVersion::Unchanged {
                    since: 1,
                    except: TOLERATED,
                };
                store.append(id, expected, vec![event(n)]).await
            })
        })
        .collect();
    for writer in writers {
        writer
            .await
            .expect("task")
            .expect("tolerated growth does not conflict");
    }
    assert_eq!(
        store.read_stream(&id, 0, 100).await.expect("read").len(),
        21
    );

    // Another kind of event lands: a decision made before it is refused.
    let mut toggle = event(99);
    toggle.event_type = "Toggled".into();
    store
        .append(id.clone(), ExpectedVersion::Exact(21), vec![toggle])
        .await
        .expect("toggle");
    let stale = store
        .append(
            id.clone(),
            ExpectedVersion::Unchanged {
                since: 21,
                except: TOLERATED,
            },
            vec![event(1)],
        )
        .await;
    assert!(
        matches!(
            stale,
            Err(AppendError::WrongExpectedVersion { actual: 22, .. })
        ),
        "{stale:?}"
    );
    store
        .append(
            id.clone(),
            ExpectedVersion::Unchanged {
                since: 22,
                except: TOLERATED,
            },
            vec![event(1)],
        )
        .await
        .expect("decided after the toggle");
    let versions: Vec<u64> = store
        .read_stream(&id, 0, 100)
        .await
        .expect("read")
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, (1..=23).collect::<Vec<_>>());
}

#[tokio::test]
async fn one_batch_checks_each_unchanged_since_against_its_own_version() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let id = stream("gateway-busy");
    let mut toggle = event(2);
    toggle.event_type = "Toggled".into();
    store
        .append(
            id.clone(),
            ExpectedVersion::NoStream,
            vec![event(1), toggle, event(3)],
        )
        .await
        .expect("history");
    // Three requests in one batch, each "unchanged since" the version it decided on, tolerating
    // `Counted`: since 2 and since 3 hold (only `Counted` after them), since 1 does not (the
    // toggle at 2). Their one check looks at the log from the oldest decision, as the committer
    // passes it; each request is judged against its own version.
    let failed: Vec<(Option<i32>, Option<i64>)> = sqlx::query_as(
        "SELECT failed_request, actual_version FROM ledger.append_batch(
             '{1,2,3}', '{1,1,1}', '{-2,-2,-2}', '{2,1,3}', '{1,1,1}', '{1,1,1}',
             ARRAY[',Counted', ',Counted', ',Counted'], ARRAY[$1], '{gateway}', '{1}', '{1}',
             '{Counted}', '{1,2,3}', $2, '{Counted,Counted,Counted}', '{1,1,1}',
             '{\"{}\",\"{}\",\"{}\"}'::jsonb[], '{\"{}\",\"{}\",\"{}\"}'::jsonb[],
             ARRAY[now(), now(), now()], ARRAY[$3, $3, $3])
          WHERE failed_request IS NOT NULL",
    )
    .bind(id.as_str())
    .bind([
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    ])
    .bind(vec![0u8; 32])
    .fetch_all(&db.pool)
    .await
    .expect("batch");
    assert_eq!(failed, vec![(Some(2), Some(4))]);
    let types: Vec<String> = store
        .read_stream(&id, 0, 100)
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        ["Counted", "Toggled", "Counted", "Counted", "Counted"]
    );
}

#[tokio::test]
async fn requests_of_one_batch_see_what_the_accepted_ones_before_them_added_and_nothing_else() {
    let db = TestDatabase::new().await;
    // Five requests, their parts in order:
    //   1: order NoStream, then wallet Exact(5) (the wallet is empty): refused, so its
    //      tentative order event must not count for the requests after it;
    //   2: order NoStream: stored as version 1;
    //   3: order Exact(1), gateway NoStream with a `Toggled`: stored;
    //   4: gateway unchanged since 0 tolerating only `Counted`: refused by 3's `Toggled`;
    //   5: gateway Exact(1): stored as version 2.
    let failed: Vec<(Option<i32>, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT failed_request, failed_stream, actual_version FROM ledger.append_batch(
             '{1,1,2,3,3,4,5}', '{1,2,1,1,3,3,3}', '{0,5,0,1,0,-2,1}', '{0,0,0,0,0,0,0}',
             '{NULL,NULL,NULL,NULL,NULL,1,NULL}', '{1,1,1,1,1,1,1}',
             ARRAY[',Counted', ',Counted', ',Counted', ',Counted', ',Toggled', ',Counted',
                   ',Counted'],
             '{order-1,wallet-1,gateway-1}', '{order,wallet,gateway}', '{3}', '{0}', '{Counted}',
             '{1,2,3,4,5,6,7}', $1,
             '{Counted,Counted,Counted,Counted,Toggled,Counted,Counted}', '{1,1,1,1,1,1,1}',
             array_fill('{}'::jsonb, ARRAY[7]), array_fill('{}'::jsonb, ARRAY[7]),
             array_fill(now(), ARRAY[7]), array_fill($2::bytea, ARRAY[7]))
          WHERE failed_request IS NOT NULL",
    )
    .bind((0..7).map(|_| uuid::Uuid::now_v7()).collect::<Vec<_>>())
    .bind(vec![0u8; 32])
    .fetch_all(&db.pool)
    .await
    .expect("batch");
    assert_eq!(
        failed,
        vec![
            (Some(1), Some("wallet-1".to_owned()), Some(0)),
            (Some(4), Some("gateway-1".to_owned()), Some(1)),
        ]
    );
    let stored: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT stream_id, stream_version, event_type FROM ledger.events
          ORDER BY stream_id, stream_version",
    )
    .fetch_all(&db.pool)
    .await
    .expect("events");
    let expected = [
        ("gateway-1", 1, "Toggled"),
        ("gateway-1", 2, "Counted"),
        ("order-1", 1, "Counted"),
        ("order-1", 2, "Counted"),
    ];
    assert_eq!(
        stored,
        expected
            .iter()
            .map(|(s, v, t)| ((*s).to_owned(), *v, (*t).to_owned()))
            .collect::<Vec<_>>()
    );
}

/// One batch of two "any" parts, one event each, on `first` then `second`.
async fn append_batch_any(pool: &sqlx::PgPool, first: &str, second: &str) -> sqlx::Result<i64> {
    let ids = [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()];
    sqlx::query_scalar(
        "SELECT count(*) FROM ledger.append_batch(
             '{1,1}', '{1,2}', '{-1,-1}', '{0,0}', '{NULL,NULL}', '{1,1}',
             ARRAY[',Counted', ',Counted'], $1, '{lock,lock}', '{}', '{}', '{}', '{1,2}', $2,
             '{Counted,Counted}', '{1,1}', '{\"{}\",\"{}\"}'::jsonb[],
             '{\"{}\",\"{}\"}'::jsonb[], ARRAY[now(), now()], ARRAY[$3, $3])",
    )
    .bind([first, second])
    .bind(ids)
    .bind(vec![0u8; 32])
    .fetch_one(pool)
    .await
}

#[tokio::test]
async fn batches_naming_the_same_streams_in_opposite_orders_never_deadlock() {
    let db = TestDatabase::new().await;
    let pool = db.another_pool(16).await;
    // Half the writers name a then b, the others b then a: with locks taken in batch order
    // these deadlock within a few rounds, and PostgreSQL aborts one side with 40P01.
    let writers: Vec<_> = (0..16)
        .map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let (first, second) = if n % 2 == 0 {
                    ("lock-a", "lock-b")
                } else {
                    ("lock-b", "lock-a")
                };
                for _ in 0..25 {
                    let stored = append_batch_any(&pool, first, second)
                        .await
                        .expect("no append fails");
                    assert_eq!(stored, 2, "both parts of the batch are stored");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let versions: Vec<(String, i64)> = sqlx::query_as(
        "SELECT stream_id, max(stream_version) FROM ledger.events GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .expect("versions");
    assert_eq!(
        versions,
        vec![("lock-a".to_owned(), 400), ("lock-b".to_owned(), 400)]
    );
}
