//! The payment flow end to end, for each provider: a signed initiation, the order at the (fake)
//! PSP, the PSP's signed webhook, the payment succeeded with exactly one commission, and the
//! merchant's webhook received with a signature any Standard Webhooks verifier accepts.

mod support;

use base64::Engine;
use lightspeed_adapters::merchant_webhook::{WebhookSecret, verify};
use lightspeed_adapters::psp::payu::{HashFields, reverse_hash};
use lightspeed_adapters::psp::{PspCredentials, parse_psp_reference, psp_reference};
use lightspeed_adapters::secrets::Secret;
use lightspeed_api::testing::TestMerchant;
use lightspeed_workers::QueueName;
use serde_json::{Value, json};
use support::{World, world};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const RAZORPAY_WEBHOOK_SECRET: &str = "rzp_webhook_secret";

/// After the PSP's webhook: the payment succeeded, one commission (₹499 × 3.5 % = ₹17.47), and
/// a verifiable `payment.succeeded` webhook at the merchant.
async fn assert_settled(world: &World, merchant: &TestMerchant, id: &str) {
    let done = world
        .wait_for(merchant, id, |t| t["status"] == "succeeded")
        .await;
    assert_eq!(done["commission"], 1_747);
    let accruals = world
        .app
        .count("SELECT count(*) FROM ledger.events WHERE event_type = 'CommissionAccrued'")
        .await;
    assert_eq!(accruals, 1, "exactly one commission");
    let (headers, body) = world.merchant_webhook(id, "payment.succeeded").await;
    let secret =
        WebhookSecret::parse(merchant.webhook_secret.expose_str().expect("utf-8")).expect("secret");
    verify(&secret, &headers, &body, world.app.ledger.now())
        .expect("the merchant can verify our signature");
    let payload: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(payload["data"]["amount"], 49_900);
    assert_eq!(payload["data"]["commission"], 1_747);
}

async fn post_webhook(
    world: &World,
    merchant: &TestMerchant,
    gateway: lightspeed_domain::GatewayId,
    headers: &[(&str, String)],
    body: Vec<u8>,
) {
    let mut request = world
        .app
        .http
        .post(format!(
            "{}/webhook/{}/{gateway}",
            world.app.url, merchant.client_key
        ))
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("webhook");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

/// The reference our adapter sent as the PSP order id, read back from the transaction.
async fn reference(world: &World, merchant: &TestMerchant, id: &str) -> String {
    let transaction = world
        .wait_for(merchant, id, |t| t["psp_order_id"].is_string())
        .await;
    assert!(transaction["psp_order_id"].is_string());
    let payment_id = id.parse().expect("uuid");
    let reference = psp_reference(payment_id);
    assert_eq!(parse_psp_reference(&reference), Some(payment_id));
    reference
}

/// A Razorpay gateway on a fake Razorpay that creates one order.
async fn razorpay_gateway(
    world: &World,
    merchant: &TestMerchant,
    psp: &MockServer,
) -> lightspeed_domain::GatewayId {
    Mock::given(method("GET"))
        .and(path("/v1/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"entity": "collection", "count": 0, "items": []})),
        )
        .mount(psp)
        .await;
    Mock::given(method("POST")).and(path("/v1/orders"))
        .respond_with(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(json!({
                "id": "order_E2E0000000001", "entity": "order", "amount": body["amount"], "amount_paid": 0,
                "amount_due": body["amount"], "currency": "INR", "receipt": body["receipt"], "offer_id": null,
                "status": "created", "attempts": 0, "notes": body["notes"], "created_at": 1_756_455_561
            }))
        })
        .expect(1)
        .mount(psp).await;
    let credentials = PspCredentials::Razorpay {
        key_id: "rzp_test_e2e".into(),
        key_secret: Secret::from("rzp_key_secret"),
        webhook_secret: Secret::from(RAZORPAY_WEBHOOK_SECRET),
    };
    world
        .app
        .gateway(merchant, credentials, &psp.uri(), 1)
        .await
}

/// Razorpay's `payment.captured` for our reference, signed, with its event id header.
fn razorpay_captured(reference: &str, event_id: &str) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let body = json!({
        "entity": "event", "account_id": "acc_BFQ7uQEaa7j2z7", "event": "payment.captured", "contains": ["payment"],
        "payload": {"payment": {"entity": {
            "id": "pay_E2E0000000001", "entity": "payment", "amount": 49_900, "currency": "INR", "status": "captured",
            "order_id": "order_E2E0000000001", "method": "upi", "captured": true,
            "notes": {"lightspeed_reference": reference}, "error_code": null, "created_at": 1_567_674_599
        }}},
        "created_at": 1_567_674_606
    })
    .to_string()
    .into_bytes();
    let signature = lightspeed_adapters::psp::razorpay::sign_webhook_body(
        &Secret::from(RAZORPAY_WEBHOOK_SECRET),
        &body,
    );
    (
        vec![
            ("x-razorpay-signature", signature),
            ("x-razorpay-event-id", event_id.to_owned()),
        ],
        body,
    )
}

