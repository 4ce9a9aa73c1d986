//! The API's test harness ([`lightspeed_api::testing`]), and what only these tests need: a
//! payment request's body, a response's problem document, and the log's event count.

pub use lightspeed_api::testing::*;

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
