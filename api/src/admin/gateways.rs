//! Gateway administration: registration with sealed credentials, edits, toggle, bulk priority,
//! retirement and a harmless credential check against the PSP; and the gateway read model.
//!
//! Credentials arrive once, are sealed at once (ChaCha20-Poly1305 under the current key of
//! `ENCRYPTION_KEY`) and are never answered or logged; only a credential check or an edit of
//! the account's environment opens them, inside that call.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::psp::{PspAccount, PspClient, PspCredentials, PspEnvironment, PspError};
use lightspeed_domain::gateway::{Gateway, GatewayCommand, GatewaySettings, RegisterGateway};
use lightspeed_domain::{GatewayId, MerchantId, Paise, Provider};
use lightspeed_projections::gateways::GatewayFilter;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::views::{GatewayHealthView, GatewayView};
use super::{AdminQuery, JsonBody, admin_error, parse_id};
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, FieldProblem, Problem};
use crate::schema_rules;
use crate::state::AppState;

/// Most gateways one bulk priority change may name.
const MAX_PRIORITY_CHANGES: usize = 500;
/// Time kept back from the request's deadline for answering after a credential check.
const CHECK_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A gateway as its stream says now (credentials stay sealed; only their key id is shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GatewayDetail {
    /// The gateway's id.
    pub gateway_id: Uuid,
    /// The merchant who owns it.
    pub merchant_id: Uuid,
    /// `razorpay`, `payu`, `cashfree`, `phonepe` or `sandbox`.
    pub provider: String,
    /// The merchant's name for it.
    pub label: String,
    /// Toggled on.
    pub enabled: bool,
    /// Retired for good.
    pub retired: bool,
    /// Routing priority (higher preferred).
    pub priority: u16,
    /// Monthly volume limit in paise, if any.
    pub monthly_limit_paise: Option<i64>,
    /// Its own requests-per-minute cap, if any.
    pub rpm_cap: Option<u32>,
    /// Resting after a failure until then (may be past).
    pub temporarily_failed_until: Option<DateTime<Utc>>,
    /// The id of the encryption key its credentials are sealed under.
    pub credentials_key_id: String,
    /// When it was registered.
    pub registered_at: DateTime<Utc>,
}

impl From<&Gateway> for GatewayDetail {
    fn from(gateway: &Gateway) -> Self {
        let settings = gateway.settings();
        GatewayDetail {
            gateway_id: gateway.id().0,
            merchant_id: gateway.merchant_id().0,
            provider: gateway.provider().to_string(),
            label: gateway.label().to_owned(),
            enabled: gateway.is_enabled(),
            retired: gateway.is_retired(),
            priority: settings.priority,
            monthly_limit_paise: settings.monthly_limit.map(|limit| limit.0),
            rpm_cap: settings.rpm_cap,
            temporarily_failed_until: gateway.temporary_failure().map(|f| f.until),
            credentials_key_id: gateway.credentials().key_id.clone(),
            registered_at: gateway.registered_at(),
        }
    }
}

/// A gateway to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGatewayBody {
    /// The merchant who owns it.
    pub merchant_id: Uuid,
    /// The PSP account's credentials, tagged by provider:
    /// `{"provider":"razorpay","key_id","key_secret","webhook_secret"}`,
    /// `{"provider":"payu","key","salt"}`, `{"provider":"cashfree","client_id","client_secret"}`,
    /// `{"provider":"phonepe","merchant_id","salt_key","salt_index"}`,
    /// `{"provider":"sandbox","webhook_secret"}`. Sealed at once; never shown again. Each value is
    /// 1 to 256 printable ASCII characters; a Razorpay `key_id` starts with `rzp_test_` or
    /// `rzp_live_`, a PhonePe `salt_index` is at least 1, a sandbox `webhook_secret` is `whsec_`
    /// followed by base64.
    #[schema(schema_with = credentials_schema)]
    pub credentials: PspCredentials,
    /// `test` (default) or `live` hosts.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "test")]
    pub environment: PspEnvironment,
    /// Replaces the provider's API host (proxies). A sandbox gateway without one talks to this
    /// server's own sandbox PSP, `PUBLIC_URL/sandbox`.
    #[serde(default)]
    #[schema(schema_with = schema_rules::http_url)]
    pub base_url: Option<String>,
    /// The merchant's name for it, 1 to 100 characters (default: the provider's name).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub label: Option<String>,
    /// Routing priority, higher preferred (default 0).
    #[serde(default)]
    pub priority: u16,
    /// Monthly volume limit in paise (default none).
    #[serde(default)]
    pub monthly_limit_paise: Option<i64>,
    /// Requests-per-minute cap, 1 to 1 000 (default: the merchant's default cap).
    #[serde(default)]
    pub rpm_cap: Option<u32>,
    /// Whether it starts toggled on (default true).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

/// The credentials' shapes, one per provider: `provider` names the shape, and every field of
/// that shape is required with it, and nothing else.
fn credentials_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AdditionalProperties, Type};
    use utoipa::openapi::{ObjectBuilder, OneOfBuilder};
    let shapes: [(&str, &[&str]); 5] = [
        ("razorpay", &["key_id", "key_secret", "webhook_secret"]),
        ("payu", &["key", "salt"]),
        ("cashfree", &["client_id", "client_secret"]),
        ("phonepe", &["merchant_id", "salt_key", "salt_index"]),
        ("sandbox", &["webhook_secret"]),
    ];
    let mut one_of = OneOfBuilder::new().description(Some(
        "The PSP account's credentials; `provider` says which fields go with it. Sealed at once; never shown again.",
    ));
    for (provider, fields) in shapes {
        let mut shape = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "provider",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([provider])),
            )
            .required("provider")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        for field in fields {
            shape = shape
                .property(*field, credential_field_schema(provider, field))
                .required(*field);
        }
        one_of = one_of.item(shape);
    }
    utoipa::openapi::schema::Schema::OneOf(one_of.build())
}

