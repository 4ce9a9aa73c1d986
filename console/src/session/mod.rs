//! People's sign-in and sessions: one-time links, the session cookie, idle and absolute expiry,
//! sign-out and revocation. The log decides (see [`decider`]); the activity table adds
//! last-seen times ([`activity`]).

pub mod activity;
pub mod decider;

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use lightspeed_eventstore::{
    CommandContext, CommandError, CommandHandler, Metadata, PgEventStore, stream_of,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use decider::{ConsoleSession, EndReason, SessionCommand, SessionError, SessionState};

/// How long sessions and links last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// A session unused this long ends (default 30 minutes).
    pub idle: Duration,
    /// A session ends this long after it started, however busy (default 12 hours).
    pub absolute: Duration,
    /// A sign-in link works this long (default 15 minutes).
    pub link: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
            link: Duration::from_secs(15 * 60),
        }
    }
}

/// Why a sign-in or a session check failed. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum SessionFailure {
    /// The link or cookie is malformed, unknown, used, or its secret differs.
    #[error("not a valid sign-in")]
    Invalid,
    /// The link or session's time is up.
    #[error("expired")]
    Expired,
    /// The log or the activity table failed.
    #[error("session store: {0}")]
    Store(String),
}

/// A signed-in person, as one request sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The session.
    pub session_id: Uuid,
    /// Who.
    pub email: String,
    /// When the session started.
    pub started_at: DateTime<Utc>,
    /// The session's CSRF token (derived from the cookie's secret, so it needs no storage).
    pub csrf: String,
}

impl SignedIn {
    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// The console's sessions over the log and the activity table.
#[derive(Clone)]
pub struct Sessions {
    handler: CommandHandler<ConsoleSession, PgEventStore>,
    settings: SessionSettings,
}

impl Sessions {
    /// Sessions kept in `store`'s log, read on `store`'s clock.
    pub fn new(store: PgEventStore, settings: SessionSettings) -> Self {
        Self {
            handler: CommandHandler::new(store),
            settings,
        }
    }

    /// How long sessions and links last.
    pub fn settings(&self) -> SessionSettings {
        self.settings
    }

    fn now(&self) -> DateTime<Utc> {
        self.handler.store().clock().now()
    }

    /// Issues a one-time sign-in link for `email`, recorded with `actor`; answers the token the
    /// link carries (`<session id>.<secret>`), never stored in clear.
    pub async fn issue_link(&self, email: &str, actor: &str) -> Result<String, SessionFailure> {
        let session_id = Uuid::now_v7();
        let secret = random_secret();
        let now = self.now();
        let command = SessionCommand::IssueLink {
            email: email.to_owned(),
            link_digest: digest(&secret),
            expires_at: now + self.settings.link,
            at: now,
        };
        self.execute(session_id, &command, actor).await?;
        Ok(format!("{session_id}.{secret}"))
    }

    /// Redeems a link's token once; answers the new session's cookie value and who it is.
    pub async fn redeem(&self, token: &str) -> Result<(String, String), SessionFailure> {
        let (session_id, secret) = split_token(token)?;
        let cookie_secret = random_secret();
        let now = self.now();
        let command = SessionCommand::Start {
            link_digest: digest(secret),
            secret_digest: digest(&cookie_secret),
            at: now,
        };
        let email = self
            .execute(session_id, &command, "console:sign-in")
            .await?;
        activity::started(self.pool(), session_id, &email, now)
            .await
            .map_err(store_failure)?;
        Ok((format!("{session_id}.{cookie_secret}"), email))
    }

    /// Checks a session cookie: the session must be active in the log, its secret must match,
    /// and neither its idle nor its absolute time may be up. Marks it seen.
    pub async fn authenticate(&self, cookie: &str) -> Result<SignedIn, SessionFailure> {
        self.verify(cookie, true).await
    }

    /// Checks a session cookie as [`Sessions::authenticate`] does without marking it seen: an
    /// open live stream rechecks its session this way, so a page left open does not keep an
    /// idle session alive.
    pub async fn recheck(&self, cookie: &str) -> Result<SignedIn, SessionFailure> {
        self.verify(cookie, false).await
    }

    async fn verify(&self, cookie: &str, mark_seen: bool) -> Result<SignedIn, SessionFailure> {
        let (session_id, secret) = split_token(cookie)?;
        let stream =
            stream_of::<ConsoleSession>(session_id).map_err(|_| SessionFailure::Invalid)?;
        let loaded = self.handler.load(&stream).await.map_err(store_failure)?;
        let SessionState::Active {
            email,
            secret_digest,
            started_at,
        } = loaded.state
        else {
            return Err(SessionFailure::Invalid);
        };
        if !bool::from(secret_digest.as_bytes().ct_eq(digest(secret).as_bytes())) {
            return Err(SessionFailure::Invalid);
        }
        let now = self.now();
        self.check_times(session_id, started_at, now).await?;
        if mark_seen {
            activity::seen(self.pool(), session_id, now)
                .await
                .map_err(store_failure)?;
        }
        Ok(SignedIn {
            session_id,
            email,
            started_at,
            csrf: csrf_token(secret),
        })
    }