#[tokio::test]
async fn razorpay() {
    let world = world().await;
    let merchant = world.merchant().await;
    let psp = MockServer::start().await;
    let gateway = razorpay_gateway(&world, &merchant, &psp).await;
    let id = world.initiate(&merchant, "RZP-1").await;
    let reference = reference(&world, &merchant, &id).await;
    let (headers, body) = razorpay_captured(&reference, "evt_e2e_1");
    post_webhook(&world, &merchant, gateway, &headers, body).await;
    assert_settled(&world, &merchant, &id).await;
}

#[tokio::test]
async fn the_same_webhook_five_times_and_two_racing_ones_make_one_commission() {
    let world = world().await;
    let merchant = world.merchant().await;
    let psp = MockServer::start().await;
    let gateway = razorpay_gateway(&world, &merchant, &psp).await;
    let id = world.initiate(&merchant, "RZP-RACE").await;
    let reference = reference(&world, &merchant, &id).await;
    // `payment.captured` five times, racing `order.paid`-like redeliveries under other event ids.
    let sends: Vec<_> = (0..7)
        .map(|n| {
            let event_id = if n < 5 {
                "evt_same".to_owned()
            } else {
                format!("evt_other_{n}")
            };
            let (headers, body) = razorpay_captured(&reference, &event_id);
            let world = &world;
            let merchant = &merchant;
            async move { post_webhook(world, merchant, gateway, &headers, body).await }
        })
        .collect();
    futures::future::join_all(sends).await;
    // Every report is in the log now; count only once each one's settlement job is done, so a
    // second commission from a later report would be counted too.
    world.queue_done(QueueName::WebhookProcessing).await;
    assert_settled(&world, &merchant, &id).await;
    let outcomes = world
        .app
        .count("SELECT count(*) FROM ledger.events WHERE event_type = 'PspOutcomeReported'")
        .await;
    assert_eq!(outcomes, 3, "one recorded report per distinct PSP event");
    let succeeded = world
        .app
        .count("SELECT count(*) FROM ledger.events WHERE event_type = 'PaymentSucceeded'")
        .await;
    assert_eq!(succeeded, 1);
}

#[tokio::test]
async fn payu() {
    let world = world().await;
    let merchant = world.merchant().await;
    let credentials = PspCredentials::Payu {
        key: "PAYUKEY1".into(),
        salt: Secret::from("PAYUSALT"),
    };
    // PayU's checkout is a form the payer posts: no server call to fake.
    let gateway = world
        .app
        .gateway(&merchant, credentials, "https://test.payu.invalid", 1)
        .await;
    let id = world.initiate(&merchant, "PAYU-1").await;
    let txnid = reference(&world, &merchant, &id).await;

    let fields = HashFields {
        key: "PAYUKEY1",
        txnid: &txnid,
        amount: "499.00",
        productinfo: "Order",
        firstname: "Asha",
        email: "asha@example.com",
        udf: ["", "", "", "", ""],
    };
    let hash = reverse_hash(&fields, "success", None, "PAYUSALT");
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("mihpayid", "403993715521889530"),
            ("mode", "UPI"),
            ("status", "success"),
            ("unmappedstatus", "captured"),
            ("key", "PAYUKEY1"),
            ("txnid", &txnid),
            ("amount", "499.00"),
            ("productinfo", "Order"),
            ("firstname", "Asha"),
            ("email", "asha@example.com"),
            ("udf1", ""),
            ("udf2", ""),
            ("udf3", ""),
            ("udf4", ""),
            ("udf5", ""),
            ("hash", &hash),
            ("error", "E000"),
            ("net_amount_debit", "499"),
        ])
        .finish()
        .into_bytes();
    post_webhook(
        &world,
        &merchant,
        gateway,
        &[("content-type", "application/x-www-form-urlencoded".into())],
        body,
    )
    .await;
    assert_settled(&world, &merchant, &id).await;
}

struct CashfreeOrder;

impl Respond for CashfreeOrder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        ResponseTemplate::new(200).set_body_string(format!(
            r#"{{"cf_order_id":"2149460581","entity":"order","order_id":"{}","order_amount":499.00,"order_currency":"INR","order_status":"ACTIVE","payment_session_id":"session_e2e","customer_details":{{"customer_id":"c1","customer_phone":"9999999999"}}}}"#,
            body["order_id"].as_str().unwrap_or_default()
        ))
    }
}

