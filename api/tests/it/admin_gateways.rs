//! Gateway administration over real HTTP: registration seals the credentials and never shows
//! them, the credential check calls the PSP, toggles and bulk priorities take effect at once and
//! atomically, retirement is final.

use lightspeed_adapters::psp::{PspAccount, PspCredentials};
use lightspeed_domain::GatewayId;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{EventCount, TestApp, TestMerchant, payment, problem, spawn_app};

const SANDBOX_SECRET: &str = "whsec_c2FuZGJveC1zZWNyZXQtZm9yLXRlc3Rz";

async fn register(app: &TestApp, merchant: &TestMerchant, body: Value) -> (StatusCode, Value) {
    let mut body = body;
    body["merchant_id"] = json!(merchant.id.to_string());
    problem(
        app.admin_json(Method::POST, "/admin/gateways", &body)
            .send()
            .await
            .expect("request"),
    )
    .await
}

async fn sandbox_gateway(app: &TestApp, merchant: &TestMerchant, priority: u16) -> GatewayId {
    let (status, body) = register(
        app,
        merchant,
        json!({
            "credentials": { "provider": "sandbox", "webhook_secret": SANDBOX_SECRET },
            "base_url": format!("{}/sandbox", app.url),
            "label": format!("sandbox {priority}"),
            "priority": priority,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["gateway_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid")
}

#[tokio::test]
async fn a_registered_gateway_keeps_its_credentials_sealed_and_passes_its_check() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (status, body) = register(
        &app,
        &merchant,
        json!({
            "credentials": { "provider": "sandbox", "webhook_secret": SANDBOX_SECRET },
            "base_url": format!("{}/sandbox", app.url),
            "priority": 3,
            "monthly_limit_paise": 10_000_000,
            "rpm_cap": 60,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(!body.to_string().contains(SANDBOX_SECRET));
    assert_eq!(body["provider"], "sandbox");
    assert_eq!(body["label"], "sandbox gateway");
    assert_eq!(body["credentials_key_id"], "test-key");
    let gateway_id: GatewayId = body["gateway_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");

    let stored = app.ledger.gateway(gateway_id).await.expect("gateway");
    let account = PspAccount::open(&app.keyring, stored.credentials()).expect("opens");
    assert!(matches!(
        account.credentials,
        PspCredentials::Sandbox { ref webhook_secret } if webhook_secret.expose() == SANDBOX_SECRET.as_bytes()
    ));
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM ledger.events")
        .fetch_all(&app.db.pool)
        .await
        .expect("payloads");
    assert!(payloads.iter().all(|p| !p.contains(SANDBOX_SECRET)));

    let (status, check) = problem(
        app.admin(Method::POST, &format!("/admin/gateways/{gateway_id}/test"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["reachable"], true);
    assert_eq!(check["accepted"], true, "{check}");
    // The sandbox answers its harmless call (an order that does not exist) with 404.
    assert_eq!(check["status"], 404);
    assert!(check["latency_ms"].is_u64());

    assert_eq!(
        app.initiate(&merchant, &payment("ORD-1", 100))
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn an_unreachable_psp_is_reported_as_the_checks_result() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (status, body) = register(
        &app,
        &merchant,
        json!({
            "credentials": { "provider": "sandbox", "webhook_secret": SANDBOX_SECRET },
            "base_url": "http://127.0.0.1:9",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, down) = problem(
        app.admin(
            Method::POST,
            &format!(
                "/admin/gateways/{}/test",
                body["gateway_id"].as_str().expect("id")
            ),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (down["reachable"].as_bool(), down["accepted"].as_bool()),
        (Some(false), Some(false))
    );
    assert!(down["error"].is_string());
    assert!(!down.to_string().contains(SANDBOX_SECRET));
}

#[tokio::test]
async fn bad_registrations_are_refused_and_record_nothing() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let before = app.event_count().await;
    for (body, expected) in [
        (
            json!({ "credentials": { "provider": "stripe", "key": "x" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "credentials": { "provider": "payu", "key": "k" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "credentials": { "provider": "sandbox", "webhook_secret": SANDBOX_SECRET, "extra": 1 } }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "credentials": { "provider": "sandbox", "webhook_secret": SANDBOX_SECRET }, "rpm_cap": 0 }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "credentials": { "provider": "sandbox", "webhook_secret": SANDBOX_SECRET }, "base_url": "file:///etc" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "credentials": { "provider": "sandbox", "webhook_secret": SANDBOX_SECRET }, "monthly_limit_paise": -5 }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, problem) = register(&app, &merchant, body.clone()).await;
        assert_eq!(status, expected, "{body} -> {problem}");
        assert!(!problem.to_string().contains(SANDBOX_SECRET), "{problem}");
    }
    let (status, problem) = problem(
        app.admin_json(
            Method::POST,
            "/admin/gateways",
            &json!({
                "merchant_id": uuid::Uuid::now_v7(),
                "credentials": { "provider": "sandbox", "webhook_secret": SANDBOX_SECRET },
            }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("MERCHANT_NOT_FOUND"))
    );
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn toggles_priorities_edits_and_retirement_take_effect_at_once() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let first = sandbox_gateway(&app, &merchant, 1).await;
    let second = sandbox_gateway(&app, &merchant, 2).await;

    // Off: the next payment avoids it; both off: no gateway.
    for (id, enabled) in [(second, false), (first, false)] {
        let (status, body) = problem(
            app.admin_json(
                Method::PATCH,
                &format!("/admin/gateways/{id}/toggle"),
                &json!({ "enabled": enabled }),
            )
            .send()
            .await
            .expect("request"),
        )
        .await;
        assert_eq!(
            (status, body["enabled"].as_bool()),
            (StatusCode::OK, Some(enabled))
        );
    }
    assert_eq!(
        app.initiate(&merchant, &payment("ORD-1", 100))
            .await
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    app.admin_json(
        Method::PATCH,
        &format!("/admin/gateways/{first}/toggle"),
        &json!({ "enabled": true }),
    )
    .send()
    .await
    .expect("request");
    app.admin_json(
        Method::PATCH,
        &format!("/admin/gateways/{second}/toggle"),
        &json!({ "enabled": true }),
    )
    .send()
    .await
    .expect("request");

    // Bulk priority: atomic, unknown or duplicate ids change nothing.
    let before = app.event_count().await;
    for (body, status) in [
        (
            json!({ "priorities": [{ "gateway_id": first, "priority": 9 }, { "gateway_id": GatewayId::new(), "priority": 1 }] }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "priorities": [{ "gateway_id": first, "priority": 9 }, { "gateway_id": first, "priority": 1 }] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "priorities": [] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (got, problem) = problem(
            app.admin_json(Method::PUT, "/admin/gateways/priority", &body)
                .send()
                .await
                .expect("request"),
        )
        .await;
        assert_eq!(got, status, "{body} -> {problem}");
    }
    assert_eq!(app.event_count().await, before);
    let (status, body) = problem(
        app.admin_json(
            Method::PUT,
            "/admin/gateways/priority",
            &json!({ "priorities": [{ "gateway_id": first, "priority": 9 }, { "gateway_id": second, "priority": 4 }] }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body[0]["priority"].as_u64(), body[1]["priority"].as_u64()),
        (Some(9), Some(4))
    );
    let created: Value = app
        .initiate(&merchant, &payment("ORD-2", 100))
        .await
        .json()
        .await
        .expect("json");
    let payment_id = created["transaction_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let routed = app
        .ledger
        .payment_of(merchant.id, payment_id)
        .await
        .expect("payment");
    assert_eq!(routed.gateway_id(), first, "the highest priority takes it");

    // Edits: nullable fields, provider checked, base URL checked.
    let patch = |body: Value| {
        app.admin_json(Method::PATCH, &format!("/admin/gateways/{second}"), &body)
            .send()
    };
    let (status, body) = problem(
        patch(json!({ "label": "backup", "rpm_cap": 5, "monthly_limit_paise": null }))
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["label"].as_str(), body["rpm_cap"].as_u64()),
        (Some("backup"), Some(5))
    );
    let (status, _) = problem(
        patch(json!({ "credentials": { "provider": "payu", "key": "k", "salt": "s" } }))
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = problem(
        patch(json!({ "credentials": { "provider": "sandbox", "webhook_secret": "whsec_bmV3LXNlY3JldA==" } }))
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.to_string().contains("whsec_bmV3"));
    let rotated = app.ledger.gateway(second).await.expect("gateway");
    let account = PspAccount::open(&app.keyring, rotated.credentials()).expect("opens");
    assert_eq!(
        account.base_url.as_deref(),
        Some(format!("{}/sandbox", app.url).as_str()),
        "kept"
    );

    // Retired: final.
    let (status, body) = problem(
        app.admin(
            Method::DELETE,
            &format!("/admin/gateways/{second}?reason=closed%20account"),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(
        (status, body["retired"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (status, body) = problem(patch(json!({ "label": "again" })).await.expect("request")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("GATEWAY_RETIRED"))
    );
    let merchant_state = app.ledger.merchant(merchant.id).await.expect("merchant");
    assert!(!merchant_state.active_gateways().contains(&second));
}
