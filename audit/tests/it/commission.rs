//! `audit commission`: the replay of the events alone equals the live wallet read model, now and
//! as of earlier instants, from the database and from an export; differences are listed.

use crate::common;

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use common::{Figures, Log, TempDir, figures};
use lightspeed_audit::{
    CommissionOptions, ExitStatus, Inconsistency, OutputFormat, ReplayFilter, Source,
    replay_commission, replay_database, replay_path, run_commission, verify_path,
};
use lightspeed_domain::payment::PaymentEvent;
use lightspeed_domain::wallet::WalletEvent;
use lightspeed_domain::{Clock, Decider, MerchantId, Paise, Payment, Wallet};
use lightspeed_eventstore::audit_reads::{ReplaySelection, SelectedEvents};
use lightspeed_eventstore::testing::settled;
use lightspeed_eventstore::{
    EventStore, ExpectedVersion, LogPosition, Metadata, NewEvent, stream_of,
};

/// Runs the `commission` entry point; answers its exit status and what it printed.
async fn run(options: CommissionOptions) -> (ExitStatus, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = run_commission(&options, &mut out, &mut err).await;
    (
        status,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn options(source: Source) -> CommissionOptions {
    CommissionOptions {
        source,
        as_of: None,
        merchant: None,
        format: OutputFormat::Table,
        progress: false,
    }
}

fn as_of(at: DateTime<Utc>) -> ReplayFilter {
    ReplayFilter {
        as_of: Some(at),
        merchant: None,
    }
}

/// Runs `rounds` rounds of the scenario, bringing the read model up to date after each; answers
/// an instant between each round's last event and the next round's first, with what the read
/// model held then.
async fn rounds(log: &mut Log, rounds: usize, events: usize) -> Vec<(DateTime<Utc>, Figures)> {
    let mut snapshots = Vec::new();
    for _ in 0..rounds {
        log.more(events).await;
        log.project().await;
        // Appends are 10 ms apart: 5 ms after the last one lies before the next.
        let between = log.clock.now() + TimeDelta::milliseconds(5);
        snapshots.push((between, log.read_model().await));
    }
    snapshots
}

#[tokio::test]
async fn as_of_an_instant_between_events_gives_what_the_read_model_held_then() {
    let mut log = Log::new(21).await;
    let snapshots = rounds(&mut log, 6, 150).await;
    log.seal().await;
    let dir = TempDir::new();
    let path = dir.file("log.ndjson.zst");
    log.export(&path, None).await;

    assert!(
        snapshots[0].1.values().any(|f| f[2] > 0),
        "commission accrued early on"
    );
    assert!(
        snapshots
            .last()
            .is_some_and(|(_, s)| s.values().any(|f| f[4] > 0)),
        "payouts by the end"
    );
    assert!(
        snapshots
            .last()
            .is_some_and(|(_, s)| s.values().any(|f| f[3] > 0)),
        "commission reversed by refunds by the end"
    );
    for (at, snapshot) in &snapshots {
        let from_file = replay_path(&path, as_of(*at), false).expect("file replay");
        assert_eq!(&figures(&from_file.merchants), snapshot, "file as of {at}");
        assert_eq!(from_file.as_of, Some(*at));
        let from_db = replay_database(log.pool(), as_of(*at))
            .await
            .expect("db replay");
        assert_eq!(
            &figures(&from_db.merchants),
            snapshot,
            "database as of {at}"
        );
    }
    // Before the first event: nothing.
    let before = replay_path(&path, as_of(common::start()), false).expect("replay");
    assert!(before.merchants.is_empty());
    // Distinct snapshots really are distinct instants of the ledger.
    assert_ne!(snapshots[0].1, snapshots[5].1);
}

#[tokio::test]
async fn the_replay_equals_the_read_model_after_a_randomized_run() {
    let mut log = Log::new(31).await;
    log.more(4_000).await;
    log.project().await;
    log.seal().await;

    // The run covers what a wallet sees: failures, late successes, payouts, reversals.
    let kinds: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type || CASE WHEN payload->>'late_success' = 'true' THEN ' (late)'
                                   WHEN payload->>'was_paid_out' = 'true' THEN ' (paid out)'
                                   ELSE '' END, count(*)
           FROM ledger.events GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(log.pool())
    .await
    .expect("kinds");
    for kind in [
        "PaymentFailed",
        "PaymentSucceeded",
        "PaymentSucceeded (late)",
        "CommissionPaidOut",
        "PayoutReversed",
        "ManualSettlementRecorded",
    ] {
        assert!(
            kinds.iter().any(|(k, n)| k == kind && *n > 0),
            "no {kind} in {kinds:?}"
        );
    }

    let read_model = log.read_model().await;
    let from_db = replay_database(log.pool(), ReplayFilter::default())
        .await
        .expect("db replay");
    assert_eq!(figures(&from_db.merchants), read_model);
    assert!(from_db.differences().is_empty());
    assert_eq!(from_db.inconsistencies, Vec::new());

    let dir = TempDir::new();
    let path = dir.file("log.ndjson.zst");
    log.export(&path, None).await;
    let from_file = replay_path(&path, ReplayFilter::default(), false).expect("file replay");
    assert_eq!(from_file.merchants, from_db.merchants);
    assert_eq!(from_file.inconsistencies, Vec::new());

    // The library call over the event store's own events agrees.
    settled(log.pool()).await;
    let events = log
        .store
        .read_log(LogPosition::START, None, 10_000)
        .await
        .expect("read");
    assert_eq!(
        replay_commission(&events, ReplayFilter::default()).expect("replay"),
        from_db.merchants
    );
    // And so do the wallets the scenario folded while deciding.
    for (merchant, wallet) in log.scenario.wallets() {
        let replayed = from_db.merchants.iter().find(|m| m.merchant_id == merchant);
        let accrued = replayed.map_or(Paise::ZERO, |m| m.commission_accrued_paise);
        let balance_due = replayed.map_or(Paise::ZERO, |m| m.balance_due_paise);
        assert_eq!(
            (accrued, balance_due),
            (wallet.accrued(), wallet.balance_due())
        );
    }

    let (status, out, err) = run(options(Source::Database(log.pool().clone()))).await;
    assert_eq!(status, ExitStatus::Clean, "{out}{err}");
    assert!(out.contains("no differences"), "{out}");
    assert!(out.contains("TOTAL"), "{out}");
    assert!(
        out.contains("every success has exactly its commission"),
        "{out}"
    );

    // One merchant's figures, as CSV and JSON.
    let merchant = from_db.merchants[0].merchant_id;
    let (status, out, _) = run(CommissionOptions {
        merchant: Some(merchant),
        format: OutputFormat::Csv,
        ..options(Source::File(path.clone()))
    })
    .await;
    assert_eq!(status, ExitStatus::Clean);
    let csv: Vec<&str> = out.lines().collect();
    assert_eq!(csv.len(), 2, "{out}");
    assert_eq!(csv[0], lightspeed_audit::render::CSV_HEADER);
    assert!(csv[1].starts_with(&merchant.to_string()), "{out}");
    let (status, out, _) = run(CommissionOptions {
        format: OutputFormat::Json,
        ..options(Source::Database(log.pool().clone()))
    })
    .await;
    assert_eq!(status, ExitStatus::Clean);
    let document: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        document["merchants"].as_array().map(Vec::len),
        Some(from_db.merchants.len())
    );
    assert_eq!(
        document["totals"]["commission_accrued_paise"],
        serde_json::json!(from_db.totals().commission_accrued_paise.0)
    );
    assert!(
        document["read_model"]["compared"]["differences"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    // A read model that drifted from the log: every difference is listed.
    let schema: String = sqlx::query_scalar(
        "SELECT schema_name FROM projections.versions WHERE projection = 'wallets' AND state = 'active'",
    )
    .fetch_one(log.pool())
    .await
    .expect("schema");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {schema}.wallet_balances SET paid_out_paise = paid_out_paise + 1,
                balance_due_paise = balance_due_paise - 1 WHERE merchant_id = $1"
    )))
    .bind(merchant.0)
    .execute(log.pool())
    .await
    .expect("drift");
    let (status, out, _) = run(options(Source::Database(log.pool().clone()))).await;
    assert_eq!(status, ExitStatus::Mismatch, "{out}");
    assert!(out.contains("2 DIFFERENCES"), "{out}");
    assert!(
        out.contains(&format!("merchant {merchant} paid_out_paise")),
        "{out}"
    );
    assert!(
        out.contains(&format!("merchant {merchant} balance_due_paise")),
        "{out}"
    );
}

