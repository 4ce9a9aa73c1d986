//! The hosted checkout: the page a payer is sent to, which waits for the PSP order and hands
//! the payer to the PSP, and the page the payer comes back to, which sends them on to the
//! merchant with the payment's status.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use lightspeed_adapters::checkout::{render_checkout, render_waiting_page};
use lightspeed_adapters::html::{error_page, escape_html, script_literal};
use lightspeed_adapters::psp::CheckoutData;
use lightspeed_domain::PaymentId;
use lightspeed_domain::payment::Payment;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Whether the PSP order exists, so the checkout page can hand the payer over.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckoutReady {
    /// True once the payment can be paid (or is already final).
    pub ready: bool,
}

fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    // A payment page must not be framed by another site or cached by the browser.
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    response
}

/// Why a checkout route has no payment to show.
enum Unshown {
    /// No payment has this id.
    NotFound,
    /// The payment could not be read now.
    Unreadable(String),
}

async fn load(state: &AppState, id: &str) -> Result<Payment, Unshown> {
    let payment_id: PaymentId = id.parse().map_err(|_| Unshown::NotFound)?;
    match state.ledger.payment(payment_id).await {
        Ok(Some(payment)) => Ok(payment),
        Ok(None) => Err(Unshown::NotFound),
        Err(e) => {
            tracing::error!(error = %e, %payment_id, "checkout cannot read the payment");
            Err(Unshown::Unreadable(e.to_string()))
        }
    }
}

/// The answer to a caller the payment cannot be shown to: a page for a person's browser (it
/// asked for HTML), a problem document for anything else.
fn unshown(why: Unshown, headers: &HeaderMap) -> Response {
    let wants_page = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"));
    match (why, wants_page) {
        (Unshown::NotFound, true) => html(
            StatusCode::NOT_FOUND,
            error_page("This payment link is not valid."),
        ),
        (Unshown::Unreadable(_), true) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            error_page("Please try again in a moment."),
        ),
        (why, false) => problem(why),
    }
}

fn problem(why: Unshown) -> Response {
    match why {
        Unshown::NotFound => ApiError::TransactionNotFound.into_response(),
        Unshown::Unreadable(e) => ApiError::Internal(e).into_response(),
    }
}

async fn merchant_name(state: &AppState, payment: &Payment) -> String {
    state
        .ledger
        .merchant(payment.merchant_id())
        .await
        .map(|m| m.company_name().to_owned())
        .unwrap_or_else(|_| "Payment".to_owned())
}

/// The hosted checkout page of a payment.
#[utoipa::path(
    get,
    path = "/checkout/{id}",
    tag = "checkout",
    params(("id" = String, Path, description = "The transaction id")),
    responses(
        (status = 200, description = "HTML: the PSP's checkout for this payment, or a page that waits for it", content_type = "text/html"),
        (status = 303, description = "The payment is already final: on to the return page"),
        (status = 404, description = "No such payment: an HTML page for a browser (`Accept: text/html`), else a problem document", content(
            (String = "text/html"),
            (Problem = "application/problem+json"),
        )),
    )
)]
pub async fn checkout_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let payment = match load(&state, &id).await {
        Ok(payment) => payment,
        Err(why) => return unshown(why, &headers),
    };
    let name = merchant_name(&state, &payment).await;
    if payment.status().is_final() {
        return redirect(&format!(
            "{}/checkout/{}/return",
            state.config.public_url,
            payment.id()
        ));
    }
    let Some(order) = payment.psp_order() else {
        let ready_url = format!(
            "{}/checkout/{}/ready",
            state.config.public_url,
            payment.id()
        );
        return html(StatusCode::OK, render_waiting_page(&name, &ready_url));
    };
    match serde_json::from_value::<CheckoutData>(order.checkout.clone()) {
        Ok(data) => html(StatusCode::OK, render_checkout(&data, &name)),
        Err(e) => {
            tracing::error!(error = %e, payment_id = %payment.id(), "stored checkout data does not parse");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                error_page("This payment cannot be shown right now."),
            )
        }
    }
}

