//! Person: someone who runs the business through the admin API or the console, their role, and
//! the tokens and sessions of theirs that were revoked.
//!
//! Stream `person-<email key>` ([`PersonEmail::stream_key`]): one per normalised email, so two
//! admins inviting the same person race on one stream and one of them wins. The people of
//! `ADMIN_EMAILS` are admins without a stream of their own (bootstrap admins, so a fresh install
//! has someone to invite the others); their stream holds only their revocations.
//!
//! Rules: inviting someone already present with the same role, or changing a role to the one
//! held, decides nothing; inviting someone present with another role is refused (change the role
//! instead). Removing a person revokes every token and session they hold, so a person invited
//! again starts with none. Revoking a token that is revoked or already expired decides nothing.
//!
//! Revoked tokens are kept until they expire (at most 30 days), so the state stays small.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::decider::Decider;
use crate::validation::{FieldError, Problem};

/// The longest email accepted, in characters (so its stream id stays within 200 bytes).
pub const MAX_EMAIL_CHARS: usize = 120;
/// The longest local part (before the `@`) accepted, in characters, as SMTP allows.
pub const MAX_LOCAL_PART_CHARS: usize = 64;
/// The longest token or session id accepted, in characters.
pub const MAX_TOKEN_ID_CHARS: usize = 64;

/// A person's email, trimmed and lowercased: the one key people are known by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonEmail(String);

impl PersonEmail {
    /// Normalises and checks an email: one `@`, a local part of letters, digits and `._+-`, a
    /// domain of letters, digits, `.` and `-` with at least one dot.
    pub fn parse(email: &str) -> Result<Self, FieldError> {
        let email = email.trim().to_ascii_lowercase();
        if email.is_empty() {
            return Err(Problem::Empty.at("email"));
        }
        if email.chars().count() > MAX_EMAIL_CHARS {
            return Err(Problem::TooLong {
                max: MAX_EMAIL_CHARS,
            }
            .at("email"));
        }
        let local_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-');
        let domain_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-');
        let valid = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local.len() <= MAX_LOCAL_PART_CHARS
                && local.chars().all(local_char)
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain.chars().all(domain_char)
        });
        if !valid {
            return Err(Problem::BadCharacters {
                allowed: "an email address: letters, digits, . _ + - and one @",
            }
            .at("email"));
        }
        Ok(Self(email))
    }

    /// The email as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the person's stream, readable in the log: stream ids allow `[A-Za-z0-9_.:-]`,
    /// so `+` (only ever in the local part) becomes `::` and the `@` becomes `:`; the domain
    /// holds no `:`, so the last `:` is the `@` and no two emails share a key.
    pub fn stream_key(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        format!("{}:{domain}", local.replace('+', "::"))
    }
}

impl std::fmt::Display for PersonEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PersonEmail {
    type Err = FieldError;
    fn from_str(text: &str) -> Result<Self, FieldError> {
        Self::parse(text)
    }
}

impl TryFrom<String> for PersonEmail {
    type Error = FieldError;
    fn try_from(text: String) -> Result<Self, FieldError> {
        Self::parse(&text)
    }
}

impl From<PersonEmail> for String {
    fn from(email: PersonEmail) -> String {
        email.0
    }
}

/// Someone's place among the people: who, in which role, since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Their email.
    pub email: PersonEmail,
    /// Their role now.
    pub role: Role,
    /// When they were invited.
    pub since: DateTime<Utc>,
}

/// A person's stream, folded. A new stream is nobody, with nothing revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    membership: Option<Membership>,
    /// Revoked token and session ids, with when each would have expired anyway.
    revoked: BTreeMap<String, DateTime<Utc>>,
    /// Every token and session issued up to this instant is revoked.
    revoked_up_to: Option<DateTime<Utc>>,
}

impl Person {
    /// Who they are and their role, while they are one of the people.
    pub fn membership(&self) -> Option<&Membership> {
        self.membership.as_ref()
    }

    /// Their role, while they are one of the people.
    pub fn role(&self) -> Option<Role> {
        self.membership.as_ref().map(|m| m.role)
    }

    /// Whether a token or session of theirs with this id, issued at `issued_at`, still holds:
    /// not revoked by id, and issued after their last "revoke everything" (a token issued in
    /// the same second counts as before: tokens carry whole seconds).
    pub fn accepts_token(&self, token_id: &str, issued_at: DateTime<Utc>) -> bool {
        !self.revoked.contains_key(token_id)
            && self
                .revoked_up_to
                .is_none_or(|up_to| issued_at.timestamp() > up_to.timestamp())
    }
}

