//! Projection rebuilds started from the console: run in this process, one per projection at a
//! time, their progress kept in memory for the Projections page's live stream, and each run
//! recorded in the log (`projection_rebuild-<run id>`), so the audit log names the person who
//! started it.
//!
//! A rebuild builds the projection's new version beside the one readers see and swaps it in
//! (`lightspeed_projections::rebuild`, as `lightspeed projections rebuild` does); the old
//! version keeps serving meanwhile. Another replica's page sees a run's progress as the
//! building version's applied events in the table, on reload.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lightspeed_domain::{Decider, DomainEvent};
use lightspeed_eventstore::{CommandContext, CommandHandler, Metadata, PgEventStore, stream_of};
use lightspeed_projections::progress::{Progress, ProgressUpdate};
use lightspeed_projections::{ProjectorDeps, RebuildOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

/// Where a rebuild run's stream stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RunState {
    /// Nothing recorded.
    #[default]
    Unknown,
    /// Started, not yet ended.
    Running,
    /// Finished or failed.
    Ended,
}

/// What the console asks of a rebuild run's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    /// Start rebuilding `projection`.
    Start {
        /// The projection's name.
        projection: String,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Record the end of the run.
    End {
        /// What came of it.
        outcome: RunOutcome,
        /// Now.
        at: DateTime<Utc>,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RunOutcome {
    /// Built, and readers switched to it.
    Finished {
        /// The version built.
        version: i32,
        /// Events applied.
        events_applied: u64,
        /// Whether readers now see it.
        switched: bool,
    },
    /// Stopped by an error (the build is kept and resumes on the next run).
    Failed {
        /// What went wrong.
        reason: String,
    },
}

/// What a rebuild run's stream records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum RunEvent {
    /// Someone started a rebuild from the console (the event's actor says who).
    ProjectionRebuildStarted {
        /// The projection.
        projection: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The run ended.
    ProjectionRebuildEnded {
        /// What came of it.
        #[serde(flatten)]
        outcome: RunOutcome,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for RunEvent {
    fn event_type(&self) -> &'static str {
        match self {
            RunEvent::ProjectionRebuildStarted { .. } => "ProjectionRebuildStarted",
            RunEvent::ProjectionRebuildEnded { .. } => "ProjectionRebuildEnded",
        }
    }
}

/// Why a run command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The run was already started.
    #[error("this rebuild run was already started")]
    AlreadyStarted,
    /// The run was never started or already ended.
    #[error("this rebuild run is not running")]
    NotRunning,
}

/// The rebuild run decider: started once, ended once.
#[derive(Debug, Clone, Copy, Default)]
pub struct RebuildRun;

impl Decider for RebuildRun {
    const CATEGORY: &'static str = "projection_rebuild";
    type State = RunState;
    type Command = RunCommand;
    type Event = RunEvent;
    type Error = RunError;

    fn decide(state: &RunState, command: &RunCommand) -> Result<Vec<RunEvent>, RunError> {
        match (state, command) {
            (RunState::Unknown, RunCommand::Start { projection, at }) => {
                Ok(vec![RunEvent::ProjectionRebuildStarted {
                    projection: projection.clone(),
                    at: *at,
                }])
            }
            (_, RunCommand::Start { .. }) => Err(RunError::AlreadyStarted),
            (RunState::Running, RunCommand::End { outcome, at }) => {
                Ok(vec![RunEvent::ProjectionRebuildEnded {
                    outcome: outcome.clone(),
                    at: *at,
                }])
            }
            (_, RunCommand::End { .. }) => Err(RunError::NotRunning),
        }
    }

    fn evolve(_state: RunState, event: &RunEvent) -> RunState {
        match event {
            RunEvent::ProjectionRebuildStarted { .. } => RunState::Running,
            RunEvent::ProjectionRebuildEnded { .. } => RunState::Ended,
        }
    }
}

/// A run as the Projections page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    /// The projection.
    pub projection: String,
    /// Who started it.
    pub started_by: String,
    /// When.
    pub started_at: DateTime<Utc>,
    /// The last progress reported, once the build knows its version.
    pub progress: Option<ProgressUpdate>,
    /// `None` while running.
    pub outcome: Option<RunOutcome>,
}

/// Why a rebuild did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No projection by that name.
    #[error("no projection by that name")]
    Unknown,
    /// One is already running in this process.
    #[error("a rebuild of this projection is already running")]
    Running,
    /// The log refused the record.
    #[error("event log: {0}")]
    Store(String),
}

/// The rebuilds this process runs, newest per projection, and a signal for their watchers.
#[derive(Clone)]
pub struct Rebuilds {
    runs: Arc<Mutex<BTreeMap<String, RunView>>>,
    changed: watch::Sender<u64>,
    handler: CommandHandler<RebuildRun, PgEventStore>,
}

