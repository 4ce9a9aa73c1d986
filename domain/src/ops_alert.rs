//! Ops alert: one condition ops should know about (a failed payment, a gateway near its monthly
//! limit, a queue falling behind, ...), raised once while it holds, resolved when it stops, and
//! acknowledged by a person.
//!
//! Stream `ops_alert-<key>`, where the key names the condition: `<kind>` for a condition of the
//! whole system (`whatsapp_failure_rate`, `relay_lag`), `<kind>.<subject>` for one of a gateway,
//! merchant, queue, projection, payment or payout (`gateway_limit_near.<gateway id>`, or
//! `quota_reached.<merchant id>.<cap>` for a merchant's quota cap). Raising an
//! alert that is firing decides nothing, so evaluators on several replicas, or one that looks
//! again, raise it once; optimistic concurrency on the stream lets exactly one of two racing
//! raises append. A raise after a resolve starts the alert over: its acknowledgement is cleared,
//! so the person on call acknowledges each time the condition returns.

use crate::decider::Decider;
use crate::validation;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest alert summary kept, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1_000;

/// The events that leave an alert firing: an alert whose latest event is one of these is
/// firing (acknowledged or not).
pub const FIRING_EVENT_TYPES: [&str; 2] = ["OpsAlertRaised", "OpsAlertAcknowledged"];

/// Longest email of the person acknowledging, in characters.
pub const MAX_ACKNOWLEDGER_CHARS: usize = 320;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A payment failed.
    PaymentFailed,
    /// The share of WhatsApp messages that failed is over its bound.
    WhatsappFailureRate,
    /// A gateway's volume this month reached the near share (80 % by default) of its limit.
    GatewayLimitNear,
    /// A gateway's volume this month reached its limit.
    GatewayLimitReached,
    /// An active merchant has no gateway that could take a payment (initiation answers 503).
    NoGatewayAvailable,
    /// A gateway is resting after failures (temporarily failed).
    GatewayTemporarilyFailed,
    /// A gateway's success rate over the window is under its bound.
    GatewaySuccessRate,
    /// A work queue's depth or its oldest job's age is over its bound.
    QueueBacklog,
    /// A projection is further behind the log than its bound.
    ProjectionLag,
    /// The relay is further behind the log than its bound.
    RelayLag,
    /// A merchant webhook endpoint was disabled after failing deliveries.
    WebhookEndpointDisabled,
    /// A payout was reversed (failed).
    PayoutFailed,
    /// A merchant's use of a quota cap reached the near share (80 % by default) this period.
    QuotaNear,
    /// A merchant's use of a quota cap reached the cap this period.
    QuotaReached,
}

/// Every kind, in declaration order.
pub const ALERT_KINDS: [AlertKind; 14] = [
    AlertKind::PaymentFailed,
    AlertKind::WhatsappFailureRate,
    AlertKind::GatewayLimitNear,
    AlertKind::GatewayLimitReached,
    AlertKind::NoGatewayAvailable,
    AlertKind::GatewayTemporarilyFailed,
    AlertKind::GatewaySuccessRate,
    AlertKind::QueueBacklog,
    AlertKind::ProjectionLag,
    AlertKind::RelayLag,
    AlertKind::WebhookEndpointDisabled,
    AlertKind::PayoutFailed,
    AlertKind::QuotaNear,
    AlertKind::QuotaReached,
];

