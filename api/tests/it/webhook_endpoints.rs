//! Webhook endpoints, the delivery log, test events and resends, over real PostgreSQL and
//! JetStream, with the relay and the merchant-webhooks queue running and fake merchant
//! endpoints on 127.0.0.1 (an axum server recording what it receives).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use lightspeed_adapters::merchant_webhook::{WebhookSecret, verify};
use lightspeed_workers::QueueName;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

/// A merchant endpoint on loopback: records every POST and answers `status`.
#[derive(Clone, Default)]
struct FakeEndpoint {
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    status: Arc<AtomicU16>,
    url: String,
}

impl FakeEndpoint {
    async fn start(status: u16) -> FakeEndpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
        let endpoint = FakeEndpoint {
            url,
            status: Arc::new(AtomicU16::new(status)),
            ..FakeEndpoint::default()
        };
        let state = endpoint.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    state.received.lock().expect("lock").push((headers, body));
                    let status = state.status.load(Ordering::SeqCst);
                    (
                        StatusCode::from_u16(status).expect("status"),
                        "endpoint says hi",
                    )
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        endpoint
    }

    fn received(&self) -> Vec<(HeaderMap, Bytes)> {
        self.received.lock().expect("lock").clone()
    }

    fn types(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|(_, body)| {
                let body: Value = serde_json::from_slice(body).expect("json");
                body["type"].as_str().expect("type").to_owned()
            })
            .collect()
    }
}

/// The app with the relay and the merchant-webhooks queue running until dropped.
struct Running {
    app: TestApp,
    _relay: tokio::task::JoinHandle<()>,
    _worker: Worker,
}

impl Drop for Running {
    fn drop(&mut self) {
        self._relay.abort();
    }
}

async fn running() -> Running {
    let app = spawn_app().await;
    let relay = app.nats.spawn_relay(app.ledger.store());
    let worker = worker(&app, QueueName::MerchantWebhooks);
    Running {
        app,
        _relay: relay,
        _worker: worker,
    }
}

