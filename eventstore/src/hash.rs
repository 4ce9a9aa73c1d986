//! Tamper evidence: a hash per row on append, and seals chaining contiguous ranges of rows.
//!
//! Row hash = SHA-256 of `"lightspeed-event-v1"` followed by each field, length-prefixed:
//! event id (16 bytes), stream id, event type, schema version (u16 BE), canonical payload,
//! canonical metadata, recorded-at (microseconds since the Unix epoch, i64 BE). The stream
//! version is left out on purpose: it is assigned by the database at insert time, and it is
//! fully determined by the stream and the log order, which the seals and the verifier's
//! continuity check cover. Canonical JSON is compact JSON with object keys sorted by their UTF-8 bytes
//! and integers only, so it can be recomputed from what PostgreSQL's `jsonb` hands back.
//!
//! Seal hash = SHA-256 of `"lightspeed-seal-v1"`, the seal number (u64 BE), the previous
//! seal's hash (32 zero bytes for the first), then for each event in log order its position
//! (u64 BE) and row hash, then the number of events (u64 BE).

use std::io::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::input::InvalidInput;

/// Compact JSON with sorted object keys; refuses non-integer numbers.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, InvalidInput> {
    let mut out = Vec::with_capacity(128);
    write_canonical(value, &mut out)?;
    Ok(out)
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), InvalidInput> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if !(n.is_i64() || n.is_u64()) {
                return Err(InvalidInput::Payload(format!(
                    "non-integer number {n}: money is integer paise and rates are basis points"
                )));
            }
            // Integers print the same through Display as through serde_json, without a String.
            write!(out, "{n}").map_err(|e| InvalidInput::Payload(e.to_string()))?;
        }
        Value::String(s) => write_string(s, out)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out)?;
                out.push(b':');
                write_canonical(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) -> Result<(), InvalidInput> {
    if s.contains('\0') {
        return Err(InvalidInput::Payload(
            "strings cannot contain U+0000".into(),
        ));
    }
    // serde_json's string escaping is deterministic; reuse it.
    serde_json::to_writer(&mut *out, s).map_err(|e| InvalidInput::Payload(e.to_string()))
}

fn put(hasher: &mut Sha256, field: &[u8]) {
    hasher.update((field.len() as u64).to_be_bytes());
    hasher.update(field);
}

/// The fields a row hash covers.
#[derive(Debug, Clone, Copy)]
pub struct RowContent<'a> {
    /// Event id.
    pub event_id: Uuid,
    /// Stream id.
    pub stream_id: &'a str,
    /// Type name.
    pub event_type: &'a str,
    /// Payload shape version.
    pub schema_version: u16,
    /// Canonical payload bytes.
    pub payload: &'a [u8],
    /// Canonical metadata bytes.
    pub metadata: &'a [u8],
    /// Append instant, microsecond precision.
    pub recorded_at: DateTime<Utc>,
}

/// SHA-256 over a row's content.
pub fn row_hash(row: &RowContent<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"lightspeed-event-v1");
    put(&mut hasher, row.event_id.as_bytes());
    put(&mut hasher, row.stream_id.as_bytes());
    put(&mut hasher, row.event_type.as_bytes());
    put(&mut hasher, &row.schema_version.to_be_bytes());
    put(&mut hasher, row.payload);
    put(&mut hasher, row.metadata);
    put(
        &mut hasher,
        &row.recorded_at.timestamp_micros().to_be_bytes(),
    );
    hasher.finalize().into()
}

/// Computes seal hashes incrementally over a range of rows in log order.
#[derive(Debug, Clone)]
pub struct SealHasher {
    hasher: Sha256,
    count: u64,
}

impl SealHasher {
    /// Starts seal `seal_number`, chained to `previous` (zeros for the first seal).
    pub fn new(seal_number: u64, previous: &[u8; 32]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"lightspeed-seal-v1");
        hasher.update(seal_number.to_be_bytes());
        hasher.update(previous);
        Self { hasher, count: 0 }
    }

    /// Adds the next row of the range.
    pub fn push(&mut self, position: u64, row_hash: &[u8; 32]) {
        self.hasher.update(position.to_be_bytes());
        self.hasher.update(row_hash);
        self.count += 1;
    }

    /// How many rows were added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The seal's hash.
    pub fn finish(mut self) -> [u8; 32] {
        self.hasher.update(self.count.to_be_bytes());
        self.hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_json;

    #[test]
    fn canonical_json_sorts_keys_by_bytes_at_every_depth_and_keeps_integers_exact() {
        let value = serde_json::json!({
            "é": -5,
            "b": { "z": u64::MAX, "a": [true, null, "x\"y"] },
            "B": i64::MIN,
        });
        let canonical =
            String::from_utf8(canonical_json(&value).expect("canonical")).expect("utf-8");
        assert_eq!(
            canonical,
            r#"{"B":-9223372036854775808,"b":{"a":[true,null,"x\"y"],"z":18446744073709551615},"é":-5}"#
        );
        assert!(canonical_json(&serde_json::json!({ "rate": 0.5 })).is_err());
    }
}
