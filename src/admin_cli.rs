//! `lightspeed admin token` and `lightspeed admin revoke-token`: minting a token for one of the
//! people, and revoking tokens in the log, from the command line.

use std::sync::Arc;

use anyhow::Context as _;
use lightspeed_api::admin_auth::{self, AdminAuthConfig};
use lightspeed_domain::access::Role;
use lightspeed_domain::person::PersonEmail;
use lightspeed_eventstore::{CommandContext, Metadata, PgEventStore};
use lightspeed_services::Ledger;

use crate::config::{AdminAuth, Infra};

/// The actor of what the command line records: the audit log shows it as `cli`.
const CLI_ACTOR: &str = "admin:cli";

/// A token for `email` in `role`, valid for `ttl`, once the email is found to be on
/// `ADMIN_EMAILS` or one of the people (which needs the database).
pub async fn token(
    infra: &Infra,
    admin: &AdminAuth,
    email: &str,
    role: &str,
    ttl: &str,
) -> anyhow::Result<String> {
    let config = config(admin)?;
    let role: Role = role.parse()?;
    let ttl = admin_auth::parse_ttl(ttl)?;
    let person = PersonEmail::parse(email).map_err(|e| anyhow::anyhow!("{email:?}: {e}"))?;
    if !config.allows(person.as_str()) {
        let ledger = ledger(infra, &config).await?;
        let known = ledger.person(&person).await?;
        anyhow::ensure!(
            known.is_some(),
            "{person} is not on ADMIN_EMAILS nor one of the people; the server would refuse its token (invite them with POST /admin/people first)"
        );
    }
    let secret = admin.admin_jwt_secret.as_deref().unwrap_or_default();
    Ok(admin_auth::mint_token(
        secret.as_bytes(),
        person.as_str(),
        role,
        ttl,
    )?)
}

/// Revokes `token`, or every token and session of `email`; answers what was revoked.
pub async fn revoke(
    infra: &Infra,
    admin: &AdminAuth,
    token: Option<String>,
    email: Option<String>,
) -> anyhow::Result<String> {
    let config = config(admin)?;
    let ledger = ledger(infra, &config).await?;
    let context = CommandContext {
        command_id: None,
        metadata: Metadata {
            actor: Some(CLI_ACTOR.to_owned()),
            ..Metadata::default()
        },
    };
    match (token, email) {
        (Some(token), _) => {
            let token = config.decode(&token).map_err(|e| {
                anyhow::anyhow!("not an admin token signed with ADMIN_JWT_SECRET: {e}")
            })?;
            ledger
                .revoke_token(&token.email, &token.token_id, token.expires_at, &context)
                .await?;
            Ok(format!(
                "revoked token {} of {}",
                token.token_id, token.email
            ))
        }
        (None, Some(email)) => {
            let email =
                PersonEmail::parse(&email).map_err(|e| anyhow::anyhow!("{email:?}: {e}"))?;
            ledger.revoke_all_tokens(&email, &context).await?;
            Ok(format!("revoked every token and session of {email}"))
        }
        (None, None) => anyhow::bail!("give --token or --email"),
    }
}

fn config(admin: &AdminAuth) -> anyhow::Result<AdminAuthConfig> {
    admin
        .config()?
        .ok_or_else(|| anyhow::anyhow!("ADMIN_JWT_SECRET is not set"))
}

/// The ledger over the configured database, knowing the allow-list's admins.
async fn ledger(infra: &Infra, config: &AdminAuthConfig) -> anyhow::Result<Ledger> {
    let pool = infra
        .database()
        .await
        .context("the people registry is in the database (DATABASE_URL)")?;
    let store = PgEventStore::new(pool, Arc::new(lightspeed_domain::SystemClock));
    Ok(Ledger::new(store).with_bootstrap_admins(config.bootstrap_admins().iter().cloned()))
}
