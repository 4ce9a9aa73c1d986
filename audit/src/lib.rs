//! Auditor tooling for the LightSpeed ledger: from the event log alone, reconstruct every paisa
//! of commission per merchant as of any instant, and prove no event was altered or removed.
//!
//! Three commands, each a library call with a `clap`-free options struct (see [`cli`]):
//!
//! | command | entry point | library call |
//! |---|---|---|
//! | `audit export --out FILE [--until TIME]` | [`run_export`] | [`export_log`] |
//! | `audit verify (--db \| FILE)` | [`run_verify`] | [`verify_file`], [`verify_database`] |
//! | `audit commission (--db \| FILE) [--as-of TIME] [--merchant ID] [--format table\|csv\|json]` | [`run_commission`] | [`replay_file`], [`replay_database`], [`replay_commission`], [`CommissionReplay`] |
//!
//! Exit codes ([`ExitStatus`]): 0 clean, 1 tampering (the first altered event or seal is
//! named), 2 a request the source cannot answer, 3 the figures disagree (with the live read
//! model, or a payment's success with its wallet's commission), 4 malformed or truncated file,
//! 5 I/O or database failure.
//!
//! # The audit file (format version 1)
//!
//! One zstd stream (`.ndjson.zst` by convention; a plain, decompressed copy reads the same) of
//! newline-terminated JSON lines, in this order:
//!
//! 1. **Header**: `{"record":"header","format":"lightspeed-audit-log","format_version":1,
//!    "exported_at":…,"until":…|null,"end":{"transaction_id":…,"position":…}|null,
//!    "events":N,"seals":S}`.
//! 2. **S seal lines**, in chain order: `{"record":"seal","seal_number":…,"first":{…},
//!    "last":{…},"event_count":…,"previous_hash":"<hex>","seal_hash":"<hex>","sealed_at":…,
//!    "entries":"<hex>"}`, where `entries` is the seal's 16-byte records (position, u64 BE;
//!    first 8 bytes of the row hash) as in `ledger.seals`.
//! 3. **N event lines**, in the log's read order `(transaction_id, position)`, keys always in
//!    this order: `{"record":"event","event_type":…,"transaction_id":…,"position":…,
//!    "stream_id":…,"stream_version":…,"event_id":…,"schema_version":…,"recorded_at":…,
//!    "row_hash":"<hex>","payload":{…},"metadata":{…}}`. `payload` and `metadata` are
//!    written as the exact canonical JSON bytes the row hash covers (compact, keys sorted,
//!    integers only), so a verifier hashes the raw bytes of the line without re-serialising;
//!    `recorded_at` is RFC 3339 UTC with microseconds, exactly the instant hashed.
//! 4. **Trailer**: `{"record":"end","events":N,"seals":S}`; a file without it was cut short.
//!
//! Event lines start with `{"record":"event","event_type":"`, so a reader finds the type
//! without parsing and skips what it does not need. Events never hold secrets in clear (the
//! domain only records sealed secrets), so neither does the file.
//!
//! `--until` cuts at a recorded instant: see [`export_log`] for how events recorded after it
//! but read before it are treated. `audit/FORMAT.md` has the same description with an example.

pub mod cli;
pub mod commission;
pub mod error;
pub mod export;
pub mod file;
pub mod format;
mod progress;
pub mod render;
pub mod replay;
pub mod verify;

pub use cli::{
    CommissionOptions, ExitStatus, ExportOptions, Source, VerifyOptions, replay_path,
    run_commission, run_export, run_verify, verify_path,
};
pub use commission::{CommissionReport, Difference, ReadModelCheck, replay_database, replay_file};
pub use error::AuditError;
pub use export::{ExportSummary, export_log};
pub use file::AuditFile;
pub use render::OutputFormat;
pub use replay::{
    CommissionReplay, Inconsistency, MerchantCommission, ReplayEvent, ReplayFilter,
    replay_commission,
};
pub use verify::{FileVerification, Report, verify_database, verify_file};
