//! Progress bars on standard error (drawn only when it is a terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `unit` ("events", "bytes") towards `total`, or a hidden one.
pub(crate) fn bar(enabled: bool, total: u64, unit: Unit) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let template = match unit {
        Unit::Events => "{bar:30} {pos}/{len} events ({percent}%), {per_sec}, ETA {eta}",
        Unit::Bytes => "{bar:30} {bytes}/{total_bytes} ({percent}%), {bytes_per_sec}, ETA {eta}",
    };
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style)
}

/// What a bar counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    /// Events written or read.
    Events,
    /// Bytes of a file read.
    Bytes,
}
