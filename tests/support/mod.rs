//! The one harness of the end-to-end tests: the API's ([`lightspeed_api::testing`]) on the
//! system clock over real PostgreSQL and NATS JetStream, plus the relay and every worker queue in
//! the test process ([`world`]), or nothing more ([`bare_world`]) for tests that run the
//! `lightspeed` binary's roles as child processes ([`processes`]). The outside world (PSPs, the
//! merchant's endpoint) is faked by servers on loopback speaking the documented formats. Shared
//! with the `webhook_commission` bench, so each user leaves some parts unused.

#![allow(dead_code)]

pub mod processes;
pub mod served_api;
pub mod transactions_fill;

use std::future::Future;
use std::time::Duration;

use lightspeed_adapters::secrets::Keyring;
use lightspeed_api::ApiConfig;
use lightspeed_api::testing::{MerchantSettings, TestApp, TestMerchant};
use lightspeed_domain::SystemClock;
use lightspeed_domain::standing::Thresholds;
use lightspeed_eventstore::EventStore;
use lightspeed_eventstore::relay::load_mark;
use lightspeed_workers::QueueName;
use lightspeed_workers::control::WorkQueues;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use wiremock::MockServer;

/// The sealing key of every world, shared with the processes a test starts.
pub const ENCRYPTION_KEY: &str = "e2e:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
/// Longest a test waits for what the relay or the workers do.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);
/// How often a waiting test looks again.
const POLL: Duration = Duration::from_millis(20);

/// The API (with its database and JetStream stream), and what runs beside it in the test
/// process.
pub struct World {
    /// The API, on the system clock (the workers wait on real time).
    pub app: TestApp<SystemClock>,
    /// The merchants' webhook endpoint.
    pub merchant_endpoint: MockServer,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for World {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The API with the relay and every worker queue running.
pub async fn world() -> World {
    world_configured(|_| {}).await
}

/// A world whose API runs with `configure`'s changes to the test configuration.
pub async fn world_configured(configure: impl FnOnce(&mut ApiConfig) + Send + 'static) -> World {
    let mut world = bare(configure).await;
    world.spawn_relay();
    let deps = world.app.worker_deps();
    world.tasks.push(tokio::spawn(async move {
        lightspeed_workers::run_all(deps, std::future::pending())
            .await
            .expect("workers");
    }));
    world
}

/// The API alone: the test starts the relay and the workers it needs.
pub async fn bare_world() -> World {
    bare(|_| {}).await
}

async fn bare(configure: impl FnOnce(&mut ApiConfig) + Send + 'static) -> World {
    let app = TestApp::builder()
        .clock(SystemClock)
        .keyring(Keyring::parse(ENCRYPTION_KEY).expect("keyring"))
        .config(configure)
        .spawn()
        .await;
    World {
        app,
        merchant_endpoint: MockServer::start().await,
        tasks: Vec::new(),
    }
}

impl World {
    /// Runs the relay in the test process, until the world is dropped.
    pub fn spawn_relay(&mut self) {
        let relay = self.app.nats.spawn_relay(self.app.ledger.store());
        self.tasks.push(relay);
    }

    /// A merchant whose webhooks go to [`World::merchant_endpoint`].
    pub async fn merchant(&self) -> TestMerchant {
        self.merchant_with(Thresholds::default()).await
    }

    /// A merchant with these thresholds whose webhooks go to [`World::merchant_endpoint`].
    pub async fn merchant_with(&self, thresholds: Thresholds) -> TestMerchant {
        self.app
            .merchant_with(MerchantSettings {
                webhook_url: Some(format!("{}/hooks", self.merchant_endpoint.uri())),
                thresholds,
                ..MerchantSettings::default()
            })
            .await
    }

    /// Initiates a ₹499 payment and answers its transaction id.
    pub async fn initiate(&self, merchant: &TestMerchant, order_id: &str) -> String {
        let body = serde_json::json!({
            "amount": 49_900, "currency": "INR", "order_id": order_id,
            "customer": { "name": "Asha", "email": "asha@example.com", "phone": "9999999999" },
        });
        let response = self.app.initiate(merchant, &body).await;
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.expect("json");
        created["transaction_id"].as_str().expect("id").to_owned()
    }

    /// The transaction as the merchant reads it.
    pub async fn transaction(&self, merchant: &TestMerchant, id: &str) -> Value {
        let path = format!("/transaction/{id}");
        self.app
            .signed(merchant, reqwest::Method::GET, &path, b"")
            .send()
            .await
            .expect("read")
            .json()
            .await
            .expect("json")
    }

    /// Polls the transaction until `ready` says so.
    pub async fn wait_for(
        &self,
        merchant: &TestMerchant,
        id: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let what = format!("transaction {id} to get there");
        wait_for(&what, || async {
            let transaction = self.transaction(merchant, id).await;
            ready(&transaction).then_some(transaction)
        })
        .await
    }

    /// Merchant webhooks received so far: (headers, body).
    pub async fn merchant_webhooks(&self) -> Vec<(reqwest::header::HeaderMap, Vec<u8>)> {
        self.merchant_endpoint
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|request| (request.headers.clone(), request.body.clone()))
            .collect()
    }

    /// Waits for a merchant webhook of `kind` about transaction `id`; answers its headers and body.
    pub async fn merchant_webhook(
        &self,
        id: &str,
        kind: &str,
    ) -> (reqwest::header::HeaderMap, Vec<u8>) {
        wait_for(&format!("a {kind} webhook for {id}"), || async {
            self.merchant_webhooks()
                .await
                .into_iter()
                .find(|(_, body)| {
                    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                    json["type"] == kind && json["data"]["transaction_id"] == id
                })
        })
        .await
    }

    /// Waits until the relay has published everything the log holds now, and `queue` has done
    /// every job that gave it: nothing waits, runs or failed.
    pub async fn queue_done(&self, queue: QueueName) {
        let store = self.app.ledger.store();
        lightspeed_eventstore::testing::settled(store.pool()).await;
        let head = store.head().await.expect("head");
        let stream = &self.app.nats.config.stream_name;
        wait_for("the relay to publish the log", || async {
            let mark = load_mark(store.pool(), stream).await.ok().flatten()?;
            (mark.position >= head).then_some(())
        })
        .await;
        let queues = WorkQueues::new(
            self.app.nats.jetstream.clone(),
            self.app.nats.config.clone(),
        );
        wait_for(&format!("{queue} to finish its jobs"), || async {
            let depth = queues.depth(queue).await.ok()?;
            (depth.waiting == 0 && depth.active == 0).then_some(depth)
        })
        .await;
        let depth = queues.depth(queue).await.expect("depth");
        assert_eq!(depth.failed, 0, "{queue} gave up on a job");
    }
}

/// Polls `check` until it answers `Some`, failing the test after [`WAIT_LIMIT`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}
