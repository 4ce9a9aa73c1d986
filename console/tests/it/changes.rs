//! Changes made from the console in a real browser: adding a gateway with sealed credentials,
//! a merchant's checkout settings, key regeneration, endpoints and statements, a projection
//! rebuild followed live; each in the log with the person's email, refused for an auditor and
//! without the CSRF token.

use fantoccini::Locator;
use lightspeed_api::testing::{ADMIN_EMAIL, MerchantSettings};
use lightspeed_domain::access::Role;
use lightspeed_domain::checkout_settings::RoutingMode;
use lightspeed_eventstore::{EventStore, RecordedEvent, StreamId};

use crate::harness::{Browser, ConsoleApp, HttpSession, eventually, spawn_console};

const AUDITOR: &str = "auditor@example.com";
/// A sandbox webhook secret, which must never come back to a page.
const SECRET: &str = "whsec_c2VhbGVkLWluLXRoZS1jb25zb2xlLXRlc3Q=";

async fn stream_events(console: &ConsoleApp, category: &str, id: &str) -> Vec<RecordedEvent> {
    let stream = StreamId::of(category, id).expect("stream");
    console
        .app
        .ledger
        .store()
        .read_stream(&stream, 0, 1_000)
        .await
        .expect("events")
}

async fn fill(browser: &Browser, css: &str, value: &str) {
    let field = browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(value).await.expect("type");
}

async fn page_source(browser: &Browser) -> String {
    browser.client.source().await.expect("source")
}

/// The audit page, once it lists `action`.
async fn audit_lists(browser: &Browser, console: &ConsoleApp, action: &str) -> String {
    eventually(&format!("the audit log lists {action}"), || async {
        browser
            .client
            .goto(&console.page("/console/audit"))
            .await
            .ok()?;
        Some(browser.text().await).filter(|t| t.contains(action))
    })
    .await
}

#[tokio::test]
async fn a_gateway_is_added_with_sealed_credentials_never_shown_back() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    browser
        .client
        .goto(&console.page(&format!("/console/gateways?merchant={}", merchant.id)))
        .await
        .expect("open");
    browser.click("details#add-gateway summary").await;
    fill(&browser, "#add-gateway-form input[name=label]", "Sandbox A").await;
    fill(&browser, "#add-gateway-form input[name=priority]", "7").await;
    // A secret of the wrong shape is refused, and not written back into the form.
    fill(
        &browser,
        "input[name='cred-sandbox-webhook_secret']",
        "not-a-secret-xyz",
    )
    .await;
    browser.click("#add-gateway-form button[type=submit]").await;
    browser.wait_for("p.notice.bad").await;
    let refused = page_source(&browser).await;
    assert!(refused.contains("webhook_secret"), "names the field");
    assert!(
        !refused.contains("not-a-secret-xyz"),
        "the secret is not shown back"
    );
    browser.screenshot("gateway-add-refused").await;

    fill(
        &browser,
        "input[name='cred-sandbox-webhook_secret']",
        SECRET,
    )
    .await;
    browser.click("#add-gateway-form button[type=submit]").await;
    browser.wait_for("p.notice[role=status]").await;
    let added = page_source(&browser).await;
    assert!(added.contains("Gateway added"), "{added}");
    assert!(!added.contains(SECRET), "the secret is not shown back");
    browser.screenshot("gateway-added").await;

    let gateways = console
        .app
        .ledger
        .merchant(merchant.id)
        .await
        .expect("merchant")
        .active_gateways()
        .iter()
        .copied()
        .collect::<Vec<_>>();
    assert_eq!(gateways.len(), 1, "one gateway attached");
    let gateway = console
        .app
        .ledger
        .gateway(gateways[0])
        .await
        .expect("gateway");
    assert_eq!(gateway.label(), "Sandbox A");
    assert_eq!(gateway.settings().priority, 7);
    let events = stream_events(&console, "gateway", &gateways[0].to_string()).await;
    let registered = events.first().expect("registered");
    assert_eq!(registered.event_type, "GatewayRegistered");
    assert_eq!(
        registered.metadata.actor.as_deref(),
        Some(format!("admin:{ADMIN_EMAIL}").as_str())
    );
    assert!(
        !registered.payload.to_string().contains("c2VhbGVk"),
        "the log holds the credentials sealed"
    );
    assert!(
        browser
            .client
            .find(Locator::Css(&format!("tr[data-gateway='{}']", gateways[0])))
            .await
            .is_ok(),
        "the answered list shows the new gateway"
    );
    let address = browser.client.current_url().await.expect("url");
    assert_eq!(
        address.path(),
        "/console/gateways",
        "a reload reads the list"
    );
    let audit = audit_lists(&browser, &console, "GatewayRegistered").await;
    assert!(audit.contains(ADMIN_EMAIL), "{audit}");
    assert!(!page_source(&browser).await.contains(SECRET));

    // An auditor has no form, and a forged one is refused; so is one without the CSRF token.
    console.invite(AUDITOR, Role::Auditor).await;
    let auditor = HttpSession::sign_in(&console, AUDITOR).await;
    let page = auditor
        .get(&console.page("/console/gateways"))
        .await
        .text()
        .await
        .expect("page");
    assert!(!page.contains("add-gateway-form"), "no form for an auditor");
    let csrf = auditor.csrf(&console).await;
    let merchant_id = merchant.id.to_string();
    let form = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("provider".to_owned(), "sandbox".to_owned()),
            ("cred-sandbox-webhook_secret".to_owned(), SECRET.to_owned()),
            ("merchant_id".to_owned(), merchant_id.clone()),
        ]
    };
    let post = |session: &HttpSession, form: Vec<(String, String)>| {
        let url = console.page("/console/gateways/new");
        let request = session
            .http
            .post(url)
            .header("cookie", session.cookie.clone())
            .form(&form);
        async move { request.send().await.expect("post") }
    };
    let refused = post(&auditor, form(&csrf)).await;
    assert_eq!(refused.status(), 403);
    let admin = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let refused = post(&admin, form("")).await;
    assert_eq!(refused.status(), 403);
    let still = console
        .app
        .ledger
        .merchant(merchant.id)
        .await
        .expect("merchant");
    assert_eq!(still.active_gateways().len(), 1, "nothing more was added");
}