/// One credential field's rule, as `PspCredentials::shape_problems` checks it.
fn credential_field_schema(provider: &str, field: &str) -> utoipa::openapi::ObjectBuilder {
    use utoipa::openapi::ObjectBuilder;
    use utoipa::openapi::schema::Type;
    if field == "salt_index" {
        return ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1));
    }
    let pattern = match (provider, field) {
        ("razorpay", "key_id") => "^rzp_(test|live)_[!-~]+$",
        ("sandbox", "webhook_secret") => "^whsec_[A-Za-z0-9+/]+={0,2}$",
        _ => "^[!-~]+$",
    };
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(256))
        .pattern(Some(pattern))
}

fn enabled_by_default() -> bool {
    true
}

/// What is wrong with a `base_url`, if anything.
fn base_url_problem(base_url: Option<&str>) -> Option<FieldProblem> {
    let url = base_url?;
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .unwrap_or_default();
    let bad = host.is_empty() || url.len() > 2048 || url.chars().any(char::is_whitespace);
    bad.then(|| FieldProblem {
        field: "base_url".into(),
        detail: "must be an absolute http(s) URL without spaces".into(),
    })
}

/// Every field of a registration or correction whose shape is wrong: the credentials, field by
/// field (as the provider would refuse them), and the base URL.
fn check_account(
    credentials: Option<&PspCredentials>,
    base_url: Option<&str>,
) -> Result<(), ApiError> {
    let mut problems: Vec<FieldProblem> = credentials
        .map(PspCredentials::shape_problems)
        .unwrap_or_default()
        .into_iter()
        .map(|p| FieldProblem {
            field: format!("credentials.{}", p.field),
            detail: p.problem,
        })
        .collect();
    problems.extend(base_url_problem(base_url));
    match problems.len() {
        0 => Ok(()),
        1 => {
            let FieldProblem { field, detail } = problems.remove(0);
            Err(ApiError::InvalidField { field, detail })
        }
        _ => Err(ApiError::InvalidFields(problems)),
    }
}

/// The API host of an account: the one given, or for the sandbox PSP this server's own
/// (`PUBLIC_URL/sandbox`), so a sandbox gateway works wherever the server is reached.
fn account_base_url(state: &AppState, provider: Provider, given: Option<String>) -> Option<String> {
    match (given, provider) {
        (Some(url), _) => Some(url),
        (None, Provider::Sandbox) => Some(format!(
            "{}/sandbox",
            state.config.public_url.trim_end_matches('/')
        )),
        (None, _) => None,
    }
}

