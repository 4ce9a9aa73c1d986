//! A merchant's webhook endpoints and their delivery log, for the merchant (signed requests)
//! and for admins (`/admin/merchants/{id}/…`): list, add, change, remove, rotate an endpoint's
//! secret, send a test event, list deliveries with their attempts, resend a given-up one.
//!
//! An endpoint's URL is vetted when it is registered or changed (`https`, a host resolving to
//! public addresses only; see `lightspeed_adapters::webhook_target`) and again before every
//! attempt by the sender. A foreign endpoint or delivery id is a 404.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use lightspeed_adapters::secrets::generate_webhook_secret;
use lightspeed_adapters::webhook_target::vet;
use lightspeed_domain::merchant::endpoints::WEBHOOK_EVENT_TYPES;
use lightspeed_domain::merchant::{
    DEFAULT_WEBHOOK_SECRET_GRACE_SECS, EndpointChanges, Merchant, MerchantCommand, MerchantError,
    WebhookEndpoint,
};
use lightspeed_domain::webhook_delivery::{AttemptOutcome, WebhookDeliveryStatus};
use lightspeed_domain::{MerchantId, WebhookDelivery, WebhookDeliveryId, WebhookEndpointId};
use lightspeed_eventstore::{CommandContext, CommandHandler, PgEventStore, stream_of};
use lightspeed_projections::webhooks::{
    AttemptRow, DeliveryCursor, DeliveryRow, MerchantDeliveryFilter,
};
use lightspeed_services::ServiceError;
use lightspeed_workers::merchant_webhooks::{self, ResendError, send_test_event};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::admin::{AdminQuery, JsonBody, admin_error};
use crate::admin_auth::AdminUser;
use crate::auth::{SignedRequest, parse_json};
use crate::error::{ApiError, Problem};
use crate::payments::merchant_context;
use crate::state::AppState;

/// Most deliveries on one page.
pub const MAX_DELIVERY_PAGE: u32 = 100;

/// One webhook endpoint (its secret is shown only on creation and rotation).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0190f3a2-7c1e-7d4b-9a51-2f6b1c0d9e11", "url": "https://acme.example/hooks", "description": "orders", "enabled": true, "disabled_at": null, "event_types": ["payment.*"], "previous_secret_valid_until": null, "created_at": "2026-12-01T10:00:00Z"}))]
pub struct WebhookEndpointView {
    /// The endpoint's id.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Your note about it.
    pub description: String,
    /// Whether you want it to receive events.
    pub enabled: bool,
    /// When it was disabled for failing continuously for 5 days (enable it to resume).
    pub disabled_at: Option<DateTime<Utc>>,
    /// Event types it receives: exact types, `payment.*`, `refund.*` or `*`.
    pub event_types: Vec<String>,
    /// Until then webhooks also carry a signature under the previous secret.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// A new endpoint with its secret, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhookEndpointView {
    /// The endpoint.
    pub endpoint: WebhookEndpointView,
    /// Its `whsec_…` secret. Shown once: store it now.
    pub secret: String,
}

/// A new endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://acme.example/hooks", "description": "orders", "event_types": ["payment.succeeded", "refund.*"]}))]
pub struct CreateWebhookEndpointBody {
    /// `https` URL on a public address.
    pub url: String,
    /// Your note (at most 200 characters).
    pub description: Option<String>,
    /// Event types it receives (default `["*"]`).
    pub event_types: Option<Vec<String>>,
}

/// Changes to an endpoint; absent fields keep their value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true, "event_types": ["payment.*"]}))]
pub struct UpdateWebhookEndpointBody {
    /// New `https` URL.
    pub url: Option<String>,
    /// New note.
    pub description: Option<String>,
    /// Enable (also after a disabling for failure) or disable it.
    pub enabled: Option<bool>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
}

/// How long the previous secret stays valid.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateEndpointSecretBody {
    /// Grace period of the previous secret in seconds (default 86 400, at most 604 800).
    #[schema(maximum = 604_800)]
    pub grace_secs: Option<u64>,
}

/// The endpoint's new secret, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotatedEndpointSecretView {
    /// The new `whsec_…` secret. Shown once: store it now.
    pub secret: String,
    /// Until then webhooks carry signatures under both secrets.
    pub previous_valid_until: Option<DateTime<Utc>>,
}

/// Which sample event to send.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_type": "payment.succeeded"}))]
pub struct TestEventBody {
    /// One of `payment.created`, `payment.succeeded`, `payment.failed`, `payment.refunded`,
    /// `refund.succeeded`, `refund.failed`.
    pub event_type: String,
}

