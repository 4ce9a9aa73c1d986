//! Setting a gateway up as a newcomer does, over real HTTP: a sandbox gateway needs no
//! `base_url`, credentials of the wrong shape are refused field by field at registration, and a
//! gateway put to rest by failed PSP calls takes payments again as soon as an admin corrects it
//! or ends its rest (recorded with the admin's name).

use lightspeed_adapters::psp::PspAccount;
use lightspeed_domain::GatewayId;
use lightspeed_domain::gateway::GatewayCommand;
use lightspeed_eventstore::CommandContext;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_EMAIL, EventCount, TestApp, TestMerchant, payment, problem, spawn_app};

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

async fn sandbox_gateway(app: &TestApp, merchant: &TestMerchant) -> GatewayId {
    let (status, body) = register(
        app,
        merchant,
        json!({ "credentials": { "provider": "sandbox", "webhook_secret": SANDBOX_SECRET } }),
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
async fn a_sandbox_gateway_without_base_url_talks_to_this_servers_sandbox() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let gateway_id = sandbox_gateway(&app, &merchant).await;

    let stored = app.ledger.gateway(gateway_id).await.expect("gateway");
    let account = PspAccount::open(&app.keyring, stored.credentials()).expect("opens");
    assert_eq!(
        account.base_url.as_deref(),
        Some(format!("{}/sandbox", app.url).as_str()),
        "PUBLIC_URL/sandbox"
    );
    let (status, check) = problem(
        app.admin(Method::POST, &format!("/admin/gateways/{gateway_id}/test"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(
        (check["reachable"].as_bool(), check["accepted"].as_bool()),
        (Some(true), Some(true)),
        "{check}"
    );

    // Set back to the provider's default, it is this server's sandbox again.
    let (status, body) = problem(
        app.admin_json(
            Method::PATCH,
            &format!("/admin/gateways/{gateway_id}"),
            &json!({ "base_url": null }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored = app.ledger.gateway(gateway_id).await.expect("gateway");
    let account = PspAccount::open(&app.keyring, stored.credentials()).expect("opens");
    assert_eq!(
        account.base_url.as_deref(),
        Some(format!("{}/sandbox", app.url).as_str())
    );
}

#[tokio::test]
async fn credentials_of_the_wrong_shape_are_refused_field_by_field() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let before = app.event_count().await;
    let cases = [
        (
            json!({ "provider": "sandbox", "webhook_secret": "plain-secret" }),
            vec!["credentials.webhook_secret"],
        ),
        (
            json!({ "provider": "razorpay", "key_id": "key_123", "key_secret": "", "webhook_secret": "has space" }),
            vec![
                "credentials.key_id",
                "credentials.key_secret",
                "credentials.webhook_secret",
            ],
        ),
        (
            json!({ "provider": "payu", "key": "", "salt": "salt-0123" }),
            vec!["credentials.key"],
        ),
        (
            json!({ "provider": "cashfree", "client_id": "cf-app", "client_secret": "x".repeat(300) }),
            vec!["credentials.client_secret"],
        ),
        (
            json!({ "provider": "phonepe", "merchant_id": "PGTESTPAYUAT", "salt_key": "salt-key-0123", "salt_index": 0 }),
            vec!["credentials.salt_index"],
        ),
    ];
    for (credentials, fields) in cases {
        let (status, problem) =
            register(&app, &merchant, json!({ "credentials": credentials })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["code"], "INVALID_FIELD", "{problem}");
        assert_eq!(problem["field"], fields[0], "{problem}");
        if fields.len() > 1 {
            let named: Vec<&str> = problem["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .filter_map(|e| e["field"].as_str())
                .collect();
            assert_eq!(named, fields, "{problem}");
        }
        assert!(!problem.to_string().contains("plain-secret"), "{problem}");
        assert!(!problem.to_string().contains("has space"), "{problem}");
    }
    let (_, said) = register(
        &app,
        &merchant,
        json!({ "credentials": { "provider": "sandbox", "webhook_secret": "plain-secret" } }),
    )
    .await;
    assert!(
        said["detail"].as_str().expect("detail").contains("whsec_"),
        "says what the sandbox wants: {said}"
    );
    assert_eq!(app.event_count().await, before, "nothing recorded");

    // A correction is held to the same shapes.
    let gateway_id = sandbox_gateway(&app, &merchant).await;
    let (status, refused) = problem(
        app.admin_json(
            Method::PATCH,
            &format!("/admin/gateways/{gateway_id}"),
            &json!({ "credentials": { "provider": "sandbox", "webhook_secret": "whsec_" } }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("credentials.webhook_secret")
        )
    );
}

/// Puts the gateway to rest as the transaction processor does after a failed PSP call.
async fn rest(app: &TestApp, gateway_id: GatewayId) {
    let command = GatewayCommand::MarkTemporarilyFailed {
        reason: "HTTP 401 from the PSP".into(),
        rest_secs: 300,
        at: app.ledger.now(),
    };
    app.ledger
        .update_gateway(gateway_id, &[command], &CommandContext::default())
        .await
        .expect("rest");
}

async fn initiate_status(app: &TestApp, merchant: &TestMerchant, order: &str) -> StatusCode {
    app.initiate(merchant, &payment(order, 100)).await.status()
}

#[tokio::test]
async fn a_corrected_gateway_or_an_ended_rest_takes_payments_at_once() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let gateway_id = sandbox_gateway(&app, &merchant).await;

    rest(&app, gateway_id).await;
    assert_eq!(
        initiate_status(&app, &merchant, "ORD-1").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (status, body) = problem(
        app.admin_json(
            Method::PATCH,
            &format!("/admin/gateways/{gateway_id}"),
            &json!({ "credentials": { "provider": "sandbox", "webhook_secret": "whsec_Y29ycmVjdGVkLXNlY3JldA==" } }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["temporarily_failed_until"], Value::Null, "{body}");
    assert_eq!(
        initiate_status(&app, &merchant, "ORD-2").await,
        StatusCode::CREATED
    );

    rest(&app, gateway_id).await;
    assert_eq!(
        initiate_status(&app, &merchant, "ORD-3").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (status, body) = problem(
        app.admin(
            Method::POST,
            &format!("/admin/gateways/{gateway_id}/recover"),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["temporarily_failed_until"], Value::Null, "{body}");
    assert_eq!(
        initiate_status(&app, &merchant, "ORD-4").await,
        StatusCode::CREATED
    );

    // The log says who ended the rest.
    app.project().await;
    let (status, log) = problem(
        app.admin(
            Method::GET,
            &format!("/admin/audit-log?action=GatewayRecovered&entity_id={gateway_id}"),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let actors: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|entry| entry["actor"].as_str())
        .collect();
    assert_eq!(actors, vec![ADMIN_EMAIL, ADMIN_EMAIL], "{log}");

    // Unknown or malformed ids are 404s.
    for id in [GatewayId::new().to_string(), "nope".to_owned()] {
        let (status, body) = problem(
            app.admin(Method::POST, &format!("/admin/gateways/{id}/recover"))
                .send()
                .await
                .expect("request"),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("GATEWAY_NOT_FOUND"))
        );
    }
}
