//! The sandbox PSP served by the product, for demos and tests: its orders, its checkout page,
//! refunds of paid orders and the signed webhooks it sends, kept in PostgreSQL (schema
//! `sandbox`).
//!
//! Routes (under `/sandbox`; bodies and codes in [`lightspeed_adapters::sandbox`]):
//! `POST /v1/orders`, `GET /v1/orders/{id}`, `GET /checkout/{id}`, `POST /checkout/{id}/pay`,
//! `POST /checkout/{id}/fail`, `POST /v1/orders/{id}/refunds`, `GET /v1/refunds/{id}` and the
//! test control `POST /v1/refunds/{id}/settle`.
//!
//! The API mounts [`router`] under `/sandbox`. The wire format it speaks (routes, bodies,
//! errors, webhooks), shared with the PSP adapter that calls it, is
//! [`lightspeed_adapters::sandbox`]; [`Sandbox`]'s methods are the same operations without HTTP.
//!
//! # Durability
//!
//! Every API process serves every order: create one on a process, pay it on another, read its
//! status on a third. The payer's choice and the webhook it owes are stored in one statement
//! before anything is sent, so a crash loses neither. Each attempt is claimed first: the claim
//! bumps the webhook's attempt count and leases it for longer than a post can take (the choice
//! itself leases the first attempt to its click). The click's own request makes the first
//! attempts while the payer waits ([`SandboxConfig::payer_wait`]); the attempts still owed after
//! that, or abandoned by a process that died, are made by [`Sandbox::run`] in whichever process
//! claims them first, once each. The `webhook-id` and the bytes posted are the same on every
//! attempt.
//!
//! # Refunds
//!
//! A refund is keyed by the caller's refund reference and stored with its amount reserved on
//! the order in one short transaction; the reservation is a guarded `UPDATE`, so refunds racing
//! on one order never together exceed what was paid. Settling one (the settle control, or the
//! sweeps once [`SandboxConfig::refund_auto_settle`] has passed) moves it out of `pending`,
//! gives a failed refund's amount back, and records the webhook it owes, in one statement; that
//! webhook is delivered like a payment's, under a `webhook-id` of its own.
//!
//! Orders are kept for [`SandboxConfig::retention`] after their creation, then removed (with
//! their refunds) by the same sweeps, a bounded batch at a time; there is no cap on how many are
//! open.
//!
//! Architecture invariant: SQL on `sandbox.*` lives only here (`store.rs`), and no statement
//! holds a transaction open across a webhook post (an open transaction anywhere on the cluster
//! holds back the ledger's gap-safe readers).

mod delivery;
mod orders;
mod page;
mod refunds;
mod routes;
mod store;

use std::sync::Arc;
use std::time::Duration;

use lightspeed_adapters::http::{ClientBuildError, HttpConfig, build_client};
use lightspeed_adapters::secrets::Keyring;
use lightspeed_domain::Clock;
use sqlx::PgPool;

pub use delivery::{RETENTION_BATCH, SWEEP_BATCH, Sweep};
pub use orders::{AccountKey, Created, PayerChoice, Recorded};
pub use refunds::{CreatedRefund, SETTLE_BATCH};
pub use routes::router;

/// How the sandbox behaves.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where browsers reach the router (e.g. `http://localhost:8080/sandbox`), for checkout URLs.
    pub public_url: String,
    /// How long an order is kept after its creation; older ones are removed by the sweeps.
    pub retention: Duration,
    /// Webhook delivery attempts per order, in all.
    pub delivery_attempts: u32,
    /// Pause before the second attempt; doubled for each further one.
    pub first_retry_delay: Duration,
    /// How long the payer's click waits on retries before leaving them to the sweeps.
    pub payer_wait: Duration,
    /// Pause between two sweeps of [`Sandbox::run`].
    pub sweep_interval: Duration,
    /// Timeouts of webhook deliveries.
    pub http: HttpConfig,
    /// When set, the sweeps settle each refund as `processed` this long after its creation,
    /// as a bank would (demos and end-to-end tests); otherwise only the settle control does.
    pub refund_auto_settle: Option<Duration>,
}

/// Default of [`SandboxConfig::retention`]: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

impl SandboxConfig {
    /// Defaults for a router reachable at `public_url`: orders kept 30 days, ten delivery
    /// attempts over about four minutes, those due in the first two seconds while the payer
    /// waits.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into(),
            retention: DEFAULT_RETENTION,
            delivery_attempts: 10,
            first_retry_delay: Duration::from_millis(500),
            payer_wait: Duration::from_secs(2),
            sweep_interval: Duration::from_secs(1),
            http: HttpConfig {
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(5),
            },
            refund_auto_settle: None,
        }
    }
}

/// Why a sandbox operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The reference is not 1–64 chars of `[A-Za-z0-9_-]`.
    #[error("reference must be 1-64 chars of [A-Za-z0-9_-]")]
    InvalidReference,
    /// The amount is not positive.
    #[error("amount must be positive paise")]
    InvalidAmount,
    /// A callback or return URL is not http(s).
    #[error("callback_url and return_url must be http(s) URLs")]
    InvalidUrl,
    /// A text field holds a NUL character, which PostgreSQL text cannot store.
    #[error("currency, description and URLs must not contain NUL characters")]
    InvalidText,
    /// A refund was asked of an order whose payment did not succeed (or has not happened).
    #[error("only a paid order can be refunded")]
    OrderNotPaid,
    /// The refund is smaller than the sandbox takes.
    #[error("a refund must be at least 100 paise")]
    RefundTooSmall,
    /// The refund is more than the payment has left to refund.
    #[error("the refund amount is greater than what is left to refund")]
    OverRefund,
    /// The refund reference was used before with another request.
    #[error("a refund with this reference exists with other details")]
    RefundExists,
    /// A settle control asked for a status a refund cannot be settled as.
    #[error("a refund is settled as processed or failed")]
    InvalidSettlement,
    /// The refund was settled the other way already.
    #[error("the refund is settled already, the other way")]
    RefundSettled,
    /// The reference belongs to an order of another account or amount.
    #[error("an order with this reference exists with other details")]
    OrderExists,
    /// The order was removed (by retention) between two statements, and its reference may have
    /// been reused.
    #[error("the order with this reference was just removed; try again")]
    OrderRemoved,
    /// A webhook body could not be written.
    #[error("webhook body: {0}")]
    Encode(#[from] serde_json::Error),
    /// PostgreSQL failed.
    #[error("sandbox database: {0}")]
    Database(#[from] sqlx::Error),
}

/// The sandbox: its database, its keys and its webhook client. Cheap to clone; any number of
/// instances, in any number of processes, may serve the same database.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    pool: PgPool,
    keyring: Arc<Keyring>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("public_url", &self.inner.config.public_url)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A sandbox on a migrated database: account keys are sealed with `keyring`; `clock` stamps
    /// orders, schedules and webhook timestamps.
    pub fn new(
        pool: PgPool,
        keyring: Arc<Keyring>,
        config: SandboxConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ClientBuildError> {
        let http = build_client(&config.http)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                pool,
                keyring,
                http,
                clock,
            }),
        })
    }
}
