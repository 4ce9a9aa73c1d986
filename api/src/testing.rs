//! The API's test harness, for this crate's integration tests and the product's end-to-end
//! tests: [`spawn_app`] starts a real API on a loopback port over a freshly created database
//! and a JetStream stream of its own, wired to the workers' broker as the binary wires it, with
//! the sandbox PSP mounted under `/sandbox`, and answers a [`TestApp`] whose typed helpers read
//! like what merchants, PSPs and admins do. The workers themselves are left to each test
//! ([`TestApp::worker_deps`]).
//!
//! Logs go to the test's output when `TEST_LOG` is set (`TEST_LOG=debug`), nowhere otherwise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::Utc;
use lightspeed_adapters::http::{HttpConfig, build_client};
use lightspeed_adapters::merchant_auth::{
    HEADER_CLIENT_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign_request,
};
use lightspeed_adapters::psp::{PspAccount, PspClient, PspCredentials};
use lightspeed_adapters::secrets::{
    Keyring, Secret, generate_client_key, generate_client_salt, generate_webhook_secret,
};
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::merchant::{ClientKey, WhatsappContact};
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::{BasisPoints, Clock, GatewayId, ManualClock, MerchantId};
use lightspeed_eventstore::testing::{TestDatabase, TestNats, settled};
use lightspeed_eventstore::{CommandContext, PgEventStore};
use lightspeed_projections::progress::Silent;
use lightspeed_projections::{ProjectorDeps, RebuildOptions, catalog, rebuild};
use lightspeed_sandbox::{Sandbox, SandboxConfig, router as sandbox_router};
use lightspeed_services::{Ledger, NewGateway, NewMerchant};
use lightspeed_workers::control::WorkQueues;
use lightspeed_workers::{Deps, Reconciler, ReconciliationSettings};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::admin_auth::{AdminAuthConfig, mint_token_at};
use crate::readiness::NatsConnection;
use crate::workers::QueuedStatusChecks;
use crate::{ApiConfig, AppState, AppStateBuilder, app};

/// The admin JWT secret every test app trusts.
pub const ADMIN_SECRET: &str = "test-admin-secret-0123456789abcdef";
/// The admin on every test app's allow-list.
pub const ADMIN_EMAIL: &str = "ops@example.com";

/// How long an admin token minted by [`TestApp::admin_token`] stays valid.
const ADMIN_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// A running API over its own database; the server stops when the value is dropped.
pub struct TestApp<C = ManualClock> {
    /// The app's database, dropped with it.
    pub db: TestDatabase,
    /// Where the app listens, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The clock the ledger, the API and the sandbox read.
    pub clock: C,
    /// The ledger the API writes to.
    pub ledger: Ledger,
    /// The keyring the API opens sealed secrets with.
    pub keyring: Arc<Keyring>,
    /// A plain HTTP client.
    pub http: reqwest::Client,
    /// The JetStream stream and subject prefix of the app's log copy, jobs and queues, removed
    /// with the app.
    pub nats: TestNats,
    server: JoinHandle<()>,
}

/// A merchant onboarded by a test, with the secrets it signs with and verifies webhooks by.
pub struct TestMerchant {
    /// The merchant's id.
    pub id: MerchantId,
    /// The client key its requests carry.
    pub client_key: String,
    /// The salt its requests are signed with.
    pub client_salt: Secret,
    /// The secret our webhooks to it are signed with.
    pub webhook_secret: Secret,
}

impl TestMerchant {
    /// The merchant an admin's `POST /admin/merchants` answered with `body`.
    pub fn from_onboarded(body: &serde_json::Value) -> Self {
        let text = |field: &str| body[field].as_str().expect(field).to_owned();
        TestMerchant {
            id: text("merchant_id").parse().expect("merchant id"),
            client_key: text("client_key"),
            client_salt: Secret::from(text("client_salt")),
            webhook_secret: Secret::from(text("webhook_secret")),
        }
    }
}

/// What a test merchant is onboarded with; the default has no webhook endpoint, no WhatsApp
/// contact, and the default thresholds and checkout settings.
#[derive(Debug, Clone, Default)]
pub struct MerchantSettings {
    /// Where its webhooks go.
    pub webhook_url: Option<String>,
    /// Where its WhatsApp alerts go.
    pub whatsapp: Option<WhatsappContact>,
    /// Its money thresholds.
    pub thresholds: Thresholds,
    /// Its checkout settings.
    pub checkout: CheckoutSettings,
}

