//! Reading an audit file line by line: a second thread reads and decompresses it into large
//! chunks cut at line ends, while the caller parses the lines of the previous chunk.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};

use indicatif::ProgressBar;

use crate::error::AuditError;

/// Bytes of decompressed text handed over at a time.
const CHUNK_BYTES: usize = 4 << 20;
/// Chunks decompressed ahead of the parser.
const CHUNKS_AHEAD: usize = 3;
/// Longest line accepted (a seal of 10 000 events is about 320 KiB; an event at most ~140 KiB).
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// An audit file opened for reading, zstd-compressed or plain NDJSON.
#[derive(Debug)]
pub struct AuditFile {
    path: PathBuf,
    chunks: Receiver<Result<Vec<u8>, std::io::Error>>,
    recycle: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    offset: usize,
    line_number: u64,
}

impl AuditFile {
    /// Opens `path`; with `progress`, advances it by the compressed bytes read.
    pub fn open(path: &Path, progress: &ProgressBar) -> Result<Self, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        progress.set_length(file.metadata().map_err(io)?.len());
        Self::from_reader(path, file, progress).map_err(io)
    }

    /// Reads an audit file from any source (`name` is used in messages).
    pub fn from_reader(
        name: &Path,
        mut input: impl Read + Send + 'static,
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
            .spawn(move || produce(source, &chunk_tx, &recycled))?;
        Ok(Self {
            path: name.to_owned(),
            chunks,
            recycle,
            chunk: Vec::new(),
            offset: 0,
            line_number: 0,
        })
    }

    /// The next line without its newline, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, AuditError> {
        loop {
            if self.offset < self.chunk.len() {
                let start = self.offset;
                let Some(len) = memchr::memchr(b'\n', &self.chunk[start..]) else {
                    return Err(AuditError::Truncated(format!(
                        "line {} has no line end: the file stops in the middle of it",
                        self.line_number + 1
                    )));
                };
                self.offset = start + len + 1;
                self.line_number += 1;
                return Ok(Some(&self.chunk[start..start + len]));
            }
            match self.chunks.recv() {
                Ok(Ok(next)) => {
                    let used = std::mem::replace(&mut self.chunk, next);
                    // The reader makes a new buffer when none comes back.
                    let _ = self.recycle.try_send(used);
                    self.offset = 0;
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

/// The reader thread: fills chunks, cuts them after their last line end, and hands them over.
/// Stops at the end of the input, at an error, or when the parser hangs up.
fn produce(
    mut source: Box<dyn Read + Send>,
    chunks: &SyncSender<Result<Vec<u8>, std::io::Error>>,
    recycled: &Receiver<Vec<u8>>,
) {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut buf = match recycled.try_recv() {
            Ok(buf) => buf,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                Vec::with_capacity(CHUNK_BYTES + (64 << 10))
            }
        };
        buf.clear();
        buf.append(&mut carry);
        let want = CHUNK_BYTES.saturating_sub(buf.len()).max(64 << 10);
        let read = match (&mut source).take(want as u64).read_to_end(&mut buf) {
            Ok(read) => read,
            Err(e) => {
                let _ = chunks.send(Err(e));
                return;
            }
        };
        let at_end = read < want;
        if !at_end {
            match memchr::memrchr(b'\n', &buf) {
                Some(last) => carry.extend_from_slice(&buf[last + 1..]),
                None if buf.len() > MAX_LINE_BYTES => {
                    let _ = chunks.send(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a line is longer than {MAX_LINE_BYTES} bytes"),
                    )));
                    return;
                }
                None => {
                    carry = buf;
                    continue;
                }
            }
            let keep = buf.len() - carry.len();
            buf.truncate(keep);
        }
        if !buf.is_empty() && chunks.send(Ok(buf)).is_err() {
            return;
        }
        if at_end {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: Vec<u8>) -> Result<Vec<Vec<u8>>, AuditError> {
        let mut file = AuditFile::from_reader(
            Path::new("test"),
            std::io::Cursor::new(input),
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
