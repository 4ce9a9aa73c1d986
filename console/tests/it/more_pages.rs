//! Queues, commission, WhatsApp and the other operating pages in a real browser: pausing and
//! resuming a queue through its confirmations, resending a WhatsApp message, WhatsApp usage
//! across merchants, the commission CSV, and forged changes refused.

use std::sync::Arc;

use lightspeed_api::testing::{ADMIN_EMAIL, TestApp, TestMerchant};
use lightspeed_domain::calendar::IST;
use lightspeed_domain::notification::{NotificationCommand, NotificationType, QueueNotification};
use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, ReportOutcome};
use lightspeed_domain::queue::Queue;
use lightspeed_domain::retry::Jitter;
use lightspeed_domain::{Notification, NotificationId, Paise, PaymentId, Provider, Wallet};
use lightspeed_eventstore::{CommandContext, EventStore, RecordedEvent, StreamId, stream_of};
use lightspeed_monitoring::queues::QueueSampler;
use lightspeed_workers::QueueName;
use lightspeed_workers::control::WorkQueues;
use serde_json::json;

use crate::harness::{Browser, ConsoleApp, HttpSession, eventually, spawn_console};

/// The queue the tests pause.
fn payouts_queue() -> &'static str {
    QueueName::Payouts.as_str()
}

async fn last_event(console: &ConsoleApp, stream: &StreamId) -> RecordedEvent {
    let events = console
        .app
        .ledger
        .store()
        .read_stream(stream, 0, 1_000)
        .await
        .expect("events");
    events.last().cloned().expect("an event")
}

/// One sample of every queue's depth, as the sampler of `lightspeed serve` takes them.
async fn sample_queues(console: &ConsoleApp) {
    let queues = WorkQueues::new(
        console.app.nats.jetstream.clone(),
        console.app.nats.config.clone(),
    );
    QueueSampler::new(console.app.ledger.clone(), Arc::new(queues))
        .sample_once()
        .await
        .expect("sample");
}

#[tokio::test]
async fn a_queue_is_paused_and_resumed_through_its_confirmations() {
    let console = spawn_console().await;
    sample_queues(&console).await;
    let queue = payouts_queue();
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    browser
        .client
        .goto(&console.page("/console/queues"))
        .await
        .expect("open");
    browser
        .wait_for(&format!("section[data-queue='{queue}'] svg.chart"))
        .await;
    browser.screenshot("queues").await;

    browser
        .click(&format!(
            "section[data-queue='{queue}'] a[data-action=pause]"
        ))
        .await;
    browser
        .wait_for("form[action$='/pause'] button[type=submit]")
        .await;
    let confirmation = browser.text().await;
    assert!(confirmation.contains("none is lost"), "{confirmation}");
    browser.screenshot("queue-confirm-pause").await;
    browser
        .click("form[action$='/pause'] button[type=submit]")
        .await;
    browser
        .wait_for(&format!(
            "section[data-queue='{queue}'] a[data-action=resume]"
        ))
        .await;
    assert!(console.app.ledger.queue_paused(queue).await.expect("state"));
    let stream = stream_of::<Queue>(queue).expect("stream");
    let paused = last_event(&console, &stream).await;
    assert_eq!(paused.event_type, "QueuePaused");
    assert_eq!(
        paused.metadata.actor.as_deref(),
        Some(format!("admin:{ADMIN_EMAIL}").as_str())
    );
    browser.screenshot("queues-paused").await;

    browser
        .click(&format!(
            "section[data-queue='{queue}'] a[data-action=resume]"
        ))
        .await;
    browser
        .wait_for("form[action$='/resume'] button[type=submit]")
        .await;
    browser
        .click("form[action$='/resume'] button[type=submit]")
        .await;
    browser
        .wait_for(&format!(
            "section[data-queue='{queue}'] a[data-action=pause]"
        ))
        .await;
    assert!(!console.app.ledger.queue_paused(queue).await.expect("state"));
    assert_eq!(
        last_event(&console, &stream).await.event_type,
        "QueueResumed"
    );
}

