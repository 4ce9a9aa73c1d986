//! Cashfree PG (API version 2023-08-01): orders, payment sessions, signed webhooks.
//!
//! Idempotency: our reference is the Cashfree `order_id`; creating it twice answers 409, and the
//! adapter then fetches the existing order and reuses its `payment_session_id`. Amounts travel
//! as decimal rupees and are converted from the literal JSON text, never through a float.
//!
//! Refunds are keyed by our refund reference as `refund_id` and our refund id as the
//! `x-idempotency-key`; a 409 (the refund exists) is answered by fetching it. Refund webhooks
//! are signed like payment webhooks.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use lightspeed_domain::Paise;
use lightspeed_domain::psp_outcome::RefundState;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::json::{RupeeText, opt_string_or_int, rupee_number};
use super::{
    CashfreeMode, CheckoutData, Endpoint, OrderRequest, PaymentOutcome, Probe, PspAdapter, PspCall,
    PspEnvironment, PspError, PspOrder, PspRefund, PspStatus, RefundRequest, VerifiedWebhook,
    WebhookError, body_digest, exchange, parse_json, parse_psp_reference, parse_refund_reference,
    parse_webhook_json, psp_reference, refund_reference, required_header,
};
use crate::amount::format_positive_rupees;
use crate::crypto::{hmac_sha256, hmac_sha256_verify};
use crate::http::{Answer, excerpt, join};
use crate::secrets::Secret;

/// Sandbox API base.
pub const TEST_BASE_URL: &str = "https://sandbox.cashfree.com/pg";
/// Production API base.
pub const LIVE_BASE_URL: &str = "https://api.cashfree.com/pg";
/// The API version the adapter speaks.
pub const API_VERSION: &str = "2023-08-01";
/// Header with base64 HMAC-SHA256 of `timestamp + raw body` under the client secret.
pub const SIGNATURE_HEADER: &str = "x-webhook-signature";
/// Header with the webhook's timestamp (epoch milliseconds), part of the signed message.
pub const TIMESTAMP_HEADER: &str = "x-webhook-timestamp";
/// Header with the event's idempotency key (API version 2025-01-01 webhooks).
pub const IDEMPOTENCY_HEADER: &str = "x-idempotency-key";

/// A Cashfree PG account's adapter: the app id and its secret (which also signs webhooks).
pub(crate) struct Adapter<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: &'a Secret,
}

impl PspAdapter for Adapter<'_> {
    fn create_order<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        order: &'a OrderRequest,
    ) -> PspCall<'a, PspOrder> {
        let base = endpoint.base(TEST_BASE_URL, LIVE_BASE_URL);
        let mode = match endpoint.environment {
            PspEnvironment::Test => CashfreeMode::Sandbox,
            PspEnvironment::Live => CashfreeMode::Production,
        };
        Box::pin(create_order(endpoint.http, base, self, mode, order))
    }

    fn fetch_status<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        reference: &'a str,
        _psp_order_id: Option<&'a str>,
    ) -> PspCall<'a, PspStatus> {
        let base = endpoint.base(TEST_BASE_URL, LIVE_BASE_URL);
        Box::pin(fetch_status(endpoint.http, base, self, reference))
    }

    fn probe<'a>(&'a self, endpoint: Endpoint<'a>) -> PspCall<'a, Probe> {
        let base = endpoint.base(TEST_BASE_URL, LIVE_BASE_URL);
        Box::pin(probe(endpoint.http, base, self))
    }

    fn create_refund<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        refund: &'a RefundRequest,
    ) -> PspCall<'a, PspRefund> {
        let base = endpoint.base(TEST_BASE_URL, LIVE_BASE_URL);
        Box::pin(create_refund(endpoint.http, base, self, refund))
    }

    fn fetch_refund<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        refund: &'a RefundRequest,
        _psp_refund_id: Option<&'a str>,
    ) -> PspCall<'a, Option<PspRefund>> {
        let base = endpoint.base(TEST_BASE_URL, LIVE_BASE_URL);
        Box::pin(async move {
            let order_id = psp_reference(refund.payment_id);
            let refund_id = refund_reference(refund.refund_id);
            get_refund(endpoint.http, base, self, &order_id, &refund_id).await
        })
    }

    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        raw_body: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook, WebhookError> {
        verify_webhook(self.client_secret, headers, raw_body)
    }
}

