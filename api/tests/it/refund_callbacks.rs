//! PayU's refund callbacks are not signed: one naming a refund of ours is answered 202, records
//! nothing from its body and queues a refund check on the workers' `settlement-processing`
//! queue; one naming no refund of this merchant is refused like any unverified webhook.

use lightspeed_adapters::psp::{PspCredentials, psp_reference, refund_reference};
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::{Paise, PaymentId, RefundId};
use lightspeed_eventstore::CommandContext;
use lightspeed_services::RefundRequest;
use lightspeed_workers::{JobStreamConfig, RefundCheck};
use reqwest::StatusCode;

use crate::common::{EventCount, TestApp, initiate, settle_success, webhook_url};

/// A paid payment on a PayU gateway with a refund requested; answers the gateway too.
async fn refunded_at_payu(
    app: &TestApp,
    merchant: &lightspeed_api::testing::TestMerchant,
) -> (lightspeed_domain::GatewayId, PaymentId, RefundId) {
    let credentials = PspCredentials::Payu {
        key: "PAYUKEY1".into(),
        salt: Secret::from("PAYUSALT"),
    };
    let gateway = app
        .gateway(merchant, credentials, "https://test.payu.invalid", 1)
        .await;
    let payment_id = initiate(app, merchant, "ORD-PAYU-RF", 49_900).await;
    settle_success(app, merchant.id, payment_id).await;
    let current = app
        .ledger
        .current_merchant(merchant.id)
        .await
        .expect("merchant");
    let refund_id = app
        .ledger
        .request_refund(
            &current,
            &RefundRequest {
                payment_id,
                merchant_refund_id: "RF-PAYU-1".into(),
                amount: Paise(10_000),
                reason: "returned".into(),
                request_digest: "digest-rf-payu-1".into(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("refund")
        .refund_id;
    (gateway, payment_id, refund_id)
}

fn callback(payment: Option<PaymentId>, refund: RefundId) -> serde_json::Value {
    serde_json::json!({
        "mihpayid": "403993715521937566",
        "merchantTxnId": payment.map(psp_reference).unwrap_or_default(),
        "token": refund_reference(refund),
        "action": "refund",
        "status": "success",
        "amt": "100.00",
        "request_id": "131313131",
    })
}

async fn queued_refund_check(app: &TestApp) -> RefundCheck {
    let jobs = JobStreamConfig::for_log(&app.nats.config);
    let message = app
        .nats
        .jetstream
        .get_stream(&jobs.stream_name)
        .await
        .expect("jobs stream")
        .get_last_raw_message_by_subject(&jobs.refund_check_subject())
        .await
        .expect("a refund check");
    serde_json::from_slice(&message.payload).expect("a refund check job")
}

#[tokio::test]
async fn an_unsigned_payu_refund_callback_queues_a_refund_check_and_records_nothing() {
    let app = lightspeed_api::testing::spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway, payment_id, refund_id) = refunded_at_payu(&app, &merchant).await;
    let before = app.event_count().await;

    // With our payment reference, then with only the refund's (its locator finds the payment).
    for body in [
        callback(Some(payment_id), refund_id),
        callback(None, refund_id),
    ] {
        let answer = app
            .http
            .post(webhook_url(&app, &merchant, gateway))
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        let body: serde_json::Value = answer.json().await.expect("JSON");
        assert_eq!(body["refund_check_queued"], true);
        let check = queued_refund_check(&app).await;
        assert_eq!((check.payment_id, check.refund_id), (payment_id, refund_id));
    }
    assert_eq!(
        app.event_count().await,
        before,
        "nothing recorded from the body"
    );
}

#[tokio::test]
async fn a_payu_refund_callback_naming_no_refund_of_ours_is_refused() {
    let app = lightspeed_api::testing::spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway, payment_id, _) = refunded_at_payu(&app, &merchant).await;
    let before = app.event_count().await;
    let answer = app
        .http
        .post(webhook_url(&app, &merchant, gateway))
        .json(&callback(Some(payment_id), RefundId::new()))
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(app.event_count().await, before);
}