#[tokio::test]
async fn a_merchants_page_changes_checkout_settings_regenerates_keys_and_serves_statements() {
    let console = spawn_console().await;
    let merchant = console
        .app
        .merchant_with(MerchantSettings {
            webhook_url: Some("https://merchant.example.com/hooks".into()),
            ..MerchantSettings::default()
        })
        .await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    let path = format!("/console/merchants/{}", merchant.id);
    eventually("the merchant's page", || async {
        browser.client.goto(&console.page(&path)).await.ok()?;
        browser
            .client
            .find(Locator::Css("dl.facts"))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let endpoints = browser
        .client
        .find(Locator::Css("table#endpoints"))
        .await
        .expect("endpoints")
        .text()
        .await
        .expect("text");
    assert!(
        endpoints.contains("https://merchant.example.com/hooks"),
        "{endpoints}"
    );
    assert!(endpoints.contains("Enabled"), "{endpoints}");
    assert!(endpoints.contains('*'), "its event filter: {endpoints}");
    browser.screenshot("merchant-detail").await;
    browser
        .client
        .execute(
            "document.getElementById('endpoints').scrollIntoView(); return null;",
            vec![],
        )
        .await
        .expect("scroll to the endpoints");
    browser.screenshot("merchant-detail-endpoints").await;

    // Checkout settings.
    browser
        .client
        .find(Locator::Css(
            "select[name=routing_mode] option[value=round_robin]",
        ))
        .await
        .expect("option")
        .click()
        .await
        .expect("choose");
    fill(&browser, "input[name=temporary_failure_secs]", "120").await;
    browser.click("form#checkout button[type=submit]").await;
    browser.wait_for("p.notice[role=status]").await;
    assert!(browser.text().await.contains("Checkout settings saved"));
    let changed = console
        .app
        .ledger
        .merchant(merchant.id)
        .await
        .expect("merchant");
    assert_eq!(changed.checkout().routing_mode, RoutingMode::RoundRobin);
    assert_eq!(changed.checkout().temporary_failure_secs, 120);
    let events = stream_events(&console, "merchant", &merchant.id.to_string()).await;
    let last = events.last().expect("an event");
    assert_eq!(last.event_type, "MerchantCheckoutSettingsChanged");
    assert_eq!(
        last.metadata.actor.as_deref(),
        Some(format!("admin:{ADMIN_EMAIL}").as_str())
    );

    // Key regeneration: the new key and salt shown once, the old key gone.
    browser.click("details#regenerate-keys summary").await;
    browser
        .click("details#regenerate-keys button[type=submit]")
        .await;
    browser.wait_for("#new-keys").await;
    let shown = browser
        .client
        .find(Locator::Css("#new-keys"))
        .await
        .expect("keys")
        .text()
        .await
        .expect("text");
    assert!(shown.contains("Client salt"), "{shown}");
    browser.screenshot("merchant-keys-regenerated").await;
    let address = browser.client.current_url().await.expect("url");
    assert_eq!(
        address.path(),
        path,
        "a reload reads the page, not the change"
    );
    let rotated = console
        .app
        .ledger
        .merchant(merchant.id)
        .await
        .expect("merchant");
    assert_ne!(rotated.client_key().as_str(), merchant.client_key);
    assert!(shown.contains(rotated.client_key().as_str()), "{shown}");
    browser
        .client
        .goto(&console.page(&path))
        .await
        .expect("open again");
    browser.wait_for("dl.facts").await;
    assert!(
        browser
            .client
            .find(Locator::Css("#new-keys"))
            .await
            .is_err(),
        "the salt is shown once"
    );

    // In Hindi.
    browser.click("a[href^='/console/prefs?lang=hi']").await;
    browser.wait_for("html[lang=hi]").await;
    browser
        .client
        .goto(&console.page(&path))
        .await
        .expect("open in Hindi");
    browser.wait_for("form#checkout").await;
    let hindi = browser.text().await;
    assert!(hindi.contains("चेकआउट सेटिंग्स सहेजें"), "{hindi}");
    assert!(hindi.contains("वेबहुक एंडपॉइंट"), "{hindi}");
    browser
        .client
        .execute(
            "document.getElementById('checkout').scrollIntoView(); return null;",
            vec![],
        )
        .await
        .expect("scroll");
    browser.screenshot("merchant-detail-hindi").await;
    browser.click("a[href^='/console/prefs?lang=en']").await;
    browser.wait_for("html[lang=en]").await;
    browser
        .client
        .goto(&console.page(&path))
        .await
        .expect("open");
    browser.wait_for("form#checkout").await;

    // Statements, from the session.
    browser.click("ul#statements a[href$='.html']").await;
    browser.wait_for("body").await;
    let statement = browser.text().await;
    assert!(statement.contains("Acme Retail"), "{statement}");
    browser.screenshot("merchant-statement").await;
    let admin = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let month = lightspeed_domain::calendar::IstMonth::of(console.app.ledger.now());
    let html = admin
        .get(&console.page(&format!("{path}/statements/{month}.html")))
        .await;
    let csp = html.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "no script on the printable statement: {csp}"
    );
    let csv_path = format!("{path}/statements/{month}.csv");
    let csv = admin.get(&console.page(&csv_path)).await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(console.page(&csv_path))
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status(), 303, "a statement needs a session");

    // An auditor reads, but has no buttons, and forged changes are refused.
    console.invite(AUDITOR, Role::Auditor).await;
    let auditor = HttpSession::sign_in(&console, AUDITOR).await;
    let page = auditor
        .get(&console.page(&path))
        .await
        .text()
        .await
        .expect("page");
    assert!(!page.contains("regenerate-keys"), "no key regeneration");
    let main = page.split("<main").nth(1).expect("main");
    assert!(!main.contains("<button"), "no change buttons on the page");
    let csrf = auditor.csrf(&console).await;
    for (change, form) in [
        (
            "checkout",
            vec![
                ("csrf", csrf.as_str()),
                ("routing_mode", "smart"),
                ("temporary_failure_secs", "60"),
            ],
        ),
        ("keys", vec![("csrf", csrf.as_str())]),
    ] {
        let refused = auditor
            .post(&console.page(&format!("{path}/{change}")), &form)
            .await;
        assert_eq!(refused.status(), 403, "{change}");
    }
    let refused = admin
        .post(
            &console.page(&format!("{path}/checkout")),
            &[("routing_mode", "smart"), ("temporary_failure_secs", "60")],
        )
        .await;
    assert_eq!(refused.status(), 403, "no CSRF token");
    let unchanged = console
        .app
        .ledger
        .merchant(merchant.id)
        .await
        .expect("merchant");
    assert_eq!(unchanged.checkout().routing_mode, RoutingMode::RoundRobin);
    assert_eq!(unchanged.client_key(), rotated.client_key());
}