#[tokio::test]
async fn an_export_cut_at_an_instant_answers_as_of_that_instant() {
    let mut log = Log::new(41).await;
    let snapshots = rounds(&mut log, 4, 120).await;
    log.seal().await;
    let dir = TempDir::new();
    let path = dir.file("until.ndjson.zst");
    let (until, at_until) = &snapshots[2];
    let summary = log.export(&path, Some(*until)).await;
    assert_eq!(summary.header.until, Some(*until));
    verify_path(&path, false).expect("a cut export verifies");
    // Every event recorded by then is in the file; it runs on to the end of the covering seal.
    let recorded_by_then: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ledger.events WHERE recorded_at <= $1")
            .bind(until)
            .fetch_one(log.pool())
            .await
            .expect("count");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger.events")
        .fetch_one(log.pool())
        .await
        .expect("count");
    let in_file = i64::try_from(summary.header.events).expect("count");
    assert!(
        in_file >= recorded_by_then && in_file < total,
        "{in_file} of {total}"
    );

    // --as-of defaults to --until.
    let default = replay_path(&path, ReplayFilter::default(), false).expect("replay");
    assert_eq!(default.as_of, Some(*until));
    assert_eq!(&figures(&default.merchants), at_until);
    let (earlier, at_earlier) = &snapshots[1];
    let replayed = replay_path(&path, as_of(*earlier), false).expect("replay");
    assert_eq!(&figures(&replayed.merchants), at_earlier);

    // Past --until the file cannot answer.
    let (status, _, err) = run(CommissionOptions {
        as_of: Some(*until + TimeDelta::seconds(1)),
        ..options(Source::File(path.clone()))
    })
    .await;
    assert_eq!(status, ExitStatus::Usage, "{err}");
    assert!(err.contains("--until"), "{err}");
    assert!(!Path::new(&format!("{}.partial", path.display())).exists());
}

