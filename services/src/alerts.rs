//! Ops alerts in the log (`ops_alert-<key>` streams): raised once while their condition holds,
//! resolved when it stops, acknowledged by a person.

use lightspeed_domain::ops_alert::{AlertKind, OpsAlert, OpsAlertCommand};
use lightspeed_eventstore::{CommandContext, stream_of};

use crate::error::ServiceError;
use crate::ledger::Ledger;

/// What raising or resolving an alert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChange {
    /// This call recorded the change (so this caller tells people about it).
    Recorded,
    /// The alert was already in that state, or another replica recorded it first.
    Unchanged,
}

impl Ledger {
    /// Raises the alert `key` unless it is firing.
    pub async fn raise_alert(
        &self,
        key: &str,
        kind: AlertKind,
        summary: String,
        context: &CommandContext,
    ) -> Result<AlertChange, ServiceError> {
        let command = OpsAlertCommand::Raise {
            kind,
            summary,
            at: self.now(),
        };
        self.alert_command(key, &command, context).await
    }

    /// Resolves the alert `key` if it is firing.
    pub async fn resolve_alert(
        &self,
        key: &str,
        summary: String,
        context: &CommandContext,
    ) -> Result<AlertChange, ServiceError> {
        let command = OpsAlertCommand::Resolve {
            summary,
            at: self.now(),
        };
        self.alert_command(key, &command, context).await
    }

    /// Records that the person `by` (their email) acknowledged the alert `key`; nothing if it is
    /// acknowledged since its last raise. Refused with `OpsAlertError::NotRaised` for a key no
    /// alert was raised under.
    pub async fn acknowledge_alert(
        &self,
        key: &str,
        by: &str,
        context: &CommandContext,
    ) -> Result<AlertChange, ServiceError> {
        let command = OpsAlertCommand::Acknowledge {
            by: by.to_owned(),
            at: self.now(),
        };
        self.alert_command(key, &command, context).await
    }

    /// The alert `key`, if it was ever raised.
    pub async fn alert(&self, key: &str) -> Result<Option<OpsAlert>, ServiceError> {
        Ok(self.alerts.load(&stream_of::<OpsAlert>(key)?).await?.state)
    }

    /// Whether the alert `key` is known to be raised without reading the log (a hint that saves
    /// evaluators a read per candidate; a miss is answered by [`Ledger::raise_alert`]).
    pub fn alert_known_raised(&self, key: &str) -> bool {
        stream_of::<OpsAlert>(key)
            .map(|stream| self.alerts.cached(&stream).state.is_some())
            .unwrap_or(false)
    }

    async fn alert_command(
        &self,
        key: &str,
        command: &OpsAlertCommand,
        context: &CommandContext,
    ) -> Result<AlertChange, ServiceError> {
        let executed = self
            .alerts
            .execute(&stream_of::<OpsAlert>(key)?, command, context)
            .await?;
        Ok(
            if executed.events.is_empty() || executed.idempotent_replay {
                AlertChange::Unchanged
            } else {
                AlertChange::Recorded
            },
        )
    }
}
