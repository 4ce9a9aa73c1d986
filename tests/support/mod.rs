//! The whole product in one test process over real PostgreSQL and NATS JetStream: the relay,
//! the API on a loopback port, every worker queue; the outside world (PSPs, the merchant's
//! endpoint) faked by wiremock servers on loopback speaking the documented formats.

#![allow(dead_code, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use lightspeed_adapters::http::{HttpConfig, build_client};
use lightspeed_adapters::merchant_auth::sign_request;
use lightspeed_adapters::psp::{PspAccount, PspClient, PspCredentials};
use lightspeed_adapters::secrets::{
    Keyring, Secret, generate_client_key, generate_client_salt, generate_webhook_secret,
};
use lightspeed_api::{ApiConfig, AppState, app};
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::merchant::{ClientKey, Thresholds};
use lightspeed_domain::routing::CheckoutSettings;
use lightspeed_domain::{BasisPoints, GatewayId, MerchantId, Provider, SystemClock};
use lightspeed_eventstore::testing::{TestDatabase, TestNats};
use lightspeed_eventstore::{CommandContext, PgEventStore};
use lightspeed_sandbox::{Sandbox, SandboxConfig, router as sandbox_router};
use lightspeed_services::{Ledger, NewGateway, NewMerchant};
use serde_json::Value;
use wiremock::MockServer;

pub struct World {
    pub db: TestDatabase,
    pub nats: TestNats,
    pub ledger: Ledger,
    pub keyring: Arc<Keyring>,
    pub url: String,
    pub http: reqwest::Client,
    pub merchant_endpoint: MockServer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub struct Merchant {
    pub id: MerchantId,
    pub client_key: String,
    pub client_salt: Secret,
    pub webhook_secret: Secret,
}

impl Drop for World {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub async fn world() -> World {
    world_configured(|_| {}).await
}

/// A world whose API runs with `configure`'s changes to the default configuration.
pub async fn world_configured(configure: impl FnOnce(&mut ApiConfig)) -> World {
    lightspeed_adapters::http::install_crypto_provider();
    let db = TestDatabase::new().await;
    let nats = TestNats::new().await;
    let store = PgEventStore::new(db.pool.clone(), Arc::new(SystemClock));
    let ledger = Ledger::new(store.clone());
    let keyring = Arc::new(Keyring::random("e2e").expect("keyring"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let sandbox = Sandbox::new(
        db.pool.clone(),
        Arc::clone(&keyring),
        SandboxConfig::new(format!("{url}/sandbox")),
        Arc::clone(store.clock()),
    )
    .expect("sandbox");
    let mut config = ApiConfig::new(url.clone());
    configure(&mut config);
    let state = AppState::new(ledger.clone(), Arc::clone(&keyring), config, None);
    let router = app(
        state,
        Router::new().nest("/sandbox", sandbox_router(sandbox)),
    );
    let mut tasks = vec![tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve")
    })];

    tasks.push(nats.spawn_relay(&store));
    let http = HttpConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
    };
    let mut deps = lightspeed_workers::Deps::new(
        ledger.clone(),
        Arc::clone(&keyring),
        PspClient::new(&http).expect("psp client"),
        build_client(&http).expect("http client"),
        nats.jetstream.clone(),
        nats.config.clone(),
        url.clone(),
    );
    deps.due_recheck = Duration::from_millis(200);
    tasks.push(tokio::spawn(async move {
        lightspeed_workers::run_all(deps, std::future::pending())
            .await
            .expect("workers");
    }));
    World {
        db,
        nats,
        ledger,
        keyring,
        url,
        http: reqwest::Client::new(),
        merchant_endpoint: MockServer::start().await,
        tasks,
    }
}

impl World {
    pub async fn merchant(&self) -> Merchant {
        self.merchant_with(Thresholds::default()).await
    }

    pub async fn merchant_with(&self, thresholds: Thresholds) -> Merchant {
        let id = MerchantId::new();
        let client_key = generate_client_key();
        let client_salt = generate_client_salt();
        let webhook_secret = generate_webhook_secret();
        self.ledger
            .onboard_merchant(
                NewMerchant {
                    merchant_id: id,
                    company_name: "Acme Retail".into(),
                    webhook_url: Some(format!("{}/hooks", self.merchant_endpoint.uri())),
                    whatsapp: None,
                    client_key: ClientKey::parse(&client_key).expect("client key"),
                    client_salt: self.keyring.seal(client_salt.expose()),
                    webhook_secret: self.keyring.seal(webhook_secret.expose()),
                    fee: BasisPoints::DEFAULT_FEE,
                    thresholds,
                    checkout: CheckoutSettings::default(),
                    at: self.ledger.now(),
                },
                &CommandContext::default(),
            )
            .await
            .expect("onboard");
        Merchant {
            id,
            client_key,
            client_salt,
            webhook_secret,
        }
    }

    pub async fn gateway(
        &self,
        merchant: &Merchant,
        credentials: PspCredentials,
        base_url: &str,
        priority: u16,
    ) -> GatewayId {
        let provider: Provider = credentials.provider();
        let account = PspAccount::test(credentials).with_base_url(base_url);
        let gateway_id = GatewayId::new();
        self.ledger
            .register_gateway(
                NewGateway {
                    gateway_id,
                    merchant_id: merchant.id,
                    provider,
                    label: format!("{provider} {priority}"),
                    credentials: account.seal(&self.keyring).expect("seal"),
                    settings: GatewaySettings {
                        priority,
                        monthly_limit: None,
                        rpm_cap: None,
                    },
                    enabled: true,
                    at: self.ledger.now(),
                },
                &CommandContext::default(),
            )
            .await
            .expect("register gateway");
        gateway_id
    }

    fn signed(
        &self,
        merchant: &Merchant,
        method: reqwest::Method,
        path: &str,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let timestamp = self.ledger.now().timestamp();
        let signature = sign_request(
            merchant.client_salt.expose(),
            timestamp,
            method.as_str(),
            path,
            body,
        );
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("x-client-key", &merchant.client_key)
            .header("x-timestamp", timestamp.to_string())
            .header("x-signature", signature)
            .header("content-type", "application/json")
            .body(body.to_vec())
    }

    /// Initiates a ₹499 payment and answers its transaction id.
    pub async fn initiate(&self, merchant: &Merchant, order_id: &str) -> String {
        let body = serde_json::json!({
            "amount": 49_900, "currency": "INR", "order_id": order_id,
            "customer": { "name": "Asha", "email": "asha@example.com", "phone": "9999999999" },
        });
        let response = self
            .signed(
                merchant,
                reqwest::Method::POST,
                "/payment/initiate",
                body.to_string().as_bytes(),
            )
            .send()
            .await
            .expect("initiate");
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.expect("json");
        created["transaction_id"].as_str().expect("id").to_owned()
    }

    pub async fn transaction(&self, merchant: &Merchant, id: &str) -> Value {
        self.signed(
            merchant,
            reqwest::Method::GET,
            &format!("/transaction/{id}"),
            b"",
        )
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
        merchant: &Merchant,
        id: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        for _ in 0..300 {
            let transaction = self.transaction(merchant, id).await;
            if ready(&transaction) {
                return transaction;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
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
        for _ in 0..300 {
            for (headers, body) in self.merchant_webhooks().await {
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if json["type"] == kind && json["data"]["transaction_id"] == id {
                    return (headers, body);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no {kind} webhook for {id}");
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
    }
}