/// Whether the checkout page can hand the payer to the PSP yet.
#[utoipa::path(
    get,
    path = "/checkout/{id}/ready",
    tag = "checkout",
    params(("id" = String, Path, description = "The transaction id")),
    responses(
        (status = 200, description = "Readiness", body = CheckoutReady),
        (status = 404, description = "No such payment", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn checkout_ready(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match load(&state, &id).await {
        Ok(payment) => {
            let ready = payment.psp_order().is_some() || payment.status().is_final();
            Json(CheckoutReady { ready }).into_response()
        }
        Err(why) => problem(why),
    }
}

/// Where the PSP sends the payer back (by GET or POST): waits a few seconds for the outcome,
/// then sends the payer to the merchant's `redirect_url` with `transaction_id`, `order_id`
/// and `status`. Also asks the PSP for the status, in case its webhook is slow.
#[utoipa::path(
    get,
    path = "/checkout/{id}/return",
    tag = "checkout",
    params(("id" = String, Path, description = "The transaction id")),
    responses(
        (status = 200, description = "HTML page that forwards the payer", content_type = "text/html"),
        (status = 404, description = "No such payment: an HTML page for a browser (`Accept: text/html`), else a problem document", content(
            (String = "text/html"),
            (Problem = "application/problem+json"),
        )),
    )
)]
pub async fn checkout_return(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let payment = match load(&state, &id).await {
        Ok(payment) => payment,
        Err(why) => return unshown(why, &headers),
    };
    if !payment.status().is_final()
        && let Some(checks) = &state.status_checks
    {
        checks
            .enqueue(payment.gateway_id(), Some(payment.id()), "payer returned")
            .await;
    }
    let name = merchant_name(&state, &payment).await;
    let target = payment.details().redirect_url.clone();
    html(
        StatusCode::OK,
        return_page(&state, &payment, &name, target.as_deref()),
    )
}

/// The return page for POST callbacks (Razorpay, PayU and PhonePe post the payer back).
#[utoipa::path(
    post,
    path = "/checkout/{id}/return",
    tag = "checkout",
    params(("id" = String, Path, description = "The transaction id")),
    responses(
        (status = 200, description = "HTML page that forwards the payer", content_type = "text/html"),
        (status = 404, description = "No such payment: an HTML page for a browser (`Accept: text/html`), else a problem document", content(
            (String = "text/html"),
            (Problem = "application/problem+json"),
        )),
    )
)]
pub async fn checkout_return_post(
    state: State<AppState>,
    id: Path<String>,
    headers: HeaderMap,
) -> Response {
    checkout_return(state, id, headers).await
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_page("This payment cannot be shown right now."),
        ),
    }
}

/// Longest the return page waits for the outcome before sending the payer on.
const RETURN_WAIT_MS: u64 = 15_000;

fn return_page(
    state: &AppState,
    payment: &Payment,
    merchant: &str,
    target: Option<&str>,
) -> String {
    let stream_url = format!("{}/status/{}/stream", state.config.public_url, payment.id());
    let query = |status: &str| {
        format!(
            "transaction_id={}&order_id={}&status={status}",
            payment.id(),
            payment.merchant_order_id()
        )
    };
    let target = target.map(|url| {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}")
    });
    let status = payment.status().as_str();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"></head>\
         <body><h1>{title}</h1><p id=\"msg\">Confirming your payment…</p>\
         <script>(function(){{var target={target},status={status},done=false,\
         query={query},msg=document.getElementById('msg');\
         function finish(s){{if(done)return;done=true;\
         if(target){{location.href=target+query.replace('{placeholder}',s);}}\
         else{{msg.textContent='Payment '+s+'. You can close this page.';}}}}\
         if(status==='succeeded'||status==='failed'||status==='refunded'){{finish(status);return;}}\
         var es=new EventSource({stream});es.addEventListener('status',function(e){{\
         var s=JSON.parse(e.data).status;status=s;if(s==='succeeded'||s==='failed'||s==='refunded'){{es.close();finish(s);}}}});\
         setTimeout(function(){{es.close();finish(status);}},{RETURN_WAIT_MS});}})();</script>\
         <noscript><p>Payment status: {status_text}.</p></noscript></body></html>",
        title = escape_html(merchant),
        target = script_literal(&serde_json::json!(target)),
        status = script_literal(&serde_json::json!(status)),
        query = script_literal(&serde_json::json!(query("{placeholder}"))),
        placeholder = "{placeholder}",
        stream = script_literal(&serde_json::json!(stream_url)),
        status_text = escape_html(status),
    )
}