#[tokio::test]
async fn a_drain_needs_the_queue_name_typed_and_the_csrf_token() {
    let console = spawn_console().await;
    let queue = payouts_queue();
    let session = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let drain = console.page(&format!("/console/queues/{queue}/drain"));
    let csrf = session.csrf(&console).await;
    let unconfirmed = session
        .post(&drain, &[("csrf", csrf.as_str()), ("confirm", "nope")])
        .await;
    assert_eq!(unconfirmed.status(), 303);
    assert_eq!(
        unconfirmed.headers()["location"],
        format!("/console/queues/{queue}/drain")
    );
    let forged = session.post(&drain, &[("confirm", queue)]).await;
    assert_eq!(forged.status(), 403);
    let pause = console.page(&format!("/console/queues/{queue}/pause"));
    assert_eq!(
        session
            .post(&pause, &[("csrf", "0".repeat(64).as_str())])
            .await
            .status(),
        403
    );
    assert!(!console.app.ledger.queue_paused(queue).await.expect("state"));
    let stream = stream_of::<Queue>(queue).expect("stream");
    let events = console
        .app
        .ledger
        .store()
        .read_stream(&stream, 0, 10)
        .await
        .expect("events");
    assert!(events.is_empty(), "nothing recorded: {events:?}");

    let drained = session
        .post(&drain, &[("csrf", csrf.as_str()), ("confirm", queue)])
        .await;
    assert_eq!(drained.status(), 303);
    assert_eq!(
        last_event(&console, &stream).await.event_type,
        "QueueDrained"
    );
}

/// What became of a notification the tests queue.
#[derive(Clone, Copy)]
enum Outcome {
    /// Still waiting for its first attempt.
    Queued,
    /// The provider accepted it.
    Sent,
    /// The provider refused it for good on its first attempt.
    Failed,
}

/// A notification of `kind` with `template` for `merchant`, queued and then taken to `outcome`.
async fn notification(
    app: &TestApp,
    merchant: &TestMerchant,
    kind: NotificationType,
    template: &str,
    outcome: Outcome,
) -> NotificationId {
    let id = NotificationId::new();
    let queue = QueueNotification {
        notification_id: id,
        merchant_id: merchant.id,
        kind,
        template: template.into(),
        recipient: "919867800451".into(),
        params: vec!["ORD-1".into()],
        at: app.ledger.now(),
    };
    app.ledger
        .queue_notification(queue, &CommandContext::default())
        .await
        .expect("queue");
    let at = app.ledger.now();
    let next = match outcome {
        Outcome::Queued => return id,
        Outcome::Sent => NotificationCommand::RecordSent {
            provider_message_id: format!("wamid.{id}"),
            at,
        },
        Outcome::Failed => NotificationCommand::RecordAttemptFailed {
            error_code: "131026".into(),
            error_message: "Message undeliverable".into(),
            retryable: false,
            rate_limited: false,
            retry_after_secs: None,
            jitter: Jitter::NONE,
            at,
        },
    };
    let stream = stream_of::<Notification>(id).expect("stream");
    app.ledger
        .notifications()
        .execute(&stream, &next, &CommandContext::default())
        .await
        .expect("record");
    id
}

/// A `TXN_UPDATE` the provider refused for good, so it failed on its first attempt.
async fn failed_notification(app: &TestApp, merchant: &TestMerchant) -> NotificationId {
    notification(
        app,
        merchant,
        NotificationType::TxnUpdate,
        "txn_update",
        Outcome::Failed,
    )
    .await
}

/// The text of the element `css` names on the open page.
async fn text_of(browser: &Browser, css: &str) -> String {
    let element = browser
        .client
        .find(fantoccini::Locator::Css(css))
        .await
        .ok();
    let Some(element) = element else {
        let source = browser.client.source().await.unwrap_or_default();
        panic!("{css}: not on the page:\n{source}");
    };
    element.text().await.expect("text")
}

