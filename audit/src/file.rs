//! Reading an audit file line by line: a second thread reads and decompresses it into large
//! chunks cut at line ends, splits them into lines and, as asked ([`Prepare`]), works out ahead
//! what it can about each line, while the caller goes through the lines of the previous chunk.

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use indicatif::ProgressBar;
use lightspeed_eventstore::LogPosition;
use lightspeed_eventstore::verify::AuditRow;
use uuid::Uuid;

use crate::error::AuditError;
use crate::format::{EVENT_PREFIX, EventLine, LaidOut, parse_hash, parse_instant};

/// Bytes of decompressed text handed over at a time.
const CHUNK_BYTES: usize = 4 << 20;
/// Chunks decompressed ahead of the parser.
const CHUNKS_AHEAD: usize = 3;
/// Longest line accepted (a seal of 10 000 events is about 320 KiB; an event at most ~140 KiB).
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// What the reader thread works out about each line before handing it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepare {
    /// Nothing: lines only.
    Lines,
    /// The event lines' fields, parsed (what the verifier needs).
    Rows,
}

/// What the reader thread found out about a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// Nothing: the caller parses the line itself.
    Unprepared,
    /// An event line, parsed: the index of its fields in the chunk.
    Row(usize),
}

/// An event line's fields, parsed by the reader thread; strings are ranges of the line. The
/// recording instant and the row hash are decoded by the caller, which has time to spare.
#[derive(Debug, Clone)]
pub struct RowFields {
    log_position: LogPosition,
    event_id: Uuid,
    stream_version: u64,
    schema_version: u16,
    recorded_at: Range<usize>,
    row_hash: Range<usize>,
    stream_id: Range<usize>,
    event_type: Range<usize>,
    payload: Range<usize>,
    metadata: Range<usize>,
}

impl RowFields {
    /// Parses an event line whose strings need no unescaping; `None` otherwise.
    fn of(line: &[u8]) -> Option<Self> {
        let range = |text: &[u8]| -> Option<Range<usize>> {
            let start = (text.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
            (start + text.len() <= line.len()).then_some(start..start + text.len())
        };
        if let Some(laid_out) = LaidOut::read(line) {
            return Some(Self {
                log_position: laid_out.log_position,
                event_id: laid_out.event_id,
                stream_version: laid_out.stream_version,
                schema_version: laid_out.schema_version,
                recorded_at: range(laid_out.recorded_at.as_bytes())?,
                row_hash: range(laid_out.row_hash.as_bytes())?,
                stream_id: range(laid_out.stream_id.as_bytes())?,
                event_type: range(laid_out.event_type.as_bytes())?,
                payload: range(laid_out.payload)?,
                metadata: range(laid_out.metadata)?,
            });
        }
        let event = EventLine::parse(line).ok()?;
        let borrowed = |text: &std::borrow::Cow<'_, str>| match text {
            std::borrow::Cow::Borrowed(text) => range(text.as_bytes()),
            std::borrow::Cow::Owned(_) => None,
        };
        Some(Self {
            log_position: event.log_position(),
            event_id: event.event_id,
            stream_version: event.stream_version,
            schema_version: event.schema_version,
            recorded_at: borrowed(event.recorded_at_text())?,
            row_hash: borrowed(event.row_hash_text())?,
            stream_id: borrowed(&event.stream_id)?,
            event_type: borrowed(&event.event_type)?,
            payload: range(event.payload.get().as_bytes())?,
            metadata: range(event.metadata.get().as_bytes())?,
        })
    }

    /// The row, its strings taken from `line` (the line these fields were parsed from).
    pub fn audit_row<'a>(&self, line: &'a [u8]) -> Option<AuditRow<'a>> {
        let text = |range: &Range<usize>| std::str::from_utf8(line.get(range.clone())?).ok();
        Some(AuditRow {
            log_position: self.log_position,
            event_id: self.event_id,
            stream_id: text(&self.stream_id)?,
            stream_version: self.stream_version,
            event_type: text(&self.event_type)?,
            schema_version: self.schema_version,
            payload: line.get(self.payload.clone())?,
            metadata: line.get(self.metadata.clone())?,
            recorded_at: parse_instant(text(&self.recorded_at)?).ok()?,
            row_hash: parse_hash(text(&self.row_hash)?)?,
        })
    }
}

/// A line without its newline, and its fields if the reader thread parsed them.
pub type PreparedLine<'a> = (&'a [u8], Option<&'a RowFields>);

