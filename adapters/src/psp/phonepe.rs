//! PhonePe PG v1 ("salt key") Standard Checkout: pay page, status, S2S callback.
//!
//! Idempotency: our reference is the `merchantTransactionId`. PhonePe refuses a duplicate, and
//! it cannot hand back the pay page of an existing transaction, so on a duplicate the adapter
//! fetches the status and answers [`PspError::OrderExists`] with it.
//!
//! Refunds (`/pg/v1/refund`) are transactions of their own, with our refund reference as their
//! `merchantTransactionId`. PhonePe takes no idempotency key, so creating one first looks it up
//! through the status API, and an ambiguous answer is looked up again, never taken as failed.
//! Refund callbacks are signed like payment callbacks and told apart by that reference.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use lightspeed_domain::psp_outcome::RefundState;
use lightspeed_domain::{Paise, RefundId};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

use super::{
    CheckoutData, Endpoint, OrderRequest, PaymentOutcome, Probe, PspAdapter, PspCall, PspError,
    PspOrder, PspRefund, PspStatus, RefundRequest, VerifiedWebhook, WebhookError, exchange,
    parse_json, parse_psp_reference, parse_refund_reference, parse_webhook_json, psp_reference,
    refund_reference, required_header,
};
use crate::crypto::{hex_digest_eq, sha256_hex};
use crate::http::{excerpt, join};
use crate::secrets::Secret;

/// UAT (sandbox) API base.
pub const TEST_BASE_URL: &str = "https://api-preprod.phonepe.com/apis/pg-sandbox";
/// Production API base.
pub const LIVE_BASE_URL: &str = "https://api.phonepe.com/apis/hermes";
/// Header with `sha256(…) + "###" + salt index`.
pub const VERIFY_HEADER: &str = "x-verify";
const PAY_PATH: &str = "/pg/v1/pay";
const REFUND_PATH: &str = "/pg/v1/refund";
/// Codes PhonePe uses for a `merchantTransactionId` it has seen before.
const DUPLICATE_CODES: [&str; 2] = ["INVALID_TRANSACTION_ID", "DUPLICATE_TRANSACTION"];

/// A PhonePe PG v1 account's adapter: the merchant id and its salt key with that key's index.
pub(crate) struct Adapter<'a> {
    pub(crate) merchant_id: &'a str,
    pub(crate) salt_key: &'a Secret,
    pub(crate) salt_index: u32,
}

impl PspAdapter for Adapter<'_> {
    fn create_order<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        order: &'a OrderRequest,
    ) -> PspCall<'a, PspOrder> {
        let base = endpoint.base(TEST_BASE_URL, LIVE_BASE_URL);
        Box::pin(create_order(endpoint.http, base, self, order))
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
        Box::pin(fetch_refund(endpoint.http, base, self, refund))
    }

    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        raw_body: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook, WebhookError> {
        verify_webhook(self.salt_key, self.salt_index, headers, raw_body)
    }
}

/// `X-VERIFY` of a pay request: `sha256(base64 payload + "/pg/v1/pay" + salt) ### index`.
pub fn pay_checksum(base64_payload: &str, salt_key: &str, salt_index: u32) -> String {
    format!(
        "{}###{salt_index}",
        sha256_hex(&[
            base64_payload.as_bytes(),
            PAY_PATH.as_bytes(),
            salt_key.as_bytes()
        ])
    )
}

/// `X-VERIFY` of a status request: `sha256("/pg/v1/status/{mid}/{txn}" + salt) ### index`.
pub fn status_checksum(
    merchant_id: &str,
    transaction: &str,
    salt_key: &str,
    salt_index: u32,
) -> String {
    let path = status_path(merchant_id, transaction);
    format!(
        "{}###{salt_index}",
        sha256_hex(&[path.as_bytes(), salt_key.as_bytes()])
    )
}

/// `X-VERIFY` of a callback: `sha256(base64 response + salt) ### index`.
pub fn callback_checksum(base64_response: &str, salt_key: &str, salt_index: u32) -> String {
    format!(
        "{}###{salt_index}",
        sha256_hex(&[base64_response.as_bytes(), salt_key.as_bytes()])
    )
}