/// The rows of the table body `css` names, each row's cells joined by one space.
async fn rows_of(browser: &Browser, css: &str) -> Vec<String> {
    text_of(browser, css)
        .await
        .lines()
        .map(|row| row.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[tokio::test]
async fn whatsapp_usage_across_merchants_adds_up_the_messages_of_the_period() {
    let console = spawn_console().await;
    let (busy, quiet) = (console.app.merchant().await, console.app.merchant().await);
    let txn = NotificationType::TxnUpdate;
    for outcome in [Outcome::Sent, Outcome::Sent, Outcome::Sent, Outcome::Failed] {
        notification(&console.app, &busy, txn, "txn_update", outcome).await;
    }
    let low = NotificationType::LowBalance;
    for outcome in [Outcome::Queued, Outcome::Sent] {
        notification(&console.app, &quiet, low, "low_balance", outcome).await;
    }
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    let busy_name = console
        .app
        .ledger
        .current_merchant(busy.id)
        .await
        .expect("merchant")
        .merchant
        .company_name()
        .to_owned();
    let queued = "#usage-totals dd[data-figure=queued]";
    let top = "#usage-by-merchant tbody tr:first-child th a";
    // The projectors apply the messages and merchants in the background: look until all six
    // messages are counted and the busiest merchant is named.
    eventually("the six messages are counted", || async {
        browser
            .client
            .goto(&console.page("/console/whatsapp"))
            .await
            .ok()?;
        let counted = browser
            .client
            .find(fantoccini::Locator::Css(queued))
            .await
            .ok()?;
        let named = browser
            .client
            .find(fantoccini::Locator::Css(top))
            .await
            .ok()?;
        let both = (counted.text().await.ok()?, named.text().await.ok()?);
        (both == ("6".to_owned(), busy_name.clone())).then_some(())
    })
    .await;
    let figure = |name: &'static str| {
        let browser = &browser;
        async move { text_of(browser, &format!("#usage-totals dd[data-figure={name}]")).await }
    };
    assert_eq!(figure("sent").await, "4");
    assert_eq!(figure("failed").await, "1");
    assert_eq!(
        figure("failure-rate").await,
        "20.00%",
        "1 given up of 5 finished"
    );
    let templates = rows_of(&browser, "#usage-by-template tbody").await;
    assert_eq!(
        templates,
        ["txn_update 4 3 1 25.00%", "low_balance 2 1 0 0.00%"]
    );
    let merchants = rows_of(&browser, "#usage-by-merchant tbody").await;
    assert_eq!(merchants.len(), 2, "{merchants:?}");
    assert!(
        merchants[0].ends_with(" 4 3 1 25.00%"),
        "busiest first: {merchants:?}"
    );
    assert!(merchants[1].ends_with(" 2 1 0 0.00%"), "{merchants:?}");
    let types = rows_of(&browser, "#usage-by-type tbody").await;
    assert_eq!(
        types,
        ["TXN_UPDATE 0 3 1 25.00%", "LOW_BALANCE 1 1 0 0.00%"]
    );
    browser
        .client
        .goto(&console.page("/console/whatsapp#usage-across"))
        .await
        .expect("open");
    browser.screenshot("whatsapp-usage").await;

    browser
        .client
        .goto(&console.page("/console/whatsapp?usage=month"))
        .await
        .expect("open");
    assert_eq!(
        text_of(&browser, queued).await,
        "6",
        "today is in this month"
    );
    let yesterday =
        (console.app.ledger.now().with_timezone(&IST) - chrono::Duration::days(1)).date_naive();
    browser
        .client
        .goto(&console.page(&format!(
            "/console/whatsapp?usage=days&from={yesterday}&to={yesterday}"
        )))
        .await
        .expect("open");
    assert_eq!(text_of(&browser, queued).await, "0", "nothing yesterday");
    assert_eq!(
        text_of(&browser, "#usage-totals dd[data-figure=failure-rate]").await,
        "—"
    );
    let today = console.app.ledger.now().with_timezone(&IST).date_naive();
    browser
        .client
        .goto(&console.page(&format!(
            "/console/whatsapp?usage=days&from={today}&to={yesterday}"
        )))
        .await
        .expect("open");
    let refused = text_of(&browser, "#usage-across p.notice").await;
    assert!(refused.contains("at most 366 days"), "{refused}");
}

#[tokio::test]
async fn a_failed_whatsapp_message_is_resent_from_the_log() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    let id = failed_notification(&console.app, &merchant).await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    let row = format!("tr[data-notification='{id}']");
    eventually("the failed message is listed", || async {
        browser
            .client
            .goto(&console.page("/console/whatsapp?status=failed"))
            .await
            .ok()?;
        browser
            .client
            .find(fantoccini::Locator::Css(&format!("{row} form button")))
            .await
            .ok()
    })
    .await;
    let text = browser.text().await;
    assert!(text.contains("Message undeliverable"), "{text}");
    browser.screenshot("whatsapp").await;

    browser
        .click(&format!("{row} form[action$='/resend'] button"))
        .await;
    browser.wait_for("p.notice[role=status]").await;
    let stream = stream_of::<Notification>(id).expect("stream");
    let resent = last_event(&console, &stream).await;
    assert_eq!(resent.event_type, "NotificationRequeued");
    assert_eq!(
        resent.metadata.actor.as_deref(),
        Some(format!("admin:{ADMIN_EMAIL}").as_str())
    );
    eventually("the message shows queued again", || async {
        browser
            .client
            .goto(&console.page(&format!("/console/whatsapp?merchant={}", merchant.id)))
            .await
            .ok()?;
        let row = browser
            .client
            .find(fantoccini::Locator::Css(&row))
            .await
            .ok()?;
        row.text().await.ok().filter(|t| t.contains("queued"))
    })
    .await;
    let usage = browser.text().await;
    assert!(usage.contains("txn_update"), "{usage}");
    browser.screenshot("whatsapp-merchant-usage").await;
}

