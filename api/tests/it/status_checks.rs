//! When a PSP's word cannot be trusted or has not come, the API asks the PSP: an unverified
//! webhook and a payer back from the PSP each queue a status check on the workers' real
//! `settlement-processing` queue, whose worker asks the PSP (the sandbox, on loopback) and
//! records its answer.

use lightspeed_workers::QueueName;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{
    EventCount, TestApp, outcomes_from, paid_with_lost_webhook, spawn_app, wait_for, worker,
};

/// The outcome a status check recorded: (payment id, outcome).
async fn checked_outcome(app: &TestApp) -> (String, Value) {
    sqlx::query_as(
        "SELECT payload->'report'->>'payment_id', payload->'report'->'outcome'
           FROM ledger.events WHERE payload->'report'->>'source' = 'status_check'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("the checked outcome")
}

#[tokio::test]
async fn an_unverified_webhook_has_the_psp_asked_and_its_answer_recorded() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway_id, _) = app.sandbox_gateway(&merchant, 1, None).await;
    let payment_id = paid_with_lost_webhook(&app, &merchant, "ORD-UNVERIFIED").await;
    let _checks = worker(&app, QueueName::SettlementProcessing);

    // Someone posts the success our reference names, without the PSP's signature.
    let reference = lightspeed_adapters::psp::psp_reference(payment_id);
    let body = serde_json::json!({
        "type": "payment.succeeded", "order_id": format!("sbo_{reference}"),
        "reference": reference, "payment_id": "sbp_forged", "amount": 49_900,
        "currency": "INR", "failure": null,
    });
    let before = app.event_count().await;
    let forged = app
        .http
        .post(crate::common::webhook_url(&app, &merchant, gateway_id))
        .header("webhook-id", "msg_forged")
        .header(
            "webhook-timestamp",
            app.ledger.now().timestamp().to_string(),
        )
        .header(
            "webhook-signature",
            "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    wait_for("the PSP's answer recorded", || async {
        (outcomes_from(&app, "status_check").await == 1).then_some(())
    })
    .await;
    let (checked, outcome) = checked_outcome(&app).await;
    assert_eq!(checked, payment_id.to_string());
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    assert_eq!(outcome["amount"], 49_900, "{outcome}");
    assert_eq!(
        outcomes_from(&app, "webhook").await,
        0,
        "the unverified webhook itself recorded nothing"
    );
    assert_eq!(app.event_count().await, before + 1);
}

#[tokio::test]
async fn a_payer_back_from_the_psp_has_the_psp_asked() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let payment_id = paid_with_lost_webhook(&app, &merchant, "ORD-RETURN").await;
    let _checks = worker(&app, QueueName::SettlementProcessing);

    let page = app
        .http
        .get(format!("{}/checkout/{payment_id}/return", app.url))
        .send()
        .await
        .expect("return page");
    assert_eq!(page.status(), StatusCode::OK);

    wait_for("the PSP's answer recorded", || async {
        (outcomes_from(&app, "status_check").await == 1).then_some(())
    })
    .await;
    let (checked, outcome) = checked_outcome(&app).await;
    assert_eq!(checked, payment_id.to_string());
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
}
