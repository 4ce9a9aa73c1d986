//! The people who run the business: `GET`/`POST /admin/people`, `PATCH`/`DELETE
//! /admin/people/{email}`. Their roles limit what each may change through the admin API and
//! the console ([`Role::permits`]); the registry lives in the log (`person-<email>` streams), so
//! every change is in the audit log with the admin who made it.
//!
//! The emails of `ADMIN_EMAILS` are admins by the setting (bootstrap admins): they are listed,
//! but only the setting changes them (`409 BOOTSTRAP_ADMIN`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use lightspeed_domain::access::Role;
use lightspeed_domain::person::PersonEmail;
use lightspeed_services::PersonAccess;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::JsonBody;
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// A role, as the admin API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    /// Everything, people and keys included.
    Admin,
    /// Gateways, queues, resends, webhook endpoints, alerts and projection rebuilds.
    Ops,
    /// Payouts, settlements, reconciliation and the audit export.
    Finance,
    /// Reads everything, exports the audit trail, changes nothing.
    Auditor,
}

impl From<RoleName> for Role {
    fn from(name: RoleName) -> Role {
        match name {
            RoleName::Admin => Role::Admin,
            RoleName::Ops => Role::Ops,
            RoleName::Finance => Role::Finance,
            RoleName::Auditor => Role::Auditor,
        }
    }
}

impl From<Role> for RoleName {
    fn from(role: Role) -> RoleName {
        match role {
            Role::Admin => RoleName::Admin,
            Role::Ops => RoleName::Ops,
            Role::Finance => RoleName::Finance,
            Role::Auditor => RoleName::Auditor,
        }
    }
}

/// One person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PersonView {
    /// Their email, lowercased.
    #[schema(example = "asha@example.com")]
    pub email: String,
    /// Their role now.
    pub role: RoleName,
    /// An admin by the `ADMIN_EMAILS` setting, which only the setting changes.
    pub bootstrap_admin: bool,
    /// When they were invited (null for a bootstrap admin).
    pub since: Option<DateTime<Utc>>,
}

impl From<&PersonAccess> for PersonView {
    fn from(person: &PersonAccess) -> Self {
        Self {
            email: person.email.to_string(),
            role: person.role.into(),
            bootstrap_admin: person.bootstrap_admin,
            since: person.since,
        }
    }
}

/// Whom to invite, in which role.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitePerson {
    /// Their email (letters, digits, `._+-`, one `@`; lowercased).
    #[schema(
        example = "asha@example.com",
        format = "email",
        min_length = 3,
        max_length = 120
    )]
    pub email: String,
    /// Their role.
    pub role: RoleName,
}

/// A person's new role.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    /// The new role.
    pub role: RoleName,
}

fn person_example() -> serde_json::Value {
    json!({
        "email": "asha@example.com",
        "role": "ops",
        "bootstrap_admin": false,
        "since": "2026-12-07T04:30:00Z",
    })
}

/// The email in a path, or `404 PERSON_NOT_FOUND` (no person has an invalid email).
fn path_email(text: &str) -> Result<PersonEmail, ApiError> {
    PersonEmail::parse(text).map_err(|_| ApiError::PersonNotFound)
}

/// Every person: bootstrap admins (`ADMIN_EMAILS`) first, then by email.
#[utoipa::path(
    get,
    path = "/admin/people",
    tag = "admin-people",
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The people", body = Vec<PersonView>,
         example = json!([
             {"email": "owner@example.com", "role": "admin", "bootstrap_admin": true, "since": null},
             person_example(),
         ])),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<PersonView>>, ApiError> {
    let people = state.ledger.people().await?;
    Ok(Json(people.iter().map(PersonView::from).collect()))
}