/// A payment of `amount` paise initiated and settled as succeeded by the PSP's report.
async fn paid(app: &TestApp, merchant: &TestMerchant, order: &str, amount: i64) -> PaymentId {
    let answer = app
        .initiate(
            merchant,
            &json!({"amount": amount, "currency": "INR", "order_id": order}),
        )
        .await;
    let body: serde_json::Value = answer.json().await.expect("json");
    let payment_id: PaymentId = body["transaction_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let payment = app
        .ledger
        .payment_of(merchant.id, payment_id)
        .await
        .expect("payment");
    let report = ReportOutcome {
        merchant_id: merchant.id,
        gateway_id: payment.gateway_id(),
        provider: Provider::Sandbox,
        dedupe_key: format!("evt-{payment_id}"),
        payment_id: Some(payment_id),
        psp_order_id: None,
        psp_payment_id: Some(format!("sbp_{payment_id}")),
        outcome: PspOutcome::Succeeded {
            amount: Paise(amount),
        },
        source: OutcomeSource::Webhook,
        at: app.ledger.now(),
    };
    app.ledger
        .settle_outcome(&report, &CommandContext::default())
        .await
        .expect("settle");
    payment_id
}

#[tokio::test]
async fn the_commission_csv_is_the_admin_export_of_the_ledger() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    console.app.sandbox_gateway(&merchant, 10, None).await;
    let first = paid(&console.app, &merchant, "ORD-1", 49_900).await;
    let second = paid(&console.app, &merchant, "ORD-2", 12_345_678).await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    eventually("both commissions are in the ledger", || async {
        browser
            .client
            .goto(&console.page("/console/commission"))
            .await
            .ok()?;
        let rows = browser
            .client
            .find_all(fantoccini::Locator::Css(
                "#ledger-title ~ div table tbody tr",
            ))
            .await
            .ok()?;
        (rows.len() == 2).then_some(())
    })
    .await;
    let page = browser.text().await;
    assert!(page.contains("₹17.47"), "3.5% of ₹499.00: {page}");
    browser.screenshot("commission").await;
    let href = browser
        .client
        .find(fantoccini::Locator::Css("a#csv"))
        .await
        .expect("csv link")
        .attr("href")
        .await
        .expect("href")
        .expect("an address");

    let session = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let download = session.get(&console.page(&href)).await;
    assert_eq!(download.status(), 200);
    assert!(
        download.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .contains("attachment")
    );
    let csv = download.text().await.expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[0].starts_with("entry_type,source_id,merchant_id,amount_paise"),
        "{csv}"
    );
    assert!(
        lines[1].starts_with(&format!("COMMISSION,{second},{},", merchant.id)),
        "{csv}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "COMMISSION,{first},{},1747,1747,49900,350",
            merchant.id
        )),
        "{csv}"
    );
    let admin = console
        .app
        .admin(reqwest::Method::GET, "/admin/commission/ledger")
        .header("accept", "text/csv")
        .send()
        .await
        .expect("admin export");
    assert_eq!(
        admin.text().await.expect("csv"),
        csv,
        "the console's CSV is the admin API's"
    );
}

