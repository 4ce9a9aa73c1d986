//! PSP webhook intake: verify against the raw bytes, record the outcome once, answer at once.
//! Acting on the outcome happens from the log (the `webhook-processing` queue).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use lightspeed_adapters::psp::{
    PaymentOutcome, PspAccount, VerifiedWebhook, parse_psp_reference, payu, verify_webhook,
};
use lightspeed_domain::gateway::Gateway;
use lightspeed_domain::merchant::Merchant;
use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, ReportOutcome};
use lightspeed_domain::{GatewayId, PaymentId, Provider, RefundId};
use lightspeed_eventstore::{CommandContext, Metadata};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::protection::ClientAddr;
use crate::state::AppState;

/// The answer to a verified webhook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookReceived {
    /// Always true: the message verified and is recorded.
    pub received: bool,
    /// True when the same message was recorded before (a redelivery).
    pub duplicate: bool,
}

/// The answer to a webhook: recorded (200), or an unsigned refund callback whose refund is
/// checked with the PSP instead (202).
#[derive(Debug)]
pub enum WebhookAnswer {
    /// Verified and recorded.
    Received(WebhookReceived),
    /// Not signed, but naming one of our refunds: its check is queued, nothing recorded.
    RefundCheckQueued,
}

impl IntoResponse for WebhookAnswer {
    fn into_response(self) -> Response {
        match self {
            WebhookAnswer::Received(received) => Json(received).into_response(),
            WebhookAnswer::RefundCheckQueued => (
                StatusCode::ACCEPTED,
                Json(RefundCheckQueued {
                    received: true,
                    refund_check_queued: true,
                }),
            )
                .into_response(),
        }
    }
}

/// The answer to an unsigned refund callback (PayU's): nothing from it is recorded; the refund's
/// status is asked of the PSP.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundCheckQueued {
    /// Always true.
    pub received: bool,
    /// Always true: a refund check is queued.
    pub refund_check_queued: bool,
}

