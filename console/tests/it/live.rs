//! The live pages in a real browser: what happens elsewhere shows on an open page without a
//! reload, carried by the hub's Server-Sent Events stream.

use fantoccini::Locator;
use lightspeed_api::testing::ADMIN_EMAIL;
use lightspeed_domain::access::Role;
use lightspeed_domain::person::PersonEmail;
use lightspeed_eventstore::CommandContext;
use lightspeed_workers::QueueName;
use serde_json::json;

use crate::harness::{Browser, ConsoleApp, HttpSession, eventually, spawn_console};

/// The text of the first element matching `css` on the open page, once it contains `expected`
/// (looked at again and again; the page is never reloaded).
async fn shows(browser: &Browser, css: &str, expected: &str) -> String {
    eventually(&format!("{css} shows {expected}"), || async {
        let element = browser.client.find(Locator::Css(css)).await.ok()?;
        element
            .text()
            .await
            .ok()
            .filter(|text| text.contains(expected))
    })
    .await
}

/// Marks the open page, so a reload (which would lose the mark) is told from a live update.
async fn mark_page(browser: &Browser) {
    browser
        .client
        .execute(
            "document.body.dataset.testMark = 'not reloaded'; return null;",
            vec![],
        )
        .await
        .expect("mark the page");
}

async fn page_is_marked(browser: &Browser) -> bool {
    let mark = browser
        .client
        .execute("return document.body.dataset.testMark || null;", vec![])
        .await
        .expect("read the mark");
    mark.as_str() == Some("not reloaded")
}