async fn call(
    app: &TestApp,
    merchant: &TestMerchant,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let response = app
        .signed(merchant, method, path, &bytes)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn add_endpoint(
    app: &TestApp,
    merchant: &TestMerchant,
    url: &str,
    event_types: &[&str],
) -> (String, String) {
    let (status, created) = call(
        app,
        merchant,
        Method::POST,
        "/webhook-endpoints",
        Some(json!({ "url": url, "description": "test", "event_types": event_types })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["endpoint"]["id"].as_str().expect("id").to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    (id, secret)
}

fn verifies(app: &TestApp, secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let secret = WebhookSecret::parse(secret).expect("whsec");
    verify(&secret, headers, body, app.ledger.now()).is_ok()
}

#[tokio::test]
async fn two_endpoints_receive_exactly_the_events_their_filters_name_signed_with_their_own_secrets()
{
    let world = running().await;
    let app = &world.app;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let created_hooks = FakeEndpoint::start(200).await;
    let success_hooks = FakeEndpoint::start(200).await;
    let (_, created_secret) =
        add_endpoint(app, &merchant, &created_hooks.url, &["payment.created"]).await;
    let (success_id, success_secret) =
        add_endpoint(app, &merchant, &success_hooks.url, &["payment.*"]).await;
    let (_, only_success) = call(
        app,
        &merchant,
        Method::PATCH,
        &format!("/webhook-endpoints/{success_id}"),
        Some(json!({ "event_types": ["payment.succeeded"] })),
    )
    .await;
    assert_eq!(only_success["event_types"], json!(["payment.succeeded"]));

    let payment_id = initiate(app, &merchant, "ORD-FILTERS", 49_900).await;
    settle_success(app, merchant.id, payment_id).await;
    wait_for("both endpoints served", || async {
        (created_hooks.received().len() == 1 && success_hooks.received().len() == 1).then_some(())
    })
    .await;
    assert_eq!(created_hooks.types(), vec!["payment.created"]);
    assert_eq!(success_hooks.types(), vec!["payment.succeeded"]);
    let (headers, body) = &created_hooks.received()[0];
    assert!(verifies(app, &created_secret, headers, body));
    assert!(!verifies(app, &success_secret, headers, body));
    let (headers, body) = &success_hooks.received()[0];
    assert!(verifies(app, &success_secret, headers, body));

    // The log holds one delivery per matching endpoint and nothing else.
    app.project().await;
    let (status, page) = call(app, &merchant, Method::GET, "/webhook-deliveries", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"].as_array().expect("data").len(), 2);
    let (_, succeeded) = call(
        app,
        &merchant,
        Method::GET,
        &format!("/webhook-deliveries?endpoint_id={success_id}"),
        None,
    )
    .await;
    assert_eq!(succeeded["data"][0]["event_type"], "payment.succeeded");
    assert_eq!(succeeded["data"].as_array().expect("data").len(), 1);
}

#[tokio::test]
async fn the_original_webhook_url_is_the_first_endpoint_and_keeps_receiving() {
    let world = running().await;
    let app = &world.app;
    let hooks = FakeEndpoint::start(200).await;
    let merchant = app
        .merchant_with(MerchantSettings {
            webhook_url: Some(hooks.url.clone()),
            ..MerchantSettings::default()
        })
        .await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let (status, endpoints) = call(app, &merchant, Method::GET, "/webhook-endpoints", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(endpoints[0]["id"], merchant.id.to_string());
    assert_eq!(endpoints[0]["url"], hooks.url);
    assert_eq!(endpoints[0]["event_types"], json!(["*"]));

    initiate(app, &merchant, "ORD-FIRST", 10_000).await;
    wait_for("the first endpoint served", || async {
        (!hooks.received().is_empty()).then_some(())
    })
    .await;
    let (headers, body) = &hooks.received()[0];
    let secret = merchant.webhook_secret.expose_str().expect("text");
    assert!(verifies(app, secret, headers, body));
    assert_eq!(hooks.types(), vec!["payment.created"]);
}

#[tokio::test]
async fn a_rotated_secret_and_the_previous_one_both_sign_a_test_event_during_the_grace() {
    let world = running().await;
    let app = &world.app;
    let merchant = app.merchant().await;
    let hooks = FakeEndpoint::start(200).await;
    let (id, old_secret) = add_endpoint(app, &merchant, &hooks.url, &["*"]).await;
    let (status, rotated) = call(
        app,
        &merchant,
        Method::POST,
        &format!("/webhook-endpoints/{id}/secret/rotate"),
        Some(json!({ "grace_secs": 3600 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, old_secret);

    let (status, attempt) = call(
        app,
        &merchant,
        Method::POST,
        &format!("/webhook-endpoints/{id}/test"),
        Some(json!({ "event_type": "refund.succeeded" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{attempt}");
    assert_eq!(attempt["delivered"], true);
    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["response_excerpt"], "endpoint says hi");
    let (headers, body) = &hooks.received()[0];
    assert_eq!(hooks.types(), vec!["refund.succeeded"]);
    assert!(verifies(app, &new_secret, headers, body));
    assert!(verifies(app, &old_secret, headers, body));

    // The test delivery is in the log like any other, with its attempt.
    app.project().await;
    let delivery_id = attempt["delivery_id"].as_str().expect("id");
    let (status, detail) = call(
        app,
        &merchant,
        Method::GET,
        &format!("/webhook-deliveries/{delivery_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["delivery"]["status"], "delivered");
    assert_eq!(detail["attempts"][0]["status_code"], 200);
    assert_eq!(detail["payload"]["test"], true);
}

#[tokio::test]
async fn a_failed_attempt_is_listed_with_its_attempts_and_only_a_given_up_one_is_resent() {
    let world = running().await;
    let app = &world.app;
    let merchant = app.merchant().await;
    let other = app.merchant().await;
    let hooks = FakeEndpoint::start(500).await;
    let (id, _) = add_endpoint(app, &merchant, &hooks.url, &["*"]).await;
    let (_, attempt) = call(
        app,
        &merchant,
        Method::POST,
        &format!("/webhook-endpoints/{id}/test"),
        Some(json!({ "event_type": "payment.failed" })),
    )
    .await;
    assert_eq!(attempt["delivered"], false);
    assert_eq!(attempt["status_code"], 500);
    let delivery_id = attempt["delivery_id"].as_str().expect("id").to_owned();

    app.project().await;
    let (_, page) = call(
        app,
        &merchant,
        Method::GET,
        "/webhook-deliveries?status=pending&event_type=payment.failed&limit=1",
        None,
    )
    .await;
    assert_eq!(page["data"][0]["id"], delivery_id);
    assert_eq!(page["data"][0]["last_status_code"], 500);
    let resend = format!("/webhook-deliveries/{delivery_id}/resend");
    let (status, refused) = call(app, &merchant, Method::POST, &resend, None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["code"], "DELIVERY_NOT_RESENDABLE");

    // Another merchant sees none of it.
    let detail = format!("/webhook-deliveries/{delivery_id}");
    let (status, foreign) = call(app, &other, Method::GET, &detail, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(foreign["code"], "WEBHOOK_DELIVERY_NOT_FOUND");
    let (status, _) = call(app, &other, Method::POST, &resend, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let endpoint = format!("/webhook-endpoints/{id}");
    let (status, foreign) = call(app, &other, Method::GET, &endpoint, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(foreign["code"], "WEBHOOK_ENDPOINT_NOT_FOUND");
    let (status, _) = call(app, &other, Method::DELETE, &endpoint, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn limits_bad_filters_and_internal_addresses_are_refused_with_stable_codes() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let refused = |url: &'static str, event_types: Value| {
        let app = &app;
        let merchant = &merchant;
        async move {
            let body = json!({ "url": url, "event_types": event_types });
            call(
                app,
                merchant,
                Method::POST,
                "/webhook-endpoints",
                Some(body),
            )
            .await
        }
    };
    for url in [
        "https://10.0.0.1/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00:ec2::254]/latest",
        "https://100.64.0.1/hooks",
        "ftp://acme.example/hooks",
    ] {
        let (status, problem) = refused(url, json!(["*"])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert_eq!(problem["code"], "INVALID_WEBHOOK_URL", "{url}");
    }
    let (status, problem) = refused("http://127.0.0.1:9/hooks", json!(["payment.paid"])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "INVALID_EVENT_FILTER");
    for n in 0..10 {
        let url = format!("http://127.0.0.1:9/hooks/{n}");
        add_endpoint(&app, &merchant, &url, &["*"]).await;
    }
    let (status, problem) = refused("http://127.0.0.1:9/hooks/11", json!(["*"])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "TOO_MANY_WEBHOOK_ENDPOINTS");

    // Admins see and manage any merchant's endpoints.
    let listed = app
        .admin(
            Method::GET,
            &format!("/admin/merchants/{}/webhook-endpoints", merchant.id),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: Value = listed.json().await.expect("json");
    assert_eq!(listed.as_array().expect("list").len(), 10);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_without_the_development_setting() {
    let app = TestApp::builder()
        .config(|config| config.webhook_targets.allow_loopback_http = false)
        .spawn()
        .await;
    let merchant = app.merchant().await;
    for url in ["https://localhost:8443/hooks", "http://203.0.113.7/hooks"] {
        let body = json!({ "url": url });
        let (status, problem) = call(
            &app,
            &merchant,
            Method::POST,
            "/webhook-endpoints",
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert_eq!(problem["code"], "INVALID_WEBHOOK_URL", "{url}");
    }
}

/// The delivery as the log has it now.
async fn delivery_state(
    app: &TestApp,
    delivery_id: lightspeed_domain::WebhookDeliveryId,
) -> lightspeed_domain::WebhookDelivery {
    use lightspeed_eventstore::{CommandHandler, PgEventStore, stream_of};
    let handler = CommandHandler::<lightspeed_domain::WebhookDelivery, PgEventStore>::new(
        app.ledger.store().clone(),
    );
    let stream = stream_of::<lightspeed_domain::WebhookDelivery>(delivery_id).expect("stream");
    handler
        .load(&stream)
        .await
        .expect("load")
        .state
        .expect("delivery")
}

#[tokio::test]
async fn a_given_up_delivery_is_resent_and_delivered_once_the_endpoint_recovers() {
    use lightspeed_domain::webhook_delivery::WebhookDeliveryStatus;
    let world = running().await;
    let app = &world.app;
    let merchant = app.merchant().await;
    let hooks = FakeEndpoint::start(503).await;
    let (id, secret) = add_endpoint(app, &merchant, &hooks.url, &["*"]).await;
    let (_, attempt) = call(
        app,
        &merchant,
        Method::POST,
        &format!("/webhook-endpoints/{id}/test"),
        Some(json!({ "event_type": "payment.succeeded" })),
    )
    .await;
    let delivery_id = attempt["delivery_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");

    // Every retry is due within 12 hours (10 h + 20 % jitter) of the one before; 8 attempts in
    // all, within the 5 days after which a failing endpoint is disabled.
    let mut seen = 1;
    while delivery_state(app, delivery_id).await.status() != WebhookDeliveryStatus::GivenUp {
        app.clock.advance(chrono::Duration::hours(13));
        seen = wait_for("the next attempt", || async {
            let attempts = delivery_state(app, delivery_id).await.attempts();
            (attempts > seen).then_some(attempts)
        })
        .await;
    }
    assert_eq!(seen, 8);

    hooks.status.store(200, Ordering::SeqCst);
    let resend = format!("/webhook-deliveries/{delivery_id}/resend");
    let (status, resent) = call(app, &merchant, Method::POST, &resend, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{resent}");
    let delivered = wait_for("the resent delivery delivered", || async {
        let delivery = delivery_state(app, delivery_id).await;
        (delivery.status() == WebhookDeliveryStatus::Delivered).then_some(delivery)
    })
    .await;
    assert_eq!(delivered.attempts(), 1);
    assert_eq!(hooks.received().len(), 9);
    let (headers, body) = hooks.received().pop().expect("the resent attempt");
    assert!(verifies(app, &secret, &headers, &body));
}

/// An admin request with a JSON body (or none); answers the status and the JSON body.
async fn admin_call(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = match body {
        Some(body) => app.admin_json(method, path, &body),
        None => app.admin(method, path),
    };
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Verifies a received delivery with the `standardwebhooks` crate, the Standard Webhooks
/// reference library (it reads the system clock, which the app's clock starts at).
fn standard_library_verifies(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let webhook = standardwebhooks::Webhook::new(secret).expect("a whsec_ secret");
    webhook.verify(body, headers).is_ok()
}

#[tokio::test]
async fn an_admin_adds_changes_tests_rotates_and_resends_for_a_merchant() {
    use lightspeed_domain::webhook_delivery::WebhookDeliveryStatus;
    let world = running().await;
    let app = &world.app;
    let merchant = app.merchant().await;
    let hooks = FakeEndpoint::start(200).await;
    let base = format!("/admin/merchants/{}/webhook-endpoints", merchant.id);
    let body = json!({ "url": hooks.url, "description": "ops", "event_types": ["payment.*"] });
    let (status, created) = admin_call(app, Method::POST, &base, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["endpoint"]["id"].as_str().expect("id").to_owned();
    let first_secret = created["secret"].as_str().expect("secret").to_owned();
    let endpoint = format!("{base}/{id}");
    let change = json!({ "description": "all events", "event_types": ["refund.*"] });
    let (status, changed) = admin_call(app, Method::PATCH, &endpoint, Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["event_types"], json!(["refund.*"]));
    let (_, listed) = call(app, &merchant, Method::GET, "/webhook-endpoints", None).await;
    assert_eq!(
        listed[0]["description"], "all events",
        "the merchant sees it"
    );

    let test = format!("{endpoint}/test");
    let event = json!({ "event_type": "refund.succeeded" });
    let (status, attempt) = admin_call(app, Method::POST, &test, Some(event.clone())).await;
    assert_eq!(
        (status, &attempt["delivered"]),
        (StatusCode::OK, &json!(true))
    );
    let (headers, body) = &hooks.received()[0];
    assert!(verifies(app, &first_secret, headers, body));
    assert!(standard_library_verifies(&first_secret, headers, body));
    let stranger = lightspeed_adapters::secrets::generate_webhook_secret();
    let stranger = stranger.expose_str().expect("text");
    assert!(!standard_library_verifies(stranger, headers, body));

    // A failing delivery is given up after its 8 attempts, then resent once the endpoint is
    // back, signed with the secret rotated meanwhile.
    hooks.status.store(503, Ordering::SeqCst);
    let (_, attempt) = admin_call(app, Method::POST, &test, Some(event)).await;
    assert_eq!(attempt["delivered"], false);
    let delivery_id = attempt["delivery_id"].as_str().expect("id").to_owned();
    let id_of_delivery = delivery_id.parse().expect("uuid");
    let mut seen = 1;
    while delivery_state(app, id_of_delivery).await.status() != WebhookDeliveryStatus::GivenUp {
        app.clock.advance(chrono::Duration::hours(13));
        seen = wait_for("the next attempt", || async {
            let attempts = delivery_state(app, id_of_delivery).await.attempts();
            (attempts > seen).then_some(attempts)
        })
        .await;
    }
    let rotate = format!("{endpoint}/secret/rotate");
    let grace = json!({ "grace_secs": 0 });
    let (status, rotated) = admin_call(app, Method::POST, &rotate, Some(grace)).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().expect("secret").to_owned();
    hooks.status.store(200, Ordering::SeqCst);
    let deliveries = format!("/admin/merchants/{}/webhook-deliveries", merchant.id);
    let resend = format!("{deliveries}/{delivery_id}/resend");
    let (status, resent) = admin_call(app, Method::POST, &resend, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{resent}");
    wait_for("the resent delivery delivered", || async {
        let delivery = delivery_state(app, id_of_delivery).await;
        (delivery.status() == WebhookDeliveryStatus::Delivered).then_some(())
    })
    .await;
    let (headers, body) = hooks.received().pop().expect("the resent attempt");
    assert!(verifies(app, &new_secret, &headers, &body));
    assert!(!verifies(app, &first_secret, &headers, &body));

    app.project().await;
    let (status, detail) = admin_call(
        app,
        Method::GET,
        &format!("{deliveries}/{delivery_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["delivery"]["status"], "delivered");
    let (status, _) = admin_call(app, Method::DELETE, &endpoint, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = admin_call(app, Method::GET, &endpoint, None).await;
    assert_eq!(
        (status, &gone["code"]),
        (StatusCode::NOT_FOUND, &json!("WEBHOOK_ENDPOINT_NOT_FOUND"))
    );
}

#[tokio::test]
async fn the_admin_endpoint_routes_refuse_without_a_valid_admin_token() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (id, _) = add_endpoint(&app, &merchant, "http://127.0.0.1:9/hooks", &["*"]).await;
    let base = format!("/admin/merchants/{}/webhook-endpoints", merchant.id);
    let deliveries = format!("/admin/merchants/{}/webhook-deliveries", merchant.id);
    let delivery = format!("{deliveries}/{}", uuid::Uuid::now_v7());
    let routes = [
        (Method::GET, base.clone()),
        (Method::POST, base.clone()),
        (Method::GET, format!("{base}/{id}")),
        (Method::PATCH, format!("{base}/{id}")),
        (Method::DELETE, format!("{base}/{id}")),
        (Method::POST, format!("{base}/{id}/secret/rotate")),
        (Method::POST, format!("{base}/{id}/test")),
        (Method::GET, deliveries),
        (Method::GET, delivery.clone()),
        (Method::POST, format!("{delivery}/resend")),
    ];
    let before = app.event_count().await;
    for (method, path) in routes {
        let url = format!("{}{path}", app.url);
        for (what, request) in [
            ("no token", app.http.request(method.clone(), &url)),
            (
                "a token signed with another secret",
                app.http.request(method.clone(), &url).bearer_auth(
                    lightspeed_api::admin_auth::mint_token_at(
                        b"not-the-admin-secret-0123456789abcdef",
                        lightspeed_api::testing::ADMIN_EMAIL,
                        std::time::Duration::from_secs(3600),
                        app.ledger.now(),
                    )
                    .expect("token"),
                ),
            ),
            (
                "merchant credentials",
                app.signed(&merchant, method.clone(), &path, b"{}"),
            ),
        ] {
            let response = request
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("request");
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path}: {what}"
            );
            let content_type = response.headers()["content-type"]
                .to_str()
                .expect("text")
                .to_owned();
            assert_eq!(
                content_type, "application/problem+json",
                "{method} {path}: {what}"
            );
            let problem: Value = response.json().await.expect("problem");
            assert!(
                problem["code"]
                    .as_str()
                    .is_some_and(|code| code.starts_with("ADMIN_TOKEN_")),
                "{method} {path}: {what}: {problem}"
            );
        }
    }
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn the_delivery_log_narrows_by_time_and_names_a_bad_instant() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let hooks = FakeEndpoint::start(200).await;
    let (id, _) = add_endpoint(&app, &merchant, &hooks.url, &["*"]).await;
    let send = |event_type: &'static str| {
        let (app, merchant, path) = (&app, &merchant, format!("/webhook-endpoints/{id}/test"));
        async move {
            let body = json!({ "event_type": event_type });
            let (_, attempt) = call(app, merchant, Method::POST, &path, Some(body)).await;
            attempt["delivery_id"].as_str().expect("id").to_owned()
        }
    };
    let early = send("payment.created").await;
    app.clock.advance(chrono::Duration::hours(1));
    let between = app.ledger.now() - chrono::Duration::minutes(30);
    let late = send("payment.succeeded").await;
    app.project().await;
    let instant = between.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let listed = |query: String| {
        let app = &app;
        let merchant = &merchant;
        async move {
            let path = format!("/webhook-deliveries{query}");
            let (status, page) = call(app, merchant, Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{query}: {page}");
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|row| row["id"].as_str().expect("id").to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(String::new()).await,
        vec![late.clone(), early.clone()]
    );
    assert_eq!(listed(format!("?from={instant}")).await, vec![late]);
    assert_eq!(listed(format!("?to={instant}")).await, vec![early]);
    let past =
        (between - chrono::Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(listed(format!("?from={past}&to={past}")).await.is_empty());

    for field in ["from", "to"] {
        let path = format!("/webhook-deliveries?{field}=yesterday");
        let (status, problem) = call(&app, &merchant, Method::GET, &path, None).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {problem}"
        );
        assert_eq!(problem["code"], "INVALID_FIELD", "{field}: {problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
}

#[tokio::test]
async fn a_test_delivery_is_marked_and_reports_on_no_transaction() {
    let world = running().await;
    let app = &world.app;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let hooks = FakeEndpoint::start(200).await;
    let (id, _) = add_endpoint(app, &merchant, &hooks.url, &["*"]).await;
    let payment_id = initiate(app, &merchant, "ORD-REAL", 10_000).await;
    wait_for("the real delivery", || async {
        (!hooks.received().is_empty()).then_some(())
    })
    .await;
    let path = format!("/webhook-endpoints/{id}/test");
    let body = json!({ "event_type": "payment.created" });
    let (_, attempt) = call(app, &merchant, Method::POST, &path, Some(body)).await;
    let test_delivery = attempt["delivery_id"].as_str().expect("id").to_owned();
    app.project().await;

    let detail = format!("/transactions/{payment_id}");
    let (status, transaction) = call(app, &merchant, Method::GET, &detail, None).await;
    assert_eq!(status, StatusCode::OK, "{transaction}");
    let deliveries = transaction["webhook_deliveries"].as_array().expect("list");
    assert_eq!(deliveries.len(), 1, "{transaction}");
    assert_ne!(deliveries[0]["delivery_id"], test_delivery.as_str());
    let path = format!("/webhook-deliveries/{test_delivery}");
    let (_, delivery) = call(app, &merchant, Method::GET, &path, None).await;
    assert_eq!(delivery["payload"]["test"], true);
    assert_eq!(delivery["delivery"]["test"], true);
    assert_eq!(delivery["delivery"]["transaction_id"], Value::Null);
    let (_, listed) = call(app, &merchant, Method::GET, "/webhook-deliveries", None).await;
    let marks: Vec<(&Value, &Value)> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|row| (&row["test"], &row["transaction_id"]))
        .collect();
    let real = json!(payment_id.to_string());
    assert_eq!(
        marks,
        vec![(&json!(true), &Value::Null), (&json!(false), &real)]
    );
}
