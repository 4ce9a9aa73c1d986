//! The adapter for the built-in sandbox PSP (wire format: [`crate::sandbox`]), called over HTTP
//! like any PSP: orders, refunds (keyed by our refund reference, which the sandbox takes as the
//! idempotency key and derives the refund's id from), and payment and refund webhooks.

use chrono::{DateTime, Utc};
use lightspeed_domain::psp_outcome::RefundState;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;

use super::{
    CheckoutData, Endpoint, OrderRequest, PaymentOutcome, Probe, PspAdapter, PspCall, PspError,
    PspOrder, PspRefund, PspStatus, RefundRequest, VerifiedWebhook, WebhookError, exchange,
    parse_json, parse_psp_reference, parse_refund_reference, parse_webhook_json, psp_reference,
    refund_reference,
};
use crate::http::{Answer, excerpt, join};
use crate::merchant_webhook::{WebhookSecret, WebhookSignError, verify};
use crate::sandbox::{
    CreateOrder, CreateRefund, EVENT_FAILED, EVENT_REFUND_FAILED, EVENT_REFUND_PROCESSED,
    EVENT_SUCCEEDED, FailureInfo, KEY_HEADER, OrderStatus, OrderView, RefundEvent, RefundStatus,
    RefundView, SandboxEvent, order_id_for, refund_id_for,
};
use crate::secrets::Secret;

/// Where the app serves the sandbox on a developer machine (`lightspeed serve` on port 8080).
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080/sandbox";

/// A sandbox account's adapter: one `whsec_` secret authenticates calls and signs webhooks.
pub(crate) struct Adapter<'a> {
    pub(crate) webhook_secret: &'a Secret,
}

impl PspAdapter for Adapter<'_> {
    fn create_order<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        order: &'a OrderRequest,
    ) -> PspCall<'a, PspOrder> {
        let base = endpoint.base(DEFAULT_BASE_URL, DEFAULT_BASE_URL);
        Box::pin(create_order(
            endpoint.http,
            base,
            self.webhook_secret,
            order,
        ))
    }

    fn fetch_status<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        reference: &'a str,
        _psp_order_id: Option<&'a str>,
    ) -> PspCall<'a, PspStatus> {
        let base = endpoint.base(DEFAULT_BASE_URL, DEFAULT_BASE_URL);
        Box::pin(fetch_status(
            endpoint.http,
            base,
            self.webhook_secret,
            reference,
        ))
    }

    fn probe<'a>(&'a self, endpoint: Endpoint<'a>) -> PspCall<'a, Probe> {
        let base = endpoint.base(DEFAULT_BASE_URL, DEFAULT_BASE_URL);
        Box::pin(probe(endpoint.http, base, self.webhook_secret))
    }

    fn create_refund<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        refund: &'a RefundRequest,
    ) -> PspCall<'a, PspRefund> {
        let base = endpoint.base(DEFAULT_BASE_URL, DEFAULT_BASE_URL);
        Box::pin(create_refund(
            endpoint.http,
            base,
            self.webhook_secret,
            refund,
        ))
    }

    fn fetch_refund<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        refund: &'a RefundRequest,
        _psp_refund_id: Option<&'a str>,
    ) -> PspCall<'a, Option<PspRefund>> {
        let base = endpoint.base(DEFAULT_BASE_URL, DEFAULT_BASE_URL);
        Box::pin(fetch_refund(
            endpoint.http,
            base,
            self.webhook_secret,
            refund,
        ))
    }

    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        raw_body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook, WebhookError> {
        verify_webhook(self.webhook_secret, headers, raw_body, now)
    }
}

