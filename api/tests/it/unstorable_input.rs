//! Text PostgreSQL cannot store (NUL, bytes that are not UTF-8) is refused as
//! `422 INVALID_TEXT` wherever it arrives, query, path or body, and records nothing; a request
//! id a caller chooses is kept only while it is short printable ASCII.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{EventCount, payment, problem, spawn_app};

const PROBLEM_JSON: &str = "application/problem+json";

async fn refused(response: reqwest::Response) -> (StatusCode, Value) {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (status, body) = problem(response).await;
    assert_eq!(content_type, PROBLEM_JSON, "{status} {body}");
    (status, body)
}

#[tokio::test]
async fn nul_or_broken_utf8_in_an_admin_list_query_is_a_422_naming_the_parameter() {
    let app = spawn_app().await;
    app.project().await;
    let lists = [
        ("/admin/merchants", "q"),
        ("/admin/wallets", "q"),
        ("/admin/gateways", "provider"),
        ("/admin/gateways/health", "provider"),
        ("/admin/transactions", "order_id"),
        ("/admin/audit-log", "actor"),
        ("/admin/whatsapp", "q"),
        ("/admin/alerts", "kind"),
    ];
    for (path, parameter) in lists {
        for bad in ["a%00b", "%FF", "caf%C3"] {
            let (status, body) = refused(
                app.admin(Method::GET, &format!("{path}?{parameter}={bad}"))
                    .send()
                    .await
                    .expect("request"),
            )
            .await;
            assert_eq!(
                (status, body["code"].as_str(), body["field"].as_str()),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("INVALID_TEXT"),
                    Some(parameter)
                ),
                "{path}?{parameter}={bad}: {body}"
            );
        }
        // The same list with storable text answers.
        let ok = app
            .admin(Method::GET, &format!("{path}?{parameter}=caf%C3%A9"))
            .send()
            .await
            .expect("request");
        assert!(
            ok.status().is_success() || ok.status() == StatusCode::BAD_REQUEST,
            "{path}: {}",
            ok.status()
        );
    }
}

#[tokio::test]
async fn nul_in_a_path_or_a_json_body_is_a_422_and_records_nothing() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let before = app.event_count().await;

    for path in [
        format!("/webhook/{}%00/x", merchant.client_key),
        "/checkout/%00/ready".to_owned(),
        "/transaction/%FF".to_owned(),
    ] {
        let (status, body) = refused(
            app.http
                .post(format!("{}{path}", app.url))
                .send()
                .await
                .expect("request"),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("INVALID_TEXT"),
                Some("path")
            ),
            "{path}: {body}"
        );
    }

    // A merchant's notes, signed correctly, with a NUL escape.
    let mut body = payment("ORD-NUL", 100);
    body["notes"]["cart"] = Value::String("c-\u{0}42".into());
    let (status, problem) = refused(app.initiate(&merchant, &body).await).await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("INVALID_TEXT"),
            Some("notes.cart")
        ),
        "{problem}"
    );
    // An admin body with a NUL in a name.
    let (status, problem) = refused(
        app.admin_json(
            Method::POST,
            "/admin/merchants",
            &serde_json::json!({ "company_name": "Acme\u{0}", "fee_bps": 350 }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("company_name")),
        "{problem}"
    );
    // A body that is not UTF-8.
    let raw = b"{\"amount\":100,\"currency\":\"INR\",\"order_id\":\"\xff\"}";
    let (status, problem) = refused(
        app.signed(&merchant, Method::POST, "/payment/initiate", raw)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str(), problem["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("INVALID_TEXT"),
            Some("body")
        )
    );
    assert_eq!(app.event_count().await, before, "nothing recorded");
}

#[tokio::test]
async fn a_callers_request_id_is_kept_only_while_short_printable_ascii() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let body = serde_json::to_vec(&payment("ORD-RID-1", 100)).expect("json");
    let kept = app
        .signed(&merchant, Method::POST, "/payment/initiate", &body)
        .header("x-request-id", "req-42")
        .send()
        .await
        .expect("request");
    assert_eq!(kept.status(), StatusCode::CREATED);
    assert_eq!(kept.headers()["x-request-id"], "req-42");

    // Longer than an event's metadata may hold: replaced, and the payment is still made.
    let long = "r".repeat(5_000);
    let body = serde_json::to_vec(&payment("ORD-RID-2", 100)).expect("json");
    let replaced = app
        .signed(&merchant, Method::POST, "/payment/initiate", &body)
        .header("x-request-id", long.as_str())
        .send()
        .await
        .expect("request");
    assert_eq!(replaced.status(), StatusCode::CREATED);
    let id = replaced.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(id.parse::<uuid::Uuid>().is_ok(), "a fresh id: {id}");
}