fn status_path(merchant_id: &str, transaction: &str) -> String {
    format!("/pg/v1/status/{merchant_id}/{transaction}")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PayPayload<'a> {
    merchant_id: &'a str,
    merchant_transaction_id: &'a str,
    merchant_user_id: String,
    amount: i64,
    redirect_url: &'a str,
    redirect_mode: &'a str,
    callback_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mobile_number: Option<&'a str>,
    payment_instrument: PaymentInstrument,
}

#[derive(Serialize)]
struct PaymentInstrument {
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The envelope of every PhonePe answer (pay, status, and the decoded callback).
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    #[serde(default)]
    merchant_transaction_id: Option<String>,
    // Not in PhonePe's documented refund payload; read in case a refund callback carries it.
    #[serde(default)]
    original_transaction_id: Option<String>,
    #[serde(default)]
    transaction_id: Option<String>,
    #[serde(default)]
    amount: Option<i64>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    response_code: Option<String>,
    #[serde(default)]
    instrument_response: Option<InstrumentResponse>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstrumentResponse {
    #[serde(default)]
    redirect_info: Option<RedirectInfo>,
}

#[derive(Debug, Deserialize)]
struct RedirectInfo {
    url: String,
}

fn rejected(status: u16, envelope: Option<Envelope>) -> PspError {
    match envelope {
        Some(e) if !e.code.is_empty() => PspError::Rejected {
            code: e.code,
            message: excerpt(&e.message.unwrap_or_default()),
        },
        _ => PspError::Rejected {
            code: status.to_string(),
            message: "PhonePe refused the request".to_owned(),
        },
    }
}

async fn create_order(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    order: &OrderRequest,
) -> Result<PspOrder, PspError> {
    if order.amount < Paise(100) {
        return Err(PspError::local(
            "amount_too_small",
            "PhonePe payments must be at least 100 paise",
        ));
    }
    let salt = psp.salt_key.expose_str()?;
    let reference = psp_reference(order.payment_id);
    let payload = PayPayload {
        merchant_id: psp.merchant_id,
        merchant_transaction_id: &reference,
        // PhonePe wants an alphanumeric user id; guests have none, so the payment stands in.
        merchant_user_id: format!("U{reference}"),
        amount: order.amount.0,
        redirect_url: &order.return_url,
        redirect_mode: "REDIRECT",
        callback_url: &order.callback_url,
        mobile_number: order
            .customer
            .phone
            .as_deref()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit())),
        payment_instrument: PaymentInstrument { kind: "PAY_PAGE" },
    };
    let json = serde_json::to_vec(&payload)
        .map_err(|_| PspError::local("invalid_request", "payload not serialisable"))?;
    let encoded = BASE64.encode(json);
    let request = http
        .post(join(base, PAY_PATH))
        .header(VERIFY_HEADER, pay_checksum(&encoded, salt, psp.salt_index))
        .json(&serde_json::json!({ "request": encoded }));
    let answer = exchange(request).await?;
    let envelope: Option<Envelope> = serde_json::from_slice(&answer.body).ok();
    if let Some(e) = &envelope
        && DUPLICATE_CODES.contains(&e.code.as_str())
    {
        let status = fetch_status(http, base, psp, &reference).await?;
        return Err(PspError::OrderExists {
            status: Box::new(status),
        });
    }
    if !answer.status.is_success() {
        return Err(rejected(answer.status.as_u16(), envelope));
    }
    let envelope = envelope.ok_or_else(|| PspError::protocol("PhonePe pay: invalid JSON"))?;
    if envelope.code != "PAYMENT_INITIATED" {
        return Err(rejected(answer.status.as_u16(), Some(envelope)));
    }
    let redirect_url = envelope
        .data
        .and_then(|d| d.instrument_response)
        .and_then(|i| i.redirect_info)
        .map(|r| r.url)
        .ok_or_else(|| PspError::protocol("PhonePe pay: no redirect URL"))?;
    Ok(PspOrder {
        psp_order_id: reference,
        checkout: CheckoutData::Phonepe { redirect_url },
        reused: false,
    })
}

