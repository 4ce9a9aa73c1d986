//! The live hub over real PostgreSQL and NATS JetStream: the API harness's app, its relay, a hub
//! following the app's log stream, and the hub's JSON route on a loopback server of the test's.

mod sse_client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use futures::StreamExt;
use lightspeed_api::testing::{TestApp, TestMerchant, spawn_app};
use lightspeed_live::{Hub, HubConfig, LiveItem, LiveStream, Sampler, Topic, routes};
use lightspeed_workers::control::WorkQueues;
use tokio::task::JoinHandle;

use sse_client::{SseClient, SseFrame};

/// The bearer token the test's guard lets through.
const TOKEN: &str = "Bearer live-test";
/// The longest a test waits for something before it fails (a liveness bound, not a measure).
const PATIENCE: Duration = Duration::from_secs(30);

/// An app with its relay, a hub following its log, and the hub's routes served by the test.
struct Live {
    app: TestApp,
    hub: Hub,
    url: String,
    merchant: TestMerchant,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn live(config: HubConfig) -> Live {
    let app = spawn_app().await;
    let relay = app.nats.spawn_relay(app.ledger.store());
    let hub = Hub::new(config);
    hub.follow_log(app.nats.jetstream.clone(), app.nats.config.clone())
        .await;
    let router = routes(hub.clone(), |headers| {
        match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some(TOKEN) => None,
            _ => Some(StatusCode::UNAUTHORIZED.into_response()),
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    Live {
        app,
        hub,
        url,
        merchant,
        tasks: vec![relay, server],
    }
}

impl Live {
    /// Initiates a payment through the API; answers its transaction id.
    async fn pay(&self, order_id: &str) -> String {
        let body = serde_json::json!({
            "amount": 49_900,
            "currency": "INR",
            "order_id": order_id,
            "customer": { "name": "Asha" },
        });
        let response = self.app.initiate(&self.merchant, &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: serde_json::Value = response.json().await.expect("json");
        created["transaction_id"].as_str().expect("id").to_owned()
    }

    /// Opens `/live/{topics}`, resuming after `last_event_id` when given.
    async fn open(&self, topics: &str, last_event_id: Option<&str>) -> SseClient {
        let mut request = self
            .app
            .http
            .get(format!("{}/live/{topics}", self.url))
            .header("authorization", TOKEN);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        SseClient::new(response)
    }
}

/// The next frame of `client`, failing the test after [`PATIENCE`].
async fn next(client: &mut SseClient) -> SseFrame {
    tokio::time::timeout(PATIENCE, client.next())
        .await
        .expect("a frame in time")
        .expect("the stream goes on")
}

/// Reads frames until one names payment `id`; answers it.
async fn frame_of_payment(client: &mut SseClient, id: &str) -> SseFrame {
    frame_naming(client, "payment_id", id).await
}

/// Reads frames until one whose `field` is `id` (earlier ones are about something else, such
/// as the harness's own gateway relayed after the page opened); answers it.
async fn frame_naming(client: &mut SseClient, field: &str, id: &str) -> SseFrame {
    loop {
        let frame = next(client).await;
        if frame.json()[field] == id {
            return frame;
        }
    }
}

#[tokio::test]
async fn a_payment_initiated_through_the_api_reaches_an_open_page() {
    let live = live(HubConfig::default()).await;
    let mut page = live.open("transactions", None).await;

    let payment_id = live.pay("ORD-LIVE-1").await;

    let frame = frame_of_payment(&mut page, &payment_id).await;
    assert_eq!(frame.event, "payment");
    let item = frame.json();
    assert_eq!(item["change"]["change"], "initiated");
    assert_eq!(item["change"]["amount"], 49_900);
    assert_eq!(item["change"]["merchant_order_id"], "ORD-LIVE-1");
    assert_eq!(item["change"]["merchant_id"], live.merchant.id.to_string());
    assert!(
        !frame.data.contains("Asha"),
        "no payer details: {}",
        frame.data
    );
}

#[tokio::test]
async fn a_page_that_reconnects_gets_exactly_what_it_missed() {
    let live = live(HubConfig::default()).await;
    let mut page = live.open("transactions", None).await;
    let first = live.pay("ORD-R-1").await;
    let seen = frame_of_payment(&mut page, &first).await;
    drop(page);

    let mut watch = live.hub.subscribe(&[Topic::Transactions], None);
    let mut missed = Vec::new();
    for n in 2..=4 {
        missed.push(live.pay(&format!("ORD-R-{n}")).await);
    }
    wait_until_published(&mut watch, &missed).await;

    let mut again = live.open("transactions", Some(&seen.id)).await;
    let mut resumed = Vec::new();
    for _ in &missed {
        resumed.push(next(&mut again).await.json()["payment_id"].clone());
    }
    assert_eq!(resumed, missed);
    let after = live.pay("ORD-R-5").await;
    assert_eq!(next(&mut again).await.json()["payment_id"], after);
}

/// Waits until `watch` (subscribed before they were initiated) brings an item for each payment
/// of `ids`.
async fn wait_until_published(watch: &mut LiveStream, ids: &[String]) {
    let mut pending: Vec<&String> = ids.iter().collect();
    while !pending.is_empty() {
        let envelope = tokio::time::timeout(PATIENCE, watch.next())
            .await
            .expect("published in time")
            .expect("stream goes on");
        if let LiveItem::Payment(payment) = &envelope.item {
            pending.retain(|id| **id != payment.payment_id);
        }
    }
}

#[tokio::test]
async fn a_page_that_falls_behind_is_dropped_while_others_keep_receiving() {
    let live = live(HubConfig {
        replay: 64,
        subscriber_buffer: 2,
    })
    .await;
    let mut slow = live.hub.subscribe(&[Topic::Transactions], None);
    let mut quick = live.open("transactions", None).await;

    let mut ids = Vec::new();
    for n in 1..=5 {
        let id = live.pay(&format!("ORD-S-{n}")).await;
        frame_of_payment(&mut quick, &id).await;
        ids.push(id);
    }

    let mut handed = Vec::new();
    while let Some(envelope) = slow.next().await {
        if let LiveItem::Payment(payment) = &envelope.item {
            handed.push(payment.payment_id.clone());
        }
    }
    assert_eq!(handed, ids[..2], "the slow page ends after its buffer");
    assert_eq!(live.hub.subscribers(), 1, "the quick page stays");
}

#[tokio::test]
async fn the_replay_buffer_is_bounded_and_an_older_id_resets_the_page() {
    let live = live(HubConfig {
        replay: 3,
        subscriber_buffer: 64,
    })
    .await;
    let mut page = live.open("transactions", None).await;
    let first = live.pay("ORD-B-1").await;
    let oldest = frame_of_payment(&mut page, &first).await;
    let mut watch = live.hub.subscribe(&[Topic::Transactions], None);
    let mut ids = Vec::new();
    for n in 2..=6 {
        ids.push(live.pay(&format!("ORD-B-{n}")).await);
    }
    wait_until_published(&mut watch, &ids).await;
    assert_eq!(live.hub.retained(Topic::Transactions), 3);

    let mut late = live.open("transactions", Some(&oldest.id)).await;
    let frame = next(&mut late).await;
    assert_eq!(frame.event, "reset");
    assert_eq!(frame.json()["kind"], "reset");
}

#[tokio::test]
async fn gateway_changes_reach_the_gateway_health_topic() {
    let live = live(HubConfig::default()).await;
    let mut page = live.open("gateway_health,alerts", None).await;
    let (gateway_id, _) = live.app.sandbox_gateway(&live.merchant, 2, None).await;
    let id = gateway_id.to_string();
    let registered = frame_naming(&mut page, "gateway_id", &id).await.json();
    assert_eq!(registered["change"]["change"], "registered");

    let toggled = live
        .app
        .admin_json(
            reqwest::Method::PATCH,
            &format!("/admin/gateways/{gateway_id}/toggle"),
            &serde_json::json!({ "enabled": false }),
        )
        .send()
        .await
        .expect("toggle");
    assert_eq!(toggled.status(), StatusCode::OK);
    let item = frame_naming(&mut page, "gateway_id", &id).await.json();
    assert_eq!(
        item["change"],
        serde_json::json!({"change": "toggled", "enabled": false})
    );
}

#[tokio::test]
async fn the_route_refuses_strangers_and_unknown_topics() {
    let live = live(HubConfig::default()).await;
    let stranger = live
        .app
        .http
        .get(format!("{}/live/transactions", live.url))
        .send()
        .await
        .expect("request");
    assert_eq!(stranger.status(), StatusCode::UNAUTHORIZED);
    let unknown = live
        .app
        .http
        .get(format!("{}/live/transactions,ledger", live.url))
        .header("authorization", TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = unknown.json().await.expect("json");
    assert_eq!(problem["code"], "UNKNOWN_TOPIC");
    assert_eq!(live.hub.subscribers(), 0);
}

/// Reads hub items of `topic` until one satisfies `wanted`; answers it.
async fn item_where(stream: &mut LiveStream, wanted: impl Fn(&LiveItem) -> bool) -> LiveItem {
    loop {
        let envelope = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("an item in time")
            .expect("stream goes on");
        if wanted(&envelope.item) {
            return envelope.item.clone();
        }
    }
}

#[tokio::test]
async fn the_sampler_publishes_queue_pauses_and_projection_lag_as_they_change() {
    let live = live(HubConfig::default()).await;
    let queues = WorkQueues::new(
        live.app.nats.jetstream.clone(),
        live.app.nats.config.clone(),
    );
    live.hub.sample(
        Sampler::new(live.app.ledger.clone())
            .queues(Arc::new(queues))
            .relay(live.app.nats.config.stream_name.clone())
            .interval(Duration::from_millis(100)),
    );
    let mut stream = live
        .hub
        .subscribe(&[Topic::QueueStats, Topic::ProjectionLag], None);
    let paused_queue = |item: &LiveItem| match item {
        LiveItem::QueueStats(stats) => stats
            .queues
            .iter()
            .any(|q| q.queue == "transaction-processing" && q.paused),
        _ => false,
    };
    let first = item_where(&mut stream, |item| matches!(item, LiveItem::QueueStats(_))).await;
    assert!(!paused_queue(&first));

    let paused = live
        .app
        .admin(
            reqwest::Method::POST,
            "/admin/queues/transaction-processing/pause",
        )
        .send()
        .await
        .expect("pause");
    assert_eq!(paused.status(), StatusCode::OK);
    item_where(&mut stream, paused_queue).await;

    live.app.project().await;
    // The read models are built one after the other: an item may show some before the rest.
    let lag = item_where(&mut stream, |item| {
        matches!(item, LiveItem::ProjectionLag(lag)
            if lag.projections.iter().any(|p| p.projection == "transactions"))
    })
    .await;
    let LiveItem::ProjectionLag(lag) = lag else {
        unreachable!("matched above")
    };
    assert!(lag.relay_events.is_some(), "{lag:?}");
}
