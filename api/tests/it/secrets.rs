//! Secrets in clear appear nowhere but in the one-time answers that hand them out: not in any
//! other API answer, not in any log line, not in any stored event, not in any read model.
//!
//! It installs the process-wide log subscriber that captures every line the API, the ledger and
//! the clients write (at DEBUG); the other API tests of this binary running meanwhile write
//! there too, so their lines are scanned as well.

use std::sync::{Arc, Mutex};

use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::psp::{Customer, OrderRequest, PspAccount, PspClient};
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, ReportOutcome};
use lightspeed_domain::{GatewayId, PaymentId};
use lightspeed_eventstore::CommandContext;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;

use crate::common::{ADMIN_SECRET, TestApp, TestMerchant, payment, spawn_app};

/// Every log line written, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// What the test saw: every answer, and the secrets each one may legitimately show.
#[derive(Default)]
struct Seen {
    answers: Vec<(String, String, Vec<String>)>,
    secrets: Vec<String>,
}

impl Seen {
    fn secret(&mut self, secret: &str) {
        assert!(
            secret.len() >= 16,
            "a secret long enough not to match by chance"
        );
        self.secrets.push(secret.to_owned());
    }

    async fn answer(&mut self, what: &str, response: reqwest::Response, shows: &[&str]) -> Value {
        let text = response.text().await.expect("text");
        self.answers.push((
            what.to_owned(),
            text.clone(),
            shows.iter().map(|s| (*s).to_owned()).collect(),
        ));
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

async fn onboard(app: &TestApp, seen: &mut Seen, name: &str) -> TestMerchant {
    let response = app
        .admin_json(
            Method::POST,
            "/admin/merchants",
            &json!({ "company_name": name, "webhook_url": "https://acme.example/hooks" }),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let text = response.text().await.expect("text");
    let body: Value = serde_json::from_str(&text).expect("json");
    let salt = body["client_salt"].as_str().expect("salt").to_owned();
    let webhook_secret = body["webhook_secret"].as_str().expect("secret").to_owned();
    seen.secret(&salt);
    seen.secret(&webhook_secret);
    seen.answers.push((
        format!("onboarding {name}"),
        text,
        vec![salt, webhook_secret],
    ));
    TestMerchant::from_onboarded(&body)
}

async fn gateway(
    app: &TestApp,
    seen: &mut Seen,
    merchant: &TestMerchant,
    credentials: Value,
    base_url: &str,
) -> GatewayId {
    let response = app
        .admin_json(
            Method::POST,
            "/admin/gateways",
            &json!({ "merchant_id": merchant.id, "credentials": credentials, "base_url": base_url }),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = seen.answer("gateway registration", response, &[]).await;
    body["gateway_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid")
}

/// What the transaction processor and the payer do: the PSP order, then paying at the sandbox,
/// whose signed webhook our intake records; then the outcome settled as the workers would.
async fn pay(app: &TestApp, seen: &mut Seen, merchant: &TestMerchant, order: &str) -> PaymentId {
    let response = app.initiate(merchant, &payment(order, 49_900)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = seen.answer("initiation", response, &[]).await;
    let payment_id: PaymentId = created["transaction_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let payment = app
        .ledger
        .payment_of(merchant.id, payment_id)
        .await
        .expect("payment");
    let gateway = app
        .ledger
        .gateway_of(merchant.id, payment.gateway_id())
        .await
        .expect("gateway");
    let account = PspAccount::open(&app.keyring, gateway.credentials()).expect("credentials");
    let order_created = PspClient::new(&HttpConfig::default())
        .expect("client")
        .create_order(
            &account,
            &OrderRequest {
                payment_id,
                amount: payment.amount(),
                currency: "INR".into(),
                customer: Customer::default(),
                callback_url: format!(
                    "{}/webhook/{}/{}",
                    app.url,
                    merchant.client_key,
                    gateway.id()
                ),
                return_url: format!("{}/checkout/{payment_id}/return", app.url),
                description: "Order".into(),
            },
        )
        .await
        .expect("sandbox order");
    app.ledger
        .record_psp_order(
            payment_id,
            gateway.id(),
            order_created.psp_order_id.clone(),
            serde_json::to_value(&order_created.checkout).expect("checkout"),
            &CommandContext::default(),
        )
        .await
        .expect("record order");
    let page = app
        .http
        .get(format!("{}/checkout/{payment_id}", app.url))
        .send()
        .await
        .expect("page");
    seen.answer("checkout page", page, &[]).await;
    let paid = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!(
            "{}/sandbox/checkout/{}/pay",
            app.url, order_created.psp_order_id
        ))
        .send()
        .await
        .expect("pay");
    assert!(paid.status().is_redirection());
    let report = ReportOutcome {
        merchant_id: merchant.id,
        gateway_id: gateway.id(),
        provider: gateway.provider(),
        dedupe_key: format!("settle-{order}"),
        payment_id: Some(payment_id),
        psp_order_id: Some(order_created.psp_order_id),
        psp_payment_id: Some("sbp_1".into()),
        outcome: PspOutcome::Succeeded {
            amount: payment.amount(),
        },
        source: OutcomeSource::StatusCheck,
        at: app.ledger.now(),
    };
    app.ledger
        .settle_outcome(&report, &CommandContext::default())
        .await
        .expect("settle");
    payment_id
}

#[tokio::test]
async fn no_secret_is_ever_answered_logged_stored_or_projected_in_clear() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let app = spawn_app().await;
    let mut seen = Seen::default();
    seen.secret(ADMIN_SECRET);
    let acme = onboard(&app, &mut seen, "Acme Retail").await;
    let globex = onboard(&app, &mut seen, "Globex Foods").await;

    let sandbox_secret = "whsec_c2FuZGJveC1zZWNyZXQtb2YtYWNtZS0wMQ==";
    let gateways = [
        json!({ "provider": "razorpay", "key_id": "rzp_test_public", "key_secret": "rzp-key-secret-0123456789", "webhook_secret": "rzp-webhook-secret-0123456789" }),
        json!({ "provider": "payu", "key": "payu-public-key", "salt": "payu-salt-0123456789abcdef" }),
        json!({ "provider": "cashfree", "client_id": "cf-public-id", "client_secret": "cf-client-secret-0123456789" }),
        json!({ "provider": "phonepe", "merchant_id": "PGTESTPAYUAT", "salt_key": "phonepe-salt-key-0123456789", "salt_index": 1 }),
    ];
    for secret in [
        sandbox_secret,
        "rzp-key-secret-0123456789",
        "rzp-webhook-secret-0123456789",
        "payu-salt-0123456789abcdef",
        "cf-client-secret-0123456789",
        "phonepe-salt-key-0123456789",
    ] {
        seen.secret(secret);
    }
    let sandbox = gateway(
        &app,
        &mut seen,
        &acme,
        json!({ "provider": "sandbox", "webhook_secret": sandbox_secret }),
        &format!("{}/sandbox", app.url),
    )
    .await;
    let mut others = Vec::new();
    for credentials in gateways {
        // Unreachable hosts: their credential checks fail, and the failure is answered.
        others.push(gateway(&app, &mut seen, &globex, credentials, "http://127.0.0.1:9").await);
    }
    for id in std::iter::once(sandbox).chain(others.iter().copied()) {
        let response = app
            .admin(Method::POST, &format!("/admin/gateways/{id}/test"))
            .send()
            .await
            .expect("test");
        seen.answer("credential check", response, &[]).await;
    }
    let response = app
        .admin_json(
            Method::PATCH,
            &format!("/admin/gateways/{}", others[0]),
            &json!({ "credentials": { "provider": "razorpay", "key_id": "rzp_test_public", "key_secret": "rzp-key-secret-rotated-0123", "webhook_secret": "rzp-webhook-secret-0123456789" } }),
        )
        .send()
        .await
        .expect("request");
    seen.secret("rzp-key-secret-rotated-0123");
    seen.answer("credential rotation", response, &[]).await;

    let paid = pay(&app, &mut seen, &acme, "ORD-1").await;

    // New keys and a new webhook secret: shown once each.
    let response = app
        .admin(
            Method::POST,
            &format!("/admin/merchants/{}/keys/regenerate", acme.id),
        )
        .send()
        .await
        .expect("request");
    let text = response.text().await.expect("text");
    let fresh: Value = serde_json::from_str(&text).expect("json");
    let new_salt = fresh["client_salt"].as_str().expect("salt").to_owned();
    seen.secret(&new_salt);
    seen.answers
        .push(("key regeneration".into(), text, vec![new_salt.clone()]));
    let rotated = TestMerchant {
        id: acme.id,
        client_key: fresh["client_key"].as_str().expect("key").to_owned(),
        client_salt: Secret::from(new_salt),
        webhook_secret: acme.webhook_secret.clone(),
    };
    let response = app
        .admin_json(
            Method::POST,
            &format!("/admin/merchants/{}/webhook-secret/rotate", acme.id),
            &json!({}),
        )
        .send()
        .await
        .expect("request");
    let text = response.text().await.expect("text");
    let new_webhook_secret = serde_json::from_str::<Value>(&text).expect("json")["webhook_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    seen.secret(&new_webhook_secret);
    seen.answers.push((
        "webhook secret rotation".into(),
        text,
        vec![new_webhook_secret],
    ));

    pay(&app, &mut seen, &rotated, "ORD-2").await;
    // Refusals log and answer too: a stale key, a forged webhook.
    let refused = app.initiate(&acme, &payment("ORD-3", 100)).await;
    seen.answer("refused initiation", refused, &[]).await;
    let forged = app
        .http
        .post(format!(
            "{}/webhook/{}/{sandbox}",
            app.url, rotated.client_key
        ))
        .header("webhook-id", "msg_x")
        .header(
            "webhook-timestamp",
            app.ledger.now().timestamp().to_string(),
        )
        .header("webhook-signature", "v1,AAAA")
        .body("{}")
        .send()
        .await
        .expect("request");
    seen.answer("forged webhook", forged, &[]).await;
    let transaction = app
        .signed(&rotated, Method::GET, &format!("/transaction/{paid}"), b"")
        .send()
        .await
        .expect("request");
    seen.answer("transaction", transaction, &[]).await;

    app.project().await;
    for path in [
        format!("/admin/merchants/{}", acme.id),
        format!("/admin/merchants/{}", globex.id),
        "/admin/merchants".to_owned(),
        "/admin/gateways".to_owned(),
        "/admin/gateways/health".to_owned(),
        "/admin/transactions".to_owned(),
        "/admin/wallets".to_owned(),
        "/admin/commission/ledger".to_owned(),
        "/admin/audit-log?limit=200".to_owned(),
        "/admin/alerts".to_owned(),
        "/admin/projections".to_owned(),
        "/openapi.json".to_owned(),
    ] {
        let response = app.admin(Method::GET, &path).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        seen.answer(&path, response, &[]).await;
    }

    for (what, text, shows) in &seen.answers {
        for secret in &seen.secrets {
            if !shows.contains(secret) {
                assert!(
                    !text.contains(secret.as_str()),
                    "the {what} answer shows a secret in clear"
                );
            }
        }
    }
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(
        logs.contains("merchant onboarded") && logs.contains("PSP webhook did not verify"),
        "the API's own log lines were captured"
    );
    assert_eq!(
        seen.secrets.len(),
        14,
        "every secret handed out or sent is searched for"
    );
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT payload::text || metadata::text FROM ledger.events")
            .fetch_all(&app.db.pool)
            .await
            .expect("events");
    let views: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.views WHERE table_schema = 'read'",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("views");
    assert!(views.len() >= 10, "{views:?}");
    let mut projected = Vec::new();
    for view in &views {
        let rows: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT jsonb_agg(to_jsonb(v))::text FROM read.{view} v"
        )))
        .fetch_one(&app.db.pool)
        .await
        .expect("rows");
        projected.push(rows.unwrap_or_default());
    }
    for secret in &seen.secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a log line shows a secret in clear"
        );
        assert!(
            !stored.iter().any(|e| e.contains(secret.as_str())),
            "an event stores a secret in clear"
        );
        assert!(
            !projected.iter().any(|r| r.contains(secret.as_str())),
            "a read model holds a secret in clear"
        );
    }
}
