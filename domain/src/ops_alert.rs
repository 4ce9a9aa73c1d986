//! Ops alert: one condition ops should know about (a failed payment, a WhatsApp failure rate
//! over its bound), raised once while it holds and resolved when it stops.
//!
//! Stream `ops_alert-<key>`, where the key names the condition: `payment_failed.<payment id>`
//! for one failed payment, `whatsapp_failure_rate` for the rate. Raising an alert that is firing
//! decides nothing, so evaluators on several replicas, or one that looks again, raise it once;
//! optimistic concurrency on the stream lets exactly one of two racing raises append.

use crate::decider::Decider;
use crate::validation;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest alert summary kept, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1_000;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A payment failed.
    PaymentFailed,
    /// The share of WhatsApp messages that failed is over its bound.
    WhatsappFailureRate,
}

impl AlertKind {
    /// The snake_case name used in keys, APIs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::PaymentFailed => "payment_failed",
            AlertKind::WhatsappFailureRate => "whatsapp_failure_rate",
        }
    }
}

/// An alert as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpsAlert {
    kind: AlertKind,
    summary: String,
    firing: bool,
    raised_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    times_raised: u32,
}

impl OpsAlert {
    /// What it is about.
    pub fn kind(&self) -> AlertKind {
        self.kind
    }

    /// The latest summary, for people.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// Whether the condition holds (raised and not resolved since).
    pub fn is_firing(&self) -> bool {
        self.firing
    }

    /// When it was last raised.
    pub fn raised_at(&self) -> DateTime<Utc> {
        self.raised_at
    }

    /// When it was last resolved, if it was after its last raise.
    pub fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.resolved_at
    }

    /// How often it was raised.
    pub fn times_raised(&self) -> u32 {
        self.times_raised
    }
}