/// Waits until the open page's stream is connected: the hub counts a subscriber.
async fn stream_connected(console: &ConsoleApp) {
    eventually("the page's live stream is connected", || async {
        (console.hub.subscribers() > 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_payment_initiated_through_the_api_appears_on_the_open_transactions_page() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    console.app.sandbox_gateway(&merchant, 10, None).await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    browser
        .client
        .goto(&console.page("/console/transactions"))
        .await
        .expect("open transactions");
    browser.wait_for("tbody#transaction-rows").await;
    mark_page(&browser).await;
    stream_connected(&console).await;

    let answer = console
        .app
        .initiate(
            &merchant,
            &json!({"amount": 12_345_678, "currency": "INR", "order_id": "live-order-7"}),
        )
        .await;
    assert_eq!(
        answer.status(),
        201,
        "{}",
        answer.text().await.unwrap_or_default()
    );

    let row = shows(&browser, "tbody#transaction-rows tr", "live-order-7").await;
    assert!(row.contains("₹1,23,456.78"), "{row}");
    assert!(row.contains("IST"), "{row}");
    assert!(row.contains("created"), "{row}");
    assert!(
        page_is_marked(&browser).await,
        "the row came without a reload"
    );
    browser.screenshot("transactions-live").await;
}

#[tokio::test]
async fn pausing_a_queue_changes_the_open_overview() {
    let console = spawn_console().await;
    let queue = QueueName::Payouts.as_str();
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    browser.wait_for("tbody#queue-rows").await;
    mark_page(&browser).await;
    stream_connected(&console).await;
    // The sampler's first figures show the queue running.
    let before = shows(&browser, "tbody#queue-rows", queue).await;
    assert!(!before.contains("Paused"), "{before}");

    let answer = console
        .app
        .admin(
            reqwest::Method::POST,
            &format!("/admin/queues/{queue}/pause"),
        )
        .send()
        .await
        .expect("pause");
    assert_eq!(
        answer.status(),
        200,
        "{}",
        answer.text().await.unwrap_or_default()
    );

    let rows = shows(&browser, "tbody#queue-rows", "Paused").await;
    let paused_row = rows
        .lines()
        .find(|line| line.contains("Paused"))
        .expect("a paused row");
    assert!(paused_row.contains(queue), "{rows}");
    assert!(
        page_is_marked(&browser).await,
        "the block changed without a reload"
    );
    browser
        .client
        .execute(
            "document.getElementById('queue-rows').scrollIntoView(); return null;",
            vec![],
        )
        .await
        .expect("scroll to the queues");
    browser.screenshot("overview-live-queue-paused").await;
}

#[tokio::test]
async fn a_live_stream_needs_a_session_and_names_a_known_page() {
    let console = spawn_console().await;
    let http = reqwest::Client::new();
    let anonymous = http
        .get(console.page("/console/live/transactions"))
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status(), 401);

    // Any role reads: an auditor follows the feed.
    let auditor = PersonEmail::parse("auditor@example.com").expect("email");
    console
        .app
        .ledger
        .invite_person(&auditor, Role::Auditor, &CommandContext::default())
        .await
        .expect("invite");
    let session = HttpSession::sign_in(&console, "auditor@example.com").await;
    let unknown = session.get(&console.page("/console/live/nothing")).await;
    assert_eq!(unknown.status(), 404);
    let stream = session
        .get(&console.page("/console/live/transactions"))
        .await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
}

#[tokio::test]
async fn a_gateway_turned_off_through_the_api_shows_on_the_open_gateways_page() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    let (gateway, _) = console.app.sandbox_gateway(&merchant, 10, None).await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    browser
        .client
        .goto(&console.page("/console/gateways"))
        .await
        .expect("open gateways");
    browser.wait_for("section.live-changes ul.live-list").await;
    mark_page(&browser).await;
    stream_connected(&console).await;

    let answer = console
        .app
        .admin_json(
            reqwest::Method::PATCH,
            &format!("/admin/gateways/{gateway}/toggle"),
            &json!({"enabled": false}),
        )
        .send()
        .await
        .expect("toggle");
    assert_eq!(
        answer.status(),
        200,
        "{}",
        answer.text().await.unwrap_or_default()
    );

    let change = shows(&browser, "section.live-changes ul.live-list li", "disabled").await;
    assert!(change.contains(&gateway.to_string()), "{change}");
    assert!(change.contains("IST"), "{change}");
    assert!(
        page_is_marked(&browser).await,
        "the change came without a reload"
    );
    browser.screenshot("gateways-live").await;
}

/// Settles `payment` as the PSP reports it: `Some(amount)` paid, `None` failed.
async fn settle(
    console: &ConsoleApp,
    merchant: &lightspeed_api::testing::TestMerchant,
    payment: &str,
    paid: Option<i64>,
) {
    use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, ReportOutcome};
    let payment_id: lightspeed_domain::PaymentId = payment.parse().expect("id");
    let current = console
        .app
        .ledger
        .payment_of(merchant.id, payment_id)
        .await
        .expect("payment");
    let outcome = match paid {
        Some(amount) => PspOutcome::Succeeded {
            amount: lightspeed_domain::Paise(amount),
        },
        None => PspOutcome::Failed {
            code: "CARD_DECLINED".into(),
            reason: "declined".into(),
        },
    };
    let report = ReportOutcome {
        merchant_id: merchant.id,
        gateway_id: current.gateway_id(),
        provider: lightspeed_domain::Provider::Sandbox,
        dedupe_key: format!("evt-{payment}"),
        payment_id: Some(payment_id),
        psp_order_id: None,
        psp_payment_id: Some(format!("sbp_{payment}")),
        outcome,
        source: OutcomeSource::Webhook,
        at: console.app.ledger.now(),
    };
    console
        .app
        .ledger
        .settle_outcome(&report, &CommandContext::default())
        .await
        .expect("settle");
}