fn seal(
    state: &AppState,
    account: &PspAccount,
) -> Result<lightspeed_domain::SealedSecret, ApiError> {
    account
        .seal(&state.keyring)
        .map_err(|e| ApiError::InvalidField {
            field: "credentials".into(),
            detail: e.to_string(),
        })
}

/// The registration `body` asks for, its credentials checked field by field and sealed at
/// once (the account is dropped here); the console's form registers through this too.
pub fn registration(
    state: &AppState,
    body: CreateGatewayBody,
) -> Result<RegisterGateway, ApiError> {
    check_account(Some(&body.credentials), body.base_url.as_deref())?;
    let provider = body.credentials.provider();
    let account = PspAccount {
        credentials: body.credentials,
        environment: body.environment,
        base_url: account_base_url(state, provider, body.base_url),
    };
    Ok(RegisterGateway {
        gateway_id: GatewayId::new(),
        merchant_id: MerchantId(body.merchant_id),
        provider,
        label: body.label.unwrap_or_else(|| format!("{provider} gateway")),
        credentials: seal(state, &account)?,
        settings: GatewaySettings {
            priority: body.priority,
            monthly_limit: body.monthly_limit_paise.map(Paise),
            rpm_cap: body.rpm_cap,
        },
        enabled: body.enabled,
        at: state.ledger.now(),
    })
}

/// Registers a gateway for a merchant, with its credentials sealed.
#[utoipa::path(
    post,
    path = "/admin/gateways",
    tag = "admin-gateways",
    request_body = CreateGatewayBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 201, description = "Registered (credentials sealed, not shown)", body = GatewayDetail),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The merchant is closed or has 50 active gateways", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule, or a credential has the wrong shape for its provider (every field at fault in `errors`); nothing was recorded", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateGatewayBody>,
) -> Result<(StatusCode, Json<GatewayDetail>), ApiError> {
    let command = registration(&state, body)?;
    let provider = command.provider;
    let gateway = state
        .ledger
        .register_gateway(command, &admin.context(&headers))
        .await
        .map_err(admin_error)?;
    tracing::info!(gateway_id = %gateway.id(), merchant_id = %gateway.merchant_id(), %provider, admin = %admin.email, "gateway registered");
    Ok((StatusCode::CREATED, Json(GatewayDetail::from(&gateway))))
}

/// Filters of the gateway lists.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GatewayListQuery {
    /// Only this merchant's.
    pub merchant_id: Option<Uuid>,
    /// Only this provider's.
    pub provider: Option<String>,
    /// Only toggled on (true) or off (false).
    pub enabled: Option<bool>,
    /// Include retired gateways (default false).
    pub include_retired: Option<bool>,
}

impl GatewayListQuery {
    fn filter(self) -> GatewayFilter {
        GatewayFilter {
            merchant_id: self.merchant_id,
            provider: self.provider,
            enabled: self.enabled,
            include_retired: self.include_retired.unwrap_or(false),
        }
    }
}

/// Gateways from the read model, by merchant then priority (at most 1 000).
#[utoipa::path(
    get,
    path = "/admin/gateways",
    tag = "admin-gateways",
    params(GatewayListQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "Gateways", body = Vec<GatewayView>),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    AdminQuery(query): AdminQuery<GatewayListQuery>,
) -> Result<Json<Vec<GatewayView>>, ApiError> {
    let rows =
        lightspeed_projections::gateways::health(state.pool(), &query.filter(), state.ledger.now())
            .await?;
    Ok(Json(rows.into_iter().map(|h| h.gateway.into()).collect()))
}