/// Invites a person in a role (`ManagePeople`). Inviting someone again in the role they hold
/// changes nothing and answers 201 again.
#[utoipa::path(
    post,
    path = "/admin/people",
    tag = "admin-people",
    security(("admin_jwt" = [])),
    request_body(content = InvitePerson, example = json!({"email": "asha@example.com", "role": "ops"})),
    responses(
        (status = 201, description = "Invited", body = PersonView, example = json!(person_example())),
        (status = 409, description = "Already invited in another role (`PERSON_EXISTS`), or a bootstrap admin (`BOOTSTRAP_ADMIN`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an email, or not a role", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn invite(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<InvitePerson>,
) -> Result<(StatusCode, Json<PersonView>), ApiError> {
    let email = PersonEmail::parse(&body.email).map_err(|e| ApiError::InvalidField {
        field: "email".into(),
        detail: e.to_string(),
    })?;
    let person = state
        .ledger
        .invite_person(&email, body.role.into(), &admin.context(&headers))
        .await?;
    Ok((StatusCode::CREATED, Json(PersonView::from(&person))))
}

/// Changes a person's role (`ManagePeople`); their tokens and sessions keep working, limited to
/// the new role from their next request on.
#[utoipa::path(
    patch,
    path = "/admin/people/{email}",
    tag = "admin-people",
    params(("email" = String, Path, description = "The person's email", example = "asha@example.com")),
    security(("admin_jwt" = [])),
    request_body(content = ChangeRole, example = json!({"role": "auditor"})),
    responses(
        (status = 200, description = "The person with the new role", body = PersonView,
         example = json!({"email": "asha@example.com", "role": "auditor", "bootstrap_admin": false, "since": "2026-12-07T04:30:00Z"})),
        (status = 404, description = "No such person (`PERSON_NOT_FOUND`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A bootstrap admin (`BOOTSTRAP_ADMIN`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a role", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn change_role(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(email): Path<String>,
    JsonBody(body): JsonBody<ChangeRole>,
) -> Result<Json<PersonView>, ApiError> {
    let email = path_email(&email)?;
    let person = state
        .ledger
        .change_person_role(&email, body.role.into(), &admin.context(&headers))
        .await?;
    Ok(Json(PersonView::from(&person)))
}

/// Removes a person (`ManagePeople`): every token and session they hold is refused from the
/// next request on, on every replica.
#[utoipa::path(
    delete,
    path = "/admin/people/{email}",
    tag = "admin-people",
    params(("email" = String, Path, description = "The person's email", example = "asha@example.com")),
    security(("admin_jwt" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such person (`PERSON_NOT_FOUND`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A bootstrap admin (`BOOTSTRAP_ADMIN`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(email): Path<String>,
) -> Result<StatusCode, ApiError> {
    let email = path_email(&email)?;
    state
        .ledger
        .remove_person(&email, &admin.context(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What to revoke: one token, or every token and console session of one person.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokens {
    /// An admin token to revoke (by its id, until it expires); expired tokens need none.
    #[schema(
        min_length = 1,
        example = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhc2hhQGV4YW1wbGUuY29tIn0.c2ln"
    )]
    pub token: Option<String>,
    /// A person whose every token and console session issued until now is revoked.
    #[schema(
        format = "email",
        min_length = 3,
        max_length = 120,
        example = "asha@example.com"
    )]
    pub email: Option<String>,
}

/// What was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    /// Whose tokens.
    pub email: String,
    /// The one token revoked, by its id; null when every token of the person was.
    pub token_id: Option<String>,
}

/// Revokes a token, or every token and console session of a person (`ManagePeople`). The
/// revocation is appended to the person's stream in the log before this answers, and every
/// replica reads that stream on every request: the token is refused from the next request on,
/// anywhere (`401 ADMIN_TOKEN_REVOKED`).
#[utoipa::path(
    post,
    path = "/admin/tokens/revoke",
    tag = "admin-people",
    security(("admin_jwt" = [])),
    request_body(content = RevokeTokens, examples(
        ("one token" = (value = json!({"token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhc2hhQGV4YW1wbGUuY29tIn0.c2ln"}))),
        ("every token of a person" = (value = json!({"email": "asha@example.com"}))),
    )),
    responses(
        (status = 200, description = "Revoked", body = Revoked,
         example = json!({"email": "asha@example.com", "token_id": "0193f1d2-7a10-7c3e-9a51-3d1f0b6e2a10"})),
        (status = 404, description = "No such person (`PERSON_NOT_FOUND`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither or both of token and email, a token not signed by us, or not an email", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_tokens(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RevokeTokens>,
) -> Result<Json<Revoked>, ApiError> {
    let context = admin.context(&headers);
    match (body.token, body.email) {
        (Some(token), None) => {
            let config = state.config.admin.as_ref().ok_or(ApiError::AdminDisabled)?;
            let token = config.decode(&token).map_err(|_| ApiError::InvalidField {
                field: "token".into(),
                detail: "not an admin token signed by this server".into(),
            })?;
            state
                .ledger
                .revoke_token(&token.email, &token.token_id, token.expires_at, &context)
                .await?;
            Ok(Json(Revoked {
                email: token.email.to_string(),
                token_id: Some(token.token_id),
            }))
        }
        (None, Some(email)) => {
            let email = PersonEmail::parse(&email).map_err(|e| ApiError::InvalidField {
                field: "email".into(),
                detail: e.to_string(),
            })?;
            state.ledger.revoke_all_tokens(&email, &context).await?;
            Ok(Json(Revoked {
                email: email.to_string(),
                token_id: None,
            }))
        }
        _ => Err(ApiError::InvalidField {
            field: "token".into(),
            detail: "give either token or email".into(),
        }),
    }
}
