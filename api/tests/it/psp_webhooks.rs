//! PSP webhook intake over real HTTP with the built-in sandbox PSP: a verified webhook is
//! recorded once however often it comes; an unverified one is refused and records nothing.

use lightspeed_adapters::psp::PspAccount;
use lightspeed_domain::psp_outcome::PspOutcomeRecord;
use lightspeed_domain::{GatewayId, PaymentId};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{
    EventCount, TestApp, TestMerchant, create_order, initiate, pay_at_sandbox, payment, spawn_app,
    webhook_url,
};

async fn outcome_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ledger.events WHERE category = $1")
        .bind(<PspOutcomeRecord as lightspeed_domain::Decider>::CATEGORY)
        .fetch_one(&app.db.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn the_payer_pays_at_the_sandbox_and_its_signed_webhook_is_recorded_once() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway_id, _) = app.sandbox_gateway(&merchant, 1, None).await;
    let payment_id = initiate(&app, &merchant, "ORD-1", 49_900).await;

    // Before the PSP order exists the checkout page waits; afterwards it hands over to the PSP.
    let waiting = app
        .http
        .get(format!("{}/checkout/{payment_id}", app.url))
        .send()
        .await
        .expect("page");
    assert_eq!(waiting.status(), StatusCode::OK);
    assert!(
        waiting
            .text()
            .await
            .expect("html")
            .contains("Preparing your payment")
    );
    let callback = webhook_url(&app, &merchant, gateway_id);
    let (_, order_id) = create_order(&app, &merchant, payment_id, &callback).await;
    let page = app
        .http
        .get(format!("{}/checkout/{payment_id}", app.url))
        .send()
        .await
        .expect("page");
    let html = page.text().await.expect("html");
    assert!(
        html.contains(&format!("/sandbox/checkout/{order_id}")),
        "hands over to the sandbox: {html}"
    );

    // The payer clicks Pay: the sandbox posts its signed webhook to our intake.
    pay_at_sandbox(&app, &order_id).await;
    assert_eq!(
        outcome_count(&app).await,
        1,
        "the verified outcome is recorded"
    );
    let order: Value = app
        .http
        .get(format!("{}/sandbox/v1/orders/{order_id}", app.url))
        .header(
            "x-sandbox-key",
            sandbox_key(&app, &merchant, payment_id).await,
        )
        .send()
        .await
        .expect("order")
        .json()
        .await
        .expect("json");
    let deliveries = order["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.last().expect("one")["status"], 200);
}

async fn sandbox_key(app: &TestApp, merchant: &TestMerchant, payment_id: PaymentId) -> String {
    let payment = app
        .ledger
        .payment_of(merchant.id, payment_id)
        .await
        .expect("payment");
    let gateway = app
        .ledger
        .gateway_of(merchant.id, payment.gateway_id())
        .await
        .expect("gateway");
    let account = PspAccount::open(&app.keyring, gateway.credentials()).expect("credentials");
    match account.credentials {
        lightspeed_adapters::psp::PspCredentials::Sandbox { webhook_secret } => {
            webhook_secret.expose_str().expect("utf-8").to_owned()
        }
        _ => panic!("a sandbox gateway"),
    }
}

#[tokio::test]
async fn the_same_webhook_five_times_is_one_fact_and_a_forged_one_is_refused() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway_id, secret) = app.sandbox_gateway(&merchant, 1, None).await;
    let created: Value = app
        .initiate(&merchant, &payment("ORD-1", 49_900))
        .await
        .json()
        .await
        .expect("json");
    let payment_id: PaymentId = created["transaction_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let reference = lightspeed_adapters::psp::psp_reference(payment_id);
    let body = serde_json::json!({
        "type": "payment.succeeded",
        "order_id": format!("sbo_{reference}"),
        "reference": reference,
        "payment_id": "sbp_1",
        "amount": 49_900,
        "currency": "INR",
        "failure": null,
    })
    .to_string();
    let webhook_secret = lightspeed_adapters::merchant_webhook::WebhookSecret::parse(
        secret.expose_str().expect("utf-8"),
    )
    .expect("secret");
    let signed = lightspeed_adapters::merchant_webhook::sign(
        &webhook_secret,
        &[],
        "msg_1",
        app.ledger.now().timestamp(),
        body.as_bytes(),
    );
    let url = format!("{}/webhook/{}/{gateway_id}", app.url, merchant.client_key);
    let post = |signature: &str| {
        app.http
            .post(&url)
            .header("webhook-id", &signed.id)
            .header("webhook-timestamp", signed.timestamp.to_string())
            .header("webhook-signature", signature.to_owned())
            .header("content-type", "application/json")
            .body(body.clone())
    };

    let before = app.event_count().await;
    let forged = post("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .send()
        .await
        .expect("send");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = forged.json().await.expect("problem");
    assert_eq!(problem["code"], "WEBHOOK_NOT_VERIFIED");
    assert_eq!(
        app.event_count().await,
        before,
        "an unverified webhook records nothing"
    );

    let mut duplicates = Vec::new();
    for _ in 0..5 {
        let response = post(&signed.signature).send().await.expect("send");
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.expect("json");
        duplicates.push(answer["duplicate"].as_bool().expect("bool"));
    }
    assert_eq!(duplicates, vec![false, true, true, true, true]);
    assert_eq!(outcome_count(&app).await, 1);

    // Unknown client key or gateway: 404, nothing recorded.
    for url in [
        format!(
            "{}/webhook/ck_000000000000000000000000/{gateway_id}",
            app.url
        ),
        format!(
            "{}/webhook/{}/{}",
            app.url,
            merchant.client_key,
            GatewayId::new()
        ),
    ] {
        let response = app
            .http
            .post(url)
            .body(body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(outcome_count(&app).await, 1);
}
