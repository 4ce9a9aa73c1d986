//! Signing in, sessions, CSRF and expiry.

use chrono::Duration;

use lightspeed_adapters::mailer::MailerConfig;
use lightspeed_adapters::mailer::loopback::LoopbackSmtp;
use lightspeed_api::testing::ADMIN_EMAIL;

use crate::harness::{Browser, HttpSession, spawn_console, spawn_console_with};

#[tokio::test]
async fn a_person_signs_in_with_a_link_once_and_signs_out() {
    let console = spawn_console().await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    let text = browser.text().await;
    assert!(text.contains("Payments per minute"), "{text}");
    assert!(text.contains(ADMIN_EMAIL), "{text}");
    browser.screenshot("overview").await;

    browser
        .click("form[action='/console/sign-out'] button")
        .await;
    browser.wait_for("input[name=email]").await;
    browser.screenshot("sign-in").await;
    browser
        .client
        .goto(&console.page("/console"))
        .await
        .expect("open");
    browser.wait_for("input[name=email]").await;
}

#[tokio::test]
async fn a_link_is_used_once_and_an_unknown_email_gets_the_same_answer() {
    let console = spawn_console().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let link = console.login_link(ADMIN_EMAIL).await;
    assert_eq!(http.post(&link).send().await.expect("first").status(), 303);
    assert_eq!(http.post(&link).send().await.expect("again").status(), 400);

    let known = sign_in_form(&http, &console.page("/console/sign-in"), ADMIN_EMAIL).await;
    let unknown = sign_in_form(
        &http,
        &console.page("/console/sign-in"),
        "nobody@example.com",
    )
    .await;
    assert_eq!(known, unknown, "the form must not tell who has an account");
}

async fn sign_in_form(http: &reqwest::Client, url: &str, email: &str) -> (u16, String) {
    let answer = http
        .post(url)
        .form(&[("email", email)])
        .send()
        .await
        .expect("post");
    (answer.status().as_u16(), answer.text().await.expect("body"))
}

#[tokio::test]
async fn a_change_without_the_sessions_csrf_token_is_refused() {
    let console = spawn_console().await;
    let merchant = console.app.merchant().await;
    let (gateway, _) = console.app.sandbox_gateway(&merchant, 10, None).await;
    let session = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let toggle = console.page(&format!("/console/gateways/{gateway}/toggle"));

    let forged = session
        .post(
            &toggle,
            &[("enabled", "false"), ("csrf", "0".repeat(64).as_str())],
        )
        .await;
    assert_eq!(forged.status(), 403);
    let missing = session.post(&toggle, &[("enabled", "false")]).await;
    assert_eq!(missing.status(), 403);
    assert!(
        console
            .app
            .ledger
            .gateway(gateway)
            .await
            .expect("gateway")
            .is_enabled()
    );

    let csrf = session.csrf(&console).await;
    let honest = session
        .post(&toggle, &[("enabled", "false"), ("csrf", csrf.as_str())])
        .await;
    assert_eq!(honest.status(), 303);
    assert!(
        !console
            .app
            .ledger
            .gateway(gateway)
            .await
            .expect("gateway")
            .is_enabled()
    );
}

#[tokio::test]
async fn a_session_ends_when_idle_too_long_or_after_its_absolute_time() {
    let console = spawn_console().await;
    let session = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    assert_eq!(session.get(&console.page("/console")).await.status(), 200);
    console.app.clock.advance(Duration::minutes(29));
    assert_eq!(session.get(&console.page("/console")).await.status(), 200);
    console.app.clock.advance(Duration::minutes(31));
    let expired = session.get(&console.page("/console")).await;
    assert_eq!(expired.status(), 303);
    assert_eq!(expired.headers()["location"], "/console/sign-in");

    let busy = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    for _ in 0..25 {
        console.app.clock.advance(Duration::minutes(29));
        let _ = busy.get(&console.page("/console")).await;
    }
    assert_eq!(
        busy.get(&console.page("/console")).await.status(),
        303,
        "12 h is the most"
    );
    let csrf_less = busy.post(&console.page("/console/sign-out"), &[]).await;
    assert_eq!(csrf_less.status(), 401);
}

#[tokio::test]
async fn an_expired_session_in_the_browser_goes_back_to_sign_in() {
    let console = spawn_console().await;
    let browser = Browser::start().await;
    browser.sign_in(&console, ADMIN_EMAIL).await;
    console.app.clock.advance(Duration::minutes(31));
    browser
        .client
        .goto(&console.page("/console/gateways"))
        .await
        .expect("open");
    browser.wait_for("input[name=email]").await;
}

#[tokio::test]
async fn a_revoked_session_is_refused_at_its_next_request_and_the_log_says_who() {
    let console = spawn_console().await;
    let admin = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let other = HttpSession::sign_in(&console, ADMIN_EMAIL).await;
    let other_id = other
        .cookie
        .trim_start_matches("ls_session=")
        .split('.')
        .next()
        .expect("id")
        .to_owned();
    let csrf = admin.csrf(&console).await;
    let list = admin
        .get(&console.page("/console/sessions"))
        .await
        .text()
        .await
        .expect("list");
    assert!(list.contains(&other_id), "{list}");

    let revoke = console.page(&format!("/console/sessions/{other_id}/revoke"));
    assert_eq!(
        admin
            .post(&revoke, &[("csrf", csrf.as_str())])
            .await
            .status(),
        303
    );
    assert_eq!(other.get(&console.page("/console")).await.status(), 303);
    assert_eq!(admin.get(&console.page("/console")).await.status(), 200);
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT metadata->>'actor' FROM ledger.events WHERE stream_id = $1 ORDER BY stream_version",
    )
    .bind(format!("console_session-{other_id}"))
    .fetch_all(&console.app.db.pool)
    .await
    .expect("events");
    assert_eq!(
        actors.last().map(String::as_str),
        Some("admin:ops@example.com")
    );
}

#[tokio::test]
async fn the_sign_in_form_mails_a_working_link_to_a_known_person_only() {
    let mut smtp = LoopbackSmtp::start().await;
    let console = spawn_console_with(Some(MailerConfig {
        host: "127.0.0.1".into(),
        port: smtp.port(),
        username: None,
        password: None,
        from: "LightSpeed <console@lightspeed.example>".into(),
        starttls: false,
    }))
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = console.page("/console/sign-in");
    sign_in_form(&http, &form, "nobody@example.com").await;
    sign_in_form(&http, &form, ADMIN_EMAIL).await;
    let mail = smtp.next().await;
    assert_eq!(
        mail.to,
        [ADMIN_EMAIL],
        "the one known person, and nobody else"
    );
    assert!(smtp.try_next().is_none(), "no mail for an unknown email");
    // The body may travel quoted-printable: soft line breaks joined, `=3D` back to `=`.
    let body = mail.data.replace("=\r\n", "").replace("=3D", "=");
    let link = body
        .split_whitespace()
        .find(|word| word.contains("/console/sign-in/"))
        .unwrap_or_else(|| panic!("a sign-in link in the mail: {}", mail.data));
    let redeemed = http
        .post(link)
        .header("origin", &console.app.url)
        .send()
        .await
        .expect("redeem");
    assert_eq!(
        redeemed.status(),
        303,
        "the mailed link signs in: {}",
        mail.data
    );
    assert!(
        redeemed.headers().get("set-cookie").is_some(),
        "a session cookie"
    );
}