/// What the endpoint answered to the test event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"delivery_id": "0190f3a2-7c1e-7d4b-9a51-2f6b1c0d9e12", "event_type": "payment.succeeded", "delivered": true, "status_code": 200, "error": null, "latency_ms": 42, "response_excerpt": "ok"}))]
pub struct TestEventView {
    /// The delivery recorded for it (listed with the others; retried if it failed).
    pub delivery_id: String,
    /// The event type sent.
    pub event_type: String,
    /// Whether the endpoint answered 2xx.
    pub delivered: bool,
    /// The endpoint's status code, if it answered.
    pub status_code: Option<u16>,
    /// Why there was no answer (connection failed, timed out, target refused).
    pub error: Option<String>,
    /// How long the attempt took, in milliseconds.
    pub latency_ms: u64,
    /// The start of the endpoint's answer.
    pub response_excerpt: Option<String>,
}

/// One delivery of an event to an endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// The delivery's id (the `webhook-id` header it is sent with).
    pub id: String,
    /// The endpoint it goes to.
    pub endpoint_id: String,
    /// Its URL when queued.
    pub endpoint_url: String,
    /// The event type, e.g. `payment.succeeded`.
    pub event_type: String,
    /// The transaction it reports on; absent for a test event.
    pub transaction_id: Option<String>,
    /// Whether it carries a test event (`POST /webhook-endpoints/{id}/test`).
    pub test: bool,
    /// `pending`, `delivered` or `given_up`.
    pub status: String,
    /// Attempts since it was (re)queued.
    pub attempts: i32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last status code the endpoint answered.
    pub last_status_code: Option<i32>,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was given up.
    pub given_up_at: Option<DateTime<Utc>>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    /// Which attempt since the delivery was (re)queued, from 1.
    pub attempt: i32,
    /// The status code, if the endpoint answered.
    pub status_code: Option<i32>,
    /// The transport error, if it did not.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The start of the answer.
    pub response_excerpt: Option<String>,
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
}

/// A delivery with its body and every attempt, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryDetailView {
    /// The delivery.
    pub delivery: DeliveryView,
    /// The JSON body sent.
    pub payload: serde_json::Value,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptView>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPageView {
    /// The deliveries.
    pub data: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only to this endpoint.
    pub endpoint_id: Option<String>,
    /// Only of this event type.
    pub event_type: Option<String>,
    /// `pending`, `delivered` or `given_up`.
    pub status: Option<String>,
    /// Queued at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Queued before this instant (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 50).
    pub limit: Option<u32>,
}

/// A resent delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResentDeliveryView {
    /// The delivery, pending again from its first attempt.
    pub id: String,
    /// `pending`.
    pub status: String,
}

fn endpoint_view(endpoint: &WebhookEndpoint) -> WebhookEndpointView {
    WebhookEndpointView {
        id: endpoint.id().to_string(),
        url: endpoint.url().to_owned(),
        description: endpoint.description().to_owned(),
        enabled: endpoint.enabled(),
        disabled_at: endpoint.disabled_at(),
        event_types: endpoint.filter().entries().to_vec(),
        previous_secret_valid_until: endpoint.previous_secret().map(|p| p.valid_until),
        created_at: endpoint.created_at(),
    }
}

fn delivery_view(row: DeliveryRow) -> DeliveryView {
    DeliveryView {
        id: row.delivery_id.to_string(),
        endpoint_id: row.endpoint_id.to_string(),
        endpoint_url: row.endpoint_url,
        event_type: row.event_type,
        transaction_id: row.payment_id.map(|id| id.to_string()),
        test: row.payment_id.is_none(),
        status: row.status,
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at,
        last_status_code: row.last_status_code,
        last_error: row.last_error,
        queued_at: row.queued_at,
        delivered_at: row.delivered_at,
        given_up_at: row.given_up_at,
    }
}

fn attempt_view(row: AttemptRow) -> AttemptView {
    AttemptView {
        attempt: row.attempt,
        status_code: row.status_code,
        error: row.error,
        duration_ms: row.duration_ms,
        response_excerpt: row.response_excerpt,
        attempted_at: row.attempted_at,
    }
}

/// Endpoint refusals in their own stable codes; the rest as the ledger's errors.
fn endpoint_error(error: ServiceError) -> ApiError {
    match error {
        ServiceError::Merchant(MerchantError::TooManyWebhookEndpoints { limit }) => {
            ApiError::TooManyWebhookEndpoints(limit)
        }
        ServiceError::Merchant(MerchantError::UnknownWebhookEndpoint(_)) => {
            ApiError::WebhookEndpointNotFound
        }
        ServiceError::Merchant(MerchantError::Invalid(field)) if field.field == "url" => {
            ApiError::InvalidWebhookUrl(field.problem.to_string())
        }
        ServiceError::Merchant(MerchantError::Invalid(field)) if field.field == "event_types" => {
            ApiError::InvalidEventFilter(field.problem.to_string())
        }
        other => admin_error(other),
    }
}