#[tokio::test]
async fn a_commission_that_does_not_match_its_payment_is_listed() {
    let mut log = Log::new(61).await;
    log.more(600).await;
    log.seal().await;
    let dir = TempDir::new();
    let path = dir.file("log.ndjson.zst");
    log.export(&path, None).await;
    let lines = common::read_lines(&path);
    let accrual = common::find_line(&lines, 0, |v| v["event_type"] == "CommissionAccrued");
    let payment_id: lightspeed_domain::PaymentId =
        common::json(&lines[accrual])["payload"]["payment_id"]
            .as_str()
            .expect("payment id")
            .parse()
            .expect("uuid");

    // One paisa more commission in the wallet than the payment decided (hashes not checked here:
    // that is `audit verify`'s job; the replay still notices).
    let mut edited = lines.clone();
    let mut event = common::json(&edited[accrual]);
    let commission = event["payload"]["commission"].as_i64().expect("commission");
    event["payload"]["commission"] = (commission + 1).into();
    edited[accrual] = serde_json::to_vec(&event).expect("json");
    common::write_lines(&path, &edited);
    let replayed = replay_path(&path, ReplayFilter::default(), false).expect("replay");
    assert!(
        replayed.inconsistencies.iter().any(|i| matches!(
            i,
            lightspeed_audit::Inconsistency::Disagree { payment_id: p, field, .. }
                if *p == payment_id && field == "commission_paise"
        )),
        "{:?}",
        replayed.inconsistencies
    );
    assert!(replayed.inconsistencies.iter().any(|i| matches!(
        i,
        lightspeed_audit::Inconsistency::Miscomputed { payment_id: p, .. } if *p == payment_id
    )));
    let (status, out, _) = run(options(Source::File(path.clone()))).await;
    assert_eq!(status, ExitStatus::Mismatch, "{out}");
    assert!(out.contains("INCONSISTENCIES"), "{out}");
    assert!(out.contains(&payment_id.to_string()), "{out}");

    // The accrual gone, with the counts edited to match.
    let mut edited = lines.clone();
    edited.remove(accrual);
    for index in [0, edited.len() - 1] {
        let mut line = common::json(&edited[index]);
        line["events"] = (line["events"].as_u64().expect("events") - 1).into();
        edited[index] = serde_json::to_vec(&line).expect("json");
    }
    common::write_lines(&path, &edited);
    let replayed = replay_path(&path, ReplayFilter::default(), false).expect("replay");
    assert!(
        replayed.inconsistencies.iter().any(|i| matches!(
            i,
            lightspeed_audit::Inconsistency::SuccessWithoutCommission { payment_id: p, merchant_id: Some(_), .. }
                if *p == payment_id
        )),
        "{:?}",
        replayed.inconsistencies
    );
    // `audit verify` names the removal itself.
    assert!(matches!(
        verify_path(&path, false),
        Err(lightspeed_audit::AuditError::Tampering(_))
    ));
}

