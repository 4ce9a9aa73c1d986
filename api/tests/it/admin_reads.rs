//! The read models over HTTP: after payments, a fee change and a failure, every admin read
//! answers what the log says; the ledger exports as CSV; bad queries are 400s.

use lightspeed_domain::PaymentId;
use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, ReportOutcome};
use lightspeed_eventstore::CommandContext;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, TestMerchant, payment, problem, spawn_app};

async fn settle(
    app: &TestApp,
    merchant: &TestMerchant,
    payment_id: PaymentId,
    outcome: PspOutcome,
) {
    let payment = app
        .ledger
        .payment_of(merchant.id, payment_id)
        .await
        .expect("payment");
    let report = ReportOutcome {
        merchant_id: merchant.id,
        gateway_id: payment.gateway_id(),
        provider: lightspeed_domain::Provider::Sandbox,
        dedupe_key: format!("evt-{payment_id}"),
        payment_id: Some(payment_id),
        psp_order_id: None,
        psp_payment_id: Some(format!("sbp_{payment_id}")),
        outcome,
        source: OutcomeSource::Webhook,
        at: app.ledger.now(),
    };
    app.ledger
        .settle_outcome(&report, &CommandContext::default())
        .await
        .expect("settle");
}

async fn initiated(app: &TestApp, merchant: &TestMerchant, order: &str, amount: i64) -> PaymentId {
    let created: Value = app
        .initiate(merchant, &payment(order, amount))
        .await
        .json()
        .await
        .expect("json");
    created["transaction_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid")
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    problem(app.admin(Method::GET, path).send().await.expect("request")).await
}

#[tokio::test]
async fn every_admin_read_answers_what_the_log_says() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway_id, _) = app.sandbox_gateway(&merchant, 1, None).await;

    let (status, problem_body) = get(&app, "/admin/wallets").await;
    assert_eq!(
        (status, problem_body["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("READ_MODEL_NOT_READY")
        ),
        "before any projection ran"
    );

    let paid = initiated(&app, &merchant, "ORD-1", 49_900).await;
    settle(
        &app,
        &merchant,
        paid,
        PspOutcome::Succeeded {
            amount: lightspeed_domain::Paise(49_900),
        },
    )
    .await;
    let failed = initiated(&app, &merchant, "ORD-2", 10_000).await;
    settle(
        &app,
        &merchant,
        failed,
        PspOutcome::Failed {
            code: "BAD_REQUEST_ERROR".into(),
            reason: "Card declined".into(),
        },
    )
    .await;
    let (status, _) = problem(
        app.admin_json(
            Method::PATCH,
            &format!("/admin/merchants/{}", merchant.id),
            &json!({ "fee_bps": 200 }),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.project().await;

    let (status, wallets) = get(&app, "/admin/wallets").await;
    assert_eq!(status, StatusCode::OK, "{wallets}");
    assert_eq!(wallets["total"], 1);
    assert_eq!(
        wallets["items"][0]["commission_accrued_paise"], 1_747,
        "3.5 % of ₹499, half-up"
    );

    let (_, first) = get(&app, "/admin/transactions?limit=1").await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1));
    let cursor = first["next_cursor"].as_str().expect("more").to_owned();
    let (_, second) = get(
        &app,
        &format!("/admin/transactions?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["next_cursor"], Value::Null);
    let (_, failed_only) = get(&app, "/admin/transactions?status=failed").await;
    assert_eq!(failed_only["items"][0]["payment_id"], failed.to_string());

    let (_, ledger) = get(
        &app,
        &format!("/admin/commission/ledger?merchant_id={}", merchant.id),
    )
    .await;
    assert_eq!(ledger["items"][0]["entry_type"], "COMMISSION");
    assert_eq!(ledger["items"][0]["amount_paise"], 1_747);
    let today = app
        .ledger
        .now()
        .with_timezone(&lightspeed_domain::calendar::IST)
        .date_naive();
    let csv = app
        .admin(
            Method::GET,
            &format!("/admin/commission/ledger?from={today}&to={today}"),
        )
        .header("accept", "text/csv")
        .send()
        .await
        .expect("request");
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    let csv = csv.text().await.expect("text");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("entry_type,source_id,merchant_id,amount_paise"));
    assert!(lines[1].starts_with(&format!(
        "COMMISSION,{paid},{},1747,1747,49900,350",
        merchant.id
    )));

    let (_, daily) = get(&app, "/admin/commission/daily").await;
    assert_eq!(daily[0]["commission_paise"], 1_747);
    assert_eq!(daily[0]["payments"], 1);

    let (_, gateways) = get(&app, "/admin/gateways").await;
    assert_eq!(gateways[0]["gateway_id"], gateway_id.to_string());
    let (_, health) = get(&app, "/admin/gateways/health").await;
    assert_eq!(health[0]["payments_failed"], 1);
    assert_eq!(
        health[0]["this_month_payments"], 1,
        "the failure released its booking"
    );

    let (_, merchants) = get(&app, "/admin/merchants?q=acme").await;
    assert_eq!(merchants["items"][0]["fee_bps"], 200);

    let (_, audit) = get(&app, "/admin/audit-log?actor=OPS@example.com").await;
    let entry = &audit["items"][0];
    assert_eq!(
        (entry["action"].as_str(), entry["entity_type"].as_str()),
        (Some("MerchantFeeChanged"), Some("merchant"))
    );
    assert_eq!(
        (
            entry["before"]["fee_bps"].as_u64(),
            entry["after"]["fee_bps"].as_u64()
        ),
        (Some(350), Some(200))
    );

    let (_, projections) = get(&app, "/admin/projections").await;
    assert!(
        projections
            .as_array()
            .expect("list")
            .iter()
            .all(|p| p["state"] == "active")
    );

    let (_, whatsapp) = get(
        &app,
        &format!("/admin/whatsapp?client_id={}&q=low", merchant.id),
    )
    .await;
    assert_eq!(whatsapp["total"], 0);

    let usage = app
        .signed(&merchant, Method::GET, "/merchant/whatsapp/usage", b"")
        .send()
        .await
        .expect("request");
    assert_eq!(usage.status(), StatusCode::OK);
    assert_eq!(usage.json::<Value>().await.expect("json"), json!([]));
}

#[tokio::test]
async fn bad_read_queries_are_400_problem_documents() {
    let app = spawn_app().await;
    app.project().await;
    for path in [
        "/admin/whatsapp?status=lost",
        "/admin/whatsapp?page=0",
        "/admin/whatsapp?per_page=500",
        "/admin/whatsapp?client_id=nope",
        "/admin/transactions?limit=0",
        "/admin/transactions?cursor=garbage",
        "/admin/transactions?from=yesterday",
        "/admin/commission/ledger?entry_type=GIFT",
        "/admin/commission/daily?from=2026-13-01",
        "/admin/wallets?standing=great",
        "/admin/audit-log?cursor=x",
        "/admin/alerts?limit=1000",
    ] {
        let (status, body) = get(&app, path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("INVALID_QUERY")),
            "{path}: {body}"
        );
    }
}
