//! Protection at the edge: PSP webhook IP allow-lists (off by default), CORS only for the admin
//! origins, the body limit on admin routes, and key rotation by resealing.

use std::sync::Arc;

use chrono::Utc;
use lightspeed_adapters::merchant_webhook::{WebhookSecret, sign};
use lightspeed_adapters::psp::{PspAccount, PspCredentials, psp_reference};
use lightspeed_adapters::secrets::{Keyring, Secret};
use lightspeed_api::protection::WebhookIpAllowlist;
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::merchant::{ClientKey, Thresholds};
use lightspeed_domain::routing::CheckoutSettings;
use lightspeed_domain::{BasisPoints, GatewayId, ManualClock, MerchantId, PaymentId, Provider};
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_eventstore::{CommandContext, PgEventStore};
use lightspeed_services::{Ledger, NewGateway, NewMerchant};
use reqwest::{Method, StatusCode};
use serde_json::Value;

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

const OLD_KEY: &str = "old:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const NEW_KEY: &str = "new:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

#[tokio::test]
async fn key_rotation_reseals_everything_so_the_old_key_can_be_dropped() {
    let db = TestDatabase::new().await;
    let ledger = Ledger::new(PgEventStore::new(
        db.pool.clone(),
        Arc::new(ManualClock::new(Utc::now())),
    ));
    let old = Keyring::parse(OLD_KEY).expect("old");
    let merchant_id = MerchantId::new();
    ledger
        .onboard_merchant(
            NewMerchant {
                merchant_id,
                company_name: "Acme".into(),
                webhook_url: None,
                whatsapp: None,
                client_key: ClientKey::parse("ck_ROTATIONrotation0123456").expect("key"),
                client_salt: old.seal(b"cs_salt"),
                webhook_secret: old.seal(b"whsec_secret"),
                fee: BasisPoints::DEFAULT_FEE,
                thresholds: Thresholds::default(),
                checkout: CheckoutSettings::default(),
                at: ledger.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("onboard");
    let gateway_id = GatewayId::new();
    let account = PspAccount::test(PspCredentials::Sandbox {
        webhook_secret: Secret::from("whsec_c2FuZGJveA=="),
    });
    ledger
        .register_gateway(
            NewGateway {
                gateway_id,
                merchant_id,
                provider: Provider::Sandbox,
                label: "sandbox".into(),
                credentials: account.seal(&old).expect("seal"),
                settings: GatewaySettings::default(),
                enabled: true,
                at: ledger.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("register");

    let rotating = Keyring::parse(&format!("{NEW_KEY},{OLD_KEY}")).expect("both");
    let report = lightspeed_api::keys::rotate_keys(&ledger, &rotating, "system:keys-rotate")
        .await
        .expect("rotate");
    assert_eq!(
        (report.merchants_resealed, report.gateways_resealed),
        (1, 1)
    );
    assert!(report.failures.is_empty());

    let only_new = Keyring::parse(NEW_KEY).expect("new");
    let fresh = Ledger::new(ledger.store().clone());
    let merchant = fresh.merchant(merchant_id).await.expect("merchant");
    assert_eq!(
        only_new
            .open(merchant.client_salt())
            .expect("salt")
            .expose(),
        b"cs_salt"
    );
    assert_eq!(
        only_new
            .open(merchant.webhook_secret())
            .expect("secret")
            .expose(),
        b"whsec_secret"
    );
    let gateway = fresh.gateway(gateway_id).await.expect("gateway");
    assert!(PspAccount::open(&only_new, gateway.credentials()).is_ok());
    let again = lightspeed_api::keys::rotate_keys(&fresh, &only_new, "system:keys-rotate")
        .await
        .expect("rotate");
    assert_eq!(again.already_current, 2);
}
