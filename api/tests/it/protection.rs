//! Protection at the edge: PSP webhook IP allow-lists (off by default), CORS only for the admin
//! origins, the body limit on admin routes, a merchant's rate across API replicas.

use chrono::TimeDelta;
use futures::future::join_all;
use lightspeed_adapters::merchant_webhook::{WebhookSecret, sign};
use lightspeed_adapters::psp::psp_reference;
use lightspeed_adapters::secrets::Secret;
use lightspeed_api::protection::WebhookIpAllowlist;
use lightspeed_domain::{GatewayId, PaymentId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{EventCount, TestApp, TestMerchant, payment, problem, spawn_app};

/// A sandbox-signed "payment succeeded" webhook for `payment_id`, with extra headers.
async fn post_webhook(
    app: &TestApp,
    merchant: &TestMerchant,
    gateway_id: GatewayId,
    secret: &Secret,
    payment_id: PaymentId,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let reference = psp_reference(payment_id);
    let body = serde_json::json!({
        "type": "payment.succeeded",
        "order_id": format!("sbo_{reference}"),
        "reference": reference,
        "payment_id": "sbp_1",
        "amount": 100,
        "currency": "INR",
        "failure": null,
    })
    .to_string();
    let secret = WebhookSecret::parse(secret.expose_str().expect("utf-8")).expect("secret");
    let signed = sign(
        &secret,
        &[],
        "msg_1",
        app.ledger.now().timestamp(),
        body.as_bytes(),
    );
    let mut request = app
        .http
        .post(format!(
            "{}/webhook/{}/{gateway_id}",
            app.url, merchant.client_key
        ))
        .header("webhook-id", &signed.id)
        .header("webhook-timestamp", signed.timestamp.to_string())
        .header("webhook-signature", &signed.signature)
        .header("content-type", "application/json")
        .body(body);
    if let Some(forwarded) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded);
    }
    request.send().await.expect("request")
}

async fn one_payment(app: &TestApp) -> (TestMerchant, GatewayId, Secret, PaymentId) {
    let merchant = app.merchant().await;
    let (gateway_id, secret) = app.sandbox_gateway(&merchant, 1, None).await;
    let created: Value = app
        .initiate(&merchant, &payment("ORD-1", 100))
        .await
        .json()
        .await
        .expect("json");
    let payment_id = created["transaction_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    (merchant, gateway_id, secret, payment_id)
}

#[tokio::test]
async fn webhooks_from_outside_a_providers_allow_list_are_refused_and_record_nothing() {
    let app = TestApp::builder()
        .config(|config| {
            config.webhook_ip_allowlist =
                WebhookIpAllowlist::parse("sandbox=10.0.0.0/8").expect("spec");
        })
        .spawn()
        .await;
    let (merchant, gateway_id, secret, payment_id) = one_payment(&app).await;
    let before = app.event_count().await;
    let (status, body) =
        problem(post_webhook(&app, &merchant, gateway_id, &secret, payment_id, None).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("WEBHOOK_SOURCE_NOT_ALLOWED"))
    );
    // Without trusted proxies a forwarded address is the caller's claim, not evidence.
    let (status, _) = problem(
        post_webhook(
            &app,
            &merchant,
            gateway_id,
            &secret,
            payment_id,
            Some("10.1.2.3"),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_checked_and_unlisted_providers_are_open() {
    let app = TestApp::builder()
        .config(|config| {
            config.webhook_ip_allowlist =
                WebhookIpAllowlist::parse("sandbox=10.0.0.0/8").expect("spec");
            config.trusted_proxy_hops = 1;
        })
        .spawn()
        .await;
    let (merchant, gateway_id, secret, payment_id) = one_payment(&app).await;
    let (status, body) = problem(
        post_webhook(
            &app,
            &merchant,
            gateway_id,
            &secret,
            payment_id,
            Some("6.6.6.6, 10.1.2.3"),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let open = TestApp::builder()
        .config(|config| {
            config.webhook_ip_allowlist =
                WebhookIpAllowlist::parse("razorpay=published").expect("spec");
        })
        .spawn()
        .await;
    let (merchant, gateway_id, secret, payment_id) = one_payment(&open).await;
    assert_eq!(
        post_webhook(&open, &merchant, gateway_id, &secret, payment_id, None)
            .await
            .status(),
        StatusCode::OK,
        "the sandbox has no allow-list here"
    );
}

#[tokio::test]
async fn cors_answers_only_the_admin_origins_and_only_on_admin_routes() {
    let app = TestApp::builder()
        .config(|config| {
            config.admin_origins =
                lightspeed_api::protection::parse_origins("https://ops.example.com")
                    .expect("origins");
        })
        .spawn()
        .await;
    let preflight = |path: &str, origin: &str| {
        app.http
            .request(Method::OPTIONS, format!("{}{path}", app.url))
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("/admin/merchants", "https://ops.example.com")
        .await
        .expect("request");
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://ops.example.com")
    );
    let evil = preflight("/admin/merchants", "https://evil.example")
        .await
        .expect("request");
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    let merchant_api = preflight("/payment/initiate", "https://ops.example.com")
        .await
        .expect("request");
    assert!(
        merchant_api
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let default = spawn_app().await;
    let none = default
        .http
        .request(Method::OPTIONS, format!("{}/admin/merchants", default.url))
        .header("origin", "https://ops.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("request");
    assert!(none.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn an_admin_body_over_the_limit_is_413_and_records_nothing() {
    let app = TestApp::builder()
        .config(|config| config.body_limit_bytes = 1024)
        .spawn()
        .await;
    let before = app.event_count().await;
    let body = serde_json::json!({ "company_name": "x".repeat(4096) });
    let (status, problem) = problem(
        app.admin_json(Method::POST, "/admin/merchants", &body)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("PAYLOAD_TOO_LARGE"))
    );
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn a_merchants_rate_holds_across_two_api_replicas() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let patched = app
        .admin_json(
            Method::PATCH,
            &format!("/admin/merchants/{}", merchant.id),
            &json!({ "api_rate_per_minute": 10 }),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(patched.status(), StatusCode::OK);
    // 30 at once, alternating between the replicas, on a clock that does not move: a
    // minute's worth (10) goes ahead, wherever it arrives.
    let bodies: Vec<Value> = (0..30).map(|n| payment(&format!("ORD-{n}"), 100)).collect();
    let sends = bodies.iter().enumerate().map(|(n, body)| {
        let url = if n % 2 == 0 { &app.url } else { &replica.url };
        app.initiate_at(url, &merchant, body)
    });
    let statuses: Vec<StatusCode> = join_all(sends).await.iter().map(|r| r.status()).collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((created, limited), (10, 20), "{statuses:?}");
    // One request every 6 s at 10 a minute: 6 s later, one more, on either replica.
    app.clock.advance(TimeDelta::seconds(6));
    let next = app
        .initiate_at(&replica.url, &merchant, &payment("ORD-30", 100))
        .await;
    assert_eq!(next.status(), StatusCode::CREATED);
    let refused = app.initiate(&merchant, &payment("ORD-31", 100)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(problem(refused).await.1["code"], "RATE_LIMITED");
}
