//! Racing refund requests over real HTTP and PostgreSQL, beside `refunds.rs`'s sixteen distinct
//! requests: sixteen replays of one request answer one refund, sixteen different requests under
//! one refund id leave one refund and fifteen 409s, and what failed refunds give back is taken
//! by racing requests without ever exceeding the amount.

use std::collections::HashSet;

use lightspeed_domain::PaymentId;
use lightspeed_eventstore::CommandContext;
use lightspeed_services::RefundOutcome;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, TestMerchant, payment, settle_success, spawn_app};

async fn paid(app: &TestApp, merchant: &TestMerchant, order: &str) -> PaymentId {
    let created = app.initiate(merchant, &payment(order, 49_900)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let body: Value = created.json().await.expect("json");
    let id: PaymentId = body["transaction_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("payment id");
    settle_success(app, merchant.id, id).await;
    id
}

/// Sends each body at once to `POST /payment/{id}/refunds`; answers each status and body.
async fn race(
    app: &TestApp,
    merchant: &TestMerchant,
    id: PaymentId,
    bodies: Vec<Value>,
) -> Vec<(StatusCode, Value)> {
    let requests = bodies.into_iter().map(|body| async move {
        let bytes = serde_json::to_vec(&body).expect("json");
        let response = app
            .signed(
                merchant,
                Method::POST,
                &format!("/payment/{id}/refunds"),
                &bytes,
            )
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json::<Value>().await.expect("json"))
    });
    futures::future::join_all(requests).await
}

async fn refunds_of(app: &TestApp, id: PaymentId) -> lightspeed_domain::Payment {
    app.ledger
        .payment(id)
        .await
        .expect("load")
        .expect("payment")
}

#[tokio::test]
async fn sixteen_replays_of_one_request_answer_one_refund() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let id = paid(&app, &merchant, "ORD-REPLAY").await;
    let body = json!({ "amount": 12_345, "reason": "late", "refund_id": "RF-SAME" });
    let answers = race(&app, &merchant, id, vec![body; 16]).await;
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::ACCEPTED),
        "{answers:?}"
    );
    let created: HashSet<&str> = answers
        .iter()
        .map(|(_, b)| b["created_at"].as_str().expect("created_at"))
        .collect();
    assert_eq!(created.len(), 1, "one refund answered sixteen times");
    let payment = refunds_of(&app, id).await;
    assert_eq!(payment.refunds().len(), 1);
    assert_eq!(payment.refundable().0, 49_900 - 12_345);
}

#[tokio::test]
async fn sixteen_different_requests_under_one_refund_id_leave_one_refund() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let id = paid(&app, &merchant, "ORD-REUSE").await;
    let bodies = (0..16)
        .map(|n| json!({ "amount": 1_000 + n, "refund_id": "RF-KEY" }))
        .collect();
    let answers = race(&app, &merchant, id, bodies).await;
    let accepted: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .map(|(_, b)| b)
        .collect();
    let reused = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["code"] == "REFUND_ID_REUSED")
        .count();
    assert_eq!((accepted.len(), reused), (1, 15), "{answers:?}");
    let payment = refunds_of(&app, id).await;
    assert_eq!(payment.refunds().len(), 1);
    assert_eq!(
        payment.refunds()[0].amount.0,
        accepted[0]["amount"].as_i64().expect("amount")
    );
}

#[tokio::test]
async fn what_failed_refunds_give_back_is_never_refunded_twice_by_racing_requests() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let id = paid(&app, &merchant, "ORD-AGAIN").await;
    let first = (0..16)
        .map(|n| json!({ "amount": 10_000, "refund_id": format!("RF-A{n}") }))
        .collect();
    let answers = race(&app, &merchant, id, first).await;
    let held = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    assert_eq!(held, 4, "{answers:?}");
    // Two of them fail at the PSP: 20 000 may be refunded again, and 9 900 still.
    let payment = refunds_of(&app, id).await;
    for refund in payment.refunds().iter().take(2) {
        app.ledger
            .record_refund_outcome(
                id,
                refund.id,
                &RefundOutcome::Failed {
                    code: "DECLINED".into(),
                    reason: "closed account".into(),
                },
                app.ledger.now(),
                &CommandContext::default(),
            )
            .await
            .expect("failed");
    }
    let second = (0..16)
        .map(|n| json!({ "amount": 10_000, "refund_id": format!("RF-B{n}") }))
        .collect();
    let answers = race(&app, &merchant, id, second).await;
    let held = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::ACCEPTED)
        .count();
    assert_eq!(held, 2, "{answers:?}");
    let payment = refunds_of(&app, id).await;
    assert_eq!(payment.refunds_in_flight().0, 40_000);
    assert_eq!(payment.refundable().0, 9_900);
}