async fn status_answer(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    transaction: &str,
) -> Result<(u16, Envelope), PspError> {
    let salt = psp.salt_key.expose_str()?;
    let request = http
        .get(join(base, &status_path(psp.merchant_id, transaction)))
        .header(
            VERIFY_HEADER,
            status_checksum(psp.merchant_id, transaction, salt, psp.salt_index),
        )
        .header("x-merchant-id", psp.merchant_id);
    let answer = exchange(request).await?;
    Ok((
        answer.status.as_u16(),
        parse_json(&answer, "PhonePe status")?,
    ))
}

async fn fetch_status(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    reference: &str,
) -> Result<PspStatus, PspError> {
    let (status, envelope) = status_answer(http, base, psp, reference).await?;
    if envelope.code == "TRANSACTION_NOT_FOUND" {
        return Ok(PspStatus {
            psp_order_id: None,
            psp_payment_id: None,
            outcome: PaymentOutcome::Pending,
        });
    }
    if !(200..300).contains(&status) && envelope.data.is_none() {
        return Err(rejected(status, Some(envelope)));
    }
    let (psp_payment_id, outcome) = outcome_of(&envelope)?;
    Ok(PspStatus {
        psp_order_id: Some(reference.to_owned()),
        psp_payment_id,
        outcome,
    })
}

/// The outcome of a status answer or decoded callback: `data.state` decides, the top-level
/// `code` when the state is absent.
fn outcome_of(envelope: &Envelope) -> Result<(Option<String>, PaymentOutcome), PspError> {
    let data = envelope.data.as_ref();
    let state = data.and_then(|d| d.state.as_deref());
    let failed = || PaymentOutcome::Failed {
        code: data
            .and_then(|d| d.response_code.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| envelope.code.clone()),
        reason: envelope.message.clone().unwrap_or_default(),
    };
    let outcome = match (state, envelope.code.as_str()) {
        (Some("COMPLETED"), _) | (None, "PAYMENT_SUCCESS") => PaymentOutcome::Succeeded {
            amount: Paise(
                data.and_then(|d| d.amount)
                    .ok_or_else(|| PspError::protocol("PhonePe success without an amount"))?,
            ),
        },
        (Some("FAILED"), _) | (None, "PAYMENT_ERROR" | "PAYMENT_DECLINED" | "TIMED_OUT") => {
            failed()
        }
        (Some("PENDING"), _) | (None, "PAYMENT_PENDING") => PaymentOutcome::Pending,
        (other_state, code) => PaymentOutcome::Ignored {
            why: format!(
                "PhonePe state {:?}, code {}",
                other_state.map(excerpt),
                excerpt(code)
            ),
        },
    };
    Ok((data.and_then(|d| d.transaction_id.clone()), outcome))
}

async fn probe(http: &reqwest::Client, base: &str, psp: &Adapter<'_>) -> Result<Probe, PspError> {
    // A transaction that never exists: good credentials get TRANSACTION_NOT_FOUND.
    let (status, envelope) = status_answer(http, base, psp, "LSCREDENTIALCHECK").await?;
    Ok(Probe {
        status,
        accepted: envelope.code == "TRANSACTION_NOT_FOUND",
    })
}

#[derive(Debug, Deserialize)]
struct Callback {
    response: String,
}

/// Checks the callback's `X-VERIFY` over the base64 it carries, then decodes that base64.
fn decode_callback(
    salt_key: &Secret,
    salt_index: u32,
    headers: &HeaderMap,
    raw_body: &[u8],
) -> Result<Envelope, WebhookError> {
    let received = required_header(headers, VERIFY_HEADER)?;
    // PhonePe signs the base64 string inside the JSON, not the body, so the envelope must be
    // read first; nothing in it is trusted until the checksum matches.
    let callback: Callback = parse_webhook_json(raw_body)?;
    let salt = salt_key
        .expose_str()
        .map_err(|_| WebhookError::BadSignature)?;
    let expected = callback_checksum(&callback.response, salt, salt_index);
    if !hex_digest_eq(&expected, received) {
        return Err(WebhookError::BadSignature);
    }
    let decoded = BASE64
        .decode(callback.response.trim())
        .map_err(|_| WebhookError::Malformed("response is not base64".to_owned()))?;
    parse_webhook_json(&decoded)
}

