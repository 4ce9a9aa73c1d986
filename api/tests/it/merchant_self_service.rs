//! The merchant's self-service reads over real HTTP, PostgreSQL and JetStream: transactions
//! (filters, cursor, CSV export, detail), wallet, wallet entries, statements and usage, each
//! signed by the merchant and showing its own data only.

use std::collections::HashSet;

use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, ReportOutcome};
use lightspeed_domain::{MerchantId, PaymentId};
use lightspeed_eventstore::CommandContext;
use lightspeed_services::RefundOutcome;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{
    TestApp, TestMerchant, initiate, problem, request_refund, settle_success, spawn_app,
};

async fn get(app: &TestApp, merchant: &TestMerchant, path: &str) -> reqwest::Response {
    app.signed(merchant, Method::GET, path, b"")
        .send()
        .await
        .expect("request")
}

async fn get_json(app: &TestApp, merchant: &TestMerchant, path: &str) -> Value {
    let response = get(app, merchant, path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.expect("json")
}

/// A payment initiated one second after the previous one (so newest first is well defined).
async fn payment(app: &TestApp, merchant: &TestMerchant, order: &str, amount: i64) -> PaymentId {
    app.clock.advance(chrono::Duration::seconds(1));
    initiate(app, merchant, order, amount).await
}

async fn fail(app: &TestApp, merchant_id: MerchantId, payment_id: PaymentId, reason: &str) {
    let payment = app
        .ledger
        .payment_of(merchant_id, payment_id)
        .await
        .expect("payment");
    let report = ReportOutcome {
        merchant_id,
        gateway_id: payment.gateway_id(),
        provider: lightspeed_domain::Provider::Sandbox,
        dedupe_key: format!("fail-{payment_id}"),
        payment_id: Some(payment_id),
        psp_order_id: None,
        psp_payment_id: None,
        outcome: PspOutcome::Failed {
            code: "DECLINED".into(),
            reason: reason.into(),
        },
        source: OutcomeSource::Webhook,
        at: app.ledger.now(),
    };
    app.ledger
        .settle_outcome(&report, &CommandContext::default())
        .await
        .expect("settle failure");
}

/// Records what the PSP said about a refund.
async fn refund_outcome(
    app: &TestApp,
    payment_id: PaymentId,
    id: lightspeed_domain::RefundId,
    outcome: RefundOutcome,
) {
    app.ledger
        .record_refund_outcome(
            payment_id,
            id,
            &outcome,
            app.ledger.now(),
            &CommandContext::default(),
        )
        .await
        .expect("refund outcome");
}

/// Refunds `amount` of a succeeded payment through the API and records the PSP's success.
async fn refund(
    app: &TestApp,
    merchant: &TestMerchant,
    payment_id: PaymentId,
    refund_id: &str,
    amount: i64,
) {
    let id = request_refund(app, merchant, payment_id, refund_id, amount).await;
    let psp_refund_id = Some(format!("rfnd_{refund_id}"));
    refund_outcome(
        app,
        payment_id,
        id,
        RefundOutcome::Succeeded { psp_refund_id },
    )
    .await;
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["transaction_id"].as_str().expect("id").to_owned())
        .collect()
}

fn set(ids: &[PaymentId]) -> HashSet<String> {
    ids.iter().map(ToString::to_string).collect()
}

async fn listed(app: &TestApp, merchant: &TestMerchant, query: &str) -> HashSet<String> {
    let page = get_json(app, merchant, &format!("/transactions?{query}")).await;
    ids(&page).into_iter().collect()
}