impl Adapter<'_> {
    /// Adds the account's credentials and the API version to a request.
    fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, PspError> {
        let mut secret = reqwest::header::HeaderValue::from_str(self.client_secret.expose_str()?)
            .map_err(|_| {
            PspError::local(
                "invalid_credentials",
                "client secret is not a valid header value",
            )
        })?;
        secret.set_sensitive(true);
        Ok(request
            .header("x-client-id", self.client_id)
            .header("x-client-secret", secret)
            .header("x-api-version", API_VERSION))
    }
}

#[derive(Debug, Deserialize)]
struct Order {
    order_id: String,
    order_amount: RupeeText,
    #[serde(default)]
    order_status: String,
    #[serde(default)]
    payment_session_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Payment {
    #[serde(default, deserialize_with = "opt_string_or_int")]
    cf_payment_id: Option<String>,
    #[serde(default)]
    payment_status: String,
    #[serde(default)]
    payment_amount: Option<RupeeText>,
    #[serde(default)]
    payment_message: Option<String>,
    #[serde(default)]
    error_details: Option<ErrorDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetails {
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn rejected(answer: &Answer) -> PspError {
    let body: Option<ErrorBody> = serde_json::from_slice(&answer.body).ok();
    let code = body
        .as_ref()
        .and_then(|b| b.code.clone().or_else(|| b.kind.clone()))
        .unwrap_or_else(|| answer.status.as_u16().to_string());
    let message = body
        .and_then(|b| b.message)
        .unwrap_or_else(|| "Cashfree refused the request".to_owned());
    PspError::Rejected {
        code,
        message: excerpt(&message),
    }
}

fn ok_or_rejected(answer: Answer) -> Result<Answer, PspError> {
    if answer.status.is_success() {
        Ok(answer)
    } else {
        Err(rejected(&answer))
    }
}

#[derive(serde::Serialize)]
struct CreateOrder<'a> {
    order_id: &'a str,
    order_amount: Box<RawValue>,
    order_currency: &'a str,
    customer_details: CustomerDetails<'a>,
    order_meta: OrderMeta<'a>,
    order_note: String,
    order_tags: OrderTags,
}

#[derive(serde::Serialize)]
struct CustomerDetails<'a> {
    customer_id: &'a str,
    customer_phone: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_name: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct OrderMeta<'a> {
    return_url: &'a str,
    notify_url: &'a str,
}

#[derive(serde::Serialize)]
struct OrderTags {
    lightspeed_payment_id: String,
}

async fn get_order(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    reference: &str,
) -> Result<Option<Order>, PspError> {
    let answer =
        exchange(psp.authorize(http.get(join(base, &format!("/orders/{reference}"))))?).await?;
    if answer.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let answer = ok_or_rejected(answer)?;
    parse_json(&answer, "Cashfree order").map(Some)
}

async fn create_order(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    mode: CashfreeMode,
    order: &OrderRequest,
) -> Result<PspOrder, PspError> {
    let reference = psp_reference(order.payment_id);
    let body = order_body(&reference, order)?;
    let request = psp.authorize(http.post(join(base, "/orders")))?.json(&body);
    let answer = exchange(request).await?;
    // 409: an earlier attempt created it; its payment session is still good.
    let (existing, reused) = if answer.status == StatusCode::CONFLICT {
        let found = get_order(http, base, psp, &reference)
            .await?
            .ok_or_else(|| {
                PspError::protocol("Cashfree said the order exists but does not return it")
            })?;
        (found, true)
    } else {
        (
            parse_json::<Order>(&ok_or_rejected(answer)?, "Cashfree order")?,
            false,
        )
    };
    checkout_of(existing, order, mode, reused)
}

/// The body that creates the order of a payment with our `reference`.
fn order_body<'a>(
    reference: &'a str,
    order: &'a OrderRequest,
) -> Result<CreateOrder<'a>, PspError> {
    let phone = order
        .customer
        .phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| {
            PspError::local(
                "customer_phone_required",
                "Cashfree orders need the customer's phone",
            )
        })?;
    Ok(CreateOrder {
        order_id: reference,
        order_amount: rupee_number(order.amount)
            .map_err(|_| PspError::local("invalid_amount", "amount cannot be written as rupees"))?,
        order_currency: &order.currency,
        customer_details: CustomerDetails {
            // Guests have no id of their own at the merchant; the payment's reference is unique.
            customer_id: reference,
            customer_phone: phone,
            customer_email: order.customer.email.as_deref(),
            customer_name: order.customer.name.as_deref(),
        },
        order_meta: OrderMeta {
            return_url: &order.return_url,
            notify_url: &order.callback_url,
        },
        order_note: super::truncate_chars(&order.description, 200),
        order_tags: OrderTags {
            lightspeed_payment_id: order.payment_id.to_string(),
        },
    })
}