/// A change to the API's configuration, applied once the app's address is known.
type ConfigChange = Box<dyn FnOnce(&mut ApiConfig) + Send>;
/// A part plugged into the app's state (queue control, metrics, readiness checks, ...).
type StatePart = Box<dyn FnOnce(AppStateBuilder) -> AppStateBuilder + Send>;
/// Routes served beside the API over its state (the console, say).
type Mount = Box<dyn FnOnce(&AppState) -> Router + Send>;

/// Describes a [`TestApp`] before it starts: its clock, configuration, keyring, broker and
/// state.
pub struct TestAppBuilder<C = ManualClock> {
    clock: C,
    config_changes: Vec<ConfigChange>,
    state_parts: Vec<StatePart>,
    keyring: Option<Keyring>,
    nats_url: Option<String>,
    broker: bool,
    mounts: Vec<Mount>,
}

/// A test app with the defaults: a manual clock standing at the present, a random sealing key,
/// admin authentication for [`ADMIN_EMAIL`], a readiness check that waits for no relay, and the
/// workers' broker on `NATS_URL` (see [`TestAppBuilder::spawn`]).
pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}

impl TestApp {
    /// A builder for a test app on a manual clock standing at the present.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            clock: ManualClock::new(Utc::now()),
            config_changes: Vec::new(),
            state_parts: Vec::new(),
            keyring: None,
            nats_url: None,
            broker: true,
            mounts: Vec::new(),
        }
    }
}

impl<C: Clock + Clone + 'static> TestAppBuilder<C> {
    /// The app reads `clock` instead (the system clock, say, for tests that wait on real time).
    pub fn clock<Other: Clock + Clone + 'static>(self, clock: Other) -> TestAppBuilder<Other> {
        TestAppBuilder {
            clock,
            config_changes: self.config_changes,
            state_parts: self.state_parts,
            keyring: self.keyring,
            nats_url: self.nats_url,
            broker: self.broker,
            mounts: self.mounts,
        }
    }

    /// Seals with `keyring` instead of a random key (one that processes the test starts share).
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Uses the NATS server at `url` (a private one a test may stop) instead of `NATS_URL`.
    pub fn nats_server(mut self, url: &str) -> Self {
        self.nats_url = Some(url.to_owned());
        self
    }

    /// Leaves the workers' broker unplugged, for the answers of a server without one: no status
    /// checks are queued, and queue control and reconciliation are unavailable.
    pub fn without_broker(mut self) -> Self {
        self.broker = false;
        self
    }

    /// Changes the test configuration (see [`spawn_app`] for what it starts as).
    pub fn config(mut self, change: impl FnOnce(&mut ApiConfig) + Send + 'static) -> Self {
        self.config_changes.push(Box::new(change));
        self
    }

    /// Plugs a part into the app's state.
    pub fn state(
        mut self,
        part: impl FnOnce(AppStateBuilder) -> AppStateBuilder + Send + 'static,
    ) -> Self {
        self.state_parts.push(Box::new(part));
        self
    }

    /// Serves the routes `routes` makes from the app's state beside the API, as the binary
    /// mounts the console.
    pub fn mount(mut self, routes: impl FnOnce(&AppState) -> Router + Send + 'static) -> Self {
        self.mounts.push(Box::new(routes));
        self
    }

    /// Creates the database, picks the app's JetStream stream and subject prefix, binds a
    /// loopback port and starts serving; unless [`TestAppBuilder::without_broker`], the app is
    /// plugged into the workers' broker as the binary plugs it (see [`on_broker`]).
    pub async fn spawn(mut self) -> TestApp<C> {
        init_tracing();
        lightspeed_adapters::http::install_crypto_provider();
        let db = TestDatabase::new().await;
        let nats = match &self.nats_url {
            Some(url) => TestNats::on(url).await,
            None => TestNats::new().await,
        };
        let clock = self.clock.clone();
        let ledger = Ledger::new(PgEventStore::new(db.pool.clone(), Arc::new(clock.clone())));
        let keyring = self
            .keyring
            .take()
            .unwrap_or_else(|| Keyring::random("test-key").expect("keyring"));
        let keyring = Arc::new(keyring);
        let (listener, url) = bind().await;
        let mut extra = sandbox(&db, Arc::clone(&keyring), &url, &clock);
        let mounts = std::mem::take(&mut self.mounts);
        let state = self.app_state(ledger.clone(), Arc::clone(&keyring), &url, &nats);
        for mount in mounts {
            extra = extra.merge(mount(&state));
        }
        TestApp {
            db,
            url,
            clock,
            ledger,
            keyring,
            http: lightspeed_adapters::http::client_builder()
                .build()
                .expect("HTTP client"),
            nats,
            server: serve(listener, app(state, extra)),
        }
    }

    /// The state of an app at `url`: the test configuration with this builder's changes, the
    /// broker on `nats`, and this builder's parts plugged in.
    fn app_state(
        self,
        ledger: Ledger,
        keyring: Arc<Keyring>,
        url: &str,
        nats: &TestNats,
    ) -> AppState {
        let mut config = ApiConfig::new(url);
        config.admin =
            Some(AdminAuthConfig::new(ADMIN_SECRET, [ADMIN_EMAIL]).expect("admin config"));
        config.readiness.relay_stream = None;
        // Fake merchant endpoints listen on loopback over plain http.
        config.webhook_targets.allow_loopback_http = true;
        for change in self.config_changes {
            change(&mut config);
        }
        let mut state = AppState::builder(ledger.clone(), keyring, config);
        if self.broker {
            state = on_broker(state, &ledger, nats);
        }
        self.state_parts
            .into_iter()
            .fold(state, |state, part| part(state))
            .build()
    }
}