#[tokio::test]
async fn each_filter_narrows_the_merchants_transactions() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway, _) = app.sandbox_gateway(&merchant, 1, None).await;
    let other = app.merchant().await;
    app.sandbox_gateway(&other, 1, None).await;

    let created = payment(&app, &merchant, "ORD-CREATED", 10_000).await;
    let failed = payment(&app, &merchant, "ORD-FAILED", 20_000).await;
    fail(&app, merchant.id, failed, "declined").await;
    app.clock.advance(chrono::Duration::milliseconds(500));
    let from = app.ledger.now();
    let paid = payment(&app, &merchant, "ORD-PAID", 30_000).await;
    settle_success(&app, merchant.id, paid).await;
    let partly = payment(&app, &merchant, "ORD-PARTLY", 40_000).await;
    settle_success(&app, merchant.id, partly).await;
    refund(&app, &merchant, partly, "RF-PART", 1_000).await;
    let fully = payment(&app, &merchant, "ORD-FULLY", 50_000).await;
    settle_success(&app, merchant.id, fully).await;
    refund(&app, &merchant, fully, "RF-FULL", 50_000).await;
    let foreign = payment(&app, &other, "ORD-PAID", 30_000).await;
    app.project().await;

    let all = listed(&app, &merchant, "").await;
    assert_eq!(
        all,
        set(&[created, failed, paid, partly, fully]),
        "never the other merchant's"
    );
    let cases = [
        ("status=created", vec![created]),
        ("status=failed", vec![failed]),
        ("status=succeeded", vec![paid, partly]),
        ("status=refunded", vec![fully]),
        ("status=partially_refunded", vec![partly]),
        ("refunded=true", vec![partly, fully]),
        ("refunded=false", vec![created, failed, paid]),
        ("min_amount=30000&max_amount=40000", vec![paid, partly]),
        ("order_id=ORD-PAID", vec![paid]),
        (
            &format!("gateway_id={gateway}") as &str,
            vec![created, failed, paid, partly, fully],
        ),
        (&format!("gateway_id={}", uuid::Uuid::now_v7()), vec![]),
        (
            &format!("from={}", urlencode(&from.to_rfc3339())),
            vec![paid, partly, fully],
        ),
        (
            &format!("to={}", urlencode(&from.to_rfc3339())),
            vec![created, failed],
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(
            listed(&app, &merchant, query).await,
            set(&expected),
            "{query}"
        );
    }
    let page = get_json(&app, &merchant, "/transactions?order_id=ORD-PARTLY").await;
    assert_eq!(page["items"][0]["partially_refunded"], true);
    assert_eq!(page["items"][0]["refunded"], 1_000);

    // Another merchant's payment is unknown here, whichever route asks.
    let response = get(&app, &merchant, &format!("/transactions/{foreign}")).await;
    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("TRANSACTION_NOT_FOUND"))
    );
    assert_eq!(listed(&app, &other, "").await, set(&[foreign]));
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn refusals_name_the_field_and_never_fail_on_our_side() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let cases = [
        ("/transactions?status=paid", "status"),
        ("/transactions?from=yesterday", "from"),
        ("/transactions?to=2026-13-01T00:00:00Z", "to"),
        ("/transactions?min_amount=-1", "min_amount"),
        ("/transactions?min_amount=5&max_amount=4", "max_amount"),
        ("/transactions?max_amount=ten", "max_amount"),
        ("/transactions?gateway_id=nope", "gateway_id"),
        ("/transactions?order_id=%20", "order_id"),
        ("/transactions?refunded=yes", "refunded"),
        ("/transactions?limit=0", "limit"),
        ("/transactions?limit=201", "limit"),
        ("/transactions?cursor=garbage", "cursor"),
        ("/transactions?cursor=1_2", "cursor"),
        ("/transactions?stauts=paid", "stauts"),
        ("/transactions?limit=1&limit=2", "limit"),
        ("/wallet/entries?cursor=abc", "cursor"),
        ("/wallet/entries?limit=500", "limit"),
    ];
    for (path, field) in cases {
        let (status, body) = problem(get(&app, &merchant, path).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(body["code"], "INVALID_FIELD", "{path}");
        assert_eq!(body["field"], field, "{path}");
    }
    for path in [
        "/transactions/not-a-uuid",
        &format!("/transactions/{}", uuid::Uuid::now_v7()),
    ] {
        let (status, body) = problem(get(&app, &merchant, path).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("TRANSACTION_NOT_FOUND")),
            "{path}"
        );
    }
    let (status, body) = problem(get(&app, &merchant, "/statements/2026-13").await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_MONTH"))
    );
    let unsigned = app
        .http
        .get(format!("{}/transactions", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_cursor_walks_every_row_once_while_payments_arrive() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let mut before = Vec::new();
    for n in 0..23 {
        before.push(payment(&app, &merchant, &format!("ORD-{n}"), 1_000 + n).await);
    }
    app.project().await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut arrived = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/transactions?limit=5&cursor={cursor}"),
            None => "/transactions?limit=5".to_owned(),
        };
        let page = get_json(&app, &merchant, &path).await;
        seen.extend(ids(&page));
        // New payments land while the walk goes on, some with the very instant of the rows
        // already walked.
        for _ in 0..3 {
            arrived += 1;
            initiate(&app, &merchant, &format!("ORD-LATE-{arrived}"), 500).await;
        }
        app.project().await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    let expected = set(&before);
    assert!(
        expected.iter().all(|id| unique.contains(id)),
        "no row skipped"
    );
}