/// Decompressed lines and what was found out about each.
#[derive(Debug, Default)]
struct Chunk {
    /// A buffer, initialised; the text is its first `filled` bytes.
    bytes: Vec<u8>,
    filled: usize,
    lines: Vec<(Range<usize>, Prepared)>,
    rows: Vec<RowFields>,
}

/// An audit file opened for reading, zstd-compressed or plain NDJSON.
#[derive(Debug)]
pub struct AuditFile {
    path: PathBuf,
    chunks: Receiver<Result<Chunk, std::io::Error>>,
    recycle: SyncSender<Chunk>,
    chunk: Chunk,
    next: usize,
    line_number: u64,
}

impl AuditFile {
    /// Opens `path`; advances `progress` by the compressed bytes read.
    pub fn open(path: &Path, prepare: Prepare, progress: &ProgressBar) -> Result<Self, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        progress.set_length(file.metadata().map_err(io)?.len());
        Self::from_reader(path, file, prepare, progress).map_err(io)
    }

    /// Reads an audit file from any source (`name` is used in messages).
    pub fn from_reader(
        name: &Path,
        mut input: impl Read + Send + 'static,
        prepare: Prepare,
        progress: &ProgressBar,
    ) -> Result<Self, std::io::Error> {
        let mut magic = Vec::with_capacity(ZSTD_MAGIC.len());
        (&mut input)
            .take(ZSTD_MAGIC.len() as u64)
            .read_to_end(&mut magic)?;
        let compressed = magic == ZSTD_MAGIC;
        let counted = Counted {
            inner: std::io::Cursor::new(magic).chain(input),
            progress: progress.clone(),
        };
        let source: Box<dyn Read + Send> = if compressed {
            Box::new(zstd::stream::read::Decoder::new(counted)?)
        } else {
            Box::new(counted)
        };
        let (chunk_tx, chunks) = sync_channel(CHUNKS_AHEAD);
        let (recycle, recycled) = sync_channel(CHUNKS_AHEAD + 2);
        std::thread::Builder::new()
            .name("audit-file-reader".into())
            .spawn(move || produce(source, prepare, &chunk_tx, &recycled))?;
        Ok(Self {
            path: name.to_owned(),
            chunks,
            recycle,
            chunk: Chunk::default(),
            next: 0,
            line_number: 0,
        })
    }

    /// The next line without its newline, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, AuditError> {
        Ok(self.next_prepared()?.map(|(line, _)| line))
    }

    /// The next line without its newline and, if the reader thread parsed it, its fields.
    pub fn next_prepared(&mut self) -> Result<Option<PreparedLine<'_>>, AuditError> {
        loop {
            if self.next < self.chunk.lines.len() {
                let index = self.next;
                self.next += 1;
                self.line_number += 1;
                let (range, prepared) = &self.chunk.lines[index];
                let line = &self.chunk.bytes[range.clone()];
                let fields = match prepared {
                    Prepared::Unprepared => None,
                    Prepared::Row(row) => self.chunk.rows.get(*row),
                };
                return Ok(Some((line, fields)));
            }
            if self.chunk.filled > self.chunk.lines.last().map_or(0, |(r, _)| r.end + 1) {
                return Err(AuditError::Truncated(format!(
                    "line {} has no line end: the file stops in the middle of it",
                    self.line_number + 1
                )));
            }
            match self.chunks.recv() {
                Ok(Ok(next)) => {
                    let used = std::mem::replace(&mut self.chunk, next);
                    // The reader makes a new chunk when none comes back.
                    let _ = self.recycle.try_send(used);
                    self.next = 0;
                }
                Ok(Err(source)) => {
                    return Err(AuditError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
                Err(_) => return Ok(None),
            }
        }
    }

    /// The 1-based number of the line last returned.
    pub fn line_number(&self) -> u64 {
        self.line_number
    }
}

