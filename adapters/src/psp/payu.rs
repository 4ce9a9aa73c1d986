//! PayU India: hosted checkout form, reverse-hash callbacks, `verify_payment`, refunds.
//!
//! PayU has no server-side order: "creating" one signs a form locally, with our reference as
//! `txnid`, so it is idempotent by construction. Payment webhooks are form-encoded and
//! authenticated only by the reverse hash over the posted values.
//!
//! Refunds go through `cancel_refund_transaction` with our refund reference as the token
//! (`var2`): PayU refuses a token it has seen (code 106), and the adapter then finds the refund
//! with `check_action_status` by the payment's `mihpayid`, matching on the token. PayU's refund
//! callback is unsigned JSON: [`verify_webhook`](super::verify_webhook) refuses it and
//! [`refund_callback_hint`] only names what to check through the status API.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lightspeed_domain::psp_outcome::RefundState;
use lightspeed_domain::{PaymentId, RefundId};
use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::json::{RupeeText, opt_string_or_int};
use super::{
    CheckoutData, Endpoint, OrderRequest, PaymentOutcome, Probe, PspAdapter, PspCall, PspError,
    PspOrder, PspRefund, PspStatus, RefundRequest, VerifiedWebhook, WebhookError, exchange,
    parse_json, parse_psp_reference, parse_refund_reference, psp_reference, refund_reference,
    truncate_chars,
};
use crate::amount::{format_positive_rupees, format_rupees, parse_rupees};
use crate::crypto::{hex_digest_eq, sha512_hex};
use crate::http::{excerpt, join};
use crate::secrets::Secret;

/// Test host (checkout and `verify_payment`).
pub const TEST_BASE_URL: &str = "https://test.payu.in";
/// Live checkout host.
pub const LIVE_CHECKOUT_BASE_URL: &str = "https://secure.payu.in";
/// Live host of `postservice.php` (`verify_payment`).
pub const LIVE_INFO_BASE_URL: &str = "https://info.payu.in";
const PRODUCTINFO_MAX: usize = 100;
const FIRSTNAME_MAX: usize = 60;
const EMAIL_MAX: usize = 50;

/// A PayU account's adapter: the merchant key and the salt that keys every hash.
pub(crate) struct Adapter<'a> {
    pub(crate) key: &'a str,
    pub(crate) salt: &'a Secret,
}

impl PspAdapter for Adapter<'_> {
    fn create_order<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        order: &'a OrderRequest,
    ) -> PspCall<'a, PspOrder> {
        let base = endpoint.base(TEST_BASE_URL, LIVE_CHECKOUT_BASE_URL);
        Box::pin(std::future::ready(create_order(
            base, self.key, self.salt, order,
        )))
    }

    fn fetch_status<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        reference: &'a str,
        _psp_order_id: Option<&'a str>,
    ) -> PspCall<'a, PspStatus> {
        let base = endpoint.base(TEST_BASE_URL, LIVE_INFO_BASE_URL);
        Box::pin(fetch_status(
            endpoint.http,
            base,
            self.key,
            self.salt,
            reference,
        ))
    }

    fn probe<'a>(&'a self, endpoint: Endpoint<'a>) -> PspCall<'a, Probe> {
        let base = endpoint.base(TEST_BASE_URL, LIVE_INFO_BASE_URL);
        Box::pin(probe(endpoint.http, base, self.key, self.salt))
    }

    fn create_refund<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        refund: &'a RefundRequest,
    ) -> PspCall<'a, PspRefund> {
        let base = endpoint.base(TEST_BASE_URL, LIVE_INFO_BASE_URL);
        Box::pin(create_refund(endpoint.http, base, self, refund))
    }

    fn fetch_refund<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        refund: &'a RefundRequest,
        psp_refund_id: Option<&'a str>,
    ) -> PspCall<'a, Option<PspRefund>> {
        let base = endpoint.base(TEST_BASE_URL, LIVE_INFO_BASE_URL);
        Box::pin(fetch_refund(
            endpoint.http,
            base,
            self,
            refund,
            psp_refund_id,
        ))
    }

    fn verify_webhook(
        &self,
        _headers: &HeaderMap,
        raw_body: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook, WebhookError> {
        verify_webhook(self.key, self.salt, raw_body)
    }
}

/// The fields the request hash covers, in PayU's order.
#[derive(Debug, Clone, Copy)]
pub struct HashFields<'a> {
    /// Merchant key.
    pub key: &'a str,
    /// Transaction id (our reference).
    pub txnid: &'a str,
    /// Amount as posted, e.g. `499.00`.
    pub amount: &'a str,
    /// Product description.
    pub productinfo: &'a str,
    /// Payer's first name.
    pub firstname: &'a str,
    /// Payer's email.
    pub email: &'a str,
    /// `udf1`..`udf5`.
    pub udf: [&'a str; 5],
}

