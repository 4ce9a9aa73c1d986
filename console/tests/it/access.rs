//! Roles in the console: buttons only for what the role permits, forged changes refused, and a
//! role change or removal applied at the next request.

use lightspeed_api::testing::ADMIN_EMAIL;
use lightspeed_domain::access::Role;
use lightspeed_domain::ops_alert::{AlertKind, OpsAlert};
use lightspeed_eventstore::{CommandContext, EventStore, stream_of};

use crate::harness::{Browser, HttpSession, eventually, spawn_console};

const AUDITOR: &str = "auditor@example.com";

#[tokio::test]
async fn an_auditor_sees_no_change_buttons_and_a_forged_change_is_refused() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    let (gateway, _) = console.app.sandbox_gateway(&merchant, 10, None).await;
    console.invite(AUDITOR, Role::Auditor).await;

    let browser = Browser::start().await;
    browser.sign_in(&console, AUDITOR).await;
    let row = format!("tr[data-gateway='{gateway}']");
    eventually("the gateway is listed", || async {
        browser
            .client
            .goto(&console.page("/console/gateways"))
            .await
            .ok()?;
        browser
            .client
            .find(fantoccini::Locator::Css(&row))
            .await
            .ok()
    })
    .await;
    let buttons = browser
        .client
        .find_all(fantoccini::Locator::Css("main form button"))
        .await
        .expect("buttons");
    assert!(
        buttons.is_empty(),
        "an auditor sees {} change buttons",
        buttons.len()
    );
    let text = browser.text().await;
    assert!(!text.contains("Sessions"), "no people management: {text}");
    browser.screenshot("gateways-auditor").await;

    let session = HttpSession::sign_in(&console, AUDITOR).await;
    let csrf = session.csrf(&console).await;
    let toggle = console.page(&format!("/console/gateways/{gateway}/toggle"));
    let forged = session
        .post(&toggle, &[("enabled", "false"), ("csrf", csrf.as_str())])
        .await;
    assert_eq!(forged.status(), 403);
    let sessions = session.get(&console.page("/console/sessions")).await;
    assert_eq!(sessions.status(), 403);
    let gateway = console.app.ledger.gateway(gateway).await.expect("gateway");
    assert!(gateway.is_enabled(), "nothing changed");
}

#[tokio::test]
async fn a_role_change_or_removal_applies_at_the_next_request() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    let (gateway, _) = console.app.sandbox_gateway(&merchant, 10, None).await;
    let ops = console.invite("ops2@example.com", Role::Ops).await;
    let session = HttpSession::sign_in(&console, ops.as_str()).await;
    let csrf = session.csrf(&console).await;
    let toggle = console.page(&format!("/console/gateways/{gateway}/toggle"));

    let context = CommandContext::default();
    let ledger = &console.app.ledger;
    ledger
        .change_person_role(&ops, Role::Auditor, &context)
        .await
        .expect("demote");
    let refused = session
        .post(&toggle, &[("enabled", "false"), ("csrf", csrf.as_str())])
        .await;
    assert_eq!(refused.status(), 403);

    ledger
        .change_person_role(&ops, Role::Ops, &context)
        .await
        .expect("promote");
    let allowed = session
        .post(&toggle, &[("enabled", "false"), ("csrf", csrf.as_str())])
        .await;
    assert_eq!(allowed.status(), 303);

    ledger.remove_person(&ops, &context).await.expect("remove");
    assert_eq!(session.get(&console.page("/console")).await.status(), 303);
    let admin = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    assert_eq!(admin.get(&console.page("/console")).await.status(), 200);
}

#[tokio::test]
async fn a_firing_alert_is_acknowledged_by_a_person_and_an_auditor_cannot() {
    let console = spawn_console().await;
    console.invite(AUDITOR, Role::Auditor).await;
    let key = "gateway_limit_near.console-test";
    console
        .app
        .ledger
        .raise_alert(
            key,
            AlertKind::GatewayLimitNear,
            "gateway at 85 % of its monthly limit".into(),
            &CommandContext::default(),
        )
        .await
        .expect("raise");
    let auditor = HttpSession::sign_in(&console, AUDITOR).await;
    let page = auditor.get(&console.page("/console/alerts")).await;
    let html = page.text().await.expect("page");
    assert!(html.contains(key) && !html.contains("/ack"), "{html}");
    let csrf = auditor.csrf(&console).await;
    let forged = auditor
        .post(
            &console.page(&format!("/console/alerts/{key}/ack")),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(forged.status(), 403);

    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    browser
        .client
        .goto(&console.page("/console/alerts"))
        .await
        .expect("open");
    browser.screenshot("alerts-firing").await;
    browser
        .click(&format!(
            "#firing form[action='/console/alerts/{key}/ack'] button"
        ))
        .await;
    let stream = stream_of::<OpsAlert>(key).expect("stream");
    let events = eventually("the acknowledgement is in the log", || async {
        let events = console
            .app
            .ledger
            .store()
            .read_stream(&stream, 0, 100)
            .await
            .ok()?;
        (events.len() == 2).then_some(events)
    })
    .await;
    let acknowledged = &events[1];
    assert_eq!(acknowledged.event_type, "OpsAlertAcknowledged");
    assert_eq!(
        acknowledged.payload.to_value().expect("payload")["by"],
        ADMIN_EMAIL,
        "{}",
        acknowledged.payload
    );
    assert_eq!(
        acknowledged.metadata.actor.as_deref(),
        Some(format!("admin:{ADMIN_EMAIL}").as_str())
    );
    browser.wait_for("#recent").await;
    let text = browser.text().await;
    assert!(
        text.contains(&format!("acknowledged by {ADMIN_EMAIL}")),
        "{text}"
    );
    browser.screenshot("alerts-acknowledged").await;
}
