//! The load: payments started at a steady rate through the merchant API, each driven through
//! the sandbox PSP's checkout as its payer would (Pay for four in five, Fail for the rest).
//! Every request is retried while the API is away, with the same body, so a payment is never
//! started twice by the load. What each payer saw is kept for the checks.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightspeed_adapters::merchant_auth::{
    HEADER_CLIENT_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign_request,
};
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::PaymentId;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

/// How often a payment's state is read while waiting for its PSP order.
const POLL: Duration = Duration::from_millis(500);
/// How long the load waits before retrying a request the API did not answer.
const RETRY: Duration = Duration::from_millis(250);

/// A merchant as the load knows it: the credentials its requests are signed with.
#[derive(Clone)]
pub struct Shop {
    /// Its client key.
    pub client_key: String,
    /// Its client salt.
    pub client_salt: Secret,
}

/// What the payer of a payment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Pressed Pay on the sandbox checkout.
    Pay,
    /// Pressed Fail.
    Fail,
}

/// What the load saw become of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The sandbox took the payer's Pay.
    Succeeded,
    /// The sandbox took the payer's Fail, or the payment failed before reaching a payer.
    Failed,
    /// The load could not finish it, and why.
    Unfinished(String),
}

/// One payment of the load.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The merchant's index.
    pub merchant: usize,
    /// The merchant's order id.
    pub order_id: String,
    /// Amount in paise.
    pub amount: i64,
    /// The payment, once the API answered its initiation.
    pub payment_id: Option<PaymentId>,
    /// What the payer saw.
    pub seen: Seen,
    /// From the first initiation request to the payer's answer.
    pub took: Duration,
}

/// The load's progress, read by the fault injector.
#[derive(Default)]
pub struct LoadStats {
    api_answered: Mutex<Option<Instant>>,
}

impl LoadStats {
    /// When the API last answered a request successfully.
    pub fn api_answered(&self) -> Option<Instant> {
        *self.api_answered.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note_answer(&self) {
        *self.api_answered.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
}

/// The load generator.
pub struct Load {
    http: reqwest::Client,
    apis: Vec<String>,
    turn: AtomicUsize,
    shops: Vec<Shop>,
    run: String,
    /// Progress, shared with the fault injector.
    pub stats: Arc<LoadStats>,
}

/// One attempt's result.
enum Attempt<T> {
    Done(T),
    Retry(String),
    Refused(String),
}

impl Load {
    /// Load against the API processes at `apis`, each request to the next in turn, for
    /// `shops`; order ids carry `run`.
    pub fn new(apis: Vec<String>, shops: Vec<Shop>, run: String) -> anyhow::Result<Self> {
        anyhow::ensure!(!apis.is_empty(), "no API to load");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            apis,
            turn: AtomicUsize::new(0),
            shops,
            run,
            stats: Arc::default(),
        })
    }

    /// Starts `count` payments at `rate` a second; answers every payment's outcome once each
    /// is finished or `deadline` has passed.
    pub async fn run(self: Arc<Self>, count: u64, rate: u32, deadline: Instant) -> Vec<Outcome> {
        let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
        let mut payments = Vec::new();
        for n in 0..count {
            ticks.tick().await;
            let load = Arc::clone(&self);
            payments.push(tokio::spawn(async move { load.payment(n, deadline).await }));
        }
        let mut outcomes = Vec::new();
        for payment in payments {
            if let Ok(outcome) = payment.await {
                outcomes.push(outcome);
            }
        }
        outcomes
    }

    /// Initiates payment `n`, waits for its PSP order and answers as its payer.
    async fn payment(&self, n: u64, deadline: Instant) -> Outcome {
        let started = Instant::now();
        let draw = splitmix(n);
        let merchant = usize::try_from(n).unwrap_or(0) % self.shops.len();
        let mut outcome = Outcome {
            merchant,
            order_id: format!("{}-{n:06}", self.run),
            // ₹1 to ₹5 000, so commission rounds every way.
            amount: 100 + i64::try_from(draw % 500_000).unwrap_or(0),
            payment_id: None,
            seen: Seen::Unfinished("not initiated".into()),
            took: Duration::ZERO,
        };
        let choice = if (draw >> 32).is_multiple_of(5) {
            Choice::Fail
        } else {
            Choice::Pay
        };
        outcome.seen = match self.drive(&mut outcome, choice, deadline).await {
            Ok(seen) => seen,
            Err(why) => Seen::Unfinished(why),
        };
        outcome.took = started.elapsed();
        outcome
    }