/// `sha512(key|txnid|amount|productinfo|firstname|email|udf1|…|udf5||||||SALT)`, lowercase hex.
pub fn request_hash(fields: &HashFields<'_>, salt: &str) -> String {
    let [u1, u2, u3, u4, u5] = fields.udf;
    let f = fields;
    sha512_hex(&format!(
        "{}|{}|{}|{}|{}|{}|{u1}|{u2}|{u3}|{u4}|{u5}||||||{salt}",
        f.key, f.txnid, f.amount, f.productinfo, f.firstname, f.email
    ))
}

/// The reverse hash PayU puts on callbacks:
/// `sha512([additionalCharges|]SALT|status||||||udf5|…|udf1|email|firstname|productinfo|amount|txnid|key)`.
pub fn reverse_hash(
    fields: &HashFields<'_>,
    status: &str,
    additional_charges: Option<&str>,
    salt: &str,
) -> String {
    let [u1, u2, u3, u4, u5] = fields.udf;
    let f = fields;
    let base = format!(
        "{salt}|{status}||||||{u5}|{u4}|{u3}|{u2}|{u1}|{}|{}|{}|{}|{}|{}",
        f.email, f.firstname, f.productinfo, f.amount, f.txnid, f.key
    );
    match additional_charges {
        Some(charges) => sha512_hex(&format!("{charges}|{base}")),
        None => sha512_hex(&base),
    }
}

/// `sha512(key|command|var1|SALT)`, the hash of `postservice.php` calls.
pub fn api_hash(key: &str, command: &str, var1: &str, salt: &str) -> String {
    sha512_hex(&format!("{key}|{command}|{var1}|{salt}"))
}

/// Keeps a value inside PayU's limits and out of the hash's `|` separators.
fn form_value(text: &str, max: usize) -> String {
    let cleaned: String = text
        .chars()
        .filter(|c| *c != '|' && !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned();
    truncate_chars(&cleaned, max)
}

fn create_order(
    base: &str,
    key: &str,
    salt: &Secret,
    order: &OrderRequest,
) -> Result<PspOrder, PspError> {
    let salt = salt.expose_str()?;
    let txnid = psp_reference(order.payment_id);
    let amount = format_rupees(order.amount);
    let productinfo = match form_value(&order.description, PRODUCTINFO_MAX) {
        text if text.is_empty() => "Payment".to_owned(),
        text => text,
    };
    let firstname = match form_value(
        order.customer.name.as_deref().unwrap_or_default(),
        FIRSTNAME_MAX,
    ) {
        text if text.is_empty() => "Customer".to_owned(),
        text => text,
    };
    // A truncated email would be a wrong address; leave it out instead.
    let email = order
        .customer
        .email
        .as_deref()
        .map(|e| form_value(e, usize::MAX))
        .filter(|e| e.chars().count() <= EMAIL_MAX)
        .unwrap_or_default();
    let phone = form_value(order.customer.phone.as_deref().unwrap_or_default(), 20);
    let hash = request_hash(
        &HashFields {
            key,
            txnid: &txnid,
            amount: &amount,
            productinfo: &productinfo,
            firstname: &firstname,
            email: &email,
            udf: [""; 5],
        },
        salt,
    );
    let fields = vec![
        ("key".to_owned(), key.to_owned()),
        ("txnid".to_owned(), txnid.clone()),
        ("amount".to_owned(), amount),
        ("productinfo".to_owned(), productinfo),
        ("firstname".to_owned(), firstname),
        ("email".to_owned(), email),
        ("phone".to_owned(), phone),
        ("surl".to_owned(), order.return_url.clone()),
        ("furl".to_owned(), order.return_url.clone()),
        ("hash".to_owned(), hash),
    ];
    Ok(PspOrder {
        psp_order_id: txnid,
        checkout: CheckoutData::Payu {
            action_url: join(base, "/_payment"),
            fields,
        },
        reused: false,
    })
}

/// Parses a form body; duplicate names are refused so no field can be read two ways.
fn parse_form(raw_body: &[u8]) -> Result<BTreeMap<String, String>, WebhookError> {
    let mut fields = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(raw_body) {
        if fields
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(WebhookError::Malformed(format!(
                "field {name} appears twice"
            )));
        }
    }
    Ok(fields)
}

