//! What every handler shares: the ledger, the keyring, configuration, limits, and the parts the
//! binary plugs in (queue control, metrics, readiness checks, status checks, reconciliation).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use futures::future::BoxFuture;
use lightspeed_adapters::payouts::MIN_AMOUNT;
use lightspeed_adapters::psp::PspClient;
use lightspeed_adapters::secrets::Keyring;
use lightspeed_adapters::secrets::Secret;
use lightspeed_domain::{GatewayId, Paise, PaymentId, RefundId};
use lightspeed_monitoring::queues::QueueControl;
use lightspeed_services::Ledger;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::admin_auth::AdminAuthConfig;
use crate::protection::{InitiateLimits, WebhookIpAllowlist};
use crate::readiness::{ReadinessCheck, ReadinessConfig};

/// How the API behaves.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where payers' browsers and PSPs reach this API, e.g. `https://pay.example.com`.
    pub public_url: String,
    /// Largest request body accepted, in bytes (default 64 KiB).
    pub body_limit_bytes: usize,
    /// `POST /payment/initiate` requests per minute per merchant, unless the merchant has a rate
    /// of its own (default 100).
    pub initiate_per_minute: NonZeroU32,
    /// Longest a request may take before it is answered with an error (default 10 s).
    pub request_timeout: Duration,
    /// Longest a status stream stays open (default 15 minutes).
    pub status_stream_limit: Duration,
    /// Admin authentication; without it every admin route answers 503 `ADMIN_DISABLED`.
    pub admin: Option<AdminAuthConfig>,
    /// Origins whose browsers may call the admin API (CORS); none by default.
    pub admin_origins: Vec<HeaderValue>,
    /// Source addresses PSP webhooks may come from, per provider; unrestricted by default.
    pub webhook_ip_allowlist: WebhookIpAllowlist,
    /// Proxies in front of the API that append to `X-Forwarded-For` (0: trust the peer address).
    pub trusted_proxy_hops: usize,
    /// What `GET /health/ready` requires.
    pub readiness: ReadinessConfig,
    /// Commission payouts: the RazorpayX webhook secret and the smallest payout made.
    pub payouts: PayoutApiSettings,
    /// Which merchant webhook endpoint addresses may be registered (public `https` only by
    /// default).
    pub webhook_targets: lightspeed_adapters::webhook_target::TargetPolicy,
}

/// What the API needs for commission payouts.
#[derive(Debug, Clone)]
pub struct PayoutApiSettings {
    /// Secret of the RazorpayX payout webhook; without it `POST /webhook/razorpayx` answers 503
    /// `PAYOUTS_DISABLED`.
    pub webhook_secret: Option<Secret>,
    /// Smallest payout `POST /admin/payouts/run` makes, whatever a merchant's own minimum
    /// (default ₹1, RazorpayX's least).
    pub minimum: Paise,
}

impl Default for PayoutApiSettings {
    fn default() -> Self {
        Self {
            webhook_secret: None,
            minimum: MIN_AMOUNT,
        }
    }
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
            admin: None,
            admin_origins: Vec::new(),
            webhook_ip_allowlist: WebhookIpAllowlist::default(),
            trusted_proxy_hops: 0,
            readiness: ReadinessConfig::default(),
            payouts: PayoutApiSettings::default(),
            webhook_targets: Default::default(),
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