/// The checkout of a created or found order, once it is known to be for the amount asked.
fn checkout_of(
    existing: Order,
    order: &OrderRequest,
    mode: CashfreeMode,
    reused: bool,
) -> Result<PspOrder, PspError> {
    let amount = existing
        .order_amount
        .paise()
        .map_err(|e| PspError::protocol(format!("Cashfree order_amount: {e}")))?;
    if amount != order.amount {
        return Err(PspError::local(
            "order_amount_mismatch",
            format!(
                "existing Cashfree order {} is for another amount",
                existing.order_id
            ),
        ));
    }
    let payment_session_id = existing
        .payment_session_id
        .ok_or_else(|| PspError::protocol("Cashfree order without payment_session_id"))?;
    Ok(PspOrder {
        psp_order_id: existing.order_id,
        checkout: CheckoutData::Cashfree {
            payment_session_id,
            mode,
        },
        reused,
    })
}

async fn fetch_status(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    reference: &str,
) -> Result<PspStatus, PspError> {
    let Some(order) = get_order(http, base, psp, reference).await? else {
        return Ok(PspStatus {
            psp_order_id: None,
            psp_payment_id: None,
            outcome: PaymentOutcome::Pending,
        });
    };
    let url = join(base, &format!("/orders/{reference}/payments"));
    let answer = ok_or_rejected(exchange(psp.authorize(http.get(url))?).await?)?;
    let payments: Vec<Payment> = parse_json(&answer, "Cashfree payments")?;
    let (psp_payment_id, outcome) = summarise(&order, payments)?;
    Ok(PspStatus {
        psp_order_id: Some(order.order_id),
        psp_payment_id,
        outcome,
    })
}

/// A success wins; then an attempt in flight; then an order that can take no more attempts;
/// then the latest failed attempt; an order with no attempt is pending.
fn summarise(
    order: &Order,
    payments: Vec<Payment>,
) -> Result<(Option<String>, PaymentOutcome), PspError> {
    if let Some(p) = payments.iter().find(|p| p.payment_status == "SUCCESS") {
        let amount = p
            .payment_amount
            .as_ref()
            .ok_or_else(|| PspError::protocol("Cashfree success without payment_amount"))?
            .paise()
            .map_err(|e| PspError::protocol(format!("Cashfree payment_amount: {e}")))?;
        return Ok((
            p.cf_payment_id.clone(),
            PaymentOutcome::Succeeded { amount },
        ));
    }
    if let Some(p) = payments.iter().find(|p| p.payment_status == "PENDING") {
        return Ok((p.cf_payment_id.clone(), PaymentOutcome::Pending));
    }
    if matches!(order.order_status.as_str(), "EXPIRED" | "TERMINATED") {
        let outcome = PaymentOutcome::Failed {
            code: order.order_status.clone(),
            reason: "order closed without a successful payment".to_owned(),
        };
        return Ok((
            payments.into_iter().next().and_then(|p| p.cf_payment_id),
            outcome,
        ));
    }
    // Cashfree lists the latest attempt first.
    Ok(match payments.into_iter().next() {
        Some(p) if p.payment_status != "NOT_ATTEMPTED" => {
            let outcome = failed(&p);
            (p.cf_payment_id, outcome)
        }
        _ => (None, PaymentOutcome::Pending),
    })
}

