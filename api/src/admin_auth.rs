//! Admin authentication: bearer JWTs signed with HS256 under `ADMIN_JWT_SECRET`, each naming a
//! person (`sub`), a role and a token id (`jti`). The people registry in the log decides at
//! every request whether the person may still come in ([`admit`]): one of the people or on
//! `ADMIN_EMAILS`, the token not revoked, and limited to what both the person's role now and
//! the token's role allow.
//!
//! Expiry is checked against the ledger's clock (the one every decision reads), so it moves with
//! the clock in tests. Merchant signatures never open admin routes (they carry no bearer token),
//! and admin tokens never open merchant routes (those need a client key and an HMAC signature).
//!
//! Every admin command carries `admin:<email>` as the actor of the events it appends, so the
//! audit log is a projection of the log and needs no bookkeeping of its own.

use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::access::{Action, Role};
use lightspeed_domain::person::{MAX_TOKEN_ID_CHARS, PersonEmail};
use lightspeed_eventstore::{CommandContext, Metadata};
use lightspeed_services::Ledger;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The setting the signing secret comes from (`--admin-jwt-secret`).
pub const ADMIN_JWT_SECRET_ENV: &str = "ADMIN_JWT_SECRET";
/// The setting the allow-list comes from (`--admin-emails`, comma-separated emails).
pub const ADMIN_EMAILS_ENV: &str = "ADMIN_EMAILS";
/// The shortest signing secret accepted, in bytes (HS256 wants at least its output size).
pub const MIN_SECRET_BYTES: usize = 32;
/// The longest lifetime a minted token may have: 30 days.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// The issuer every token names, so a token minted for another system is refused.
const ISSUER: &str = "lightspeed";

/// Why admin authentication could not be configured or a token minted. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminAuthError {
    /// The signing secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("{ADMIN_JWT_SECRET_ENV} must be at least {MIN_SECRET_BYTES} bytes")]
    SecretTooShort,
    /// The allow-list is empty, so nobody could use the admin API.
    #[error("{ADMIN_EMAILS_ENV} names no email")]
    NoAdmins,
    /// Not an email address.
    #[error("{0:?} is not an email address")]
    BadEmail(String),
    /// A lifetime of zero or over [`MAX_TOKEN_TTL`], or one that cannot be read.
    #[error("token lifetime must be between 1 second and 30 days (e.g. 8h, 90m, 7d)")]
    BadTtl,
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Signing(String),
}

/// How admin tokens are checked.
#[derive(Clone)]
pub struct AdminAuthConfig {
    secret: Secret,
    allowed_emails: Vec<PersonEmail>,
}

impl std::fmt::Debug for AdminAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuthConfig")
            .field("allowed_emails", &self.allowed_emails)
            .finish_non_exhaustive()
    }
}

