//! Every provider's webhook is recorded once whatever its optional parts: without the header
//! or field its de-duplication key prefers (the key falls back to another id or a digest of the
//! body), and with one far longer than a stream id may be. Each answer is 200, a redelivery is a
//! duplicate, and no outcome stream id passes 200 bytes (a 5xx here makes the PSP retry forever).

use base64::Engine;
use lightspeed_adapters::merchant_webhook::{WebhookSecret, sign};
use lightspeed_adapters::psp::payu::{HashFields, reverse_hash};
use lightspeed_adapters::psp::{PspCredentials, cashfree, phonepe, razorpay};
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::{GatewayId, PaymentId};
use serde_json::{Value, json};

use crate::common::{TestApp, TestMerchant, spawn_app};

/// A webhook as the PSP sends it: headers and raw body.
struct Webhook {
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// Posts `hook` twice to the gateway's URL: recorded, then a duplicate.
async fn delivered_once(
    app: &TestApp,
    merchant: &TestMerchant,
    gateway: GatewayId,
    hook: &Webhook,
) {
    let mut answers = Vec::new();
    for _ in 0..2 {
        let mut request = app
            .http
            .post(format!(
                "{}/webhook/{}/{gateway}",
                app.url, merchant.client_key
            ))
            .body(hook.body.clone());
        for (name, value) in &hook.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("webhook");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "{body}");
        answers.push(body["duplicate"].as_bool());
    }
    assert_eq!(answers, vec![Some(false), Some(true)]);
}

async fn outcome_streams(app: &TestApp) -> (i64, i32) {
    sqlx::query_as(
        "SELECT count(*), coalesce(max(octet_length(stream_id)), 0)
           FROM ledger.events WHERE category = 'psp_outcome'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("outcome streams")
}

fn reference() -> String {
    lightspeed_adapters::psp::psp_reference(PaymentId::new())
}

fn razorpay_hook(secret: &str, event_id: Option<&str>) -> Webhook {
    let body = json!({
        "entity": "event", "event": "payment.captured", "contains": ["payment"],
        "payload": {"payment": {"entity": {
            "id": "pay_K1", "entity": "payment", "amount": 49_900, "currency": "INR", "status": "captured",
            "order_id": "order_K1", "notes": {"lightspeed_reference": reference()}, "error_code": null
        }}},
        "created_at": 1_567_674_606
    })
    .to_string()
    .into_bytes();
    let mut headers = vec![(
        "x-razorpay-signature",
        razorpay::sign_webhook_body(&Secret::from(secret), &body),
    )];
    if let Some(id) = event_id {
        headers.push(("x-razorpay-event-id", id.to_owned()));
    }
    Webhook { headers, body }
}

#[tokio::test]
async fn razorpay_without_or_with_a_long_event_id() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let secret = "rzp-webhook-secret-0123456789";
    let credentials = PspCredentials::Razorpay {
        key_id: "rzp_test_keys".into(),
        key_secret: Secret::from("rzp-key-secret"),
        webhook_secret: Secret::from(secret),
    };
    let gateway = app
        .gateway(&merchant, credentials, "http://127.0.0.1:9", 1)
        .await;
    // Without the header the key is a digest of the body.
    delivered_once(&app, &merchant, gateway, &razorpay_hook(secret, None)).await;
    let long = "evt_".repeat(120);
    delivered_once(
        &app,
        &merchant,
        gateway,
        &razorpay_hook(secret, Some(&long)),
    )
    .await;
    delivered_once(
        &app,
        &merchant,
        gateway,
        &razorpay_hook(secret, Some("evt_short")),
    )
    .await;
    let (count, longest) = outcome_streams(&app).await;
    assert_eq!(count, 3);
    assert!(longest <= 200, "{longest}");
}

fn cashfree_hook(
    app: &TestApp,
    secret: &Secret,
    payment_id: Option<&str>,
    key: Option<&str>,
) -> Webhook {
    let payment = match payment_id {
        Some(id) => {
            json!({"cf_payment_id": id, "payment_status": "SUCCESS", "payment_amount": 499.00, "payment_currency": "INR"})
        }
        None => {
            json!({"payment_status": "SUCCESS", "payment_amount": 499.00, "payment_currency": "INR"})
        }
    };
    let body = json!({
        "data": {"order": {"order_id": reference(), "order_amount": 499.00, "order_currency": "INR"}, "payment": payment},
        "event_time": "2023-08-01T11:16:10+05:30", "type": "PAYMENT_SUCCESS_WEBHOOK"
    })
    .to_string()
    .into_bytes();
    let timestamp = app.ledger.now().timestamp_millis().to_string();
    let mut headers = vec![
        (
            "x-webhook-signature",
            cashfree::sign_webhook(secret, &timestamp, &body),
        ),
        ("x-webhook-timestamp", timestamp),
    ];
    if let Some(key) = key {
        headers.push(("x-idempotency-key", key.to_owned()));
    }
    Webhook { headers, body }
}

