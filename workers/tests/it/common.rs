//! A world for worker tests: its own database, JetStream stream and subject prefix (so its own
//! durable consumers, jobs stream and endpoint-health bucket), a ledger on a manual clock, a relay
//! publishing the log, and helpers that read like the business's actions. Fake PSPs and merchant
//! endpoints are wiremock servers on loopback speaking the documented formats.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use lightspeed_adapters::http::{HttpConfig, build_client};
use lightspeed_adapters::psp::{PspAccount, PspClient, PspCredentials, psp_reference};
use lightspeed_adapters::sandbox::{CreateOrder, OrderStatus, OrderView, order_id_for};
use lightspeed_adapters::secrets::{
    Keyring, Secret, generate_client_key, generate_client_salt, generate_webhook_secret,
};
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::merchant::{ClientKey, WhatsappContact};
use lightspeed_domain::payment::PaymentDetails;
use lightspeed_domain::psp_outcome::{
    OutcomeSource, PspOutcome, PspOutcomeRecord, ReportOutcome, outcome_key,
};
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::{
    BasisPoints, Gateway, GatewayId, ManualClock, MerchantId, Payment, PaymentId, Provider,
    WebhookDelivery, WebhookDeliveryId,
};
use lightspeed_eventstore::relay::{Relay, RelayConfig, load_mark};
use lightspeed_eventstore::testing::{TestDatabase, TestNats, nats_url};
use lightspeed_eventstore::{
    CommandContext, CommandHandler, EventStore, PgEventStore, RecordedEvent, stream_of,
};
use lightspeed_services::{Ledger, NewGateway, NewMerchant, PaymentRequest};
use lightspeed_workers::failed::FailedJobStream;
use lightspeed_workers::queue::durable_name;
use lightspeed_workers::{Deps, JobStreamConfig, QueueName, WorkerError};
use tokio::task::JoinHandle;
use wiremock::{Request, Respond, ResponseTemplate};

/// Longest a test waits for a condition.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// How often a waiting test looks again.
const POLL: Duration = Duration::from_millis(20);

pub const PUBLIC_URL: &str = "https://pay.test";

pub struct World {
    pub clock: ManualClock,
    pub ledger: Ledger,
    pub keyring: Arc<Keyring>,
    pub deps: Deps,
    relay: JoinHandle<()>,
    pub nats: TestNats,
    _db: TestDatabase,
}

pub struct TestMerchant {
    pub id: MerchantId,
    pub client_key: String,
    pub webhook_secret: Secret,
}

/// A worker running one queue, stopped gracefully by [`Worker::stop`] (aborted if dropped).
pub struct Worker {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<Result<(), WorkerError>>,
}

impl Worker {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = (&mut self.task).await.expect("worker task");
        result.expect("worker ran");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn start_instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0)
        .single()
        .expect("instant")
}