fn endpoint_id(id: &str) -> Result<WebhookEndpointId, ApiError> {
    id.parse().map_err(|_| ApiError::WebhookEndpointNotFound)
}

fn delivery_id(id: &str) -> Result<WebhookDeliveryId, ApiError> {
    id.parse().map_err(|_| ApiError::WebhookDeliveryNotFound)
}

fn admin_merchant_id(id: &str) -> Result<MerchantId, ApiError> {
    id.parse().map_err(|_| ApiError::MerchantNotFound)
}

fn secret_text(secret: &lightspeed_adapters::secrets::Secret) -> Result<String, ApiError> {
    secret
        .expose_str()
        .map(str::to_owned)
        .map_err(|_| ApiError::Internal("a generated secret is not UTF-8".into()))
}

/// Refuses a URL that is not `https` on a public address (after resolving its host).
async fn vet_url(state: &AppState, url: &str) -> Result<(), ApiError> {
    vet(url, state.config.webhook_targets)
        .await
        .map(|_| ())
        .map_err(|refusal| ApiError::InvalidWebhookUrl(refusal.to_string()))
}

async fn merchant_of(state: &AppState, merchant_id: MerchantId) -> Result<Merchant, ApiError> {
    state
        .ledger
        .merchant(merchant_id)
        .await
        .map_err(admin_error)
}

async fn update(
    state: &AppState,
    merchant_id: MerchantId,
    command: MerchantCommand,
    context: &CommandContext,
) -> Result<Merchant, ApiError> {
    state
        .ledger
        .update_merchant(merchant_id, &[command], context)
        .await
        .map_err(endpoint_error)
}

fn list(merchant: &Merchant) -> Vec<WebhookEndpointView> {
    merchant
        .webhook_endpoints()
        .iter()
        .map(endpoint_view)
        .collect()
}

fn one(merchant: &Merchant, id: &str) -> Result<WebhookEndpointView, ApiError> {
    merchant
        .webhook_endpoint(endpoint_id(id)?)
        .map(endpoint_view)
        .ok_or(ApiError::WebhookEndpointNotFound)
}

async fn create(
    state: &AppState,
    merchant_id: MerchantId,
    body: CreateWebhookEndpointBody,
    context: &CommandContext,
) -> Result<CreatedWebhookEndpointView, ApiError> {
    vet_url(state, &body.url).await?;
    let secret = generate_webhook_secret();
    let id = WebhookEndpointId::new();
    let command = MerchantCommand::AddWebhookEndpoint {
        endpoint_id: id,
        url: body.url,
        description: body.description.unwrap_or_default(),
        event_types: body.event_types.unwrap_or_else(|| vec!["*".to_owned()]),
        secret: state.keyring.seal(secret.expose()),
        at: state.ledger.now(),
    };
    let merchant = update(state, merchant_id, command, context).await?;
    tracing::info!(%merchant_id, endpoint_id = %id, "webhook endpoint added");
    Ok(CreatedWebhookEndpointView {
        endpoint: one(&merchant, &id.to_string())?,
        secret: secret_text(&secret)?,
    })
}

async fn change(
    state: &AppState,
    merchant_id: MerchantId,
    id: &str,
    body: UpdateWebhookEndpointBody,
    context: &CommandContext,
) -> Result<WebhookEndpointView, ApiError> {
    let endpoint_id = endpoint_id(id)?;
    if let Some(url) = &body.url {
        vet_url(state, url).await?;
    }
    let command = MerchantCommand::UpdateWebhookEndpoint {
        endpoint_id,
        changes: EndpointChanges {
            url: body.url,
            description: body.description,
            enabled: body.enabled,
            event_types: body.event_types,
        },
        at: state.ledger.now(),
    };
    let merchant = update(state, merchant_id, command, context).await?;
    one(&merchant, id)
}

