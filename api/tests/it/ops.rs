//! Operations over real HTTP: liveness, readiness (PostgreSQL, projections, plugged-in
//! dependencies), Prometheus metrics, and ops alerts recorded once and posted to Slack once.

use std::sync::{Arc, Mutex, OnceLock};

use chrono::TimeDelta;
use lightspeed_domain::notification::{
    Notification, NotificationCommand, NotificationType, QueueNotification,
};
use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, ReportOutcome};
use lightspeed_domain::retry::Jitter;
use lightspeed_domain::{NotificationId, PaymentId};
use lightspeed_eventstore::testing::PrivateNatsServer;
use lightspeed_eventstore::{CommandContext, CommandHandler, stream_of};
use lightspeed_monitoring::alerts::{AlertConfig, AlertEvaluator};
use lightspeed_monitoring::gauges::MetricsRefresher;
use metrics_exporter_prometheus::PrometheusHandle;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{TestApp, TestMerchant, payment, problem, spawn_app, wait_for};

async fn ready(app: &TestApp) -> (StatusCode, Value) {
    problem(
        app.http
            .get(format!("{}/health/ready", app.url))
            .send()
            .await
            .expect("request"),
    )
    .await
}

fn check<'a>(readiness: &'a Value, name: &str) -> &'a Value {
    readiness["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {readiness}"))
}

#[tokio::test]
async fn alive_always_and_ready_once_read_models_are_built_and_dependencies_answer() {
    let app = spawn_app().await;
    let alive = app
        .http
        .get(format!("{}/health", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(alive.status(), StatusCode::OK);

    let (status, readiness) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{readiness}");
    assert_eq!(check(&readiness, "postgres")["ok"], true);
    assert_eq!(check(&readiness, "projections")["ok"], false);
    app.project().await;
    // Built, but no projector measures their lag: nothing keeps them fresh.
    let (status, readiness) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{readiness}");
    assert!(
        check(&readiness, "projections")["detail"]
            .as_str()
            .expect("detail")
            .contains("not running")
    );
    // What a running projector records every second.
    sqlx::query(
        "UPDATE projections.versions SET lag_ms = 0, lag_events = 0, lag_measured_at = now()",
    )
    .execute(&app.db.pool)
    .await
    .expect("update");
    let (status, readiness) = ready(&app).await;
    assert_eq!(status, StatusCode::OK, "{readiness}");
    assert_eq!(readiness["status"], "ready");

    // A projection whose lag is over the bound makes the API not ready.
    sqlx::query("UPDATE projections.versions SET lag_ms = 3600000 WHERE projection = 'wallets' AND state = 'active'")
        .execute(&app.db.pool)
        .await
        .expect("update");
    let (status, readiness) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        check(&readiness, "projections")["detail"]
            .as_str()
            .expect("detail")
            .contains("wallets")
    );

    // The app's own NATS connection, on a server of the test's own that then stops.
    let mut nats = PrivateNatsServer::start().await;
    let with_nats = TestApp::builder()
        .nats_server(&nats.url)
        .config(|config| config.readiness.relay_stream = Some("LEDGER".into()))
        .spawn()
        .await;
    let (_, readiness) = ready(&with_nats).await;
    assert_eq!(check(&readiness, "nats")["ok"], true, "{readiness}");
    assert_eq!(
        check(&readiness, "relay")["ok"],
        true,
        "an empty log has nothing to relay"
    );
    nats.stop().await;
    let readiness = wait_for("readiness to see NATS gone", || async {
        let (status, readiness) = ready(&with_nats).await;
        (check(&readiness, "nats")["ok"] == false).then_some((status, readiness))
    })
    .await;
    assert_eq!(readiness.0, StatusCode::SERVICE_UNAVAILABLE);
    let detail = check(&readiness.1, "nats")["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.starts_with("connection "), "{detail}");
}

/// The process-wide recorder, installed once for this test binary.
fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| lightspeed_api::metrics::install().expect("install the recorder"))
        .clone()
}

#[tokio::test]
async fn metrics_show_latency_by_route_and_what_the_read_models_count() {
    let handle = recorder();
    let app = TestApp::builder()
        .state({
            let handle = handle.clone();
            move |state| state.metrics(handle)
        })
        .spawn()
        .await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    assert_eq!(
        app.initiate(&merchant, &payment("ORD-1", 100))
            .await
            .status(),
        StatusCode::CREATED
    );
    app.project().await;
    MetricsRefresher::new(app.db.pool.clone(), Some("LEDGER".into()), handle)
        .refresh_once()
        .await
        .expect("refresh");
    let text = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    for expected in [
        "http_request_duration_seconds_bucket{method=\"POST\",route=\"/payment/initiate\",status=\"201\"",
        "payments{status=\"created\",provider=\"sandbox\"} 1",
        "wa_sent_total 0",
        "wa_failed_total 0",
        "projection_lag_events{projection=\"wallets\"}",
        "relay_lag_events",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }

    let without = spawn_app().await;
    let (status, problem) = problem(
        without
            .http
            .get(format!("{}/metrics", without.url))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("METRICS_DISABLED"))
    );
}

/// A Slack stand-in that keeps what is posted to it.
async fn slack() -> (String, Arc<Mutex<Vec<Value>>>) {
    let posts = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&posts);
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let kept = Arc::clone(&kept);
            async move {
                kept.lock().expect("lock").push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (url, posts)
}

