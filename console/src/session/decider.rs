//! The console session aggregate: one stream per sign-in, `console_session-<id>`, from the
//! one-time link to the end of the session.
//!
//! Why the log: a sign-out or a revocation must hold on every replica at once, and it is a
//! decision about who may act worth keeping with its actor. Secrets never enter the log: the
//! link and the session cookie carry a random secret, the stream holds its SHA-256 digest.
//!
//! Rules: a link is redeemed once, before it expires, with the secret it was issued with; a
//! session ends once (signing out a session already ended decides nothing).

use chrono::{DateTime, Utc};
use lightspeed_domain::{Decider, DomainEvent};
use serde::{Deserialize, Serialize};

/// Where a session's stream stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SessionState {
    /// Nothing issued.
    #[default]
    Unknown,
    /// A sign-in link waits to be used.
    LinkIssued {
        /// Who it signs in.
        email: String,
        /// SHA-256 of the link's secret, hex.
        link_digest: String,
        /// When the link stops working.
        expires_at: DateTime<Utc>,
    },
    /// Signed in.
    Active {
        /// Who.
        email: String,
        /// SHA-256 of the cookie's secret, hex.
        secret_digest: String,
        /// When the session started (absolute expiry counts from it).
        started_at: DateTime<Utc>,
    },
    /// Signed out, revoked or never redeemed in time.
    Ended,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The person signed out.
    SignedOut,
    /// Someone who may manage people revoked it (the event's actor says who).
    Revoked,
}

/// What the console asks of a session stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand {
    /// Issue a one-time sign-in link.
    IssueLink {
        /// Who it signs in.
        email: String,
        /// SHA-256 of the link's secret, hex.
        link_digest: String,
        /// When the link stops working.
        expires_at: DateTime<Utc>,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Redeem the link and start the session.
    Start {
        /// SHA-256 of the secret the visitor presented, hex.
        link_digest: String,
        /// SHA-256 of the new session cookie's secret, hex.
        secret_digest: String,
        /// Now.
        at: DateTime<Utc>,
    },
    /// End the session.
    End {
        /// Why.
        reason: EndReason,
        /// Now.
        at: DateTime<Utc>,
    },
}

/// What a session stream records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SessionEvent {
    /// A one-time sign-in link was issued.
    SignInLinkIssued {
        /// Who it signs in.
        email: String,
        /// SHA-256 of the link's secret, hex.
        link_digest: String,
        /// When the link stops working.
        expires_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The link was used and the session started.
    ConsoleSessionStarted {
        /// SHA-256 of the session cookie's secret, hex.
        secret_digest: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The session ended.
    ConsoleSessionEnded {
        /// Why.
        reason: EndReason,
        /// When.
        at: DateTime<Utc>,
    },
}

impl SessionEvent {
    /// Every event type a session stream records.
    pub const EVENT_TYPES: &'static [&'static str] = &[
        "SignInLinkIssued",
        "ConsoleSessionStarted",
        "ConsoleSessionEnded",
    ];
}

impl DomainEvent for SessionEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SessionEvent::SignInLinkIssued { .. } => Self::EVENT_TYPES[0],
            SessionEvent::ConsoleSessionStarted { .. } => Self::EVENT_TYPES[1],
            SessionEvent::ConsoleSessionEnded { .. } => Self::EVENT_TYPES[2],
        }
    }
}

/// Why a session command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// A link was already issued on this stream.
    #[error("a sign-in link was already issued")]
    AlreadyIssued,
    /// No link waits (never issued, already used, or the session ended), or the secret differs.
    #[error("the sign-in link is not valid")]
    InvalidLink,
    /// The link's time is up.
    #[error("the sign-in link has expired")]
    LinkExpired,
}

/// The console session decider.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleSession;

impl Decider for ConsoleSession {
    const CATEGORY: &'static str = "console_session";
    type State = SessionState;
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;