/// Gateways' health as of now: this month's volume, the last two minutes' requests, rest after
/// failure, recent success rate.
#[utoipa::path(
    get,
    path = "/admin/gateways/health",
    tag = "admin-gateways",
    params(GatewayListQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "Gateways' health", body = Vec<GatewayHealthView>),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn health(
    State(state): State<AppState>,
    _admin: AdminUser,
    AdminQuery(query): AdminQuery<GatewayListQuery>,
) -> Result<Json<Vec<GatewayHealthView>>, ApiError> {
    let rows =
        lightspeed_projections::gateways::health(state.pool(), &query.filter(), state.ledger.now())
            .await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

fn gateway_id(id: &str) -> Result<GatewayId, ApiError> {
    parse_id(id, ApiError::GatewayNotFound)
}

/// Changes to a gateway; fields left out stay as they are.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGatewayBody {
    /// The merchant's name for it, 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub label: Option<String>,
    /// Routing priority, higher preferred.
    pub priority: Option<u16>,
    /// Monthly volume limit in paise; `null` for none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, nullable)]
    pub monthly_limit_paise: Option<Option<i64>>,
    /// Requests-per-minute cap; `null` for the merchant's default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>, nullable)]
    pub rpm_cap: Option<Option<u32>>,
    /// New credentials (same shapes as on registration, same provider). Sealed at once.
    #[schema(schema_with = credentials_schema)]
    pub credentials: Option<PspCredentials>,
    /// `test` or `live` hosts.
    #[schema(value_type = Option<String>)]
    pub environment: Option<PspEnvironment>,
    /// The API host override; `null` for the provider's own (the sandbox's: this server's).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = schema_rules::nullable_http_url)]
    pub base_url: Option<Option<String>>,
}

/// Edits a gateway: every change in the body is recorded together, or none is.
#[utoipa::path(
    patch,
    path = "/admin/gateways/{id}",
    tag = "admin-gateways",
    params(("id" = String, Path, description = "The gateway id")),
    request_body = UpdateGatewayBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The gateway after the edit", body = GatewayDetail),
        (status = 404, description = "No such gateway", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The gateway is retired", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule, or a credential has the wrong shape for its provider (every field at fault in `errors`); nothing was changed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateGatewayBody>,
) -> Result<Json<GatewayDetail>, ApiError> {
    let gateway_id = gateway_id(&id)?;
    let current = state
        .ledger
        .gateway(gateway_id)
        .await
        .map_err(admin_error)?;
    let at = state.ledger.now();
    let mut commands = Vec::new();
    let settings_changed = body.label.is_some()
        || body.priority.is_some()
        || body.monthly_limit_paise.is_some()
        || body.rpm_cap.is_some();
    if settings_changed {
        let settings = current.settings();
        commands.push(GatewayCommand::ChangeSettings {
            label: body.label.unwrap_or_else(|| current.label().to_owned()),
            settings: GatewaySettings {
                priority: body.priority.unwrap_or(settings.priority),
                monthly_limit: body
                    .monthly_limit_paise
                    .map_or(settings.monthly_limit, |limit| limit.map(Paise)),
                rpm_cap: body.rpm_cap.unwrap_or(settings.rpm_cap),
            },
            at,
        });
    }
    if body.credentials.is_some() || body.environment.is_some() || body.base_url.is_some() {
        let account = replaced_account(
            &state,
            &current,
            body.credentials,
            body.environment,
            body.base_url,
        )?;
        commands.push(GatewayCommand::RotateCredentials {
            credentials: seal(&state, &account)?,
            at,
        });
    }
    let gateway = state
        .ledger
        .update_gateway(gateway_id, &commands, &admin.context(&headers))
        .await
        .map_err(admin_error)?;
    Ok(Json(GatewayDetail::from(&gateway)))
}

/// The account with the given parts replaced; the current one is opened only when a part is kept.
fn replaced_account(
    state: &AppState,
    gateway: &Gateway,
    credentials: Option<PspCredentials>,
    environment: Option<PspEnvironment>,
    base_url: Option<Option<String>>,
) -> Result<PspAccount, ApiError> {
    check_account(
        credentials.as_ref(),
        base_url.as_ref().and_then(Option::as_deref),
    )?;
    if let Some(credentials) = &credentials
        && credentials.provider() != gateway.provider()
    {
        return Err(ApiError::InvalidField {
            field: "credentials".into(),
            detail: format!("must be {} credentials", gateway.provider()),
        });
    }
    let needs_current = credentials.is_none() || environment.is_none() || base_url.is_none();
    let current = if needs_current {
        Some(
            PspAccount::open(&state.keyring, gateway.credentials()).map_err(|e| {
                ApiError::Internal(format!(
                    "cannot open gateway {} credentials: {e}",
                    gateway.id()
                ))
            })?,
        )
    } else {
        None
    };
    let (current_credentials, current_environment, current_base_url) = match current {
        Some(account) => (
            Some(account.credentials),
            account.environment,
            account.base_url,
        ),
        None => (None, PspEnvironment::default(), None),
    };
    Ok(PspAccount {
        credentials: credentials
            .or(current_credentials)
            .ok_or_else(|| ApiError::Internal("no credentials to keep".into()))?,
        environment: environment.unwrap_or(current_environment),
        base_url: match base_url {
            Some(url) => account_base_url(state, gateway.provider(), url),
            None => current_base_url,
        },
    })
}

