//! Commission collection over HTTP: payout runs, RazorpayX payout webhooks (verified on the raw
//! bytes, idempotent, terminal states final), manual settlements, month-end statements whose
//! figures equal the wallet, and the reconciliation trigger.

use hmac::{Hmac, KeyInit, Mac};
use lightspeed_adapters::payouts::{EVENT_ID_HEADER, SIGNATURE_HEADER};
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::wallet::WalletCommand;
use lightspeed_domain::{BasisPoints, MerchantId, Paise, PaymentId, Wallet};
use lightspeed_eventstore::{CommandContext, EventStore, stream_of};
use lightspeed_services::ist;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use lightspeed_workers::JobStreamConfig;

use crate::common::{
    ADMIN_EMAIL, EventCount, LOST_WEBHOOKS, TestApp, create_order, initiate, problem, spawn_app,
};

/// The secret the RazorpayX fixtures are signed with.
const WEBHOOK_SECRET: &str = "rzpx_webhook_secret_test";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../fixtures/razorpayx/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

async fn app() -> TestApp {
    TestApp::builder()
        .config(|config| config.payouts.webhook_secret = Some(Secret::from(WEBHOOK_SECRET)))
        .spawn()
        .await
}

/// A RazorpayX payout event shaped like the fixture, about `reference_id`, in `status`.
fn payout_event(reference_id: &str, status: &str, reason: Option<&str>) -> Vec<u8> {
    let mut event: Value =
        serde_json::from_slice(&fixture("payout_processed_webhook.json")).expect("fixture json");
    event["event"] = json!(format!("payout.{status}"));
    let entity = &mut event["payload"]["payout"]["entity"];
    entity["reference_id"] = json!(reference_id);
    entity["status"] = json!(status);
    entity["utr"] = if status == "processed" {
        json!("933815233814")
    } else {
        Value::Null
    };
    if let Some(reason) = reason {
        entity["status_details"] =
            json!({"description": reason, "source": "beneficiary_bank", "reason": "bank_offline"});
    }
    serde_json::to_vec(&event).expect("json")
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn post_webhook(
    app: &TestApp,
    body: &[u8],
    signature: &str,
    event_id: &str,
) -> reqwest::Response {
    app.http
        .post(format!("{}/webhook/razorpayx", app.url))
        .header(SIGNATURE_HEADER, signature)
        .header(EVENT_ID_HEADER, event_id)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("request")
}

/// Accrues `commission` on a payment whose amount gives exactly that at the default fee.
async fn accrue(app: &TestApp, merchant: MerchantId, commission: i64) {
    let fee = BasisPoints::DEFAULT_FEE;
    let amount = Paise(commission * i64::from(BasisPoints::WHOLE) / i64::from(fee.bps()));
    assert_eq!(
        fee.of(amount),
        Paise(commission),
        "the wallet accepts only this"
    );
    app.ledger
        .wallets()
        .execute(
            &stream_of::<Wallet>(merchant).expect("stream"),
            &WalletCommand::AccrueCommission {
                payment_id: PaymentId::new(),
                amount,
                fee,
                commission: Paise(commission),
                at: app.ledger.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("accrue");
}

async fn wallet(app: &TestApp, merchant: MerchantId) -> Wallet {
    app.ledger.wallet(merchant).await.expect("wallet")
}

/// Runs the payouts of `run` over the admin API; answers the one payout requested.
async fn run_payouts(app: &TestApp, run: &str) -> String {
    let response = app
        .admin_json(Method::POST, "/admin/payouts/run", &json!({ "run": run }))
        .send()
        .await
        .expect("run");
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["requested"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    body["requested"][0]["payout_id"]
        .as_str()
        .expect("payout id")
        .to_owned()
}

#[tokio::test]
async fn a_processed_payout_is_paid_out_once_and_later_events_are_ignored() {
    let app = app().await;
    let merchant = app.merchant().await;
    accrue(&app, merchant.id, 150_000).await;
    let payout_id = run_payouts(&app, "2026-11-24").await;
    // The same run again requests nothing new.
    let again = app
        .admin_json(
            Method::POST,
            "/admin/payouts/run",
            &json!({ "run": "2026-11-24" }),
        )
        .send()
        .await
        .expect("run again");
    let (_, again) = problem(again).await;
    assert_eq!(again["requested"], json!([]));
    assert_eq!(again["already_requested"], 1);
    assert_eq!(wallet(&app, merchant.id).await.pending(), Paise(150_000));

    let processed = payout_event(&payout_id, "processed", None);
    let response = post_webhook(&app, &processed, &sign(&processed), "evt_1").await;
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"received": true, "recorded": true}));
    let paid = wallet(&app, merchant.id).await;
    assert_eq!(paid.balance_due(), Paise::ZERO);
    assert_eq!(paid.paid_out(), Paise(150_000));
    assert_eq!(paid.pending(), Paise::ZERO);

    // A redelivery, then a failure after the terminal `processed`: acknowledged, nothing added.
    let events = app.event_count().await;
    let response = post_webhook(&app, &processed, &sign(&processed), "evt_1").await;
    assert_eq!(problem(response).await.1["recorded"], false);
    let failed = payout_event(&payout_id, "failed", Some("Beneficiary bank is offline"));
    let response = post_webhook(&app, &failed, &sign(&failed), "evt_2").await;
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["recorded"], false);
    assert_eq!(app.event_count().await, events);
    assert_eq!(wallet(&app, merchant.id).await.balance_due(), Paise::ZERO);
}

