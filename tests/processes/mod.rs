//! Worker processes as an operator runs them: the real `lightspeed work <queue>` binary as a
//! child process on the test's own database and JetStream stream, a merchant whose webhook
//! endpoint (a server on loopback) can hold a request for as long as the test says, and the
//! relay running in the test process.

#![allow(dead_code, missing_docs)]

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use lightspeed_adapters::psp::{PspAccount, PspCredentials};
use lightspeed_adapters::secrets::{
    Keyring, generate_client_key, generate_client_salt, generate_webhook_secret,
};
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::merchant::ClientKey;
use lightspeed_domain::payment::PaymentDetails;
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::{
    BasisPoints, GatewayId, MerchantId, Paise, Payment, PaymentId, Provider, SystemClock,
    WebhookDelivery,
};
use lightspeed_eventstore::testing::{TestDatabase, TestNats, nats_url};
use lightspeed_eventstore::{CommandContext, CommandHandler, EventStore, PgEventStore, stream_of};
use lightspeed_services::{Ledger, NewGateway, NewMerchant, PaymentRequest};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The sealing key the test and its worker processes share.
const ENCRYPTION_KEY: &str = "crash:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
/// Longest a test waits for something a worker process does.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// A database, a JetStream stream, the relay between them, and a merchant with a webhook
/// endpoint.
pub struct World {
    pub ledger: Ledger,
    pub endpoint: Arc<Endpoint>,
    merchant_id: MerchantId,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    nats: TestNats,
    db: TestDatabase,
}

impl Drop for World {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How the merchant's endpoint answers: it notes when each request arrived, holds it for the
/// test's `hold`, then answers `200`.
pub struct Endpoint {
    arrivals: Mutex<Vec<Instant>>,
    hold: Mutex<Vec<Duration>>,
}

impl Endpoint {
    /// When each request arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().expect("lock").clone()
    }

    /// Waits until `n` requests have arrived; answers when the `n`-th did.
    pub async fn nth_request(&self, n: usize) -> Instant {
        wait_for(&format!("request {n} at the merchant's endpoint"), || {
            std::future::ready(self.arrivals().get(n - 1).copied())
        })
        .await
    }
}

async fn hook(State(endpoint): State<Arc<Endpoint>>) -> StatusCode {
    let hold = {
        endpoint.arrivals.lock().expect("lock").push(Instant::now());
        let mut holds = endpoint.hold.lock().expect("lock");
        (!holds.is_empty()).then(|| holds.remove(0))
    };
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    StatusCode::OK
}

impl World {
    /// A world whose merchant endpoint holds its first requests for `holds`, one each.
    pub async fn new(holds: Vec<Duration>) -> Self {
        lightspeed_adapters::http::install_crypto_provider();
        let db = TestDatabase::new().await;
        let nats = TestNats::new().await;
        let store = PgEventStore::new(db.pool.clone(), Arc::new(SystemClock));
        let ledger = Ledger::new(store.clone());
        let endpoint = Arc::new(Endpoint {
            arrivals: Mutex::new(Vec::new()),
            hold: Mutex::new(holds),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let hooks = format!("http://{}/hooks", listener.local_addr().expect("addr"));
        let router = Router::new()
            .route("/hooks", post(hook))
            .with_state(Arc::clone(&endpoint));
        let tasks = vec![
            tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") }),
            nats.spawn_relay(&store),
        ];
        let merchant_id = merchant(&ledger, &hooks).await;
        Self {
            ledger,
            endpoint,
            merchant_id,
            tasks,
            nats,
            db,
        }
    }

    /// Starts `lightspeed work <queue>` on this world's database and stream.
    pub fn worker(&self, queue: &str) -> Child {
        Command::new(env!("CARGO_BIN_EXE_lightspeed"))
            .args(["work", queue])
            .env("DATABASE_URL", &self.db.url)
            .env("NATS_URL", nats_url())
            .env("NATS_STREAM", &self.nats.config.stream_name)
            .env("NATS_SUBJECT_PREFIX", &self.nats.config.subject_prefix)
            .env("ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env("RUST_LOG", "warn")
            .env_remove("WA_API_KEY")
            .env_remove("RAZORPAYX_KEY_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start a worker process")
    }

    /// Initiates a ₹100 payment of the merchant.
    pub async fn initiate(&self, order_id: &str) -> PaymentId {
        let merchant = self
            .ledger
            .current_merchant(self.merchant_id)
            .await
            .expect("merchant");
        let request = PaymentRequest {
            amount: Paise(10_000),
            currency: "INR".into(),
            order_id: order_id.into(),
            details: PaymentDetails::default(),
            request_digest: format!("digest-{order_id}"),
        };
        self.ledger
            .initiate_payment(&merchant, &request, &CommandContext::default())
            .await
            .expect("initiate")
            .payment_id()
    }

    /// The payment's `payment.created` webhook delivery, once it has been delivered.
    pub async fn delivered(&self, payment_id: PaymentId) -> WebhookDelivery {
        let payment = stream_of::<Payment>(payment_id).expect("stream");
        let initiated = self
            .ledger
            .store()
            .read_stream(&payment, 0, 1)
            .await
            .expect("read the payment")
            .remove(0);
        let delivery =
            stream_of::<WebhookDelivery>(lightspeed_workers::delivery_id_for(&initiated))
                .expect("stream");
        let deliveries =
            CommandHandler::<WebhookDelivery, PgEventStore>::new(self.ledger.store().clone());
        wait_for("the webhook delivered", || async {
            deliveries.load(&delivery).await.ok()?.state.filter(|d| {
                d.status() == lightspeed_domain::webhook_delivery::WebhookDeliveryStatus::Delivered
            })
        })
        .await
    }
}

/// Kills a worker process the way a crash does (SIGKILL); answers when it was killed.
pub async fn kill(worker: &mut Child) -> Instant {
    worker.start_kill().expect("SIGKILL the worker");
    let killed_at = Instant::now();
    worker.wait().await.expect("the worker is gone");
    killed_at
}

/// Onboards a merchant whose webhooks go to `hooks`, with one sandbox gateway.
async fn merchant(ledger: &Ledger, hooks: &str) -> MerchantId {
    let keyring = Keyring::parse(ENCRYPTION_KEY).expect("keyring");
    let merchant_id = MerchantId::new();
    let context = CommandContext::default();
    ledger
        .onboard_merchant(
            NewMerchant {
                merchant_id,
                company_name: "Acme Retail".into(),
                webhook_url: Some(hooks.to_owned()),
                whatsapp: None,
                client_key: ClientKey::parse(&generate_client_key()).expect("client key"),
                client_salt: keyring.seal(generate_client_salt().expose()),
                webhook_secret: keyring.seal(generate_webhook_secret().expose()),
                fee: BasisPoints::DEFAULT_FEE,
                thresholds: Thresholds::default(),
                checkout: CheckoutSettings::default(),
                at: ledger.now(),
            },
            &context,
        )
        .await
        .expect("onboard");
    let account = PspAccount::test(PspCredentials::Sandbox {
        webhook_secret: generate_webhook_secret(),
    });
    ledger
        .register_gateway(
            NewGateway {
                gateway_id: GatewayId::new(),
                merchant_id,
                provider: Provider::Sandbox,
                label: "sandbox".into(),
                credentials: account.seal(&keyring).expect("seal"),
                settings: GatewaySettings::default(),
                enabled: true,
                at: ledger.now(),
            },
            &context,
        )
        .await
        .expect("register gateway");
    merchant_id
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