fn verify_webhook(
    key: &str,
    salt: &Secret,
    raw_body: &[u8],
) -> Result<VerifiedWebhook, WebhookError> {
    let salt = salt.expose_str().map_err(|_| WebhookError::BadSignature)?;
    // PayU's refund callback is JSON with no hash at all: nothing in it can be trusted as an
    // outcome, so it is refused here and read only by `refund_callback_hint`.
    if raw_body.trim_ascii_start().starts_with(b"{") {
        return Err(WebhookError::Missing("hash"));
    }
    let form = parse_form(raw_body)?;
    let field = |name: &'static str| form.get(name).map(String::as_str).unwrap_or_default();
    let required = |name: &'static str| {
        form.get(name)
            .map(String::as_str)
            .ok_or(WebhookError::Missing(name))
    };
    let received = required("hash")?;
    let status = required("status")?;
    let txnid = required("txnid")?;
    let amount = required("amount")?;
    let posted_key = required("key")?;
    let fields = HashFields {
        key: posted_key,
        txnid,
        amount,
        productinfo: field("productinfo"),
        firstname: field("firstname"),
        email: field("email"),
        udf: [
            field("udf1"),
            field("udf2"),
            field("udf3"),
            field("udf4"),
            field("udf5"),
        ],
    };
    let expected = reverse_hash(
        &fields,
        status,
        form.get("additionalCharges").map(String::as_str),
        salt,
    );
    // A callback for another merchant key is not ours even if someone knows that key's salt.
    if posted_key != key || !hex_digest_eq(&expected, received) {
        return Err(WebhookError::BadSignature);
    }
    let mihpayid = form.get("mihpayid").filter(|id| !id.is_empty()).cloned();
    let outcome = match status {
        "success" => PaymentOutcome::Succeeded {
            amount: parse_rupees(amount)
                .map_err(|e| WebhookError::Malformed(format!("amount: {e}")))?,
        },
        "failure" | "failed" => PaymentOutcome::Failed {
            code: Some(field("error"))
                .filter(|c| !c.is_empty())
                .unwrap_or(field("unmappedstatus"))
                .to_owned(),
            reason: field("error_Message").to_owned(),
        },
        "pending" => PaymentOutcome::Pending,
        other => PaymentOutcome::Ignored {
            why: format!("unknown PayU status {}", excerpt(other)),
        },
    };
    Ok(VerifiedWebhook {
        dedupe_key: format!("payu:{}:{status}", mihpayid.as_deref().unwrap_or(txnid)),
        payment_reference: parse_psp_reference(txnid),
        psp_order_id: Some(txnid.to_owned()),
        psp_payment_id: mihpayid,
        outcome,
    })
}

#[derive(Debug, Deserialize)]
struct VerifyResponse {
    #[serde(default)]
    transaction_details: Option<BTreeMap<String, Transaction>>,
}

#[derive(Debug, Deserialize)]
struct Transaction {
    #[serde(default, deserialize_with = "opt_string_or_int")]
    mihpayid: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    amt: Option<RupeeText>,
    #[serde(default)]
    transaction_amount: Option<RupeeText>,
    // Sometimes a number, sometimes a string: read only so its shape cannot break the parse.
    #[serde(default, rename = "net_amount_debit")]
    _net_amount_debit: Option<RupeeText>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default, rename = "error_Message")]
    error_message: Option<String>,
    #[serde(default)]
    unmappedstatus: Option<String>,
}

