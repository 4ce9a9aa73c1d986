//! The audit file's lines: how they are written and read. The layout is described in the crate
//! documentation and in `audit/FORMAT.md`.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use lightspeed_eventstore::LogPosition;
use lightspeed_eventstore::seal::{Seal, SealEntry};
use lightspeed_eventstore::verify::{AuditRow, EventRef};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// The `format` of every audit file's header.
pub const FORMAT_NAME: &str = "lightspeed-audit-log";

/// The layout version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What every event line starts with: the record kind, then the event type, so a reader can skip
/// the events it does not need without parsing them.
pub(crate) const EVENT_PREFIX: &[u8] = br#"{"record":"event","event_type":""#;

/// What the trailer line starts with.
const END_PREFIX: &[u8] = br#"{"record":"end""#;

/// The first line: what the file holds and how it was cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for files this code writes.
    pub format_version: u32,
    /// When the export ran.
    pub exported_at: DateTime<Utc>,
    /// The `--until` instant, if the export was cut at one.
    pub until: Option<DateTime<Utc>>,
    /// The last event in read order the file holds (`None` for an empty log).
    pub end: Option<LogPosition>,
    /// How many event lines follow the seals.
    pub events: u64,
    /// How many seal lines follow the header.
    pub seals: u64,
}

/// One seal of the chain, as a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealRecord {
    /// 1, 2, 3, … without gaps.
    pub seal_number: u64,
    /// The first event it covers.
    pub first: LogPosition,
    /// The last event it covers.
    pub last: LogPosition,
    /// How many events it covers.
    pub event_count: u64,
    /// The previous seal's hash, 64 hex digits (zeros for the first seal).
    pub previous_hash: String,
    /// This seal's hash, 64 hex digits.
    pub seal_hash: String,
    /// When it was made (not covered by any hash).
    pub sealed_at: DateTime<Utc>,
    /// Per event in order: position (u64 BE) and the first 8 bytes of its row hash, as hex.
    pub entries: String,
}

/// The last line: how many records the file holds, so a truncated file is noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trailer {
    /// Event lines written.
    pub events: u64,
    /// Seal lines written.
    pub seals: u64,
}

/// Every line but the events, told apart by `record`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub(crate) enum MetaLine {
    Header(Header),
    Seal(SealRecord),
    End(Trailer),
}

impl SealRecord {
    /// The line form of a seal.
    pub fn from_seal(seal: &Seal) -> Self {
        let mut entries = Vec::with_capacity(seal.entries.len() * SealEntry::SIZE);
        for entry in &seal.entries {
            entries.extend_from_slice(&entry.position.to_be_bytes());
            entries.extend_from_slice(&entry.hash_prefix.to_be_bytes());
        }
        Self {
            seal_number: seal.seal_number,
            first: seal.first,
            last: seal.last,
            event_count: seal.event_count,
            previous_hash: hex::encode(seal.previous_hash),
            seal_hash: hex::encode(seal.seal_hash),
            sealed_at: seal.sealed_at,
            entries: hex::encode(entries),
        }
    }

    /// The seal this line describes, or why it is malformed.
    pub fn to_seal(&self) -> Result<Seal, String> {
        let entries = hex::decode(&self.entries)
            .map_err(|e| format!("seal {} entries: {e}", self.seal_number))?;
        if !entries.len().is_multiple_of(SealEntry::SIZE) {
            return Err(format!(
                "seal {} entries are not 16-byte records",
                self.seal_number
            ));
        }
        let entries = entries
            .chunks_exact(SealEntry::SIZE)
            .map(|chunk| SealEntry {
                position: read_u64(&chunk[..8]),
                hash_prefix: read_u64(&chunk[8..]),
            })
            .collect();
        Ok(Seal {
            seal_number: self.seal_number,
            first: self.first,
            last: self.last,
            event_count: self.event_count,
            previous_hash: parse_hash(&self.previous_hash)
                .ok_or_else(|| format!("seal {} previous_hash", self.seal_number))?,
            seal_hash: parse_hash(&self.seal_hash)
                .ok_or_else(|| format!("seal {} seal_hash", self.seal_number))?,
            entries,
            sealed_at: self.sealed_at,
        })
    }
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(bytes);
    u64::from_be_bytes(buf)
}

/// 64 hex digits as 32 bytes.
pub(crate) fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut invalid = 0u8;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (
            HEX_VALUE[usize::from(pair[0])],
            HEX_VALUE[usize::from(pair[1])],
        );
        invalid |= high | low;
        *byte = (high << 4) | (low & 0x0F);
    }
    // Digits are 0..=15; anything else is marked with the high bits.
    (invalid & 0xF0 == 0).then_some(out)
}

