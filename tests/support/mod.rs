//! The whole product in one test process over real PostgreSQL and NATS JetStream: the API's test
//! harness ([`lightspeed_api::testing`]) on the system clock, plus the relay and every worker
//! queue; the outside world (PSPs, the merchant's endpoint) faked by wiremock servers on
//! loopback speaking the documented formats. Shared with the `webhook_commission` bench, so each
//! user leaves some parts unused.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use lightspeed_adapters::http::{HttpConfig, build_client};
use lightspeed_adapters::psp::PspClient;
use lightspeed_api::ApiConfig;
use lightspeed_api::testing::{MerchantSettings, TestApp, TestMerchant};
use lightspeed_domain::SystemClock;
use lightspeed_domain::standing::Thresholds;
use lightspeed_eventstore::testing::TestNats;
use serde_json::Value;
use tokio::task::JoinHandle;
use wiremock::MockServer;

/// How many times a test looks again for what the workers do, and how long it waits between.
const POLLS: u32 = 300;
const POLL: Duration = Duration::from_millis(100);

/// The API, the relay and the workers, over one database and one JetStream stream.
pub struct World {
    /// The API, on the system clock (the workers wait on real time).
    pub app: TestApp<SystemClock>,
    /// The JetStream stream the relay publishes the log to and the workers read, removed with
    /// the world.
    _nats: TestNats,
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
    let app = TestApp::builder()
        .clock(SystemClock)
        .config(configure)
        .spawn()
        .await;
    let nats = TestNats::new().await;
    let tasks = vec![
        nats.spawn_relay(app.ledger.store()),
        spawn_workers(&app, &nats),
    ];
    World {
        app,
        _nats: nats,
        merchant_endpoint: MockServer::start().await,
        tasks,
    }
}

/// Every worker queue, calling PSPs and merchant endpoints with short timeouts.
fn spawn_workers(app: &TestApp<SystemClock>, nats: &TestNats) -> JoinHandle<()> {
    let http = HttpConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
    };
    let mut deps = lightspeed_workers::Deps::new(
        app.ledger.clone(),
        Arc::clone(&app.keyring),
        PspClient::new(&http).expect("psp client"),
        build_client(&http).expect("http client"),
        nats.jetstream.clone(),
        nats.config.clone(),
        app.url.clone(),
    );
    deps.due_recheck = Duration::from_millis(200);
    tokio::spawn(async move {
        lightspeed_workers::run_all(deps, std::future::pending())
            .await
            .expect("workers");
    })
}

impl World {
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

    /// Polls the transaction until `ready` says so (at most 30 s).
    pub async fn wait_for(
        &self,
        merchant: &TestMerchant,
        id: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        for _ in 0..POLLS {
            let transaction = self.transaction(merchant, id).await;
            if ready(&transaction) {
                return transaction;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!(
            "transaction {id} never got there: {}",
            self.transaction(merchant, id).await
        );
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
        for _ in 0..POLLS {
            for (headers, body) in self.merchant_webhooks().await {
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if json["type"] == kind && json["data"]["transaction_id"] == id {
                    return (headers, body);
                }
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("no {kind} webhook for {id}");
    }
}
