//! A refund end to end over HTTP: the merchant asks for it, `refund-processing` creates it once
//! at a loopback Razorpay (its documented refund API), Razorpay's signed `refund.processed`
//! webhook comes through the real intake route, the refund succeeds and the merchant's endpoint
//! receives `refund.succeeded` and `payment.refunded`, signed. Then the same with nothing
//! faked but the merchant's endpoint: the built-in sandbox PSP, partial then full; and a partial
//! refund at a loopback Cashfree settled by its signed `REFUND_STATUS_WEBHOOK`, and one at a
//! loopback PhonePe (v1) settled by its `X-VERIFY` callback, which names no payment; and one at
//! a loopback PayU, whose unsigned callback only queues a check of `check_action_status`.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use hmac::{Hmac, KeyInit, Mac};
use lightspeed_adapters::merchant_webhook::{WebhookSecret, verify};
use lightspeed_adapters::psp::{PspCredentials, cashfree, psp_reference, refund_reference};
use lightspeed_adapters::secrets::{Secret, generate_webhook_secret};
use lightspeed_api::testing::MerchantSettings;
use lightspeed_domain::payment::refunds::RefundStatus;
use lightspeed_domain::payment::{Payment, PaymentStatus};
use lightspeed_domain::{PaymentId, RefundId};
use lightspeed_eventstore::relay::{Relay, RelayConfig};
use lightspeed_workers::QueueName;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    TestApp, Worker, create_order, initiate, pay_at_sandbox, request_refund, settle_success,
    spawn_app, wait_for, webhook_url, worker,
};

/// What the loopback parties saw: Razorpay's refund creations (headers, body) and the
/// merchant's webhooks (headers, raw body).
#[derive(Clone, Default)]
struct Seen {
    creations: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    hooks: Arc<Mutex<Vec<Received>>>,
}

/// A request's headers and raw body.
type Received = (HeaderMap, Vec<u8>);

async fn create_refund(
    State(seen): State<Seen>,
    Path(payment): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut creations = seen.creations.lock().expect("seen");
    creations.push((headers, body.clone()));
    Json(json!({
        "id": format!("rfnd_{}", creations.len()), "entity": "refund", "amount": body["amount"],
        "currency": "INR", "payment_id": payment, "notes": body["notes"],
        "receipt": body["receipt"], "created_at": 1_797_000_000, "status": "pending",
    }))
}

