//! Queue control over real HTTP on the workers' real queues (JetStream consumers, the failed-jobs
//! stream, the pause gate workers read from the log): a paused queue fetches nothing and loses
//! nothing, drain needs its confirmation and without it changes nothing, retries put failed
//! jobs back, and every action is recorded in the log with its count; depths are sampled into a
//! time series.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::TimeDelta;
use lightspeed_domain::{GatewayId, PaymentId};
use lightspeed_monitoring::queues::QueueSampler;
use lightspeed_workers::control::{LogPauseGate, WorkQueues};
use lightspeed_workers::queue::{self, PauseGate};
use lightspeed_workers::{JobStreamConfig, QueueName, StatusCheck, publish_status_check};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::{
    EventCount, TestApp, outcomes_from, paid_with_lost_webhook, problem, spawn_app, wait_for,
};

const QUEUE: QueueName = QueueName::SettlementProcessing;
pub(crate) const CHECKS: &str = "settlement-processing";

/// The workers' `settlement-processing` queue running for the app with its real handler and
/// pause gate; the gate's "paused" answers are counted, so a test knows the queue asked.
pub(crate) struct Checks {
    paused_answers: Arc<Counting>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The log's pause gate, counting the times it said "paused".
struct Counting {
    gate: LogPauseGate,
    paused: AtomicU64,
}

impl PauseGate for Counting {
    async fn is_paused(&self) -> bool {
        let paused = self.gate.is_paused().await;
        if paused {
            self.paused.fetch_add(1, Ordering::SeqCst);
        }
        paused
    }
}

impl Checks {
    /// Starts the queue for `app` (its consumer made, so jobs count as waiting).
    pub(crate) async fn start(app: &TestApp) -> Self {
        let (jetstream, log_stream) = (&app.nats.jetstream, &app.nats.config);
        // The streams the relay and the first status check would have made.
        log_stream
            .ensure_stream(jetstream)
            .await
            .expect("log stream");
        JobStreamConfig::for_log(log_stream)
            .ensure_stream(jetstream)
            .await
            .expect("jobs stream");
        let gate = Arc::new(Counting {
            gate: LogPauseGate::new(app.ledger.clone(), QUEUE),
            paused: AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let (jetstream, spec) = (jetstream.clone(), QUEUE.spec(log_stream, 4));
        let handler = Arc::new(app.worker_deps().status_checker());
        let task_gate = Arc::clone(&gate);
        let task = tokio::spawn(async move {
            queue::run(&jetstream, &spec, handler, task_gate, stopped)
                .await
                .expect("queue ran");
        });
        Self {
            paused_answers: gate,
            stop,
            task,
        }
    }

    /// Waits until the queue has asked the gate `times` more times and been told to wait.
    pub(crate) async fn told_to_wait(&self, times: u64) {
        let asked = self.paused_answers.paused.load(Ordering::SeqCst);
        wait_for("the queue asked its gate while paused", || async {
            (self.paused_answers.paused.load(Ordering::SeqCst) >= asked + times).then_some(())
        })
        .await;
    }

    /// Stops the queue.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.expect("queue task");
    }
}

/// A status check the worker gives up on: nobody knows the payment.
pub(crate) async fn hopeless_check(app: &TestApp) {
    let check = StatusCheck {
        gateway_id: GatewayId::new(),
        payment_id: PaymentId::new(),
        psp_order_id: None,
        reason: "test".into(),
    };
    publish_status_check(&app.nats.jetstream, &app.nats.config, &check)
        .await
        .expect("queued");
}

async fn act(app: &TestApp, path: &str) -> (StatusCode, Value) {
    problem(app.admin(Method::POST, path).send().await.expect("request")).await
}

/// The queue as `GET /admin/queues` shows it.
async fn listed(app: &TestApp, name: &str) -> Value {
    let (status, list) = problem(
        app.admin(Method::GET, "/admin/queues")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

/// (waiting, active, failed) as the admin API shows them.
async fn depth(app: &TestApp) -> (i64, i64, i64) {
    let queue = listed(app, CHECKS).await;
    let depth = &queue["depth"];
    let count = |field: &str| depth[field].as_i64().unwrap_or_else(|| panic!("{queue}"));
    (count("waiting"), count("active"), count("failed"))
}

async fn queue_events(app: &TestApp) -> Vec<(String, Option<String>)> {
    sqlx::query_as(
        "SELECT event_type, metadata->>'actor' FROM ledger.events WHERE category = 'queue' ORDER BY position",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("events")
}

#[tokio::test]
async fn a_paused_queue_fetches_nothing_and_loses_nothing_until_resumed() {
    let app = spawn_app().await;
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let (status, paused) = act(&app, &format!("/admin/queues/{CHECKS}/pause")).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["queue"]["paused"], true);
    assert!(
        !app.ledger
            .queue_paused("transaction-processing")
            .await
            .expect("read")
    );
    let checks = Checks::start(&app).await;

    // Three payers paid and came back; their webhooks were lost, so each return queues a check.
    for n in 0..3 {
        let payment_id = paid_with_lost_webhook(&app, &merchant, &format!("ORD-{n}")).await;
        let page = app
            .http
            .get(format!("{}/checkout/{payment_id}/return", app.url))
            .send()
            .await
            .expect("return");
        assert_eq!(page.status(), StatusCode::OK);
    }
    checks.told_to_wait(2).await;
    assert_eq!(depth(&app).await, (3, 0, 0), "the jobs wait in the broker");
    assert_eq!(
        outcomes_from(&app, "status_check").await,
        0,
        "a paused queue asked no PSP"
    );
    act(&app, &format!("/admin/queues/{CHECKS}/pause")).await;

    let (status, resumed) = act(&app, &format!("/admin/queues/{CHECKS}/resume")).await;
    assert_eq!(
        (status, resumed["queue"]["paused"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    wait_for("every waiting check asked the PSP", || async {
        (outcomes_from(&app, "status_check").await == 3).then_some(())
    })
    .await;
    wait_for("the queue empty", || async {
        (depth(&app).await == (0, 0, 0)).then_some(())
    })
    .await;
    assert_eq!(
        queue_events(&app).await,
        vec![
            (
                "QueuePaused".to_owned(),
                Some("admin:ops@example.com".to_owned())
            ),
            (
                "QueueResumed".to_owned(),
                Some("admin:ops@example.com".to_owned())
            ),
        ],
        "a second pause records nothing"
    );
    checks.stop().await;
}

#[tokio::test]
async fn drain_without_its_confirmation_changes_nothing_and_with_it_discards_what_waits() {
    let app = spawn_app().await;
    act(&app, &format!("/admin/queues/{CHECKS}/pause")).await;
    let checks = Checks::start(&app).await;
    for _ in 0..7 {
        hopeless_check(&app).await;
    }
    checks.told_to_wait(2).await;
    assert_eq!(depth(&app).await, (7, 0, 0));

    let before = app.event_count().await;
    for query in ["", "?confirm=", "?confirm=true", "?confirm=payouts"] {
        let (status, problem) = act(&app, &format!("/admin/queues/{CHECKS}/drain{query}")).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("CONFIRMATION_REQUIRED")),
            "{query}"
        );
    }
    assert_eq!(depth(&app).await, (7, 0, 0), "nothing drained");
    assert_eq!(app.event_count().await, before, "nothing recorded");

    let (status, drained) = act(
        &app,
        &format!("/admin/queues/{CHECKS}/drain?confirm={CHECKS}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{drained}");
    assert_eq!(drained["jobs"], 7);
    assert_eq!(drained["queue"]["depth"]["waiting"], 0);
    assert!(drained["queue"]["last_drained_at"].is_string());
    let payload: Value =
        sqlx::query_scalar("SELECT payload FROM ledger.events WHERE event_type = 'QueueDrained'")
            .fetch_one(&app.db.pool)
            .await
            .expect("drained event");
    assert_eq!(payload["jobs"], 7);

    // What is queued after the drain runs: one job, given up on by the worker and kept.
    act(&app, &format!("/admin/queues/{CHECKS}/resume")).await;
    hopeless_check(&app).await;
    wait_for("the fresh job run and kept as failed", || async {
        (depth(&app).await == (0, 0, 1)).then_some(())
    })
    .await;
    checks.stop().await;
}

#[tokio::test]
async fn retry_puts_failed_jobs_back_and_unknown_queues_or_actions_are_404() {
    let app = spawn_app().await;
    let checks = Checks::start(&app).await;
    for _ in 0..4 {
        hopeless_check(&app).await;
    }
    wait_for("four jobs given up on", || async {
        (depth(&app).await == (0, 0, 4)).then_some(())
    })
    .await;

    // Paused (the worker restarted paused), so the retried jobs are seen waiting before it
    // takes them again.
    checks.stop().await;
    act(&app, &format!("/admin/queues/{CHECKS}/pause")).await;
    let checks = Checks::start(&app).await;
    checks.told_to_wait(2).await;
    let (status, retried) = act(&app, &format!("/admin/queues/{CHECKS}/retry")).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["jobs"], 4);
    assert_eq!(depth(&app).await, (4, 0, 0));
    let payload: Value = sqlx::query_scalar(
        "SELECT payload FROM ledger.events WHERE event_type = 'QueueFailedJobsRetried'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("retried event");
    assert_eq!(payload["jobs"], 4);
    act(&app, &format!("/admin/queues/{CHECKS}/resume")).await;
    wait_for("the retried jobs run and given up on again", || async {
        (depth(&app).await == (0, 0, 4)).then_some(())
    })
    .await;

    let before = app.event_count().await;
    for (path, code) in [
        ("/admin/queues/nope/pause", "UNKNOWN_QUEUE"),
        ("/admin/queues/nope/retry", "UNKNOWN_QUEUE"),
        (
            "/admin/queues/merchant-webhooks/explode",
            "UNKNOWN_QUEUE_ACTION",
        ),
    ] {
        let (status, problem) = act(&app, path).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::NOT_FOUND, Some(code)),
            "{path}"
        );
    }
    assert_eq!(app.event_count().await, before);
    checks.stop().await;

    let unwired = TestApp::builder().without_broker().spawn().await;
    let (status, problem) = act(&unwired, "/admin/queues/merchant-webhooks/pause").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("QUEUES_UNAVAILABLE"))
    );
}

#[tokio::test]
async fn sampled_depths_make_a_time_series() {
    let app = spawn_app().await;
    act(&app, &format!("/admin/queues/{CHECKS}/pause")).await;
    let checks = Checks::start(&app).await;
    for _ in 0..7 {
        hopeless_check(&app).await;
    }
    let queues = Arc::new(WorkQueues::new(
        app.nats.jetstream.clone(),
        app.nats.config.clone(),
    ));
    let sampler = QueueSampler::new(app.ledger.clone(), queues);
    let first = sampler.sample_once().await.expect("sample");
    assert_eq!(first.len(), QueueName::ALL.len());
    // A second replica sampling the same interval writes nothing new.
    sampler.sample_once().await.expect("sample again");
    app.clock.advance(TimeDelta::seconds(5));
    for _ in 0..13 {
        hopeless_check(&app).await;
    }
    sampler.sample_once().await.expect("sample");
    app.clock.advance(TimeDelta::seconds(1));

    let (status, series) = problem(
        app.admin(
            Method::GET,
            &format!("/admin/queues/series?queue={CHECKS}&minutes=5"),
        )
        .send()
        .await
        .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{series}");
    assert_eq!(series["bucket_secs"], 5);
    let waiting: Vec<i64> = series["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["waiting"].as_i64().expect("waiting"))
        .collect();
    assert_eq!(waiting, vec![7, 20]);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM ops.queue_depth_samples")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(rows, 2 * QueueName::ALL.len() as i64);

    for query in [
        "queue=nope",
        "queue=merchant-webhooks&minutes=0",
        "queue=merchant-webhooks&minutes=abc",
    ] {
        let (status, _) = problem(
            app.admin(Method::GET, &format!("/admin/queues/series?{query}"))
                .send()
                .await
                .expect("request"),
        )
        .await;
        assert!(status.is_client_error(), "{query}: {status}");
    }
    checks.stop().await;
}