/// What can be asked of a person's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonCommand {
    /// Makes someone one of the people, in a role.
    Invite {
        /// Their email.
        email: PersonEmail,
        /// Their role.
        role: Role,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Gives a person another role.
    ChangeRole {
        /// The new role.
        role: Role,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Ends a person's access, revoking every token and session they hold.
    Remove {
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Revokes one token or console session.
    RevokeToken {
        /// The token's `jti` (or the session's id).
        token_id: String,
        /// When it expires anyway; it is forgotten after.
        expires_at: DateTime<Utc>,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Revokes every token and session issued to the person until now.
    RevokeAllTokens {
        /// When it is decided.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What a person's stream records.
    pub enum PersonEvent {
        /// Someone became one of the people.
        PersonInvited {
            /// Their email.
            email: PersonEmail,
            /// Their role.
            role: Role,
            /// When.
            at: DateTime<Utc>,
        },
        /// A person's role changed.
        PersonRoleChanged {
            /// The role before.
            from: Role,
            /// The role after.
            to: Role,
            /// When.
            at: DateTime<Utc>,
        },
        /// A person's access ended, with every token and session they held.
        PersonRemoved {
            /// The role they had.
            role: Role,
            /// When.
            at: DateTime<Utc>,
        },
        /// One token or session was revoked.
        PersonTokenRevoked {
            /// The token's `jti` (or the session's id).
            token_id: String,
            /// When it would have expired.
            expires_at: DateTime<Utc>,
            /// When.
            at: DateTime<Utc>,
        },
        /// Every token and session issued to the person until `at` was revoked.
        PersonTokensRevoked {
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why a person command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonError {
    /// Nobody with this email is one of the people.
    #[error("no person with this email")]
    NotAPerson,
    /// They are one of the people already, in another role.
    #[error("already invited as {role}; change the role instead")]
    AlreadyInvited {
        /// The role they hold.
        role: Role,
    },
    /// A field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

impl Decider for Person {
    const CATEGORY: &'static str = "person";
    type State = Person;
    type Command = PersonCommand;
    type Event = PersonEvent;
    type Error = PersonError;

    fn decide(state: &Person, command: &PersonCommand) -> Result<Vec<PersonEvent>, PersonError> {
        match command {
            PersonCommand::Invite { email, role, at } => invite(state, email, *role, *at),
            PersonCommand::ChangeRole { role, at } => change_role(state, *role, *at),
            PersonCommand::Remove { at } => {
                let role = state.role().ok_or(PersonError::NotAPerson)?;
                Ok(vec![PersonEvent::PersonRemoved { role, at: *at }])
            }
            PersonCommand::RevokeToken {
                token_id,
                expires_at,
                at,
            } => revoke_token(state, token_id, *expires_at, *at),
            PersonCommand::RevokeAllTokens { at } => {
                Ok(vec![PersonEvent::PersonTokensRevoked { at: *at }])
            }
        }
    }

    fn evolve(mut state: Person, event: &PersonEvent) -> Person {
        match event {
            PersonEvent::PersonInvited { email, role, at } => {
                state.membership = Some(Membership {
                    email: email.clone(),
                    role: *role,
                    since: *at,
                });
            }
            PersonEvent::PersonRoleChanged { to, .. } => {
                if let Some(membership) = state.membership.as_mut() {
                    membership.role = *to;
                }
            }
            PersonEvent::PersonRemoved { at, .. } => {
                state.membership = None;
                state.revoked_up_to = Some(*at);
            }
            PersonEvent::PersonTokenRevoked {
                token_id,
                expires_at,
                ..
            } => {
                state.revoked.insert(token_id.clone(), *expires_at);
            }
            PersonEvent::PersonTokensRevoked { at } => state.revoked_up_to = Some(*at),
        }
        // Tokens past their expiry are refused anyway: forget their revocations.
        let now = event.at();
        state.revoked.retain(|_, expires_at| *expires_at > now);
        state
    }
}

fn invite(
    state: &Person,
    email: &PersonEmail,
    role: Role,
    at: DateTime<Utc>,
) -> Result<Vec<PersonEvent>, PersonError> {
    match state.role() {
        Some(held) if held == role => Ok(vec![]),
        Some(held) => Err(PersonError::AlreadyInvited { role: held }),
        None => Ok(vec![PersonEvent::PersonInvited {
            email: email.clone(),
            role,
            at,
        }]),
    }
}

fn change_role(
    state: &Person,
    role: Role,
    at: DateTime<Utc>,
) -> Result<Vec<PersonEvent>, PersonError> {
    match state.role() {
        None => Err(PersonError::NotAPerson),
        Some(held) if held == role => Ok(vec![]),
        Some(held) => Ok(vec![PersonEvent::PersonRoleChanged {
            from: held,
            to: role,
            at,
        }]),
    }
}

fn revoke_token(
    state: &Person,
    token_id: &str,
    expires_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<Vec<PersonEvent>, PersonError> {
    crate::validation::token(
        "token_id",
        token_id,
        MAX_TOKEN_ID_CHARS,
        |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'),
        "letters, digits, - and _",
    )?;
    if expires_at <= at || state.revoked.contains_key(token_id) {
        return Ok(vec![]);
    }
    Ok(vec![PersonEvent::PersonTokenRevoked {
        token_id: token_id.to_owned(),
        expires_at,
        at,
    }])
}

#[cfg(test)]
mod tests;