    /// Queues a check of one of our refunds (an unsigned refund callback names it); without
    /// a queue, nothing is queued and reconciliation covers the refund.
    fn enqueue_refund(
        &self,
        _payment_id: PaymentId,
        _refund_id: RefundId,
        _reason: &'static str,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// What one on-demand reconciliation sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReconciliationRun {
    /// Payments found without an outcome past the configured age.
    pub stale: u64,
    /// Status checks queued.
    pub queued: u64,
    /// Checks already queued in the current window (not queued again).
    pub already_queued: u64,
}

/// Runs one pending-payment reconciliation sweep (the binary plugs in the workers' reconciler).
pub trait Reconciliation: Send + Sync {
    /// Sweeps now; the error says why it could not (never a secret).
    fn sweep(&self) -> BoxFuture<'static, Result<ReconciliationRun, String>>;
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
    /// The work queues, when wired.
    pub queues: Option<Arc<dyn QueueControl>>,
    /// The Prometheus recorder's handle, when metrics are installed.
    pub metrics: Option<PrometheusHandle>,
    /// Checks of what the process depends on besides PostgreSQL (e.g. NATS), for readiness.
    pub readiness_checks: Vec<Arc<dyn ReadinessCheck>>,
    /// The client PSP credential checks go through; a default one when not given.
    pub psp: Option<PspClient>,
    /// On-demand reconciliation, when wired.
    pub reconciliation: Option<Arc<dyn Reconciliation>>,
    pub(crate) initiate_limits: InitiateLimits,
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
    /// State for the API over `ledger`, with nothing else plugged in but status checks.
    pub fn new(
        ledger: Ledger,
        keyring: Arc<Keyring>,
        config: ApiConfig,
        status_checks: Option<Arc<dyn StatusChecks>>,
    ) -> Self {
        let mut builder = Self::builder(ledger, keyring, config);
        builder.status_checks = status_checks;
        builder.build()
    }

    /// A builder for state with queue control, metrics and readiness checks plugged in.
    pub fn builder(ledger: Ledger, keyring: Arc<Keyring>, config: ApiConfig) -> AppStateBuilder {
        AppStateBuilder {
            ledger,
            keyring,
            config,
            status_checks: None,
            queues: None,
            metrics: None,
            readiness_checks: Vec::new(),
            psp: None,
            reconciliation: None,
        }
    }

    /// The hosted checkout page of a payment.
    pub fn checkout_url(&self, payment_id: PaymentId) -> String {
        format!("{}/checkout/{payment_id}", self.config.public_url)
    }

    /// The database the log and the read models live in.
    pub fn pool(&self) -> &PgPool {
        self.ledger.store().pool()
    }
}

/// Assembles an [`AppState`]; every part but the ledger, keyring and configuration is optional.
pub struct AppStateBuilder {
    ledger: Ledger,
    keyring: Arc<Keyring>,
    config: ApiConfig,
    status_checks: Option<Arc<dyn StatusChecks>>,
    queues: Option<Arc<dyn QueueControl>>,
    metrics: Option<PrometheusHandle>,
    readiness_checks: Vec<Arc<dyn ReadinessCheck>>,
    psp: Option<PspClient>,
    reconciliation: Option<Arc<dyn Reconciliation>>,
}

impl AppStateBuilder {
    /// Turns unverified PSP webhooks into status checks.
    pub fn status_checks(mut self, checks: Arc<dyn StatusChecks>) -> Self {
        self.status_checks = Some(checks);
        self
    }

    /// Lets the admin API list, retry and drain the work queues.
    pub fn queue_control(mut self, queues: Arc<dyn QueueControl>) -> Self {
        self.queues = Some(queues);
        self
    }

    /// Serves `GET /metrics` from this recorder (the handle `metrics::install` answers).
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// Adds a dependency `GET /health/ready` checks (PostgreSQL and lags are always checked).
    pub fn readiness_check(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.readiness_checks.push(check);
        self
    }

    /// The HTTP client for PSP credential checks.
    pub fn psp_client(mut self, psp: PspClient) -> Self {
        self.psp = Some(psp);
        self
    }

    /// Lets `POST /admin/reconciliation/run` sweep for stale payments.
    pub fn reconciliation(mut self, reconciliation: Arc<dyn Reconciliation>) -> Self {
        self.reconciliation = Some(reconciliation);
        self
    }

    /// The state.
    pub fn build(self) -> AppState {
        let initiate_limits = InitiateLimits::new(
            self.config.initiate_per_minute,
            Arc::clone(self.ledger.store().clock()),
        );
        // The allow-list's admins are admins whatever the people registry says.
        let ledger = match &self.config.admin {
            Some(admin) => self
                .ledger
                .with_bootstrap_admins(admin.bootstrap_admins().iter().cloned()),
            None => self.ledger,
        };
        AppState(Arc::new(Inner {
            ledger,
            keyring: self.keyring,
            config: self.config,
            status_checks: self.status_checks,
            queues: self.queues,
            metrics: self.metrics,
            readiness_checks: self.readiness_checks,
            psp: self.psp,
            reconciliation: self.reconciliation,
            initiate_limits,
        }))
    }
}
