//! Errors as `application/problem+json` (RFC 9457) with a stable machine `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lightspeed_domain::gateway::GatewayError;
use lightspeed_domain::merchant::MerchantError;
use lightspeed_domain::notification::{NotificationError, NotificationStatus};
use lightspeed_domain::payment::PaymentError;
use lightspeed_domain::person::PersonError;
use lightspeed_domain::quota::{QuotaError, UsageError};
use lightspeed_domain::wallet::WalletError;
use lightspeed_domain::{Paise, PaymentId};
use lightspeed_eventstore::ReadError;
use lightspeed_projections::ProjectionError;
use lightspeed_services::ServiceError;
use serde::Serialize;
use utoipa::ToSchema;

/// Seconds a request refused for contention is told to wait before it is sent again.
pub const CONTENDED_RETRY_AFTER_SECS: u64 = 1;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`about:blank` when the code says it all).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short human title.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Stable machine-readable code, e.g. `INVALID_FIELD`.
    pub code: String,
    /// Human explanation of this occurrence.
    pub detail: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What the merchant owes, for `MERCHANT_SUSPENDED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_due_paise: Option<i64>,
    /// The payment an order id already started, for `ORDER_ID_REUSED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// What is left to refund, for `REFUND_EXCEEDS_REMAINING`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refundable_paise: Option<i64>,
    /// Every field at fault, when several are (`field` names the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
    /// The cap a payment would pass, for `QUOTA_EXCEEDED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaProblem>,
}

/// The cap a refused payment would pass, and when its period resets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct QuotaProblem {
    /// `daily_count`, `daily_volume`, `monthly_count` or `monthly_volume`.
    pub name: String,
    /// The cap: payments, or paise for a volume cap.
    pub limit: i64,
    /// Used in the current period, in the same unit.
    pub used: i64,
    /// When the period resets (00:00 IST the next day, or the first of the next month).
    pub resets_at: String,
}

/// One field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The field, e.g. `credentials.webhook_secret`.
    pub field: String,
    /// What is wrong with it.
    pub detail: String,
}