#[tokio::test]
async fn the_csv_export_streams_every_matching_row_quoted() {
    // More payments than the default initiation rate allows in a minute.
    let app = TestApp::builder()
        .config(|config| config.initiate_per_minute = std::num::NonZeroU32::MAX)
        .spawn()
        .await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let other = app.merchant().await;
    app.sandbox_gateway(&other, 1, None).await;
    initiate(&app, &other, "ORD-OTHER", 100).await;
    let rows = 300;
    for n in 0..rows {
        initiate(&app, &merchant, &format!("ORD-{n:04}"), 100 + n).await;
    }
    let formula = initiate(&app, &merchant, "-23", 999).await;
    fail(
        &app,
        merchant.id,
        formula,
        "=HYPERLINK(\"http://x\",\"bad, card\")",
    )
    .await;
    app.project().await;

    let response = app
        .signed(&merchant, Method::GET, "/transactions?limit=1", b"")
        .header("accept", "text/csv")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let text = response.text().await.expect("body");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().expect("header").clone();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    assert_eq!(
        records.len(),
        usize::try_from(rows).expect("rows") + 1,
        "every row, limit ignored"
    );
    let column = |name: &str| header.iter().position(|h| h == name).expect("column");
    let orders: HashSet<&str> = records.iter().map(|r| &r[column("order_id")]).collect();
    assert!(!orders.contains("ORD-OTHER"));
    assert!(orders.contains("ORD-0000") && orders.contains("ORD-0299"));
    let defused = records
        .iter()
        .find(|r| r[column("transaction_id")] == formula.to_string())
        .expect("the formula row");
    assert_eq!(&defused[column("order_id")], "'-23");
    assert_eq!(
        &defused[column("failure_reason")],
        "'=HYPERLINK(\"http://x\",\"bad, card\")"
    );
    assert_eq!(&defused[column("status")], "failed");

    let filtered = app
        .signed(&merchant, Method::GET, "/transactions?status=failed", b"")
        .header("accept", "text/csv")
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert_eq!(
        filtered.lines().count(),
        2,
        "header and the one failed payment"
    );
}

#[tokio::test]
async fn the_detail_shows_refunds_and_webhook_deliveries() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let paid = payment(&app, &merchant, "ORD-DETAIL", 49_900).await;
    settle_success(&app, merchant.id, paid).await;
    refund(&app, &merchant, paid, "RF-1", 9_900).await;
    request_refund(&app, &merchant, paid, "RF-OPEN", 100).await;
    let failed = request_refund(&app, &merchant, paid, "RF-FAILED", 100).await;
    let failure = RefundOutcome::Failed {
        code: "BAD_REQUEST_ERROR".into(),
        reason: "refund window over".into(),
    };
    refund_outcome(&app, paid, failed, failure).await;
    app.project().await;

    let listed = get_json(&app, &merchant, "/transactions?order_id=ORD-DETAIL").await;
    assert_eq!(
        listed["items"][0]["open_refunds"], 1,
        "only RF-OPEN awaits its outcome"
    );
    assert_eq!(listed["items"][0]["refunds"], 1);

    let detail = get_json(&app, &merchant, &format!("/transactions/{paid}")).await;
    assert_eq!(detail["transaction_id"], paid.to_string());
    assert_eq!(detail["refunded"], 9_900);
    assert_eq!(detail["refundable"], 39_900, "RF-OPEN holds its amount");
    assert_eq!(detail["refunds"][0]["refund_id"], "RF-1");
    assert_eq!(detail["refunds"][0]["status"], "succeeded");
    let deliveries = detail["webhook_deliveries"].as_array().expect("deliveries");
    let expected = app
        .count(&format!(
            "SELECT count(*) FROM read.webhook_deliveries WHERE payment_id = '{paid}'"
        ))
        .await;
    assert_eq!(i64::try_from(deliveries.len()).expect("len"), expected);
}