/// Appends `event` to `merchant`'s wallet whatever it holds, bypassing the wallet's rules: the
/// log a faulty or forged writer leaves.
async fn append_to_wallet(log: &Log, merchant: MerchantId, event: &WalletEvent) {
    let stream = stream_of::<Wallet>(merchant).expect("stream");
    let event =
        NewEvent::from_domain(uuid::Uuid::now_v7(), event, Metadata::default()).expect("event");
    log.store
        .append(stream, ExpectedVersion::Any, vec![event])
        .await
        .expect("append");
}

/// A commission accrued in the log, and a payment initiated that never succeeded, with the
/// accrual its success would have made.
async fn an_accrual_and_a_payment_without_success(
    log: &Log,
) -> ((MerchantId, WalletEvent), (MerchantId, WalletEvent)) {
    log.settle().await;
    let events = log
        .store
        .read_log(LogPosition::START, None, 10_000)
        .await
        .expect("read");
    let succeeded: HashSet<&str> = events
        .iter()
        .filter(|e| e.event_type == "PaymentSucceeded")
        .map(|e| e.stream_id.as_str())
        .collect();
    let accrual = events
        .iter()
        .find(|e| e.event_type == "CommissionAccrued")
        .map(|e| {
            let merchant = e.stream_id.as_str()["wallet-".len()..]
                .parse()
                .expect("merchant");
            (merchant, e.decode::<WalletEvent>().expect("decode"))
        })
        .expect("a commission accrued");
    let orphan = events
        .iter()
        .filter(|e| !succeeded.contains(e.stream_id.as_str()))
        .find_map(|e| match e.decode::<PaymentEvent>() {
            Ok(PaymentEvent::PaymentInitiated {
                payment_id,
                merchant_id,
                amount,
                fee,
                at,
                ..
            }) => {
                let commission = fee.of(amount);
                let accrual = WalletEvent::CommissionAccrued {
                    payment_id,
                    amount,
                    fee,
                    commission,
                    at,
                };
                Some((merchant_id, accrual))
            }
            _ => None,
        })
        .expect("a payment that did not succeed");
    (accrual, orphan)
}

#[tokio::test]
async fn a_second_commission_for_one_payment_and_a_commission_without_success_are_listed() {
    let mut log = Log::new(62).await;
    log.more(400).await;
    let ((merchant, accrual), (other, orphan)) =
        an_accrual_and_a_payment_without_success(&log).await;
    append_to_wallet(&log, merchant, &accrual).await;
    append_to_wallet(&log, other, &orphan).await;
    let commission_of = |event: &WalletEvent| match event {
        WalletEvent::CommissionAccrued {
            payment_id,
            commission,
            ..
        } => (*payment_id, *commission),
        other => panic!("not an accrual: {other:?}"),
    };
    let (paid, commission) = commission_of(&accrual);
    let (unpaid, orphan_commission) = commission_of(&orphan);
    let expected = vec![
        Inconsistency::DuplicateCommission {
            payment_id: paid,
            merchant_id: merchant,
            commission_paise: commission,
        },
        Inconsistency::CommissionWithoutSuccess {
            payment_id: unpaid,
            merchant_id: other,
            commission_paise: orphan_commission,
        },
    ];

    log.settle().await;
    let from_db = replay_database(log.pool(), ReplayFilter::default())
        .await
        .expect("replay");
    assert_eq!(from_db.inconsistencies, expected);
    let dir = TempDir::new();
    let path = dir.file("log.ndjson.zst");
    log.export(&path, None).await;
    let from_file = replay_path(&path, ReplayFilter::default(), false).expect("replay");
    assert_eq!(from_file.inconsistencies, expected);
    let (status, out, _) = run(options(Source::Database(log.pool().clone()))).await;
    assert_eq!(status, ExitStatus::Mismatch, "{out}");
    assert!(out.contains("2 INCONSISTENCIES"), "{out}");
    assert!(out.contains(&format!("for payment {paid} again")), "{out}");
    assert!(
        out.contains(&format!("for payment {unpaid}, whose success")),
        "{out}"
    );
}