#[tokio::test]
async fn a_reversed_payout_restores_the_balance_due_and_is_final() {
    let app = app().await;
    let merchant = app.merchant().await;
    accrue(&app, merchant.id, 120_000).await;
    let payout_id = run_payouts(&app, "2026-11-24").await;
    let processed = payout_event(&payout_id, "processed", None);
    post_webhook(&app, &processed, &sign(&processed), "evt_1").await;
    assert_eq!(wallet(&app, merchant.id).await.balance_due(), Paise::ZERO);

    let reversed = payout_event(&payout_id, "reversed", Some("Beneficiary bank is offline"));
    let response = post_webhook(&app, &reversed, &sign(&reversed), "evt_2").await;
    assert_eq!(problem(response).await.1["recorded"], true);
    let restored = wallet(&app, merchant.id).await;
    assert_eq!(restored.balance_due(), Paise(120_000));
    assert_eq!(restored.reversed(), Paise(120_000));

    let events = app.event_count().await;
    let late = payout_event(&payout_id, "processed", None);
    let response = post_webhook(&app, &late, &sign(&late), "evt_3").await;
    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["recorded"].clone()),
        (StatusCode::OK, json!(false))
    );
    assert_eq!(app.event_count().await, events);

    let stream = stream_of::<Wallet>(merchant.id).expect("stream");
    let recorded = app
        .ledger
        .store()
        .read_stream(&stream, 0, 100)
        .await
        .expect("read");
    let reversal = recorded
        .iter()
        .find(|e| e.event_type == "PayoutReversed")
        .expect("reversal");
    assert_eq!(
        reversal.payload.to_value().expect("payload")["reason"],
        "reversed"
    );
    assert_eq!(
        reversal.payload.to_value().expect("payload")["detail"],
        "Beneficiary bank is offline"
    );
    assert_eq!(reversal.metadata.actor.as_deref(), Some("psp:razorpayx"));
}

#[tokio::test]
async fn a_failed_pending_payout_releases_its_reservation() {
    let app = app().await;
    let merchant = app.merchant().await;
    accrue(&app, merchant.id, 110_000).await;
    let payout_id = run_payouts(&app, "2026-11-24").await;
    let rejected = payout_event(&payout_id, "rejected", Some("Rejected by approver"));
    let response = post_webhook(&app, &rejected, &sign(&rejected), "evt_1").await;
    assert_eq!(problem(response).await.1["recorded"], true);
    let released = wallet(&app, merchant.id).await;
    assert_eq!(released.pending(), Paise::ZERO);
    assert_eq!(released.available(), Paise(110_000));
    // In-progress statuses change nothing.
    let events = app.event_count().await;
    let queued = payout_event(&payout_id, "queued", None);
    let response = post_webhook(&app, &queued, &sign(&queued), "evt_2").await;
    assert_eq!(problem(response).await.1["recorded"], false);
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn unverified_payout_webhooks_are_refused_and_change_nothing() {
    let app = app().await;
    let merchant = app.merchant().await;
    accrue(&app, merchant.id, 150_000).await;
    let payout_id = run_payouts(&app, "2026-11-24").await;
    let events = app.event_count().await;
    let processed = payout_event(&payout_id, "processed", None);
    let wrong = sign(b"another body");
    let (status, body) = problem(post_webhook(&app, &processed, &wrong, "evt_1").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "WEBHOOK_NOT_VERIFIED");
    let (status, _) = problem(post_webhook(&app, &processed, "not-hex", "evt_1").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unsigned = app
        .http
        .post(format!("{}/webhook/razorpayx", app.url))
        .body(processed.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(problem(unsigned).await.0, StatusCode::UNAUTHORIZED);
    // Signed, but not a payout event.
    let other = br#"{"event":"payment.captured","payload":{}}"#;
    let (status, body) = problem(post_webhook(&app, other, &sign(other), "evt_3").await).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("MALFORMED_WEBHOOK"))
    );
    assert_eq!(app.event_count().await, events);
    assert_eq!(wallet(&app, merchant.id).await.paid_out(), Paise::ZERO);

    // The documented fixture verifies, but names a payout that is not ours: acknowledged only.
    let body = fixture("payout_processed_webhook.json");
    let signature = String::from_utf8(fixture("payout_processed_webhook.sig")).expect("sig");
    let (status, answer) = problem(post_webhook(&app, &body, &signature, "evt_4").await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["recorded"], false);
    assert_eq!(app.event_count().await, events);

    // Without the webhook secret configured, the intake says so.
    let bare = spawn_app().await;
    let (status, body) =
        problem(post_webhook(&bare, &processed, &sign(&processed), "evt_5").await).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("PAYOUTS_DISABLED"))
    );
}

