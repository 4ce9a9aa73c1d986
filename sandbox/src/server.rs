//! The sandbox's HTTP side: router, in-memory store, webhook delivery.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lightspeed_domain::Clock;
use serde_json::json;

use lightspeed_adapters::amount::format_rupees;
use lightspeed_adapters::html::{error_page, escape_html};
use lightspeed_adapters::http::{ClientBuildError, HttpConfig, build_client};
use lightspeed_adapters::merchant_webhook::{WebhookSecret, sign};
use lightspeed_adapters::sandbox::{
    CreateOrder, DeliveryAttempt, EVENT_FAILED, EVENT_SUCCEEDED, FailureInfo, KEY_HEADER,
    MAX_REFERENCE_LEN, OrderStatus, OrderView, SandboxEvent, order_id_for,
};
use subtle::ConstantTimeEq;

/// How the sandbox behaves.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where browsers reach the router (e.g. `http://localhost:8080/sandbox`), for checkout URLs.
    pub public_url: String,
    /// Most orders kept in memory; creating more answers 503.
    pub max_orders: usize,
    /// Webhook delivery tries per click.
    pub delivery_attempts: u32,
    /// Pause before the second try; doubled for each further try.
    pub first_retry_delay: Duration,
    /// Timeouts of webhook deliveries.
    pub http: HttpConfig,
}

impl SandboxConfig {
    /// Defaults for a router reachable at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into(),
            max_orders: 10_000,
            delivery_attempts: 3,
            first_retry_delay: Duration::from_millis(500),
            http: HttpConfig {
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(5),
            },
        }
    }
}

struct StoredOrder {
    key: String,
    request: CreateOrder,
    /// The payer's first click; later clicks change nothing.
    clicked: Option<Click>,
    deliveries: Vec<DeliveryAttempt>,
}

/// What the payer's click made: a payment, failed if they chose Fail.
#[derive(Clone)]
struct Click {
    payment_id: String,
    failure: Option<FailureInfo>,
}

impl Click {
    fn new(succeed: bool) -> Self {
        let mut random = [0u8; 9];
        rand::fill(&mut random);
        Self {
            payment_id: format!("sbp_{}", hex::encode(random)),
            failure: (!succeed).then(|| FailureInfo {
                code: "SANDBOX_DECLINED".to_owned(),
                reason: "The payer chose Fail on the sandbox checkout".to_owned(),
            }),
        }
    }
}

impl StoredOrder {
    fn status(&self) -> OrderStatus {
        match &self.clicked {
            None => OrderStatus::Created,
            Some(Click { failure: None, .. }) => OrderStatus::Paid,
            Some(Click {
                failure: Some(_), ..
            }) => OrderStatus::Failed,
        }
    }

    /// The webhook telling the order's `click`.
    fn event(&self, id: &str, click: Click) -> SandboxEvent {
        SandboxEvent {
            kind: if click.failure.is_none() {
                EVENT_SUCCEEDED
            } else {
                EVENT_FAILED
            }
            .to_owned(),
            order_id: id.to_owned(),
            reference: self.request.reference.clone(),
            payment_id: click.payment_id,
            amount: self.request.amount,
            currency: self.request.currency.clone(),
            failure: click.failure,
        }
    }
}

/// The sandbox's state, shared by its handlers. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    orders: Mutex<HashMap<String, StoredOrder>>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("public_url", &self.inner.config.public_url)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A sandbox with an empty store; `clock` stamps webhook timestamps.
    pub fn new(config: SandboxConfig, clock: Arc<dyn Clock>) -> Result<Self, ClientBuildError> {
        let http = build_client(&config.http)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                orders: Mutex::new(HashMap::new()),
                http,
                clock,
            }),
        })
    }

    fn orders(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredOrder>> {
        // The map is valid after any panic mid-update (each update is one insert or assignment).
        self.inner
            .orders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn view(&self, id: &str, order: &StoredOrder) -> OrderView {
        OrderView {
            id: id.to_owned(),
            reference: order.request.reference.clone(),
            amount: order.request.amount,
            currency: order.request.currency.clone(),
            status: order.status(),
            checkout_url: format!(
                "{}/checkout/{id}",
                self.inner.config.public_url.trim_end_matches('/')
            ),
            payment_id: order.clicked.as_ref().map(|c| c.payment_id.clone()),
            failure: order.clicked.as_ref().and_then(|c| c.failure.clone()),
            deliveries: order.deliveries.clone(),
        }
    }
}

/// The sandbox's routes, relative to where they are mounted (the app nests them under `/sandbox`).
pub fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/v1/orders", post(create_order))
        .route("/v1/orders/{id}", get(get_order))
        .route("/checkout/{id}", get(checkout_page))
        .route("/checkout/{id}/pay", post(pay))
        .route("/checkout/{id}/fail", post(fail))
        .with_state(sandbox)
}

fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// The account key, if the request carries a well-formed one.
fn account_key(headers: &HeaderMap) -> Option<String> {
    let key = headers.get(KEY_HEADER)?.to_str().ok()?;
    WebhookSecret::parse(key).ok()?;
    Some(key.to_owned())
}

fn unauthorized() -> Response {
    api_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "x-sandbox-key must be a whsec_ secret",
    )
}

fn valid_reference(reference: &str) -> bool {
    !reference.is_empty()
        && reference.len() <= MAX_REFERENCE_LEN
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_web_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

async fn create_order(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(key) = account_key(&headers) else {
        return unauthorized();
    };
    let Ok(request) = serde_json::from_slice::<CreateOrder>(&body) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "body is not a CreateOrder JSON object",
        );
    };
    if !valid_reference(&request.reference) {
        return api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_reference",
            "reference must be 1-64 chars of [A-Za-z0-9_-]",
        );
    }
    if request.amount.0 <= 0 {
        return api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
            "amount must be positive paise",
        );
    }
    if !valid_web_url(&request.callback_url) || !valid_web_url(&request.return_url) {
        return api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_url",
            "callback_url and return_url must be http(s) URLs",
        );
    }
    let id = order_id_for(&request.reference);
    let mut orders = sandbox.orders();
    if let Some(existing) = orders.get(&id) {
        if bool::from(existing.key.as_bytes().ct_eq(key.as_bytes()))
            && existing.request.amount == request.amount
        {
            return (StatusCode::OK, axum::Json(sandbox.view(&id, existing))).into_response();
        }
        return api_error(
            StatusCode::CONFLICT,
            "order_exists",
            "an order with this reference exists with other details",
        );
    }
    if orders.len() >= sandbox.inner.config.max_orders {
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "sandbox_full",
            "the sandbox holds its maximum number of orders",
        );
    }
    let order = StoredOrder {
        key,
        request,
        clicked: None,
        deliveries: Vec::new(),
    };
    let view = sandbox.view(&id, &order);
    orders.insert(id, order);
    (StatusCode::CREATED, axum::Json(view)).into_response()
}

async fn get_order(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(key) = account_key(&headers) else {
        return unauthorized();
    };
    let orders = sandbox.orders();
    match orders.get(&id) {
        Some(order) if bool::from(order.key.as_bytes().ct_eq(key.as_bytes())) => {
            axum::Json(sandbox.view(&id, order)).into_response()
        }
        _ => api_error(StatusCode::NOT_FOUND, "not_found", "no such order"),
    }
}

async fn checkout_page(State(sandbox): State<Sandbox>, Path(id): Path<String>) -> Response {
    let orders = sandbox.orders();
    let Some(order) = orders.get(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Html(error_page("No such sandbox order.")),
        )
            .into_response();
    };
    let id_attr = escape_html(&id);
    let amount = format!(
        "{} {}",
        escape_html(&order.request.currency),
        escape_html(&format_rupees(order.request.amount))
    );
    let actions = match order.status() {
        OrderStatus::Created => format!(
            "<form method=\"post\" action=\"{id_attr}/pay\" style=\"display:inline\"><button type=\"submit\">Pay</button></form>\
             <form method=\"post\" action=\"{id_attr}/fail\" style=\"display:inline\"><button type=\"submit\">Fail</button></form>"
        ),
        OrderStatus::Paid => "<p>This order is paid.</p>".to_owned(),
        OrderStatus::Failed => "<p>This payment failed.</p>".to_owned(),
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sandbox checkout</title>\
         <base href=\"{base}/checkout/\"></head><body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto\">\
         <p><strong>Sandbox PSP</strong>: no money moves.</p><h1>{amount}</h1><p>{description}</p>\
         <p>Reference <code>{reference}</code></p>{actions}</body></html>\n",
        base = escape_html(sandbox.inner.config.public_url.trim_end_matches('/')),
        description = escape_html(&order.request.description),
        reference = escape_html(&order.request.reference),
    );
    Html(html).into_response()
}

async fn pay(state: State<Sandbox>, id: Path<String>) -> Response {
    settle(state, id, true).await
}

async fn fail(state: State<Sandbox>, id: Path<String>) -> Response {
    settle(state, id, false).await
}