#[tokio::test]
async fn a_reversal_beyond_its_payment_commission_or_without_one_is_listed() {
    let mut log = Log::new(63).await;
    log.more(400).await;
    let ((merchant, accrual), (other, orphan)) =
        an_accrual_and_a_payment_without_success(&log).await;
    let WalletEvent::CommissionAccrued {
        payment_id,
        commission,
        at,
        ..
    } = accrual
    else {
        panic!("not an accrual: {accrual:?}");
    };
    let WalletEvent::CommissionAccrued {
        payment_id: unpaid, ..
    } = orphan
    else {
        panic!("not an accrual: {orphan:?}");
    };
    let reversal = |payment_id, commission: Paise| WalletEvent::CommissionReversed {
        payment_id,
        refund_id: uuid::Uuid::now_v7().to_string(),
        refund_amount: Paise(100),
        commission,
        at,
    };
    // Its whole commission, then one paisa more; and a reversal of a payment never accrued.
    append_to_wallet(&log, merchant, &reversal(payment_id, commission)).await;
    append_to_wallet(&log, merchant, &reversal(payment_id, Paise(1))).await;
    append_to_wallet(&log, other, &reversal(unpaid, Paise(5))).await;
    let expected = [
        Inconsistency::ReversalExceedsCommission {
            payment_id,
            merchant_id: merchant,
            accrued_paise: commission,
            reversed_paise: commission.saturating_add(Paise(1)),
        },
        Inconsistency::ReversalWithoutCommission {
            payment_id: unpaid,
            merchant_id: other,
            reversed_paise: Paise(5),
        },
    ];
    log.settle().await;
    let from_db = replay_database(log.pool(), ReplayFilter::default())
        .await
        .expect("replay");
    for inconsistency in &expected {
        assert!(
            from_db.inconsistencies.contains(inconsistency),
            "{inconsistency:?} in {:?}",
            from_db.inconsistencies
        );
    }
    let (status, out, _) = run(options(Source::Database(log.pool().clone()))).await;
    assert_eq!(status, ExitStatus::Mismatch, "{out}");
    assert!(out.contains("more than the"), "{out}");
    assert!(out.contains("which it never accrued"), "{out}");
}

#[tokio::test]
async fn the_replayed_events_are_read_in_read_order_whatever_the_batch() {
    let mut log = Log::new(37).await;
    log.more(600).await;
    log.settle().await;
    let types = ["PaymentInitiated", "PaymentSucceeded"];
    let selection = ReplaySelection {
        every_event_of: <Wallet as Decider>::CATEGORY,
        some_events_of: <Payment as Decider>::CATEGORY,
        event_types: &types,
    };
    let expected: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT stream_id, event_type, payload::text FROM ledger.events
          WHERE category = $1 OR (category = $2 AND event_type = ANY($3))
          ORDER BY transaction_id, position",
    )
    .bind(selection.every_event_of)
    .bind(selection.some_events_of)
    .bind(&types[..])
    .fetch_all(log.pool())
    .await
    .expect("the selection in one query");
    // Both categories are read, and the payment events not selected lie among those that are.
    let (left_out,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM ledger.events WHERE category = $1 AND NOT event_type = ANY($2)",
    )
    .bind(selection.some_events_of)
    .bind(&types[..])
    .fetch_one(log.pool())
    .await
    .expect("count");
    assert!(left_out > 0);
    for category in [selection.every_event_of, selection.some_events_of] {
        assert!(expected.iter().any(|(s, _, _)| s.starts_with(category)));
    }

    for limit in [1, 3, 10, 10_000] {
        let mut tx = log.pool().begin().await.expect("begin");
        let mut selected = SelectedEvents::new(&selection);
        let mut read = Vec::new();
        let mut positions = Vec::new();
        loop {
            let batch = selected.next_batch(&mut tx, limit).await.expect("read");
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= limit, "a batch of {limit} or fewer");
            for event in batch {
                positions.push(event.log_position);
                read.push((event.stream_id, event.event_type, event.payload));
            }
        }
        assert!(positions.is_sorted(), "read order in batches of {limit}");
        assert_eq!(read, expected, "in batches of {limit}");
    }
}