fn key_header(webhook_secret: &Secret) -> Result<HeaderValue, PspError> {
    let mut value = HeaderValue::from_str(webhook_secret.expose_str()?).map_err(|_| {
        PspError::local(
            "invalid_credentials",
            "sandbox key is not a valid header value",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

fn rejected(answer: &Answer) -> PspError {
    match serde_json::from_slice::<ErrorEnvelope>(&answer.body) {
        Ok(ErrorEnvelope { error }) => PspError::Rejected {
            code: error.code,
            message: excerpt(&error.message),
        },
        Err(_) => PspError::Rejected {
            code: answer.status.as_u16().to_string(),
            message: "sandbox refused the request".to_owned(),
        },
    }
}

async fn create_order(
    http: &reqwest::Client,
    base: &str,
    webhook_secret: &Secret,
    order: &OrderRequest,
) -> Result<PspOrder, PspError> {
    let body = CreateOrder {
        reference: psp_reference(order.payment_id),
        amount: order.amount,
        currency: order.currency.clone(),
        description: order.description.clone(),
        callback_url: order.callback_url.clone(),
        return_url: order.return_url.clone(),
    };
    let request = http
        .post(join(base, "/v1/orders"))
        .header(KEY_HEADER, key_header(webhook_secret)?)
        .json(&body);
    let answer = exchange(request).await?;
    if !answer.status.is_success() {
        return Err(rejected(&answer));
    }
    let view: OrderView = parse_json(&answer, "sandbox order")?;
    Ok(PspOrder {
        psp_order_id: view.id,
        checkout: CheckoutData::Sandbox {
            checkout_url: view.checkout_url,
        },
        reused: answer.status == StatusCode::OK,
    })
}

async fn get_order(
    http: &reqwest::Client,
    base: &str,
    webhook_secret: &Secret,
    order_id: &str,
) -> Result<Answer, PspError> {
    let url = join(base, &format!("/v1/orders/{order_id}"));
    exchange(
        http.get(url)
            .header(KEY_HEADER, key_header(webhook_secret)?),
    )
    .await
}

async fn fetch_status(
    http: &reqwest::Client,
    base: &str,
    webhook_secret: &Secret,
    reference: &str,
) -> Result<PspStatus, PspError> {
    let answer = get_order(http, base, webhook_secret, &order_id_for(reference)).await?;
    if answer.status == StatusCode::NOT_FOUND {
        return Ok(PspStatus {
            psp_order_id: None,
            psp_payment_id: None,
            outcome: PaymentOutcome::Pending,
        });
    }
    if !answer.status.is_success() {
        return Err(rejected(&answer));
    }
    let view: OrderView = parse_json(&answer, "sandbox order")?;
    let outcome = match view.status {
        OrderStatus::Created => PaymentOutcome::Pending,
        OrderStatus::Paid => PaymentOutcome::Succeeded {
            amount: view.amount,
        },
        OrderStatus::Failed => {
            let failure = view.failure.unwrap_or_else(|| crate::sandbox::FailureInfo {
                code: "FAILED".to_owned(),
                reason: String::new(),
            });
            PaymentOutcome::Failed {
                code: failure.code,
                reason: failure.reason,
            }
        }
    };
    Ok(PspStatus {
        psp_order_id: Some(view.id),
        psp_payment_id: view.payment_id,
        outcome,
    })
}

async fn create_refund(
    http: &reqwest::Client,
    base: &str,
    webhook_secret: &Secret,
    refund: &RefundRequest,
) -> Result<PspRefund, PspError> {
    let order_id = order_id_for(&psp_reference(refund.payment_id));
    let body = CreateRefund {
        reference: refund_reference(refund.refund_id),
        amount: refund.amount,
        reason: refund.reason.clone(),
    };
    let request = http
        .post(join(base, &format!("/v1/orders/{order_id}/refunds")))
        .header(KEY_HEADER, key_header(webhook_secret)?)
        .json(&body);
    let answer = exchange(request).await?;
    if !answer.status.is_success() {
        return Err(rejected(&answer));
    }
    let view: RefundView = parse_json(&answer, "sandbox refund")?;
    Ok(psp_refund(view))
}

async fn fetch_refund(
    http: &reqwest::Client,
    base: &str,
    webhook_secret: &Secret,
    refund: &RefundRequest,
) -> Result<Option<PspRefund>, PspError> {
    // The refund's id derives from our reference, so the look-up needs no id of the sandbox's.
    let id = refund_id_for(&refund_reference(refund.refund_id));
    let request = http
        .get(join(base, &format!("/v1/refunds/{id}")))
        .header(KEY_HEADER, key_header(webhook_secret)?);
    let answer = exchange(request).await?;
    if answer.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !answer.status.is_success() {
        return Err(rejected(&answer));
    }
    let view: RefundView = parse_json(&answer, "sandbox refund")?;
    Ok(Some(psp_refund(view)))
}

fn psp_refund(view: RefundView) -> PspRefund {
    PspRefund {
        psp_refund_id: Some(view.id),
        amount: view.amount,
        state: refund_state(view.status, view.failure),
    }
}

fn refund_state(status: RefundStatus, failure: Option<FailureInfo>) -> RefundState {
    match status {
        RefundStatus::Pending => RefundState::Pending,
        RefundStatus::Processed => RefundState::Succeeded,
        RefundStatus::Failed => {
            let failure = failure.unwrap_or_else(|| FailureInfo {
                code: "FAILED".to_owned(),
                reason: String::new(),
            });
            RefundState::Failed {
                code: failure.code,
                reason: failure.reason,
            }
        }
    }
}

async fn probe(
    http: &reqwest::Client,
    base: &str,
    webhook_secret: &Secret,
) -> Result<Probe, PspError> {
    let answer = get_order(
        http,
        base,
        webhook_secret,
        &order_id_for("credential-check"),
    )
    .await?;
    let accepted = answer.status.is_success() || answer.status == StatusCode::NOT_FOUND;
    Ok(Probe {
        status: answer.status.as_u16(),
        accepted,
    })
}

fn verify_webhook(
    webhook_secret: &Secret,
    headers: &HeaderMap,
    raw_body: &[u8],
    now: DateTime<Utc>,
) -> Result<VerifiedWebhook, WebhookError> {
    let secret =
        WebhookSecret::from_secret(webhook_secret).map_err(|_| WebhookError::BadSignature)?;
    let message = verify(&secret, headers, raw_body, now).map_err(|e| match e {
        WebhookSignError::MissingHeader(name) => WebhookError::Missing(name),
        WebhookSignError::MalformedHeader(name) => {
            WebhookError::Malformed(format!("header {name}"))
        }
        WebhookSignError::TooOld | WebhookSignError::TooNew => WebhookError::Stale,
        WebhookSignError::BadSignature | WebhookSignError::InvalidSecret => {
            WebhookError::BadSignature
        }
    })?;
    let dedupe_key = format!("sandbox:{}", message.id);
    let Kind { kind } = parse_webhook_json(raw_body)?;
    if kind.starts_with("refund.") {
        let event: RefundEvent = parse_webhook_json(raw_body)?;
        return Ok(refund_webhook(dedupe_key, event));
    }
    let event: SandboxEvent = parse_webhook_json(raw_body)?;
    Ok(payment_webhook(dedupe_key, event))
}

/// The `type` every sandbox webhook carries, read first to pick the body's shape.
#[derive(Debug, Deserialize)]
struct Kind {
    #[serde(rename = "type")]
    kind: String,
}

fn payment_webhook(dedupe_key: String, event: SandboxEvent) -> VerifiedWebhook {
    let outcome = match (event.kind.as_str(), event.failure) {
        (EVENT_SUCCEEDED, _) => PaymentOutcome::Succeeded {
            amount: event.amount,
        },
        (EVENT_FAILED, Some(failure)) => PaymentOutcome::Failed {
            code: failure.code,
            reason: failure.reason,
        },
        (EVENT_FAILED, None) => PaymentOutcome::Failed {
            code: "FAILED".to_owned(),
            reason: String::new(),
        },
        (other, _) => PaymentOutcome::Ignored {
            why: format!("sandbox event {}", excerpt(other)),
        },
    };
    VerifiedWebhook {
        dedupe_key,
        payment_reference: parse_psp_reference(&event.reference),
        psp_order_id: Some(event.order_id),
        psp_payment_id: Some(event.payment_id),
        outcome,
    }
}

fn refund_webhook(dedupe_key: String, event: RefundEvent) -> VerifiedWebhook {
    let status = match event.kind.as_str() {
        EVENT_REFUND_PROCESSED => Some(RefundStatus::Processed),
        EVENT_REFUND_FAILED => Some(RefundStatus::Failed),
        _ => None,
    };
    let outcome = match status {
        Some(status) => PaymentOutcome::Refund {
            refund_id: parse_refund_reference(&event.reference),
            psp_refund_id: Some(event.refund_id),
            amount: event.amount,
            state: refund_state(status, event.failure),
        },
        None => PaymentOutcome::Ignored {
            why: format!("sandbox event {}", excerpt(&event.kind)),
        },
    };
    VerifiedWebhook {
        dedupe_key,
        payment_reference: parse_psp_reference(&event.order_reference),
        psp_order_id: Some(event.order_id),
        psp_payment_id: Some(event.payment_id),
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use lightspeed_domain::{Paise, PaymentId, RefundId};

    use super::*;
    use crate::merchant_webhook::sign;
    use crate::secrets::generate_webhook_secret;

    fn refund_body(kind: &str, payment: PaymentId, refund: RefundId) -> Vec<u8> {
        let reference = refund_reference(refund);
        serde_json::to_vec(&RefundEvent {
            kind: kind.to_owned(),
            refund_id: refund_id_for(&reference),
            reference,
            order_id: order_id_for(&psp_reference(payment)),
            order_reference: psp_reference(payment),
            payment_id: "sbp_1".to_owned(),
            amount: Paise(2500),
            currency: "INR".to_owned(),
            failure: None,
        })
        .unwrap()
    }

    fn signed(secret: &Secret, body: &[u8]) -> HeaderMap {
        let key = WebhookSecret::from_secret(secret).unwrap();
        let signed = sign(&key, &[], "sbevt_x", Utc::now().timestamp(), body);
        let mut headers = HeaderMap::new();
        for (name, value) in signed.pairs() {
            headers.insert(name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn refund_webhooks_name_the_refund_and_the_payment() {
        let secret = generate_webhook_secret();
        let (payment, refund) = (PaymentId::new(), RefundId::new());
        let body = refund_body(crate::sandbox::EVENT_REFUND_PROCESSED, payment, refund);
        let hook = verify_webhook(&secret, &signed(&secret, &body), &body, Utc::now()).unwrap();
        assert_eq!(hook.dedupe_key, "sandbox:sbevt_x");
        assert_eq!(hook.payment_reference, Some(payment));
        assert_eq!(
            hook.outcome,
            PaymentOutcome::Refund {
                refund_id: Some(refund),
                psp_refund_id: Some(refund_id_for(&refund_reference(refund))),
                amount: Paise(2500),
                state: RefundState::Succeeded,
            }
        );

        let mut tampered = body.clone();
        let at = tampered.windows(4).position(|w| w == b"2500").unwrap();
        tampered[at] = b'9';
        assert_eq!(
            verify_webhook(&secret, &signed(&secret, &body), &tampered, Utc::now()),
            Err(WebhookError::BadSignature)
        );

        let body = refund_body("refund.unheard_of", payment, refund);
        let hook = verify_webhook(&secret, &signed(&secret, &body), &body, Utc::now()).unwrap();
        assert!(matches!(hook.outcome, PaymentOutcome::Ignored { .. }));
    }
}