/// Records the payer's choice, delivers the webhook, and sends the payer back.
async fn settle(State(sandbox): State<Sandbox>, Path(id): Path<String>, succeed: bool) -> Response {
    let Some(settled) = record_click(&sandbox, &id, succeed) else {
        return (
            StatusCode::NOT_FOUND,
            Html(error_page("No such sandbox order.")),
        )
            .into_response();
    };
    if settled.first_click {
        let attempts = deliver(
            &sandbox,
            &settled.event,
            &settled.key,
            &settled.callback_url,
        )
        .await;
        if let Some(order) = sandbox.orders().get_mut(&id) {
            order.deliveries.extend(attempts);
        }
    }
    send_payer_back(&settled.return_url, &settled.event)
}

/// An order's click, as recorded, with what delivering it needs.
struct Settled {
    first_click: bool,
    event: SandboxEvent,
    key: String,
    callback_url: String,
    return_url: String,
}

/// Records the payer's click on order `id`, unless an earlier click already counted; `None` for
/// an unknown order. Decided under the lock, delivered outside it, so only the first click on an
/// order delivers.
fn record_click(sandbox: &Sandbox, id: &str, succeed: bool) -> Option<Settled> {
    let mut orders = sandbox.orders();
    let order = orders.get_mut(id)?;
    let first_click = order.clicked.is_none();
    let click = order
        .clicked
        .get_or_insert_with(|| Click::new(succeed))
        .clone();
    Some(Settled {
        first_click,
        event: order.event(id, click),
        key: order.key.clone(),
        callback_url: order.request.callback_url.clone(),
        return_url: order.request.return_url.clone(),
    })
}

/// Redirects the payer to `return_url?status=succeeded|failed&reference=…`.
fn send_payer_back(return_url: &str, event: &SandboxEvent) -> Response {
    let status = if event.kind == EVENT_SUCCEEDED {
        "succeeded"
    } else {
        "failed"
    };
    match reqwest::Url::parse(return_url) {
        Ok(mut url) => {
            url.query_pairs_mut()
                .append_pair("status", status)
                .append_pair("reference", &event.reference);
            Redirect::to(url.as_str()).into_response()
        }
        Err(_) => Html(error_page(
            "Payment recorded; the return address is not valid.",
        ))
        .into_response(),
    }
}

/// Posts the signed event, retrying with doubling pauses until a 2xx or the attempts run out.
async fn deliver(
    sandbox: &Sandbox,
    event: &SandboxEvent,
    key: &str,
    callback_url: &str,
) -> Vec<DeliveryAttempt> {
    let config = &sandbox.inner.config;
    let Ok(secret) = WebhookSecret::parse(key) else {
        return vec![failed_attempt("invalid account key")];
    };
    let Ok(body) = serde_json::to_vec(event) else {
        return vec![failed_attempt("event not serialisable")];
    };
    let webhook = Webhook {
        secret: &secret,
        message_id: format!("sbevt_{}", event.payment_id),
        body: &body,
        callback_url,
    };
    let mut attempts = Vec::new();
    let mut delay = config.first_retry_delay;
    for attempt in 0..config.delivery_attempts {
        if attempt > 0 {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
        let outcome = post_once(sandbox, &webhook).await;
        let delivered = outcome
            .status
            .is_some_and(|code| (200..300).contains(&code));
        if !delivered {
            tracing::warn!(
                order_id = %event.order_id,
                attempt = attempt + 1,
                status = ?outcome.status,
                error = ?outcome.error,
                "sandbox webhook delivery failed"
            );
        }
        attempts.push(outcome);
        if delivered {
            break;
        }
    }
    attempts
}

/// One signed webhook, ready to post.
struct Webhook<'a> {
    secret: &'a WebhookSecret,
    message_id: String,
    body: &'a [u8],
    callback_url: &'a str,
}

/// Signs the webhook as of now and posts it once.
async fn post_once(sandbox: &Sandbox, webhook: &Webhook<'_>) -> DeliveryAttempt {
    let signed = sign(
        webhook.secret,
        &[],
        &webhook.message_id,
        sandbox.inner.clock.now().timestamp(),
        webhook.body,
    );
    let mut request = sandbox
        .inner
        .http
        .post(webhook.callback_url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(webhook.body.to_vec());
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => DeliveryAttempt {
            status: Some(response.status().as_u16()),
            error: None,
        },
        Err(e) => failed_attempt(if e.is_timeout() {
            "timed out"
        } else {
            "connection failed"
        }),
    }
}

/// An attempt that got no answer, and why.
fn failed_attempt(error: &str) -> DeliveryAttempt {
    DeliveryAttempt {
        status: None,
        error: Some(error.to_owned()),
    }
}