    async fn check_times(
        &self,
        session_id: Uuid,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), SessionFailure> {
        let last_seen = activity::last_seen(self.pool(), session_id)
            .await
            .map_err(store_failure)?
            .ok_or(SessionFailure::Expired)?;
        let absolute_over = now >= started_at + self.settings.absolute;
        let idle_over = now >= last_seen + self.settings.idle;
        if absolute_over || idle_over {
            return Err(SessionFailure::Expired);
        }
        Ok(())
    }

    /// Ends a session: `SignedOut` by its owner or `Revoked` by `actor`.
    pub async fn end(
        &self,
        session_id: Uuid,
        reason: EndReason,
        actor: &str,
    ) -> Result<(), SessionFailure> {
        let command = SessionCommand::End {
            reason,
            at: self.now(),
        };
        self.execute(session_id, &command, actor).await?;
        activity::ended(self.pool(), session_id, self.now())
            .await
            .map_err(store_failure)
    }

    /// Sessions open now (not ended, not idle past their time), most recently seen first.
    pub async fn open(&self) -> Result<Vec<activity::SessionRow>, SessionFailure> {
        let idle_since = self.now() - self.settings.idle;
        let rows = activity::open(self.pool(), idle_since)
            .await
            .map_err(store_failure)?;
        let absolute = chrono::Duration::from_std(self.settings.absolute).unwrap_or_default();
        let now = self.now();
        Ok(rows
            .into_iter()
            .filter(|row| row.started_at + absolute > now)
            .collect())
    }

    fn pool(&self) -> &sqlx::PgPool {
        self.handler.store().pool()
    }

    /// Runs a command on the session's stream; answers the session's email after it.
    async fn execute(
        &self,
        session_id: Uuid,
        command: &SessionCommand,
        actor: &str,
    ) -> Result<String, SessionFailure> {
        let stream =
            stream_of::<ConsoleSession>(session_id).map_err(|_| SessionFailure::Invalid)?;
        let context = CommandContext {
            command_id: None,
            metadata: Metadata {
                actor: Some(actor.to_owned()),
                ..Metadata::default()
            },
        };
        let executed = self
            .handler
            .execute(&stream, command, &context)
            .await
            .map_err(|e| match e {
                CommandError::Rejected(SessionError::LinkExpired) => SessionFailure::Expired,
                CommandError::Rejected(_) => SessionFailure::Invalid,
                other => store_failure(other),
            })?;
        Ok(match executed.state {
            SessionState::LinkIssued { email, .. } | SessionState::Active { email, .. } => email,
            SessionState::Unknown | SessionState::Ended => String::new(),
        })
    }
}

fn store_failure(error: impl std::fmt::Display) -> SessionFailure {
    SessionFailure::Store(error.to_string())
}

/// 32 random bytes, hex.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of a secret, hex: what the log keeps instead of the secret.
fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of the session whose cookie secret is `secret`.
fn csrf_token(secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"console csrf");
    hex::encode(mac.finalize().into_bytes())
}

/// `<uuid>.<64 hex>` into its parts.
fn split_token(token: &str) -> Result<(Uuid, &str), SessionFailure> {
    let (id, secret) = token.split_once('.').ok_or(SessionFailure::Invalid)?;
    let id = id.parse().map_err(|_| SessionFailure::Invalid)?;
    let well_formed = secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Err(SessionFailure::Invalid);
    }
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_only_when_well_formed() {
        let secret = "a".repeat(64);
        let id = Uuid::now_v7();
        assert!(split_token(&format!("{id}.{secret}")).is_ok());
        assert!(split_token(&format!("{id}.{}", "a".repeat(63))).is_err());
        assert!(split_token(&format!("nope.{secret}")).is_err());
        assert!(split_token("").is_err());
    }

    #[test]
    fn the_csrf_token_depends_on_the_session_secret() {
        assert_ne!(csrf_token("one"), csrf_token("two"));
        let signed_in = SignedIn {
            session_id: Uuid::now_v7(),
            email: "a@example.com".into(),
            started_at: Utc::now(),
            csrf: csrf_token("one"),
        };
        assert!(signed_in.csrf_matches(&csrf_token("one")));
        assert!(!signed_in.csrf_matches(&csrf_token("two")));
        assert!(!signed_in.csrf_matches(""));
    }
}
