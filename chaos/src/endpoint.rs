//! The merchants' webhook endpoint: a server on loopback that notes every webhook that arrives
//! (its `webhook-id`, type and transaction, and whether its signature checks out) and answers
//! `200`. Merchant `i` is reached at `/hooks/<i>`.

use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use lightspeed_adapters::merchant_webhook::{HEADER_ID, WebhookSecret, verify};

/// One webhook as it arrived.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Its `webhook-id`.
    pub webhook_id: String,
    /// `payment.created`, `payment.succeeded`, …
    pub event_type: String,
    /// The payment it is about.
    pub transaction_id: String,
    /// Whether its signature verified under the secret of the merchant whose path it came to.
    pub signed: bool,
}

/// The endpoint's record.
#[derive(Default)]
pub struct MerchantEndpoint {
    arrivals: Mutex<Vec<Arrival>>,
    secrets: RwLock<Vec<WebhookSecret>>,
}

impl MerchantEndpoint {
    /// Starts serving on a loopback port; answers the endpoint and its base URL.
    pub async fn start() -> anyhow::Result<(Arc<Self>, String)> {
        let endpoint = Arc::new(Self::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks", listener.local_addr()?);
        let router = Router::new()
            .route("/hooks/{merchant}", post(receive))
            .with_state(Arc::clone(&endpoint));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("the merchant endpoint stopped: {e}");
            }
        });
        Ok((endpoint, url))
    }

    /// The merchants' webhook secrets, in merchant order.
    pub fn set_secrets(&self, secrets: Vec<WebhookSecret>) {
        *self.secrets.write().unwrap_or_else(|e| e.into_inner()) = secrets;
    }

    /// Every arrival so far.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many webhooks have arrived.
    pub fn count(&self) -> usize {
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    fn signed(&self, merchant: usize, headers: &HeaderMap, body: &[u8]) -> bool {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        secrets
            .get(merchant)
            .is_some_and(|secret| verify(secret, headers, body, chrono::Utc::now()).is_ok())
    }
}

async fn receive(
    State(endpoint): State<Arc<MerchantEndpoint>>,
    Path(merchant): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    let arrival = Arrival {
        webhook_id: headers
            .get(HEADER_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        event_type: text(&json["type"]),
        transaction_id: text(&json["data"]["transaction_id"]),
        signed: endpoint.signed(merchant, &headers, &body),
    };
    endpoint
        .arrivals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(arrival);
    StatusCode::OK
}
