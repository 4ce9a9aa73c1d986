//! Queue control over real HTTP with a broker stand-in: pause and resume are recorded in the log
//! (where workers read them), drain needs its confirmation and without it changes nothing,
//! retries and drains are recorded with their counts, depths are sampled into a time series.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::TimeDelta;
use futures::future::BoxFuture;
use lightspeed_monitoring::queues::{QueueControl, QueueControlError, QueueDepth, QueueSampler};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{EventCount, TestApp, problem, spawn_app};

/// A broker stand-in: depths in memory; retry moves failed jobs to waiting, drain empties waiting.
#[derive(Default)]
struct FakeBroker {
    depths: Mutex<BTreeMap<String, QueueDepth>>,
    drains: Mutex<u32>,
}

impl FakeBroker {
    fn with(queues: &[(&str, QueueDepth)]) -> Arc<Self> {
        let broker = Self::default();
        *broker.depths.lock().expect("lock") = queues
            .iter()
            .map(|(name, depth)| ((*name).to_owned(), *depth))
            .collect();
        Arc::new(broker)
    }

    fn depth_of(&self, queue: &str) -> QueueDepth {
        self.depths.lock().expect("lock")[queue]
    }
}

impl QueueControl for FakeBroker {
    fn queues(&self) -> Vec<String> {
        self.depths.lock().expect("lock").keys().cloned().collect()
    }

    fn depth<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<QueueDepth, QueueControlError>> {
        let depth = self.depths.lock().expect("lock").get(queue).copied();
        Box::pin(async move { depth.ok_or_else(|| QueueControlError::UnknownQueue(queue.into())) })
    }

    fn retry_failed<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, QueueControlError>> {
        let mut depths = self.depths.lock().expect("lock");
        let moved = depths.get_mut(queue).map(|depth| {
            let failed = depth.failed;
            depth.waiting += failed;
            depth.failed = 0;
            failed
        });
        Box::pin(async move { moved.ok_or_else(|| QueueControlError::UnknownQueue(queue.into())) })
    }

    fn drain<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<u64, QueueControlError>> {
        *self.drains.lock().expect("lock") += 1;
        let mut depths = self.depths.lock().expect("lock");
        let drained = depths
            .get_mut(queue)
            .map(|depth| std::mem::take(&mut depth.waiting));
        Box::pin(
            async move { drained.ok_or_else(|| QueueControlError::UnknownQueue(queue.into())) },
        )
    }
}

const WEBHOOKS: &str = "merchant-webhooks";

async fn app_with(broker: Arc<FakeBroker>) -> TestApp {
    TestApp::builder()
        .state(move |state| state.queue_control(broker))
        .spawn()
        .await
}

fn broker() -> Arc<FakeBroker> {
    FakeBroker::with(&[
        (
            "transaction-processing",
            QueueDepth {
                waiting: 3,
                active: 1,
                failed: 0,
            },
        ),
        (
            WEBHOOKS,
            QueueDepth {
                waiting: 7,
                active: 2,
                failed: 4,
            },
        ),
    ])
}

async fn act(app: &TestApp, path: &str) -> (StatusCode, Value) {
    problem(app.admin(Method::POST, path).send().await.expect("request")).await
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
async fn a_pause_is_recorded_where_workers_read_it_and_resumes_once() {
    let broker = broker();
    let app = app_with(Arc::clone(&broker)).await;
    let (status, list) = problem(
        app.admin(Method::GET, "/admin/queues")
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    assert_eq!(list[0]["name"], WEBHOOKS);
    assert_eq!(list[0]["depth"]["waiting"], 7);
    assert_eq!(list[0]["paused"], false);

    let (status, paused) = act(&app, &format!("/admin/queues/{WEBHOOKS}/pause")).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["queue"]["paused"], true);
    assert!(app.ledger.queue_paused(WEBHOOKS).await.expect("read"));
    assert!(
        !app.ledger
            .queue_paused("transaction-processing")
            .await
            .expect("read")
    );
    assert_eq!(broker.depth_of(WEBHOOKS).waiting, 7, "pausing loses no job");
    act(&app, &format!("/admin/queues/{WEBHOOKS}/pause")).await;
    let (status, resumed) = act(&app, &format!("/admin/queues/{WEBHOOKS}/resume")).await;
    assert_eq!(
        (status, resumed["queue"]["paused"].as_bool()),
        (StatusCode::OK, Some(false))
    );
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
}

#[tokio::test]
async fn drain_without_its_confirmation_changes_nothing() {
    let broker = broker();
    let app = app_with(Arc::clone(&broker)).await;
    let before = app.event_count().await;
    for query in [
        "",
        "?confirm=",
        "?confirm=true",
        "?confirm=transaction-processing",
    ] {
        let (status, problem) = act(&app, &format!("/admin/queues/{WEBHOOKS}/drain{query}")).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("CONFIRMATION_REQUIRED")),
            "{query}"
        );
    }
    assert_eq!(
        *broker.drains.lock().expect("lock"),
        0,
        "the broker was not asked"
    );
    assert_eq!(broker.depth_of(WEBHOOKS).waiting, 7);
    assert_eq!(app.event_count().await, before, "nothing recorded");

    let (status, drained) = act(
        &app,
        &format!("/admin/queues/{WEBHOOKS}/drain?confirm={WEBHOOKS}"),
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
}

#[tokio::test]
async fn retry_puts_failed_jobs_back_and_unknown_queues_or_actions_are_404() {
    let broker = broker();
    let app = app_with(Arc::clone(&broker)).await;
    let (status, retried) = act(&app, &format!("/admin/queues/{WEBHOOKS}/retry")).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["jobs"], 4);
    assert_eq!(
        broker.depth_of(WEBHOOKS),
        QueueDepth {
            waiting: 11,
            active: 2,
            failed: 0
        }
    );
    let before = app.event_count().await;
    for (path, code) in [
        ("/admin/queues/nope/pause", "UNKNOWN_QUEUE"),
        (
            "/admin/queues/merchant-webhooks/explode",
            "UNKNOWN_QUEUE_ACTION",
        ),
    ] {
        let (status, problem) = act(&app, path).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::NOT_FOUND, Some(code))
        );
    }
    assert_eq!(app.event_count().await, before);

    let unwired = spawn_app().await;
    let (status, problem) = act(&unwired, "/admin/queues/merchant-webhooks/pause").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("QUEUES_UNAVAILABLE"))
    );
}

#[tokio::test]
async fn sampled_depths_make_a_time_series() {
    let broker = broker();
    let app = app_with(Arc::clone(&broker)).await;
    let sampler = QueueSampler::new(app.ledger.clone(), broker.clone());
    let first = sampler.sample_once().await.expect("sample");
    assert_eq!(first.len(), 2);
    // A second replica sampling the same interval writes nothing new.
    sampler.sample_once().await.expect("sample again");
    app.clock.advance(TimeDelta::seconds(5));
    broker
        .depths
        .lock()
        .expect("lock")
        .get_mut(WEBHOOKS)
        .expect("queue")
        .waiting = 20;
    sampler.sample_once().await.expect("sample");
    app.clock.advance(TimeDelta::seconds(1));

    let (status, series) = problem(
        app.admin(
            Method::GET,
            &format!("/admin/queues/series?queue={WEBHOOKS}&minutes=5"),
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
    assert_eq!(rows, 4);

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
}