    async fn drive(
        &self,
        outcome: &mut Outcome,
        choice: Choice,
        deadline: Instant,
    ) -> Result<Seen, String> {
        let shop = &self.shops[outcome.merchant];
        let body = serde_json::json!({
            "amount": outcome.amount, "currency": "INR", "order_id": outcome.order_id,
            "customer": { "name": "Asha Verma", "email": "asha@example.com", "phone": "919867800451" },
        })
        .to_string();
        let payment_id = until(deadline, RETRY, || self.initiate(shop, &body)).await?;
        outcome.payment_id = Some(payment_id);
        match until(deadline, POLL, || self.psp_order(shop, payment_id)).await? {
            Err(final_status) if final_status == "succeeded" => Ok(Seen::Succeeded),
            Err(_) => Ok(Seen::Failed),
            Ok(order) => until(deadline, RETRY, || self.press(&order, choice)).await,
        }
    }

    /// A request to the API signed by `shop`.
    fn signed(
        &self,
        shop: &Shop,
        method: Method,
        path: &str,
        body: &str,
    ) -> reqwest::RequestBuilder {
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign_request(
            shop.client_salt.expose(),
            timestamp,
            method.as_str(),
            path,
            body.as_bytes(),
        );
        self.http
            .request(method, format!("{}{path}", self.api()))
            .header(HEADER_CLIENT_KEY, &shop.client_key)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .header("content-type", "application/json")
            .body(body.to_owned())
    }

    async fn initiate(&self, shop: &Shop, body: &str) -> Attempt<PaymentId> {
        let request = self.signed(shop, Method::POST, "/payment/initiate", body);
        let (status, json) = match self.send(request).await {
            Ok(answer) => answer,
            Err(why) => return Attempt::Retry(why),
        };
        if status != StatusCode::CREATED {
            return retry_or_refuse(status, &json);
        }
        match json["transaction_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
        {
            Some(id) => Attempt::Done(id),
            None => Attempt::Refused(format!("initiation answered without an id: {json}")),
        }
    }

    /// The payment's PSP order id once it has one (`Ok`), or its status if it became final
    /// without one (`Err`).
    async fn psp_order(&self, shop: &Shop, id: PaymentId) -> Attempt<Result<String, String>> {
        let request = self.signed(shop, Method::GET, &format!("/transaction/{id}"), "");
        let (status, json) = match self.send(request).await {
            Ok(answer) => answer,
            Err(why) => return Attempt::Retry(why),
        };
        if status != StatusCode::OK {
            return retry_or_refuse(status, &json);
        }
        let state = json["status"].as_str().unwrap_or_default().to_owned();
        match json["psp_order_id"].as_str() {
            Some(order) => Attempt::Done(Ok(order.to_owned())),
            None if matches!(state.as_str(), "succeeded" | "failed") => Attempt::Done(Err(state)),
            None => Attempt::Retry(format!("no PSP order yet ({state})")),
        }
    }

    /// Presses Pay or Fail on the sandbox's checkout; answers what the sandbox recorded.
    async fn press(&self, order: &str, choice: Choice) -> Attempt<Seen> {
        let button = match choice {
            Choice::Pay => "pay",
            Choice::Fail => "fail",
        };
        let url = format!("{}/sandbox/checkout/{order}/{button}", self.api());
        let response = match self.http.post(url).send().await {
            Ok(response) => response,
            Err(e) => return Attempt::Retry(e.to_string()),
        };
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if status == StatusCode::SEE_OTHER && location.contains("status=succeeded") {
            Attempt::Done(Seen::Succeeded)
        } else if status == StatusCode::SEE_OTHER && location.contains("status=failed") {
            Attempt::Done(Seen::Failed)
        } else if status.is_server_error() {
            Attempt::Retry(format!("the sandbox answered {status}"))
        } else {
            Attempt::Refused(format!("the sandbox answered {status} for order {order}"))
        }
    }

    /// The API process the next request goes to: each in turn, so a retry after one did not
    /// answer goes to another.
    fn api(&self) -> &str {
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        &self.apis[turn % self.apis.len()]
    }

    /// Sends a request; answers its status and JSON body, noting when the API answered.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(StatusCode, Value), String> {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let json = response.json::<Value>().await.unwrap_or_default();
        if status.is_success() {
            self.stats.note_answer();
        }
        Ok((status, json))
    }
}

/// A `429` or `5xx` is retried (the API is away or busy); anything else is a refusal.
fn retry_or_refuse<T>(status: StatusCode, json: &Value) -> Attempt<T> {
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Attempt::Retry(format!("{status}: {}", json["code"]))
    } else {
        Attempt::Refused(format!("{status}: {json}"))
    }
}

/// Makes attempts `every` so long until one is done, refused, or `deadline` passes.
async fn until<T, F, Fut>(deadline: Instant, every: Duration, mut attempt: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    loop {
        let why = match attempt().await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Refused(why) => return Err(why),
            Attempt::Retry(why) => why,
        };
        if Instant::now() + every > deadline {
            return Err(format!("gave up at the deadline: {why}"));
        }
        tokio::time::sleep(every).await;
    }
}

/// A well-mixed 64-bit value of `n` (SplitMix64), so each payment's amount and choice are the
/// same on every run.
fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
