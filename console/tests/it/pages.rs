//! The pages in a real browser: what they show, and changes made through them.

use lightspeed_api::testing::ADMIN_EMAIL;
use lightspeed_eventstore::{EventStore, StreamId};
use serde_json::json;

use crate::harness::{Browser, ConsoleApp, eventually, spawn_console};

/// The text of the gateways table once it shows `expected` for the gateway's row.
async fn gateway_row_says(browser: &Browser, console: &ConsoleApp, gateway: &str, expected: &str) {
    eventually(&format!("gateway {gateway} shows {expected}"), || async {
        browser
            .client
            .goto(&console.page("/console/gateways"))
            .await
            .ok()?;
        let row = browser
            .client
            .find(fantoccini::Locator::Css(&format!(
                "tr[data-gateway='{gateway}']"
            )))
            .await
            .ok()?;
        row.text().await.ok().filter(|text| text.contains(expected))
    })
    .await;
}

#[tokio::test]
async fn toggling_a_gateway_changes_the_list_and_the_log_names_the_person() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    let (gateway, _) = console.app.sandbox_gateway(&merchant, 10, None).await;
    let (_second, _) = console.app.sandbox_gateway(&merchant, 5, None).await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    let id = gateway.to_string();
    gateway_row_says(&browser, &console, &id, "Enabled").await;
    browser.screenshot("gateways").await;

    browser
        .click(&format!(
            "tr[data-gateway='{id}'] form[action$='/toggle'] button"
        ))
        .await;
    gateway_row_says(&browser, &console, &id, "Disabled").await;
    browser.screenshot("gateways-after-toggle").await;

    let stream = StreamId::of("gateway", &id).expect("stream");
    let events = console
        .app
        .ledger
        .store()
        .read_stream(&stream, 0, 100)
        .await
        .expect("events");
    let last = events.last().expect("an event");
    assert_eq!(last.event_type, "GatewayToggled");
    assert_eq!(
        last.metadata.actor.as_deref(),
        Some("admin:ops@example.com")
    );
}

#[tokio::test]
async fn a_payments_page_shows_every_event_of_its_stream_in_order() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    console.app.sandbox_gateway(&merchant, 10, None).await;
    let answer = console
        .app
        .initiate(
            &merchant,
            &json!({"amount": 12_345_678, "currency": "INR", "order_id": "order-42"}),
        )
        .await;
    assert_eq!(
        answer.status(),
        201,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let body: serde_json::Value = answer.json().await.expect("json");
    let payment = body["transaction_id"]
        .as_str()
        .expect("transaction id")
        .to_owned();

    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    eventually("the payment is listed", || async {
        browser
            .client
            .goto(&console.page("/console/transactions"))
            .await
            .ok()?;
        Some(browser.text().await).filter(|t| t.contains("order-42"))
    })
    .await;
    let list = browser.text().await;
    assert!(list.contains("₹1,23,456.78"), "{list}");
    browser.screenshot("transactions").await;

    browser
        .client
        .goto(&console.page(&format!("/console/transactions/{payment}")))
        .await
        .expect("open");
    browser.wait_for("#history").await;
    let history = browser.text().await;
    assert!(history.contains("PaymentInitiated"), "{history}");
    assert!(
        history.contains("GatewayBooked") || history.contains("PaymentInitiated"),
        "{history}"
    );
    browser.screenshot("transaction").await;
}

#[tokio::test]
async fn the_overview_merchants_and_sessions_pages_render_in_english_and_hindi() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    console.app.sandbox_gateway(&merchant, 10, None).await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    eventually("the merchant is listed", || async {
        browser
            .client
            .goto(&console.page("/console/merchants"))
            .await
            .ok()?;
        Some(browser.text().await).filter(|t| t.contains("Acme Retail"))
    })
    .await;
    browser.screenshot("merchants").await;
    browser
        .client
        .goto(&console.page(&format!("/console/merchants/{}", merchant.id)))
        .await
        .expect("open");
    browser.wait_for("dl.facts").await;
    browser.screenshot("merchant").await;
    browser
        .client
        .goto(&console.page("/console/sessions"))
        .await
        .expect("open");
    browser.wait_for("table").await;
    browser.screenshot("sessions").await;

    browser.click("a[href^='/console/prefs?lang=hi']").await;
    browser.wait_for("html[lang=hi]").await;
    browser.click("a[href^='/console/prefs?theme=dark']").await;
    browser.wait_for("html[data-theme=dark]").await;
    let text = browser.text().await;
    assert!(text.contains("सत्र"), "{text}");
    browser.screenshot("sessions-hindi-dark").await;
    browser
        .client
        .goto(&console.page("/console"))
        .await
        .expect("open");
    browser.wait_for("main h1").await;
    browser.screenshot("overview-hindi-dark").await;
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_assets_are_cached_by_digest() {
    let console = spawn_console().await;
    let page = reqwest::get(console.page("/console/sign-in"))
        .await
        .expect("page");
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert!(
        headers.get("strict-transport-security").is_none(),
        "no HSTS on loopback"
    );
    let html = page.text().await.expect("html");
    assert!(
        !html.contains("<script>") && !html.contains("style=\""),
        "no inline script or style"
    );
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("script path");
    let asset = reqwest::get(console.page(script)).await.expect("asset");
    assert_eq!(asset.status(), 200);
    assert!(
        asset.headers()["cache-control"]
            .to_str()
            .expect("cc")
            .contains("immutable")
    );
    let stale = reqwest::get(console.page("/console/assets/htmx-0000.js"))
        .await
        .expect("stale");
    assert_eq!(stale.status(), 404);
}
