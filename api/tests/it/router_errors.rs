//! Every error is a problem document with a stable code, those the router and its layers make
//! included: no route (404), a method the route does not answer (405, with `Allow`), a body over
//! the limit (413). Only the checkout's pages answer a browser that asked for HTML with HTML.

use lightspeed_domain::PaymentId;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestApp, spawn_app};

const PROBLEM_JSON: &str = "application/problem+json";

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The response's status, content type and body as JSON (null when it is not JSON).
async fn answer(response: reqwest::Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let kind = content_type(&response);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, kind, body)
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str) -> (StatusCode, String, Value) {
    answer(
        app.http
            .request(method, format!("{}{path}", app.url))
            .send()
            .await
            .expect("request"),
    )
    .await
}

#[tokio::test]
async fn no_route_and_wrong_method_are_problems_with_codes() {
    let app = spawn_app().await;
    let (status, kind, body) = send(&app, reqwest::Method::GET, "/no/such/route").await;
    assert_eq!(
        (status, kind.as_str(), body["code"].as_str()),
        (StatusCode::NOT_FOUND, PROBLEM_JSON, Some("NOT_FOUND"))
    );
    for (method, path) in [
        (reqwest::Method::DELETE, "/payment/initiate"),
        (reqwest::Method::PUT, "/health"),
        (reqwest::Method::POST, "/admin/projections"),
        (reqwest::Method::GET, "/sandbox/checkout/sbo_x/pay"),
    ] {
        let response = app
            .http
            .request(method.clone(), format!("{}{path}", app.url))
            .send()
            .await
            .expect("request");
        let allow = response.headers().get("allow").cloned();
        let (status, kind, body) = answer(response).await;
        assert_eq!(
            (status, kind.as_str(), body["code"].as_str()),
            (
                StatusCode::METHOD_NOT_ALLOWED,
                PROBLEM_JSON,
                Some("METHOD_NOT_ALLOWED")
            ),
            "{method} {path}: {body}"
        );
        assert_eq!(body["status"], 405);
        assert!(
            allow.is_some(),
            "{method} {path} names the methods it answers"
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_problem() {
    let app = TestApp::builder()
        .config(|config| config.body_limit_bytes = 1_024)
        .spawn()
        .await;
    let merchant = app.merchant().await;
    let big = vec![b'x'; 4_096];
    // The PSP intake reads its body through the body-limit layer.
    let (status, kind, body) = answer(
        app.http
            .post(format!("{}/webhook/{}", app.url, merchant.client_key))
            .body(big.clone())
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, kind.as_str(), body["code"].as_str()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            PROBLEM_JSON,
            Some("PAYLOAD_TOO_LARGE")
        ),
        "{body}"
    );
    let (status, kind, body) = answer(
        app.signed(&merchant, reqwest::Method::POST, "/payment/initiate", &big)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, kind.as_str(), body["code"].as_str()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            PROBLEM_JSON,
            Some("PAYLOAD_TOO_LARGE")
        )
    );
}

#[tokio::test]
async fn checkout_answers_html_only_to_a_browser_asking_for_a_page() {
    let app = spawn_app().await;
    let unknown = PaymentId::new();
    for path in [
        format!("/checkout/{unknown}/ready"),
        "/checkout/not-an-id/ready".to_owned(),
        format!("/checkout/{unknown}"),
        format!("/checkout/{unknown}/return"),
    ] {
        let (status, kind, body) = send(&app, reqwest::Method::GET, &path).await;
        assert_eq!(
            (status, kind.as_str(), body["code"].as_str()),
            (
                StatusCode::NOT_FOUND,
                PROBLEM_JSON,
                Some("TRANSACTION_NOT_FOUND")
            ),
            "{path}"
        );
    }
    // A browser navigating to the page gets a page; the JSON endpoint stays JSON.
    let browser = |path: String| {
        app.http
            .get(format!("{}{path}", app.url))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
    };
    let page = browser(format!("/checkout/{unknown}")).await.expect("page");
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(content_type(&page).starts_with("text/html"));
    let ready = browser(format!("/checkout/{unknown}/ready"))
        .await
        .expect("ready");
    assert_eq!(content_type(&ready), PROBLEM_JSON);
}