/// The value of each hex digit, 0xFF for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// An event as the exporter writes it.
#[derive(Debug, Clone)]
pub(crate) struct EventOut<'a> {
    pub log_position: LogPosition,
    pub event_id: Uuid,
    pub stream_id: &'a str,
    pub stream_version: u64,
    pub event_type: &'a str,
    pub schema_version: u16,
    pub recorded_at: DateTime<Utc>,
    pub row_hash: [u8; 32],
    /// Canonical JSON, exactly the bytes the row hash covers.
    pub payload: &'a [u8],
    /// Canonical JSON, exactly the bytes the row hash covers.
    pub metadata: &'a [u8],
}

/// Appends one event line (with its newline) to `out`.
pub(crate) fn write_event_line(out: &mut Vec<u8>, event: &EventOut<'_>) {
    use std::io::Write;
    // Writing into a Vec cannot fail, and both strings are plain JSON strings.
    out.extend_from_slice(br#"{"record":"event","event_type":"#);
    let _ = serde_json::to_writer(&mut *out, event.event_type);
    let _ = write!(
        out,
        r#","transaction_id":{},"position":{},"stream_id":"#,
        event.log_position.transaction_id, event.log_position.position
    );
    let _ = serde_json::to_writer(&mut *out, event.stream_id);
    let _ = write!(
        out,
        r#","stream_version":{},"event_id":"{}","schema_version":{},"recorded_at":"{}","row_hash":"{}","payload":"#,
        event.stream_version,
        event.event_id,
        event.schema_version,
        format_instant(event.recorded_at),
        hex::encode(event.row_hash),
    );
    out.extend_from_slice(event.payload);
    out.extend_from_slice(br#","metadata":"#);
    out.extend_from_slice(event.metadata);
    out.extend_from_slice(b"}\n");
}

/// An instant as the file writes it: RFC 3339, UTC, microseconds (what PostgreSQL keeps).
pub(crate) fn format_instant(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One event line, read without copying: payload and metadata are the raw bytes of the line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventLine<'a> {
    #[serde(borrow)]
    record: Cow<'a, str>,
    #[serde(borrow)]
    pub event_type: Cow<'a, str>,
    pub transaction_id: u64,
    pub position: u64,
    #[serde(borrow)]
    pub stream_id: Cow<'a, str>,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub schema_version: u16,
    #[serde(borrow)]
    recorded_at: Cow<'a, str>,
    #[serde(borrow)]
    row_hash: Cow<'a, str>,
    #[serde(borrow)]
    pub payload: &'a RawValue,
    #[serde(borrow)]
    pub metadata: &'a RawValue,
}

impl<'a> EventLine<'a> {
    /// Parses an event line; `Err` says what is wrong with it.
    pub fn parse(line: &'a [u8]) -> Result<Self, String> {
        // One UTF-8 check of the whole line, instead of one per string and raw value.
        let line = std::str::from_utf8(line).map_err(|e| e.to_string())?;
        let event: EventLine<'a> = serde_json::from_str(line).map_err(|e| e.to_string())?;
        if event.record != "event" {
            return Err(format!("expected an event line, found {:?}", event.record));
        }
        Ok(event)
    }

    /// Where it sits in the read order.
    pub fn log_position(&self) -> LogPosition {
        LogPosition {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }

    /// When it was recorded.
    pub fn recorded_at(&self) -> Result<DateTime<Utc>, String> {
        parse_instant(&self.recorded_at)
    }

    /// `recorded_at` as written.
    pub fn recorded_at_text(&self) -> &Cow<'a, str> {
        &self.recorded_at
    }

    /// `row_hash` as written.
    pub fn row_hash_text(&self) -> &Cow<'a, str> {
        &self.row_hash
    }

    /// The row as the verifier sees it.
    pub fn audit_row(&self) -> Result<AuditRow<'_>, String> {
        Ok(AuditRow {
            log_position: self.log_position(),
            event_id: self.event_id,
            stream_id: &self.stream_id,
            stream_version: self.stream_version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: self.payload.get().as_bytes(),
            metadata: self.metadata.get().as_bytes(),
            recorded_at: self.recorded_at()?,
            row_hash: parse_hash(&self.row_hash).ok_or("row_hash is not 64 hex digits")?,
        })
    }

    /// Names the event, for messages.
    pub fn event_ref(&self) -> EventRef {
        EventRef {
            stream_id: self.stream_id.clone().into_owned(),
            stream_version: self.stream_version,
            log_position: self.log_position(),
        }
    }
}