fn failed(payment: &Payment) -> PaymentOutcome {
    let details = payment.error_details.as_ref();
    PaymentOutcome::Failed {
        code: details
            .and_then(|d| d.error_code.clone())
            .unwrap_or_else(|| payment.payment_status.clone()),
        reason: details
            .and_then(|d| d.error_description.clone())
            .or_else(|| payment.payment_message.clone())
            .unwrap_or_default(),
    }
}

async fn probe(http: &reqwest::Client, base: &str, psp: &Adapter<'_>) -> Result<Probe, PspError> {
    // An order id that never exists: good credentials get 404, bad ones 401.
    let url = join(base, "/orders/lightspeed-credential-check");
    let answer = exchange(psp.authorize(http.get(url))?).await?;
    let accepted = answer.status.is_success() || answer.status == StatusCode::NOT_FOUND;
    Ok(Probe {
        status: answer.status.as_u16(),
        accepted,
    })
}

/// A refund as Cashfree describes it, in API answers and in `data.refund` of refund webhooks.
#[derive(Debug, Deserialize)]
struct Refund {
    #[serde(default, deserialize_with = "opt_string_or_int")]
    cf_refund_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string_or_int")]
    cf_payment_id: Option<String>,
    #[serde(default)]
    refund_id: Option<String>,
    #[serde(default)]
    order_id: Option<String>,
    refund_amount: RupeeText,
    #[serde(default)]
    refund_status: String,
    #[serde(default)]
    status_description: Option<String>,
}

impl Refund {
    /// Where it stands: PENDING and ONHOLD (insufficient balance) are pending, SUCCESS
    /// succeeded, CANCELLED (and FAILED, if Cashfree ever sends it) failed; any other state is
    /// still pending rather than an error.
    fn state(&self) -> RefundState {
        let status = self.refund_status.trim().to_ascii_uppercase();
        match status.as_str() {
            "SUCCESS" => RefundState::Succeeded,
            "CANCELLED" | "FAILED" => RefundState::Failed {
                reason: self.status_description.clone().unwrap_or_default(),
                code: status,
            },
            _ => RefundState::Pending,
        }
    }

    fn amount(&self) -> Result<Paise, String> {
        self.refund_amount
            .paise()
            .map_err(|e| format!("Cashfree refund_amount: {e}"))
    }

    fn into_psp_refund(self) -> Result<PspRefund, PspError> {
        Ok(PspRefund {
            amount: self.amount().map_err(PspError::protocol)?,
            state: self.state(),
            psp_refund_id: self.cf_refund_id,
        })
    }
}

#[derive(serde::Serialize)]
struct CreateRefund<'a> {
    refund_amount: Box<RawValue>,
    refund_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_note: Option<String>,
}

/// Cashfree takes a note of 3 to 100 characters; a shorter one is left out.
fn refund_note(reason: &str) -> Option<String> {
    let note = super::truncate_chars(reason.trim(), 100);
    (note.chars().count() >= 3).then_some(note)
}

async fn create_refund(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    refund: &RefundRequest,
) -> Result<PspRefund, PspError> {
    let order_id = psp_reference(refund.payment_id);
    let refund_id = refund_reference(refund.refund_id);
    let amount = format_positive_rupees(refund.amount)
        .map_err(|e| PspError::local("invalid_amount", e.to_string()))?;
    let body = CreateRefund {
        refund_amount: RawValue::from_string(amount)
            .map_err(|_| PspError::local("invalid_amount", "amount cannot be written"))?,
        refund_id: &refund_id,
        refund_note: refund_note(&refund.reason),
    };
    // The idempotency key is our refund id itself (a UUID, the format Cashfree asks for), so a
    // retry of the same refund is the same request.
    let request = psp
        .authorize(http.post(join(base, &format!("/orders/{order_id}/refunds"))))?
        .header(IDEMPOTENCY_HEADER, refund.refund_id.0.to_string())
        .json(&body);
    let answer = exchange(request).await?;
    if answer.status == StatusCode::CONFLICT {
        // A refund with our refund_id exists: an earlier attempt made it.
        return get_refund(http, base, psp, &order_id, &refund_id)
            .await?
            .ok_or_else(|| {
                PspError::protocol("Cashfree said the refund exists but does not return it")
            });
    }
    parse_json::<Refund>(&ok_or_rejected(answer)?, "Cashfree refund")?.into_psp_refund()
}

