//! `audit verify --db` on a real log whose table was tampered with behind the append-only
//! triggers (each test's database is its own throwaway copy of such a log).

use crate::common;

use common::Log;
use lightspeed_audit::{
    AuditError, ExitStatus, Source, VerifyOptions, run_verify, verify_database,
};
use lightspeed_eventstore::LogPosition;
use lightspeed_eventstore::verify::{EventRef, Tampering};
use sqlx::Row;

/// A sealed log with an unsealed tail.
async fn sealed_log(seed: u64) -> Log {
    let mut log = Log::new(seed).await;
    log.more(300).await;
    log.seal().await;
    log.more(20).await;
    log.settle().await;
    log
}

/// The event at the 150th place of the read order.
async fn middle_event(log: &Log) -> EventRef {
    let row = sqlx::query(
        "SELECT transaction_id::text AS tx, position, stream_id, stream_version FROM ledger.events
          ORDER BY transaction_id, position OFFSET 150 LIMIT 1",
    )
    .fetch_one(log.pool())
    .await
    .expect("an event");
    EventRef {
        stream_id: row.get("stream_id"),
        stream_version: u64::try_from(row.get::<i64, _>("stream_version")).expect("version"),
        log_position: LogPosition {
            transaction_id: row.get::<String, _>("tx").parse().expect("xid8"),
            position: u64::try_from(row.get::<i64, _>("position")).expect("position"),
        },
    }
}

async fn tamper(log: &Log, sql: &str) {
    for statement in [
        "ALTER TABLE ledger.events DISABLE TRIGGER events_append_only",
        "ALTER TABLE ledger.seals DISABLE TRIGGER seals_append_only",
        sql,
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(log.pool())
            .await
            .expect("tamper");
    }
}

async fn found(log: &Log) -> Tampering {
    match verify_database(log.pool(), &indicatif::ProgressBar::hidden()).await {
        Err(AuditError::Tampering(t)) => t,
        other => panic!("expected tampering, got {other:?}"),
    }
}

async fn run(log: &Log) -> (ExitStatus, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = run_verify(
        &VerifyOptions {
            source: Source::Database(log.pool().clone()),
            progress: false,
        },
        &mut out,
        &mut err,
    )
    .await;
    (status, String::from_utf8_lossy(&err).into_owned())
}

#[tokio::test]
async fn a_payload_changed_in_the_table_names_the_event() {
    let log = sealed_log(51).await;
    let event = middle_event(&log).await;
    tamper(
        &log,
        &format!(
            "UPDATE ledger.events SET payload = payload || '{{\"tampered\": 1}}'::jsonb
              WHERE position = {}",
            event.log_position.position
        ),
    )
    .await;
    assert_eq!(found(&log).await, Tampering::Changed(event.clone()));
    let (status, err) = run(&log).await;
    assert_eq!(status, ExitStatus::Tampered);
    assert!(err.contains(&event.to_string()), "{err}");
}

#[tokio::test]
async fn a_row_deleted_from_the_table_is_named_by_its_position() {
    let log = sealed_log(52).await;
    let event = middle_event(&log).await;
    tamper(
        &log,
        &format!(
            "DELETE FROM ledger.events WHERE position = {}",
            event.log_position.position
        ),
    )
    .await;
    match found(&log).await {
        Tampering::Removed { position, .. } => assert_eq!(position, event.log_position.position),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_seal_altered_in_the_table_is_named() {
    let log = sealed_log(53).await;
    let last: i64 = sqlx::query_scalar("SELECT max(seal_number) FROM ledger.seals")
        .fetch_one(log.pool())
        .await
        .expect("seals");
    assert!(last > 4, "{last} seals");
    // In the middle of the chain: the next seal's link breaks, but this one is to blame.
    tamper(
        &log,
        "UPDATE ledger.seals SET seal_hash = sha256(seal_hash) WHERE seal_number = 3",
    )
    .await;
    match found(&log).await {
        Tampering::SealAltered { seal_number, .. } => assert_eq!(seal_number, 3),
        other => panic!("{other:?}"),
    }
    let (status, err) = run(&log).await;
    assert_eq!(status, ExitStatus::Tampered);
    assert!(err.contains("seal 3 altered"), "{err}");
    // Put back, then the last seal.
    tamper(
        &log,
        "UPDATE ledger.seals s SET seal_hash = n.previous_hash
           FROM ledger.seals n WHERE s.seal_number = 3 AND n.seal_number = 4",
    )
    .await;
    let (status, err) = run(&log).await;
    assert_eq!(status, ExitStatus::Clean, "{err}");
    tamper(
        &log,
        &format!(
            "UPDATE ledger.seals SET seal_hash = sha256(seal_hash) WHERE seal_number = {last}"
        ),
    )
    .await;
    match found(&log).await {
        Tampering::SealAltered { seal_number, .. } => {
            assert_eq!(seal_number, u64::try_from(last).expect("seal"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn two_rows_swapped_in_the_table_are_named() {
    let log = sealed_log(54).await;
    let first = middle_event(&log).await;
    // Give the first event a place in the read order after a later one (its transaction's id).
    let later: (String, i64) = sqlx::query_as(
        "SELECT transaction_id::text, position FROM ledger.events
          ORDER BY transaction_id, position OFFSET 160 LIMIT 1",
    )
    .fetch_one(log.pool())
    .await
    .expect("a later event");
    tamper(
        &log,
        &format!(
            "UPDATE ledger.events SET transaction_id = '{}'::xid8 WHERE position = {}",
            later.0, first.log_position.position
        ),
    )
    .await;
    match found(&log).await {
        Tampering::Reordered { event, .. } => {
            assert_eq!(event.stream_id, first.stream_id);
            assert_eq!(event.stream_version, first.stream_version);
            assert_eq!(event.log_position.position, first.log_position.position);
        }
        other => panic!("{other:?}"),
    }
}
