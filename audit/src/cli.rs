//! The entry points `lightspeed audit export|verify|commission` call: parsed options in, text
//! out, an exit status back. No argument parsing here; the binary maps its flags onto these.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use lightspeed_domain::MerchantId;
use sqlx::PgPool;

use crate::commission::{CommissionReport, replay_database, replay_file};
use crate::error::AuditError;
use crate::export::export_log;
use crate::file::{AuditFile, Prepare};
use crate::format::format_instant;
use crate::progress::{Unit, bar};
use crate::render::{OutputFormat, write_commission, write_verified};
use crate::replay::ReplayFilter;
use crate::verify::{Report, verify_database, verify_file};

/// How a command ended; [`ExitStatus::code`] is the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done; the log verified, the replay matched the read model.
    Clean,
    /// 1: the log was altered; the first altered event or seal is named.
    Tampered,
    /// 2: the options ask for what the source cannot answer (`--as-of` after the export's `--until`).
    Usage,
    /// 3: the figures disagree: the replay with the live read model, or a payment's success with
    /// its wallet's commission; every difference is listed.
    Mismatch,
    /// 4: the file is not a readable audit file (malformed, truncated) or an event cannot be decoded.
    BadInput,
    /// 5: a file could not be opened, read or written, or the database failed.
    Failed,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Clean => 0,
            Self::Tampered => 1,
            Self::Usage => 2,
            Self::Mismatch => 3,
            Self::BadInput => 4,
            Self::Failed => 5,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

/// Where `verify` and `commission` read the log.
#[derive(Debug, Clone)]
pub enum Source {
    /// The live database (`--db`).
    Database(PgPool),
    /// An audit file written by `audit export`.
    File(PathBuf),
}

/// `audit export --out FILE [--until TIME]`.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The file to write (written beside it as `<FILE>.partial`, renamed when complete).
    pub out: PathBuf,
    /// Cut at this recording instant (see [`export_log`]).
    pub until: Option<DateTime<Utc>>,
    /// Draw a progress bar on standard error (only when it is a terminal).
    pub progress: bool,
}

/// `audit verify (--db | FILE)`.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// What to verify.
    pub source: Source,
    /// Draw a progress bar on standard error (only when it is a terminal).
    pub progress: bool,
}

/// `audit commission (--db | FILE) [--as-of TIME] [--merchant ID] [--format table|csv|json]`.
#[derive(Debug, Clone)]
pub struct CommissionOptions {
    /// What to replay.
    pub source: Source,
    /// Figures as of this instant (events recorded at or before it).
    pub as_of: Option<DateTime<Utc>>,
    /// Only this merchant.
    pub merchant: Option<MerchantId>,
    /// How to print.
    pub format: OutputFormat,
    /// Draw a progress bar on standard error (only when it is a terminal).
    pub progress: bool,
}

/// Prints an error and answers its exit status.
fn failed(error: &AuditError, err: &mut dyn Write) -> ExitStatus {
    // Nothing more can be done if standard error is gone; the exit status still tells.
    let _ = writeln!(err, "{error}");
    error.exit_status()
}

/// Runs `audit export`: writes the log to `options.out`, prints what it wrote to `out`.
pub async fn run_export(
    pool: &PgPool,
    options: &ExportOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitStatus {
    let mut partial = options.out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let io = |path: &PathBuf, source| AuditError::Io {
        path: path.clone(),
        source,
    };
    let result = async {
        let file = std::fs::File::create(&partial).map_err(|e| io(&partial, e))?;
        let progress = bar(options.progress, 0, Unit::Events);
        let (summary, file) = export_log(
            pool,
            options.until,
            std::io::BufWriter::with_capacity(1 << 20, file),
            &progress,
        )
        .await?;
        let file = file
            .into_inner()
            .map_err(|e| io(&partial, e.into_error()))?;
        file.sync_all().map_err(|e| io(&partial, e))?;
        std::fs::rename(&partial, &options.out).map_err(|e| io(&options.out, e))?;
        Ok::<_, AuditError>(summary)
    }
    .await;
    match result {
        Ok(summary) => {
            let header = &summary.header;
            let span = match (summary.first_recorded_at, summary.last_recorded_at) {
                (Some(first), Some(last)) => {
                    format!(
                        "recorded {} to {}",
                        format_instant(first),
                        format_instant(last)
                    )
                }
                _ => "no events".to_owned(),
            };
            let until = header
                .until
                .map_or_else(String::new, |u| format!(", cut at {}", format_instant(u)));
            let _ = writeln!(
                out,
                "Exported {} events and {} seals to {}{until} ({span})",
                header.events,
                header.seals,
                options.out.display()
            );
            ExitStatus::Clean
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            failed(&error, err)
        }
    }
}

/// Runs `audit verify`: prints the summary to `out` when everything holds, otherwise the first
/// discrepancy (naming the event or seal) to `err`.
pub async fn run_verify(
    options: &VerifyOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitStatus {
    let (result, source) = match &options.source {
        Source::Database(pool) => {
            let progress = bar(options.progress, 0, Unit::Events);
            let result = verify_database(pool, &progress).await;
            progress.finish_and_clear();
            (result, "the database's log".to_owned())
        }
        Source::File(path) => {
            let path = path.clone();
            let progress = options.progress;
            let shown = path.display().to_string();
            let result = tokio::task::spawn_blocking(move || verify_path(&path, progress))
                .await
                .unwrap_or_else(|e| Err(AuditError::Interrupted(e.to_string())));
            (result, shown)
        }
    };
    match result {
        Ok(report) => {
            let _ = write_verified(&report, &source, out);
            ExitStatus::Clean
        }
        Err(error) => failed(&error, err),
    }
}

/// Verifies the audit file at `path` (see [`verify_file`]).
pub fn verify_path(path: &std::path::Path, progress: bool) -> Result<Report, AuditError> {
    let bar = bar(progress, 0, Unit::Bytes);
    let mut file = AuditFile::open(path, Prepare::Rows, &bar)?;
    let verified = verify_file(&mut file)?;
    bar.finish_and_clear();
    Ok(verified.report)
}

/// Replays the commission of the audit file at `path` (see [`replay_file`]).
pub fn replay_path(
    path: &std::path::Path,
    filter: ReplayFilter,
    progress: bool,
) -> Result<CommissionReport, AuditError> {
    let bar = bar(progress, 0, Unit::Bytes);
    let mut file = AuditFile::open(path, Prepare::Lines, &bar)?;
    let report = replay_file(&mut file, filter)?;
    bar.finish_and_clear();
    Ok(report)
}

/// Runs `audit commission`: prints the figures to `out`, any payment whose success and
/// commission disagree, and with `--db` the comparison with the live read model;
/// [`ExitStatus::Mismatch`] if anything disagrees.
pub async fn run_commission(
    options: &CommissionOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitStatus {
    let filter = ReplayFilter {
        as_of: options.as_of,
        merchant: options.merchant,
    };
    let result = match &options.source {
        Source::Database(pool) => replay_database(pool, filter).await,
        Source::File(path) => {
            let path = path.clone();
            let progress = options.progress;
            tokio::task::spawn_blocking(move || replay_path(&path, filter, progress))
                .await
                .unwrap_or_else(|e| Err(AuditError::Interrupted(e.to_string())))
        }
    };
    match result {
        Ok(report) => {
            if let Err(e) = write_commission(&report, options.format, out, err) {
                return failed(&AuditError::Output(e), err);
            }
            if report.agrees() {
                ExitStatus::Clean
            } else {
                ExitStatus::Mismatch
            }
        }
        Err(error) => failed(&error, err),
    }
}
