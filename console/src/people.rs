//! Who may use the console, and in which role: read from the people registry at every request,
//! so a role change, a removal or a revocation of all their sessions applies at once. The
//! emails of `ADMIN_EMAILS` are admins from the first start (the ledger knows them).

use chrono::{DateTime, Utc};
use lightspeed_domain::access::Role;
use lightspeed_domain::person::PersonEmail;
use lightspeed_services::Ledger;

/// The role of the person with `email` now, or none if they may not use the console.
pub async fn role_of(ledger: &Ledger, email: &str) -> Result<Option<Role>, String> {
    let Ok(email) = PersonEmail::parse(email) else {
        return Ok(None);
    };
    let access = ledger.person(&email).await.map_err(|e| e.to_string())?;
    Ok(access.map(|person| person.role))
}

/// The role of the person holding session `session_id` (started at `started_at`), or none if
/// they may not use the console any more or their sessions were revoked since.
pub async fn session_role(
    ledger: &Ledger,
    email: &str,
    session_id: &str,
    started_at: DateTime<Utc>,
) -> Result<Option<Role>, String> {
    let Ok(email) = PersonEmail::parse(email) else {
        return Ok(None);
    };
    let access = ledger.person(&email).await.map_err(|e| e.to_string())?;
    Ok(access
        .filter(|person| person.accepts_token(session_id, started_at))
        .map(|person| person.role))
}