async fn verify_payment(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    salt: &str,
    txnid: &str,
) -> Result<crate::http::Answer, PspError> {
    const COMMAND: &str = "verify_payment";
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("key", key)
        .append_pair("command", COMMAND)
        .append_pair("var1", txnid)
        .append_pair("hash", &api_hash(key, COMMAND, txnid, salt))
        .finish();
    let request = http
        .post(join(base, "/merchant/postservice.php?form=2"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body);
    exchange(request).await
}

async fn fetch_status(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    salt: &Secret,
    reference: &str,
) -> Result<PspStatus, PspError> {
    let answer = verify_payment(http, base, key, salt.expose_str()?, reference).await?;
    if !answer.status.is_success() {
        return Err(PspError::Rejected {
            code: answer.status.as_u16().to_string(),
            message: "PayU refused verify_payment".to_owned(),
        });
    }
    let response: VerifyResponse = parse_json(&answer, "PayU verify_payment")?;
    let transaction = response
        .transaction_details
        .and_then(|mut details| details.remove(reference));
    let pending = PspStatus {
        psp_order_id: Some(reference.to_owned()),
        psp_payment_id: None,
        outcome: PaymentOutcome::Pending,
    };
    let Some(tx) = transaction else {
        return Ok(pending);
    };
    let outcome = match tx.status.as_str() {
        "success" => {
            let amount = tx
                .transaction_amount
                .as_ref()
                .or(tx.amt.as_ref())
                .ok_or_else(|| PspError::protocol("PayU success without an amount"))?
                .paise()
                .map_err(|e| PspError::protocol(format!("PayU amount: {e}")))?;
            PaymentOutcome::Succeeded { amount }
        }
        "failure" | "failed" => PaymentOutcome::Failed {
            code: tx
                .error_code
                .or(tx.unmappedstatus)
                .unwrap_or_else(|| "failure".to_owned()),
            reason: tx.error_message.unwrap_or_default(),
        },
        // "pending", and "Not Found" for a txnid the payer never submitted.
        _ => PaymentOutcome::Pending,
    };
    Ok(PspStatus {
        psp_payment_id: tx.mihpayid,
        outcome,
        ..pending
    })
}

async fn probe(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    salt: &Secret,
) -> Result<Probe, PspError> {
    let answer = verify_payment(
        http,
        base,
        key,
        salt.expose_str()?,
        "lightspeed-credential-check",
    )
    .await?;
    // PayU answers 200 even to a bad hash; the body's `status` is 0 with an error `msg` then,
    // while an unknown txnid under good credentials still gets `transaction_details`.
    let accepted = answer.status.is_success()
        && serde_json::from_slice::<VerifyResponse>(&answer.body)
            .is_ok_and(|r| r.transaction_details.is_some());
    Ok(Probe {
        status: answer.status.as_u16(),
        accepted,
    })
}

/// Where a refund stands, from PayU's `status` of a refund action, compared case-insensitively
/// (PayU's samples mix `SUCCESS`, `success` and `queued`). Every state that is neither success
/// nor failure (QUEUED, IN PROGRESS, REQUESTED, PENDING, od_hit, RISK_QUEUED, APPROVAL PENDING)
/// and any state PayU adds later is still pending.
fn refund_state(status: &str) -> RefundState {
    match status.trim().to_ascii_uppercase().as_str() {
        "SUCCESS" => RefundState::Succeeded,
        "FAILURE" => RefundState::Failed {
            code: "FAILURE".to_owned(),
            reason: "PayU reports the refund failed".to_owned(),
        },
        _ => RefundState::Pending,
    }
}

/// Result codes of `cancel_refund_transaction` that mean the refund may already exist under
/// our token (106 token already exists, 227 same amount and token) or is held by PayU
/// (225/226 pending): the answer is found with `check_action_status`, never by sending again.
const LOOK_UP_CODES: [&str; 4] = ["106", "225", "226", "227"];
/// "Same amount same transaction within 5 minutes": a partial refund may be sent again later.
const SAME_AMOUNT_CODE: &str = "214";
/// How long PayU makes a second refund of the same amount on one payment wait.
const SAME_AMOUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The answer to `cancel_refund_transaction`.
#[derive(Debug, Deserialize)]
struct RefundAnswer {
    #[serde(default, deserialize_with = "opt_string_or_int")]
    status: Option<String>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default, deserialize_with = "opt_string_or_int")]
    request_id: Option<String>,
    // Which field carries the 1xx/2xx code is not documented; both names are read.
    #[serde(default, deserialize_with = "opt_string_or_int")]
    error_code: Option<String>,
    #[serde(default, deserialize_with = "opt_string_or_int")]
    code: Option<String>,
}

impl RefundAnswer {
    fn result_code(&self) -> Option<&str> {
        self.error_code
            .as_deref()
            .or(self.code.as_deref())
            .map(str::trim)
    }

    fn token_exists(&self) -> bool {
        let msg = self.msg.as_deref().unwrap_or_default();
        self.result_code()
            .is_some_and(|c| LOOK_UP_CODES.contains(&c))
            || msg.to_ascii_lowercase().contains("token already exists")
    }
}

/// One action (capture or refund) in a `check_action_status` answer.
#[derive(Debug, Deserialize)]
struct Action {
    #[serde(default, deserialize_with = "opt_string_or_int")]
    request_id: Option<String>,
    #[serde(default)]
    amt: Option<RupeeText>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default, deserialize_with = "opt_string_or_int")]
    token: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// `check_action_status`: `{status, msg, transaction_details: {<var1>: {<request_id>: action}}}`.
#[derive(Debug, Deserialize)]
struct ActionStatus {
    #[serde(default)]
    transaction_details: Option<serde_json::Value>,
}

/// Posts one `postservice.php` command; `var1` is the only variable the hash covers.
async fn post_command(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    command: &str,
    var1: &str,
    more: &[(&str, &str)],
) -> Result<crate::http::Answer, PspError> {
    let body = command_form(psp, command, var1, more)?;
    let request = http
        .post(join(base, "/merchant/postservice.php?form=2"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body);
    exchange(request).await
}

/// The form body of a command, every value percent-encoded (`&`, `+`, `=` included).
fn command_form(
    psp: &Adapter<'_>,
    command: &str,
    var1: &str,
    more: &[(&str, &str)],
) -> Result<String, PspError> {
    let salt = psp.salt.expose_str()?;
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("key", psp.key)
        .append_pair("command", command)
        .append_pair("var1", var1);
    for (name, value) in more {
        form.append_pair(name, value);
    }
    Ok(form
        .append_pair("hash", &api_hash(psp.key, command, var1, salt))
        .finish())
}

/// The payment's `mihpayid`, which PayU refunds are keyed by.
fn mihpayid(refund: &RefundRequest) -> Result<&str, PspError> {
    refund
        .psp_payment_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            PspError::local(
                "psp_payment_id_required",
                "a PayU refund needs the payment's mihpayid",
            )
        })
}