#[tokio::test]
async fn a_projection_rebuild_starts_after_a_confirmation_and_its_progress_shows_live() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    console.app.sandbox_gateway(&merchant, 10, None).await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    let rebuild_link = "tr[data-projection='merchants'] a[data-action=rebuild]";
    eventually("the projections are listed", || async {
        browser
            .client
            .goto(&console.page("/console/projections"))
            .await
            .ok()?;
        browser.client.find(Locator::Css(rebuild_link)).await.ok()
    })
    .await;
    browser.click(rebuild_link).await;
    browser.wait_for("form[action$='/rebuild'] button").await;
    assert!(browser.text().await.contains("keeps serving"));
    browser.screenshot("projection-rebuild-confirm").await;
    browser.click("form[action$='/rebuild'] button").await;
    browser
        .wait_for("#rebuild-rows tr[data-rebuild='merchants']")
        .await;
    assert!(browser.text().await.contains("Rebuild started"));
    let row = "#rebuild-rows tr[data-rebuild='merchants']";
    eventually("the rebuild finishes on the open page", || async {
        let text = browser
            .client
            .find(Locator::Css(row))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains("finished").then_some(())
    })
    .await;
    browser
        .client
        .execute(
            "document.getElementById('rebuilds').scrollIntoView(); return null;",
            vec![],
        )
        .await
        .expect("scroll to the rebuilds");
    browser.screenshot("projection-rebuilt").await;

    // A rebuild started elsewhere shows on an open page without a reload.
    browser
        .client
        .goto(&console.page("/console/projections"))
        .await
        .expect("open");
    browser.wait_for("#rebuild-rows").await;
    browser
        .client
        .execute(
            "document.body.dataset.testMark = 'kept'; return null;",
            vec![],
        )
        .await
        .expect("mark");
    // The stream's first frame holds the runs as they stand when it connects, and later ones
    // each change: either way the row comes by the stream, which the mark tells from a reload.
    let admin = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let csrf = admin.csrf(&console).await;
    let started = admin
        .post(
            &console.page("/console/projections/wallets/rebuild"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(started.status(), 200);
    eventually("the other rebuild shows on the open page", || async {
        let text = browser
            .client
            .find(Locator::Css("#rebuild-rows tr[data-rebuild='wallets']"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains("finished").then_some(())
    })
    .await;
    let mark = browser
        .client
        .execute("return document.body.dataset.testMark || null;", vec![])
        .await
        .expect("mark");
    assert_eq!(mark.as_str(), Some("kept"), "updated without a reload");
    browser
        .client
        .execute(
            "document.getElementById('rebuilds').scrollIntoView(); return null;",
            vec![],
        )
        .await
        .expect("scroll to the rebuilds");
    browser.screenshot("projection-rebuild-live").await;

    let audit = audit_lists(&browser, &console, "ProjectionRebuildStarted").await;
    assert!(audit.contains(ADMIN_EMAIL), "{audit}");

    // An auditor sees no rebuild, and a forged one is refused; so is one without CSRF.
    console.invite(AUDITOR, Role::Auditor).await;
    let auditor = HttpSession::sign_in(&console, AUDITOR).await;
    let page = auditor
        .get(&console.page("/console/projections"))
        .await
        .text()
        .await
        .expect("page");
    assert!(!page.contains("data-action=\"rebuild\""), "no rebuild link");
    let csrf = auditor.csrf(&console).await;
    let forged = auditor
        .post(
            &console.page("/console/projections/audit_log/rebuild"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(forged.status(), 403);
    let confirm = auditor
        .get(&console.page("/console/projections/audit_log/rebuild"))
        .await;
    assert_eq!(confirm.status(), 403);
    let no_csrf = admin
        .post(&console.page("/console/projections/audit_log/rebuild"), &[])
        .await;
    assert_eq!(no_csrf.status(), 403);
    let runs = console
        .app
        .count("SELECT count(*) FROM ledger.events WHERE event_type = 'ProjectionRebuildStarted'")
        .await;
    assert_eq!(runs, 2, "only the two allowed rebuilds ran");
}