async fn remove(
    state: &AppState,
    merchant_id: MerchantId,
    id: &str,
    context: &CommandContext,
) -> Result<StatusCode, ApiError> {
    let command = MerchantCommand::RemoveWebhookEndpoint {
        endpoint_id: endpoint_id(id)?,
        at: state.ledger.now(),
    };
    update(state, merchant_id, command, context).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate(
    state: &AppState,
    merchant_id: MerchantId,
    id: &str,
    body: RotateEndpointSecretBody,
    context: &CommandContext,
) -> Result<RotatedEndpointSecretView, ApiError> {
    let secret = generate_webhook_secret();
    let command = MerchantCommand::RotateWebhookEndpointSecret {
        endpoint_id: endpoint_id(id)?,
        secret: state.keyring.seal(secret.expose()),
        grace_secs: body.grace_secs.unwrap_or(DEFAULT_WEBHOOK_SECRET_GRACE_SECS),
        at: state.ledger.now(),
    };
    let merchant = update(state, merchant_id, command, context).await?;
    Ok(RotatedEndpointSecretView {
        secret: secret_text(&secret)?,
        previous_valid_until: one(&merchant, id)?.previous_secret_valid_until,
    })
}

async fn test(
    state: &AppState,
    merchant: &Merchant,
    id: &str,
    body: TestEventBody,
    context: &CommandContext,
) -> Result<TestEventView, ApiError> {
    let endpoint = merchant
        .webhook_endpoint(endpoint_id(id)?)
        .ok_or(ApiError::WebhookEndpointNotFound)?;
    if !WEBHOOK_EVENT_TYPES.contains(&body.event_type.as_str()) {
        return Err(ApiError::InvalidEventFilter(format!(
            "unknown event type {:?}",
            body.event_type
        )));
    }
    let targets = state.config.webhook_targets;
    let sent = send_test_event(
        &state.ledger,
        &state.keyring,
        targets,
        merchant,
        endpoint,
        &body.event_type,
        context,
    )
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let (status_code, error, response_excerpt) = match &sent.attempt.outcome {
        AttemptOutcome::Response {
            status_code,
            body_excerpt,
        } => (Some(*status_code), None, Some(body_excerpt.clone())),
        AttemptOutcome::TransportError { error } => (None, Some(error.clone()), None),
    };
    Ok(TestEventView {
        delivery_id: sent.delivery.id().to_string(),
        event_type: body.event_type,
        delivered: sent.delivery.status() == WebhookDeliveryStatus::Delivered,
        status_code,
        error,
        latency_ms: sent.attempt.duration_ms,
        response_excerpt,
    })
}

fn cursor_text(row: &DeliveryRow) -> String {
    format!("{}_{}", row.queued_at.timestamp_micros(), row.delivery_id)
}

fn parse_cursor(text: &str) -> Result<DeliveryCursor, ApiError> {
    let invalid = || ApiError::InvalidQuery("cursor: not a cursor this API gave".into());
    let (micros, id) = text.split_once('_').ok_or_else(invalid)?;
    let queued_at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let delivery_id = id.parse().map_err(|_| invalid())?;
    Ok(DeliveryCursor {
        queued_at,
        delivery_id,
    })
}

/// A time filter as an instant; one that does not parse is refused naming its field, as the
/// other merchant lists do.
fn instant(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| ApiError::InvalidField {
                    field: field.to_owned(),
                    detail: "must be an RFC 3339 instant, e.g. 2026-11-01T00:00:00+05:30".into(),
                })
        })
        .transpose()
}

async fn deliveries(
    state: &AppState,
    merchant_id: MerchantId,
    query: DeliveryQuery,
) -> Result<DeliveryPageView, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_DELIVERY_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit: must be 1 to 100".into()));
    }
    let endpoint_id = match &query.endpoint_id {
        Some(id) => Some(
            id.parse::<uuid::Uuid>()
                .map_err(|_| ApiError::InvalidQuery("endpoint_id: not an id".into()))?,
        ),
        None => None,
    };
    let filter = MerchantDeliveryFilter {
        endpoint_id,
        event_type: query.event_type,
        status: query.status,
        queued_from: instant("from", query.from.as_deref())?,
        queued_to: instant("to", query.to.as_deref())?,
    };
    let after = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let mut rows = lightspeed_projections::webhooks::merchant_deliveries(
        state.pool(),
        merchant_id.0,
        &filter,
        after,
        i64::from(limit) + 1,
    )
    .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = rows.last().filter(|_| more).map(cursor_text);
    Ok(DeliveryPageView {
        data: rows.into_iter().map(delivery_view).collect(),
        next_cursor,
    })
}