/// An event line read by its exact layout, without a JSON parser: what the exporter writes,
/// strings without escapes. Anything else is `None`, and is then parsed as JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LaidOut<'a> {
    pub event_type: &'a str,
    pub log_position: LogPosition,
    pub stream_id: &'a str,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub schema_version: u16,
    pub recorded_at: &'a str,
    pub row_hash: &'a str,
    /// The bytes between `"payload":` and `,"metadata":`; the row hash tells whether they are
    /// the canonical payload.
    pub payload: &'a [u8],
    /// The bytes between `,"metadata":` and the closing brace.
    pub metadata: &'a [u8],
}

impl<'a> LaidOut<'a> {
    /// Reads `line` by the exporter's layout.
    pub fn read(line: &'a [u8]) -> Option<Self> {
        let mut rest = line.strip_prefix(EVENT_PREFIX)?;
        let event_type = string(&mut rest)?;
        let transaction_id = number(&mut rest, br#","transaction_id":"#)?;
        let position = number(&mut rest, br#","position":"#)?;
        rest = rest.strip_prefix(br#","stream_id":""#)?;
        let stream_id = string(&mut rest)?;
        let stream_version = number(&mut rest, br#","stream_version":"#)?;
        rest = rest.strip_prefix(br#","event_id":""#)?;
        let event_id = Uuid::try_parse(string(&mut rest)?).ok()?;
        let schema_version = u16::try_from(number(&mut rest, br#","schema_version":"#)?).ok()?;
        rest = rest.strip_prefix(br#","recorded_at":""#)?;
        let recorded_at = string(&mut rest)?;
        rest = rest.strip_prefix(br#","row_hash":""#)?;
        let row_hash = string(&mut rest)?;
        let rest = rest.strip_prefix(br#","payload":"#)?.strip_suffix(b"}")?;
        let split = memchr::memmem::rfind(rest, br#","metadata":"#)?;
        let (payload, metadata) = (&rest[..split], &rest[split + 12..]);
        (!payload.is_empty() && !metadata.is_empty()).then_some(Self {
            event_type,
            log_position: LogPosition {
                transaction_id,
                position,
            },
            stream_id,
            stream_version,
            event_id,
            schema_version,
            recorded_at,
            row_hash,
            payload,
            metadata,
        })
    }
}

/// A string's text up to its closing quote (consumed); `None` if it has escapes.
fn string<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    if rest[end] != b'"' {
        return None;
    }
    let text = std::str::from_utf8(&rest[..end]).ok()?;
    *rest = &rest[end + 1..];
    Some(text)
}

/// `key` then an unsigned integer as JSON writes it (no leading zeros), consumed.
fn number(rest: &mut &[u8], key: &[u8]) -> Option<u64> {
    let digits_from = rest.strip_prefix(key)?;
    let len = digits_from
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if len == 0 || (len > 1 && digits_from[0] == b'0') {
        return None;
    }
    let value = digits_from[..len].iter().try_fold(0u64, |n, b| {
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })?;
    *rest = &digits_from[len..];
    Some(value)
}

/// Parses an instant written by [`format_instant`] (any RFC 3339 instant is accepted).
pub(crate) fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    if let Some(instant) = parse_micros_utc(text.as_bytes()) {
        return Ok(instant);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("recorded_at {text:?}: {e}"))
}

/// The exporter's own form, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, read without a general parser.
fn parse_micros_utc(text: &[u8]) -> Option<DateTime<Utc>> {
    if text.len() != 27
        || [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (26, b'Z'),
        ]
        .iter()
        .any(|(at, byte)| text[*at] != *byte)
    {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        text[from..to].iter().try_fold(0u32, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(number(0, 4)?).ok()?,
        number(5, 7)?,
        number(8, 10)?,
    )?;
    let time = chrono::NaiveTime::from_hms_micro_opt(
        number(11, 13)?,
        number(14, 16)?,
        number(17, 19)?,
        number(20, 26)?,
    )?;
    Some(date.and_time(time).and_utc())
}

/// The event type of an event line as the exporter lays it out, without parsing the line;
/// `None` when the line does not start that way (it is then parsed in full).
pub(crate) fn scan_event_type(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(EVENT_PREFIX)?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    (rest[end] == b'"').then(|| &rest[..end])
}

/// True for the trailer line (written `{"record":"end",…`, but any key order is read).
pub(crate) fn is_end_line(line: &[u8]) -> bool {
    line.starts_with(END_PREFIX)
        || (!line.starts_with(EVENT_PREFIX)
            && matches!(serde_json::from_slice(line), Ok(MetaLine::End(_))))
}

/// Best-effort naming of the event on a line that does not parse: its stream, version and
/// position, when those fields can still be found.
pub(crate) fn locate_event(line: &[u8]) -> Option<EventRef> {
    let number = |key: &[u8]| -> Option<u64> {
        let start = memchr::memmem::find(line, key)? + key.len();
        let digits = line[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        std::str::from_utf8(&line[start..start + digits])
            .ok()?
            .parse()
            .ok()
    };
    let stream_key = br#""stream_id":""#;
    let start = memchr::memmem::find(line, stream_key)? + stream_key.len();
    let len = memchr::memchr(b'"', &line[start..])?;
    let stream_id = std::str::from_utf8(&line[start..start + len]).ok()?;
    Some(EventRef {
        stream_id: stream_id.to_owned(),
        stream_version: number(br#""stream_version":"#)?,
        log_position: LogPosition {
            transaction_id: number(br#""transaction_id":"#)?,
            position: number(br#""position":"#)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        write_event_line(
            &mut out,
            &EventOut {
                log_position: LogPosition {
                    transaction_id: 900,
                    position: 42,
                },
                event_id: Uuid::nil(),
                stream_id: "wallet-0190f0c2-0000-7000-8000-000000000001",
                stream_version: 3,
                event_type: "CommissionAccrued",
                schema_version: 1,
                recorded_at: DateTime::from_timestamp_micros(1_790_000_000_123_456)
                    .unwrap_or_default(),
                row_hash: [7; 32],
                payload: br#"{"amount":100,"commission":4}"#,
                metadata: br#"{"actor":"psp:sandbox"}"#,
            },
        );
        out
    }

    #[test]
    fn an_event_line_reads_back_with_its_raw_payload() {
        let line = sample();
        assert_eq!(line.last(), Some(&b'\n'));
        let event = EventLine::parse(&line[..line.len() - 1]).expect("parses");
        assert_eq!(event.payload.get(), r#"{"amount":100,"commission":4}"#);
        assert_eq!(event.metadata.get(), r#"{"actor":"psp:sandbox"}"#);
        assert_eq!(event.stream_version, 3);
        let row = event.audit_row().expect("row");
        assert_eq!(row.recorded_at.timestamp_micros(), 1_790_000_000_123_456);
        assert_eq!(
            parse_instant("2026-09-21T14:13:20.123456+00:00"),
            Ok(row.recorded_at)
        );
        assert!(parse_instant("2026-02-30T14:13:20.123456Z").is_err());
        assert_eq!(row.row_hash, [7; 32]);
        assert_eq!(parse_hash(&"Ab".repeat(32)), Some([0xAB; 32]));
        assert_eq!(parse_hash(&format!("{}g", "0".repeat(63))), None);
        assert_eq!(parse_hash("00"), None);
        assert_eq!(
            scan_event_type(&line),
            Some(b"CommissionAccrued".as_slice())
        );
        let located = locate_event(&line).expect("located");
        assert_eq!(located, event.event_ref());
        let laid_out = LaidOut::read(&line[..line.len() - 1]).expect("laid out");
        assert_eq!(laid_out.payload, event.payload.get().as_bytes());
        assert_eq!(laid_out.metadata, event.metadata.get().as_bytes());
        assert_eq!(laid_out.log_position, event.log_position());
        assert_eq!(laid_out.stream_id, event.stream_id);
        assert_eq!(laid_out.event_id, event.event_id);
        // Anything not laid out exactly so is left to the JSON parser.
        let spaced =
            String::from_utf8_lossy(&line).replace(r#""position":42"#, r#""position": 42"#);
        assert!(LaidOut::read(spaced.trim_end().as_bytes()).is_none());
        assert!(EventLine::parse(spaced.trim_end().as_bytes()).is_ok());
    }

    #[test]
    fn a_seal_round_trips_through_its_line() {
        let seal = Seal {
            seal_number: 2,
            first: LogPosition {
                transaction_id: 5,
                position: 10,
            },
            last: LogPosition {
                transaction_id: 6,
                position: 11,
            },
            event_count: 2,
            previous_hash: [1; 32],
            seal_hash: [2; 32],
            entries: vec![SealEntry::of(10, &[3; 32]), SealEntry::of(11, &[4; 32])],
            sealed_at: DateTime::from_timestamp_micros(1_790_000_000_000_000).unwrap_or_default(),
        };
        assert_eq!(SealRecord::from_seal(&seal).to_seal(), Ok(seal));
    }
}
