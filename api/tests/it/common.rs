//! The API's test harness ([`lightspeed_api::testing`]), and what only these tests need: a
//! payment request's body, a response's problem document, the log's event count, and the
//! payer's way through the sandbox PSP.

use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::psp::{Customer, OrderRequest, PspAccount, PspClient};
use lightspeed_domain::psp_outcome::PspOutcomeRecord;
use lightspeed_domain::{GatewayId, PaymentId};
use lightspeed_eventstore::CommandContext;

pub use lightspeed_api::testing::*;

/// Where a PSP's webhooks are lost: nothing listens on the discard port.
pub const LOST_WEBHOOKS: &str = "http://127.0.0.1:9/lost";

/// The body of a merchant's payment request.
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

/// What a test reads straight from the log's table, to see that a refusal recorded nothing.
pub trait EventCount {
    /// How many events the log holds.
    async fn event_count(&self) -> i64;
}

impl EventCount for TestApp {
    async fn event_count(&self) -> i64 {
        self.count("SELECT count(*) FROM ledger.events").await
    }
}

/// The merchant's payment of `amount` paise, initiated through the API.
pub async fn initiate(
    app: &TestApp,
    merchant: &TestMerchant,
    order_id: &str,
    amount: i64,
) -> PaymentId {
    let response = app.initiate(merchant, &payment(order_id, amount)).await;
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let created: serde_json::Value = response.json().await.expect("json");
    created["transaction_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid")
}

/// Our webhook intake for the merchant's gateway.
pub fn webhook_url(app: &TestApp, merchant: &TestMerchant, gateway_id: GatewayId) -> String {
    format!("{}/webhook/{}/{gateway_id}", app.url, merchant.client_key)
}

/// Does what the transaction processor does: creates the payment's order at its gateway's PSP,
/// whose webhooks go to `callback_url`, and records it; answers the gateway and the order id.
pub async fn create_order(
    app: &TestApp,
    merchant: &TestMerchant,
    payment_id: PaymentId,
    callback_url: &str,
) -> (GatewayId, String) {
    let payment = app
        .ledger
        .payment_of(merchant.id, payment_id)
        .await
        .expect("payment");
    let gateway = app
        .ledger
        .gateway_of(merchant.id, payment.gateway_id())
        .await
        .expect("gateway");
    let account = PspAccount::open(&app.keyring, gateway.credentials()).expect("credentials");
    let order = PspClient::new(&HttpConfig::default())
        .expect("client")
        .create_order(
            &account,
            &OrderRequest {
                payment_id,
                amount: payment.amount(),
                currency: "INR".into(),
                customer: Customer::default(),
                callback_url: callback_url.to_owned(),
                return_url: format!("{}/checkout/{payment_id}/return", app.url),
                description: "Order".into(),
            },
        )
        .await
        .expect("sandbox order");
    let checkout = serde_json::to_value(&order.checkout).expect("checkout json");
    app.ledger
        .record_psp_order(
            payment_id,
            gateway.id(),
            order.psp_order_id.clone(),
            checkout,
            &CommandContext::default(),
        )
        .await
        .expect("record order");
    (gateway.id(), order.psp_order_id)
}

/// The payer presses Pay on the sandbox's page of `order_id`; answers the sandbox's redirect.
pub async fn pay_at_sandbox(app: &TestApp, order_id: &str) -> reqwest::Response {
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let paid = no_redirects
        .post(format!("{}/sandbox/checkout/{order_id}/pay", app.url))
        .send()
        .await
        .expect("pay");
    assert!(paid.status().is_redirection(), "{}", paid.status());
    paid
}

/// A payment of the merchant (on its sandbox gateway) the payer paid at the sandbox, whose
/// webhook the sandbox could not deliver: only asking the PSP can tell us it was paid.
pub async fn paid_with_lost_webhook(
    app: &TestApp,
    merchant: &TestMerchant,
    order_id: &str,
) -> PaymentId {
    let payment_id = initiate(app, merchant, order_id, 49_900).await;
    let (_, psp_order) = create_order(app, merchant, payment_id, LOST_WEBHOOKS).await;
    pay_at_sandbox(app, &psp_order).await;
    payment_id
}

/// PSP outcomes recorded from `source` (`webhook` or `status_check`).
pub async fn outcomes_from(app: &TestApp, source: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM ledger.events
          WHERE category = $1 AND payload->'report'->>'source' = $2",
    )
    .bind(<PspOutcomeRecord as lightspeed_domain::Decider>::CATEGORY)
    .bind(source)
    .fetch_one(&app.db.pool)
    .await
    .expect("count")
}

/// Longest a test waits for what a worker does.
pub const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

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
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A worker queue running for the app until dropped.
pub struct Worker(tokio::task::JoinHandle<()>);

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the workers' `queue` for the app, as `lightspeed work <queue>` would.
pub fn worker(app: &TestApp, queue: lightspeed_workers::QueueName) -> Worker {
    let deps = app.worker_deps();
    Worker(tokio::spawn(async move {
        lightspeed_workers::run(queue, deps, std::future::pending())
            .await
            .expect("worker");
    }))
}

/// Records the sandbox PSP's success for a payment, as its webhook would, with its commission.
pub async fn settle_success(
    app: &TestApp,
    merchant_id: lightspeed_domain::MerchantId,
    payment_id: PaymentId,
) {
    use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, ReportOutcome};
    let payment = app
        .ledger
        .payment_of(merchant_id, payment_id)
        .await
        .expect("payment");
    let report = ReportOutcome {
        merchant_id,
        gateway_id: payment.gateway_id(),
        provider: lightspeed_domain::Provider::Sandbox,
        dedupe_key: format!("evt-{payment_id}"),
        payment_id: Some(payment_id),
        psp_order_id: None,
        psp_payment_id: Some("sbp_1".into()),
        outcome: PspOutcome::Succeeded {
            amount: payment.amount(),
        },
        source: OutcomeSource::Webhook,
        at: app.ledger.now(),
    };
    app.ledger
        .settle_outcome(&report, &CommandContext::default())
        .await
        .expect("settle");
}

/// Asks for a refund of `amount` through the signed merchant route (answered 202); answers our
/// refund id.
pub async fn request_refund(
    app: &TestApp,
    merchant: &TestMerchant,
    payment_id: PaymentId,
    refund_id: &str,
    amount: i64,
) -> lightspeed_domain::RefundId {
    let body = serde_json::to_vec(&serde_json::json!({"amount": amount, "refund_id": refund_id}))
        .expect("JSON");
    let path = format!("/payment/{payment_id}/refunds");
    let asked = app
        .signed(merchant, reqwest::Method::POST, &path, &body)
        .send()
        .await
        .expect("request");
    assert_eq!(asked.status(), reqwest::StatusCode::ACCEPTED, "{refund_id}");
    app.ledger
        .refund_by_merchant_id(merchant.id, refund_id)
        .await
        .expect("refund")
        .expect("recorded")
        .1
}