    fn decide(
        state: &SessionState,
        command: &SessionCommand,
    ) -> Result<Vec<SessionEvent>, SessionError> {
        match command {
            SessionCommand::IssueLink {
                email,
                link_digest,
                expires_at,
                at,
            } => match state {
                SessionState::Unknown => Ok(vec![SessionEvent::SignInLinkIssued {
                    email: email.clone(),
                    link_digest: link_digest.clone(),
                    expires_at: *expires_at,
                    at: *at,
                }]),
                _ => Err(SessionError::AlreadyIssued),
            },
            SessionCommand::Start {
                link_digest,
                secret_digest,
                at,
            } => start(state, link_digest, secret_digest, *at),
            SessionCommand::End { reason, at } => Ok(match state {
                SessionState::Ended | SessionState::Unknown => vec![],
                _ => vec![SessionEvent::ConsoleSessionEnded {
                    reason: reason.clone(),
                    at: *at,
                }],
            }),
        }
    }

    fn evolve(state: SessionState, event: &SessionEvent) -> SessionState {
        match (state, event) {
            (
                _,
                SessionEvent::SignInLinkIssued {
                    email,
                    link_digest,
                    expires_at,
                    ..
                },
            ) => SessionState::LinkIssued {
                email: email.clone(),
                link_digest: link_digest.clone(),
                expires_at: *expires_at,
            },
            (
                SessionState::LinkIssued { email, .. },
                SessionEvent::ConsoleSessionStarted { secret_digest, at },
            ) => SessionState::Active {
                email,
                secret_digest: secret_digest.clone(),
                started_at: *at,
            },
            (state, SessionEvent::ConsoleSessionStarted { .. }) => state,
            (_, SessionEvent::ConsoleSessionEnded { .. }) => SessionState::Ended,
        }
    }
}

/// Redeems a waiting link. The digests compared are SHA-256 outputs of random secrets, so an
/// ordinary comparison tells a guesser nothing usable about the secret.
fn start(
    state: &SessionState,
    presented: &str,
    secret_digest: &str,
    at: DateTime<Utc>,
) -> Result<Vec<SessionEvent>, SessionError> {
    match state {
        SessionState::LinkIssued {
            link_digest,
            expires_at,
            ..
        } if link_digest == presented => {
            if at >= *expires_at {
                return Err(SessionError::LinkExpired);
            }
            Ok(vec![SessionEvent::ConsoleSessionStarted {
                secret_digest: secret_digest.to_owned(),
                at,
            }])
        }
        _ => Err(SessionError::InvalidLink),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 8, 10, minute, 0).unwrap()
    }

    fn fold(events: &[SessionEvent]) -> SessionState {
        events
            .iter()
            .fold(SessionState::default(), ConsoleSession::evolve)
    }

    fn issued() -> Vec<SessionEvent> {
        vec![SessionEvent::SignInLinkIssued {
            email: "ops@example.com".into(),
            link_digest: "aa".into(),
            expires_at: t(15),
            at: t(0),
        }]
    }

    fn start_with(digest: &str, at: DateTime<Utc>) -> SessionCommand {
        SessionCommand::Start {
            link_digest: digest.into(),
            secret_digest: "bb".into(),
            at,
        }
    }

    #[test]
    fn a_link_starts_one_session_once() {
        let mut events = issued();
        let started = ConsoleSession::decide(&fold(&events), &start_with("aa", t(1))).unwrap();
        assert_eq!(started.len(), 1);
        events.extend(started);
        assert!(matches!(fold(&events), SessionState::Active { .. }));
        let again = ConsoleSession::decide(&fold(&events), &start_with("aa", t(2)));
        assert_eq!(again, Err(SessionError::InvalidLink));
    }

    #[test]
    fn a_wrong_secret_or_a_late_visit_is_refused() {
        let state = fold(&issued());
        assert_eq!(
            ConsoleSession::decide(&state, &start_with("ab", t(1))),
            Err(SessionError::InvalidLink)
        );
        assert_eq!(
            ConsoleSession::decide(&state, &start_with("aa", t(15))),
            Err(SessionError::LinkExpired)
        );
    }

    #[test]
    fn a_session_ends_once_and_cannot_start_after() {
        let mut events = issued();
        let end = SessionCommand::End {
            reason: EndReason::Revoked,
            at: t(1),
        };
        events.extend(ConsoleSession::decide(&fold(&events), &end).unwrap());
        assert_eq!(fold(&events), SessionState::Ended);
        assert_eq!(ConsoleSession::decide(&fold(&events), &end), Ok(vec![]));
        assert_eq!(
            ConsoleSession::decide(&fold(&events), &start_with("aa", t(2))),
            Err(SessionError::InvalidLink)
        );
    }
}