fn verify_webhook(
    salt_key: &Secret,
    salt_index: u32,
    headers: &HeaderMap,
    raw_body: &[u8],
) -> Result<VerifiedWebhook, WebhookError> {
    let envelope = decode_callback(salt_key, salt_index, headers, raw_body)?;
    let merchant_transaction = envelope
        .data
        .as_ref()
        .and_then(|d| d.merchant_transaction_id.clone());
    // A refund's callback names the refund's own transaction id, which is a refund reference.
    match merchant_transaction
        .as_deref()
        .map(str::trim)
        .and_then(parse_refund_reference)
    {
        Some(refund_id) => refund_callback(refund_id, envelope),
        None => payment_callback(merchant_transaction, envelope),
    }
}

fn payment_callback(
    merchant_transaction: Option<String>,
    envelope: Envelope,
) -> Result<VerifiedWebhook, WebhookError> {
    let (psp_payment_id, outcome) =
        outcome_of(&envelope).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let state = envelope
        .data
        .as_ref()
        .and_then(|d| d.state.clone())
        .unwrap_or_else(|| envelope.code.clone());
    let id_for_dedupe = psp_payment_id
        .clone()
        .or_else(|| merchant_transaction.clone())
        .unwrap_or_default();
    Ok(VerifiedWebhook {
        dedupe_key: format!("phonepe:{id_for_dedupe}:{state}"),
        payment_reference: merchant_transaction
            .as_deref()
            .and_then(parse_psp_reference),
        psp_order_id: merchant_transaction,
        psp_payment_id,
        outcome,
    })
}

/// A refund's callback: the refund's status payload. It names the refund; the payment only
/// when PhonePe adds `originalTransactionId`, so the refund id is what locates the payment.
fn refund_callback(
    refund_id: RefundId,
    envelope: Envelope,
) -> Result<VerifiedWebhook, WebhookError> {
    let state = refund_state(&envelope);
    let data = envelope.data.ok_or(WebhookError::Missing("data"))?;
    let amount = Paise(data.amount.ok_or(WebhookError::Missing("amount"))?);
    let original = data.original_transaction_id.map(|id| id.trim().to_owned());
    let shown_state = data.state.unwrap_or_else(|| envelope.code.clone());
    Ok(VerifiedWebhook {
        dedupe_key: format!(
            "phonepe:refund:{}:{shown_state}",
            refund_reference(refund_id)
        ),
        payment_reference: original.as_deref().and_then(parse_psp_reference),
        psp_order_id: original,
        psp_payment_id: None,
        outcome: PaymentOutcome::Refund {
            refund_id: Some(refund_id),
            psp_refund_id: data.transaction_id,
            amount,
            state,
        },
    })
}

/// Codes after which a refund may or may not have been initiated: its status is looked up
/// before anything else, and it is never taken as failed.
const AMBIGUOUS_CODES: [&str; 3] = ["INTERNAL_SERVER_ERROR", "PAYMENT_PENDING", "TIMED_OUT"];

/// `X-VERIFY` of a refund request: `sha256(base64 payload + "/pg/v1/refund" + salt) ### index`.
pub fn refund_checksum(base64_payload: &str, salt_key: &str, salt_index: u32) -> String {
    format!(
        "{}###{salt_index}",
        sha256_hex(&[
            base64_payload.as_bytes(),
            REFUND_PATH.as_bytes(),
            salt_key.as_bytes()
        ])
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefundPayload<'a> {
    merchant_id: &'a str,
    merchant_user_id: String,
    original_transaction_id: &'a str,
    merchant_transaction_id: &'a str,
    amount: i64,
    callback_url: &'a str,
}

/// Where a refund stands, from `data.state`: COMPLETED succeeded, FAILED failed, PENDING and
/// any other state (or none) still pending.
fn refund_state(envelope: &Envelope) -> RefundState {
    let data = envelope.data.as_ref();
    let state = data
        .and_then(|d| d.state.as_deref())
        .map(str::to_ascii_uppercase);
    match state.as_deref() {
        Some("COMPLETED") => RefundState::Succeeded,
        Some("FAILED") => RefundState::Failed {
            code: data
                .and_then(|d| d.response_code.clone())
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| envelope.code.clone()),
            reason: envelope.message.clone().unwrap_or_default(),
        },
        _ => RefundState::Pending,
    }
}

