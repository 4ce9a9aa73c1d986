//! The merchant payment API: initiate, read, and follow a payment's status.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use lightspeed_domain::payment::{Payment, PaymentDetails, PaymentStatus};
use lightspeed_domain::{Paise, PaymentId};
use lightspeed_eventstore::{CommandContext, Metadata};
use lightspeed_services::{Initiated, PaymentRequest, ServiceError, StatusCursor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa::openapi::schema::Type;
use utoipa::openapi::{ObjectBuilder, Ref};

use crate::auth::{SignedInitiation, SignedRequest, parse_json};
use crate::error::{ApiError, Problem};
use crate::schema_rules;
use crate::state::AppState;

/// The payer, as far as the merchant knows them. Unknown fields are refused (`422`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    /// Full name, at most 100 characters.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
    /// Email address, at most 254 characters.
    #[schema(max_length = 254, pattern = r"^[^@\s]+@[^.\s]\S*\.\S*$")]
    pub email: Option<String>,
    /// Phone in international format: an optional `+`, then 10 to 15 digits, e.g. `919867800451`.
    #[schema(pattern = r"^\+?[0-9]{10,15}$")]
    pub phone: Option<String>,
}

/// A request to collect a payment. Unknown fields are refused (`422 INVALID_FIELD` naming the
/// field), so a misspelt optional field is never silently lost.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitiateBody {
    /// Amount in paise, 1 to 1 000 000 000 (₹499.00 is `49900`).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub amount: i64,
    /// `INR`.
    #[schema(schema_with = currency_schema)]
    pub currency: String,
    /// Your order id: 1 to 40 letters, digits, `-`, `_` or `.`; your idempotency key.
    #[schema(min_length = 1, max_length = 40, pattern = r"^[A-Za-z0-9._-]+$")]
    pub order_id: String,
    /// The payer.
    #[serde(default)]
    pub customer: Option<CustomerBody>,
    /// Where the payer returns after paying: an absolute http(s) URL, at most 2 048 characters.
    #[serde(default)]
    #[schema(schema_with = schema_rules::http_url)]
    pub redirect_url: Option<String>,
    /// Up to 15 notes, kept with the payment: keys 1 to 40 printable characters, values at most
    /// 256 characters without control characters.
    #[serde(default)]
    #[schema(schema_with = notes_schema)]
    pub notes: Option<BTreeMap<String, String>>,
}

fn currency_schema() -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["INR"]))
        .description(Some("`INR`"))
        .build()
}

fn notes_schema() -> utoipa::openapi::Object {
    let key = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(40))
        .pattern(Some(schema_rules::PRINTABLE_TEXT));
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(256))
        .pattern(Some(r"^[^\x00-\x1F\x7F-\x9F]*$"));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(15))
        .property_names(Some(key))
        .additional_properties(Some(value))
        .description(Some("Up to 15 key/value notes, kept with the payment"))
        .build()
}

/// The answer to an initiation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InitiatedBody {
    /// Our id for the payment.
    pub transaction_id: String,
    /// Always `created`.
    #[schema(schema_with = created_status_schema)]
    pub status: PaymentStatus,
    /// Send the payer here.
    pub checkout_url: String,
}

/// A payment as the merchant sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransactionBody {
    /// Our id for the payment.
    pub transaction_id: String,
    /// Your order id.
    pub order_id: String,
    /// Amount in paise.
    pub amount: i64,
    /// Currency.
    pub currency: String,
    /// Where the payment stands.
    #[schema(schema_with = payment_status_schema)]
    pub status: PaymentStatus,
    /// The gateway (PSP account) it is routed to.
    pub gateway_id: String,
    /// The PSP's order id, once created.
    pub psp_order_id: Option<String>,
    /// The PSP's payment id, once paid.
    pub psp_payment_id: Option<String>,
    /// Our commission in paise, once paid.
    pub commission: Option<i64>,
    /// Why it failed.
    pub failure_code: Option<String>,
    /// The failure, in words.
    pub failure_reason: Option<String>,
    /// Refunded so far, in paise.
    pub refunded: i64,
    /// When it was initiated.
    pub created_at: String,
    /// Where the payer pays.
    pub checkout_url: String,
}

/// Adds the `PaymentStatus` schema, one of [`PaymentStatus::ALL`]'s names, which every payment
/// status in the document refers to.
pub(crate) struct PaymentStatusSchema;

