//! `audit verify` on a real log's export: a clean file verifies; every kind of tampering is
//! detected and the altered event or seal is named; a cut file is an error, not a panic.

use crate::common;

use std::path::Path;

use common::{Log, TempDir, find_line, is_event, json, read_lines, write_lines};
use lightspeed_audit::{AuditError, ExitStatus, Source, VerifyOptions, run_verify, verify_path};
use lightspeed_eventstore::LogPosition;
use lightspeed_eventstore::hash::{RowContent, row_hash};
use lightspeed_eventstore::verify::{EventRef, Tampering};

/// A sealed log of a few hundred events with an unsealed tail, exported.
async fn exported(seed: u64) -> (Log, TempDir, std::path::PathBuf) {
    let mut log = Log::new(seed).await;
    log.more(400).await;
    log.seal().await;
    log.more(20).await;
    let dir = TempDir::new();
    let path = dir.file("log.ndjson.zst");
    log.export(&path, None).await;
    (log, dir, path)
}

fn event_ref(line: &[u8]) -> EventRef {
    let v = json(line);
    EventRef {
        stream_id: v["stream_id"].as_str().expect("stream").to_owned(),
        stream_version: v["stream_version"].as_u64().expect("version"),
        log_position: LogPosition {
            transaction_id: v["transaction_id"].as_u64().expect("tx"),
            position: v["position"].as_u64().expect("position"),
        },
    }
}

fn tampering(path: &Path) -> Tampering {
    match verify_path(path, false) {
        Err(AuditError::Tampering(t)) => t,
        other => panic!("expected tampering, got {other:?}"),
    }
}