/// The refund an answer describes; an answer without `data` is an ambiguous code or a refusal.
fn refund_from(
    status: u16,
    envelope: Envelope,
    refund: &RefundRequest,
) -> Result<PspRefund, PspError> {
    let Some(data) = envelope.data.as_ref() else {
        if AMBIGUOUS_CODES.contains(&envelope.code.as_str()) {
            return Err(unsure(&envelope.code));
        }
        return Err(rejected(status, Some(envelope)));
    };
    Ok(PspRefund {
        psp_refund_id: data.transaction_id.clone(),
        amount: data.amount.map_or(refund.amount, Paise),
        state: refund_state(&envelope),
    })
}

/// PhonePe could not say whether the refund started: retry, which looks it up first.
fn unsure(code: &str) -> PspError {
    PspError::Unavailable {
        reason: format!(
            "PhonePe answered {}; the refund may have started, check its status",
            excerpt(code)
        ),
    }
}

async fn fetch_refund(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    refund: &RefundRequest,
) -> Result<Option<PspRefund>, PspError> {
    let reference = refund_reference(refund.refund_id);
    let (status, envelope) = status_answer(http, base, psp, &reference).await?;
    if envelope.code == "TRANSACTION_NOT_FOUND" {
        return Ok(None);
    }
    refund_from(status, envelope, refund).map(Some)
}

async fn create_refund(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    refund: &RefundRequest,
) -> Result<PspRefund, PspError> {
    // PhonePe v1 takes no idempotency key: a refund an earlier attempt started is found first.
    if let Some(existing) = fetch_refund(http, base, psp, refund).await? {
        return Ok(existing);
    }
    let answer = post_refund(http, base, psp, refund).await?;
    let status = answer.status.as_u16();
    let envelope: Option<Envelope> = serde_json::from_slice(&answer.body).ok();
    let Some(envelope) = envelope else {
        return Err(rejected(status, None));
    };
    let started = matches!(
        envelope.data.as_ref().and_then(|d| d.state.as_deref()),
        Some("PENDING" | "COMPLETED")
    );
    if answer.status.is_success() && envelope.success && started {
        return refund_from(status, envelope, refund);
    }
    let code = envelope.code.as_str();
    if AMBIGUOUS_CODES.contains(&code) || DUPLICATE_CODES.contains(&code) {
        return fetch_refund(http, base, psp, refund)
            .await?
            .ok_or_else(|| unsure(code));
    }
    Err(rejected(status, Some(envelope)))
}