async fn delivery(
    state: &AppState,
    merchant_id: MerchantId,
    id: &str,
) -> Result<DeliveryDetailView, ApiError> {
    let delivery_id = delivery_id(id)?;
    let row = lightspeed_projections::webhooks::delivery(state.pool(), delivery_id.0)
        .await?
        .filter(|row| row.merchant_id == merchant_id.0)
        .ok_or(ApiError::WebhookDeliveryNotFound)?;
    let attempts = lightspeed_projections::webhooks::attempts(state.pool(), delivery_id.0).await?;
    Ok(DeliveryDetailView {
        payload: row.payload.clone(),
        delivery: delivery_view(row),
        attempts: attempts.into_iter().map(attempt_view).collect(),
    })
}

/// Requeues a given-up delivery of this merchant, judged on the log (not the read model).
async fn resend(
    state: &AppState,
    merchant_id: MerchantId,
    id: &str,
    context: &CommandContext,
) -> Result<ResentDeliveryView, ApiError> {
    let delivery_id = delivery_id(id)?;
    let stream =
        stream_of::<WebhookDelivery>(delivery_id).map_err(|_| ApiError::WebhookDeliveryNotFound)?;
    let handler =
        CommandHandler::<WebhookDelivery, PgEventStore>::new(state.ledger.store().clone());
    let owned = handler
        .load(&stream)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .state
        .is_some_and(|delivery| delivery.merchant_id() == merchant_id);
    if !owned {
        return Err(ApiError::WebhookDeliveryNotFound);
    }
    match merchant_webhooks::resend_delivery(&state.ledger, delivery_id, context).await {
        Ok(_) => Ok(ResentDeliveryView {
            id: delivery_id.to_string(),
            status: "pending".into(),
        }),
        Err(ResendError::UnknownDelivery(_)) => Err(ApiError::WebhookDeliveryNotFound),
        Err(ResendError::NotGivenUp { status }) => {
            Err(ApiError::DeliveryNotResendable(match status {
                WebhookDeliveryStatus::Pending => "pending",
                WebhookDeliveryStatus::Delivered => "delivered",
                WebhookDeliveryStatus::GivenUp => "given_up",
            }))
        }
        Err(ResendError::Store(why)) => Err(ApiError::Internal(why)),
    }
}

/// The merchant's webhook endpoints, the first one (from the original `webhook_url`) first.
#[utoipa::path(
    get,
    path = "/webhook-endpoints",
    tag = "webhook-endpoints",
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The endpoints", body = Vec<WebhookEndpointView>),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_endpoints(
    request: SignedRequest,
) -> Result<Json<Vec<WebhookEndpointView>>, ApiError> {
    let merchant = request.merchant.merchant;
    Ok(Json(list(&merchant)))
}

/// Adds a webhook endpoint (at most 10); its secret is shown only in this answer.
#[utoipa::path(
    post,
    path = "/webhook-endpoints",
    tag = "webhook-endpoints",
    request_body = CreateWebhookEndpointBody,
    security(("merchant_signature" = [])),
    responses(
        (status = 201, description = "The endpoint and its secret, shown only here", body = CreatedWebhookEndpointView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "11th endpoint (TOO_MANY_WEBHOOK_ENDPOINTS), URL not https or resolving to a private, link-local, CGNAT, multicast or metadata address (INVALID_WEBHOOK_URL), unknown event type (INVALID_EVENT_FILTER)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_endpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: SignedRequest,
) -> Result<(StatusCode, Json<CreatedWebhookEndpointView>), ApiError> {
    let merchant = request.merchant.merchant;
    let body: CreateWebhookEndpointBody = parse_json(&request.body)?;
    let context = merchant_context(&merchant, &headers);
    create(&state, merchant.id(), body, &context)
        .await
        .map(|created| (StatusCode::CREATED, Json(created)))
}

/// One webhook endpoint.
#[utoipa::path(
    get,
    path = "/webhook-endpoints/{endpoint_id}",
    tag = "webhook-endpoints",
    params(("endpoint_id" = String, Path, description = "The endpoint id")),
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpointView),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint for this merchant (WEBHOOK_ENDPOINT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_endpoint(
    Path(endpoint_id): Path<String>,
    request: SignedRequest,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    let merchant = request.merchant.merchant;
    one(&merchant, &endpoint_id).map(Json)
}

/// Changes an endpoint's URL, description, enabled flag or event types; enabling one disabled for failing resumes deliveries.
#[utoipa::path(
    patch,
    path = "/webhook-endpoints/{endpoint_id}",
    tag = "webhook-endpoints",
    params(("endpoint_id" = String, Path, description = "The endpoint id")),
    request_body = UpdateWebhookEndpointBody,
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The endpoint as changed", body = WebhookEndpointView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint for this merchant (WEBHOOK_ENDPOINT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad URL (INVALID_WEBHOOK_URL) or event types (INVALID_EVENT_FILTER)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_endpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(endpoint_id): Path<String>,
    request: SignedRequest,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    let merchant = request.merchant.merchant;
    let body: UpdateWebhookEndpointBody = parse_json(&request.body)?;
    let context = merchant_context(&merchant, &headers);
    change(&state, merchant.id(), &endpoint_id, body, &context)
        .await
        .map(Json)
}