async fn create_refund(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    refund: &RefundRequest,
) -> Result<PspRefund, PspError> {
    let payment = mihpayid(refund)?;
    let token = refund_reference(refund.refund_id);
    let amount = format_positive_rupees(refund.amount)
        .map_err(|e| PspError::local("invalid_amount", e.to_string()))?;
    let more = [
        ("var2", token.as_str()),
        ("var3", amount.as_str()),
        ("var5", refund.callback_url.as_str()),
    ];
    let answer = post_command(http, base, psp, "cancel_refund_transaction", payment, &more).await?;
    if !answer.status.is_success() {
        return Err(PspError::Rejected {
            code: answer.status.as_u16().to_string(),
            message: "PayU refused cancel_refund_transaction".to_owned(),
        });
    }
    let queued: RefundAnswer = parse_json(&answer, "PayU cancel_refund_transaction")?;
    if queued.status.as_deref().map(str::trim) == Some("1") {
        return Ok(PspRefund {
            psp_refund_id: queued.request_id.map(|id| id.trim().to_owned()),
            amount: refund.amount,
            state: RefundState::Pending,
        });
    }
    refused_refund(http, base, psp, refund, &queued).await
}

/// A `status: 0` answer: our own earlier refund found by its token, a wait, or a refusal.
async fn refused_refund(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    refund: &RefundRequest,
    answer: &RefundAnswer,
) -> Result<PspRefund, PspError> {
    let code = answer.result_code().unwrap_or("payu_refund_refused");
    if answer.token_exists() {
        return refund_by_token(http, base, psp, refund)
            .await?
            .ok_or_else(|| {
                PspError::protocol(format!(
                    "PayU answered {code} but lists no refund with our token"
                ))
            });
    }
    if code == SAME_AMOUNT_CODE {
        return Err(PspError::RateLimited {
            retry_after: Some(SAME_AMOUNT_WAIT),
        });
    }
    Err(PspError::Rejected {
        code: code.to_owned(),
        message: excerpt(answer.msg.as_deref().unwrap_or_default()),
    })
}

async fn fetch_refund(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    refund: &RefundRequest,
    psp_refund_id: Option<&str>,
) -> Result<Option<PspRefund>, PspError> {
    match psp_refund_id.map(str::trim).filter(|id| !id.is_empty()) {
        Some(request_id) => {
            let actions = action_status(http, base, psp, request_id, &[]).await?;
            let token = refund_reference(refund.refund_id);
            let found = actions.into_iter().find(|a| {
                a.request_id.as_deref().map(str::trim) == Some(request_id)
                    && a.token.as_deref().is_none_or(|t| t.trim() == token)
            });
            found.map(|a| refund_of(a, refund)).transpose()
        }
        None => refund_by_token(http, base, psp, refund).await,
    }
}

/// Finds our refund among every action on the payment, by its token.
async fn refund_by_token(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    refund: &RefundRequest,
) -> Result<Option<PspRefund>, PspError> {
    let payment = mihpayid(refund)?;
    let token = refund_reference(refund.refund_id);
    let actions = action_status(http, base, psp, payment, &[("var2", "payuid")]).await?;
    let found = actions.into_iter().find(|a| {
        a.token.as_deref().map(str::trim) == Some(token.as_str())
            && a.action
                .as_deref()
                .is_none_or(|kind| kind.trim().eq_ignore_ascii_case("refund"))
    });
    found.map(|a| refund_of(a, refund)).transpose()
}

/// Every action `check_action_status` lists for `var1`; none when PayU knows none.
async fn action_status(
    http: &reqwest::Client,
    base: &str,
    psp: &Adapter<'_>,
    var1: &str,
    more: &[(&str, &str)],
) -> Result<Vec<Action>, PspError> {
    let answer = post_command(http, base, psp, "check_action_status", var1, more).await?;
    if !answer.status.is_success() {
        return Err(PspError::Rejected {
            code: answer.status.as_u16().to_string(),
            message: "PayU refused check_action_status".to_owned(),
        });
    }
    let status: ActionStatus = parse_json(&answer, "PayU check_action_status")?;
    // Not found is `status: 0` with "No action status found" and no details object.
    let Some(serde_json::Value::Object(by_var1)) = status.transaction_details else {
        return Ok(Vec::new());
    };
    let mut actions = Vec::new();
    for by_request in by_var1.into_values() {
        let serde_json::Value::Object(entries) = by_request else {
            continue;
        };
        for entry in entries.into_values() {
            actions.push(serde_json::from_value(entry).map_err(|_| {
                PspError::protocol("PayU check_action_status: unexpected action shape")
            })?);
        }
    }
    Ok(actions)
}