impl AlertKind {
    /// The snake_case name used in keys, APIs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::PaymentFailed => "payment_failed",
            AlertKind::WhatsappFailureRate => "whatsapp_failure_rate",
            AlertKind::GatewayLimitNear => "gateway_limit_near",
            AlertKind::GatewayLimitReached => "gateway_limit_reached",
            AlertKind::NoGatewayAvailable => "no_gateway_available",
            AlertKind::GatewayTemporarilyFailed => "gateway_temporarily_failed",
            AlertKind::GatewaySuccessRate => "gateway_success_rate",
            AlertKind::QueueBacklog => "queue_backlog",
            AlertKind::ProjectionLag => "projection_lag",
            AlertKind::RelayLag => "relay_lag",
            AlertKind::WebhookEndpointDisabled => "webhook_endpoint_disabled",
            AlertKind::PayoutFailed => "payout_failed",
            AlertKind::QuotaNear => "quota_near",
            AlertKind::QuotaReached => "quota_reached",
        }
    }

    /// The kind named `name` (its [`AlertKind::as_str`]).
    pub fn parse(name: &str) -> Option<AlertKind> {
        ALERT_KINDS.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The key of this kind's alert about `subject` (`None`: the whole system).
    pub fn key(self, subject: Option<&str>) -> String {
        match subject {
            Some(subject) => format!("{}.{subject}", self.as_str()),
            None => self.as_str().to_owned(),
        }
    }

    /// Whether the alert marks a one-off fact (a payment or payout that failed) rather than a
    /// condition that holds and stops: such alerts are acknowledged, never resolved.
    pub fn is_one_off(self) -> bool {
        matches!(self, AlertKind::PaymentFailed | AlertKind::PayoutFailed)
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
    /// Who acknowledged it since its last raise.
    #[serde(default)]
    acknowledged_by: Option<String>,
    /// When.
    #[serde(default)]
    acknowledged_at: Option<DateTime<Utc>>,
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

    /// The email of the person who acknowledged it since its last raise.
    pub fn acknowledged_by(&self) -> Option<&str> {
        self.acknowledged_by.as_deref()
    }

    /// When it was acknowledged since its last raise.
    pub fn acknowledged_at(&self) -> Option<DateTime<Utc>> {
        self.acknowledged_at
    }

    /// `firing`, `acknowledged` (firing, and a person has seen it) or `resolved`; a one-off
    /// alert (a failed payment) is never resolved, so it is `firing` until acknowledged.
    pub fn state_name(&self) -> &'static str {
        match (self.firing, self.acknowledged_by.is_some()) {
            (false, _) => "resolved",
            (true, true) => "acknowledged",
            (true, false) => "firing",
        }
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
    /// A person saw the alert: acknowledge it unless it is acknowledged since its last raise.
    Acknowledge {
        /// The person's email.
        by: String,
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
        /// A person acknowledged the alert.
        OpsAlertAcknowledged {
            /// The person's email.
            by: String,
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
    /// No alert was ever raised under this key.
    #[error("no such alert")]
    NotRaised,
    /// The acknowledging person's email is empty or too long.
    #[error("the acknowledging person is not named")]
    NoAcknowledger,
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
            (None, OpsAlertCommand::Acknowledge { .. }) => Err(OpsAlertError::NotRaised),
            (Some(_), OpsAlertCommand::Acknowledge { by, .. })
                if by.trim().is_empty() || by.chars().count() > MAX_ACKNOWLEDGER_CHARS =>
            {
                Err(OpsAlertError::NoAcknowledger)
            }
            (Some(alert), OpsAlertCommand::Acknowledge { .. })
                if alert.acknowledged_by.is_some() =>
            {
                Ok(vec![])
            }
            (Some(_), OpsAlertCommand::Acknowledge { by, at }) => {
                Ok(vec![OpsAlertEvent::OpsAlertAcknowledged {
                    by: by.trim().to_lowercase(),
                    at: *at,
                }])
            }
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
                acknowledged_by: None,
                acknowledged_at: None,
            }),
            (Some(mut alert), OpsAlertEvent::OpsAlertResolved { summary, at }) => {
                alert.firing = false;
                alert.summary = summary.clone();
                alert.resolved_at = Some(*at);
                Some(alert)
            }
            (Some(mut alert), OpsAlertEvent::OpsAlertAcknowledged { by, at }) => {
                alert.acknowledged_by = Some(by.clone());
                alert.acknowledged_at = Some(*at);
                Some(alert)
            }
            (
                None,
                OpsAlertEvent::OpsAlertResolved { .. } | OpsAlertEvent::OpsAlertAcknowledged { .. },
            ) => None,
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

    fn acknowledged(by: &str, at: DateTime<Utc>) -> OpsAlertEvent {
        OpsAlertEvent::OpsAlertAcknowledged {
            by: by.to_owned(),
            at,
        }
    }

    fn acknowledge(by: &str, at: DateTime<Utc>) -> OpsAlertCommand {
        OpsAlertCommand::Acknowledge {
            by: by.to_owned(),
            at,
        }
    }

    #[test]
    fn a_person_acknowledges_a_raised_alert_once_and_the_log_names_them() {
        let alert = given::<OpsAlert>([raised(t(0))])
            .when(acknowledge(" Asha@Example.com ", t(30)))
            .then([acknowledged("asha@example.com", t(30))])
            .expect("an alert");
        assert_eq!(
            (
                alert.acknowledged_by(),
                alert.acknowledged_at(),
                alert.is_firing()
            ),
            (Some("asha@example.com"), Some(t(30)), true)
        );
        assert_eq!(alert.state_name(), "acknowledged");
        given::<OpsAlert>([raised(t(0)), acknowledged("asha@example.com", t(30))])
            .when(acknowledge("ravi@example.com", t(40)))
            .then_nothing();
    }

    #[test]
    fn an_alert_never_raised_cannot_be_acknowledged_and_someone_must_be_named() {
        given::<OpsAlert>([])
            .when(acknowledge("asha@example.com", t(0)))
            .then_error(OpsAlertError::NotRaised);
        given::<OpsAlert>([raised(t(0))])
            .when(acknowledge("  ", t(1)))
            .then_error(OpsAlertError::NoAcknowledger);
        given::<OpsAlert>([raised(t(0))])
            .when(acknowledge(&"a".repeat(MAX_ACKNOWLEDGER_CHARS + 1), t(1)))
            .then_error(OpsAlertError::NoAcknowledger);
    }

    #[test]
    fn a_resolved_alert_raised_again_needs_a_new_acknowledgement() {
        let resolved = OpsAlertEvent::OpsAlertResolved {
            summary: "1 of 100 failed".to_owned(),
            at: t(120),
        };
        let history = [
            raised(t(0)),
            acknowledged("asha@example.com", t(30)),
            resolved.clone(),
        ];
        let after_resolve = given::<OpsAlert>(history.clone())
            .when(raise(t(60)))
            .then([raised(t(60))])
            .expect("an alert");
        assert_eq!(
            (after_resolve.acknowledged_by(), after_resolve.state_name()),
            (None, "firing")
        );
        let mut again = history.to_vec();
        again.push(raised(t(300)));
        given::<OpsAlert>(again)
            .when(acknowledge("ravi@example.com", t(310)))
            .then([acknowledged("ravi@example.com", t(310))]);
    }

    #[test]
    fn kinds_round_trip_through_their_names_and_keys_start_with_them() {
        for kind in ALERT_KINDS {
            assert_eq!(AlertKind::parse(kind.as_str()), Some(kind));
            let key = kind.key(Some("x"));
            assert_eq!(key.split_once('.').map(|(k, _)| k), Some(kind.as_str()));
        }
        assert_eq!(AlertKind::parse("nope"), None);
        assert_eq!(AlertKind::RelayLag.key(None), "relay_lag");
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