impl utoipa::Modify for PaymentStatusSchema {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(PaymentStatus::ALL.map(PaymentStatus::as_str)))
            .description(Some(
                "Where a payment stands, named the same in the merchant API, the status stream, \
                 merchant webhooks and admin reads: `created` (routed to a gateway, no PSP order \
                 yet), `pending` (the PSP order exists; waiting for the payer and the PSP), \
                 `succeeded`, `failed` (a late success may still follow) or `refunded` (in full).",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .schemas
            .insert("PaymentStatus".to_owned(), schema.into());
    }
}

/// A reference to the `PaymentStatus` schema.
pub fn payment_status_schema() -> Ref {
    Ref::from_schema_name("PaymentStatus")
}

/// The status an initiation answers: always `created`.
fn created_status_schema() -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([PaymentStatus::Created.as_str()]))
        .description(Some(
            "Always `created`, also when the same request is answered again (read \
             `GET /transaction/{id}` for the status now)",
        ))
        .build()
}

pub(crate) fn transaction_body(state: &AppState, payment: &Payment) -> TransactionBody {
    TransactionBody {
        transaction_id: payment.id().to_string(),
        order_id: payment.merchant_order_id().to_owned(),
        amount: payment.amount().0,
        currency: "INR".into(),
        status: payment.status(),
        gateway_id: payment.gateway_id().to_string(),
        psp_order_id: payment.psp_order().map(|o| o.psp_order_id.clone()),
        psp_payment_id: payment.success().map(|s| s.psp_payment_id.clone()),
        commission: payment.commission().map(|c| c.0),
        failure_code: payment.failure().map(|f| f.code.clone()),
        failure_reason: payment.failure().map(|f| f.description.clone()),
        refunded: payment.refunded().0,
        created_at: payment.initiated_at().to_rfc3339(),
        checkout_url: state.checkout_url(payment.id()),
    }
}

/// The metadata every command of a merchant request carries.
pub fn merchant_context(
    merchant: &lightspeed_domain::merchant::Merchant,
    headers: &HeaderMap,
) -> CommandContext {
    CommandContext {
        command_id: None,
        metadata: Metadata {
            correlation_id: Some(uuid::Uuid::now_v7()),
            causation_id: None,
            actor: Some(format!("merchant:{}", merchant.id())),
            request_id: headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        },
    }
}

/// A digest that is the same for the same request content, whatever its key order or spacing.
fn request_digest(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| lightspeed_eventstore::hash::canonical_json(&value).ok());
    hex::encode(Sha256::digest(canonical.as_deref().unwrap_or(body)))
}

/// Starts a payment and answers where to send the payer.
#[utoipa::path(
    post,
    path = "/payment/initiate",
    tag = "payments",
    request_body = InitiateBody,
    security(("merchant_signature" = [])),
    responses(
        (status = 201, description = "Payment created (or the same request answered again)", body = InitiatedBody),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, stale or wrong signature, or unknown client key", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "Merchant suspended until the commission due is paid", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Order id already used with a different request", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the merchant's rate (its own, else the API's default), code `RATE_LIMITED`; or the payment would pass one of the merchant's quota caps, code `QUOTA_EXCEEDED`, with `quota` naming the cap, what is used and when its period resets (00:00 IST); or, when many of the merchant's initiations at once kept winning the race on its quota usage, code `CONTENDED` (nothing recorded; send the same request again); see Retry-After", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "about:blank", "title": "Too Many Requests", "status": 429, "code": "QUOTA_EXCEEDED", "detail": "the payment would pass the merchant's daily_count quota of 500; 500 is used and it resets at 2026-12-07T18:30:00+00:00", "quota": {"name": "daily_count", "limit": 500, "used": 500, "resets_at": "2026-12-07T18:30:00Z"}})),
        (status = 503, description = "No gateway can take the payment now", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn initiate(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedInitiation(request): SignedInitiation,
) -> Result<(StatusCode, Json<InitiatedBody>), ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let merchant = &request.merchant.merchant;
    state
        .initiate_limits
        .check(merchant.id(), merchant.api_rate_per_minute())
        .await?;
    let body: InitiateBody = parse_json(&request.body)?;
    let customer = body.customer.unwrap_or_default();
    let payment = PaymentRequest {
        amount: Paise(body.amount),
        currency: body.currency,
        order_id: body.order_id,
        details: PaymentDetails {
            customer_name: customer.name,
            customer_email: customer.email,
            customer_phone: customer.phone,
            redirect_url: body.redirect_url,
            notes: body.notes.unwrap_or_default(),
        },
        request_digest: request_digest(&request.body),
    };
    let context = merchant_context(merchant, &headers);
    let initiated = state
        .ledger
        .initiate_payment(&request.merchant, &payment, &context)
        .await
        .map_err(|error| match error {
            ServiceError::QuotaExceeded(refusal) => {
                ApiError::quota_exceeded(refusal, state.ledger.now())
            }
            other => other.into(),
        })?;
    let payment_id = initiated.payment_id();
    if let Initiated::Created(_) = initiated {
        tracing::info!(%payment_id, merchant_id = %merchant.id(), amount = body.amount, "payment initiated");
    }
    Ok((
        StatusCode::CREATED,
        Json(InitiatedBody {
            transaction_id: payment_id.to_string(),
            status: PaymentStatus::Created,
            checkout_url: state.checkout_url(payment_id),
        }),
    ))
}

