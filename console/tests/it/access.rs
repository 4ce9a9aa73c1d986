//! Roles in the console: buttons only for what the role permits, forged changes refused, and a
//! role change or removal applied at the next request.

use lightspeed_api::testing::ADMIN_EMAIL;
use lightspeed_domain::access::Role;
use lightspeed_domain::person::PersonEmail;
use lightspeed_eventstore::CommandContext;

use crate::harness::{Browser, ConsoleApp, HttpSession, eventually, spawn_console};

const AUDITOR: &str = "auditor@example.com";

async fn invite(console: &ConsoleApp, email: &str, role: Role) -> PersonEmail {
    let email = PersonEmail::parse(email).expect("email");
    console
        .app
        .ledger
        .invite_person(&email, role, &CommandContext::default())
        .await
        .expect("invite");
    email
}

#[tokio::test]
async fn an_auditor_sees_no_change_buttons_and_a_forged_change_is_refused() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    let (gateway, _) = console.app.sandbox_gateway(&merchant, 10, None).await;
    invite(&console, AUDITOR, Role::Auditor).await;

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
    let ops = invite(&console, "ops2@example.com", Role::Ops).await;
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
