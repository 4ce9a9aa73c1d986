//! Who may call which admin route, decided in one place for every route under `/admin/`.
//!
//! [`enforce`] runs on the whole router (so the admin variants of `webhook_endpoints` are
//! covered too) before any handler: it authenticates the bearer token, admits its person
//! through the people registry in the log ([`admit`]), and refuses a change the person's role
//! (or the token's) does not allow with `403 ROLE_FORBIDDEN`. Reads need only a valid person.
//! A change with no entry in [`ROUTE_ACTIONS`] is refused to all but admins, so a route added
//! without an entry fails closed; a test walks every documented admin route and fails when one
//! has none.

use std::collections::HashSet;
use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lightspeed_domain::access::Action;

use crate::admin_auth::{AdminUser, admit, bearer_token};
use crate::error::ApiError;
use crate::state::AppState;

/// The change each admin route makes, by method and route template.
pub const ROUTE_ACTIONS: &[(&str, &str, Action)] = &[
    ("POST", "/admin/merchants", Action::ManageMerchants),
    ("PATCH", "/admin/merchants/{id}", Action::ManageMerchants),
    (
        "PUT",
        "/admin/merchants/{id}/invoice-email",
        Action::ManageMerchants,
    ),
    (
        "POST",
        "/admin/merchants/{id}/keys/regenerate",
        Action::ManageKeys,
    ),
    (
        "POST",
        "/admin/merchants/{id}/webhook-secret/rotate",
        Action::ManageKeys,
    ),
    (
        "PUT",
        "/admin/merchants/{id}/quota",
        Action::ManageMerchants,
    ),
    (
        "POST",
        "/admin/merchants/{id}/webhook-endpoints",
        Action::ManageWebhookEndpoints,
    ),
    (
        "PATCH",
        "/admin/merchants/{id}/webhook-endpoints/{endpoint_id}",
        Action::ManageWebhookEndpoints,
    ),
    (
        "DELETE",
        "/admin/merchants/{id}/webhook-endpoints/{endpoint_id}",
        Action::ManageWebhookEndpoints,
    ),
    (
        "POST",
        "/admin/merchants/{id}/webhook-endpoints/{endpoint_id}/test",
        Action::ManageWebhookEndpoints,
    ),
    (
        "POST",
        "/admin/merchants/{id}/webhook-endpoints/{endpoint_id}/secret/rotate",
        Action::ManageKeys,
    ),
    (
        "POST",
        "/admin/merchants/{id}/webhook-deliveries/{delivery_id}/resend",
        Action::Resend,
    ),
    ("POST", "/admin/alerts/{id}/ack", Action::AcknowledgeAlerts),
    ("POST", "/admin/gateways", Action::ManageGateways),
    ("PUT", "/admin/gateways/priority", Action::ManageGateways),
    ("PATCH", "/admin/gateways/{id}", Action::ManageGateways),
    ("DELETE", "/admin/gateways/{id}", Action::ManageGateways),
    (
        "PATCH",
        "/admin/gateways/{id}/toggle",
        Action::ManageGateways,
    ),
    (
        "POST",
        "/admin/gateways/{id}/recover",
        Action::ManageGateways,
    ),
    ("POST", "/admin/gateways/{id}/test", Action::ManageGateways),
    (
        "POST",
        "/admin/queues/{name}/{action}",
        Action::ControlQueues,
    ),
    ("POST", "/admin/whatsapp/{id}/resend", Action::Resend),
    ("POST", "/admin/payouts/run", Action::MovePayouts),
    ("POST", "/admin/settlements", Action::MovePayouts),
    ("POST", "/admin/reconciliation/run", Action::MovePayouts),
    ("POST", "/admin/people", Action::ManagePeople),
    ("PATCH", "/admin/people/{email}", Action::ManagePeople),
    ("DELETE", "/admin/people/{email}", Action::ManagePeople),
    ("POST", "/admin/tokens/revoke", Action::ManagePeople),
];

/// What a request to an admin route needs besides a valid person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing more: a read.
    Read,
    /// A role that allows this change.
    Change(Action),
    /// A change the table does not name: admins only.
    Unlisted,
}

/// What `method` on the route `template` needs.
pub fn requirement(method: &Method, template: &str) -> Requirement {
    if matches!(*method, Method::GET | Method::HEAD) {
        return Requirement::Read;
    }
    ROUTE_ACTIONS
        .iter()
        .find(|(m, path, _)| *m == method.as_str() && *path == template)
        .map_or(Requirement::Unlisted, |(_, _, action)| {
            Requirement::Change(*action)
        })
}

/// Authenticates and authorises every request to an admin route, and hands the admitted
/// person to the handler (its [`AdminUser`] extractor takes it from here).
pub async fn enforce(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    // CORS preflights carry no token; the CORS layer answers them.
    let admin_route = template.as_deref().filter(|t| t.starts_with("/admin/"));
    let Some(template) = admin_route.filter(|t| served(request.method(), t)) else {
        // Not an admin route, or a method it does not serve (the router answers 405, and
        // the CORS layer answers preflights, which carry no token).
        return next.run(request).await;
    };
    let method = request.method().clone();
    let admin = match admitted(&state, request.headers(), &method, template).await {
        Ok(admin) => admin,
        Err(error) => return error.into_response(),
    };
    tracing::Span::current().record("admin", admin.email.as_str());
    request.extensions_mut().insert(admin);
    next.run(request).await
}

/// Whether the route `template` serves `method` (HEAD with GET): the OpenAPI document lists
/// exactly what the router serves (a test holds it so).
fn served(method: &Method, template: &str) -> bool {
    static SERVED: OnceLock<HashSet<(String, String)>> = OnceLock::new();
    let served = SERVED.get_or_init(|| {
        let mut served = HashSet::new();
        for (path, item) in crate::openapi().paths.paths {
            for (name, documented) in [
                ("GET", item.get.is_some()),
                ("HEAD", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ] {
                if documented {
                    served.insert((name.to_owned(), path.clone()));
                }
            }
        }
        served
    });
    served.contains(&(method.as_str().to_owned(), template.to_owned()))
}

async fn admitted(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    template: &str,
) -> Result<AdminUser, ApiError> {
    let config = state.config.admin.as_ref().ok_or(ApiError::AdminDisabled)?;
    let token = config.verify(bearer_token(headers)?, state.ledger.now())?;
    let admin = admit(&state.ledger, &token).await?;
    match requirement(method, template) {
        Requirement::Read => {}
        Requirement::Change(action) => admin.require(action)?,
        Requirement::Unlisted => admin.require_admin()?,
    }
    Ok(admin)
}