/// A payment of the merchant initiated and declined by the payer's bank.
pub(crate) async fn fail_payment(app: &TestApp, merchant: &TestMerchant, order: &str) -> PaymentId {
    let created: Value = app
        .initiate(merchant, &payment(order, 25_000))
        .await
        .json()
        .await
        .expect("json");
    let payment_id: PaymentId = created["transaction_id"]
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
        provider: lightspeed_domain::Provider::Sandbox,
        dedupe_key: format!("evt-{order}"),
        payment_id: Some(payment_id),
        psp_order_id: None,
        psp_payment_id: None,
        outcome: PspOutcome::Failed {
            code: "CARD_DECLINED".into(),
            reason: "Insufficient funds".into(),
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
async fn a_failed_payment_raises_one_alert_shown_to_admins_and_posted_to_slack_once() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let failed = fail_payment(&app, &merchant, "ORD-1").await;
    app.project().await;
    let (url, posts) = slack().await;
    let config = AlertConfig {
        slack_webhook_url: Some(url),
        ..AlertConfig::default()
    };
    let evaluator = AlertEvaluator::new(app.ledger.clone(), config.clone()).expect("evaluator");
    let evaluation = evaluator.evaluate_once().await.expect("evaluate");
    assert_eq!(evaluation.raised, vec![format!("payment_failed.{failed}")]);
    // Again, and from a second replica (its own evaluator and ledger, so nothing it knows is
    // cached: only the log can tell it the alert is raised): recorded once, posted once.
    assert!(
        evaluator
            .evaluate_once()
            .await
            .expect("again")
            .raised
            .is_empty()
    );
    let replica = AlertEvaluator::new(app.replica_ledger(), config).expect("evaluator");
    assert!(
        replica
            .evaluate_once()
            .await
            .expect("replica")
            .raised
            .is_empty()
    );
    let posted = posts.lock().expect("lock").clone();
    assert_eq!(posted.len(), 1, "{posted:?}");
    let text = posted[0]["text"].as_str().expect("text");
    assert!(
        text.contains(&failed.to_string())
            && text.contains("CARD_DECLINED")
            && text.contains("₹250.00"),
        "{text}"
    );

    let (status, alerts) = problem(
        app.admin(Method::GET, "/admin/alerts?firing=true")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{alerts}");
    let alert = &alerts["items"][0];
    assert_eq!(
        (alert["kind"].as_str(), alert["state"].as_str()),
        (Some("payment_failed"), Some("raised"))
    );
    let actor: String = sqlx::query_scalar(
        "SELECT metadata->>'actor' FROM ledger.events WHERE category = 'ops_alert'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("actor");
    assert_eq!(actor, "system:alerts");
}

async fn whatsapp_messages(app: &TestApp, merchant: &TestMerchant, sent: usize, failed: usize) {
    let handler: CommandHandler<Notification, _> = CommandHandler::new(app.ledger.store().clone());
    for n in 0..sent + failed {
        let id = NotificationId::new();
        let stream = stream_of::<Notification>(id).expect("stream");
        let at = app.ledger.now();
        let queue = NotificationCommand::Queue(QueueNotification {
            notification_id: id,
            merchant_id: merchant.id,
            kind: NotificationType::TxnUpdate,
            template: "txn_update".into(),
            recipient: "919867800451".into(),
            params: vec![format!("#{n}")],
            at,
        });
        handler
            .execute(&stream, &queue, &CommandContext::default())
            .await
            .expect("queue");
        let outcome = if n < sent {
            NotificationCommand::RecordSent {
                provider_message_id: format!("wamid.{n}"),
                at,
            }
        } else {
            NotificationCommand::RecordAttemptFailed {
                error_code: "131000".into(),
                error_message: "Something went wrong".into(),
                retryable: true,
                rate_limited: false,
                retry_after_secs: None,
                jitter: Jitter::NONE,
                at,
            }
        };
        handler
            .execute(&stream, &outcome, &CommandContext::default())
            .await
            .expect("outcome");
    }
}

#[tokio::test]
async fn a_whatsapp_failure_rate_over_five_percent_raises_once_and_resolves_when_it_drops() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    let evaluator =
        AlertEvaluator::new(app.ledger.clone(), AlertConfig::default()).expect("evaluator");

    // 1 of 20 is exactly 5 %: not over.
    whatsapp_messages(&app, &merchant, 19, 1).await;
    app.project().await;
    assert!(
        evaluator
            .evaluate_once()
            .await
            .expect("evaluate")
            .raised
            .is_empty()
    );
    // 2 of 21 is over 5 %.
    whatsapp_messages(&app, &merchant, 0, 1).await;
    app.project().await;
    assert_eq!(
        evaluator.evaluate_once().await.expect("evaluate").raised,
        vec!["whatsapp_failure_rate".to_owned()]
    );
    assert!(
        evaluator
            .evaluate_once()
            .await
            .expect("again")
            .raised
            .is_empty(),
        "raised once"
    );

    // Five minutes later the window holds only new, successful messages.
    app.clock.advance(TimeDelta::minutes(6));
    whatsapp_messages(&app, &merchant, 25, 0).await;
    app.project().await;
    assert_eq!(
        evaluator.evaluate_once().await.expect("evaluate").resolved,
        vec!["whatsapp_failure_rate".to_owned()]
    );
    let (_, alerts) = problem(
        app.admin(Method::GET, "/admin/alerts?kind=whatsapp_failure_rate")
            .send()
            .await
            .expect("request"),
    )
    .await;
    let states: Vec<&str> = alerts["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, vec!["resolved", "raised"]);
    let (_, firing) = problem(
        app.admin(Method::GET, "/admin/alerts?firing=true")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(firing["items"], Value::Array(vec![]));
}