async fn get_refund(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    order_id: &str,
    refund_id: &str,
) -> Result<Option<PspRefund>, PspError> {
    let url = join(base, &format!("/orders/{order_id}/refunds/{refund_id}"));
    let answer = exchange(psp.authorize(http.get(url))?).await?;
    if answer.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let answer = ok_or_rejected(answer)?;
    parse_json::<Refund>(&answer, "Cashfree refund")?
        .into_psp_refund()
        .map(Some)
}

#[derive(Debug, Deserialize)]
struct Webhook {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: WebhookData,
}

#[derive(Debug, Default, Deserialize)]
struct WebhookData {
    #[serde(default)]
    order: Option<WebhookOrder>,
    #[serde(default)]
    payment: Option<Payment>,
    #[serde(default)]
    error_details: Option<ErrorDetails>,
    #[serde(default)]
    refund: Option<Refund>,
}

#[derive(Debug, Deserialize)]
struct WebhookOrder {
    order_id: String,
}

/// The signature Cashfree puts on a webhook: base64 HMAC-SHA256 of `timestamp + raw body`.
pub fn sign_webhook(client_secret: &Secret, timestamp: &str, raw_body: &[u8]) -> String {
    BASE64.encode(hmac_sha256(
        client_secret.expose(),
        &[timestamp.as_bytes(), raw_body],
    ))
}

/// Refund webhook types: `REFUND_STATUS_WEBHOOK` in the docs, `REFUND_SUCCESS_WEBHOOK` in
/// the OpenAPI example.
const REFUND_WEBHOOKS: [&str; 2] = ["REFUND_STATUS_WEBHOOK", "REFUND_SUCCESS_WEBHOOK"];

fn check_signature(
    client_secret: &Secret,
    headers: &HeaderMap,
    raw_body: &[u8],
) -> Result<(), WebhookError> {
    let signature = required_header(headers, SIGNATURE_HEADER)?;
    let timestamp = required_header(headers, TIMESTAMP_HEADER)?;
    let tag = BASE64
        .decode(signature)
        .map_err(|_| WebhookError::BadSignature)?;
    if !hmac_sha256_verify(
        client_secret.expose(),
        &[timestamp.as_bytes(), raw_body],
        &tag,
    ) {
        return Err(WebhookError::BadSignature);
    }
    Ok(())
}

/// The event's idempotency key (2025-01-01 webhooks), when Cashfree sends one.
fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(|key| format!("cashfree:{key}"))
}

fn verify_webhook(
    client_secret: &Secret,
    headers: &HeaderMap,
    raw_body: &[u8],
) -> Result<VerifiedWebhook, WebhookError> {
    check_signature(client_secret, headers, raw_body)?;
    let hook: Webhook = parse_webhook_json(raw_body)?;
    match hook.data.refund {
        Some(refund) if REFUND_WEBHOOKS.contains(&hook.kind.as_str()) => {
            refund_webhook(refund, headers, raw_body)
        }
        _ => payment_webhook(hook, headers, raw_body),
    }
}

fn refund_webhook(
    refund: Refund,
    headers: &HeaderMap,
    raw_body: &[u8],
) -> Result<VerifiedWebhook, WebhookError> {
    let amount = refund.amount().map_err(WebhookError::Malformed)?;
    let state = refund.state();
    let dedupe_key = idempotency_key(headers).unwrap_or_else(|| match &refund.cf_refund_id {
        Some(id) => format!("cashfree:refund:{id}:{}", refund.refund_status),
        None => format!("cashfree:body:{}", body_digest(raw_body)),
    });
    Ok(VerifiedWebhook {
        dedupe_key,
        payment_reference: refund.order_id.as_deref().and_then(parse_psp_reference),
        psp_order_id: refund.order_id,
        psp_payment_id: refund.cf_payment_id,
        outcome: PaymentOutcome::Refund {
            refund_id: refund.refund_id.as_deref().and_then(parse_refund_reference),
            psp_refund_id: refund.cf_refund_id,
            amount,
            state,
        },
    })
}