impl AdminAuthConfig {
    /// Checks with `secret` and lets in the emails of `allowed_emails` (case-insensitive).
    pub fn new(
        secret: impl Into<Secret>,
        allowed_emails: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Self, AdminAuthError> {
        let secret = secret.into();
        if secret.expose().len() < MIN_SECRET_BYTES {
            return Err(AdminAuthError::SecretTooShort);
        }
        let allowed_emails = allowed_emails
            .into_iter()
            .map(|email| normalise_email(email.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if allowed_emails.is_empty() {
            return Err(AdminAuthError::NoAdmins);
        }
        Ok(Self {
            secret,
            allowed_emails,
        })
    }

    /// Whether `email` is on the allow-list.
    pub fn allows(&self, email: &str) -> bool {
        normalise_email(email).is_ok_and(|email| self.allowed_emails.contains(&email))
    }

    /// The emails of the allow-list: admins whatever the people registry says.
    pub fn bootstrap_admins(&self) -> &[PersonEmail] {
        &self.allowed_emails
    }

    /// Checks a bearer token at `now`: signature, issuer, expiry, a known role and a token id.
    /// Whether its person may still use it is [`admit`]'s question, asked of the log.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AdminToken, ApiError> {
        let token = self.decode(token)?;
        if token.expires_at <= now {
            return Err(ApiError::AdminTokenExpired);
        }
        Ok(token)
    }

    /// What a token signed with our secret says, expired or not (revoking an expired token
    /// is harmless), or `401 ADMIN_TOKEN_INVALID`; `403 ADMIN_FORBIDDEN` for an unknown role.
    pub fn decode(&self, token: &str) -> Result<AdminToken, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the ledger's clock, not the system's.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "jti"]);
        validation.set_issuer(&[ISSUER]);
        let claims = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(self.secret.expose()),
            &validation,
        )
        .map_err(|_| ApiError::AdminTokenInvalid)?
        .claims;
        let role = claims.role.parse::<Role>().map_err(|_| {
            ApiError::AdminForbidden(
                "the token's role is not one of admin, ops, finance or auditor",
            )
        })?;
        let instant =
            |secs: i64| DateTime::from_timestamp(secs, 0).ok_or(ApiError::AdminTokenInvalid);
        let valid_id = !claims.jti.is_empty()
            && claims.jti.len() <= MAX_TOKEN_ID_CHARS
            && claims
                .jti
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if !valid_id {
            return Err(ApiError::AdminTokenInvalid);
        }
        Ok(AdminToken {
            email: PersonEmail::parse(&claims.sub).map_err(|_| ApiError::AdminTokenInvalid)?,
            role,
            token_id: claims.jti,
            issued_at: instant(claims.iat)?,
            expires_at: instant(claims.exp)?,
        })
    }
}

/// The token of an `Authorization: Bearer` header: `401 ADMIN_TOKEN_MISSING` without the
/// header, `401 ADMIN_TOKEN_INVALID` when it is not a bearer token.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(ApiError::AdminTokenMissing)?;
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::AdminTokenInvalid)
}

/// What a valid admin token says, before the people registry is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// Whose it is.
    pub email: PersonEmail,
    /// The role it was minted for.
    pub role: Role,
    /// Its id (`jti`), by which it is revoked.
    pub token_id: String,
    /// When it was minted (whole seconds).
    pub issued_at: DateTime<Utc>,
    /// When it expires (whole seconds).
    pub expires_at: DateTime<Utc>,
}

/// Lets a verified token in, asking the log: its email must be one of the people (or on
/// `ADMIN_EMAILS`), the token not revoked, and the request is limited to what both the
/// person's role now and the token's role allow. Read on every request, so a removal, a
/// lowered role or a revocation appended on any replica holds from the next request on.
pub async fn admit(ledger: &Ledger, token: &AdminToken) -> Result<AdminUser, ApiError> {
    let person = ledger
        .person(&token.email)
        .await
        .map_err(|e| ApiError::Internal(format!("people registry: {e}")))?
        .ok_or(ApiError::AdminForbidden(
            "the token's email is not one of the people (nor on the admin allow-list)",
        ))?;
    if !person.accepts_token(&token.token_id, token.issued_at) {
        return Err(ApiError::AdminTokenRevoked);
    }
    Ok(AdminUser {
        email: person.email.to_string(),
        role: person.role,
        token_role: token.role,
    })
}

/// The claims of an admin token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    /// The person's email.
    sub: String,
    /// The role it was minted for: `admin`, `ops`, `finance` or `auditor`.
    role: String,
    /// Always [`ISSUER`].
    iss: String,
    /// Issued at, unix seconds.
    iat: i64,
    /// Expires at, unix seconds.
    exp: i64,
    /// The token's id, by which it is revoked.
    jti: String,
}

/// Mints an admin token for `email` in `role`, valid for `ttl` from now (what
/// `lightspeed admin token` prints, after checking the email is one of the people). The
/// server checks it again on every use.
pub fn mint_token(
    secret: &[u8],
    email: &str,
    role: Role,
    ttl: Duration,
) -> Result<String, AdminAuthError> {
    mint_role_token_at(secret, email, role, ttl, Utc::now())
}

