//! A real API on a loopback port over a fresh database, with typed helpers so tests read like
//! what merchants and PSPs do.

#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::Utc;
use lightspeed_adapters::merchant_auth::{
    HEADER_CLIENT_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign_request,
};
use lightspeed_adapters::psp::{PspAccount, PspCredentials};
use lightspeed_adapters::secrets::{
    Keyring, Secret, generate_client_key, generate_client_salt, generate_webhook_secret,
};
use lightspeed_api::admin_auth::{AdminAuthConfig, mint_token_at};
use lightspeed_api::{ApiConfig, AppState, AppStateBuilder, app};
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::merchant::{ClientKey, Thresholds};
use lightspeed_domain::routing::CheckoutSettings;
use lightspeed_domain::{BasisPoints, GatewayId, ManualClock, MerchantId, Provider};
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_eventstore::{CommandContext, PgEventStore};
use lightspeed_sandbox::{Sandbox, SandboxConfig, router as sandbox_router};
use lightspeed_services::{Ledger, NewGateway, NewMerchant};

/// The admin JWT secret every test app trusts.
pub const ADMIN_SECRET: &str = "test-admin-secret-0123456789abcdef";
/// The admin on every test app's allow-list.
pub const ADMIN_EMAIL: &str = "ops@example.com";

pub struct TestApp {
    pub db: TestDatabase,
    pub url: String,
    pub clock: ManualClock,
    pub ledger: Ledger,
    pub keyring: Arc<Keyring>,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

pub struct TestMerchant {
    pub id: MerchantId,
    pub client_key: String,
    pub client_salt: Secret,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn spawn() -> TestApp {
    spawn_with(|config| config).await
}

pub async fn spawn_with(configure: impl FnOnce(ApiConfig) -> ApiConfig) -> TestApp {
    spawn_custom(configure, |builder| builder).await
}

/// A test app whose state is assembled by `build` (queue control, metrics, readiness checks).
pub async fn spawn_custom(
    configure: impl FnOnce(ApiConfig) -> ApiConfig,
    build: impl FnOnce(AppStateBuilder) -> AppStateBuilder,
) -> TestApp {
    lightspeed_adapters::http::install_crypto_provider();
    let db = TestDatabase::new().await;
    let clock = ManualClock::new(Utc::now());
    let store = PgEventStore::new(db.pool.clone(), Arc::new(clock.clone()));
    let ledger = Ledger::new(store);
    let keyring = Arc::new(Keyring::random("test-key").expect("keyring"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let mut config = ApiConfig::new(url.clone());
    config.admin = Some(AdminAuthConfig::new(ADMIN_SECRET, [ADMIN_EMAIL]).expect("admin config"));
    config.readiness.relay_stream = None;
    let config = configure(config);
    let sandbox = Sandbox::new(
        db.pool.clone(),
        Arc::clone(&keyring),
        SandboxConfig::new(format!("{url}/sandbox")),
        Arc::new(clock.clone()),
    )
    .expect("sandbox");
    let state = build(AppState::builder(
        ledger.clone(),
        Arc::clone(&keyring),
        config,
    ))
    .build();
    let router = app(
        state,
        Router::new().nest("/sandbox", sandbox_router(sandbox)),
    );
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    TestApp {
        db,
        url,
        clock,
        ledger,
        keyring,
        http: reqwest::Client::new(),
        server,
    }
}

impl TestApp {
    pub async fn merchant(&self) -> TestMerchant {
        self.merchant_with(Thresholds::default(), CheckoutSettings::default())
            .await
    }

    pub async fn merchant_with(
        &self,
        thresholds: Thresholds,
        checkout: CheckoutSettings,
    ) -> TestMerchant {
        let id = MerchantId::new();
        let client_key = generate_client_key();
        let client_salt = generate_client_salt();
        let webhook_secret = generate_webhook_secret();
        self.ledger
            .onboard_merchant(
                NewMerchant {
                    merchant_id: id,
                    company_name: "Acme Retail".into(),
                    webhook_url: None,
                    whatsapp: None,
                    client_key: ClientKey::parse(&client_key).expect("client key"),
                    client_salt: self.keyring.seal(client_salt.expose()),
                    webhook_secret: self.keyring.seal(webhook_secret.expose()),
                    fee: BasisPoints::DEFAULT_FEE,
                    thresholds,
                    checkout,
                    at: self.ledger.now(),
                },
                &CommandContext::default(),
            )
            .await
            .expect("onboard");
        TestMerchant {
            id,
            client_key,
            client_salt,
        }
    }

    /// Registers a sandbox gateway whose account talks to this app's sandbox PSP.
    pub async fn sandbox_gateway(
        &self,
        merchant: &TestMerchant,
        priority: u16,
        rpm_cap: Option<u32>,
    ) -> (GatewayId, Secret) {
        let secret = generate_webhook_secret();
        let account = PspAccount::test(PspCredentials::Sandbox {
            webhook_secret: secret.clone(),
        })
        .with_base_url(format!("{}/sandbox", self.url));
        let gateway_id = GatewayId::new();
        self.ledger
            .register_gateway(
                NewGateway {
                    gateway_id,
                    merchant_id: merchant.id,
                    provider: Provider::Sandbox,
                    label: format!("sandbox {priority}"),
                    credentials: account.seal(&self.keyring).expect("seal"),
                    settings: GatewaySettings {
                        priority,
                        monthly_limit: None,
                        rpm_cap,
                    },
                    enabled: true,
                    at: self.ledger.now(),
                },
                &CommandContext::default(),
            )
            .await
            .expect("register gateway");
        (gateway_id, secret)
    }

    /// A merchant-signed request.
    pub fn signed(
        &self,
        merchant: &TestMerchant,
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
        self.request(
            method,
            path,
            &merchant.client_key,
            timestamp,
            &signature,
            body,
        )
        .header("content-type", "application/json")
    }

    /// A request with the given credentials, signed or not.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        client_key: &str,
        timestamp: i64,
        signature: &str,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header(HEADER_CLIENT_KEY, client_key)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body.to_vec())
    }

    pub async fn initiate(
        &self,
        merchant: &TestMerchant,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).expect("json");
        self.signed(merchant, reqwest::Method::POST, "/payment/initiate", &bytes)
            .send()
            .await
            .expect("request")
    }