#[tokio::test]
async fn a_manual_settlement_reduces_the_balance_due_and_bad_ones_change_nothing() {
    let app = app().await;
    let merchant = app.merchant().await;
    accrue(&app, merchant.id, 80_000).await;
    let settle = |body: Value| {
        app.admin_json(Method::POST, "/admin/settlements", &body)
            .send()
    };
    let response = settle(json!({
        "merchant_id": merchant.id.to_string(),
        "amount_paise": 30_000,
        "reference": "NEFT N123456789",
        "note": "paid by bank transfer"
    }))
    .await
    .expect("settle");
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["balance_due_paise"], 50_000);
    assert_eq!(body["settled_paise"], 30_000);
    assert_eq!(wallet(&app, merchant.id).await.balance_due(), Paise(50_000));
    let stream = stream_of::<Wallet>(merchant.id).expect("stream");
    let recorded = app
        .ledger
        .store()
        .read_stream(&stream, 0, 100)
        .await
        .expect("read");
    let settlement = recorded.last().expect("settlement");
    assert_eq!(settlement.event_type, "ManualSettlementRecorded");
    assert_eq!(
        settlement.metadata.actor,
        Some(format!("admin:{ADMIN_EMAIL}"))
    );

    let events = app.event_count().await;
    let refusals = [
        (
            json!({"merchant_id": merchant.id.to_string(), "amount_paise": 50_001, "reference": "X"}),
            StatusCode::CONFLICT,
            "SETTLEMENT_EXCEEDS_BALANCE",
        ),
        (
            json!({"merchant_id": merchant.id.to_string(), "amount_paise": 0, "reference": "X"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FIELD",
        ),
        (
            json!({"merchant_id": merchant.id.to_string(), "amount_paise": 100, "reference": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FIELD",
        ),
        (
            json!({"merchant_id": MerchantId::new().to_string(), "amount_paise": 100, "reference": "X"}),
            StatusCode::NOT_FOUND,
            "MERCHANT_NOT_FOUND",
        ),
        (
            json!({"merchant_id": merchant.id.to_string(), "amount_paise": "100", "reference": "X"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FIELD",
        ),
        (
            json!({"merchant_id": merchant.id.to_string(), "amount_paise": 100, "reference": "X", "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FIELD",
        ),
    ];
    for (body, expected, code) in refusals {
        let (status, problem_body) = problem(settle(body.clone()).await.expect("settle")).await;
        assert_eq!(
            (status, problem_body["code"].as_str()),
            (expected, Some(code)),
            "{body}"
        );
    }
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn a_statement_adds_up_to_the_wallet_in_json_csv_and_html() {
    let app = app().await;
    let merchant = app.merchant().await;
    accrue(&app, merchant.id, 150_000).await;
    let payout_id = run_payouts(&app, "2026-11-24").await;
    let processed = payout_event(&payout_id, "processed", None);
    post_webhook(&app, &processed, &sign(&processed), "evt_1").await;
    accrue(&app, merchant.id, 20_000).await;
    app.admin_json(
        Method::POST,
        "/admin/settlements",
        &json!({"merchant_id": merchant.id.to_string(), "amount_paise": 5_000, "reference": "=cmd|' /C calc'!A0"}),
    )
    .send()
    .await
    .expect("settle");
    let wallet = wallet(&app, merchant.id).await;
    let month = app
        .ledger
        .now()
        .with_timezone(&ist())
        .format("%Y-%m")
        .to_string();
    let path = format!("/admin/merchants/{}/statements/{month}", merchant.id);

    let (status, json) = problem(app.admin(Method::GET, &path).send().await.expect("json")).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["opening_balance_paise"], 0);
    assert_eq!(json["commission_accrued_paise"], wallet.accrued().0);
    assert_eq!(json["commissions"], 2);
    assert_eq!(json["payouts_paise"], wallet.paid_out().0);
    assert_eq!(json["reversals_paise"], wallet.reversed().0);
    assert_eq!(json["settlements_paise"], wallet.settled().0);
    assert_eq!(json["closing_balance_paise"], wallet.balance_due().0);
    assert_eq!(wallet.balance_due(), Paise(15_000));
    assert_eq!(json["entries"].as_array().map(Vec::len), Some(2));

    for request in [
        app.admin(Method::GET, &format!("{path}.csv")),
        app.admin(Method::GET, &path).header("accept", "text/csv"),
    ] {
        let response = request.send().await.expect("csv");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("type")
                .starts_with("text/csv")
        );
        let csv = response.text().await.expect("csv body");
        assert!(csv.contains("opening_balance,0\n"), "{csv}");
        assert!(csv.contains("commission_accrued,170000\n"), "{csv}");
        assert!(csv.contains("payouts,150000\n"), "{csv}");
        assert!(csv.contains("settlements,5000\n"), "{csv}");
        assert!(csv.contains("closing_balance,15000\n"), "{csv}");
        assert!(
            csv.contains(&format!(",payout,{payout_id},150000,-150000\n")),
            "{csv}"
        );
        assert!(
            csv.contains(",settlement,'=cmd|' /C calc'!A0,5000,-5000\n"),
            "{csv}"
        );
    }

    let response = app
        .admin(Method::GET, &format!("{path}.html"))
        .send()
        .await
        .expect("html");
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.expect("html body");
    assert!(html.contains("Acme Retail"));
    assert!(html.contains("data-paise=\"15000\">₹150.00<"), "{html}");
    assert!(html.contains("data-paise=\"170000\">₹1700.00<"), "{html}");

    let (status, body) = problem(
        app.admin(
            Method::GET,
            &format!("/admin/merchants/{}/statements/2026-13", merchant.id),
        )
        .send()
        .await
        .expect("bad month"),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("INVALID_MONTH"))
    );
    let (status, _) = problem(
        app.admin(
            Method::GET,
            &format!("/admin/merchants/{}/statements/{month}", MerchantId::new()),
        )
        .send()
        .await
        .expect("unknown merchant"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// An on-demand sweep, as the admin API answers it.
async fn sweep(app: &TestApp) -> (StatusCode, Value) {
    problem(
        app.admin(Method::POST, "/admin/reconciliation/run")
            .send()
            .await
            .expect("run"),
    )
    .await
}

#[tokio::test]
async fn reconciliation_runs_on_demand_on_the_workers_reconciler() {
    let bare = TestApp::builder().without_broker().spawn().await;
    let (status, body) = sweep(&bare).await;
    assert_eq!(
        (status, body["code"].clone()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!("RECONCILIATION_UNAVAILABLE")
        )
    );

    // Two payments at the PSP that never heard from it, past the reconciler's 30 minutes.
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    for order in ["ORD-STALE-1", "ORD-STALE-2"] {
        let payment_id = initiate(&app, &merchant, order, 10_000).await;
        create_order(&app, &merchant, payment_id, LOST_WEBHOOKS).await;
    }
    app.clock.advance(chrono::TimeDelta::minutes(31));
    let (status, body) = sweep(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"stale": 2, "queued": 2, "already_queued": 0}));
    let jobs = JobStreamConfig::for_log(&app.nats.config);
    let queued = app
        .nats
        .jetstream
        .get_stream(&jobs.stream_name)
        .await
        .expect("jobs stream")
        .get_info()
        .await
        .expect("info")
        .state
        .messages;
    assert_eq!(
        queued, 2,
        "one status check per stale payment on the jobs stream"
    );
    // Again in the same window: nothing queued twice.
    let (_, body) = sweep(&app).await;
    assert_eq!(body, json!({"stale": 2, "queued": 0, "already_queued": 2}));
}