/// Counts the bytes read into a progress bar.
struct Counted<R> {
    inner: R,
    progress: ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// The reader thread: fills chunks, cuts them after their last line end, splits and prepares
/// their lines, and hands them over. Stops at the end of the input, at an error, or when the
/// parser hangs up.
fn produce(
    mut source: Box<dyn Read + Send>,
    prepare: Prepare,
    chunks: &SyncSender<Result<Chunk, std::io::Error>>,
    recycled: &Receiver<Chunk>,
) {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        // A chunk the parser is done with, else a new one.
        let mut chunk = recycled.try_recv().unwrap_or_default();
        // Buffers stay initialised from one use to the next: only a longer line grows one.
        let size = (carry.len() + CHUNK_BYTES).max(chunk.bytes.len());
        chunk.bytes.resize(size, 0);
        chunk.bytes[..carry.len()].copy_from_slice(&carry);
        let mut filled = carry.len();
        carry.clear();
        let mut at_end = false;
        while filled < chunk.bytes.len() {
            match source.read(&mut chunk.bytes[filled..]) {
                Ok(0) => {
                    at_end = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = chunks.send(Err(e));
                    return;
                }
            }
        }
        if !at_end {
            match memchr::memrchr(b'\n', &chunk.bytes[..filled]) {
                Some(last) => {
                    carry.extend_from_slice(&chunk.bytes[last + 1..filled]);
                    filled = last + 1;
                }
                None if filled > MAX_LINE_BYTES => {
                    let _ = chunks.send(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a line is longer than {MAX_LINE_BYTES} bytes"),
                    )));
                    return;
                }
                None => {
                    carry.extend_from_slice(&chunk.bytes[..filled]);
                    continue;
                }
            }
        }
        chunk.filled = filled;
        split(&mut chunk, prepare);
        if filled > 0 && chunks.send(Ok(chunk)).is_err() {
            return;
        }
        if at_end {
            return;
        }
    }
}

/// Finds the chunk's complete lines and prepares each.
fn split(chunk: &mut Chunk, prepare: Prepare) {
    chunk.lines.clear();
    chunk.rows.clear();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', &chunk.bytes[..chunk.filled]) {
        let line = &chunk.bytes[start..end];
        let prepared = match prepare {
            Prepare::Rows if line.starts_with(EVENT_PREFIX) => match RowFields::of(line) {
                Some(fields) => {
                    chunk.rows.push(fields);
                    Prepared::Row(chunk.rows.len() - 1)
                }
                None => Prepared::Unprepared,
            },
            Prepare::Rows | Prepare::Lines => Prepared::Unprepared,
        };
        chunk.lines.push((start..end, prepared));
        start = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: Vec<u8>) -> Result<Vec<Vec<u8>>, AuditError> {
        let mut file = AuditFile::from_reader(
            Path::new("test"),
            std::io::Cursor::new(input),
            Prepare::Lines,
            &ProgressBar::hidden(),
        )
        .map_err(|source| AuditError::Io {
            path: "test".into(),
            source,
        })?;
        let mut lines = Vec::new();
        while let Some(line) = file.next_line()? {
            lines.push(line.to_vec());
        }
        Ok(lines)
    }

    #[test]
    fn lines_cross_chunk_boundaries_intact_compressed_or_not() {
        let mut text = Vec::new();
        for i in 0..200_000u32 {
            text.extend_from_slice(
                format!(
                    "{{\"n\":{i},\"pad\":\"{}\"}}\n",
                    "x".repeat((i % 97) as usize)
                )
                .as_bytes(),
            );
        }
        let plain = lines_of(text.clone()).expect("plain");
        let compressed = zstd::encode_all(text.as_slice(), 1).expect("compress");
        let unpacked = lines_of(compressed).expect("compressed");
        assert_eq!(plain.len(), 200_000);
        assert_eq!(plain, unpacked);
        assert_eq!(
            plain[123_456],
            format!("{{\"n\":123456,\"pad\":\"{}\"}}", "x".repeat(123_456 % 97)).into_bytes()
        );
    }

    #[test]
    fn a_line_longer_than_a_chunk_comes_whole() {
        let long = "y".repeat(CHUNK_BYTES * 2 + 17);
        let text = format!("a\n{long}\nb\n").into_bytes();
        let lines = lines_of(text).expect("lines");
        assert_eq!(lines, vec![b"a".to_vec(), long.into_bytes(), b"b".to_vec()]);
    }

    #[test]
    fn a_file_cut_in_the_middle_of_a_line_is_truncated() {
        let result = lines_of(b"{\"a\":1}\n{\"b\":".to_vec());
        assert!(
            matches!(result, Err(AuditError::Truncated(_))),
            "{result:?}"
        );
        let cut = zstd::encode_all(&b"{\"a\":1}\n{\"b\":2}\n"[..], 1).expect("compress");
        let result = lines_of(cut[..cut.len() - 3].to_vec());
        assert!(result.is_err(), "{result:?}");
    }
}