/// Mints an admin token in role `admin` as of `now` (tests move the clock).
pub fn mint_token_at(
    secret: &[u8],
    email: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<String, AdminAuthError> {
    mint_role_token_at(secret, email, Role::Admin, ttl, now)
}

/// Mints an admin token in `role` as of `now`, with a fresh token id.
pub fn mint_role_token_at(
    secret: &[u8],
    email: &str,
    role: Role,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<String, AdminAuthError> {
    mint(secret, email, role.as_str(), ttl, now)
}

fn mint(
    secret: &[u8],
    email: &str,
    role: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<String, AdminAuthError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(AdminAuthError::SecretTooShort);
    }
    if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
        return Err(AdminAuthError::BadTtl);
    }
    let ttl_secs = i64::try_from(ttl.as_secs()).map_err(|_| AdminAuthError::BadTtl)?;
    let claims = Claims {
        sub: normalise_email(email)?.to_string(),
        role: role.to_owned(),
        iss: ISSUER.to_owned(),
        iat: now.timestamp(),
        exp: now.timestamp().saturating_add(ttl_secs),
        jti: uuid::Uuid::now_v7().to_string(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| AdminAuthError::Signing(e.to_string()))
}

/// Reads a lifetime such as `8h`, `90m`, `3600s`, `7d` (or plain seconds).
pub fn parse_ttl(text: &str) -> Result<Duration, AdminAuthError> {
    let text = text.trim();
    let (number, unit_secs) = match text.char_indices().last() {
        Some((at, 's')) => (&text[..at], 1),
        Some((at, 'm')) => (&text[..at], 60),
        Some((at, 'h')) => (&text[..at], 3_600),
        Some((at, 'd')) => (&text[..at], 86_400),
        _ => (text, 1),
    };
    let secs = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_secs))
        .ok_or(AdminAuthError::BadTtl)?;
    let ttl = Duration::from_secs(secs);
    if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
        return Err(AdminAuthError::BadTtl);
    }
    Ok(ttl)
}

fn normalise_email(email: &str) -> Result<PersonEmail, AdminAuthError> {
    PersonEmail::parse(email)
        .map_err(|_| AdminAuthError::BadEmail(email.trim().chars().take(64).collect()))
}

/// An authenticated person of the admin API: who, their role now, and the role their token
/// was minted for. A request may make a change only if both roles allow it, so a person whose
/// role was lowered is limited at once, and an admin may hold a narrower token for a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser {
    /// The person's email, lowercased.
    pub email: String,
    /// The person's role now, from the people registry (admin for `ADMIN_EMAILS`).
    pub role: Role,
    /// The role the token names (the person's role, for a console session).
    pub token_role: Role,
}

impl AdminUser {
    /// A request of `person` in their own role (a console session).
    pub fn person(person: &lightspeed_services::PersonAccess) -> Self {
        Self {
            email: person.email.to_string(),
            role: person.role,
            token_role: person.role,
        }
    }

    /// Whether this request may make a change of this kind.
    pub fn permits(&self, action: Action) -> bool {
        self.role.permits(action) && self.token_role.permits(action)
    }

