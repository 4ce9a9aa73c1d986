//! The merchant refund API over real HTTP and PostgreSQL: racing requests never exceed the
//! amount, the refund id is an idempotency key, refusals are problem documents.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, TestMerchant, payment, problem, settle_success, spawn_app};

/// A payment of `amount` by `merchant`, initiated and, when `paid`, settled as succeeded.
async fn payment_of(app: &TestApp, merchant: &TestMerchant, order: &str, paid: bool) -> String {
    let created = app.initiate(merchant, &payment(order, 49_900)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let body: Value = created.json().await.expect("json");
    let id = body["transaction_id"].as_str().expect("id").to_owned();
    if paid {
        settle_success(app, merchant.id, id.parse().expect("payment id")).await;
    }
    id
}

async fn refund(
    app: &TestApp,
    merchant: &TestMerchant,
    payment: &str,
    body: &Value,
) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).expect("json");
    app.signed(
        merchant,
        Method::POST,
        &format!("/payment/{payment}/refunds"),
        &bytes,
    )
    .send()
    .await
    .expect("request")
}

async fn get(app: &TestApp, merchant: &TestMerchant, path: &str) -> reqwest::Response {
    app.signed(merchant, Method::GET, path, b"")
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn sixteen_racing_refunds_never_exceed_the_amount() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let id = payment_of(&app, &merchant, "ORD-RACE", true).await;

    let requests = (0..16).map(|n| {
        let body = json!({ "amount": 10_000, "refund_id": format!("RF-{n}") });
        let (app, merchant, id) = (&app, &merchant, &id);
        async move { refund(app, merchant, id, &body).await.status() }
    });
    let statuses = futures::future::join_all(requests).await;
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((accepted, refused), (4, 12), "{statuses:?}");

    let list: Value = get(&app, &merchant, &format!("/payment/{id}/refunds"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["refunds"].as_array().map(Vec::len), Some(4));
    assert_eq!(list["refundable"], 9_900);
    assert_eq!(list["refunded"], 0, "nothing succeeded at the PSP yet");
    let over = refund(
        &app,
        &merchant,
        &id,
        &json!({ "amount": 9_901, "refund_id": "RF-over" }),
    )
    .await;
    let (status, body) = problem(over).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "REFUND_EXCEEDS_REMAINING");
    assert_eq!(body["refundable_paise"], 9_900);
}

#[tokio::test]
async fn a_refund_id_answers_its_first_request_and_refuses_another() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let id = payment_of(&app, &merchant, "ORD-1", true).await;
    let other = payment_of(&app, &merchant, "ORD-2", true).await;

    let body = json!({ "amount": 20_000, "reason": "damaged", "refund_id": "RF-1" });
    let first = refund(&app, &merchant, &id, &body).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["status"], "requested");
    assert_eq!(first["amount"], 20_000);
    assert_eq!(first["commission_treatment"], "retain");
    // The same content, keys in another order: the first result again, nothing new held.
    let again = refund(
        &app,
        &merchant,
        &id,
        &json!({ "refund_id": "RF-1", "reason": "damaged", "amount": 20_000 }),
    )
    .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["created_at"], first["created_at"]);
    let list: Value = get(&app, &merchant, &format!("/payment/{id}/refunds"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["refundable"], 29_900);

    for (payment, body) in [
        (&id, json!({ "amount": 20_001, "refund_id": "RF-1" })),
        (
            &other,
            json!({ "amount": 20_000, "reason": "damaged", "refund_id": "RF-1" }),
        ),
    ] {
        let (status, problem) = problem(refund(&app, &merchant, payment, &body).await).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(problem["code"], "REFUND_ID_REUSED");
    }
    let read: Value = get(&app, &merchant, "/refunds/RF-1")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(read["transaction_id"], id.as_str());
    assert_eq!(read["reason"], "damaged");
}

#[tokio::test]
async fn refusals_are_problem_documents_with_stable_codes() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let stranger = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let paid = payment_of(&app, &merchant, "ORD-PAID", true).await;
    let unpaid = payment_of(&app, &merchant, "ORD-OPEN", false).await;

    let cases = [
        (
            &merchant,
            &unpaid,
            json!({ "amount": 100, "refund_id": "A" }),
            StatusCode::CONFLICT,
            "PAYMENT_NOT_REFUNDABLE",
        ),
        (
            &merchant,
            &paid,
            json!({ "amount": 0, "refund_id": "B" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FIELD",
        ),
        (
            &merchant,
            &paid,
            json!({ "amount": -5, "refund_id": "C" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FIELD",
        ),
        (
            &merchant,
            &paid,
            json!({ "amount": 49_901, "refund_id": "D" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "REFUND_EXCEEDS_REMAINING",
        ),
        (
            &merchant,
            &paid,
            json!({ "amount": 100, "refund_id": "has space" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FIELD",
        ),
        (
            &merchant,
            &paid,
            json!({ "amount": "100", "refund_id": "E" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FIELD",
        ),
        (
            &stranger,
            &paid,
            json!({ "amount": 100, "refund_id": "F" }),
            StatusCode::NOT_FOUND,
            "TRANSACTION_NOT_FOUND",
        ),
        (
            &merchant,
            &"not-a-payment".to_owned(),
            json!({ "amount": 100, "refund_id": "G" }),
            StatusCode::NOT_FOUND,
            "TRANSACTION_NOT_FOUND",
        ),
    ];
    for (who, payment, body, status, code) in cases {
        let (got, problem) = problem(refund(&app, who, payment, &body).await).await;
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let (status, body) = problem(get(&app, &merchant, "/refunds/NOPE").await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("REFUND_NOT_FOUND"))
    );
    let (status, _) =
        problem(get(&app, &stranger, &format!("/payment/{paid}/refunds")).await).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another merchant's payment is not found, never forbidden"
    );
    let list: Value = get(&app, &merchant, &format!("/payment/{paid}/refunds"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["refundable"], 49_900, "refusals hold nothing");
}