/// What the binary plugs into the API on the workers' broker: status checks queued on the
/// `settlement-processing` queue, queue control over the workers' queues, reconciliation by
/// their reconciler, and NATS in readiness.
fn on_broker(state: AppStateBuilder, ledger: &Ledger, nats: &TestNats) -> AppStateBuilder {
    let (jetstream, log_stream) = (nats.jetstream.clone(), nats.config.clone());
    let reconciler = Reconciler::new(
        ledger.clone(),
        jetstream.clone(),
        log_stream.clone(),
        ReconciliationSettings::default(),
    );
    state
        .status_checks(Arc::new(QueuedStatusChecks::new(
            jetstream.clone(),
            log_stream.clone(),
        )))
        .queue_control(Arc::new(WorkQueues::new(jetstream, log_stream)))
        .reconciliation(Arc::new(reconciler))
        .readiness_check(Arc::new(NatsConnection(nats.client.clone())))
}

/// A loopback port for an API, and the URL it is reached at.
async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, url)
}

/// The sandbox PSP's routes, on the app's clock and database, reachable under `{url}/sandbox`.
fn sandbox(
    db: &TestDatabase,
    keyring: Arc<Keyring>,
    url: &str,
    clock: &(impl Clock + Clone + 'static),
) -> Router {
    let sandbox = Sandbox::new(
        db.pool.clone(),
        keyring,
        SandboxConfig::new(format!("{url}/sandbox")),
        Arc::new(clock.clone()),
    )
    .expect("sandbox");
    Router::new().nest("/sandbox", sandbox_router(sandbox))
}

/// Serves `router` on `listener` (with the peer's address, for the webhook allow-lists) until
/// the task is aborted.
fn serve(listener: TcpListener, router: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    })
}

/// A second API over a test app's database; it stops when dropped.
pub struct Replica {
    /// Where the replica listens.
    pub url: String,
    server: JoinHandle<()>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl<C: Clock + Clone + 'static> TestApp<C> {
    /// A ledger over this app's database and clock with caches of its own, as a second process
    /// would have: what it knows, it read from the log.
    pub fn replica_ledger(&self) -> Ledger {
        Ledger::new(PgEventStore::new(
            self.db.pool.clone(),
            Arc::new(self.clock.clone()),
        ))
    }

    /// Starts another API over this app's database, keyring and clock, with caches of its own
    /// and the default configuration, as a second process would be.
    pub async fn replica(&self) -> Replica {
        let (listener, url) = bind().await;
        let config = ApiConfig::new(url.clone());
        let state =
            AppState::builder(self.replica_ledger(), Arc::clone(&self.keyring), config).build();
        Replica {
            url,
            server: serve(listener, app(state, Router::new())),
        }
    }
}

impl<C> Drop for TestApp<C> {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl<C> TestApp<C> {
    /// A merchant with the default settings.
    pub async fn merchant(&self) -> TestMerchant {
        self.merchant_with(MerchantSettings::default()).await
    }

    /// A merchant with these settings.
    pub async fn merchant_with(&self, settings: MerchantSettings) -> TestMerchant {
        onboard_merchant(&self.ledger, &self.keyring, settings).await
    }

    /// Registers a gateway for the merchant on the PSP at `base_url`, enabled, with no limit.
    pub async fn gateway(
        &self,
        merchant: &TestMerchant,
        credentials: PspCredentials,
        base_url: &str,
        priority: u16,
    ) -> GatewayId {
        let account = PspAccount::test(credentials).with_base_url(base_url);
        let settings = GatewaySettings {
            priority,
            ..GatewaySettings::default()
        };
        register_gateway(&self.ledger, &self.keyring, merchant.id, account, settings).await
    }

    /// Registers a gateway on this app's sandbox PSP; answers it with its webhook secret.
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
        let settings = GatewaySettings {
            priority,
            monthly_limit: None,
            rpm_cap,
        };
        let gateway_id =
            register_gateway(&self.ledger, &self.keyring, merchant.id, account, settings).await;
        (gateway_id, secret)
    }