impl Rebuilds {
    /// Rebuilds over `store`'s log and read models.
    pub fn new(store: PgEventStore) -> Self {
        Self {
            runs: Arc::default(),
            changed: watch::channel(0).0,
            handler: CommandHandler::new(store),
        }
    }

    /// Every projection's latest run in this process, by name.
    pub fn runs(&self) -> Vec<RunView> {
        self.lock().values().cloned().collect()
    }

    /// A receiver told of every change to [`Rebuilds::runs`].
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RunView>> {
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, projection: &str, change: impl FnOnce(&mut RunView)) {
        if let Some(run) = self.lock().get_mut(projection) {
            change(run);
        }
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// Starts rebuilding `projection` in the background, recorded with `actor`; refuses while
    /// one runs in this process.
    pub async fn start(&self, projection: &str, actor: &str) -> Result<(), StartError> {
        let projection = lightspeed_projections::catalog::by_name(projection)
            .ok_or(StartError::Unknown)?
            .name()
            .to_owned();
        let now = self.handler.store().clock().now();
        {
            let mut runs = self.lock();
            if runs.get(&projection).is_some_and(|r| r.outcome.is_none()) {
                return Err(StartError::Running);
            }
            runs.insert(
                projection.clone(),
                RunView {
                    projection: projection.clone(),
                    started_by: actor.to_owned(),
                    started_at: now,
                    progress: None,
                    outcome: None,
                },
            );
        }
        let run_id = Uuid::now_v7();
        let start = RunCommand::Start {
            projection: projection.clone(),
            at: now,
        };
        if let Err(e) = self.record(run_id, &start, actor).await {
            self.lock().remove(&projection);
            return Err(StartError::Store(e));
        }
        self.changed.send_modify(|generation| *generation += 1);
        let rebuilds = self.clone();
        tokio::spawn(async move { rebuilds.run(run_id, projection).await });
        Ok(())
    }

    async fn run(self, run_id: Uuid, projection: String) {
        let deps = ProjectorDeps {
            store: self.handler.store().clone(),
            live: None,
        };
        let progress = Reporter {
            rebuilds: self.clone(),
            projection: projection.clone(),
        };
        let outcome = match lightspeed_projections::rebuild(
            &projection,
            &deps,
            &RebuildOptions::default(),
            &progress,
        )
        .await
        {
            Ok(report) => RunOutcome::Finished {
                version: report.version,
                events_applied: report.events_applied,
                switched: report.switched,
            },
            Err(e) => {
                tracing::warn!(%projection, error = %e, "console rebuild failed");
                RunOutcome::Failed {
                    reason: e.to_string(),
                }
            }
        };
        let end = RunCommand::End {
            outcome: outcome.clone(),
            at: self.handler.store().clock().now(),
        };
        if let Err(e) = self.record(run_id, &end, "console:rebuild").await {
            tracing::warn!(%projection, error = %e, "console rebuild's end not recorded");
        }
        self.update(&projection, |run| run.outcome = Some(outcome));
    }

    async fn record(&self, run_id: Uuid, command: &RunCommand, actor: &str) -> Result<(), String> {
        let stream = stream_of::<RebuildRun>(run_id).map_err(|e| e.to_string())?;
        let context = CommandContext {
            command_id: None,
            metadata: Metadata {
                actor: Some(actor.to_owned()),
                ..Metadata::default()
            },
        };
        self.handler
            .execute(&stream, command, &context)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Hands a run's progress to [`Rebuilds`].
struct Reporter {
    rebuilds: Rebuilds,
    projection: String,
}

impl Progress for Reporter {
    fn report(&self, update: &ProgressUpdate) {
        self.rebuilds
            .update(&self.projection, |run| run.progress = Some(update.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 8, 10, minute, 0).unwrap()
    }

    fn fold(events: &[RunEvent]) -> RunState {
        events.iter().fold(RunState::default(), RebuildRun::evolve)
    }

    #[test]
    fn a_run_starts_once_and_ends_once() {
        let start = RunCommand::Start {
            projection: "wallets".into(),
            at: t(0),
        };
        let end = RunCommand::End {
            outcome: RunOutcome::Failed { reason: "x".into() },
            at: t(1),
        };
        assert_eq!(
            RebuildRun::decide(&RunState::Unknown, &end),
            Err(RunError::NotRunning)
        );
        let mut events = RebuildRun::decide(&RunState::Unknown, &start).unwrap();
        assert_eq!(
            events,
            vec![RunEvent::ProjectionRebuildStarted {
                projection: "wallets".into(),
                at: t(0)
            }]
        );
        assert_eq!(
            RebuildRun::decide(&fold(&events), &start),
            Err(RunError::AlreadyStarted)
        );
        events.extend(RebuildRun::decide(&fold(&events), &end).unwrap());
        assert_eq!(fold(&events), RunState::Ended);
        assert_eq!(
            RebuildRun::decide(&fold(&events), &end),
            Err(RunError::NotRunning)
        );
    }
}
