//! Ops alerts as rules, over real PostgreSQL and HTTP, with two evaluator replicas at once: a
//! gateway near and at its monthly limit and its merchant left with no gateway are each raised
//! once, told once by email (to a loopback SMTP server) and by a signed webhook, resolved when
//! the limit is raised, not raised again until the condition returns; a person acknowledges one
//! and the log names them.

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use lightspeed_adapters::mailer::loopback::{LoopbackSmtp, ReceivedMail};
use lightspeed_adapters::mailer::{Mailer, MailerConfig};
use lightspeed_adapters::merchant_webhook::WebhookSecret;
use lightspeed_domain::ops_alert::AlertKind;
use lightspeed_monitoring::alerts::channels::{
    AlertRoutes, Channels, EmailChannel, WebhookChannel,
};
use lightspeed_monitoring::alerts::{AlertConfig, AlertEvaluator, Evaluation};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, payment, problem, spawn_app};

pub(crate) const OPS: [&str; 2] = ["oncall@example.com", "lead@example.com"];
pub(crate) const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The alert webhook's deliveries as received: each one's headers and body.
pub(crate) type Deliveries = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A receiver of the alert webhook that keeps each delivery's headers and body.
pub(crate) async fn receiver() -> (String, Deliveries) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::clone(&kept);
    let router = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let store = Arc::clone(&store);
            async move {
                store.lock().expect("lock").push((headers, body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/alerts", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (url, kept)
}

pub(crate) fn config(smtp: &LoopbackSmtp, hook_url: &str) -> AlertConfig {
    let mailer = Mailer::new(&MailerConfig {
        host: "127.0.0.1".into(),
        port: smtp.port(),
        username: None,
        password: None,
        from: "LightSpeed <alerts@lightspeed.test>".into(),
        starttls: false,
    })
    .expect("mailer");
    AlertConfig {
        channels: Channels {
            slack_url: None,
            email: Some(EmailChannel {
                mailer,
                to: OPS.iter().map(|s| (*s).to_owned()).collect(),
            }),
            whatsapp: None,
            webhook: Some(WebhookChannel {
                url: hook_url.to_owned(),
                secret: WebhookSecret::parse(HOOK_SECRET).expect("secret"),
            }),
            // Only the gateway and merchant rules this test drives are told, by email and webhook.
            routes: AlertRoutes::parse(
                "gateway_limit_near=email,webhook;gateway_limit_reached=email,webhook;\
                 no_gateway_available=email,webhook;*=slack",
            )
            .expect("routes"),
        },
        ..AlertConfig::default()
    }
}

/// Both replicas tick at once; answers the one evaluation made (the other does not lead).
pub(crate) async fn tick_both(a: &AlertEvaluator, b: &AlertEvaluator) -> Evaluation {
    let (first, second) = tokio::join!(a.tick(), b.tick());
    let (first, second) = (first.expect("tick"), second.expect("tick"));
    assert!(
        first.is_some() != second.is_some(),
        "exactly one replica leads: {first:?} {second:?}"
    );
    first.or(second).expect("one evaluation")
}

fn sorted(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys
}

async fn set_limit(app: &TestApp, gateway: &str, limit_paise: i64) {
    let response = app
        .admin_json(
            Method::PATCH,
            &format!("/admin/gateways/{gateway}"),
            &json!({ "monthly_limit_paise": limit_paise }),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

/// A message as people read it: quoted-printable soft breaks joined and `=XX` bytes decoded.
pub(crate) fn readable(data: &str) -> String {
    let joined = data.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mails received so far (each change mails every ops address).
fn drain(smtp: &mut LoopbackSmtp) -> Vec<ReceivedMail> {
    std::iter::from_fn(|| smtp.try_next()).collect()
}

pub(crate) async fn mails(smtp: &mut LoopbackSmtp, count: usize) -> Vec<ReceivedMail> {
    let mut received = Vec::with_capacity(count);
    for _ in 0..count {
        received.push(smtp.next().await);
    }
    received
}

#[tokio::test]
async fn limit_alerts_are_raised_once_across_two_replicas_resolved_raised_again_and_acknowledged() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (gateway, _) = app.sandbox_gateway(&merchant, 1, None).await;
    let gateway = gateway.to_string();
    set_limit(&app, &gateway, 100_000).await;
    for (order, amount) in [("ORD-1", 50_000), ("ORD-2", 35_000)] {
        let created = app.initiate(&merchant, &payment(order, amount)).await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    app.project().await;

    let mut smtp = LoopbackSmtp::start().await;
    let (hook_url, deliveries) = receiver().await;
    let a = AlertEvaluator::new(app.ledger.clone(), config(&smtp, &hook_url)).expect("a");
    let b = AlertEvaluator::new(app.replica_ledger(), config(&smtp, &hook_url)).expect("b");
    let near = AlertKind::GatewayLimitNear.key(Some(&gateway));
    let reached = AlertKind::GatewayLimitReached.key(Some(&gateway));
    let stranded = AlertKind::NoGatewayAvailable.key(Some(&merchant.id.to_string()));

    // ₹850 of ₹1000: near the limit, raised once by whichever replica leads.
    let first = tick_both(&a, &b).await;
    assert_eq!(
        (first.raised.clone(), first.resolved.len()),
        (vec![near.clone()], 0)
    );
    assert_eq!(tick_both(&a, &b).await, Evaluation::default());
    // Even both evaluating without the lock, the log records nothing twice.
    let (x, y) = tokio::join!(a.evaluate_once(), b.evaluate_once());
    assert_eq!(
        (x.expect("a"), y.expect("b")),
        (Evaluation::default(), Evaluation::default())
    );
    let received = mails(&mut smtp, OPS.len()).await;
    let mut to: Vec<String> = received.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, vec!["lead@example.com", "oncall@example.com"]);
    for mail in &received {
        let text = readable(&mail.data);
        assert!(
            text.contains("gateway_limit_near raised") && text.contains("₹850.00 of ₹1000.00"),
            "{text}"
        );
    }

    // ₹1000 of ₹1000: at the limit, and the merchant has no gateway left.
    let created = app.initiate(&merchant, &payment("ORD-3", 15_000)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let refused = app.initiate(&merchant, &payment("ORD-4", 100)).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    app.project().await;
    let at_limit = tick_both(&a, &b).await;
    assert_eq!(
        (sorted(at_limit.raised), at_limit.resolved),
        (sorted(vec![reached.clone(), stranded.clone()]), vec![])
    );
    assert_eq!(tick_both(&a, &b).await, Evaluation::default());

    // The limit is raised: every condition clears, each resolved once, and stays resolved.
    set_limit(&app, &gateway, 10_000_000).await;
    app.project().await;
    let cleared = tick_both(&a, &b).await;
    assert_eq!(
        (cleared.raised, sorted(cleared.resolved)),
        (
            vec![],
            sorted(vec![near.clone(), reached.clone(), stranded.clone()])
        )
    );
    assert_eq!(tick_both(&a, &b).await, Evaluation::default());

    // The leader goes away; the other replica leads, reading what fires from the log.
    let (leader, standby) = if a.tick().await.expect("a").is_some() {
        (a, b)
    } else {
        (b, a)
    };
    drop(leader);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let taken_over = loop {
        if let Some(evaluation) = standby.tick().await.expect("standby") {
            break evaluation;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the standby never led"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(taken_over, Evaluation::default());

    // The condition returns: raised again, a second time.
    set_limit(&app, &gateway, 100_000).await;
    app.project().await;
    let again = standby.tick().await.expect("tick").expect("leads");
    assert_eq!(
        sorted(again.raised),
        sorted(vec![reached.clone(), stranded.clone()])
    );
    let alert = app
        .ledger
        .alert(&reached)
        .await
        .expect("read")
        .expect("alert");
    assert_eq!((alert.times_raised(), alert.is_firing()), (2, true));

    // Every change was mailed to both addresses once and posted once, signed.
    // near raised; reached + stranded raised; 3 resolved; reached + stranded raised again.
    let changes = 1 + 2 + 3 + 2;
    let rest = mails(&mut smtp, (changes - 1) * OPS.len()).await;
    assert!(drain(&mut smtp).is_empty());
    let all_text: Vec<String> = rest.iter().map(|m| readable(&m.data)).collect();
    let resolved_mails = all_text.iter().filter(|d| d.contains(" resolved")).count();
    assert_eq!(resolved_mails, 3 * OPS.len());
    let posted = deliveries.lock().expect("lock").clone();
    assert_eq!(posted.len(), changes);
    let verifier = standardwebhooks::Webhook::new(HOOK_SECRET).expect("secret");
    for (headers, body) in &posted {
        verifier.verify(body, headers).expect("signature verifies");
    }
    let bodies: Vec<Value> = posted
        .iter()
        .map(|(_, body)| serde_json::from_slice(body).expect("json"))
        .collect();
    assert!(bodies.iter().any(|b| {
        b["type"] == "ops_alert.raised"
            && b["data"]["key"] == reached.as_str()
            && b["data"]["summary"]
                .as_str()
                .is_some_and(|s| s.contains("₹1000.00 of ₹1000.00"))
    }));

    // A person acknowledges it: in the log with their email, shown in the alert's state.
    let (status, acked) = problem(
        app.admin(Method::POST, &format!("/admin/alerts/{reached}/ack"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(acked["alert"]["state"], "acknowledged");
    let by = acked["alert"]["acknowledged_by"]
        .as_str()
        .expect("by")
        .to_owned();
    let alert = app
        .replica_ledger()
        .alert(&reached)
        .await
        .expect("read")
        .expect("alert");
    assert_eq!(alert.acknowledged_by(), Some(by.as_str()));
    let (status, listed) = problem(
        app.admin(
            Method::GET,
            "/admin/alerts?firing=true&kind=gateway_limit_reached",
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(
        (
            &items[0]["key"],
            &items[0]["state"],
            &items[0]["alert"]["acknowledged_by"]
        ),
        (&json!(reached), &json!("acknowledged"), &json!(by))
    );
    // Acknowledged still firing; the next evaluation changes nothing.
    assert_eq!(
        standby.tick().await.expect("tick").expect("leads"),
        Evaluation::default()
    );
    let (status, unknown) = problem(
        app.admin(Method::POST, "/admin/alerts/relay_lag/ack")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, unknown["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("ALERT_NOT_FOUND"))
    );
}

/// Rests `gateway` for an hour, as a reroute after a PSP failure does.
async fn rest(app: &TestApp, gateway: lightspeed_domain::GatewayId) {
    use lightspeed_domain::Gateway;
    use lightspeed_domain::gateway::GatewayCommand;
    use lightspeed_eventstore::{CommandContext, CommandHandler, stream_of};
    let handler: CommandHandler<Gateway, _> = CommandHandler::new(app.ledger.store().clone());
    let command = GatewayCommand::MarkTemporarilyFailed {
        reason: "PSP answered 503".into(),
        rest_secs: 3_600,
        at: app.ledger.now(),
    };
    let executed = handler
        .execute(
            &stream_of::<Gateway>(gateway).expect("stream"),
            &command,
            &CommandContext::default(),
        )
        .await
        .expect("rest");
    assert_eq!(executed.events.len(), 1);
}

#[tokio::test]
async fn a_resting_gateway_is_raised_once_across_two_replicas_resolved_on_recovery_and_raised_again()
 {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let (resting, _) = app.sandbox_gateway(&merchant, 2, None).await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let key = AlertKind::GatewayTemporarilyFailed.key(Some(&resting.to_string()));
    let mut smtp = LoopbackSmtp::start().await;
    let (hook_url, deliveries) = receiver().await;
    let mut settings = config(&smtp, &hook_url);
    settings.channels.routes =
        AlertRoutes::parse("gateway_temporarily_failed=email,webhook;*=slack").expect("routes");
    let a = AlertEvaluator::new(app.ledger.clone(), settings.clone()).expect("a");
    let b = AlertEvaluator::new(app.replica_ledger(), settings).expect("b");
    app.project().await;
    assert_eq!(tick_both(&a, &b).await, Evaluation::default());

    rest(&app, resting).await;
    app.project().await;
    let raised = tick_both(&a, &b).await;
    // The merchant keeps a gateway: only the rest is an alert.
    assert_eq!(
        (raised.raised, raised.resolved),
        (vec![key.clone()], vec![])
    );
    assert_eq!(tick_both(&a, &b).await, Evaluation::default());
    let mail = smtp.next().await;
    assert!(
        readable(&mail.data).contains("PSP answered 503"),
        "{}",
        mail.data
    );

    let recovered = app
        .admin(Method::POST, &format!("/admin/gateways/{resting}/recover"))
        .send()
        .await
        .expect("request");
    assert_eq!(recovered.status(), StatusCode::OK);
    app.project().await;
    let cleared = tick_both(&a, &b).await;
    assert_eq!(
        (cleared.raised, cleared.resolved),
        (vec![], vec![key.clone()])
    );
    assert_eq!(tick_both(&a, &b).await, Evaluation::default());

    rest(&app, resting).await;
    app.project().await;
    let again = tick_both(&a, &b).await;
    assert_eq!(again.raised, vec![key.clone()]);
    let alert = app.ledger.alert(&key).await.expect("read").expect("alert");
    assert_eq!((alert.times_raised(), alert.is_firing()), (2, true));
    // One mail per change per address, one signed post per change.
    let rest_of_mail = mails(&mut smtp, 3 * OPS.len() - 1).await;
    assert!(drain(&mut smtp).is_empty());
    let resolved = rest_of_mail
        .iter()
        .filter(|m| m.data.contains("gateway_temporarily_failed resolved"))
        .count();
    assert_eq!(resolved, OPS.len());
    let posted = deliveries.lock().expect("lock").clone();
    assert_eq!(posted.len(), 3);
    let verifier = standardwebhooks::Webhook::new(HOOK_SECRET).expect("secret");
    for (headers, body) in &posted {
        verifier.verify(body, headers).expect("signature verifies");
    }
}