#[tokio::test]
async fn cashfree() {
    let world = world().await;
    let merchant = world.merchant().await;
    let psp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .respond_with(CashfreeOrder)
        .expect(1)
        .mount(&psp)
        .await;
    let secret = Secret::from("cf_client_secret");
    let credentials = PspCredentials::Cashfree {
        client_id: "cf_app".into(),
        client_secret: secret.clone(),
    };
    let gateway = world
        .app
        .gateway(&merchant, credentials, &psp.uri(), 1)
        .await;
    let id = world.initiate(&merchant, "CF-1").await;
    let order_id = reference(&world, &merchant, &id).await;

    // Amounts are decimal rupees; the signature covers the raw bytes, so they go out verbatim.
    let body = format!(
        r#"{{"data":{{"order":{{"order_id":"{order_id}","order_amount":499.00,"order_currency":"INR","order_tags":null}},"payment":{{"cf_payment_id":"1453002795","payment_status":"SUCCESS","payment_amount":499.00,"payment_currency":"INR","payment_message":"00::Transaction success","payment_time":"2023-08-01T11:16:09+05:30","bank_reference":"234928698581","auth_id":null,"payment_method":{{"upi":{{"channel":"collect","upi_id":"testsuccess@gocash"}}}},"payment_group":"upi"}},"customer_details":{{"customer_name":null,"customer_id":"c1","customer_email":"asha@example.com","customer_phone":"9999999999"}}}},"event_time":"2023-08-01T11:16:10+05:30","type":"PAYMENT_SUCCESS_WEBHOOK"}}"#
    )
    .into_bytes();
    let timestamp = world.app.ledger.now().timestamp_millis().to_string();
    let signature = lightspeed_adapters::psp::cashfree::sign_webhook(&secret, &timestamp, &body);
    let headers = [
        ("x-webhook-timestamp", timestamp),
        ("x-webhook-signature", signature),
        ("x-webhook-version", "2023-08-01".to_owned()),
    ];
    post_webhook(&world, &merchant, gateway, &headers, body).await;
    assert_settled(&world, &merchant, &id).await;
}

#[tokio::test]
async fn phonepe() {
    let world = world().await;
    let merchant = world.merchant().await;
    let psp = MockServer::start().await;
    Mock::given(method("POST")).and(path("/pg/v1/pay"))
        .respond_with(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let payload = base64::engine::general_purpose::STANDARD.decode(body["request"].as_str().unwrap_or_default()).unwrap_or_default();
            let payload: Value = serde_json::from_slice(&payload).unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(json!({
                "success": true, "code": "PAYMENT_INITIATED", "message": "Payment initiated",
                "data": {"merchantId": "PGTESTPAYUAT", "merchantTransactionId": payload["merchantTransactionId"],
                         "instrumentResponse": {"type": "PAY_PAGE", "redirectInfo": {"url": "https://mercury-uat.phonepe.invalid/pay", "method": "GET"}}}
            }))
        })
        .expect(1)
        .mount(&psp).await;
    let salt = "099eb0cd-02cf-4e2a-8aca-3e6c6aff0399";
    let credentials = PspCredentials::Phonepe {
        merchant_id: "PGTESTPAYUAT".into(),
        salt_key: Secret::from(salt),
        salt_index: 1,
    };
    let gateway = world
        .app
        .gateway(&merchant, credentials, &psp.uri(), 1)
        .await;
    let id = world.initiate(&merchant, "PP-1").await;
    let transaction_id = reference(&world, &merchant, &id).await;

    let decoded = json!({
        "success": true, "code": "PAYMENT_SUCCESS", "message": "Your request has been successfully completed.",
        "data": {"merchantId": "PGTESTPAYUAT", "merchantTransactionId": transaction_id, "transactionId": "T2111221437456190170379",
                 "amount": 49_900, "state": "COMPLETED", "responseCode": "SUCCESS", "paymentInstrument": {"type": "UPI", "utr": "206378866112"}}
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(decoded.to_string());
    let verify_header = lightspeed_adapters::psp::phonepe::callback_checksum(&encoded, salt, 1);
    let body = json!({ "response": encoded }).to_string().into_bytes();
    post_webhook(
        &world,
        &merchant,
        gateway,
        &[
            ("x-verify", verify_header),
            ("content-type", "application/json".into()),
        ],
        body,
    )
    .await;
    assert_settled(&world, &merchant, &id).await;
}

#[tokio::test]
async fn sandbox_through_its_checkout_page() {
    let world = world().await;
    let merchant = world.merchant().await;
    world.app.sandbox_gateway(&merchant, 1, None).await;
    let id = world.initiate(&merchant, "SBX-1").await;
    let transaction = world
        .wait_for(&merchant, &id, |t| t["psp_order_id"].is_string())
        .await;
    let order = transaction["psp_order_id"].as_str().expect("order");

    // The payer opens our checkout, is handed to the sandbox's page, and presses Pay.
    let page = world
        .app
        .http
        .get(format!("{}/checkout/{id}", world.app.url))
        .send()
        .await
        .expect("checkout")
        .text()
        .await
        .expect("html");
    assert!(page.contains(&format!("/sandbox/checkout/{order}")));
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let paid = no_redirects
        .post(format!("{}/sandbox/checkout/{order}/pay", world.app.url))
        .send()
        .await
        .expect("pay");
    assert!(paid.status().is_redirection());
    assert_settled(&world, &merchant, &id).await;
}