/// A webhook from one of the merchant's PSP accounts, named in the path.
#[utoipa::path(
    post,
    path = "/webhook/{client_key}/{gateway_id}",
    tag = "psp-webhooks",
    params(
        ("client_key" = String, Path, description = "The merchant's client key"),
        ("gateway_id" = String, Path, description = "The gateway (PSP account) the webhook is configured on"),
    ),
    request_body(content = String, description = "The PSP's payload, exactly as sent (JSON or form)"),
    responses(
        (status = 200, description = "Verified and recorded", body = WebhookReceived),
        (status = 202, description = "An unsigned refund callback (PayU) naming one of our refunds: nothing recorded, the refund's status is queried instead", body = RefundCheckQueued),
        (status = 401, description = "Signature does not verify; nothing recorded, the payment's status is queried instead", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The source address is outside the provider's allow-list (when one is configured)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown client key or gateway", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn gateway_webhook(
    State(state): State<AppState>,
    Path((client_key, gateway_id)): Path<(String, String)>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<WebhookAnswer, ApiError> {
    let merchant = merchant(&state, &client_key).await?;
    let gateway_id: GatewayId = gateway_id
        .parse()
        .map_err(|_| ApiError::UnknownWebhookUrl)?;
    let gateway = state
        .ledger
        .gateway_of(merchant.id(), gateway_id)
        .await
        .map_err(|_| ApiError::UnknownWebhookUrl)?;
    if !state
        .config
        .webhook_ip_allowlist
        .allows(gateway.provider(), source)
    {
        tracing::warn!(provider = %gateway.provider(), source = ?source, "PSP webhook from an address outside the allow-list");
        return Err(ApiError::WebhookSourceNotAllowed);
    }
    receive(&state, &merchant, &[gateway], &headers, &body).await
}

/// A webhook from one of the merchant's PSP accounts, found by trying those whose provider
/// matches the message (for PSP dashboards that take one URL per merchant).
#[utoipa::path(
    post,
    path = "/webhook/{client_key}",
    tag = "psp-webhooks",
    params(("client_key" = String, Path, description = "The merchant's client key")),
    request_body(content = String, description = "The PSP's payload, exactly as sent (JSON or form)"),
    responses(
        (status = 200, description = "Verified and recorded", body = WebhookReceived),
        (status = 202, description = "An unsigned refund callback (PayU) naming one of our refunds: nothing recorded, the refund's status is queried instead", body = RefundCheckQueued),
        (status = 401, description = "Signature does not verify with any of the merchant's gateways", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The source address is outside the allow-list of every provider the message could be from", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown client key", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn merchant_webhook(
    State(state): State<AppState>,
    Path(client_key): Path<String>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<WebhookAnswer, ApiError> {
    let merchant = merchant(&state, &client_key).await?;
    let likely = likely_providers(&headers, &body);
    let allowlist = &state.config.webhook_ip_allowlist;
    let providers: Vec<Provider> = likely
        .iter()
        .copied()
        .filter(|provider| allowlist.allows(*provider, source))
        .collect();
    if !likely.is_empty() && providers.is_empty() {
        tracing::warn!(source = ?source, "PSP webhook from an address outside the allow-list");
        return Err(ApiError::WebhookSourceNotAllowed);
    }
    let mut gateways = Vec::new();
    for gateway_id in merchant.active_gateways() {
        let gateway = state.ledger.gateway_of(merchant.id(), *gateway_id).await?;
        if providers.contains(&gateway.provider()) {
            gateways.push(gateway);
        }
    }
    receive(&state, &merchant, &gateways, &headers, &body).await
}

/// The merchant a webhook URL names: by any client key ever issued to it, since a PSP dashboard
/// keeps the URL it was given when the merchant's API keys are regenerated.
async fn merchant(state: &AppState, client_key: &str) -> Result<Merchant, ApiError> {
    // A PSP cannot fix a wrong URL by retrying: say plainly that nothing is there.
    state
        .ledger
        .merchant_by_issued_client_key(client_key)
        .await?
        .ok_or(ApiError::UnknownWebhookUrl)
}

/// Which providers could have sent this message, from the headers each one sets.
fn likely_providers(headers: &HeaderMap, body: &[u8]) -> Vec<Provider> {
    let has = |name: &str| headers.contains_key(name);
    let mut providers = Vec::new();
    if has("x-razorpay-signature") {
        providers.push(Provider::Razorpay);
    }
    if has("x-webhook-signature") {
        providers.push(Provider::Cashfree);
    }
    if has("x-verify") {
        providers.push(Provider::Phonepe);
    }
    if has("webhook-signature") {
        providers.push(Provider::Sandbox);
    }
    if body.windows(9).any(|w| w == b"mihpayid=") || payu_refund_hint(body).is_some() {
        providers.push(Provider::Payu);
    }
    providers
}

async fn receive(
    state: &AppState,
    merchant: &Merchant,
    gateways: &[Gateway],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<WebhookAnswer, ApiError> {
    let now = state.ledger.now();
    for gateway in gateways {
        let account = PspAccount::open(&state.keyring, gateway.credentials()).map_err(|e| {
            ApiError::Internal(format!(
                "cannot open gateway {} credentials: {e}",
                gateway.id()
            ))
        })?;
        let Ok(verified) = verify_webhook(&account.credentials, headers, body, now) else {
            continue;
        };
        let report = report(merchant, gateway, verified, now);
        let context = CommandContext {
            command_id: None,
            metadata: Metadata {
                correlation_id: Some(uuid::Uuid::now_v7()),
                actor: Some(format!("psp:{}", gateway.provider())),
                request_id: headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                ..Metadata::default()
            },
        };
        let recorded = state.ledger.report_outcome(report, &context).await?;
        return Ok(WebhookAnswer::Received(WebhookReceived {
            received: true,
            duplicate: !recorded,
        }));
    }
    if let Some(queued) = refund_callback(state, merchant, gateways, body).await? {
        return Ok(queued);
    }
    // Not trusted: nothing is recorded, but the PSP is asked what really happened.
    if let (Some(checks), Some(gateway)) = (&state.status_checks, gateways.first()) {
        checks
            .enqueue(
                gateway.id(),
                payment_hint(body),
                "webhook signature did not verify",
            )
            .await;
    }
    tracing::warn!(merchant_id = %merchant.id(), candidates = gateways.len(), "PSP webhook did not verify");
    Err(ApiError::WebhookNotVerified)
}

fn report(
    merchant: &Merchant,
    gateway: &Gateway,
    verified: VerifiedWebhook,
    at: chrono::DateTime<chrono::Utc>,
) -> ReportOutcome {
    ReportOutcome {
        merchant_id: merchant.id(),
        gateway_id: gateway.id(),
        provider: gateway.provider(),
        dedupe_key: verified.dedupe_key,
        payment_id: verified.payment_reference,
        psp_order_id: verified.psp_order_id,
        psp_payment_id: verified.psp_payment_id,
        outcome: match verified.outcome {
            PaymentOutcome::Succeeded { amount } => PspOutcome::Succeeded { amount },
            PaymentOutcome::Failed { code, reason } => PspOutcome::Failed { code, reason },
            PaymentOutcome::Pending => PspOutcome::Pending,
            PaymentOutcome::Refund {
                refund_id,
                psp_refund_id,
                amount,
                state,
            } => PspOutcome::Refund {
                refund_id,
                psp_refund_id,
                amount,
                state,
            },
            PaymentOutcome::Ignored { why } => PspOutcome::Ignored { why },
        },
        source: OutcomeSource::Webhook,
        at,
    }
}

/// Our payment reference, if an untrusted body contains one (only to aim a status check).
fn payment_hint(body: &[u8]) -> Option<PaymentId> {
    let text = String::from_utf8_lossy(body);
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|token| token.len() == 22)
        .find_map(parse_psp_reference)
}

/// PayU's refund callbacks are not signed: one naming a refund of ours (of this merchant, on a
/// PayU gateway among `gateways`) queues a check of that refund with the PSP and records nothing
/// from the body.
async fn refund_callback(
    state: &AppState,
    merchant: &Merchant,
    gateways: &[Gateway],
    body: &[u8],
) -> Result<Option<WebhookAnswer>, ApiError> {
    if !gateways.iter().any(|g| g.provider() == Provider::Payu) {
        return Ok(None);
    }
    let Some((payment_hint, refund_id)) = payu_refund_hint(body) else {
        return Ok(None);
    };
    let payment_id = match payment_hint {
        Some(payment_id) => Some(payment_id),
        None => state.ledger.payment_of_refund(refund_id).await?,
    };
    let Some(payment_id) = payment_id else {
        return Ok(None);
    };
    // Only a refund of this merchant's payment is checked, however the body names it.
    let owned = state
        .ledger
        .payment(payment_id)
        .await?
        .is_some_and(|p| p.merchant_id() == merchant.id() && p.refund(refund_id).is_some());
    let Some(checks) = state.status_checks.as_ref().filter(|_| owned) else {
        return Ok(None);
    };
    checks
        .enqueue_refund(payment_id, refund_id, "unsigned PayU refund callback")
        .await;
    Ok(Some(WebhookAnswer::RefundCheckQueued))
}

/// The payment and refund a PayU refund callback names (its `merchantTxnId` and `token`, our
/// references); `None` unless it names a refund of ours.
fn payu_refund_hint(body: &[u8]) -> Option<(Option<PaymentId>, RefundId)> {
    let hint = payu::refund_callback_hint(body)?;
    Some((hint.payment_reference, hint.refund_id?))
}
