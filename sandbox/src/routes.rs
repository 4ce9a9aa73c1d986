//! The sandbox over HTTP: its JSON API (orders, refunds and the refunds' settle control), the
//! checkout page and the payer's buttons.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lightspeed_adapters::html::error_page;
use lightspeed_adapters::sandbox::{
    CreateOrder, CreateRefund, EVENT_SUCCEEDED, KEY_HEADER, SandboxEvent, SettleRefund,
};
use serde_json::json;

use crate::page::checkout_page;
use crate::{AccountKey, PayerChoice, Sandbox, SandboxError};

/// The sandbox's routes, relative to where they are mounted (the app nests them under `/sandbox`).
pub fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/v1/orders", post(create_order))
        .route("/v1/orders/{id}", get(get_order))
        .route("/v1/orders/{id}/refunds", post(create_refund))
        .route("/v1/refunds/{id}", get(get_refund))
        .route("/v1/refunds/{id}/settle", post(settle_refund))
        .route("/checkout/{id}", get(show_checkout))
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

/// The API's answer to a refusal or failure.
fn refused(error: &SandboxError) -> Response {
    let (status, code) = match error {
        SandboxError::InvalidReference => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_reference"),
        SandboxError::InvalidAmount => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount"),
        SandboxError::InvalidUrl => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_url"),
        SandboxError::InvalidText => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_text"),
        SandboxError::OrderExists => (StatusCode::CONFLICT, "order_exists"),
        SandboxError::OrderNotPaid => (StatusCode::CONFLICT, "order_not_paid"),
        SandboxError::RefundTooSmall => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount"),
        SandboxError::OverRefund => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_exceeds_refundable",
        ),
        SandboxError::RefundExists => (StatusCode::CONFLICT, "refund_exists"),
        SandboxError::InvalidSettlement => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_status"),
        SandboxError::RefundSettled => (StatusCode::CONFLICT, "refund_settled"),
        SandboxError::OrderRemoved => (StatusCode::SERVICE_UNAVAILABLE, "order_removed"),
        SandboxError::Database(_) | SandboxError::Encode(_) => {
            return unavailable(error);
        }
    };
    api_error(status, code, &error.to_string())
}

/// 503 for a failure of the sandbox itself, logged; its details stay in the log.
fn unavailable(error: &SandboxError) -> Response {
    tracing::warn!(error = %error, "sandbox request failed");
    api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "sandbox_unavailable",
        "the sandbox cannot serve this now; try again",
    )
}

/// The account key, if the request carries a well-formed one.
fn account_key(headers: &HeaderMap) -> Option<AccountKey> {
    AccountKey::parse(headers.get(KEY_HEADER)?.to_str().ok()?)
}

fn unauthorized() -> Response {
    api_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "x-sandbox-key must be a whsec_ secret",
    )
}

async fn create_order(State(sandbox): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(key) = account_key(&headers) else {
        return unauthorized();
    };
    let Ok(request) = serde_json::from_slice::<CreateOrder>(&body) else {
        return invalid_body("CreateOrder");
    };
    match sandbox.create_order(&key, request).await {
        Ok(created) => {
            let status = if created.new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, axum::Json(created.order)).into_response()
        }
        Err(e) => refused(&e),
    }
}

async fn get_order(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(key) = account_key(&headers) else {
        return unauthorized();
    };
    match sandbox.order(&id, &key).await {
        Ok(Some(order)) => axum::Json(order).into_response(),
        Ok(None) => not_found("order"),
        Err(e) => refused(&e),
    }
}

fn not_found(what: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no such {what}"),
    )
}

fn invalid_body(what: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        "invalid_body",
        &format!("body is not a {what} JSON object"),
    )
}

async fn create_refund(
    State(sandbox): State<Sandbox>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(key) = account_key(&headers) else {
        return unauthorized();
    };
    let Ok(request) = serde_json::from_slice::<CreateRefund>(&body) else {
        return invalid_body("CreateRefund");
    };
    match sandbox.create_refund(&key, &order_id, request).await {
        Ok(Some(created)) => {
            let status = if created.new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, axum::Json(created.refund)).into_response()
        }
        Ok(None) => not_found("order"),
        Err(e) => refused(&e),
    }
}

async fn get_refund(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(key) = account_key(&headers) else {
        return unauthorized();
    };
    match sandbox.refund(&id, &key).await {
        Ok(Some(refund)) => axum::Json(refund).into_response(),
        Ok(None) => not_found("refund"),
        Err(e) => refused(&e),
    }
}

/// The test control standing for the bank: settles the refund, then makes the first attempts
/// at its webhook.
async fn settle_refund(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(key) = account_key(&headers) else {
        return unauthorized();
    };
    let Ok(request) = serde_json::from_slice::<SettleRefund>(&body) else {
        return invalid_body("SettleRefund");
    };
    let settled = match sandbox.settle_refund(&id, &key, request.status).await {
        Ok(Some(settled)) => settled,
        Ok(None) => return not_found("refund"),
        Err(e) => return refused(&e),
    };
    if let Err(e) = sandbox.deliver_refund_webhook(&id).await {
        // The settlement and its webhook are stored: the sweeps deliver it.
        tracing::warn!(refund_id = %id, error = %e, "sandbox refund webhook left to the sweeps");
    }
    axum::Json(settled).into_response()
}

fn no_such_order() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(error_page("No such sandbox order.")),
    )
        .into_response()
}

fn page_unavailable(error: &SandboxError) -> Response {
    tracing::warn!(error = %error, "sandbox page failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(error_page(
            "The sandbox cannot serve this page now; try again.",
        )),
    )
        .into_response()
}

async fn show_checkout(State(sandbox): State<Sandbox>, Path(id): Path<String>) -> Response {
    match sandbox.stored(&id).await {
        Ok(Some(order)) => {
            Html(checkout_page(&order, &sandbox.inner.config.public_url)).into_response()
        }
        Ok(None) => no_such_order(),
        Err(e) => page_unavailable(&e),
    }
}

async fn pay(state: State<Sandbox>, id: Path<String>) -> Response {
    choose(state, id, PayerChoice::Pay).await
}

async fn fail(state: State<Sandbox>, id: Path<String>) -> Response {
    choose(state, id, PayerChoice::Fail).await
}

/// Records the payer's choice, makes the first delivery attempts, and sends the payer back.
async fn choose(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    choice: PayerChoice,
) -> Response {
    let recorded = match sandbox.choose(&id, choice).await {
        Ok(Some(recorded)) => recorded,
        Ok(None) => return no_such_order(),
        Err(e) => return page_unavailable(&e),
    };
    if recorded.first
        && let Err(e) = sandbox.deliver_owed(&id).await
    {
        // The choice and its webhook are stored: the sweeps deliver it.
        tracing::warn!(order_id = %id, error = %e, "sandbox webhook left to the sweeps");
    }
    send_payer_back(&recorded.return_url, &recorded.event)
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