/// Logs to the test's output when `TEST_LOG` is set (`TEST_LOG=debug`), silent otherwise.
fn init_tracing() {
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

impl World {
    pub async fn new() -> Self {
        init_tracing();
        let db = TestDatabase::new().await;
        let nats = TestNats::new().await;
        let clock = ManualClock::new(start_instant());
        let store = PgEventStore::new(db.pool.clone(), Arc::new(clock.clone()));
        let ledger = Ledger::new(store.clone());
        let relay = Relay::new(
            store,
            nats.jetstream.clone(),
            nats.config.clone(),
            RelayConfig::default(),
        );
        let relay = tokio::spawn(async move { relay.run().await });
        let keyring = Arc::new(Keyring::random("test").expect("keyring"));
        let psp_client = PspClient::new(&HttpConfig::default()).expect("PSP client");
        let http_client = build_client(&HttpConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        })
        .expect("HTTP client");
        let mut deps = Deps::new(
            ledger.clone(),
            Arc::clone(&keyring),
            psp_client,
            http_client,
            nats.jetstream.clone(),
            nats.config.clone(),
            PUBLIC_URL,
        );
        deps.concurrency = 8;
        // Tests move the manual clock; waiting jobs notice within this.
        deps.due_recheck = Duration::from_millis(100);
        // Fake merchant endpoints listen on loopback over plain http.
        deps.webhook_targets.allow_loopback_http = true;
        Self {
            clock,
            ledger,
            keyring,
            deps,
            relay,
            nats,
            _db: db,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.ledger.now()
    }

    pub fn advance(&self, by: Duration) {
        self.clock
            .advance(chrono::Duration::from_std(by).expect("duration"));
    }

    pub fn start(&self, queue: QueueName) -> Worker {
        start_worker(queue, self.deps.clone())
    }

    /// A worker as a freshly started process runs it: a ledger of its own on the same log, so
    /// every cache starts cold.
    pub fn start_fresh(&self, queue: QueueName) -> Worker {
        let deps = Deps {
            ledger: Ledger::new(self.ledger.store().clone()),
            ..self.deps.clone()
        };
        start_worker(queue, deps)
    }

    /// How many of the queue's jobs are kept on the failed-jobs stream, and why the latest was
    /// given up.
    pub async fn failed_jobs(&self, queue: QueueName) -> (u64, Option<String>) {
        let failed = FailedJobStream::for_log(&self.nats.config);
        let stream = failed
            .ensure_stream(&self.nats.jetstream)
            .await
            .expect("failed-jobs stream");
        let count = failed
            .count(&self.nats.jetstream, queue.as_str())
            .await
            .expect("count failed jobs");
        if count == 0 {
            return (0, None);
        }
        let latest = stream
            .get_last_raw_message_by_subject(&failed.dead_subject(queue.as_str()))
            .await
            .expect("the latest failed job");
        let reason = latest
            .headers
            .get(lightspeed_workers::failed::REASON_HEADER)
            .map(|value| value.as_str().to_owned());
        (count, reason)
    }

    /// Deletes the queue's durable consumers, so the next worker started on it creates them
    /// again and is handed every matching message once more (a redelivery of everything).
    pub async fn forget_consumers(&self, queue: QueueName) {
        let spec = queue.spec(&self.nats.config, 1);
        let stream = self
            .nats
            .jetstream
            .get_stream(&spec.stream)
            .await
            .expect("stream");
        for name in spec.durable_names() {
            stream
                .delete_consumer(&name)
                .await
                .expect("delete consumer");
        }
    }

    /// Deletes the queue's durable consumer of one event type, so the next worker started on it
    /// is handed every such event once more (and no other).
    pub async fn forget_consumer_of(&self, queue: QueueName, category: &str, event_type: &str) {
        let spec = queue.spec(&self.nats.config, 1);
        let subject = self.nats.config.event_type_subject(category, event_type);
        self.nats
            .jetstream
            .get_stream(&spec.stream)
            .await
            .expect("stream")
            .delete_consumer(&durable_name(&spec.name, &subject))
            .await
            .expect("delete consumer");
    }

    /// Waits until every consumer of the queue exists and has handed out and seen acknowledged
    /// everything it holds.
    pub async fn drained(&self, queue: QueueName) {
        let spec = queue.spec(&self.nats.config, 1);
        wait_for(&format!("{queue} drained"), || async {
            let stream = self.nats.jetstream.get_stream(&spec.stream).await.ok()?;
            for name in spec.durable_names() {
                let info = stream.consumer_info(&name).await.ok()?;
                if info.num_pending > 0 || info.num_ack_pending > 0 {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }

    /// Waits until the relay has published `event` to JetStream.
    pub async fn relayed(&self, event: &RecordedEvent) {
        wait_for(&format!("{} relayed", event.event_type), || async {
            let mark = load_mark(self.ledger.store().pool(), &self.nats.config.stream_name)
                .await
                .ok()??;
            (mark.position >= event.log_position).then_some(())
        })
        .await;
    }

    /// Waits until the queue has handled `event` (and everything else on its subject).
    pub async fn consumed(&self, queue: QueueName, event: &RecordedEvent) {
        self.relayed(event).await;
        let subject = self.nats.config.subject(event);
        let spec = queue.spec(&self.nats.config, 1);
        let name = durable_name(&spec.name, &subject);
        wait_for(&format!("{queue} handled {}", event.event_type), || async {
            let stream = self.nats.jetstream.get_stream(&spec.stream).await.ok()?;
            let info = stream.consumer_info(&name).await.ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
        })
        .await;
    }

    pub async fn merchant(&self, webhook_url: Option<String>) -> TestMerchant {
        self.merchant_with(webhook_url, None, Thresholds::default())
            .await
    }

    /// A merchant with this WhatsApp contact and these thresholds.
    pub async fn merchant_with(
        &self,
        webhook_url: Option<String>,
        whatsapp: Option<WhatsappContact>,
        thresholds: Thresholds,
    ) -> TestMerchant {
        let id = MerchantId::new();
        let client_key = generate_client_key();
        let webhook_secret = generate_webhook_secret();
        self.ledger
            .onboard_merchant(
                NewMerchant {
                    merchant_id: id,
                    company_name: "Acme Retail".into(),
                    webhook_url,
                    whatsapp,
                    client_key: ClientKey::parse(&client_key).expect("client key"),
                    client_salt: self.keyring.seal(generate_client_salt().expose()),
                    webhook_secret: self.keyring.seal(webhook_secret.expose()),
                    fee: BasisPoints::DEFAULT_FEE,
                    thresholds,
                    checkout: CheckoutSettings::default(),
                    at: self.now(),
                },
                &CommandContext::default(),
            )
            .await
            .expect("onboard");
        TestMerchant {
            id,
            client_key,
            webhook_secret,
        }
    }

    /// A sandbox gateway whose PSP is at `psp_url`.
    pub async fn gateway(&self, merchant: MerchantId, priority: u16, psp_url: &str) -> GatewayId {
        let gateway_id = GatewayId::new();
        let account = PspAccount::test(PspCredentials::Sandbox {
            webhook_secret: generate_webhook_secret(),
        })
        .with_base_url(psp_url);
        self.ledger
            .register_gateway(
                NewGateway {
                    gateway_id,
                    merchant_id: merchant,
                    provider: Provider::Sandbox,
                    label: format!("sandbox {priority}"),
                    credentials: account.seal(&self.keyring).expect("seal account"),
                    settings: GatewaySettings {
                        priority,
                        monthly_limit: None,
                        rpm_cap: None,
                    },
                    enabled: true,
                    at: self.now(),
                },
                &CommandContext::default(),
            )
            .await
            .expect("register gateway");
        gateway_id
    }

    pub async fn initiate(&self, merchant: MerchantId, order_id: &str, amount: i64) -> PaymentId {
        let merchant = self
            .ledger
            .current_merchant(merchant)
            .await
            .expect("merchant");
        self.ledger
            .initiate_payment(
                &merchant,
                &PaymentRequest {
                    amount: lightspeed_domain::Paise(amount),
                    currency: "INR".into(),
                    order_id: order_id.into(),
                    details: PaymentDetails::default(),
                    request_digest: format!("digest-{order_id}-{amount}"),
                },
                &CommandContext::default(),
            )
            .await
            .expect("initiate")
            .payment_id()
    }

    /// Records the PSP order as the transaction processor would, for tests about later stages.
    pub async fn record_order(&self, payment_id: PaymentId) -> Payment {
        let payment = self.payment(payment_id).await;
        self.ledger
            .record_psp_order(
                payment_id,
                payment.gateway_id(),
                order_id_for(&psp_reference(payment_id)),
                serde_json::json!({"provider": "sandbox", "checkout_url": "https://psp.test/checkout"}),
                &CommandContext::default(),
            )
            .await
            .expect("record PSP order")
    }

    /// Records a verified PSP success report with this de-duplication key.
    pub async fn report_success(&self, payment_id: PaymentId, dedupe_key: &str) -> ReportOutcome {
        let payment = self.payment(payment_id).await;
        let report = ReportOutcome {
            merchant_id: payment.merchant_id(),
            gateway_id: payment.gateway_id(),
            provider: Provider::Sandbox,
            dedupe_key: dedupe_key.into(),
            payment_id: Some(payment_id),
            psp_order_id: payment.psp_order().map(|o| o.psp_order_id.clone()),
            psp_payment_id: Some(format!("sbp_{dedupe_key}")),
            outcome: PspOutcome::Succeeded {
                amount: payment.amount(),
            },
            source: OutcomeSource::Webhook,
            at: self.now(),
        };
        assert!(
            self.ledger
                .report_outcome(report.clone(), &CommandContext::default())
                .await
                .expect("report")
        );
        report
    }

    /// The recorded event of a reported outcome.
    pub async fn outcome_event(&self, gateway_id: GatewayId, dedupe_key: &str) -> RecordedEvent {
        let stream =
            stream_of::<PspOutcomeRecord>(outcome_key(gateway_id, dedupe_key)).expect("stream");
        self.events(&stream)
            .await
            .into_iter()
            .next()
            .expect("outcome recorded")
    }

    pub async fn payment(&self, payment_id: PaymentId) -> Payment {
        self.ledger
            .payment(payment_id)
            .await
            .expect("load payment")
            .expect("payment exists")
    }

    pub async fn gateway_state(&self, gateway_id: GatewayId) -> Gateway {
        self.ledger
            .gateways()
            .load(&stream_of::<Gateway>(gateway_id).expect("stream"))
            .await
            .expect("load gateway")
            .state
            .expect("gateway exists")
    }

    pub async fn events(&self, stream: &lightspeed_eventstore::StreamId) -> Vec<RecordedEvent> {
        self.ledger
            .store()
            .read_stream(stream, 0, 1_000)
            .await
            .expect("read stream")
    }

    /// The payment's recorded event of this type (the first one).
    pub async fn payment_event(&self, payment_id: PaymentId, event_type: &str) -> RecordedEvent {
        let stream = stream_of::<Payment>(payment_id).expect("stream");
        self.events(&stream)
            .await
            .into_iter()
            .find(|e| e.event_type == event_type)
            .unwrap_or_else(|| panic!("no {event_type} on {stream}"))
    }

    pub async fn delivery(&self, delivery_id: WebhookDeliveryId) -> Option<WebhookDelivery> {
        CommandHandler::<WebhookDelivery, PgEventStore>::new(self.ledger.store().clone())
            .load(&stream_of::<WebhookDelivery>(delivery_id).expect("stream"))
            .await
            .expect("load delivery")
            .state
    }

    /// How many commissions the merchant's wallet accrued.
    pub async fn commissions(&self, merchant: MerchantId) -> usize {
        let stream = stream_of::<lightspeed_domain::Wallet>(merchant).expect("stream");
        self.events(&stream)
            .await
            .iter()
            .filter(|e| e.event_type == "CommissionAccrued")
            .count()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.relay.abort();
        // The log stream goes with `TestNats`; the jobs and failed-jobs streams and the
        // endpoint-health bucket are the workers' own.
        let jobs = JobStreamConfig::for_log(&self.nats.config).stream_name;
        let failed = FailedJobStream::for_log(&self.nats.config).stream_name;
        let bucket = lightspeed_workers::endpoint_health_bucket(&self.nats.config);
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(client) = async_nats::connect(nats_url()).await else {
                    return;
                };
                let jetstream = async_nats::jetstream::new(client);
                let _ = jetstream.delete_stream(&jobs).await;
                let _ = jetstream.delete_stream(&failed).await;
                let _ = jetstream.delete_key_value(&bucket).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// Runs `queue` with `deps` until stopped.
fn start_worker(queue: QueueName, deps: Deps) -> Worker {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let result = lightspeed_workers::run(queue, deps, async move {
            let _ = stopped.await;
        })
        .await;
        if let Err(error) = &result {
            // Shown with the failing test's output, which would otherwise only time out.
            eprintln!("worker {queue} stopped: {error}");
        }
        result
    });
    Worker {
        stop: Some(stop),
        task,
    }
}

/// Polls `check` until it answers `Some`, failing the test after [`WAIT_LIMIT`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The sandbox PSP's `POST /v1/orders`: answers `201` with the order of the posted reference.
pub struct SandboxOrders;

impl Respond for SandboxOrders {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(order) = request.body_json::<CreateOrder>() else {
            return ResponseTemplate::new(400).set_body_json(
                serde_json::json!({"error": {"code": "bad_request", "message": "not an order"}}),
            );
        };
        ResponseTemplate::new(201).set_body_json(order_view(
            &order.reference,
            order.amount,
            OrderStatus::Created,
        ))
    }
}

/// A sandbox order as `GET /v1/orders/{id}` shows it.
pub fn order_view(
    reference: &str,
    amount: lightspeed_domain::Paise,
    status: OrderStatus,
) -> OrderView {
    let id = order_id_for(reference);
    OrderView {
        checkout_url: format!("https://psp.test/checkout/{id}"),
        id,
        reference: reference.to_owned(),
        amount,
        currency: "INR".into(),
        status,
        payment_id: (status == OrderStatus::Paid).then(|| "sbp_1".to_owned()),
        failure: None,
        deliveries: Vec::new(),
    }
}