/// Cashfree's `POST /orders/{order_id}/refunds`: a pending refund, as its API answers.
async fn create_cashfree_refund(
    State(seen): State<Seen>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (
    axum::http::StatusCode,
    [(&'static str, &'static str); 1],
    String,
) {
    let request: Value = serde_json::from_slice(&body).expect("JSON");
    seen.creations
        .lock()
        .expect("seen")
        .push((headers, json!({"raw": String::from_utf8_lossy(&body)})));
    let refund_id = request["refund_id"].as_str().expect("refund_id");
    let answer = format!(
        r#"{{"cf_payment_id":789727431,"cf_refund_id":"cf_rf_1","refund_id":"{refund_id}","order_id":"{order_id}","entity":"refund","refund_amount":100.00,"refund_currency":"INR","refund_status":"PENDING","status_description":"In Progress"}}"#
    );
    (
        axum::http::StatusCode::OK,
        [("content-type", "application/json")],
        answer,
    )
}

/// PhonePe's status API: it knows no refund yet (so the adapter creates one).
async fn phonepe_status() -> Json<Value> {
    Json(json!({"success": false, "code": "TRANSACTION_NOT_FOUND", "message": "No transaction"}))
}

/// PhonePe's `POST /pg/v1/refund`: accepted, pending.
async fn create_phonepe_refund(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    use base64::Engine as _;
    let encoded = body["request"].as_str().expect("request");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    let payload: Value = serde_json::from_slice(&decoded).expect("payload");
    seen.creations
        .lock()
        .expect("seen")
        .push((headers, payload.clone()));
    Json(json!({
        "success": true, "code": "PAYMENT_PENDING", "message": "Refund initiated",
        "data": {"merchantId": payload["merchantId"], "merchantTransactionId": payload["merchantTransactionId"],
            "transactionId": "T_RF_1", "amount": payload["amount"], "state": "PENDING",
            "responseCode": "PENDING"}
    }))
}

/// PayU's `postservice.php`: `cancel_refund_transaction` queues refund 131313131 (its token is
/// kept), `check_action_status` lists it as succeeded.
async fn payu_postservice(
    State(seen): State<Seen>,
    headers: HeaderMap,
    body: String,
) -> Json<Value> {
    let form: serde_json::Map<String, Value> = body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    let form = Value::Object(form);
    match form["command"].as_str() {
        Some("cancel_refund_transaction") => {
            seen.creations
                .lock()
                .expect("seen")
                .push((headers, form.clone()));
            Json(
                json!({"status": 1, "msg": "Refund Request Queued", "request_id": "131313131",
                "bank_ref_num": null, "mihpayid": form["var1"]}),
            )
        }
        _ => {
            let token = seen.creations.lock().expect("seen")[0].1["var2"].clone();
            Json(
                json!({"status": 1, "msg": "1 out of 1 Transactions Fetched Successfully",
                "transaction_details": {"131313131": {"131313131": {
                    "mihpayid": "sbp_1", "request_id": "131313131", "amt": "100.00",
                    "action": "refund", "token": token, "status": "SUCCESS"}}}}),
            )
        }
    }
}

async fn list_refunds() -> Json<Value> {
    Json(json!({"entity": "collection", "count": 0, "items": []}))
}

async fn merchant_hook(State(seen): State<Seen>, headers: HeaderMap, body: axum::body::Bytes) {
    seen.hooks
        .lock()
        .expect("seen")
        .push((headers, body.to_vec()));
}

async fn loopback() -> (String, Seen) {
    let seen = Seen::default();
    let router = axum::Router::new()
        .route("/v1/payments/{payment}/refund", post(create_refund))
        .route("/v1/payments/{payment}/refunds", get(list_refunds))
        .route("/orders/{order_id}/refunds", post(create_cashfree_refund))
        .route(
            "/pg/v1/status/{merchant}/{transaction}",
            get(phonepe_status),
        )
        .route("/pg/v1/refund", post(create_phonepe_refund))
        .route("/merchant/postservice.php", post(payu_postservice))
        .route("/hooks", post(merchant_hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (url, seen)
}

/// Razorpay's `refund.processed` for our refund (psp-refunds.md §1's sample, with our notes).
fn refund_processed(payment_id: PaymentId, refund_id: RefundId, amount: i64) -> Vec<u8> {
    let notes = json!({
        "lightspeed_reference": psp_reference(payment_id),
        "lightspeed_refund_reference": refund_reference(refund_id),
    });
    serde_json::to_vec(&json!({
        "entity": "event", "account_id": "acc_E7OQJcEANmBHTC", "event": "refund.processed",
        "contains": ["refund", "payment"],
        "payload": {
            "refund": {"entity": {"id": "rfnd_1", "entity": "refund", "amount": amount,
                "currency": "INR", "payment_id": "sbp_1", "notes": notes,
                "receipt": refund_reference(refund_id), "acquirer_data": {"arn": null},
                "created_at": 1_797_000_100, "batch_id": null, "status": "processed",
                "speed_processed": "normal", "speed_requested": "normal"}},
            "payment": {"entity": {"id": "sbp_1", "entity": "payment", "amount": amount,
                "currency": "INR", "status": "refunded", "order_id": "order_1", "method": "upi",
                "amount_refunded": amount, "refund_status": "full", "captured": true,
                "notes": {"lightspeed_reference": psp_reference(payment_id)},
                "created_at": 1_797_000_000}}
        },
        "created_at": 1_797_000_100
    }))
    .expect("JSON")
}

fn razorpay_signature(secret: &Secret, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn a_refund_is_created_once_settled_by_the_psp_webhook_and_announced_signed() {
    let app = spawn_app().await;
    let (loopback, seen) = loopback().await;
    let merchant = app
        .merchant_with(MerchantSettings {
            webhook_url: Some(format!("{loopback}/hooks")),
            ..MerchantSettings::default()
        })
        .await;
    let webhook_secret = generate_webhook_secret();
    let credentials = PspCredentials::Razorpay {
        key_id: "rzp_test_refunds".into(),
        key_secret: Secret::from("key-secret"),
        webhook_secret: webhook_secret.clone(),
    };
    let gateway = app.gateway(&merchant, credentials, &loopback, 1).await;
    let payment_id = initiate(&app, &merchant, "ORD-RF-E2E", 49_900).await;
    settle_success(&app, merchant.id, payment_id).await;
    let _running = running(
        &app,
        &[
            QueueName::RefundProcessing,
            QueueName::WebhookProcessing,
            QueueName::MerchantWebhooks,
        ],
    );

    let refund_id = request_refund(&app, &merchant, payment_id, "RF-E2E", 49_900).await;

    let status = |wanted: RefundStatus| {
        let app = &app;
        async move {
            let payment = app.ledger.payment(payment_id).await.ok()??;
            (payment.refund(refund_id)?.status == wanted).then_some(payment)
        }
    };
    wait_for("the refund submitted", || status(RefundStatus::Submitted)).await;
    {
        let creations = seen.creations.lock().expect("seen");
        assert_eq!(creations.len(), 1, "one refund created at Razorpay");
        let (headers, created) = &creations[0];
        assert_eq!(
            headers
                .get("x-refund-idempotency")
                .and_then(|v| v.to_str().ok()),
            Some(refund_reference(refund_id).as_str())
        );
        assert_eq!(created["amount"], 49_900);
    }

    let processed = refund_processed(payment_id, refund_id, 49_900);
    let delivered = app
        .http
        .post(webhook_url(&app, &merchant, gateway))
        .header("content-type", "application/json")
        .header("x-razorpay-event-id", "evt_refund_1")
        .header(
            "x-razorpay-signature",
            razorpay_signature(&webhook_secret, &processed),
        )
        .body(processed)
        .send()
        .await
        .expect("send");
    assert_eq!(delivered.status(), StatusCode::OK);
    let payment = wait_for("the refund succeeded", || status(RefundStatus::Succeeded)).await;
    assert_eq!(payment.status(), PaymentStatus::Refunded);

    let secret = WebhookSecret::from_secret(&merchant.webhook_secret).expect("secret");
    let hooks = wait_for("refund.succeeded and payment.refunded", || async {
        let hooks = seen.hooks.lock().expect("seen").clone();
        let about_refunds: Vec<(HeaderMap, Value)> = hooks
            .into_iter()
            .filter_map(|(headers, raw)| {
                verify(&secret, &headers, &raw, app.ledger.now()).expect("signed");
                let body: Value = serde_json::from_slice(&raw).ok()?;
                let kind = body["type"].as_str()?.to_owned();
                (kind.starts_with("refund.") || kind == "payment.refunded")
                    .then_some((headers, body))
            })
            .collect();
        (about_refunds.len() == 2).then_some(about_refunds)
    })
    .await;
    let mut kinds: Vec<&str> = hooks
        .iter()
        .filter_map(|(_, b)| b["type"].as_str())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["payment.refunded", "refund.succeeded"]);
    for (_, body) in &hooks {
        assert_eq!(body["data"]["refund"]["refund_id"], "RF-E2E");
        assert_eq!(body["data"]["refund"]["refunded_total"], 49_900);
    }
}

/// The sandbox PSP end to end: the payer pays at its checkout, two refunds go through
/// `refund-processing` to the sandbox, its settle control (the bank) processes each, and its
/// signed refund webhooks through the real intake leave the payment partially refunded, then
/// refunded; the merchant hears `refund.succeeded` twice and `payment.refunded` once, signed.
#[tokio::test]
async fn sandbox_refunds_partial_then_full_settle_through_its_signed_webhooks() {
    let app = spawn_app().await;
    let (loopback, seen) = loopback().await;
    let merchant = app
        .merchant_with(MerchantSettings {
            webhook_url: Some(format!("{loopback}/hooks")),
            ..MerchantSettings::default()
        })
        .await;
    let (gateway, account_key) = app.sandbox_gateway(&merchant, 1, None).await;
    let payment_id = initiate(&app, &merchant, "ORD-SBX-RF", 40_000).await;
    let callback = webhook_url(&app, &merchant, gateway);
    let (_, order_id) = create_order(&app, &merchant, payment_id, &callback).await;
    let _running = running(
        &app,
        &[
            QueueName::RefundProcessing,
            QueueName::WebhookProcessing,
            QueueName::MerchantWebhooks,
        ],
    );
    pay_at_sandbox(&app, &order_id).await;
    wait_for("the payment succeeded", || async {
        let payment = app.ledger.payment(payment_id).await.ok()??;
        (payment.status() == PaymentStatus::Succeeded).then_some(())
    })
    .await;

    for (refund, amount, after) in [
        ("RF-SBX-1", 10_000, PaymentStatus::Succeeded),
        ("RF-SBX-2", 30_000, PaymentStatus::Refunded),
    ] {
        let refund_id = request_refund(&app, &merchant, payment_id, refund, amount).await;
        let psp_refund_id = submitted(&app, payment_id, refund_id).await;
        let settled = app
            .http
            .post(format!(
                "{}/sandbox/v1/refunds/{psp_refund_id}/settle",
                app.url
            ))
            .header("x-sandbox-key", account_key.expose_str().expect("text"))
            .json(&json!({"status": "processed"}))
            .send()
            .await
            .expect("settle");
        assert_eq!(settled.status(), StatusCode::OK, "{refund}");
        let payment = succeeded(&app, payment_id, refund_id).await;
        assert_eq!(payment.status(), after, "{refund}");
        assert_eq!(
            payment.refunds().len(),
            if after == PaymentStatus::Refunded {
                2
            } else {
                1
            }
        );
    }

    let secret = WebhookSecret::from_secret(&merchant.webhook_secret).expect("secret");
    let mut kinds = wait_for("two refund.succeeded and one payment.refunded", || async {
        let hooks = seen.hooks.lock().expect("seen").clone();
        let kinds: Vec<String> = hooks
            .iter()
            .filter_map(|(headers, raw)| {
                verify(&secret, headers, raw, app.ledger.now()).expect("signed");
                let body: Value = serde_json::from_slice(raw).ok()?;
                let kind = body["type"].as_str()?.to_owned();
                (kind.starts_with("refund.") || kind == "payment.refunded").then_some(kind)
            })
            .collect();
        (kinds.len() == 3).then_some(kinds)
    })
    .await;
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["payment.refunded", "refund.succeeded", "refund.succeeded"]
    );
}

/// A partial refund at Cashfree: created once with our refund id and idempotency key and the
/// exact rupee amount, then settled by Cashfree's signed `REFUND_STATUS_WEBHOOK` through the
/// real intake; the payment stays succeeded with ₹100.00 refunded.
#[tokio::test]
async fn a_cashfree_refund_is_created_once_and_settled_by_its_signed_webhook() {
    let app = spawn_app().await;
    let (loopback, seen) = loopback().await;
    let merchant = app.merchant().await;
    let client_secret = Secret::from("cf_test_secret");
    let credentials = PspCredentials::Cashfree {
        client_id: "cf_test_app".into(),
        client_secret: client_secret.clone(),
    };
    let gateway = app.gateway(&merchant, credentials, &loopback, 1).await;
    let payment_id = initiate(&app, &merchant, "ORD-CF-RF", 49_900).await;
    settle_success(&app, merchant.id, payment_id).await;
    let _running = running(
        &app,
        &[QueueName::RefundProcessing, QueueName::WebhookProcessing],
    );
    let refund_id = request_refund(&app, &merchant, payment_id, "RF-CF-1", 10_000).await;
    let submitted = submitted(&app, payment_id, refund_id).await;
    assert_eq!(submitted, "cf_rf_1");
    {
        let creations = seen.creations.lock().expect("seen");
        assert_eq!(creations.len(), 1, "one refund created at Cashfree");
        let (headers, created) = &creations[0];
        let idempotency = headers
            .get("x-idempotency-key")
            .and_then(|v| v.to_str().ok());
        assert_eq!(idempotency, Some(refund_id.0.to_string().as_str()));
        let raw = created["raw"].as_str().expect("raw");
        assert!(raw.contains(r#""refund_amount":100.00"#), "{raw}");
        assert!(raw.contains(&refund_reference(refund_id)), "{raw}");
    }

    let webhook = format!(
        r#"{{"data":{{"refund":{{"cf_refund_id":"cf_rf_1","cf_payment_id":789727431,"refund_id":"{}","order_id":"{}","refund_amount":100.00,"refund_currency":"INR","entity":"Refund","refund_type":"MERCHANT_INITIATED","refund_arn":"205907014017","refund_status":"SUCCESS","status_description":"Refund processed successfully","created_at":"2026-12-06T12:54:25+05:30","processed_at":"2026-12-06T13:04:27+05:30","refund_charge":0,"refund_note":null,"refund_splits":[],"metadata":null,"refund_mode":"STANDARD"}}}},"event_time":"2026-12-06T13:04:28+05:30","type":"REFUND_STATUS_WEBHOOK"}}"#,
        refund_reference(refund_id),
        psp_reference(payment_id),
    );
    let timestamp = app.ledger.now().timestamp_millis().to_string();
    let signature = cashfree::sign_webhook(&client_secret, &timestamp, webhook.as_bytes());
    let delivered = app
        .http
        .post(webhook_url(&app, &merchant, gateway))
        .header("content-type", "application/json")
        .header("x-webhook-timestamp", &timestamp)
        .header("x-webhook-signature", signature)
        .header("x-webhook-version", "2023-08-01")
        .body(webhook)
        .send()
        .await
        .expect("send");
    assert_eq!(delivered.status(), StatusCode::OK);
    let payment = succeeded(&app, payment_id, refund_id).await;
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(payment.refunded(), lightspeed_domain::Paise(10_000));
    assert_eq!(seen.creations.lock().expect("seen").len(), 1);
}

/// A partial refund at PhonePe (v1): looked up, then created once under our refund reference
/// against the payment's transaction, then settled by PhonePe's `X-VERIFY` callback through the
/// real intake. The callback names only the refund, so the payment is found by the refund's
/// locator in the log.
#[tokio::test]
async fn a_phonepe_refund_is_created_once_and_settled_by_its_callback_naming_only_the_refund() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let (loopback, seen) = loopback().await;
    let merchant = app.merchant().await;
    let salt = "099eb0cd-02cf-4e2a-8aca-3e6c6aff0399";
    let credentials = PspCredentials::Phonepe {
        merchant_id: "PGTESTPAYUAT".into(),
        salt_key: Secret::from(salt),
        salt_index: 1,
    };
    let gateway = app.gateway(&merchant, credentials, &loopback, 1).await;
    let payment_id = initiate(&app, &merchant, "ORD-PP-RF", 49_900).await;
    settle_success(&app, merchant.id, payment_id).await;
    let _running = running(
        &app,
        &[QueueName::RefundProcessing, QueueName::WebhookProcessing],
    );
    let refund_id = request_refund(&app, &merchant, payment_id, "RF-PP-1", 12_345).await;
    let submitted = submitted(&app, payment_id, refund_id).await;
    assert_eq!(submitted, "T_RF_1");
    {
        let creations = seen.creations.lock().expect("seen");
        assert_eq!(creations.len(), 1, "one refund created at PhonePe");
        let (_, payload) = &creations[0];
        assert_eq!(
            payload["merchantTransactionId"],
            refund_reference(refund_id)
        );
        assert_eq!(payload["originalTransactionId"], psp_reference(payment_id));
        assert_eq!(payload["amount"], 12_345);
    }

    let status = json!({
        "success": true, "code": "PAYMENT_SUCCESS", "message": "Your refund is successful.",
        "data": {"merchantId": "PGTESTPAYUAT", "merchantTransactionId": refund_reference(refund_id),
            "transactionId": "T_RF_1", "amount": 12_345, "state": "COMPLETED",
            "responseCode": "SUCCESS"}
    });
    let response = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&status).expect("JSON"));
    let checksum = lightspeed_adapters::psp::phonepe::callback_checksum(&response, salt, 1);
    let delivered = app
        .http
        .post(webhook_url(&app, &merchant, gateway))
        .header("content-type", "application/json")
        .header("x-verify", checksum)
        .json(&json!({"response": response}))
        .send()
        .await
        .expect("send");
    assert_eq!(delivered.status(), StatusCode::OK);
    let payment = succeeded(&app, payment_id, refund_id).await;
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(payment.refunded(), lightspeed_domain::Paise(12_345));
    assert_eq!(seen.creations.lock().expect("seen").len(), 1);
}

/// A partial refund at PayU: `cancel_refund_transaction` once under our token, then PayU's
/// unsigned refund callback, which is never taken as the outcome: it queues a refund check, and
/// `settlement-processing` records what `check_action_status` says.
#[tokio::test]
async fn a_payu_refund_is_settled_by_checking_its_status_after_the_unsigned_callback() {
    let app = spawn_app().await;
    let (loopback, seen) = loopback().await;
    let merchant = app.merchant().await;
    let credentials = PspCredentials::Payu {
        key: "TESTKEY1".into(),
        salt: Secret::from("TESTSALT"),
    };
    let gateway = app.gateway(&merchant, credentials, &loopback, 1).await;
    let payment_id = initiate(&app, &merchant, "ORD-PAYU-E2E", 49_900).await;
    settle_success(&app, merchant.id, payment_id).await;
    let _running = running(
        &app,
        &[QueueName::RefundProcessing, QueueName::SettlementProcessing],
    );
    let refund_id = request_refund(&app, &merchant, payment_id, "RF-PAYU-E2E", 10_000).await;
    let submitted = submitted(&app, payment_id, refund_id).await;
    assert_eq!(submitted, "131313131");
    {
        let creations = seen.creations.lock().expect("seen");
        assert_eq!(creations.len(), 1, "one refund created at PayU");
        let (_, form) = &creations[0];
        assert_eq!(form["var1"], "sbp_1");
        assert_eq!(form["var2"], refund_reference(refund_id));
        assert_eq!(form["var3"], "100.00");
    }

    let callback = json!({
        "mihpayid": "sbp_1", "merchantTxnId": psp_reference(payment_id),
        "token": refund_reference(refund_id), "action": "refund", "status": "success",
        "amt": "100.00", "request_id": "131313131", "bank_arn": null,
    });
    let delivered = app
        .http
        .post(webhook_url(&app, &merchant, gateway))
        .json(&callback)
        .send()
        .await
        .expect("send");
    assert_eq!(delivered.status(), StatusCode::ACCEPTED);
    let payment = succeeded(&app, payment_id, refund_id).await;
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(payment.refunded(), lightspeed_domain::Paise(10_000));
    assert_eq!(seen.creations.lock().expect("seen").len(), 1);
}

/// The relay and the given queues' workers, running until dropped.
struct Running {
    _relay: AbortOnDrop<()>,
    _workers: Vec<Worker>,
}

/// Runs the relay, as `lightspeed relay` does, and the workers of `queues`, for this test only.
fn running(app: &TestApp, queues: &[QueueName]) -> Running {
    let relay = Relay::new(
        app.ledger.store().clone(),
        app.nats.jetstream.clone(),
        app.nats.config.clone(),
        RelayConfig::default(),
    );
    Running {
        _relay: AbortOnDrop(tokio::spawn(async move { relay.run().await })),
        _workers: queues.iter().map(|queue| worker(app, *queue)).collect(),
    }
}

/// The PSP's refund id, once the refund is recorded as submitted.
async fn submitted(app: &TestApp, payment_id: PaymentId, refund_id: RefundId) -> String {
    wait_for("the refund submitted to the PSP", || async {
        let payment = app.ledger.payment(payment_id).await.ok()??;
        payment.refund(refund_id)?.psp_refund_id.clone()
    })
    .await
}

/// The payment, once the refund is recorded as succeeded.
async fn succeeded(app: &TestApp, payment_id: PaymentId, refund_id: RefundId) -> Payment {
    wait_for("the refund succeeded", || async {
        let payment = app.ledger.payment(payment_id).await.ok()??;
        (payment.refund(refund_id)?.status == RefundStatus::Succeeded).then_some(payment)
    })
    .await
}

/// A task aborted when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