/// Removes an endpoint; its pending deliveries are no longer attempted.
#[utoipa::path(
    delete,
    path = "/webhook-endpoints/{endpoint_id}",
    tag = "webhook-endpoints",
    params(("endpoint_id" = String, Path, description = "The endpoint id")),
    security(("merchant_signature" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint for this merchant (WEBHOOK_ENDPOINT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(endpoint_id): Path<String>,
    request: SignedRequest,
) -> Result<StatusCode, ApiError> {
    let merchant = request.merchant.merchant;
    let context = merchant_context(&merchant, &headers);
    remove(&state, merchant.id(), &endpoint_id, &context).await
}

/// Replaces an endpoint's secret; during the grace period its webhooks carry signatures under both.
#[utoipa::path(
    post,
    path = "/webhook-endpoints/{endpoint_id}/secret/rotate",
    tag = "webhook-endpoints",
    params(("endpoint_id" = String, Path, description = "The endpoint id")),
    request_body = RotateEndpointSecretBody,
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The new secret, shown only here", body = RotatedEndpointSecretView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint for this merchant (WEBHOOK_ENDPOINT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Grace period out of range (INVALID_FIELD)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rotate_endpoint_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(endpoint_id): Path<String>,
    request: SignedRequest,
) -> Result<Json<RotatedEndpointSecretView>, ApiError> {
    let merchant = request.merchant.merchant;
    let body: RotateEndpointSecretBody = parse_json(&request.body)?;
    let context = merchant_context(&merchant, &headers);
    rotate(&state, merchant.id(), &endpoint_id, body, &context)
        .await
        .map(Json)
}

/// Sends a signed sample event of the chosen type to the endpoint through the delivery path and answers the attempt.
#[utoipa::path(
    post,
    path = "/webhook-endpoints/{endpoint_id}/test",
    tag = "webhook-endpoints",
    params(("endpoint_id" = String, Path, description = "The endpoint id")),
    request_body = TestEventBody,
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The attempt: status, latency, response excerpt", body = TestEventView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint for this merchant (WEBHOOK_ENDPOINT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown event type (INVALID_EVENT_FILTER)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn test_endpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(endpoint_id): Path<String>,
    request: SignedRequest,
) -> Result<Json<TestEventView>, ApiError> {
    let merchant = request.merchant.merchant;
    let body: TestEventBody = parse_json(&request.body)?;
    let context = merchant_context(&merchant, &headers);
    test(&state, &merchant, &endpoint_id, body, &context)
        .await
        .map(Json)
}

/// The merchant's webhook deliveries, newest first, by endpoint, event type, status and time, a page at a time.
#[utoipa::path(
    get,
    path = "/webhook-deliveries",
    tag = "webhook-endpoints",
    params(DeliveryQuery),
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPageView),
        (status = 400, description = "A query parameter does not parse (INVALID_QUERY)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`from` or `to` is not an RFC 3339 instant (INVALID_FIELD, naming it)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    AdminQuery(query): AdminQuery<DeliveryQuery>,
    request: SignedRequest,
) -> Result<Json<DeliveryPageView>, ApiError> {
    let merchant = request.merchant.merchant;
    deliveries(&state, merchant.id(), query).await.map(Json)
}