    /// A merchant-signed request, as of the app's clock.
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

    /// The merchant's signed `POST /payment/initiate` with this body.
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

    /// The merchant's signed `POST /payment/initiate` with this body, sent to the API at
    /// `url` (e.g. a [`Replica`]'s) instead of this app's.
    pub async fn initiate_at(
        &self,
        url: &str,
        merchant: &TestMerchant,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).expect("json");
        let mut request = self
            .signed(merchant, reqwest::Method::POST, "/payment/initiate", &bytes)
            .build()
            .expect("request");
        *request.url_mut() = format!("{url}/payment/initiate").parse().expect("url");
        self.http.execute(request).await.expect("request")
    }

    /// A valid admin token for [`ADMIN_EMAIL`], as of the app's clock.
    pub fn admin_token(&self) -> String {
        mint_token_at(
            ADMIN_SECRET.as_bytes(),
            ADMIN_EMAIL,
            ADMIN_TOKEN_TTL,
            self.ledger.now(),
        )
        .expect("token")
    }

    /// A valid token for `email` in `role`, as of the app's clock (the server still asks the
    /// people registry whether `email` may come in).
    pub fn role_token(&self, email: &str, role: lightspeed_domain::access::Role) -> String {
        crate::admin_auth::mint_role_token_at(
            ADMIN_SECRET.as_bytes(),
            email,
            role,
            ADMIN_TOKEN_TTL,
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
        // The gap-safe reader stays below the oldest transaction running anywhere on the
        // cluster (another test's, say): wait until it sees everything this test committed.
        settled(&self.db.pool).await;
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

    /// What workers need to work for this app: its ledger, keyring, JetStream stream and URL,
    /// calling PSPs and merchant endpoints with short timeouts; a job waiting for its due time
    /// looks again every 200 ms (so a moved manual clock is noticed).
    pub fn worker_deps(&self) -> Deps {
        let http = HttpConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        };
        let mut deps = Deps::new(
            self.ledger.clone(),
            Arc::clone(&self.keyring),
            PspClient::new(&http).expect("PSP client"),
            build_client(&http).expect("HTTP client"),
            self.nats.jetstream.clone(),
            self.nats.config.clone(),
            self.url.clone(),
        );
        deps.due_recheck = Duration::from_millis(200);
        // Fake merchant endpoints listen on loopback over plain http.
        deps.webhook_targets.allow_loopback_http = true;
        deps
    }

    /// Answers a `SELECT count(*) ...` the test writes, over the app's database.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
    }
}

/// Onboards a merchant on `ledger`, its secrets sealed with `keyring`, as of the ledger's clock.
pub async fn onboard_merchant(
    ledger: &Ledger,
    keyring: &Keyring,
    settings: MerchantSettings,
) -> TestMerchant {
    let id = MerchantId::new();
    let client_key = generate_client_key();
    let client_salt = generate_client_salt();
    let webhook_secret = generate_webhook_secret();
    ledger
        .onboard_merchant(
            NewMerchant {
                merchant_id: id,
                company_name: "Acme Retail".into(),
                webhook_url: settings.webhook_url,
                whatsapp: settings.whatsapp,
                client_key: ClientKey::parse(&client_key).expect("client key"),
                client_salt: keyring.seal(client_salt.expose()),
                webhook_secret: keyring.seal(webhook_secret.expose()),
                fee: BasisPoints::DEFAULT_FEE,
                thresholds: settings.thresholds,
                checkout: settings.checkout,
                at: ledger.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("onboard");
    TestMerchant {
        id,
        client_key,
        client_salt,
        webhook_secret,
    }
}

/// Registers an enabled gateway of the merchant on `account`, labelled by its provider and
/// priority, its credentials sealed with `keyring`.
pub async fn register_gateway(
    ledger: &Ledger,
    keyring: &Keyring,
    merchant_id: MerchantId,
    account: PspAccount,
    settings: GatewaySettings,
) -> GatewayId {
    let gateway_id = GatewayId::new();
    let provider = account.provider();
    ledger
        .register_gateway(
            NewGateway {
                gateway_id,
                merchant_id,
                provider,
                label: format!("{provider} {}", settings.priority),
                credentials: account.seal(keyring).expect("seal"),
                settings,
                enabled: true,
                at: ledger.now(),
            },
            &CommandContext::default(),
        )
        .await
        .expect("register gateway");
    gateway_id
}

/// Sends logs to the test's output when `TEST_LOG` is set (its value is the filter), once per
/// test binary.
pub fn init_tracing() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .init();
        }
    });
}