/// Everything the API refuses or fails with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Signature headers missing.
    #[error("missing {0} header")]
    MissingCredentials(&'static str),
    /// No merchant with this client key (or the key was rotated away).
    #[error("unknown client key")]
    UnknownClientKey,
    /// The signature does not match the request.
    #[error("signature does not match the request")]
    BadSignature,
    /// The timestamp is outside the ±5 minute window.
    #[error("timestamp is {0} s away from the server clock; the window is 300 s")]
    StaleTimestamp(i64),
    /// A header is malformed.
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    /// The body is not JSON.
    #[error("body is not valid JSON: {0}")]
    MalformedJson(String),
    /// A field breaks a rule.
    #[error("{field}: {detail}")]
    InvalidField {
        /// The field.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// Several fields break rules.
    #[error("{}", describe_fields(.0))]
    InvalidFields(Vec<FieldProblem>),
    /// Text that cannot be stored: a NUL character or bytes that are not UTF-8.
    #[error("{field}: {detail}")]
    InvalidText {
        /// Where the text is: a query parameter, `path`, or a body field.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// An error answered by the router or a layer rather than a handler (no route, method not
    /// allowed, body over the limit, time out), given a problem document on its way out.
    #[error("{detail}")]
    Refused {
        /// The status the router or layer chose.
        status: StatusCode,
        /// What it said, or the status's reason.
        detail: String,
    },
    /// The body is larger than allowed.
    #[error("body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body is not `application/json`.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// The merchant owes too much commission to start payments.
    #[error("merchant is suspended until the commission due is paid")]
    MerchantSuspended {
        /// Balance due.
        amount_due: Paise,
    },
    /// The merchant is suspended by ops or closed.
    #[error("merchant is not active")]
    MerchantNotActive,
    /// The order id already started another payment with a different request.
    #[error("order id already used with a different request")]
    OrderIdReused(PaymentId),
    /// No such transaction for this merchant.
    #[error("transaction not found")]
    TransactionNotFound,
    /// Only a succeeded payment can be refunded.
    #[error("the payment is {0}; only a succeeded payment can be refunded")]
    PaymentNotRefundable(&'static str),
    /// The refund asks for more than is left to refund.
    #[error("refund of ₹{requested} exceeds the ₹{refundable} left to refund")]
    RefundExceedsRemaining {
        /// Left to refund (refunds awaiting their outcome hold theirs).
        refundable: Paise,
        /// Asked for.
        requested: Paise,
    },
    /// The refund id already asked for another refund.
    #[error("refund id already used with a different request")]
    RefundIdReused,
    /// No refund with this id for this merchant.
    #[error("refund not found")]
    RefundNotFound,
    /// No such gateway for this merchant.
    #[error("gateway not found")]
    GatewayNotFound,
    /// No gateway of the merchant can take a payment now.
    #[error("no gateway is available for this payment right now")]
    NoGatewayAvailable,
    /// The payment would pass one of the merchant's quota caps.
    #[error("the payment would pass the merchant's {} quota of {limit}; {used} is used and it resets at {}", quota.as_str(), resets_at.to_rfc3339())]
    QuotaExceeded {
        /// The cap.
        quota: lightspeed_domain::quota::QuotaKind,
        /// Its limit.
        limit: i64,
        /// What is used.
        used: i64,
        /// When its period resets.
        resets_at: chrono::DateTime<chrono::Utc>,
        /// Seconds from now to the reset, for `Retry-After`.
        retry_after_secs: u64,
    },
    /// Over the merchant's request rate.
    #[error("rate limit exceeded; retry after {0} s")]
    RateLimited(u64),
    /// Concurrent requests on the same streams (a capped merchant's crowd of initiations) kept
    /// winning the race; nothing was recorded for this one, and the same request may be sent
    /// again after [`CONTENDED_RETRY_AFTER_SECS`].
    #[error(
        "too many concurrent requests on the same merchant; nothing was recorded, retry after {} s",
        CONTENDED_RETRY_AFTER_SECS
    )]
    Contended,
    /// A PSP webhook URL naming no merchant or gateway of ours.
    #[error("no merchant or gateway at this webhook URL")]
    UnknownWebhookUrl,
    /// A PSP webhook whose signature does not verify.
    #[error("webhook signature does not verify")]
    WebhookNotVerified,
    /// A PSP webhook from an address outside the provider's allow-list.
    #[error("webhooks are not accepted from this address")]
    WebhookSourceNotAllowed,
    /// No `Authorization: Bearer` admin token.
    #[error("missing admin bearer token")]
    AdminTokenMissing,
    /// The admin token is past its expiry.
    #[error("admin token expired")]
    AdminTokenExpired,
    /// The admin token is malformed or not signed with our secret.
    #[error("admin token is not valid")]
    AdminTokenInvalid,
    /// A valid token of someone who may not use the admin API (role or allow-list).
    #[error("{0}")]
    AdminForbidden(&'static str),
    /// The token was revoked, or its person removed (`POST /admin/tokens/revoke`).
    #[error("admin token was revoked")]
    AdminTokenRevoked,
    /// The person's role does not allow this change.
    #[error("the {role} role does not allow {action}")]
    RoleForbidden {
        /// The role the request was made in.
        role: lightspeed_domain::access::Role,
        /// The kind of change refused.
        action: lightspeed_domain::access::Action,
    },
    /// No person with this email.
    #[error("no person with this email")]
    PersonNotFound,
    /// The person is already invited, in another role.
    #[error("already invited as {0}; change the role with PATCH /admin/people/{{email}}")]
    PersonExists(lightspeed_domain::access::Role),
    /// The person is an admin by `ADMIN_EMAILS`, which only the setting changes.
    #[error("an admin by the ADMIN_EMAILS setting; change the setting to change them")]
    BootstrapAdmin,
    /// Admin authentication is not configured on this server.
    #[error("the admin API is disabled: ADMIN_JWT_SECRET is not configured")]
    AdminDisabled,
    /// No such merchant.
    #[error("merchant not found")]
    MerchantNotFound,
    /// The merchant is closed; nothing but key rotation's resealing is accepted.
    #[error("merchant is closed")]
    MerchantClosed,
    /// The merchant already has the most active gateways allowed.
    #[error("merchant already has {0} active gateways")]
    TooManyGateways(usize),
    /// The gateway is retired.
    #[error("gateway is retired")]
    GatewayRetired,
    /// A generated client key collided with an existing one (try again).
    #[error("client key already taken; try again")]
    ClientKeyTaken,
    /// A query parameter breaks a rule.
    #[error("{0}")]
    InvalidQuery(String),
    /// A read model has not been built yet.
    #[error("read model {0} is not built yet")]
    ReadModelNotReady(&'static str),
    /// No queue of this name.
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    /// No queue action of this name.
    #[error("unknown queue action {0:?}; expected pause, resume, retry or drain")]
    UnknownQueueAction(String),
    /// Queue control is not wired on this server.
    #[error("queue control is not available on this server")]
    QueuesUnavailable,
    /// A destructive action without its confirmation parameter.
    #[error("{0}")]
    ConfirmationRequired(String),
    /// The broker failed to carry out a queue action.
    #[error("queue action failed: {0}")]
    QueueActionFailed(String),
    /// RazorpayX payouts are not configured on this server.
    #[error("commission payouts are not configured on this server")]
    PayoutsDisabled,
    /// A verified webhook that is not a payout event in the documented shape.
    #[error("{0}")]
    MalformedWebhook(String),
    /// A settlement larger than the balance due not reserved by pending payouts.
    #[error("settlement of ₹{requested} exceeds the available ₹{available}")]
    SettlementExceedsBalance {
        /// Asked for.
        requested: Paise,
        /// Balance due minus pending payouts.
        available: Paise,
    },
    /// A statement month that is not `yyyy-mm`.
    #[error("{0}")]
    InvalidMonth(String),
    /// Reconciliation is not wired on this server.
    #[error("reconciliation is not available on this server")]
    ReconciliationUnavailable,
    /// The reconciliation sweep failed.
    #[error("reconciliation failed: {0}")]
    ReconciliationFailed(String),
    /// No WhatsApp notification with this id.
    #[error("notification not found")]
    NotificationNotFound,
    /// No ops alert was raised under this key.
    #[error("alert not found")]
    AlertNotFound,
    /// Only a failed notification can be resent.
    #[error("notification is {0}; only a failed one can be resent")]
    NotificationNotResendable(&'static str),
    /// Metrics are not installed on this server.
    #[error("metrics are not enabled on this server")]
    MetricsDisabled,
    /// No route here.
    #[error("no such route")]
    NotFound,
    /// No invoice with this number (for this merchant).
    #[error("no such invoice")]
    InvoiceNotFound,
    /// No webhook endpoint with this id for this merchant.
    #[error("no such webhook endpoint")]
    WebhookEndpointNotFound,
    /// The merchant already has the most webhook endpoints allowed.
    #[error("at most {0} webhook endpoints per merchant")]
    TooManyWebhookEndpoints(usize),
    /// A webhook endpoint URL that may not be used: its shape, its scheme, or where it resolves.
    #[error("url: {0}")]
    InvalidWebhookUrl(String),
    /// An event-type filter naming unknown types.
    #[error("event_types: {0}")]
    InvalidEventFilter(String),
    /// No webhook delivery with this id for this merchant.
    #[error("no such webhook delivery")]
    WebhookDeliveryNotFound,
    /// Only a given-up delivery can be resent.
    #[error("the delivery is {0}; only a given-up delivery can be resent")]
    DeliveryNotResendable(&'static str),
    /// Something failed on our side.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            MissingCredentials(_) => (StatusCode::UNAUTHORIZED, "MISSING_CREDENTIALS"),
            UnknownClientKey => (StatusCode::UNAUTHORIZED, "UNKNOWN_CLIENT_KEY"),
            BadSignature => (StatusCode::UNAUTHORIZED, "BAD_SIGNATURE"),
            StaleTimestamp(_) => (StatusCode::UNAUTHORIZED, "STALE_TIMESTAMP"),
            MalformedHeader(_) => (StatusCode::UNAUTHORIZED, "MALFORMED_CREDENTIALS"),
            MalformedJson(_) => (StatusCode::BAD_REQUEST, "MALFORMED_JSON"),
            InvalidField { .. } | InvalidFields(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD")
            }
            InvalidText { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_TEXT"),
            Refused { status, .. } => (*status, refused_code(*status)),
            PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
            MerchantSuspended { .. } => (StatusCode::PAYMENT_REQUIRED, "MERCHANT_SUSPENDED"),
            MerchantNotActive => (StatusCode::FORBIDDEN, "MERCHANT_NOT_ACTIVE"),
            OrderIdReused(_) => (StatusCode::CONFLICT, "ORDER_ID_REUSED"),
            TransactionNotFound => (StatusCode::NOT_FOUND, "TRANSACTION_NOT_FOUND"),
            PaymentNotRefundable(_) => (StatusCode::CONFLICT, "PAYMENT_NOT_REFUNDABLE"),
            RefundExceedsRemaining { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "REFUND_EXCEEDS_REMAINING")
            }
            RefundIdReused => (StatusCode::CONFLICT, "REFUND_ID_REUSED"),
            RefundNotFound => (StatusCode::NOT_FOUND, "REFUND_NOT_FOUND"),
            GatewayNotFound => (StatusCode::NOT_FOUND, "GATEWAY_NOT_FOUND"),
            NoGatewayAvailable => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
            Contended => (StatusCode::TOO_MANY_REQUESTS, "CONTENDED"),
            QuotaExceeded { .. } => (StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED"),
            UnknownWebhookUrl => (StatusCode::NOT_FOUND, "UNKNOWN_WEBHOOK_URL"),
            WebhookNotVerified => (StatusCode::UNAUTHORIZED, "WEBHOOK_NOT_VERIFIED"),
            WebhookSourceNotAllowed => (StatusCode::FORBIDDEN, "WEBHOOK_SOURCE_NOT_ALLOWED"),
            AdminTokenMissing => (StatusCode::UNAUTHORIZED, "ADMIN_TOKEN_MISSING"),
            AdminTokenExpired => (StatusCode::UNAUTHORIZED, "ADMIN_TOKEN_EXPIRED"),
            AdminTokenInvalid => (StatusCode::UNAUTHORIZED, "ADMIN_TOKEN_INVALID"),
            AdminForbidden(_) => (StatusCode::FORBIDDEN, "ADMIN_FORBIDDEN"),
            AdminDisabled => (StatusCode::SERVICE_UNAVAILABLE, "ADMIN_DISABLED"),
            AdminTokenRevoked => (StatusCode::UNAUTHORIZED, "ADMIN_TOKEN_REVOKED"),
            RoleForbidden { .. } => (StatusCode::FORBIDDEN, "ROLE_FORBIDDEN"),
            PersonNotFound => (StatusCode::NOT_FOUND, "PERSON_NOT_FOUND"),
            PersonExists(_) => (StatusCode::CONFLICT, "PERSON_EXISTS"),
            BootstrapAdmin => (StatusCode::CONFLICT, "BOOTSTRAP_ADMIN"),
            MerchantNotFound => (StatusCode::NOT_FOUND, "MERCHANT_NOT_FOUND"),
            InvoiceNotFound => (StatusCode::NOT_FOUND, "INVOICE_NOT_FOUND"),
            MerchantClosed => (StatusCode::CONFLICT, "MERCHANT_CLOSED"),
            TooManyGateways(_) => (StatusCode::CONFLICT, "TOO_MANY_GATEWAYS"),
            GatewayRetired => (StatusCode::CONFLICT, "GATEWAY_RETIRED"),
            ClientKeyTaken => (StatusCode::CONFLICT, "CLIENT_KEY_TAKEN"),
            InvalidQuery(_) => (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
            ReadModelNotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "READ_MODEL_NOT_READY"),
            UnknownQueue(_) => (StatusCode::NOT_FOUND, "UNKNOWN_QUEUE"),
            UnknownQueueAction(_) => (StatusCode::NOT_FOUND, "UNKNOWN_QUEUE_ACTION"),
            QueuesUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "QUEUES_UNAVAILABLE"),
            ConfirmationRequired(_) => (StatusCode::BAD_REQUEST, "CONFIRMATION_REQUIRED"),
            QueueActionFailed(_) => (StatusCode::BAD_GATEWAY, "QUEUE_ACTION_FAILED"),
            PayoutsDisabled => (StatusCode::SERVICE_UNAVAILABLE, "PAYOUTS_DISABLED"),
            MalformedWebhook(_) => (StatusCode::BAD_REQUEST, "MALFORMED_WEBHOOK"),
            SettlementExceedsBalance { .. } => (StatusCode::CONFLICT, "SETTLEMENT_EXCEEDS_BALANCE"),
            InvalidMonth(_) => (StatusCode::BAD_REQUEST, "INVALID_MONTH"),
            ReconciliationUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "RECONCILIATION_UNAVAILABLE",
            ),
            ReconciliationFailed(_) => (StatusCode::BAD_GATEWAY, "RECONCILIATION_FAILED"),
            NotificationNotFound => (StatusCode::NOT_FOUND, "NOTIFICATION_NOT_FOUND"),
            AlertNotFound => (StatusCode::NOT_FOUND, "ALERT_NOT_FOUND"),
            NotificationNotResendable(_) => (StatusCode::CONFLICT, "NOTIFICATION_NOT_RESENDABLE"),
            MetricsDisabled => (StatusCode::SERVICE_UNAVAILABLE, "METRICS_DISABLED"),
            NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            WebhookEndpointNotFound => (StatusCode::NOT_FOUND, "WEBHOOK_ENDPOINT_NOT_FOUND"),
            TooManyWebhookEndpoints(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "TOO_MANY_WEBHOOK_ENDPOINTS",
            ),
            InvalidWebhookUrl(_) => (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_WEBHOOK_URL"),
            InvalidEventFilter(_) => (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_EVENT_FILTER"),
            WebhookDeliveryNotFound => (StatusCode::NOT_FOUND, "WEBHOOK_DELIVERY_NOT_FOUND"),
            DeliveryNotResendable(_) => (StatusCode::CONFLICT, "DELIVERY_NOT_RESENDABLE"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, code) = self.status_and_code();
        let detail = match self {
            // Never echo internals to a caller; the log line has them.
            ApiError::Internal(_) => "something failed on our side; it was logged".to_owned(),
            other => other.to_string(),
        };
        Problem {
            problem_type: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            code: code.into(),
            detail,
            field: match self {
                ApiError::InvalidField { field, .. } | ApiError::InvalidText { field, .. } => {
                    Some(field.clone())
                }
                ApiError::InvalidFields(fields) => fields.first().map(|f| f.field.clone()),
                _ => None,
            },
            amount_due_paise: match self {
                ApiError::MerchantSuspended { amount_due } => Some(amount_due.0),
                _ => None,
            },
            transaction_id: match self {
                ApiError::OrderIdReused(id) => Some(id.to_string()),
                _ => None,
            },
            errors: match self {
                ApiError::InvalidFields(fields) => Some(fields.clone()),
                _ => None,
            },
            refundable_paise: match self {
                ApiError::RefundExceedsRemaining { refundable, .. } => Some(refundable.0),
                _ => None,
            },
            quota: match self {
                ApiError::QuotaExceeded {
                    quota,
                    limit,
                    used,
                    resets_at,
                    ..
                } => Some(QuotaProblem {
                    name: quota.as_str().to_owned(),
                    limit: *limit,
                    used: *used,
                    resets_at: resets_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                }),
                _ => None,
            },
        }
    }
}

impl ApiError {
    /// The answer to a payment past a quota cap, `now` being the server's clock (for
    /// `Retry-After`: whole seconds to the reset, rounded up, at least one).
    pub fn quota_exceeded(refusal: UsageError, now: chrono::DateTime<chrono::Utc>) -> ApiError {
        match refusal {
            UsageError::Exceeded {
                quota,
                limit,
                used,
                resets_at,
            } => {
                let millis = (resets_at - now).num_milliseconds().max(1);
                ApiError::QuotaExceeded {
                    quota,
                    limit,
                    used,
                    resets_at,
                    retry_after_secs: u64::try_from(millis).unwrap_or(1).div_ceil(1000),
                }
            }
            other @ UsageError::WrongMonth { .. } => ApiError::Internal(other.to_string()),
        }
    }
}

/// The code of an error the router or a layer answered, by its status.
fn refused_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT",
        StatusCode::UNPROCESSABLE_ENTITY => "UNPROCESSABLE",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        status if status.is_server_error() => "INTERNAL",
        _ => "BAD_REQUEST",
    }
}

fn describe_fields(fields: &[FieldProblem]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(why) = &self {
            tracing::error!(error = %why, "request failed");
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let ApiError::RateLimited(seconds)
        | ApiError::QuotaExceeded {
            retry_after_secs: seconds,
            ..
        } = self
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let ApiError::Contended = self {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(CONTENDED_RETRY_AFTER_SECS),
            );
        }
        if status == StatusCode::UNAUTHORIZED && problem.code.starts_with("ADMIN_") {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lightspeed-admin\""),
            );
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::UnknownMerchant | ServiceError::KeysRotated => ApiError::UnknownClientKey,
            ServiceError::UnknownPayment(_) => ApiError::TransactionNotFound,
            ServiceError::UnknownGateway(_) => ApiError::GatewayNotFound,
            ServiceError::OrderIdReused { payment_id } => ApiError::OrderIdReused(payment_id),
            ServiceError::NoGatewayAvailable(_) => ApiError::NoGatewayAvailable,
            ServiceError::RefundIdReused { .. } => ApiError::RefundIdReused,
            ServiceError::MerchantClosed => ApiError::MerchantClosed,
            ServiceError::Payment(PaymentError::NotRefundable { status }) => {
                ApiError::PaymentNotRefundable(status.as_str())
            }
            ServiceError::Payment(PaymentError::RefundExceedsAmount {
                refundable,
                requested,
            }) => ApiError::RefundExceedsRemaining {
                refundable,
                requested,
            },
            ServiceError::Payment(PaymentError::BalanceDueOverLimit { balance_due, .. }) => {
                ApiError::MerchantSuspended {
                    amount_due: balance_due,
                }
            }
            ServiceError::Payment(PaymentError::MerchantNotActive { .. }) => {
                ApiError::MerchantNotActive
            }
            ServiceError::Payment(PaymentError::Invalid(field))
            | ServiceError::Merchant(MerchantError::Invalid(field))
            | ServiceError::Gateway(GatewayError::Invalid(field))
            | ServiceError::Wallet(WalletError::Invalid(field)) => ApiError::InvalidField {
                field: api_field(field.field).into(),
                detail: field.problem.to_string(),
            },
            ServiceError::Merchant(MerchantError::NotOnboarded) => ApiError::MerchantNotFound,
            ServiceError::Merchant(MerchantError::Closed) => ApiError::MerchantClosed,
            ServiceError::Merchant(MerchantError::TooManyGateways { limit }) => {
                ApiError::TooManyGateways(limit)
            }
            ServiceError::Gateway(GatewayError::NotRegistered) => ApiError::GatewayNotFound,
            ServiceError::Gateway(GatewayError::Retired) => ApiError::GatewayRetired,
            ServiceError::Claim(_) => ApiError::ClientKeyTaken,
            ServiceError::Wallet(WalletError::SettlementExceedsBalance {
                requested,
                available,
            }) => ApiError::SettlementExceedsBalance {
                requested,
                available,
            },
            ServiceError::UnknownNotification(_)
            | ServiceError::Notification(NotificationError::NotQueued) => {
                ApiError::NotificationNotFound
            }
            ServiceError::Notification(NotificationError::NotFailed { status }) => {
                ApiError::NotificationNotResendable(match status {
                    NotificationStatus::Queued => "queued",
                    NotificationStatus::Sent => "sent",
                    NotificationStatus::Failed => "failed",
                })
            }
            ServiceError::Person(PersonError::NotAPerson) => ApiError::PersonNotFound,
            ServiceError::Person(PersonError::AlreadyInvited { role }) => {
                ApiError::PersonExists(role)
            }
            ServiceError::Person(PersonError::Invalid(field)) => ApiError::InvalidField {
                field: field.field.into(),
                detail: field.problem.to_string(),
            },
            ServiceError::BootstrapAdmin => ApiError::BootstrapAdmin,
            ServiceError::Contended => ApiError::Contended,
            ServiceError::QuotaExceeded(refusal) => {
                ApiError::quota_exceeded(refusal, chrono::Utc::now())
            }
            ServiceError::Quota(QuotaError::Invalid(field)) => ApiError::InvalidField {
                field: field.field.into(),
                detail: field.problem.to_string(),
            },
            ServiceError::DuplicateGateway(id) => ApiError::InvalidField {
                field: "priorities".into(),
                detail: format!("gateway {id} is named twice"),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The domain names a few fields after its own model; the API's body names them differently.
fn api_field(domain_field: &str) -> &str {
    match domain_field {
        "merchant_order_id" => "order_id",
        other => other,
    }
}

impl From<ProjectionError> for ApiError {
    fn from(error: ProjectionError) -> Self {
        match error {
            ProjectionError::InvalidQuery(why) => ApiError::InvalidQuery(why),
            ProjectionError::NotBuilt(view) => ApiError::ReadModelNotReady(view),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Internal(format!("database: {error}"))
    }
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Database(error) => error.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
