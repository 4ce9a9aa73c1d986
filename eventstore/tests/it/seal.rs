//! Tamper evidence: seals chain the log in the background; the verifier names the event that
//! was changed, removed, inserted or moved, even by someone who can bypass the triggers.

use crate::common;

use common::{event, store};
use lightspeed_eventstore::hash::{RowContent, canonical_json, row_hash};
use lightspeed_eventstore::seal::{Sealer, SealerConfig, load_seals};
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_eventstore::verify::{Tampering, VerifyError, verify_database};
use lightspeed_eventstore::{EventStore, ExpectedVersion, StreamId};

async fn sealed_log(db: &TestDatabase) {
    let store = store(db);
    for s in 0..6 {
        let id = StreamId::parse(format!("payment-{s}")).expect("id");
        for n in 0..7 {
            store
                .append(id.clone(), ExpectedVersion::Any, vec![event(s * 100 + n)])
                .await
                .expect("append");
        }
    }
    let sealer = Sealer::new(
        db.pool.clone(),
        SealerConfig {
            max_events_per_seal: 10,
            ..SealerConfig::default()
        },
    );
    // Transactions of other tests on the same server can hold the gap-safe watermark back for
    // a moment: seal until every event is covered.
    let mut sealed = 0;
    while sealed < 42 {
        match sealer.seal_once().await.expect("seal") {
            Some(seal) => sealed += seal.event_count,
            None => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

/// Runs SQL as someone who bypasses the append-only triggers (a superuser in replica mode).
async fn tamper(db: &TestDatabase, sql: &str) {
    let mut tx = db.pool.begin().await.expect("begin");
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .expect("replica");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *tx)
        .await
        .expect(sql);
    tx.commit().await.expect("commit");
}

async fn tampering(db: &TestDatabase) -> Tampering {
    match verify_database(&db.pool).await {
        Err(VerifyError::Tampering(found)) => found,
        other => panic!("tampering must be found, got {other:?}"),
    }
}

#[tokio::test]
async fn a_clean_log_verifies_and_every_event_is_sealed() {
    let db = TestDatabase::new().await;
    sealed_log(&db).await;
    let seals = load_seals(&db.pool).await.expect("seals");
    assert!(
        seals.iter().all(|s| s.event_count <= 10),
        "seals of at most 10 events"
    );
    assert_eq!(seals.iter().map(|s| s.event_count).sum::<u64>(), 42);
    let report = verify_database(&db.pool).await.expect("clean");
    assert_eq!(
        (report.events, report.streams, report.unsealed_events),
        (42, 6, 0)
    );
    assert_eq!(report.seals, seals.len() as u64);

    // New events are verified too, but reported as not yet sealed.
    store(&db)
        .append(
            StreamId::parse("payment-late").expect("id"),
            ExpectedVersion::NoStream,
            vec![event(1)],
        )
        .await
        .expect("append");
    // Other tests' transactions on the server can hold the gap-safe watermark back a moment.
    for _ in 0..100 {
        let report = verify_database(&db.pool).await.expect("clean");
        if report.events == 43 {
            assert_eq!(report.unsealed_events, 1);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the new event never became visible to the verifier");
}

#[tokio::test]
async fn a_changed_payload_is_named() {
    let db = TestDatabase::new().await;
    sealed_log(&db).await;
    tamper(&db, "UPDATE ledger.events SET payload = '{\"by\": 9999}' WHERE stream_id = 'payment-3' AND stream_version = 4").await;
    match tampering(&db).await {
        Tampering::Changed(event) => assert_eq!(
            (event.stream_id.as_str(), event.stream_version),
            ("payment-3", 4)
        ),
        other => panic!("expected a changed event, got {other}"),
    }
}

#[tokio::test]
async fn a_row_rewritten_with_a_recomputed_hash_is_named_by_its_seal() {
    let db = TestDatabase::new().await;
    sealed_log(&db).await;
    // The forger knows the public hash scheme and recomputes the row hash for the new payload,
    // so the row is self-consistent: only the seal can tell.
    let row: (uuid::Uuid, serde_json::Value, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "SELECT event_id, metadata, recorded_at FROM ledger.events WHERE stream_id = 'payment-2' AND stream_version = 3",
    )
    .fetch_one(&db.pool)
    .await
    .expect("row");
    let payload = serde_json::json!({ "by": 1 });
    let forged = row_hash(&RowContent {
        event_id: row.0,
        stream_id: "payment-2",
        event_type: "Counted",
        schema_version: 1,
        payload: &canonical_json(&payload).expect("canonical"),
        metadata: &canonical_json(&row.1).expect("canonical"),
        recorded_at: row.2,
    });
    tamper(
        &db,
        &format!(
            "UPDATE ledger.events SET payload = '{payload}', row_hash = '\\x{}'
              WHERE stream_id = 'payment-2' AND stream_version = 3",
            hex::encode(forged)
        ),
    )
    .await;
    match tampering(&db).await {
        Tampering::Replaced { event, seal_number } => {
            assert_eq!(
                (event.stream_id.as_str(), event.stream_version),
                ("payment-2", 3)
            );
            assert!(seal_number >= 1);
        }
        other => panic!("expected a replaced event, got {other}"),
    }
}

#[tokio::test]
async fn two_swapped_payloads_are_named() {
    let db = TestDatabase::new().await;
    sealed_log(&db).await;
    tamper(
        &db,
        "UPDATE ledger.events e SET payload = s.payload
           FROM (SELECT a.position AS target, b.payload FROM ledger.events a, ledger.events b
                  WHERE (a.stream_id, a.stream_version, b.stream_id, b.stream_version) IN
                        (('payment-1', 2, 'payment-4', 6), ('payment-4', 6, 'payment-1', 2))) s
          WHERE e.position = s.target",
    )
    .await;
    match tampering(&db).await {
        Tampering::Changed(event) => assert_eq!(
            (event.stream_id.as_str(), event.stream_version),
            ("payment-1", 2)
        ),
        other => panic!("expected the first swapped event to be named, got {other}"),
    }
}

#[tokio::test]
async fn a_removed_event_is_named_by_position() {
    let db = TestDatabase::new().await;
    sealed_log(&db).await;
    let position: i64 = sqlx::query_scalar(
        "SELECT position FROM ledger.events WHERE stream_id = 'payment-5' AND stream_version = 7",
    )
    .fetch_one(&db.pool)
    .await
    .expect("position");
    tamper(
        &db,
        &format!("DELETE FROM ledger.events WHERE position = {position}"),
    )
    .await;
    match tampering(&db).await {
        Tampering::Removed {
            position: missing, ..
        } => assert_eq!(missing as i64, position),
        other => panic!("expected a removed event, got {other}"),
    }
}

#[tokio::test]
async fn an_event_inserted_into_the_sealed_past_is_named() {
    let db = TestDatabase::new().await;
    sealed_log(&db).await;
    // Forge a row that sorts between sealed rows: same transaction id, an unused position.
    tamper(
        &db,
        "INSERT INTO ledger.events (position, transaction_id, event_id, stream_id, category, stream_version,
                                    event_type, schema_version, payload, metadata, recorded_at, row_hash)
         OVERRIDING SYSTEM VALUE
         SELECT position + 100000, transaction_id, gen_random_uuid(), 'payment-forged', 'payment', 1,
                event_type, schema_version, payload, metadata, recorded_at, row_hash
           FROM ledger.events WHERE stream_id = 'payment-0' AND stream_version = 1",
    )
    .await;
    match tampering(&db).await {
        // Its row hash cannot match (the forger kept another row's hash), or, if it did, the seal
        // would not list it: either way the forged row is the one named.
        Tampering::Changed(event) | Tampering::Inserted(event) => {
            assert_eq!(event.stream_id, "payment-forged")
        }
        other => panic!("expected the forged event to be named, got {other}"),
    }
}

#[tokio::test]
async fn an_altered_seal_breaks_the_chain() {
    let db = TestDatabase::new().await;
    sealed_log(&db).await;
    tamper(
        &db,
        "UPDATE ledger.seals SET seal_hash = sha256(seal_hash) WHERE seal_number = 2",
    )
    .await;
    match tampering(&db).await {
        Tampering::SealAltered { seal_number, .. } => assert!(seal_number == 2 || seal_number == 3),
        other => panic!("expected an altered seal, got {other}"),
    }
}