    /// A valid admin token for [`ADMIN_EMAIL`], as of the app's clock.
    pub fn admin_token(&self) -> String {
        mint_token_at(
            ADMIN_SECRET.as_bytes(),
            ADMIN_EMAIL,
            Duration::from_secs(3600),
            self.ledger.now(),
        )
        .expect("token")
    }

    /// An admin request with a valid token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(self.admin_token())
    }

    /// An admin request with a JSON body.
    pub fn admin_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::RequestBuilder {
        self.admin(method, path).json(body)
    }

    /// Builds (or rebuilds) every read model from the log, as the projectors would.
    pub async fn project(&self) {
        use lightspeed_eventstore::EventStore;
        use lightspeed_projections::progress::Silent;
        use lightspeed_projections::{ProjectorDeps, RebuildOptions, catalog, rebuild};
        // The gap-safe reader stays below the oldest transaction running anywhere on the
        // cluster (another test's, say): wait until it sees everything this test committed.
        let last: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM ledger.events")
            .fetch_one(&self.db.pool)
            .await
            .expect("last position");
        let last = u64::try_from(last.unwrap_or_default()).unwrap_or_default();
        for _ in 0..1_000 {
            if self.ledger.store().head().await.expect("head").position >= last {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let deps = ProjectorDeps {
            store: self.ledger.store().clone(),
            live: None,
        };
        for name in catalog::names() {
            rebuild(name, &deps, &RebuildOptions::default(), &Silent)
                .await
                .expect("rebuild");
        }
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM ledger.events")
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
    }
}

pub fn payment(order_id: &str, amount: i64) -> serde_json::Value {
    serde_json::json!({
        "amount": amount,
        "currency": "INR",
        "order_id": order_id,
        "customer": { "name": "Asha", "email": "asha@example.com", "phone": "919867800451" },
        "redirect_url": "https://shop.example/return",
        "notes": { "cart": "c-42" },
    })
}

/// A response's status and problem document (or JSON body).
pub async fn problem(response: reqwest::Response) -> (reqwest::StatusCode, serde_json::Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}