/// One delivery with its body and every attempt.
#[utoipa::path(
    get,
    path = "/webhook-deliveries/{delivery_id}",
    tag = "webhook-endpoints",
    params(("delivery_id" = String, Path, description = "The delivery id")),
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryDetailView),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery for this merchant (WEBHOOK_DELIVERY_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_delivery(
    State(state): State<AppState>,
    Path(delivery_id): Path<String>,
    request: SignedRequest,
) -> Result<Json<DeliveryDetailView>, ApiError> {
    let merchant = request.merchant.merchant;
    delivery(&state, merchant.id(), &delivery_id)
        .await
        .map(Json)
}

/// Sends a given-up delivery again from its first attempt.
#[utoipa::path(
    post,
    path = "/webhook-deliveries/{delivery_id}/resend",
    tag = "webhook-endpoints",
    params(("delivery_id" = String, Path, description = "The delivery id")),
    security(("merchant_signature" = [])),
    responses(
        (status = 202, description = "Queued again", body = ResentDeliveryView),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery for this merchant (WEBHOOK_DELIVERY_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The delivery is pending or delivered (DELIVERY_NOT_RESENDABLE)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resend_delivery(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(delivery_id): Path<String>,
    request: SignedRequest,
) -> Result<(StatusCode, Json<ResentDeliveryView>), ApiError> {
    let merchant = request.merchant.merchant;
    let context = merchant_context(&merchant, &headers);
    resend(&state, merchant.id(), &delivery_id, &context)
        .await
        .map(|resent| (StatusCode::ACCEPTED, Json(resent)))
}

/// A merchant's webhook endpoints, the first one (from the original `webhook_url`) first. (admin)
#[utoipa::path(
    get,
    path = "/admin/merchants/{id}/webhook-endpoints",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The endpoints", body = Vec<WebhookEndpointView>),
        (status = 404, description = "No such merchant (MERCHANT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn admin_list_endpoints(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<WebhookEndpointView>>, ApiError> {
    let merchant_id = admin_merchant_id(&id)?;
    let merchant = merchant_of(&state, merchant_id).await?;
    Ok(Json(list(&merchant)))
}

/// Adds a webhook endpoint (at most 10); its secret is shown only in this answer. (admin)
#[utoipa::path(
    post,
    path = "/admin/merchants/{id}/webhook-endpoints",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id")),
    request_body = CreateWebhookEndpointBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 201, description = "The endpoint and its secret, shown only here", body = CreatedWebhookEndpointView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such merchant (MERCHANT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "11th endpoint (TOO_MANY_WEBHOOK_ENDPOINTS), URL not https or resolving to a private, link-local, CGNAT, multicast or metadata address (INVALID_WEBHOOK_URL), unknown event type (INVALID_EVENT_FILTER)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn admin_create_endpoint(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateWebhookEndpointBody>,
) -> Result<(StatusCode, Json<CreatedWebhookEndpointView>), ApiError> {
    let merchant_id = admin_merchant_id(&id)?;
    let context = admin.context(&headers);
    create(&state, merchant_id, body, &context)
        .await
        .map(|created| (StatusCode::CREATED, Json(created)))
}

/// One webhook endpoint. (admin)
#[utoipa::path(
    get,
    path = "/admin/merchants/{id}/webhook-endpoints/{endpoint_id}",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id"), ("endpoint_id" = String, Path, description = "The endpoint id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpointView),
        (status = 404, description = "No such endpoint (WEBHOOK_ENDPOINT_NOT_FOUND), or no such merchant (MERCHANT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn admin_get_endpoint(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path((id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    let merchant_id = admin_merchant_id(&id)?;
    let merchant = merchant_of(&state, merchant_id).await?;
    one(&merchant, &endpoint_id).map(Json)
}

/// Changes an endpoint's URL, description, enabled flag or event types; enabling one disabled for failing resumes deliveries. (admin)
#[utoipa::path(
    patch,
    path = "/admin/merchants/{id}/webhook-endpoints/{endpoint_id}",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id"), ("endpoint_id" = String, Path, description = "The endpoint id")),
    request_body = UpdateWebhookEndpointBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The endpoint as changed", body = WebhookEndpointView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint (WEBHOOK_ENDPOINT_NOT_FOUND), or no such merchant (MERCHANT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad URL (INVALID_WEBHOOK_URL) or event types (INVALID_EVENT_FILTER)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn admin_update_endpoint(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path((id, endpoint_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateWebhookEndpointBody>,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    let merchant_id = admin_merchant_id(&id)?;
    let context = admin.context(&headers);
    change(&state, merchant_id, &endpoint_id, body, &context)
        .await
        .map(Json)
}

/// Removes an endpoint; its pending deliveries are no longer attempted. (admin)
#[utoipa::path(
    delete,
    path = "/admin/merchants/{id}/webhook-endpoints/{endpoint_id}",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id"), ("endpoint_id" = String, Path, description = "The endpoint id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such endpoint (WEBHOOK_ENDPOINT_NOT_FOUND), or no such merchant (MERCHANT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn admin_delete_endpoint(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path((id, endpoint_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let merchant_id = admin_merchant_id(&id)?;
    let context = admin.context(&headers);
    remove(&state, merchant_id, &endpoint_id, &context).await
}

/// Replaces an endpoint's secret; during the grace period its webhooks carry signatures under both. (admin)
#[utoipa::path(
    post,
    path = "/admin/merchants/{id}/webhook-endpoints/{endpoint_id}/secret/rotate",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id"), ("endpoint_id" = String, Path, description = "The endpoint id")),
    request_body = RotateEndpointSecretBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The new secret, shown only here", body = RotatedEndpointSecretView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint (WEBHOOK_ENDPOINT_NOT_FOUND), or no such merchant (MERCHANT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Grace period out of range (INVALID_FIELD)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn admin_rotate_endpoint_secret(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path((id, endpoint_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<RotateEndpointSecretBody>,
) -> Result<Json<RotatedEndpointSecretView>, ApiError> {
    let merchant_id = admin_merchant_id(&id)?;
    let context = admin.context(&headers);
    rotate(&state, merchant_id, &endpoint_id, body, &context)
        .await
        .map(Json)
}

/// Sends a signed sample event of the chosen type to the endpoint through the delivery path and answers the attempt. (admin)
#[utoipa::path(
    post,
    path = "/admin/merchants/{id}/webhook-endpoints/{endpoint_id}/test",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id"), ("endpoint_id" = String, Path, description = "The endpoint id")),
    request_body = TestEventBody,
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The attempt: status, latency, response excerpt", body = TestEventView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint (WEBHOOK_ENDPOINT_NOT_FOUND), or no such merchant (MERCHANT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown event type (INVALID_EVENT_FILTER)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn admin_test_endpoint(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path((id, endpoint_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<TestEventBody>,
) -> Result<Json<TestEventView>, ApiError> {
    let merchant_id = admin_merchant_id(&id)?;
    let merchant = merchant_of(&state, merchant_id).await?;
    let context = admin.context(&headers);
    test(&state, &merchant, &endpoint_id, body, &context)
        .await
        .map(Json)
}

/// A merchant's webhook deliveries, newest first, by endpoint, event type, status and time, a page at a time. (admin)
#[utoipa::path(
    get,
    path = "/admin/merchants/{id}/webhook-deliveries",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id"), DeliveryQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPageView),
        (status = 400, description = "A query parameter does not parse (INVALID_QUERY)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`from` or `to` is not an RFC 3339 instant (INVALID_FIELD, naming it)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such merchant (MERCHANT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn admin_list_deliveries(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
    AdminQuery(query): AdminQuery<DeliveryQuery>,
) -> Result<Json<DeliveryPageView>, ApiError> {
    let merchant_id = admin_merchant_id(&id)?;
    deliveries(&state, merchant_id, query).await.map(Json)
}

/// One delivery with its body and every attempt. (admin)
#[utoipa::path(
    get,
    path = "/admin/merchants/{id}/webhook-deliveries/{delivery_id}",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id"), ("delivery_id" = String, Path, description = "The delivery id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryDetailView),
        (status = 404, description = "No such delivery (WEBHOOK_DELIVERY_NOT_FOUND), or no such merchant (MERCHANT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is not built yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn admin_get_delivery(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Json<DeliveryDetailView>, ApiError> {
    let merchant_id = admin_merchant_id(&id)?;
    delivery(&state, merchant_id, &delivery_id).await.map(Json)
}

/// Sends a given-up delivery again from its first attempt. (admin)
#[utoipa::path(
    post,
    path = "/admin/merchants/{id}/webhook-deliveries/{delivery_id}/resend",
    tag = "admin-merchants",
    params(("id" = String, Path, description = "The merchant id"), ("delivery_id" = String, Path, description = "The delivery id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 202, description = "Queued again", body = ResentDeliveryView),
        (status = 404, description = "No such delivery (WEBHOOK_DELIVERY_NOT_FOUND), or no such merchant (MERCHANT_NOT_FOUND)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The delivery is pending or delivered (DELIVERY_NOT_RESENDABLE)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn admin_resend_delivery(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<ResentDeliveryView>), ApiError> {
    let merchant_id = admin_merchant_id(&id)?;
    let context = admin.context(&headers);
    resend(&state, merchant_id, &delivery_id, &context)
        .await
        .map(|resent| (StatusCode::ACCEPTED, Json(resent)))
}

/// The merchant's and the admins' webhook-endpoint and delivery routes.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_endpoint_secret))
        .routes(routes!(test_endpoint))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(resend_delivery))
        .routes(routes!(admin_list_endpoints, admin_create_endpoint))
        .routes(routes!(
            admin_get_endpoint,
            admin_update_endpoint,
            admin_delete_endpoint
        ))
        .routes(routes!(admin_rotate_endpoint_secret))
        .routes(routes!(admin_test_endpoint))
        .routes(routes!(admin_list_deliveries))
        .routes(routes!(admin_get_delivery))
        .routes(routes!(admin_resend_delivery))
}