/// What an evaluator can ask of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpsAlertCommand {
    /// The condition holds: raise the alert unless it is firing.
    Raise {
        /// What it is about.
        kind: AlertKind,
        /// For people (cut to [`MAX_SUMMARY_CHARS`]).
        summary: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// The condition stopped: resolve the alert if it is firing.
    Resolve {
        /// For people (cut to [`MAX_SUMMARY_CHARS`]).
        summary: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What an ops alert stream records.
    pub enum OpsAlertEvent {
        /// The condition started to hold.
        OpsAlertRaised {
            /// What it is about.
            kind: AlertKind,
            /// For people.
            summary: String,
            /// When.
            at: DateTime<Utc>,
        },
        /// The condition stopped holding.
        OpsAlertResolved {
            /// For people.
            summary: String,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why an alert command is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpsAlertError {
    /// The stream already holds an alert of another kind (a key names one condition).
    #[error("this alert is about {existing:?}, not another kind")]
    KindMismatch {
        /// The kind the stream holds.
        existing: AlertKind,
    },
}

impl Decider for OpsAlert {
    const CATEGORY: &'static str = "ops_alert";
    type State = Option<OpsAlert>;
    type Command = OpsAlertCommand;
    type Event = OpsAlertEvent;
    type Error = OpsAlertError;

    fn decide(
        state: &Option<OpsAlert>,
        command: &OpsAlertCommand,
    ) -> Result<Vec<OpsAlertEvent>, OpsAlertError> {
        match (state, command) {
            (Some(alert), OpsAlertCommand::Raise { kind, .. }) if alert.kind != *kind => {
                Err(OpsAlertError::KindMismatch {
                    existing: alert.kind,
                })
            }
            (Some(alert), OpsAlertCommand::Raise { .. }) if alert.firing => Ok(vec![]),
            (_, OpsAlertCommand::Raise { kind, summary, at }) => {
                Ok(vec![OpsAlertEvent::OpsAlertRaised {
                    kind: *kind,
                    summary: validation::excerpt(summary, MAX_SUMMARY_CHARS),
                    at: *at,
                }])
            }
            (Some(alert), OpsAlertCommand::Resolve { summary, at }) if alert.firing => {
                Ok(vec![OpsAlertEvent::OpsAlertResolved {
                    summary: validation::excerpt(summary, MAX_SUMMARY_CHARS),
                    at: *at,
                }])
            }
            (_, OpsAlertCommand::Resolve { .. }) => Ok(vec![]),
        }
    }

    fn evolve(state: Option<OpsAlert>, event: &OpsAlertEvent) -> Option<OpsAlert> {
        match (state, event) {
            (state, OpsAlertEvent::OpsAlertRaised { kind, summary, at }) => Some(OpsAlert {
                kind: *kind,
                summary: summary.clone(),
                firing: true,
                raised_at: *at,
                resolved_at: None,
                times_raised: state
                    .map_or(0, |alert| alert.times_raised)
                    .saturating_add(1),
            }),
            (Some(mut alert), OpsAlertEvent::OpsAlertResolved { summary, at }) => {
                alert.firing = false;
                alert.summary = summary.clone();
                alert.resolved_at = Some(*at);
                Some(alert)
            }
            (None, OpsAlertEvent::OpsAlertResolved { .. }) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, t};

    fn raised(at: DateTime<Utc>) -> OpsAlertEvent {
        OpsAlertEvent::OpsAlertRaised {
            kind: AlertKind::WhatsappFailureRate,
            summary: "8 of 100 failed".to_owned(),
            at,
        }
    }

    fn raise(at: DateTime<Utc>) -> OpsAlertCommand {
        OpsAlertCommand::Raise {
            kind: AlertKind::WhatsappFailureRate,
            summary: "8 of 100 failed".to_owned(),
            at,
        }
    }

    #[test]
    fn an_alert_is_raised_once_while_it_fires_and_again_after_it_resolved() {
        let alert = given::<OpsAlert>([]).when(raise(t(0))).then([raised(t(0))]);
        assert!(alert.as_ref().is_some_and(OpsAlert::is_firing));
        given::<OpsAlert>([raised(t(0))])
            .when(raise(t(60)))
            .then_nothing();
        let resolved = OpsAlertEvent::OpsAlertResolved {
            summary: "1 of 100 failed".to_owned(),
            at: t(120),
        };
        given::<OpsAlert>([raised(t(0))])
            .when(OpsAlertCommand::Resolve {
                summary: "1 of 100 failed".to_owned(),
                at: t(120),
            })
            .then([resolved.clone()]);
        let again = given::<OpsAlert>([raised(t(0)), resolved])
            .when(raise(t(300)))
            .then([raised(t(300))])
            .expect("an alert");
        assert_eq!((again.times_raised(), again.raised_at()), (2, t(300)));
    }

    #[test]
    fn resolving_what_is_not_firing_is_nothing_and_a_key_keeps_its_kind() {
        given::<OpsAlert>([])
            .when(OpsAlertCommand::Resolve {
                summary: String::new(),
                at: t(0),
            })
            .then_nothing();
        given::<OpsAlert>([raised(t(0))])
            .when(OpsAlertCommand::Raise {
                kind: AlertKind::PaymentFailed,
                summary: "x".to_owned(),
                at: t(1),
            })
            .then_error(OpsAlertError::KindMismatch {
                existing: AlertKind::WhatsappFailureRate,
            });
    }

    #[test]
    fn summaries_are_bounded() {
        let long = "x".repeat(MAX_SUMMARY_CHARS + 10);
        let alert = given::<OpsAlert>([])
            .when(OpsAlertCommand::Raise {
                kind: AlertKind::PaymentFailed,
                summary: long,
                at: t(0),
            })
            .then([OpsAlertEvent::OpsAlertRaised {
                kind: AlertKind::PaymentFailed,
                summary: "x".repeat(MAX_SUMMARY_CHARS),
                at: t(0),
            }]);
        assert!(alert.is_some());
    }
}