async fn initiated(
    console: &ConsoleApp,
    merchant: &lightspeed_api::testing::TestMerchant,
    order: &str,
    amount: i64,
) -> String {
    let answer = console
        .app
        .initiate(
            merchant,
            &json!({"amount": amount, "currency": "INR", "order_id": order}),
        )
        .await;
    assert_eq!(answer.status(), 201);
    let body: serde_json::Value = answer.json().await.expect("json");
    body["transaction_id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_payment_on_the_open_transactions_page_changes_status_in_place() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    console.app.sandbox_gateway(&merchant, 10, None).await;
    // One payment already listed when the page opens, one added live.
    let listed = initiated(&console, &merchant, "listed-order", 50_000).await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    eventually("the first payment is listed", || async {
        browser
            .client
            .goto(&console.page("/console/transactions"))
            .await
            .ok()?;
        Some(browser.text().await).filter(|t| t.contains("listed-order"))
    })
    .await;
    mark_page(&browser).await;
    stream_connected(&console).await;
    let added = initiated(&console, &merchant, "added-order", 12_345_678).await;
    shows(&browser, "tbody#transaction-rows", "added-order").await;

    settle(&console, &merchant, &listed, Some(50_000)).await;
    settle(&console, &merchant, &added, None).await;
    let paid = shows(
        &browser,
        &format!("tr[data-payment='{listed}']"),
        "succeeded",
    )
    .await;
    assert!(!paid.contains('—'), "its commission is shown: {paid}");
    let failed = shows(&browser, &format!("tr[data-payment='{added}']"), "failed").await;
    assert!(failed.contains("added-order"), "{failed}");
    let rows = browser
        .client
        .find_all(Locator::Css("tbody#transaction-rows tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2, "changed in place, no rows added");
    assert!(
        page_is_marked(&browser).await,
        "the statuses changed without a reload"
    );
    browser.screenshot("transactions-live-status").await;
}

#[tokio::test]
async fn a_revoked_sessions_open_page_stops_and_says_it_is_signed_out() {
    let console = spawn_console().await;
    invite_ops(&console, "ops3@example.com").await;
    let browser = Browser::start().await;
    browser.sign_in(&console, "ops3@example.com").await;
    browser
        .client
        .goto(&console.page("/console/transactions"))
        .await
        .expect("open");
    browser.wait_for("tbody#transaction-rows").await;
    mark_page(&browser).await;
    stream_connected(&console).await;

    let cookie = browser
        .client
        .get_named_cookie("ls_session")
        .await
        .expect("the session cookie");
    let session_id = cookie.value().split('.').next().expect("id").to_owned();
    let admin = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let csrf = admin.csrf(&console).await;
    let revoked = admin
        .post(
            &console.page(&format!("/console/sessions/{session_id}/revoke")),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(revoked.status(), 303);

    let notice = shows(&browser, ".live-signed-out", "signed out").await;
    assert!(notice.contains("Sign in again"), "{notice}");
    eventually("the stream ended", || async {
        (console.hub.subscribers() == 0).then_some(())
    })
    .await;
    assert!(page_is_marked(&browser).await, "told without a reload");
    browser.screenshot("transactions-signed-out").await;
}

#[tokio::test]
async fn an_expired_sessions_stream_ends_with_signed_out() {
    let console = spawn_console().await;
    let session = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let mut stream = session.get(&console.page("/console/live/overview")).await;
    assert_eq!(stream.status(), 200);
    // Past the idle time, with the page left open: the stream does not keep it alive.
    console.app.clock.advance(chrono::Duration::minutes(31));
    let mut received = String::new();
    // A guard against a stream that never ends (the session is rechecked every few seconds).
    let read = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while let Some(chunk) = stream.chunk().await.expect("chunk") {
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(read.is_ok(), "the stream never ended: {received}");
    assert!(
        received.contains("event: signed_out"),
        "the stream ends with signed_out: {received}"
    );
    let page = session.get(&console.page("/console")).await;
    assert_eq!(page.status(), 303, "the session has ended");
}

async fn invite_ops(console: &ConsoleApp, email: &str) {
    let email = PersonEmail::parse(email).expect("email");
    console
        .app
        .ledger
        .invite_person(&email, Role::Ops, &CommandContext::default())
        .await
        .expect("invite");
}