/// On or off.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToggleBody {
    /// True to route payments to it, false to stop at once.
    pub enabled: bool,
}

/// Turns a gateway on or off; off takes effect on the very next payment.
#[utoipa::path(
    patch,
    path = "/admin/gateways/{id}/toggle",
    tag = "admin-gateways",
    params(("id" = String, Path, description = "The gateway id")),
    request_body = ToggleBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The gateway after the toggle", body = GatewayDetail),
        (status = 404, description = "No such gateway", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The gateway is retired", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn toggle(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ToggleBody>,
) -> Result<Json<GatewayDetail>, ApiError> {
    let command = GatewayCommand::Toggle {
        enabled: body.enabled,
        at: state.ledger.now(),
    };
    let gateway = state
        .ledger
        .update_gateway(gateway_id(&id)?, &[command], &admin.context(&headers))
        .await
        .map_err(admin_error)?;
    Ok(Json(GatewayDetail::from(&gateway)))
}

/// Ends a gateway's rest after failed PSP calls at once, so routing takes it again; recorded as
/// `GatewayRecovered` with the admin as its actor (the audit log shows who). A correction of the
/// gateway's settings or credentials ends the rest by itself; a gateway not resting is answered
/// as it is.
#[utoipa::path(
    post,
    path = "/admin/gateways/{id}/recover",
    tag = "admin-gateways",
    params(("id" = String, Path, description = "The gateway id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The gateway, resting no more", body = GatewayDetail),
        (status = 404, description = "No such gateway", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The gateway is retired", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn recover(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<GatewayDetail>, ApiError> {
    let gateway_id = gateway_id(&id)?;
    let command = GatewayCommand::ClearTemporaryFailure {
        at: state.ledger.now(),
    };
    let gateway = state
        .ledger
        .update_gateway(gateway_id, &[command], &admin.context(&headers))
        .await
        .map_err(admin_error)?;
    tracing::info!(%gateway_id, admin = %admin.email, "gateway rest ended");
    Ok(Json(GatewayDetail::from(&gateway)))
}

/// One gateway's new priority.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityChange {
    /// The gateway.
    pub gateway_id: Uuid,
    /// Its priority, higher preferred.
    pub priority: u16,
}

/// Priorities of several gateways, set together.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrioritiesBody {
    /// 1 to 500 gateways, each named once.
    #[schema(min_items = 1, max_items = 500)]
    pub priorities: Vec<PriorityChange>,
}

/// Sets the priority of several gateways at once: all of them or none.
#[utoipa::path(
    put,
    path = "/admin/gateways/priority",
    tag = "admin-gateways",
    request_body = PrioritiesBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The gateways after the change, in the order given", body = Vec<GatewayDetail>),
        (status = 404, description = "A gateway does not exist; nothing was changed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A gateway is retired; nothing was changed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Empty, too long, or a gateway named twice", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_priorities(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PrioritiesBody>,
) -> Result<Json<Vec<GatewayDetail>>, ApiError> {
    if body.priorities.is_empty() || body.priorities.len() > MAX_PRIORITY_CHANGES {
        return Err(ApiError::InvalidField {
            field: "priorities".into(),
            detail: format!("must name 1 to {MAX_PRIORITY_CHANGES} gateways"),
        });
    }
    let changes: Vec<(GatewayId, u16)> = body
        .priorities
        .iter()
        .map(|change| (GatewayId(change.gateway_id), change.priority))
        .collect();
    let gateways = state
        .ledger
        .set_gateway_priorities(&changes, &admin.context(&headers))
        .await
        .map_err(admin_error)?;
    Ok(Json(gateways.iter().map(GatewayDetail::from).collect()))
}

/// Why a gateway is retired.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetireQuery {
    /// Why, for the audit log (default "retired by admin").
    pub reason: Option<String>,
}

