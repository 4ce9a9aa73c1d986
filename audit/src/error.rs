//! Typed errors of the auditor tooling, and the exit code each one maps to.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use lightspeed_eventstore::ReadError;
use lightspeed_eventstore::verify::Tampering;
use lightspeed_projections::ProjectionError;

/// Why an audit command could not give its answer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log was altered: the first discrepancy, naming the event or seal.
    #[error("TAMPERING: {}", describe(.0))]
    Tampering(Tampering),
    /// A file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
    /// The file is not an audit file this code can read, or a line of it is malformed.
    #[error("malformed audit file at line {line}: {why}")]
    Format {
        /// 1-based line number (0 when the problem is not tied to a line).
        line: u64,
        /// What is wrong.
        why: String,
    },
    /// The file ends before its trailer: it was cut short.
    #[error("truncated audit file: {0}")]
    Truncated(String),
    /// The seals could not be loaded.
    #[error("cannot load the seals: {0}")]
    Seals(#[from] lightspeed_eventstore::seal::SealError),
    /// A counted total does not match what the file holds: records were removed or added where
    /// no seal covers them, or the header or trailer was edited.
    #[error("TAMPERING: {0}")]
    Counts(String),
    /// A background part of the work stopped before finishing.
    #[error("stopped: {0}")]
    Interrupted(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The live wallets read model could not be read.
    #[error("cannot read the wallets read model: {0}")]
    ReadModel(#[from] ProjectionError),
    /// A stored event does not decode into the domain's event type.
    #[error("event at position {position} cannot be replayed: {why}")]
    Undecodable {
        /// Its global position.
        position: u64,
        /// What the decoder said.
        why: String,
    },
    /// A stored row of the database's log cannot be read (a bug or tampering).
    #[error("cannot read the log: {0}")]
    Unreadable(String),
    /// `--as-of` lies after the instant the export was cut at, where the file is incomplete.
    #[error(
        "--as-of {as_of} is after the export's --until {until}: the file does not hold what came later"
    )]
    AsOfAfterUntil {
        /// The instant asked for.
        as_of: DateTime<Utc>,
        /// The export's cut.
        until: DateTime<Utc>,
    },
}

impl AuditError {
    /// A format error at `line`.
    pub(crate) fn format(line: u64, why: impl Into<String>) -> Self {
        Self::Format {
            line,
            why: why.into(),
        }
    }

    /// The process exit code for this error (see [`crate::ExitStatus`]).
    pub fn exit_status(&self) -> crate::ExitStatus {
        match self {
            Self::Tampering(_) | Self::Counts(_) => crate::ExitStatus::Tampered,
            Self::Format { .. }
            | Self::Truncated(_)
            | Self::Undecodable { .. }
            | Self::Unreadable(_) => crate::ExitStatus::BadInput,
            Self::AsOfAfterUntil { .. } => crate::ExitStatus::Usage,
            Self::Io { .. }
            | Self::Output(_)
            | Self::Seals(_)
            | Self::Interrupted(_)
            | Self::Database(_)
            | Self::ReadModel(_) => crate::ExitStatus::Failed,
        }
    }
}

/// A finding in words; a removed event is named by the event found in its place.
fn describe(tampering: &Tampering) -> String {
    match tampering {
        Tampering::Removed {
            position,
            seal_number,
            noticed_at,
        } => {
            let noticed = noticed_at.as_ref().map_or_else(
                || "at the end of the log".to_owned(),
                |event| format!("where {event} was found instead"),
            );
            format!(
                "event removed: position {position}, sealed by seal {seal_number}, is missing ({noticed})"
            )
        }
        other => other.to_string(),
    }
}

/// A row that cannot be represented is undecodable, as when the auditor decodes it itself.
impl From<ReadError> for AuditError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Corrupt { position, why } => Self::Undecodable { position, why },
            ReadError::Database(error) => Self::Database(error),
            ReadError::Invalid(invalid) => Self::Unreadable(invalid.to_string()),
        }
    }
}

impl From<Tampering> for AuditError {
    fn from(tampering: Tampering) -> Self {
        Self::Tampering(tampering)
    }
}
