//! The people who run the business (`person-<email>` streams): who they are, their roles, and
//! the tokens and sessions of theirs that were revoked.
//!
//! The admin API and the console call [`Ledger::person`] on every request: it reads only what
//! the person's stream gained since this process last read it (one indexed query), so a role
//! lowered, a person removed or a token revoked on any replica holds from the next request on.
//! The emails of `ADMIN_EMAILS` are admins whatever the log says ([`Ledger::with_bootstrap_admins`]):
//! their role is changed by editing the setting, not through the registry.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lightspeed_domain::Decider;
use lightspeed_domain::access::Role;
use lightspeed_domain::person::{Person, PersonCommand, PersonEmail, PersonError};
use lightspeed_eventstore::{CommandContext, StreamId, lookups, stream_of};

use crate::error::ServiceError;
use crate::ledger::Ledger;

/// The event that opens a membership; the streams recording it are the people ever invited.
const PERSON_INVITED: &str = "PersonInvited";

/// A person as the admin API and the console see them: who, which role, and what of theirs
/// was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonAccess {
    /// Their email.
    pub email: PersonEmail,
    /// Their role now.
    pub role: Role,
    /// Whether they are an admin by `ADMIN_EMAILS` (the registry cannot change them).
    pub bootstrap_admin: bool,
    /// When they were invited (none for a bootstrap admin).
    pub since: Option<DateTime<Utc>>,
    stream: Person,
}

impl PersonAccess {
    /// Whether their token or session with this id, issued at `issued_at`, still holds.
    pub fn accepts_token(&self, token_id: &str, issued_at: DateTime<Utc>) -> bool {
        self.stream.accepts_token(token_id, issued_at)
    }

    /// Whether their role lets them make a change of this kind.
    pub fn permits(&self, action: lightspeed_domain::access::Action) -> bool {
        self.role.permits(action)
    }
}

impl Ledger {
    /// Counts `emails` (the `ADMIN_EMAILS` setting) as admins, whatever the registry says.
    pub fn with_bootstrap_admins(mut self, emails: impl IntoIterator<Item = PersonEmail>) -> Self {
        self.bootstrap_admins = Arc::new(emails.into_iter().collect());
        self
    }

    /// Whether `email` is an admin by the `ADMIN_EMAILS` setting.
    pub fn is_bootstrap_admin(&self, email: &PersonEmail) -> bool {
        self.bootstrap_admins.contains(email)
    }

    /// The person with this email and their role now, if they are one of the people (or a
    /// bootstrap admin), read from the log.
    pub async fn person(&self, email: &PersonEmail) -> Result<Option<PersonAccess>, ServiceError> {
        let stream = self.people.load(&person_stream(email)?).await?.state;
        Ok(self.access(email, stream))
    }

    /// Every person now, bootstrap admins first, then by email.
    pub async fn people(&self) -> Result<Vec<PersonAccess>, ServiceError> {
        let invited =
            lookups::streams_recording(self.store.pool(), Person::CATEGORY, PERSON_INVITED).await?;
        let streams: Vec<StreamId> = invited
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let loaded = self.people.load_many(&streams).await?;
        let mut people: Vec<PersonAccess> = loaded
            .into_iter()
            .filter_map(|loaded| {
                let email = loaded.state.membership()?.email.clone();
                (!self.is_bootstrap_admin(&email))
                    .then(|| self.access(&email, loaded.state))
                    .flatten()
            })
            .collect();
        for email in self.bootstrap_admins.iter() {
            let stream = self.people.load(&person_stream(email)?).await?.state;
            people.extend(self.access(email, stream));
        }
        people.sort_by(|a, b| (!a.bootstrap_admin, &a.email).cmp(&(!b.bootstrap_admin, &b.email)));
        Ok(people)
    }

    /// Makes `email` one of the people in `role` (nothing new if they already are, in it).
    pub async fn invite_person(
        &self,
        email: &PersonEmail,
        role: Role,
        context: &CommandContext,
    ) -> Result<PersonAccess, ServiceError> {
        let command = PersonCommand::Invite {
            email: email.clone(),
            role,
            at: self.now(),
        };
        let state = self.membership_change(email, &command, context).await?;
        self.access(email, state)
            .ok_or_else(|| PersonError::NotAPerson.into())
    }

    /// Gives a person another role (nothing new if they hold it).
    pub async fn change_person_role(
        &self,
        email: &PersonEmail,
        role: Role,
        context: &CommandContext,
    ) -> Result<PersonAccess, ServiceError> {
        let command = PersonCommand::ChangeRole {
            role,
            at: self.now(),
        };
        let state = self.membership_change(email, &command, context).await?;
        self.access(email, state)
            .ok_or_else(|| PersonError::NotAPerson.into())
    }

    /// Ends a person's access and revokes every token and session they hold.
    pub async fn remove_person(
        &self,
        email: &PersonEmail,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let command = PersonCommand::Remove { at: self.now() };
        self.membership_change(email, &command, context).await?;
        Ok(())
    }

    /// Revokes one token (or console session) of `email`, by its id, until it expires.
    pub async fn revoke_token(
        &self,
        email: &PersonEmail,
        token_id: &str,
        expires_at: DateTime<Utc>,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let command = PersonCommand::RevokeToken {
            token_id: token_id.to_owned(),
            expires_at,
            at: self.now(),
        };
        self.revocation(email, &command, context).await
    }

    /// Revokes every token and session issued to `email` until now.
    pub async fn revoke_all_tokens(
        &self,
        email: &PersonEmail,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        if self.person(email).await?.is_none() {
            return Err(PersonError::NotAPerson.into());
        }
        let command = PersonCommand::RevokeAllTokens { at: self.now() };
        self.revocation(email, &command, context).await
    }

    /// A change of membership (never of a bootstrap admin); the stream's state after it.
    async fn membership_change(
        &self,
        email: &PersonEmail,
        command: &PersonCommand,
        context: &CommandContext,
    ) -> Result<Person, ServiceError> {
        if self.is_bootstrap_admin(email) {
            return Err(ServiceError::BootstrapAdmin);
        }
        let executed = self
            .people
            .execute(&person_stream(email)?, command, context)
            .await?;
        Ok(executed.state)
    }

    async fn revocation(
        &self,
        email: &PersonEmail,
        command: &PersonCommand,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        self.people
            .execute(&person_stream(email)?, command, context)
            .await?;
        Ok(())
    }

    /// The access a person's stream gives: admin for a bootstrap admin, else their membership.
    fn access(&self, email: &PersonEmail, stream: Person) -> Option<PersonAccess> {
        if self.is_bootstrap_admin(email) {
            return Some(PersonAccess {
                email: email.clone(),
                role: Role::Admin,
                bootstrap_admin: true,
                since: None,
                stream,
            });
        }
        let membership = stream.membership()?.clone();
        Some(PersonAccess {
            email: membership.email,
            role: membership.role,
            bootstrap_admin: false,
            since: Some(membership.since),
            stream,
        })
    }
}

fn person_stream(email: &PersonEmail) -> Result<StreamId, ServiceError> {
    Ok(stream_of::<Person>(email.stream_key())?)
}