    /// `403 ROLE_FORBIDDEN` unless this request may make a change of this kind.
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if self.permits(action) {
            return Ok(());
        }
        let role = if self.role.permits(action) {
            self.token_role
        } else {
            self.role
        };
        Err(ApiError::RoleForbidden { role, action })
    }

    /// `403 ADMIN_FORBIDDEN` unless both the person and the token are admins (a change no
    /// role table names).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin && self.token_role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::AdminForbidden("only admins may make this change"))
        }
    }

    /// The actor recorded in event metadata: `admin:<email>`.
    pub fn actor(&self) -> String {
        format!(
            "{}{}",
            lightspeed_projections::audit_log::ADMIN_ACTOR_PREFIX,
            self.email
        )
    }

    /// The context of a command this admin issues in a request with `headers`.
    pub fn context(&self, headers: &HeaderMap) -> CommandContext {
        CommandContext {
            command_id: None,
            metadata: Metadata {
                correlation_id: Some(uuid::Uuid::now_v7()),
                causation_id: None,
                actor: Some(self.actor()),
                request_id: headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn config() -> AdminAuthConfig {
        AdminAuthConfig::new(
            String::from_utf8(SECRET.to_vec()).expect("utf-8"),
            ["Ops@Example.com"],
        )
        .expect("config")
    }

    #[test]
    fn a_minted_token_holds_until_it_expires_with_its_role_and_an_id() {
        let now = Utc::now();
        let hour = Duration::from_secs(3600);
        let token =
            mint_role_token_at(SECRET, "Ops@Example.com", Role::Finance, hour, now).expect("token");
        let verified = config().verify(&token, now).expect("valid");
        assert_eq!(verified.email.as_str(), "ops@example.com");
        assert_eq!(verified.role, Role::Finance);
        assert_eq!(verified.issued_at.timestamp(), now.timestamp());
        let again = mint_token_at(SECRET, "ops@example.com", hour, now).expect("token");
        let other = config().verify(&again, now).expect("valid");
        assert_eq!(other.role, Role::Admin);
        assert_ne!(
            other.token_id, verified.token_id,
            "every token has its own id"
        );
        let later = now + chrono::TimeDelta::seconds(3600);
        assert!(matches!(
            config().verify(&token, later),
            Err(ApiError::AdminTokenExpired)
        ));
        assert_eq!(
            config().decode(&token).ok(),
            Some(verified),
            "decodes when expired"
        );
    }

    #[test]
    fn wrong_secret_unknown_role_or_missing_id_is_refused() {
        let now = Utc::now();
        let hour = Duration::from_secs(3600);
        let other = mint_token_at(
            b"another-secret-of-32-bytes-long!!",
            "ops@example.com",
            hour,
            now,
        )
        .expect("token");
        assert!(matches!(
            config().verify(&other, now),
            Err(ApiError::AdminTokenInvalid)
        ));
        let viewer = mint(SECRET, "ops@example.com", "viewer", hour, now).expect("token");
        assert!(matches!(
            config().verify(&viewer, now),
            Err(ApiError::AdminForbidden(_))
        ));
        let without_id = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({ "sub": "ops@example.com", "role": "admin", "iss": ISSUER, "iat": now.timestamp(), "exp": now.timestamp() + 60 }),
            &EncodingKey::from_secret(SECRET),
        )
        .expect("token");
        assert!(matches!(
            config().verify(&without_id, now),
            Err(ApiError::AdminTokenInvalid)
        ));
        assert!(matches!(
            config().verify("not.a.jwt", now),
            Err(ApiError::AdminTokenInvalid)
        ));
    }

    #[test]
    fn a_request_may_do_what_both_the_person_and_the_token_allow() {
        let user = |role, token_role| AdminUser {
            email: "ops@example.com".into(),
            role,
            token_role,
        };
        let narrowed = user(Role::Admin, Role::Auditor);
        assert!(narrowed.permits(Action::ExportAudit));
        assert!(matches!(
            narrowed.require(Action::ManageGateways),
            Err(ApiError::RoleForbidden {
                role: Role::Auditor,
                ..
            })
        ));
        let lowered = user(Role::Ops, Role::Admin);
        assert!(lowered.permits(Action::ManageGateways));
        assert!(matches!(
            lowered.require(Action::ManageKeys),
            Err(ApiError::RoleForbidden {
                role: Role::Ops,
                ..
            })
        ));
        assert!(!user(Role::Finance, Role::Ops).permits(Action::ManageGateways));
        assert!(!user(Role::Finance, Role::Ops).permits(Action::MovePayouts));
    }

    #[test]
    fn configuration_and_lifetimes_are_checked() {
        assert_eq!(
            AdminAuthConfig::new("short", ["a@b.c"]).err(),
            Some(AdminAuthError::SecretTooShort)
        );
        assert_eq!(
            AdminAuthConfig::new(
                String::from_utf8(SECRET.to_vec()).expect("utf-8"),
                Vec::<String>::new()
            )
            .err(),
            Some(AdminAuthError::NoAdmins)
        );
        assert_eq!(parse_ttl("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_ttl("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_ttl("0h"), Err(AdminAuthError::BadTtl));
        assert_eq!(parse_ttl("31d"), Err(AdminAuthError::BadTtl));
        assert_eq!(parse_ttl("soon"), Err(AdminAuthError::BadTtl));
        let debug = format!("{:?}", config());
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
    }
}