#[tokio::test]
async fn a_manual_settlement_is_recorded_with_the_person_and_a_forged_one_is_refused() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    console.app.sandbox_gateway(&merchant, 10, None).await;
    paid(&console.app, &merchant, "ORD-1", 100_000_000).await;
    let session = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let settle = console.page("/console/commission/settlements");
    let merchant_id = merchant.id.to_string();
    let form = |csrf: &str, amount: &str| {
        [
            ("csrf", csrf),
            ("merchant", merchant_id.as_str()),
            ("amount", amount),
            ("reference", "NEFT-77"),
        ]
        .map(|(k, v)| (k, v.to_owned()))
    };
    let post = |fields: [(&'static str, String); 4]| {
        let (session, settle) = (&session, &settle);
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            session.post(settle, &pairs).await.status()
        }
    };
    assert_eq!(post(form("", "1,000.50")).await, 403);
    let csrf = session.csrf(&console).await;
    assert_eq!(post(form(&csrf, "10.001")).await, 422);
    assert_eq!(post(form(&csrf, "1,000.50")).await, 303);
    let wallet = stream_of::<Wallet>(merchant.id).expect("stream");
    let settled = last_event(&console, &wallet).await;
    assert_eq!(settled.event_type, "ManualSettlementRecorded");
    assert_eq!(
        settled.metadata.actor.as_deref(),
        Some(format!("admin:{ADMIN_EMAIL}").as_str())
    );
    assert_eq!(
        settled.payload.to_value().expect("payload")["amount"],
        100_050,
        "{}",
        settled.payload
    );
}

#[tokio::test]
async fn the_other_pages_render_and_the_audit_log_names_the_person() {
    let console = spawn_console().await;
    let queue = payouts_queue();
    let session = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let csrf = session.csrf(&console).await;
    let pause = console.page(&format!("/console/queues/{queue}/pause"));
    assert_eq!(
        session
            .post(&pause, &[("csrf", csrf.as_str())])
            .await
            .status(),
        303
    );

    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    eventually("the pause is in the audit log", || async {
        browser
            .client
            .goto(&console.page("/console/audit"))
            .await
            .ok()?;
        Some(browser.text().await).filter(|t| t.contains("QueuePaused") && t.contains(ADMIN_EMAIL))
    })
    .await;
    browser.screenshot("audit").await;
    for (path, name, heading) in [
        ("/console/deliveries", "deliveries", "Webhook deliveries"),
        ("/console/refunds", "refunds", "Refunds"),
        ("/console/alerts", "alerts", "Alerts"),
        ("/console/projections", "projections", "Projections"),
    ] {
        browser
            .client
            .goto(&console.page(path))
            .await
            .expect("open");
        browser.wait_for("main h1").await;
        let text = browser.text().await;
        assert!(text.contains(heading), "{path}: {text}");
        browser.screenshot(name).await;
    }
    let projections = browser.text().await;
    assert!(
        projections.contains("transactions") && projections.contains("active"),
        "{projections}"
    );

    browser.click("a[href^='/console/prefs?lang=hi']").await;
    browser.wait_for("html[lang=hi]").await;
    browser
        .client
        .goto(&console.page("/console/queues"))
        .await
        .expect("open");
    browser
        .wait_for(&format!("section[data-queue='{queue}']"))
        .await;
    let hindi = browser.text().await;
    assert!(
        hindi.contains("कतारें") && hindi.contains("रुकी हुई"),
        "{hindi}"
    );
    browser.screenshot("queues-hindi").await;
}