#[tokio::test]
async fn cashfree_without_or_with_a_long_idempotency_key() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let secret = Secret::from("cf-client-secret-0123456789");
    let credentials = PspCredentials::Cashfree {
        client_id: "cf-app".into(),
        client_secret: secret.clone(),
    };
    let gateway = app
        .gateway(&merchant, credentials, "http://127.0.0.1:9", 1)
        .await;
    // No header: the payment id and status; no payment id either: a digest of the body.
    delivered_once(
        &app,
        &merchant,
        gateway,
        &cashfree_hook(&app, &secret, Some("1453002795"), None),
    )
    .await;
    delivered_once(
        &app,
        &merchant,
        gateway,
        &cashfree_hook(&app, &secret, None, None),
    )
    .await;
    let long = "k".repeat(400);
    delivered_once(
        &app,
        &merchant,
        gateway,
        &cashfree_hook(&app, &secret, None, Some(&long)),
    )
    .await;
    let (count, longest) = outcome_streams(&app).await;
    assert_eq!(count, 3);
    assert!(longest <= 200, "{longest}");
}

fn phonepe_hook(salt: &str, transaction_id: Option<&str>, merchant_transaction: &str) -> Webhook {
    let mut data = json!({
        "merchantId": "PGTESTPAYUAT", "merchantTransactionId": merchant_transaction,
        "amount": 49_900, "state": "COMPLETED", "responseCode": "SUCCESS"
    });
    if let Some(id) = transaction_id {
        data["transactionId"] = json!(id);
    }
    let decoded =
        json!({"success": true, "code": "PAYMENT_SUCCESS", "message": "done", "data": data});
    let encoded = base64::engine::general_purpose::STANDARD.encode(decoded.to_string());
    let headers = vec![
        ("x-verify", phonepe::callback_checksum(&encoded, salt, 1)),
        ("content-type", "application/json".to_owned()),
    ];
    Webhook {
        headers,
        body: json!({ "response": encoded }).to_string().into_bytes(),
    }
}

#[tokio::test]
async fn phonepe_without_or_with_a_long_transaction_id() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let salt = "099eb0cd-02cf-4e2a-8aca-3e6c6aff0399";
    let credentials = PspCredentials::Phonepe {
        merchant_id: "PGTESTPAYUAT".into(),
        salt_key: Secret::from(salt),
        salt_index: 1,
    };
    let gateway = app
        .gateway(&merchant, credentials, "http://127.0.0.1:9", 1)
        .await;
    // No PhonePe transaction id: the key falls back to our reference.
    delivered_once(
        &app,
        &merchant,
        gateway,
        &phonepe_hook(salt, None, &reference()),
    )
    .await;
    let long = "T".repeat(300);
    delivered_once(
        &app,
        &merchant,
        gateway,
        &phonepe_hook(salt, Some(&long), &reference()),
    )
    .await;
    let (count, longest) = outcome_streams(&app).await;
    assert_eq!(count, 2);
    assert!(longest <= 200, "{longest}");
}

fn payu_hook(key: &str, salt: &str, mihpayid: Option<&str>) -> Webhook {
    let txnid = reference();
    let fields = HashFields {
        key,
        txnid: &txnid,
        amount: "499.00",
        productinfo: "Order",
        firstname: "Asha",
        email: "asha@example.com",
        udf: ["", "", "", "", ""],
    };
    let hash = reverse_hash(&fields, "success", None, salt);
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs([
        ("status", "success"),
        ("key", key),
        ("txnid", &txnid),
        ("amount", "499.00"),
        ("productinfo", "Order"),
        ("firstname", "Asha"),
        ("email", "asha@example.com"),
        ("hash", &hash),
    ]);
    if let Some(id) = mihpayid {
        form.append_pair("mihpayid", id);
    }
    Webhook {
        headers: vec![(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )],
        body: form.finish().into_bytes(),
    }
}

#[tokio::test]
async fn payu_without_or_with_a_long_mihpayid() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let credentials = PspCredentials::Payu {
        key: "PAYUKEY1".into(),
        salt: Secret::from("PAYUSALT"),
    };
    let gateway = app
        .gateway(&merchant, credentials, "https://test.payu.invalid", 1)
        .await;
    // No PayU payment id: the key falls back to our transaction id.
    delivered_once(
        &app,
        &merchant,
        gateway,
        &payu_hook("PAYUKEY1", "PAYUSALT", None),
    )
    .await;
    let long = "4".repeat(300);
    delivered_once(
        &app,
        &merchant,
        gateway,
        &payu_hook("PAYUKEY1", "PAYUSALT", Some(&long)),
    )
    .await;
    let (count, longest) = outcome_streams(&app).await;
    assert_eq!(count, 2);
    assert!(longest <= 200, "{longest}");
}

#[tokio::test]
async fn sandbox_with_a_long_webhook_id() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway, secret) = app.sandbox_gateway(&merchant, 1, None).await;
    let reference = reference();
    let body = json!({
        "type": "payment.succeeded", "order_id": format!("sbo_{reference}"), "reference": reference,
        "payment_id": "sbp_1", "amount": 49_900, "currency": "INR", "failure": null,
    })
    .to_string()
    .into_bytes();
    let secret = WebhookSecret::parse(secret.expose_str().expect("utf-8")).expect("secret");
    let id = format!("msg_{}", "m".repeat(300));
    let signed = sign(&secret, &[], &id, app.ledger.now().timestamp(), &body);
    let hook = Webhook {
        headers: vec![
            ("webhook-id", signed.id.clone()),
            ("webhook-timestamp", signed.timestamp.to_string()),
            ("webhook-signature", signed.signature.clone()),
        ],
        body,
    };
    delivered_once(&app, &merchant, gateway, &hook).await;
    let (count, longest) = outcome_streams(&app).await;
    assert_eq!(count, 1);
    assert!(longest <= 200, "{longest}");
}
