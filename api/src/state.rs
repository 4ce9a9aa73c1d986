//! What every handler shares: the ledger, the keyring, configuration and limits.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use lightspeed_domain::{GatewayId, PaymentId};
use lightspeed_gateways::secrets::Keyring;
use lightspeed_services::Ledger;

/// How the API behaves.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where payers' browsers and PSPs reach this API, e.g. `https://pay.example.com`.
    pub public_url: String,
    /// Largest request body accepted, in bytes (default 64 KiB).
    pub body_limit_bytes: usize,
    /// `POST /payment/initiate` requests per minute per client key (default 100).
    pub initiate_per_minute: NonZeroU32,
    /// Longest a request may take before it is answered with an error (default 10 s).
    pub request_timeout: Duration,
    /// Longest a status stream stays open (default 15 minutes).
    pub status_stream_limit: Duration,
}

impl ApiConfig {
    /// Defaults for an API reachable at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            body_limit_bytes: 64 * 1024,
            initiate_per_minute: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            request_timeout: Duration::from_secs(10),
            status_stream_limit: Duration::from_secs(15 * 60),
        }
    }
}

/// Asks a PSP for a payment's status instead of trusting a message that did not verify.
pub trait StatusChecks: Send + Sync {
    /// Queues a status check of the payment (or of whatever the gateway reports, without one).
    fn enqueue(
        &self,
        gateway_id: GatewayId,
        payment_id: Option<PaymentId>,
        reason: &'static str,
    ) -> BoxFuture<'static, ()>;
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The parts of [`AppState`].
pub struct Inner {
    /// The ledger's operations.
    pub ledger: Ledger,
    /// Opens sealed secrets (merchant salts, PSP credentials) at the moment of use.
    pub keyring: Arc<Keyring>,
    /// Configuration.
    pub config: ApiConfig,
    /// Where unverified PSP messages turn into status checks, when wired.
    pub status_checks: Option<Arc<dyn StatusChecks>>,
    pub(crate) initiate_limiter: DefaultKeyedRateLimiter<String>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for the API over `ledger`.
    pub fn new(
        ledger: Ledger,
        keyring: Arc<Keyring>,
        config: ApiConfig,
        status_checks: Option<Arc<dyn StatusChecks>>,
    ) -> Self {
        let initiate_limiter = RateLimiter::keyed(Quota::per_minute(config.initiate_per_minute));
        Self(Arc::new(Inner {
            ledger,
            keyring,
            config,
            status_checks,
            initiate_limiter,
        }))
    }

    /// The hosted checkout page of a payment.
    pub fn checkout_url(&self, payment_id: PaymentId) -> String {
        format!("{}/checkout/{payment_id}", self.config.public_url)
    }
}
