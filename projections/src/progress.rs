//! Progress of a rebuild, with rate and ETA: a bar redrawn in place on a terminal, plain log
//! lines otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shortest interval between two terminal redraws.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Shortest interval between two progress log lines.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// Width of the terminal bar, in characters.
const BAR_WIDTH: u64 = 30;

/// Where a rebuild stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressUpdate {
    /// The projection.
    pub projection: &'static str,
    /// The version being built.
    pub version: i32,
    /// Events applied so far.
    pub done: u64,
    /// Events the log held to apply when the rebuild started (it may grow meanwhile), once
    /// counted: the count runs beside the first batches.
    pub total: Option<u64>,
    /// Events applied per second so far.
    pub rate_per_s: u64,
    /// Seconds left at that rate, once a rate is known.
    pub eta_secs: Option<u64>,
    /// True for the last update.
    pub finished: bool,
}

impl ProgressUpdate {
    /// The first update of a rebuild.
    pub fn new(projection: &'static str, version: i32, total: Option<u64>) -> Self {
        Self {
            projection,
            version,
            done: 0,
            total,
            rate_per_s: 0,
            eta_secs: None,
            finished: false,
        }
    }

    /// Records `done` events after `elapsed`, and the rate and ETA that follow.
    pub fn advance(&mut self, done: u64, elapsed: Duration) {
        self.done = done;
        let elapsed_ms = u64::try_from(elapsed.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.rate_per_s = done.saturating_mul(1_000) / elapsed_ms;
        self.eta_secs = self
            .total
            .filter(|_| self.rate_per_s > 0)
            .map(|total| total.saturating_sub(done) / self.rate_per_s);
    }

    /// Records the end.
    pub fn finish(&mut self, done: u64, elapsed: Duration) {
        self.advance(done, elapsed);
        self.total = Some(self.total.unwrap_or(0).max(done));
        self.eta_secs = Some(0);
        self.finished = true;
    }

    /// Per cent done, 0 to 100 (0 until the total is counted).
    pub fn percent(&self) -> u64 {
        match self.total {
            Some(total) => (self.done.min(total) * 100)
                .checked_div(total)
                .unwrap_or(100),
            None => 0,
        }
    }

    fn line(&self) -> String {
        let eta = self
            .eta_secs
            .map_or_else(|| "?".to_owned(), |secs| format!("{secs}s"));
        let total = self
            .total
            .map_or_else(|| "?".to_owned(), |total| total.to_string());
        format!(
            "{} v{}: {}/{total} events ({}%), {} events/s, ETA {eta}",
            self.projection,
            self.version,
            self.done,
            self.percent(),
            self.rate_per_s
        )
    }
}

/// Receives progress updates.
pub trait Progress: Send + Sync {
    /// Called after every batch and once at the end (`finished`).
    fn report(&self, update: &ProgressUpdate);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn report(&self, _: &ProgressUpdate) {}
}

/// Reports as `tracing` log lines, at most one every few seconds, and the last one.
#[derive(Debug, Default)]
pub struct LogLines {
    last: Mutex<Option<Instant>>,
}

impl Progress for LogLines {
    fn report(&self, update: &ProgressUpdate) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if update.finished || last.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            tracing::info!(
                projection = update.projection,
                version = update.version,
                done = update.done,
                total = update.total,
                rate_per_s = update.rate_per_s,
                eta_secs = update.eta_secs,
                "rebuild progress"
            );
            *last = Some(Instant::now());
        }
    }
}

/// A bar redrawn in place on standard error.
#[derive(Debug, Default)]
pub struct TerminalBar {
    last: Mutex<Option<Instant>>,
}

impl Progress for TerminalBar {
    fn report(&self, update: &ProgressUpdate) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if !update.finished && last.is_some_and(|at| at.elapsed() < REDRAW_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let filled = update.percent() * BAR_WIDTH / 100;
        let bar: String = (0..BAR_WIDTH)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        let end = if update.finished { "\n" } else { "" };
        let mut stderr = std::io::stderr().lock();
        // A progress bar that cannot be drawn is not worth failing a rebuild for.
        let _ = write!(stderr, "\r\x1b[2K[{bar}] {}{end}", update.line());
        let _ = stderr.flush();
    }
}

/// A bar when standard error is a terminal, log lines otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(TerminalBar::default())
    } else {
        Box::new(LogLines::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuild_not_yet_counted_shows_no_share_and_no_eta() {
        let mut update = ProgressUpdate::new("wallets", 2, None);
        update.advance(5_000, Duration::from_secs(1));
        assert_eq!((update.percent(), update.eta_secs), (0, None));
        assert!(
            update.line().contains("5000/? events (0%)"),
            "{}",
            update.line()
        );

        update.total = Some(20_000);
        update.advance(10_000, Duration::from_secs(2));
        assert_eq!((update.percent(), update.eta_secs), (50, Some(2)));

        update.finish(21_000, Duration::from_secs(4));
        assert_eq!((update.total, update.percent()), (Some(21_000), 100));
    }

    #[test]
    fn a_rebuild_that_ends_before_its_count_reports_what_it_applied() {
        let mut update = ProgressUpdate::new("merchants", 1, None);
        update.finish(7_000, Duration::from_millis(300));
        assert_eq!((update.total, update.percent()), (Some(7_000), 100));
    }
}