fn parse_payment_id(id: &str) -> Result<PaymentId, ApiError> {
    id.parse().map_err(|_| ApiError::TransactionNotFound)
}

/// A payment of the signing merchant.
#[utoipa::path(
    get,
    path = "/transaction/{id}",
    tag = "payments",
    params(("id" = String, Path, description = "The transaction id")),
    security(("merchant_signature" = [])),
    responses(
        (status = 200, description = "The payment", body = TransactionBody),
        (status = 401, description = "Missing, stale or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such transaction for this merchant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn transaction(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Json<TransactionBody>, ApiError> {
    let payment_id = parse_payment_id(&id)?;
    let payment = state
        .ledger
        .payment_of(request.merchant.merchant.id(), payment_id)
        .await?;
    Ok(Json(transaction_body(&state, &payment)))
}

/// One status change, as sent on the stream.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusEvent {
    /// Our id for the payment.
    pub transaction_id: String,
    /// The status the payment moved to.
    #[schema(schema_with = payment_status_schema)]
    pub status: PaymentStatus,
}

/// How often the status stream looks for a change.
const STATUS_POLL: Duration = Duration::from_millis(300);

/// Server-Sent Events with a payment's status: its status now, then every status it moves to,
/// in order, none skipped, until it is final. Needs only the transaction id (what the payer's
/// browser holds) and says nothing but the status.
#[utoipa::path(
    get,
    path = "/status/{id}/stream",
    tag = "payments",
    params(("id" = String, Path, description = "The transaction id")),
    responses(
        (status = 200, description = "`text/event-stream` of `status` events carrying StatusEvent", body = StatusEvent, content_type = "text/event-stream"),
        (status = 404, description = "No such transaction", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn status_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let payment_id = parse_payment_id(&id)?;
    let mut cursor = StatusCursor::default();
    let passed = state.ledger.statuses_since(payment_id, &mut cursor).await?;
    let now = passed
        .last()
        .copied()
        .ok_or(ApiError::TransactionNotFound)?;
    let follower = StatusFollower {
        deadline: tokio::time::Instant::now() + state.config.status_stream_limit,
        state,
        payment_id,
        cursor,
        due: VecDeque::from([now]),
        last_sent: None,
    };
    let stream = futures::stream::unfold(follower, StatusFollower::next_event);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One status stream's follower of the payment's log: what it read, and what it has yet to send.
struct StatusFollower {
    state: AppState,
    payment_id: PaymentId,
    cursor: StatusCursor,
    /// Statuses read from the log and not sent yet, oldest first.
    due: VecDeque<PaymentStatus>,
    last_sent: Option<PaymentStatus>,
    deadline: tokio::time::Instant,
}

impl StatusFollower {
    /// The next status event, once the log has one; `None` once every status read was sent and
    /// the last is final, or the stream's time is up.
    async fn next_event(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(status) = self.due.pop_front() {
                self.last_sent = Some(status);
                let event = StatusEvent {
                    transaction_id: self.payment_id.to_string(),
                    status,
                };
                let event = Event::default()
                    .event("status")
                    .json_data(&event)
                    .unwrap_or_default();
                return Some((Ok(event), self));
            }
            let finished = self.last_sent.is_some_and(PaymentStatus::is_final);
            if finished || tokio::time::Instant::now() >= self.deadline {
                return None;
            }
            tokio::time::sleep(STATUS_POLL).await;
            match self
                .state
                .ledger
                .statuses_since(self.payment_id, &mut self.cursor)
                .await
            {
                Ok(statuses) => self.due.extend(statuses),
                Err(e) => {
                    let payment_id = self.payment_id;
                    tracing::warn!(error = %e, %payment_id, "status stream cannot read the payment");
                }
            }
        }
    }
}
