//! Every admin route refuses what is not a valid token of one of the people (or an allow-listed
//! admin), and merchant credentials; admin tokens do not open merchant routes. Nothing is
//! recorded by a refusal.

use std::time::Duration;

use chrono::TimeDelta;
use lightspeed_api::admin_auth::mint_token_at;
use reqwest::{Method, StatusCode};

use crate::common::{ADMIN_EMAIL, ADMIN_SECRET, EventCount, TestApp, payment, problem, spawn_app};

/// Every documented admin operation, with a concrete path.
fn admin_operations() -> Vec<(Method, String)> {
    let mut operations = Vec::new();
    for (template, item) in lightspeed_api::openapi().paths.paths {
        if !template.starts_with("/admin/") {
            continue;
        }
        let path = template
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    "0190f0c2-0000-7000-8000-000000000000"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, documented) in [
            (Method::GET, item.get.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::PATCH, item.patch.is_some()),
            (Method::DELETE, item.delete.is_some()),
        ] {
            if documented {
                operations.push((method, path.clone()));
            }
        }
    }
    operations
}

fn role_token(role: &str, email: &str, app: &TestApp) -> String {
    let now = app.ledger.now().timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": email, "role": role, "iss": "lightspeed", "iat": now, "exp": now + 3600, "jti": "test-token" }),
        &jsonwebtoken::EncodingKey::from_secret(ADMIN_SECRET.as_bytes()),
    )
    .expect("token")
}

#[tokio::test]
async fn every_admin_route_refuses_anything_but_a_valid_allow_listed_admin_token() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let operations = admin_operations();
    assert!(
        operations.len() >= 20,
        "{} admin operations",
        operations.len()
    );
    let now = app.ledger.now();
    let hour = Duration::from_secs(3600);
    let expired = mint_token_at(
        ADMIN_SECRET.as_bytes(),
        ADMIN_EMAIL,
        hour,
        now - TimeDelta::hours(2),
    )
    .expect("token");
    let wrongly_signed = mint_token_at(
        b"another-secret-0123456789abcdef-xyz",
        ADMIN_EMAIL,
        hour,
        now,
    )
    .expect("token");
    let stranger =
        mint_token_at(ADMIN_SECRET.as_bytes(), "eve@example.com", hour, now).expect("token");
    let viewer = role_token("viewer", ADMIN_EMAIL, &app);
    let before = app.event_count().await;

    for (method, path) in &operations {
        let url = format!("{}{path}", app.url);
        let refusals: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
            (
                "no token",
                app.http.request(method.clone(), &url),
                StatusCode::UNAUTHORIZED,
                "ADMIN_TOKEN_MISSING",
            ),
            (
                "expired token",
                app.http.request(method.clone(), &url).bearer_auth(&expired),
                StatusCode::UNAUTHORIZED,
                "ADMIN_TOKEN_EXPIRED",
            ),
            (
                "wrongly signed token",
                app.http
                    .request(method.clone(), &url)
                    .bearer_auth(&wrongly_signed),
                StatusCode::UNAUTHORIZED,
                "ADMIN_TOKEN_INVALID",
            ),
            (
                "garbage token",
                app.http
                    .request(method.clone(), &url)
                    .bearer_auth("not-a-jwt"),
                StatusCode::UNAUTHORIZED,
                "ADMIN_TOKEN_INVALID",
            ),
            (
                "email neither a person nor on the allow-list",
                app.http
                    .request(method.clone(), &url)
                    .bearer_auth(&stranger),
                StatusCode::FORBIDDEN,
                "ADMIN_FORBIDDEN",
            ),
            (
                "role not admin",
                app.http.request(method.clone(), &url).bearer_auth(&viewer),
                StatusCode::FORBIDDEN,
                "ADMIN_FORBIDDEN",
            ),
            (
                "merchant credentials",
                app.signed(&merchant, method.clone(), path, b"{}"),
                StatusCode::UNAUTHORIZED,
                "ADMIN_TOKEN_MISSING",
            ),
        ];
        for (what, request, status, code) in refusals {
            let request = if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
                request
                    .header("content-type", "application/json")
                    .body("{}")
            } else {
                request
            };
            let (got, body) = problem(request.send().await.expect("request")).await;
            assert_eq!(
                (got, body["code"].as_str()),
                (status, Some(code)),
                "{method} {path} with {what}"
            );
        }
    }
    assert_eq!(app.event_count().await, before, "refusals record nothing");
}

async fn merchant_refusal(app: &TestApp, method: Method, path: &str) {
    let response = app
        .http
        .request(method.clone(), format!("{}{path}", app.url))
        .bearer_auth(app.admin_token())
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&payment("ORD-ADMIN", 100)).expect("json"))
        .send()
        .await
        .expect("request");
    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("MISSING_CREDENTIALS")),
        "{method} {path} with an admin token"
    );
}

#[tokio::test]
async fn admin_tokens_never_open_merchant_routes() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let before = app.event_count().await;
    merchant_refusal(&app, Method::POST, "/payment/initiate").await;
    merchant_refusal(
        &app,
        Method::GET,
        "/transaction/0190f0c2-0000-7000-8000-000000000000",
    )
    .await;
    merchant_refusal(&app, Method::GET, "/merchant/whatsapp/usage").await;
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn without_admin_configuration_the_admin_api_is_disabled() {
    let app = TestApp::builder()
        .config(|config| config.admin = None)
        .spawn()
        .await;
    let (status, body) = problem(
        app.admin(Method::GET, "/admin/merchants")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("ADMIN_DISABLED"))
    );
}