fn refund_of(action: Action, refund: &RefundRequest) -> Result<PspRefund, PspError> {
    let amount = match &action.amt {
        Some(amt) => amt
            .paise()
            .map_err(|e| PspError::protocol(format!("PayU refund amt: {e}")))?,
        None => refund.amount,
    };
    Ok(PspRefund {
        psp_refund_id: action.request_id.map(|id| id.trim().to_owned()),
        amount,
        state: refund_state(action.status.as_deref().unwrap_or_default()),
    })
}

/// What an unsigned PayU refund callback names. Nothing in it is trusted: it only says which
/// refund to check through `check_action_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundHint {
    /// Our payment, from `merchantTxnId`, when it is one of our references.
    pub payment_reference: Option<PaymentId>,
    /// Our refund, from `token`, when it is one of our refund references.
    pub refund_id: Option<RefundId>,
    /// PayU's refund id (`request_id`).
    pub psp_refund_id: Option<String>,
    /// PayU's payment id (`mihpayid`, trimmed: PayU pads it with spaces at times).
    pub psp_payment_id: Option<String>,
}

/// The refund callback's fields; `bank_arn` (a number, a string or null) is not read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefundCallback {
    #[serde(default)]
    merchant_txn_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string_or_int")]
    token: Option<String>,
    #[serde(default, rename = "request_id", deserialize_with = "opt_string_or_int")]
    request_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string_or_int")]
    mihpayid: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