#[tokio::test]
async fn wallet_statements_and_usage_agree_with_the_read_models() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway, _) = app.sandbox_gateway(&merchant, 1, None).await;
    let other = app.merchant().await;
    app.sandbox_gateway(&other, 1, None).await;
    let mut paid = Vec::new();
    for n in 0..3 {
        let id = payment(&app, &merchant, &format!("ORD-W{n}"), 100_000).await;
        settle_success(&app, merchant.id, id).await;
        paid.push(id);
    }
    let failed = payment(&app, &merchant, "ORD-WF", 5_000).await;
    fail(&app, merchant.id, failed, "declined").await;
    let other_paid = payment(&app, &other, "ORD-O", 100_000).await;
    settle_success(&app, other.id, other_paid).await;
    app.project().await;

    let wallet = get_json(&app, &merchant, "/wallet").await;
    let model = lightspeed_projections::wallets::get(&app.db.pool, merchant.id.0)
        .await
        .expect("read")
        .expect("wallet");
    assert!(model.balance_due_paise > 0);
    assert_eq!(wallet["balance_due"], model.balance_due_paise);
    assert_eq!(
        wallet["commission_this_month"],
        model.commission_accrued_paise
    );
    assert_eq!(wallet["warn_at"], model.warn_at_paise);
    assert_eq!(wallet["suspend_at"], model.suspend_at_paise);
    assert_eq!(wallet["standing"], "active");

    let mut entries = Vec::new();
    let mut path = "/wallet/entries?limit=1".to_owned();
    loop {
        let page = get_json(&app, &merchant, &path).await;
        entries.extend(page["items"].as_array().expect("items").clone());
        match page["next_cursor"].as_str() {
            Some(next) => path = format!("/wallet/entries?limit=1&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(
        entries.len(),
        3,
        "one commission per settled payment, none of the other's"
    );
    let commission: i64 = entries
        .iter()
        .map(|e| e["amount_paise"].as_i64().expect("amount"))
        .sum();
    assert_eq!(commission, model.commission_accrued_paise);

    let month = app
        .ledger
        .now()
        .with_timezone(&lightspeed_domain::calendar::IST)
        .format("%Y-%m")
        .to_string();
    let statement = get_json(&app, &merchant, &format!("/statements/{month}")).await;
    assert_eq!(statement["closing_balance_paise"], model.balance_due_paise);
    assert_eq!(statement["commissions"], 3);
    let csv = get(&app, &merchant, &format!("/statements/{month}.csv")).await;
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let csv = csv.text().await.expect("csv");
    assert!(
        csv.contains(&format!("closing_balance,{}", model.balance_due_paise)),
        "{csv}"
    );
    let html = app
        .signed(&merchant, Method::GET, &format!("/statements/{month}"), b"")
        .header("accept", "text/html")
        .send()
        .await
        .expect("request");
    assert!(
        html.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/html")
    );
    assert!(
        html.text()
            .await
            .expect("html")
            .contains(&format!("data-paise=\"{}\"", model.balance_due_paise))
    );

    let usage = get_json(&app, &merchant, "/usage").await;
    let rows = usage["payments"].as_array().expect("payments");
    let count = |status: &str| -> i64 {
        rows.iter()
            .filter(|r| r["status"] == status && r["gateway_id"] == gateway.to_string())
            .map(|r| r["payments"].as_i64().expect("count"))
            .sum()
    };
    assert_eq!((count("succeeded"), count("failed")), (3, 1));
    let volume: i64 = rows
        .iter()
        .map(|r| r["volume"].as_i64().expect("volume"))
        .sum();
    assert_eq!(volume, 305_000, "none of the other merchant's");
    assert!(usage["whatsapp"].is_array());
}