/// Retires a gateway for good: it takes no new payment; payments in flight still settle.
#[utoipa::path(
    delete,
    path = "/admin/gateways/{id}",
    tag = "admin-gateways",
    params(("id" = String, Path, description = "The gateway id"), RetireQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The retired gateway", body = GatewayDetail),
        (status = 404, description = "No such gateway", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retire(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    AdminQuery(query): AdminQuery<RetireQuery>,
) -> Result<Json<GatewayDetail>, ApiError> {
    let gateway_id = gateway_id(&id)?;
    let current = state
        .ledger
        .gateway(gateway_id)
        .await
        .map_err(admin_error)?;
    let gateway = state
        .ledger
        .retire_gateway(
            current.merchant_id(),
            gateway_id,
            query.reason.unwrap_or_else(|| "retired by admin".into()),
            &admin.context(&headers),
        )
        .await
        .map_err(admin_error)?;
    tracing::info!(%gateway_id, admin = %admin.email, "gateway retired");
    Ok(Json(GatewayDetail::from(&gateway)))
}

/// What the PSP answered a harmless authenticated call with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GatewayTestBody {
    /// The gateway.
    pub gateway_id: Uuid,
    /// Its provider.
    pub provider: String,
    /// Whether the PSP answered at all.
    pub reachable: bool,
    /// The HTTP status it answered with.
    pub status: Option<u16>,
    /// Whether the answer shows the credentials were accepted.
    pub accepted: bool,
    /// Round trip in milliseconds.
    pub latency_ms: u64,
    /// Why the call failed, when it did (never carries credentials).
    pub error: Option<String>,
}

/// Makes one harmless authenticated call to the PSP with the gateway's credentials and reports
/// the answer's status and latency. Records nothing.
#[utoipa::path(
    post,
    path = "/admin/gateways/{id}/test",
    tag = "admin-gateways",
    params(("id" = String, Path, description = "The gateway id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "What the PSP answered (a refusal is a result, not an error)", body = GatewayTestBody),
        (status = 404, description = "No such gateway", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn test(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<GatewayTestBody>, ApiError> {
    let gateway = state
        .ledger
        .gateway(gateway_id(&id)?)
        .await
        .map_err(admin_error)?;
    let client = match &state.psp {
        Some(client) => client.clone(),
        None => PspClient::new(&HttpConfig::default())
            .map_err(|e| ApiError::Internal(format!("PSP client: {e}")))?,
    };
    let account = PspAccount::open(&state.keyring, gateway.credentials()).map_err(|e| {
        ApiError::Internal(format!(
            "cannot open gateway {} credentials: {e}",
            gateway.id()
        ))
    })?;
    // Answer within the request's own deadline, so a PSP that hangs is a result, not a 503.
    let budget = state
        .config
        .request_timeout
        .saturating_sub(CHECK_MARGIN)
        .max(CHECK_MARGIN);
    let started = Instant::now();
    let checked = tokio::time::timeout(budget, client.test_credentials(&account))
        .await
        .unwrap_or_else(|_| {
            Err(PspError::Unavailable {
                reason: format!("no answer within {} ms", millis(budget)),
            })
        });
    drop(account);
    let body = match checked {
        Ok(check) => GatewayTestBody {
            gateway_id: gateway.id().0,
            provider: gateway.provider().to_string(),
            reachable: true,
            status: Some(check.status),
            accepted: check.accepted,
            latency_ms: millis(check.latency),
            error: None,
        },
        Err(error) => GatewayTestBody {
            gateway_id: gateway.id().0,
            provider: gateway.provider().to_string(),
            reachable: false,
            status: None,
            accepted: false,
            latency_ms: millis(started.elapsed()),
            error: Some(error.to_string()),
        },
    };
    Ok(Json(body))
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