/// Runs the `verify` entry point; answers its exit status and what it printed.
async fn run(path: &Path) -> (ExitStatus, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = run_verify(
        &VerifyOptions {
            source: Source::File(path.to_owned()),
            progress: false,
        },
        &mut out,
        &mut err,
    )
    .await;
    (
        status,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// The first index of an event line in the middle of the sealed part.
fn middle_event(lines: &[Vec<u8>]) -> usize {
    let first_event = find_line(lines, 0, is_event);
    first_event + 100
}

#[tokio::test]
async fn a_clean_export_verifies_and_agrees_with_the_database() {
    let (log, _dir, path) = exported(11).await;
    let report = verify_path(&path, false).expect("a clean export verifies");
    let database = lightspeed_audit::verify_database(log.pool(), &indicatif::ProgressBar::hidden())
        .await
        .expect("the database verifies");
    assert_eq!(report, database);
    assert!(report.events > 400, "{report:?}");
    assert!(report.seals >= 10, "{report:?}");
    assert!(report.unsealed_events > 0, "{report:?}");
    assert!(report.streams > 10, "{report:?}");

    let (status, out, err) = run(&path).await;
    assert_eq!(status, ExitStatus::Clean, "{err}");
    assert!(out.contains(&format!("events: {}", report.events)), "{out}");
    assert!(out.contains(&format!("seals: {}", report.seals)), "{out}");
    assert!(
        out.contains("recorded: 2026-03-01T09:00:00.010000Z to "),
        "{out}"
    );

    // A decompressed copy reads the same.
    let plain = path.with_extension("plain");
    let text = zstd::decode_all(std::fs::read(&path).expect("read").as_slice()).expect("unzstd");
    std::fs::write(&plain, text).expect("write");
    assert_eq!(verify_path(&plain, false).expect("plain verifies"), report);

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
    assert_eq!(status, ExitStatus::Clean);
}

#[tokio::test]
async fn one_byte_of_one_payload_changed_names_that_event() {
    let (_log, _dir, path) = exported(12).await;
    let mut lines = read_lines(&path);
    let index = find_line(&lines, middle_event(&lines), |v| {
        v["event_type"] == "CommissionAccrued"
    });
    let line = &mut lines[index];
    let amount = memchr::memmem::find(line, br#""amount":"#).expect("an amount") + 9;
    line[amount] = if line[amount] == b'9' {
        b'8'
    } else {
        line[amount] + 1
    };
    let changed = event_ref(line);
    write_lines(&path, &lines);

    assert_eq!(tampering(&path), Tampering::Changed(changed.clone()));
    let (status, _, err) = run(&path).await;
    assert_eq!(status, ExitStatus::Tampered);
    assert!(err.contains(&changed.to_string()), "{err}");
    assert!(err.contains("event changed"), "{err}");
}

#[tokio::test]
async fn one_byte_that_breaks_the_json_still_names_the_event() {
    let (_log, _dir, path) = exported(13).await;
    let mut lines = read_lines(&path);
    let index = middle_event(&lines);
    let changed = event_ref(&lines[index]);
    let line = &mut lines[index];
    let payload = memchr::memmem::find(line, br#""payload":{"#).expect("payload") + 10;
    line[payload] = b'[';
    assert!(serde_json::from_slice::<serde_json::Value>(&lines[index]).is_err());
    write_lines(&path, &lines);
    assert_eq!(tampering(&path), Tampering::Changed(changed));
}

#[tokio::test]
async fn one_event_deleted_is_named_by_its_position() {
    let (_log, _dir, path) = exported(14).await;
    let mut lines = read_lines(&path);
    let index = middle_event(&lines);
    let removed = event_ref(&lines[index]);
    let next = event_ref(&lines[index + 1]);
    lines.remove(index);
    write_lines(&path, &lines);
    match tampering(&path) {
        Tampering::Removed {
            position,
            noticed_at,
            ..
        } => {
            assert_eq!(position, removed.log_position.position);
            assert_eq!(noticed_at, Some(next));
        }
        other => panic!("{other:?}"),
    }
    let (status, _, err) = run(&path).await;
    assert_eq!(status, ExitStatus::Tampered);
    assert!(
        err.contains(&format!("position {}", removed.log_position.position)),
        "{err}"
    );
}

#[tokio::test]
async fn one_event_inserted_is_named() {
    let (_log, _dir, path) = exported(15).await;
    let lines = read_lines(&path);
    // After the last event of a transaction, inside the sealed part: a forged event with a
    // valid row hash, in a stream of its own, so only the seals can tell.
    let mut index = middle_event(&lines);
    while json(&lines[index])["transaction_id"] == json(&lines[index + 1])["transaction_id"] {
        index += 1;
    }
    let mut forged = json(&lines[index]);
    let stream_id = format!("wallet-{}", uuid::Uuid::now_v7());
    let event_id = uuid::Uuid::now_v7();
    forged["stream_id"] = stream_id.clone().into();
    forged["stream_version"] = 1.into();
    forged["event_id"] = event_id.to_string().into();
    forged["position"] = 9_000_000_000u64.into();
    let recorded_at =
        chrono::DateTime::parse_from_rfc3339(forged["recorded_at"].as_str().expect("at"))
            .expect("instant")
            .to_utc();
    let payload =
        lightspeed_eventstore::hash::canonical_json(&forged["payload"]).expect("canonical");
    let metadata =
        lightspeed_eventstore::hash::canonical_json(&forged["metadata"]).expect("canonical");
    let hash = row_hash(&RowContent {
        event_id,
        stream_id: &stream_id,
        event_type: forged["event_type"].as_str().expect("type"),
        schema_version: 1,
        payload: &payload,
        metadata: &metadata,
        recorded_at,
    });
    forged["row_hash"] = hex::encode(hash).into();
    let forged_ref = EventRef {
        stream_id,
        stream_version: 1,
        log_position: LogPosition {
            transaction_id: forged["transaction_id"].as_u64().expect("tx"),
            position: 9_000_000_000,
        },
    };
    // Written in the exporter's key order, so the line is what an exporter would have written.
    let mut line = Vec::new();
    let keys = [
        "record",
        "event_type",
        "transaction_id",
        "position",
        "stream_id",
        "stream_version",
        "event_id",
        "schema_version",
        "recorded_at",
        "row_hash",
    ];
    line.push(b'{');
    for key in keys {
        line.extend_from_slice(format!("\"{key}\":{},", forged[key]).as_bytes());
    }
    line.extend_from_slice(b"\"payload\":");
    line.extend_from_slice(&payload);
    line.extend_from_slice(b",\"metadata\":");
    line.extend_from_slice(&metadata);
    line.push(b'}');

    let mut with_forged = lines.clone();
    with_forged.insert(index + 1, line);
    write_lines(&path, &with_forged);
    assert_eq!(tampering(&path), Tampering::Inserted(forged_ref.clone()));
    let (status, _, err) = run(&path).await;
    assert_eq!(status, ExitStatus::Tampered);
    assert!(err.contains(&forged_ref.to_string()), "{err}");

    // A copy of a line at its own place is an insertion too.
    let mut with_copy = lines.clone();
    let copied = event_ref(&lines[index]);
    with_copy.insert(index + 1, lines[index].clone());
    write_lines(&path, &with_copy);
    assert_eq!(tampering(&path), Tampering::Inserted(copied));
}

#[tokio::test]
async fn two_events_swapped_are_named_as_reordered() {
    let (_log, _dir, path) = exported(16).await;
    let mut lines = read_lines(&path);
    let index = middle_event(&lines);
    let first = event_ref(&lines[index]);
    let second = event_ref(&lines[index + 5]);
    lines.swap(index, index + 5);
    write_lines(&path, &lines);
    assert_eq!(
        tampering(&path),
        Tampering::Reordered {
            event: first.clone(),
            after: second.log_position,
        }
    );
    let (status, _, err) = run(&path).await;
    assert_eq!(status, ExitStatus::Tampered);
    assert!(err.contains("events reordered"), "{err}");
    assert!(err.contains(&first.to_string()), "{err}");
}

#[tokio::test]
async fn a_seal_altered_is_named_whatever_part_of_it_changed() {
    let (_log, _dir, path) = exported(17).await;
    let original = read_lines(&path);
    let seal_line = |n: u64| {
        find_line(&original, 1, |v| {
            v["record"] == "seal" && v["seal_number"] == n
        })
    };
    // For entries, a digit of the first entry's hash prefix (after its 16-digit position).
    let flip = |text: &str, at: usize| -> String {
        let mut chars: Vec<char> = text.chars().collect();
        chars[at] = if chars[at] == '0' { '1' } else { '0' };
        chars.into_iter().collect()
    };
    let altered = |field: &str, n: u64| -> Tampering {
        let mut lines = original.clone();
        let index = seal_line(n);
        let mut seal = json(&lines[index]);
        let at = if field == "entries" { 20 } else { 5 };
        seal[field] = flip(seal[field].as_str().expect("hex"), at).into();
        lines[index] = serde_json::to_vec(&seal).expect("json");
        write_lines(&path, &lines);
        tampering(&path)
    };
    let seal_of = |t: &Tampering| match t {
        Tampering::SealAltered { seal_number, .. } => *seal_number,
        other => panic!("expected a seal named, got {other:?}"),
    };
    // Its own hash, in the middle of the chain and at its end.
    assert_eq!(seal_of(&altered("seal_hash", 3)), 3);
    let seals = original
        .iter()
        .filter(|l| json(l)["record"] == "seal")
        .count() as u64;
    assert_eq!(seal_of(&altered("seal_hash", seals)), seals);
    // Its link to the previous seal, and the first seal's.
    assert_eq!(seal_of(&altered("previous_hash", 4)), 4);
    assert_eq!(seal_of(&altered("previous_hash", 1)), 1);
    // One of its entries (the events are as sealed; the seal's record of one is not).
    assert_eq!(seal_of(&altered("entries", 5)), 5);

    let (status, _, err) = run(&path).await;
    assert_eq!(status, ExitStatus::Tampered);
    assert!(err.contains("seal 5 altered"), "{err}");
}

#[tokio::test]
async fn a_cut_or_doctored_file_is_an_error_not_a_panic() {
    let (_log, _dir, path) = exported(18).await;
    let lines = read_lines(&path);

    // No trailer: truncated.
    write_lines(&path, &lines[..lines.len() - 1]);
    let (status, _, err) = run(&path).await;
    assert_eq!(status, ExitStatus::BadInput, "{err}");
    assert!(err.contains("truncated"), "{err}");

    // The compressed stream cut short.
    write_lines(&path, &lines);
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    let (status, _, err) = run(&path).await;
    assert_ne!(status, ExitStatus::Clean, "{err}");
    assert_ne!(status, ExitStatus::Tampered, "{err}");

    // The last (unsealed) event removed with the trailer's count left as it was.
    let mut without_last = lines.clone();
    without_last.remove(lines.len() - 2);
    write_lines(&path, &without_last);
    let (status, _, err) = run(&path).await;
    assert_eq!(status, ExitStatus::Tampered, "{err}");

    // Not an audit file at all.
    std::fs::write(&path, b"hello\n").expect("write");
    let (status, _, err) = run(&path).await;
    assert_eq!(status, ExitStatus::BadInput, "{err}");

    // No file.
    let (status, _, err) = run(&path.with_extension("missing")).await;
    assert_eq!(status, ExitStatus::Failed, "{err}");
}