/// Sends `POST /pg/v1/refund` for the refund, against the payment's transaction.
async fn post_refund(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    refund: &RefundRequest,
) -> Result<crate::http::Answer, PspError> {
    if refund.amount <= Paise(0) {
        return Err(PspError::local(
            "invalid_amount",
            "a refund must be positive",
        ));
    }
    let salt = psp.salt_key.expose_str()?;
    let payment = psp_reference(refund.payment_id);
    let reference = refund_reference(refund.refund_id);
    let payload = RefundPayload {
        merchant_id: psp.merchant_id,
        // The same user id the payment was made under.
        merchant_user_id: format!("U{payment}"),
        original_transaction_id: &payment,
        merchant_transaction_id: &reference,
        amount: refund.amount.0,
        callback_url: &refund.callback_url,
    };
    let json = serde_json::to_vec(&payload)
        .map_err(|_| PspError::local("invalid_request", "payload not serialisable"))?;
    let encoded = BASE64.encode(json);
    let request = http
        .post(join(base, REFUND_PATH))
        .header(
            VERIFY_HEADER,
            refund_checksum(&encoded, salt, psp.salt_index),
        )
        .header("x-merchant-id", psp.merchant_id)
        .json(&serde_json::json!({ "request": encoded }));
    exchange(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &str = "099eb0cd-02cf-4e2a-8aca-3e6c6aff0399";

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../fixtures/psp/phonepe/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn pay_checksum_vector() {
        // ✔calc from the reference: X-VERIFY of the pay request payload.
        let payload = BASE64.encode(fixture("pay_request_payload.json"));
        assert_eq!(
            pay_checksum(&payload, SALT, 1),
            "798edb2137f1de0312bf1d67b4b4e322c8b9282d7773bc35affa6c638e5bfab5###1"
        );
    }

    #[test]
    fn status_checksum_vector() {
        // ✔calc from the reference.
        assert_eq!(
            status_checksum("PGTESTPAYUAT", "MT7850590068188104", SALT, 1),
            "95c6d60f014b7190aa417083aca2489bb5b0a729d0421c17dea19f5913e6d741###1"
        );
    }

    #[test]
    fn the_pay_payload_serialises_in_the_documented_shape() {
        let payload = PayPayload {
            merchant_id: "PGTESTPAYUAT",
            merchant_transaction_id: "MT7850590068188104",
            merchant_user_id: "MUID123".into(),
            amount: 10000,
            redirect_url: "https://example.com/pp/return",
            redirect_mode: "POST",
            callback_url: "https://example.com/pp/callback",
            mobile_number: Some("9999999999"),
            payment_instrument: PaymentInstrument { kind: "PAY_PAGE" },
        };
        assert_eq!(
            serde_json::to_vec(&payload).unwrap(),
            fixture("pay_request_payload.json")
        );
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("X-VERIFY", value.parse().unwrap());
        h
    }

    #[test]
    fn accepts_the_callback_fixture() {
        let body = fixture("callback_body.json");
        let sig = String::from_utf8(fixture("callback_body.sig")).unwrap();
        let hook = verify_webhook(&Secret::from(SALT), 1, &headers(&sig), &body).unwrap();
        assert_eq!(
            hook.outcome,
            PaymentOutcome::Succeeded { amount: Paise(100) }
        );
        assert_eq!(hook.dedupe_key, "phonepe:T2111221437456190170379:COMPLETED");
        assert_eq!(hook.psp_order_id.as_deref(), Some("MT7850590068188104"));
        assert_eq!(
            hook.psp_payment_id.as_deref(),
            Some("T2111221437456190170379")
        );
    }

    #[test]
    fn rejects_tampering_wrong_salt_wrong_index_and_missing_header() {
        let body = fixture("callback_body.json");
        let sig = String::from_utf8(fixture("callback_body.sig")).unwrap();
        let mut tampered = body.clone();
        tampered[20] ^= 1;
        assert_eq!(
            verify_webhook(&Secret::from(SALT), 1, &headers(&sig), &tampered),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook(&Secret::from("other"), 1, &headers(&sig), &body),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook(&Secret::from(SALT), 2, &headers(&sig), &body),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook(&Secret::from(SALT), 1, &HeaderMap::new(), &body),
            Err(WebhookError::Missing(VERIFY_HEADER))
        );
    }

    #[test]
    fn failed_and_pending_callbacks() {
        let decoded = r#"{"success":false,"code":"PAYMENT_ERROR","message":"Payment failed","data":{"merchantId":"M","merchantTransactionId":"T1","transactionId":"P1","amount":100,"state":"FAILED","responseCode":"ZM"}}"#;
        let response = BASE64.encode(decoded);
        let body = format!(r#"{{"response":"{response}"}}"#);
        let sig = callback_checksum(&response, SALT, 1);
        let hook = verify_webhook(&Secret::from(SALT), 1, &headers(&sig), body.as_bytes()).unwrap();
        assert_eq!(
            hook.outcome,
            PaymentOutcome::Failed {
                code: "ZM".into(),
                reason: "Payment failed".into()
            }
        );
        assert_eq!(hook.dedupe_key, "phonepe:P1:FAILED");
    }

    const REFUND_REFERENCE: &str = "R02ySWtwKmVZt06kzVuKdUB";

    #[test]
    fn refund_checksum_vectors() {
        // ✔calc from psp-refunds.md §4b: the refund payload and the refund's status path.
        let payload = BASE64.encode(fixture("refund_request_payload.json"));
        assert_eq!(
            refund_checksum(&payload, SALT, 1),
            "4516182da1e565707413d83e520aa211cd6f4a9f9f7e04ff39d08f38d783bc31###1"
        );
        assert_eq!(
            status_checksum("PGTESTPAYUAT", "RMT7850590068188104", SALT, 1),
            "5acc61eadaf776f6c9fa1043e1284b027c75c4d2e8eb71587408915ed9e4e1c2###1"
        );
    }

    #[test]
    fn the_refund_payload_serialises_in_the_documented_shape() {
        let payload = RefundPayload {
            merchant_id: "PGTESTPAYUAT",
            merchant_user_id: "MUID123".into(),
            original_transaction_id: "MT7850590068188104",
            merchant_transaction_id: "RMT7850590068188104",
            amount: 10000,
            callback_url: "https://example.com/pp/refund-callback",
        };
        assert_eq!(
            serde_json::to_vec(&payload).unwrap(),
            fixture("refund_request_payload.json")
        );
    }

    #[test]
    fn a_refund_callback_is_a_refund_outcome() {
        let body = fixture("refund_callback_body.json");
        let sig = String::from_utf8(fixture("refund_callback_body.sig")).unwrap();
        let hook = verify_webhook(&Secret::from(SALT), 1, &headers(&sig), &body).unwrap();
        assert_eq!(
            hook.outcome,
            PaymentOutcome::Refund {
                refund_id: parse_refund_reference(REFUND_REFERENCE),
                psp_refund_id: Some("TR2212061804281234567890".into()),
                amount: Paise(10000),
                state: RefundState::Succeeded,
            }
        );
        assert!(parse_refund_reference(REFUND_REFERENCE).is_some());
        assert_eq!(
            hook.dedupe_key,
            format!("phonepe:refund:{REFUND_REFERENCE}:COMPLETED")
        );
        assert_eq!(hook.payment_reference, None, "the payload names no payment");
    }

    #[test]
    fn a_tampered_refund_callback_is_refused() {
        let body = fixture("refund_callback_body.json");
        let sig = String::from_utf8(fixture("refund_callback_body.sig")).unwrap();
        let mut tampered = body.clone();
        tampered[30] ^= 1;
        assert_eq!(
            verify_webhook(&Secret::from(SALT), 1, &headers(&sig), &tampered),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook(&Secret::from("other"), 1, &headers(&sig), &body),
            Err(WebhookError::BadSignature)
        );
    }

    fn refund_envelope(code: &str, state: Option<&str>) -> Envelope {
        let state = state.map_or("null".to_owned(), |s| format!("\"{s}\""));
        serde_json::from_str(&format!(
            r#"{{"success":true,"code":"{code}","message":"m","data":{{"merchantTransactionId":"{REFUND_REFERENCE}","transactionId":"TR1","amount":100,"state":{state},"responseCode":"RC"}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn every_refund_state_is_normalised() {
        for (code, state) in [
            ("PAYMENT_PENDING", Some("PENDING")),
            ("PAYMENT_PENDING", Some("SOMETHING_NEW")),
            ("INTERNAL_SERVER_ERROR", None),
        ] {
            assert_eq!(
                refund_state(&refund_envelope(code, state)),
                RefundState::Pending
            );
        }
        assert_eq!(
            refund_state(&refund_envelope("PAYMENT_SUCCESS", Some("COMPLETED"))),
            RefundState::Succeeded
        );
        assert_eq!(
            refund_state(&refund_envelope("PAYMENT_ERROR", Some("FAILED"))),
            RefundState::Failed {
                code: "RC".into(),
                reason: "m".into()
            }
        );
    }

    #[test]
    fn an_ambiguous_answer_without_data_is_retryable_never_failed() {
        let refund = RefundRequest {
            payment_id: lightspeed_domain::PaymentId::new(),
            refund_id: RefundId(uuid::Uuid::nil()),
            amount: Paise(100),
            psp_order_id: None,
            psp_payment_id: None,
            reason: String::new(),
            callback_url: String::new(),
        };
        for code in AMBIGUOUS_CODES {
            let envelope: Envelope =
                serde_json::from_str(&format!(r#"{{"success":false,"code":"{code}"}}"#)).unwrap();
            let err = refund_from(200, envelope, &refund).unwrap_err();
            assert!(err.is_retryable(), "{code}: {err:?}");
        }
    }
}