/// Reads PayU's (unsigned, JSON) refund callback into the refund it names, or `None` when the
/// body is not a refund callback naming one of our payments or refunds. The caller must check
/// the refund through the status API before acting: anyone can post this body.
pub fn refund_callback_hint(raw_body: &[u8]) -> Option<RefundHint> {
    let callback: RefundCallback = serde_json::from_slice(raw_body).ok()?;
    if callback
        .action
        .as_deref()
        .is_some_and(|a| !a.trim().eq_ignore_ascii_case("refund"))
    {
        return None;
    }
    let trimmed = |id: Option<String>| {
        id.map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    let hint = RefundHint {
        payment_reference: callback
            .merchant_txn_id
            .as_deref()
            .and_then(|id| parse_psp_reference(id.trim())),
        refund_id: callback
            .token
            .as_deref()
            .and_then(|t| parse_refund_reference(t.trim())),
        psp_refund_id: trimmed(callback.request_id),
        psp_payment_id: trimmed(callback.mihpayid),
    };
    (hint.payment_reference.is_some() || hint.refund_id.is_some()).then_some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightspeed_domain::Paise;

    const KEY: &str = "TESTKEY1";
    const SALT: &str = "TESTSALT";

    fn vector_fields() -> HashFields<'static> {
        HashFields {
            key: KEY,
            txnid: "txn_20260101_0001",
            amount: "499.00",
            productinfo: "Premium Plan",
            firstname: "Asha",
            email: "asha@example.com",
            udf: ["tenant_42", "", "", "", ""],
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../fixtures/psp/payu/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn request_hash_vector() {
        // ✔calc from the reference.
        assert_eq!(
            request_hash(&vector_fields(), SALT),
            "d6d4894205a752d7e8ed20df92eb0eff7a2a8dff4761688d5b77a1af7f34bc39f59e085ee817f5d069fc1eeaedb87b7d00c55d1f31a5d298e1896fccd8599586"
        );
    }

    #[test]
    fn reverse_hash_vector() {
        // ✔calc from the reference.
        assert_eq!(
            reverse_hash(&vector_fields(), "success", None, SALT),
            "c84e6d732d40509cce53375cd5e4285bfb3e23aa25078d488b3b5bc9ec4e5e2696de9b7f761fbd521683dfc9cef757b5b52c3673779e56db5cca2ce3bb8e0989"
        );
    }

    #[test]
    fn verify_payment_hash_vector() {
        // ✔calc from the reference.
        assert_eq!(
            api_hash(KEY, "verify_payment", "txn_20260101_0001", SALT),
            "69a06ee245d18b4241f0b9085fec5b38a608862a8435725fffd73e9a0e3d54170a94386ff07f611a7ad94a1dfd95b5f7d8db005998ae4d14ee8ab0118caa3eae"
        );
    }

    #[test]
    fn accepts_the_success_fixture() {
        let hook =
            verify_webhook(KEY, &Secret::from(SALT), &fixture("webhook_success.form")).unwrap();
        assert_eq!(
            hook.outcome,
            PaymentOutcome::Succeeded {
                amount: Paise(49900)
            }
        );
        assert_eq!(hook.dedupe_key, "payu:403993715521889530:success");
        assert_eq!(hook.psp_order_id.as_deref(), Some("txn_20260101_0001"));
        assert_eq!(
            hook.payment_reference, None,
            "the vector's txnid is not one of our references"
        );
    }

    #[test]
    fn accepts_the_additional_charges_variant() {
        let body = fixture("webhook_failure_additional_charges.form");
        let hook = verify_webhook(KEY, &Secret::from(SALT), &body).unwrap();
        assert_eq!(
            hook.outcome,
            PaymentOutcome::Failed {
                code: "E325".into(),
                reason: "Bank denied transaction on the card.".into()
            }
        );
        assert_eq!(hook.dedupe_key, "payu:27553387529:failure");
        assert!(
            hook.payment_reference.is_some(),
            "its txnid is a 22-char reference"
        );
        // Dropping additionalCharges changes what the hash covers.
        let text = String::from_utf8(body)
            .unwrap()
            .replace("&additionalCharges=0.10", "");
        assert_eq!(
            verify_webhook(KEY, &Secret::from(SALT), text.as_bytes()),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn rejects_tampering_wrong_salt_and_missing_fields() {
        let body = fixture("webhook_success.form");
        let text = String::from_utf8(body.clone()).unwrap();
        let tampered = text.replace("amount=499.00", "amount=499.01");
        assert_eq!(
            verify_webhook(KEY, &Secret::from(SALT), tampered.as_bytes()),
            Err(WebhookError::BadSignature)
        );
        let mut one_byte = body.clone();
        let at = text.find("Asha").unwrap();
        one_byte[at] = b'B';
        assert_eq!(
            verify_webhook(KEY, &Secret::from(SALT), &one_byte),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook(KEY, &Secret::from("OTHERSALT"), &body),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_webhook("OTHERKEY", &Secret::from(SALT), &body),
            Err(WebhookError::BadSignature)
        );
        let no_hash = text
            .split('&')
            .filter(|kv| !kv.starts_with("hash="))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            verify_webhook(KEY, &Secret::from(SALT), no_hash.as_bytes()),
            Err(WebhookError::Missing("hash"))
        );
        let doubled = format!("{text}&status=failure");
        assert!(matches!(
            verify_webhook(KEY, &Secret::from(SALT), doubled.as_bytes()),
            Err(WebhookError::Malformed(_))
        ));
    }

    #[test]
    fn the_checkout_form_is_signed_and_sanitised() {
        let order = OrderRequest {
            payment_id: lightspeed_domain::PaymentId::new(),
            amount: Paise(49900),
            currency: "INR".into(),
            customer: super::super::Customer {
                name: Some("Asha|Admin".into()),
                email: Some("asha@example.com".into()),
                phone: Some("9999999999".into()),
            },
            callback_url: "https://api.example/psp/payu".into(),
            return_url: "https://api.example/return".into(),
            description: "Premium Plan".into(),
        };
        let created = create_order(TEST_BASE_URL, KEY, &Secret::from(SALT), &order).unwrap();
        let CheckoutData::Payu { action_url, fields } = created.checkout else {
            panic!("not payu")
        };
        assert_eq!(action_url, "https://test.payu.in/_payment");
        let get = |n: &str| {
            fields
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("txnid"), psp_reference(order.payment_id));
        assert_eq!(get("amount"), "499.00");
        assert_eq!(get("firstname"), "AshaAdmin");
        let expected = request_hash(
            &HashFields {
                key: KEY,
                txnid: &get("txnid"),
                amount: "499.00",
                productinfo: "Premium Plan",
                firstname: "AshaAdmin",
                email: "asha@example.com",
                udf: [""; 5],
            },
            SALT,
        );
        assert_eq!(get("hash"), expected);
    }

    #[test]
    fn parses_verify_payment_quirks() {
        let body = fixture("verify_payment_response.json");
        let response: VerifyResponse = serde_json::from_slice(&body).unwrap();
        let tx = response
            .transaction_details
            .unwrap()
            .remove("7fa6c4783a363b3da573")
            .unwrap();
        assert_eq!(tx.transaction_amount.unwrap().paise(), Ok(Paise(1000)));
        assert_eq!(tx.mihpayid.as_deref(), Some("403993715521889530"));
        let as_string = String::from_utf8(body)
            .unwrap()
            .replace(r#""net_amount_debit":10"#, r#""net_amount_debit":"10.00""#);
        assert!(serde_json::from_str::<VerifyResponse>(&as_string).is_ok());
    }

    const REFUND_REFERENCE: &str = "R02ySWtwKmVZt06kzVuKdUB";
    const PAYMENT_REFERENCE: &str = "02ySWtwKmVZt0686TNaoLq";

    #[test]
    fn refund_api_hash_vectors() {
        // ✔calc from psp-refunds.md §2.
        assert_eq!(
            api_hash(KEY, "cancel_refund_transaction", "403993715521937565", SALT),
            "0235cd48ee217dc4ffdafde054e9f4bcd33b7b128f17f648bcba12488328d96bdcb118c7446df48717a487e16880bffa6704c7e2cf613927523206bd9e65ee90"
        );
        assert_eq!(
            api_hash(KEY, "check_action_status", "131278422", SALT),
            "61cfa64dfa40db218858c15d9579442a8ab0d718efc3e024fb48ec5484861afb144f70a0f584fb56b26ceb8137a3fa951417d04b2f021e1e0a830f94283e706e"
        );
    }

    #[test]
    fn every_refund_status_is_normalised_case_insensitively() {
        for pending in [
            "QUEUED",
            "queued",
            "IN PROGRESS",
            "REQUESTED",
            "PENDING",
            "od_hit",
            "RISK_QUEUED",
            "APPROVAL PENDING",
            "",
            "something new",
        ] {
            assert_eq!(refund_state(pending), RefundState::Pending, "{pending:?}");
        }
        for success in ["SUCCESS", "success", " Success "] {
            assert_eq!(refund_state(success), RefundState::Succeeded);
        }
        for failure in ["FAILURE", "failure"] {
            assert!(matches!(
                refund_state(failure),
                RefundState::Failed { ref code, .. } if code == "FAILURE"
            ));
        }
    }

    #[test]
    fn unsigned_refund_callbacks_are_never_verified() {
        for name in [
            "refund_callback_sample.json",
            "refund_callback_failure.json",
        ] {
            assert_eq!(
                verify_webhook(KEY, &Secret::from(SALT), &fixture(name)),
                Err(WebhookError::Missing("hash")),
                "{name}"
            );
        }
        let padded = [b"  \n".as_slice(), &fixture("refund_callback_sample.json")].concat();
        assert_eq!(
            verify_webhook(KEY, &Secret::from(SALT), &padded),
            Err(WebhookError::Missing("hash"))
        );
    }

    #[test]
    fn a_refund_callback_is_only_a_hint() {
        let hint = refund_callback_hint(&fixture("refund_callback_failure.json")).unwrap();
        assert_eq!(
            hint.refund_id,
            parse_refund_reference(REFUND_REFERENCE),
            "token"
        );
        assert_eq!(
            hint.payment_reference,
            parse_psp_reference(PAYMENT_REFERENCE)
        );
        assert!(hint.refund_id.is_some() && hint.payment_reference.is_some());
        assert_eq!(hint.psp_refund_id.as_deref(), Some("131278422"));
        assert_eq!(
            hint.psp_payment_id.as_deref(),
            Some("23907365951"),
            "trimmed"
        );
    }

    #[test]
    fn hints_read_every_documented_shape_and_skip_what_is_not_ours() {
        // The official sample names a txnid and token of another integration.
        assert_eq!(
            refund_callback_hint(&fixture("refund_callback_sample.json")),
            None
        );
        let ours = String::from_utf8(fixture("refund_callback_failure.json")).unwrap();
        let string_arn = ours.replace(r#""bank_arn":null"#, r#""bank_arn":"308239782136""#);
        let number_arn = ours.replace(r#""bank_arn":null"#, r#""bank_arn":308239782136"#);
        let int_ids = ours.replace(r#""request_id":"131278422""#, r#""request_id":131278422"#);
        for body in [string_arn, number_arn, int_ids] {
            let hint = refund_callback_hint(body.as_bytes()).unwrap();
            assert_eq!(hint.psp_refund_id.as_deref(), Some("131278422"));
        }
        let capture = ours.replace(r#""action":"refund""#, r#""action":"capture""#);
        assert_eq!(refund_callback_hint(capture.as_bytes()), None);
        assert_eq!(refund_callback_hint(b"mihpayid=1&status=success"), None);
        assert_eq!(refund_callback_hint(b"{}"), None);
    }

    #[test]
    fn a_refund_amount_beyond_paise_is_a_protocol_error() {
        let action: Action = serde_json::from_str(
            r#"{"request_id":131278422,"amt":"100.005","action":"refund","status":"SUCCESS"}"#,
        )
        .unwrap();
        let request = RefundRequest {
            payment_id: PaymentId::new(),
            refund_id: RefundId(uuid::Uuid::nil()),
            amount: Paise(10000),
            psp_order_id: None,
            psp_payment_id: Some("1".into()),
            reason: String::new(),
            callback_url: String::new(),
        };
        assert!(matches!(
            refund_of(action, &request),
            Err(PspError::Protocol { .. })
        ));
    }
}