fn payment_webhook(
    hook: Webhook,
    headers: &HeaderMap,
    raw_body: &[u8],
) -> Result<VerifiedWebhook, WebhookError> {
    let mut payment = hook.data.payment;
    if let Some(p) = payment.as_mut()
        && p.error_details.is_none()
    {
        p.error_details = hook.data.error_details;
    }
    let order_id = hook.data.order.map(|o| o.order_id);
    let outcome = match (hook.kind.as_str(), &payment) {
        ("PAYMENT_SUCCESS_WEBHOOK", Some(p)) if p.payment_status == "SUCCESS" => {
            let amount = p
                .payment_amount
                .as_ref()
                .ok_or(WebhookError::Missing("payment_amount"))?
                .paise()
                .map_err(|e| WebhookError::Malformed(format!("payment_amount: {e}")))?;
            PaymentOutcome::Succeeded { amount }
        }
        ("PAYMENT_FAILED_WEBHOOK" | "PAYMENT_USER_DROPPED_WEBHOOK", Some(p)) => failed(p),
        (kind, _) => PaymentOutcome::Ignored {
            why: format!("{} carries no payment outcome", excerpt(kind)),
        },
    };
    let dedupe_key = idempotency_key(headers).unwrap_or_else(|| match &payment {
        Some(Payment {
            cf_payment_id: Some(id),
            payment_status,
            ..
        }) => format!("cashfree:{id}:{payment_status}"),
        _ => format!("cashfree:body:{}", body_digest(raw_body)),
    });
    Ok(VerifiedWebhook {
        dedupe_key,
        payment_reference: order_id.as_deref().and_then(parse_psp_reference),
        psp_order_id: order_id,
        psp_payment_id: payment.and_then(|p| p.cf_payment_id),
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightspeed_domain::Paise;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../fixtures/psp/cashfree/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn secret() -> Secret {
        Secret::from("cf_test_secret")
    }

    fn headers(signature: &str, timestamp: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        h.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
        h
    }

    #[test]
    fn webhook_vector() {
        // ✔calc from the reference.
        let body = fixture("payment_success.json");
        assert_eq!(
            sign_webhook(&secret(), "1746426425612", &body),
            "RJawMNZqIPuas1FQP2ncgzf2lOw3aeCSKFvx0Vh07Go="
        );
    }

    #[test]
    fn accepts_the_fixture_with_exact_amount() {
        let body = fixture("payment_success.json");
        let ts = String::from_utf8(fixture("payment_success.timestamp")).unwrap();
        let sig = String::from_utf8(fixture("payment_success.sig")).unwrap();
        let hook = verify_webhook(&secret(), &headers(&sig, &ts), &body).unwrap();
        assert_eq!(
            hook.outcome,
            PaymentOutcome::Succeeded { amount: Paise(200) }
        );
        assert_eq!(hook.dedupe_key, "cashfree:1453002795:SUCCESS");
        assert_eq!(hook.psp_order_id.as_deref(), Some("order_OFR_2"));
        assert_eq!(hook.psp_payment_id.as_deref(), Some("1453002795"));

        let mut h = headers(&sig, &ts);
        h.insert(IDEMPOTENCY_HEADER, "idem-1".parse().unwrap());
        assert_eq!(
            verify_webhook(&secret(), &h, &body).unwrap().dedupe_key,
            "cashfree:idem-1"
        );
    }

    #[test]
    fn rejects_tampering_reserialising_wrong_secret_and_missing_headers() {
        let body = fixture("payment_success.json");
        let ts = String::from_utf8(fixture("payment_success.timestamp")).unwrap();
        let sig = String::from_utf8(fixture("payment_success.sig")).unwrap();
        let mut tampered = body.clone();
        tampered[10] ^= 1;
        assert_eq!(
            verify_webhook(&secret(), &headers(&sig, &ts), &tampered),
            Err(WebhookError::BadSignature)
        );
        // Re-serialising turns 2.00 into 2.0 and breaks the signature, as Cashfree warns.
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let reserialised = serde_json::to_vec(&value).unwrap();
        assert_ne!(reserialised, body);
        assert_eq!(
            verify_webhook(&secret(), &headers(&sig, &ts), &reserialised),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook(&Secret::from("other"), &headers(&sig, &ts), &body),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook(&secret(), &headers(&sig, "1746426425613"), &body),
            Err(WebhookError::BadSignature)
        );
        let mut h = headers(&sig, &ts);
        h.remove(TIMESTAMP_HEADER);
        assert_eq!(
            verify_webhook(&secret(), &h, &body),
            Err(WebhookError::Missing(TIMESTAMP_HEADER))
        );
        assert_eq!(
            verify_webhook(&secret(), &HeaderMap::new(), &body),
            Err(WebhookError::Missing(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn integer_ids_and_failures_parse() {
        let body = br#"{"data":{"order":{"order_id":"o1","order_amount":10.34},"payment":{"cf_payment_id":1453002795,"payment_status":"FAILED","payment_amount":10.34,"payment_message":"declined"},"error_details":{"error_code":"TRANSACTION_DECLINED","error_description":"issuer declined"}},"type":"PAYMENT_FAILED_WEBHOOK"}"#;
        let sig = sign_webhook(&secret(), "1", body);
        let hook = verify_webhook(&secret(), &headers(&sig, "1"), body).unwrap();
        assert_eq!(hook.psp_payment_id.as_deref(), Some("1453002795"));
        assert_eq!(
            hook.outcome,
            PaymentOutcome::Failed {
                code: "TRANSACTION_DECLINED".into(),
                reason: "issuer declined".into()
            }
        );
        let settlement = br#"{"data":{},"type":"SETTLEMENT_WEBHOOK"}"#;
        let sig = sign_webhook(&secret(), "2", settlement);
        let hook = verify_webhook(&secret(), &headers(&sig, "2"), settlement).unwrap();
        assert!(matches!(hook.outcome, PaymentOutcome::Ignored { .. }));
        assert!(hook.dedupe_key.starts_with("cashfree:body:"));
    }

    #[test]
    fn order_sample_parses_with_string_or_integer_ids() {
        let order: Order = serde_json::from_slice(&fixture("order_created.json")).unwrap();
        assert_eq!(order.order_amount.paise(), Ok(Paise(2200)));
        assert!(order.payment_session_id.unwrap().starts_with("session_"));
    }

    #[test]
    fn refund_webhook_vector() {
        // ✔calc from psp-refunds.md §3.
        assert_eq!(
            sign_webhook(&secret(), "1746426425612", &fixture("refund_webhook.json")),
            "0xVh9gXeLQSKg0l0zfswN3yhLdnH2dzg7FNgRFI0kjA="
        );
    }

    fn refund_fixture_headers() -> HeaderMap {
        let ts = String::from_utf8(fixture("refund_webhook.timestamp")).unwrap();
        let sig = String::from_utf8(fixture("refund_webhook.sig")).unwrap();
        headers(&sig, &ts)
    }

    #[test]
    fn a_refund_webhook_is_a_refund_outcome() {
        let hook = verify_webhook(
            &secret(),
            &refund_fixture_headers(),
            &fixture("refund_webhook.json"),
        )
        .unwrap();
        assert_eq!(
            hook.outcome,
            PaymentOutcome::Refund {
                // The sample's refund_id is not one of our references: a dashboard refund.
                refund_id: None,
                psp_refund_id: Some("11325632".into()),
                amount: Paise(200),
                state: RefundState::Succeeded,
            }
        );
        assert_eq!(hook.dedupe_key, "cashfree:refund:11325632:SUCCESS");
        assert_eq!(hook.psp_order_id.as_deref(), Some("sampleorder0413"));
        assert_eq!(hook.psp_payment_id.as_deref(), Some("789727431"));
    }

    #[test]
    fn a_tampered_or_reserialised_refund_webhook_is_refused() {
        let body = fixture("refund_webhook.json");
        let text = String::from_utf8(body.clone()).unwrap();
        let tampered = text.replace(r#""refund_amount":2.00"#, r#""refund_amount":20.00"#);
        assert_eq!(
            verify_webhook(&secret(), &refund_fixture_headers(), tampered.as_bytes()),
            Err(WebhookError::BadSignature)
        );
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            verify_webhook(
                &secret(),
                &refund_fixture_headers(),
                &serde_json::to_vec(&value).unwrap()
            ),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook(&Secret::from("other"), &refund_fixture_headers(), &body),
            Err(WebhookError::BadSignature)
        );
    }

    fn our_refund_webhook(kind: &str, status: &str, amount: &str) -> String {
        format!(
            r#"{{"data":{{"refund":{{"cf_refund_id":"1553338","cf_payment_id":789727431,"refund_id":"R02ySWtwKmVZt06kzVuKdUB","order_id":"02ySWtwKmVZt0686TNaoLq","refund_amount":{amount},"refund_currency":"INR","entity":"Refund","refund_status":"{status}","status_description":"Refund cancelled after retries"}}}},"event_time":"2026-12-06T13:04:28+05:30","type":"{kind}"}}"#
        )
    }

    #[test]
    fn both_refund_webhook_names_name_our_refund_and_payment() {
        for kind in REFUND_WEBHOOKS {
            let body = our_refund_webhook(kind, "CANCELLED", "10.34");
            let sig = sign_webhook(&secret(), "7", body.as_bytes());
            let hook = verify_webhook(&secret(), &headers(&sig, "7"), body.as_bytes()).unwrap();
            let PaymentOutcome::Refund {
                refund_id,
                amount,
                state,
                ..
            } = hook.outcome
            else {
                panic!("{kind} is not a refund outcome")
            };
            assert_eq!(
                refund_id,
                crate::psp::parse_refund_reference("R02ySWtwKmVZt06kzVuKdUB")
            );
            assert!(refund_id.is_some());
            assert_eq!(amount, Paise(1034));
            assert_eq!(
                state,
                RefundState::Failed {
                    code: "CANCELLED".into(),
                    reason: "Refund cancelled after retries".into()
                }
            );
            assert!(hook.payment_reference.is_some());
        }
    }

    #[test]
    fn refund_amounts_beyond_paise_are_refused() {
        let body = our_refund_webhook("REFUND_STATUS_WEBHOOK", "SUCCESS", "10.345");
        let sig = sign_webhook(&secret(), "8", body.as_bytes());
        assert!(matches!(
            verify_webhook(&secret(), &headers(&sig, "8"), body.as_bytes()),
            Err(WebhookError::Malformed(_))
        ));
    }

    #[test]
    fn every_refund_status_is_normalised() {
        let state = |status: &str| {
            let refund: Refund = serde_json::from_str(&format!(
                r#"{{"refund_amount":1.00,"refund_status":"{status}","status_description":"d"}}"#
            ))
            .unwrap();
            refund.state()
        };
        for pending in ["PENDING", "ONHOLD", "SOMETHING_NEW", ""] {
            assert_eq!(state(pending), RefundState::Pending, "{pending:?}");
        }
        assert_eq!(state("SUCCESS"), RefundState::Succeeded);
        for failed in ["CANCELLED", "FAILED"] {
            assert_eq!(
                state(failed),
                RefundState::Failed {
                    code: failed.into(),
                    reason: "d".into()
                }
            );
        }
    }

    #[test]
    fn the_refund_answer_parses_with_string_ids() {
        let refund: Refund = serde_json::from_slice(&fixture("refund_entity.json")).unwrap();
        let refund = refund.into_psp_refund().unwrap();
        assert_eq!(refund.amount, Paise(1034));
        assert_eq!(refund.psp_refund_id.as_deref(), Some("1553338"));
        assert_eq!(refund.state, RefundState::Pending);
    }

    #[test]
    fn refund_notes_fit_cashfree_limits() {
        assert_eq!(refund_note(" ab "), None);
        assert_eq!(refund_note("abc").as_deref(), Some("abc"));
        assert_eq!(refund_note(&"x".repeat(150)).map(|n| n.len()), Some(100));
    }
}
