//! Payment service provider adapters: one per [`Provider`], behind [`PspClient`].
//!
//! Every provider implements the crate's `PspAdapter` trait once, over its credentials; the
//! account's credentials choose the implementation, and every operation calls through it:
//!
//! - [`PspClient::create_order`]: idempotent by our payment reference, so a redelivered job never
//!   creates a second PSP order (each adapter looks up before creating where its PSP allows it);
//! - [`verify_webhook`]: checks the PSP's signature over the **raw** request bytes, then parses
//!   the body into a [`VerifiedWebhook`];
//! - [`PspClient::fetch_status`]: asks the PSP for the payment's state, for reconciliation;
//! - [`PspClient::test_credentials`]: a harmless authenticated call, for the admin "test" button;
//! - [`PspClient::create_refund`]: refunds (part of) a captured payment, never twice: keyed by
//!   the refund's [`refund_reference`] (the PSP's idempotency key or merchant refund id, and a
//!   look-up before creating where the PSP has neither);
//! - [`PspClient::fetch_refund`]: asks the PSP where a refund stands, for retries and
//!   reconciliation.
//!
//! A new operation is one trait method, implemented once per provider; a new provider is one
//! implementation and one arm in `PspCredentials::adapter`.
//!
//! Failures are classified by [`PspError`]: callers mark the gateway temporarily failed on
//! [`PspError::Unavailable`] and [`PspError::RateLimited`] and route elsewhere.

pub mod cashfree;
mod json;
pub mod payu;
pub mod phonepe;
pub mod razorpay;
pub mod reference;
pub mod sandbox;
mod shape;
mod storable;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lightspeed_domain::psp_outcome::RefundState;
use lightspeed_domain::{Paise, PaymentId, Provider, RefundId, SealedSecret};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::http::{Answer, ClientBuildError, Failure, HttpConfig, build_client};
use crate::secrets::{Keyring, Secret, SecretError};

pub use reference::{parse_psp_reference, parse_refund_reference, psp_reference, refund_reference};
pub use shape::{CredentialProblem, MAX_CREDENTIAL_BYTES};

/// The credentials of one gateway (one account at one PSP).
///
/// Deserialized from the admin API and from the opened blob; there is no `Serialize`, so the
/// only way out is [`PspAccount::seal`]. `Debug` shows public identifiers only.
#[derive(Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum PspCredentials {
    /// Razorpay API keys and the webhook secret set in the Dashboard (not the key secret).
    Razorpay {
        /// `rzp_test_…` or `rzp_live_…`.
        key_id: String,
        /// The API key secret.
        key_secret: Secret,
        /// The secret of the webhook configured for this account.
        webhook_secret: Secret,
    },
    /// PayU merchant key and salt.
    Payu {
        /// The merchant key (public: it is posted in the checkout form).
        key: String,
        /// The salt that keys every hash.
        salt: Secret,
    },
    /// Cashfree PG app id and secret (the secret also signs webhooks).
    Cashfree {
        /// `x-client-id`.
        client_id: String,
        /// `x-client-secret`.
        client_secret: Secret,
    },
    /// PhonePe PG v1 merchant id and salt.
    Phonepe {
        /// The merchant id.
        merchant_id: String,
        /// The salt key.
        salt_key: Secret,
        /// The index of that salt key.
        salt_index: u32,
    },
    /// The built-in sandbox PSP: one `whsec_` secret authenticates calls and signs webhooks.
    Sandbox {
        /// The Standard Webhooks secret the sandbox signs this account's webhooks with.
        webhook_secret: Secret,
    },
}

impl PspCredentials {
    /// The provider these credentials are for.
    pub fn provider(&self) -> Provider {
        match self {
            Self::Razorpay { .. } => Provider::Razorpay,
            Self::Payu { .. } => Provider::Payu,
            Self::Cashfree { .. } => Provider::Cashfree,
            Self::Phonepe { .. } => Provider::Phonepe,
            Self::Sandbox { .. } => Provider::Sandbox,
        }
    }

    /// The non-secret identifier of the account, for display (`None` for the sandbox).
    pub fn public_id(&self) -> Option<&str> {
        match self {
            Self::Razorpay { key_id, .. } => Some(key_id),
            Self::Payu { key, .. } => Some(key),
            Self::Cashfree { client_id, .. } => Some(client_id),
            Self::Phonepe { merchant_id, .. } => Some(merchant_id),
            Self::Sandbox { .. } => None,
        }
    }

    /// The adapter of these credentials' provider: the one place a provider is chosen.
    pub(crate) fn adapter(&self) -> Box<dyn PspAdapter + '_> {
        match self {
            Self::Razorpay {
                key_id,
                key_secret,
                webhook_secret,
            } => Box::new(razorpay::Adapter {
                key_id,
                key_secret,
                webhook_secret,
            }),
            Self::Payu { key, salt } => Box::new(payu::Adapter { key, salt }),
            Self::Cashfree {
                client_id,
                client_secret,
            } => Box::new(cashfree::Adapter {
                client_id,
                client_secret,
            }),
            Self::Phonepe {
                merchant_id,
                salt_key,
                salt_index,
            } => Box::new(phonepe::Adapter {
                merchant_id,
                salt_key,
                salt_index: *salt_index,
            }),
            Self::Sandbox { webhook_secret } => Box::new(sandbox::Adapter { webhook_secret }),
        }
    }

    /// The clear JSON, built by hand so that no `Serialize` impl exists to misuse elsewhere.
    fn clear_json(&self) -> Result<serde_json::Value, SecretError> {
        use serde_json::json;
        Ok(match self {
            Self::Razorpay {
                key_id,
                key_secret,
                webhook_secret,
            } => json!({
                "provider": "razorpay", "key_id": key_id,
                "key_secret": key_secret.expose_str()?, "webhook_secret": webhook_secret.expose_str()?,
            }),
            Self::Payu { key, salt } => {
                json!({"provider": "payu", "key": key, "salt": salt.expose_str()?})
            }
            Self::Cashfree {
                client_id,
                client_secret,
            } => json!({
                "provider": "cashfree", "client_id": client_id, "client_secret": client_secret.expose_str()?,
            }),
            Self::Phonepe {
                merchant_id,
                salt_key,
                salt_index,
            } => json!({
                "provider": "phonepe", "merchant_id": merchant_id,
                "salt_key": salt_key.expose_str()?, "salt_index": salt_index,
            }),
            Self::Sandbox { webhook_secret } => {
                json!({"provider": "sandbox", "webhook_secret": webhook_secret.expose_str()?})
            }
        })
    }
}

impl std::fmt::Debug for PspCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PspCredentials")
            .field("provider", &self.provider())
            .field("public_id", &self.public_id())
            .finish_non_exhaustive()
    }
}

/// Which of a provider's environments the default hosts point at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PspEnvironment {
    /// The provider's sandbox / test hosts (the default).
    #[default]
    Test,
    /// The provider's production hosts.
    Live,
}

/// A gateway's account as the adapters need it: credentials, environment and an optional base URL
/// override. The whole thing is sealed as one blob with [`PspAccount::seal`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PspAccount {
    /// The credentials, which also say which provider this is.
    pub credentials: PspCredentials,
    /// Test or live hosts; test unless stated.
    #[serde(default)]
    pub environment: PspEnvironment,
    /// Replaces the provider's API host (for tests, proxies and the sandbox's address).
    #[serde(default)]
    pub base_url: Option<String>,
}

impl PspAccount {
    /// An account on the provider's test hosts.
    pub fn test(credentials: PspCredentials) -> Self {
        Self {
            credentials,
            environment: PspEnvironment::Test,
            base_url: None,
        }
    }

    /// The same account talking to `base_url` instead of the provider's host.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// The provider of this account.
    pub fn provider(&self) -> Provider {
        self.credentials.provider()
    }

    /// Seals the whole account (credentials, environment, base URL) as one blob.
    pub fn seal(&self, keyring: &Keyring) -> Result<SealedSecret, SecretError> {
        let clear = serde_json::json!({
            "credentials": self.credentials.clear_json()?,
            "environment": self.environment,
            "base_url": self.base_url,
        });
        Ok(keyring.seal(clear.to_string().as_bytes()))
    }

    /// Opens a blob made by [`PspAccount::seal`].
    pub fn open(keyring: &Keyring, sealed: &SealedSecret) -> Result<Self, SecretError> {
        let clear = keyring.open(sealed)?;
        // serde's message may quote a value it could not parse; report the position only.
        serde_json::from_slice(clear.expose()).map_err(|e| {
            SecretError::Shape(format!(
                "not a PSP account (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }

    /// How calls for this account reach its PSP over `http`.
    fn endpoint<'a>(&'a self, http: &'a reqwest::Client) -> Endpoint<'a> {
        Endpoint {
            http,
            environment: self.environment,
            base_url: self.base_url.as_deref(),
        }
    }
}

/// How a call reaches an account's PSP: the shared HTTP client, and the provider's test or live
/// host unless the account names another.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint<'a> {
    /// The client every PSP call goes through.
    pub(crate) http: &'a reqwest::Client,
    /// Which of the provider's hosts to use.
    pub(crate) environment: PspEnvironment,
    /// The account's own host, which wins over both.
    base_url: Option<&'a str>,
}

impl<'a> Endpoint<'a> {
    /// The base URL: the account's own, else the provider's `test` or `live` one.
    pub(crate) fn base(&self, test: &'a str, live: &'a str) -> &'a str {
        match (self.base_url, self.environment) {
            (Some(url), _) => url,
            (None, PspEnvironment::Test) => test,
            (None, PspEnvironment::Live) => live,
        }
    }
}

/// A PSP call in flight, boxed so that an account's adapter can be chosen at run time.
pub(crate) type PspCall<'a, T> = Pin<Box<dyn Future<Output = Result<T, PspError>> + Send + 'a>>;

/// What a harmless authenticated call answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    /// The HTTP status.
    pub(crate) status: u16,
    /// Whether that answer means the credentials work.
    pub(crate) accepted: bool,
}

/// One provider's side of every operation on a gateway's PSP account, implemented once per
/// provider over its credentials ([`PspCredentials::adapter`] picks the implementation).
pub(crate) trait PspAdapter: Send + Sync {
    /// Creates the order for a payment, or finds the one an earlier attempt created.
    fn create_order<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        order: &'a OrderRequest,
    ) -> PspCall<'a, PspOrder>;

    /// The state of the payment with our `reference`; `psp_order_id` saves a look-up where the
    /// PSP needs its own id.
    fn fetch_status<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        reference: &'a str,
        psp_order_id: Option<&'a str>,
    ) -> PspCall<'a, PspStatus>;

    /// Makes one harmless authenticated call.
    fn probe<'a>(&'a self, endpoint: Endpoint<'a>) -> PspCall<'a, Probe>;

    /// Creates the refund at the PSP, or finds the one an earlier attempt created (keyed by
    /// the refund's [`refund_reference`]). The answer is the PSP's first word, never final.
    fn create_refund<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        refund: &'a RefundRequest,
    ) -> PspCall<'a, PspRefund>;

    /// Where the refund stands at the PSP; `None` when the PSP knows no such refund.
    fn fetch_refund<'a>(
        &'a self,
        endpoint: Endpoint<'a>,
        refund: &'a RefundRequest,
        psp_refund_id: Option<&'a str>,
    ) -> PspCall<'a, Option<PspRefund>>;

    /// Checks the PSP's signature over the raw bytes, then parses the webhook. `now` is only
    /// used by schemes with a timestamp window.
    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        raw_body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook, WebhookError>;
}

/// The payer, as far as the merchant told us.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Full name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Phone number (Indian mobile, digits).
    pub phone: Option<String>,
}

/// What we ask a PSP to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    /// Our payment; its [`psp_reference`] is the idempotency key at the PSP.
    pub payment_id: PaymentId,
    /// Amount to collect.
    pub amount: Paise,
    /// ISO currency code, `INR` for every provider here.
    pub currency: String,
    /// The payer.
    pub customer: Customer,
    /// Where the PSP posts its server-to-server webhook, where it takes one per order.
    pub callback_url: String,
    /// Where the payer's browser comes back to after paying.
    pub return_url: String,
    /// What is being paid for, shown to the payer.
    pub description: String,
}

/// An order that exists at the PSP (or, for PayU, a signed form ready to post).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PspOrder {
    /// The PSP's id for the order (for PayU and PhonePe, our reference).
    pub psp_order_id: String,
    /// What the hosted checkout page needs.
    pub checkout: CheckoutData,
    /// True when the order already existed and was looked up instead of created.
    pub reused: bool,
}

/// Cashfree JS SDK mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CashfreeMode {
    /// `Cashfree({mode: "sandbox"})`.
    Sandbox,
    /// `Cashfree({mode: "production"})`.
    Production,
}

impl CashfreeMode {
    /// The value the SDK expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Production => "production",
        }
    }
}

/// What the hosted checkout page needs, per provider. Holds no secret (PayU's hash is a
/// signature, Razorpay's key id is public), so it may be stored and rendered later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum CheckoutData {
    /// Razorpay Standard Checkout options.
    Razorpay {
        /// Public key id.
        key_id: String,
        /// `order_…`.
        order_id: String,
        /// Amount, for display and the options object.
        amount: Paise,
        /// Currency code.
        currency: String,
        /// Shown in the checkout.
        description: String,
        /// Our payment reference, passed in `notes` so the payment carries it.
        reference: String,
        /// Prefill for the form.
        prefill: Customer,
        /// Our return route, where Razorpay posts the payment id and signature.
        callback_url: String,
    },
    /// PayU hosted checkout: a form to auto-submit.
    Payu {
        /// Where the form posts (`…/_payment`).
        action_url: String,
        /// Every form field, hash included, in order.
        fields: Vec<(String, String)>,
    },
    /// Cashfree JS SDK v3 checkout.
    Cashfree {
        /// `payment_session_id` of the order.
        payment_session_id: String,
        /// SDK mode.
        mode: CashfreeMode,
    },
    /// PhonePe pay page.
    Phonepe {
        /// Where to send the payer.
        redirect_url: String,
    },
    /// The sandbox PSP's checkout page.
    Sandbox {
        /// Where to send the payer.
        checkout_url: String,
    },
}

/// What we ask a PSP to refund: always on the gateway that captured the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The payment refunded; its [`psp_reference`] is our order id at the PSP.
    pub payment_id: PaymentId,
    /// Our refund; its [`refund_reference`] is the PSP-facing refund id and idempotency key.
    pub refund_id: RefundId,
    /// Amount to return to the payer.
    pub amount: Paise,
    /// The PSP's order id recorded for the payment, when it has one.
    pub psp_order_id: Option<String>,
    /// The PSP's payment id recorded for the payment (Razorpay `pay_…`, PayU `mihpayid`).
    pub psp_payment_id: Option<String>,
    /// The merchant's reason, passed on where the PSP takes a note.
    pub reason: String,
    /// Where the PSP posts the refund's webhook, where it takes one per refund.
    pub callback_url: String,
}

/// A refund as a PSP answered about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PspRefund {
    /// The PSP's refund id, once it has given one.
    pub psp_refund_id: Option<String>,
    /// The amount the PSP says it refunds.
    pub amount: Paise,
    /// Where it stands (normalised as in `../shared/reference/psp-refunds.md` §0).
    pub state: RefundState,
}

/// What happened to a payment, as a PSP reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PaymentOutcome {
    /// Money was captured.
    Succeeded {
        /// The amount the PSP says it captured.
        amount: Paise,
    },
    /// The attempt failed (some PSPs allow a later attempt on the same order to succeed).
    Failed {
        /// The PSP's error code.
        code: String,
        /// The PSP's explanation.
        reason: String,
    },
    /// Nothing final yet (including "no attempt yet").
    Pending,
    /// A refund of the payment moved (the webhook's payment fields name the payment).
    Refund {
        /// Our refund, when the PSP echoes its [`refund_reference`]; `None` for a refund made
        /// elsewhere (the PSP's dashboard).
        refund_id: Option<RefundId>,
        /// The PSP's refund id.
        psp_refund_id: Option<String>,
        /// The amount refunded.
        amount: Paise,
        /// Where it stands.
        state: RefundState,
    },
    /// A genuine message that says nothing about the payment's outcome (settlements…).
    Ignored {
        /// Why it was ignored.
        why: String,
    },
}

/// A webhook whose signature checked out, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWebhook {
    /// Key to drop redeliveries with (the PSP's event id when it sends one).
    pub dedupe_key: String,
    /// Our payment, when the webhook carries our reference.
    pub payment_reference: Option<PaymentId>,
    /// The PSP's order id.
    pub psp_order_id: Option<String>,
    /// The PSP's payment (attempt) id.
    pub psp_payment_id: Option<String>,
    /// What it says happened.
    pub outcome: PaymentOutcome,
}

/// A payment's state as the PSP's status API tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PspStatus {
    /// The PSP's order id, when it has one.
    pub psp_order_id: Option<String>,
    /// The payment attempt the outcome is about.
    pub psp_payment_id: Option<String>,
    /// The outcome (`Pending` when the PSP knows no attempt).
    pub outcome: PaymentOutcome,
}

/// The answer to a credential check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialCheck {
    /// HTTP status the PSP answered.
    pub status: u16,
    /// Round-trip time.
    pub latency: Duration,
    /// Whether the answer shows the credentials were accepted.
    pub accepted: bool,
}

/// How a call to a PSP failed. Never carries credentials or signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PspError {
    /// 5xx, timeout or connection failure: mark the gateway failed for a while, route elsewhere.
    #[error("PSP unavailable: {reason}")]
    Unavailable {
        /// What went wrong, in a few words.
        reason: String,
    },
    /// 429: mark the gateway failed until `retry_after`, route elsewhere.
    #[error("PSP rate limit hit")]
    RateLimited {
        /// How long the PSP asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// 4xx or a request we refuse to send (bad credentials, invalid input): not retryable.
    #[error("PSP rejected the request: {code}: {message}")]
    Rejected {
        /// The PSP's error code, or ours for local refusals.
        code: String,
        /// The PSP's explanation.
        message: String,
    },
    /// The answer could not be understood.
    #[error("PSP answer not understood: {reason}")]
    Protocol {
        /// What was wrong with it.
        reason: String,
    },
    /// The PSP already holds an order for this reference and cannot give its checkout back
    /// (PhonePe): here is that order's status instead.
    #[error("an order for this reference already exists at the PSP")]
    OrderExists {
        /// The existing order's status.
        status: Box<PspStatus>,
    },
}

impl PspError {
    /// Whether trying again later (or elsewhere) can help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::RateLimited { .. } | Self::Protocol { .. }
        )
    }

    /// Whether the gateway should be marked temporarily failed and traffic rerouted.
    pub fn marks_gateway_failed(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::RateLimited { .. })
    }

    pub(crate) fn local(code: &str, message: impl Into<String>) -> Self {
        Self::Rejected {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> Self {
        Self::Protocol {
            reason: reason.into(),
        }
    }
}

impl From<Failure> for PspError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unavailable(reason) => Self::Unavailable { reason },
            Failure::RateLimited(retry_after) => Self::RateLimited { retry_after },
            Failure::Protocol(reason) => Self::Protocol { reason },
        }
    }
}

impl From<SecretError> for PspError {
    fn from(error: SecretError) -> Self {
        Self::local("invalid_credentials", error.to_string())
    }
}

/// Why a webhook was refused. Never echoes signatures or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// A required header or form field is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// The signature does not match the body.
    #[error("signature does not match")]
    BadSignature,
    /// The timestamp is outside the accepted window (sandbox / Standard Webhooks only).
    #[error("webhook timestamp outside the accepted window")]
    Stale,
    /// Signed correctly but not in the documented shape.
    #[error("malformed webhook: {0}")]
    Malformed(String),
}

/// Verifies a PSP webhook against its raw bytes with the gateway's credentials, then parses it.
///
/// `now` is only used by schemes with a timestamp window (the sandbox's Standard Webhooks).
pub fn verify_webhook(
    credentials: &PspCredentials,
    headers: &HeaderMap,
    raw_body: &[u8],
    now: DateTime<Utc>,
) -> Result<VerifiedWebhook, WebhookError> {
    credentials
        .adapter()
        .verify_webhook(headers, raw_body, now)
        .map(VerifiedWebhook::storable)
}

/// The client every PSP adapter calls through.
#[derive(Debug, Clone)]
pub struct PspClient {
    http: reqwest::Client,
}

impl PspClient {
    /// A client with its own HTTP connection pool and the given timeouts.
    pub fn new(config: &HttpConfig) -> Result<Self, ClientBuildError> {
        Ok(Self {
            http: build_client(config)?,
        })
    }

    /// A client over an existing HTTP client (built with [`crate::http::build_client`]).
    pub fn with_http(http: reqwest::Client) -> Self {
        Self { http }
    }

    /// Creates the PSP order for a payment, or finds the one a previous attempt created.
    pub async fn create_order(
        &self,
        account: &PspAccount,
        order: &OrderRequest,
    ) -> Result<PspOrder, PspError> {
        let psp = account.credentials.adapter();
        psp.create_order(account.endpoint(&self.http), order).await
    }

    /// Asks the PSP what happened to a payment. `psp_order_id` saves a look-up where the PSP
    /// needs its own id (Razorpay); the others find the order by our reference.
    pub async fn fetch_status(
        &self,
        account: &PspAccount,
        payment: PaymentId,
        psp_order_id: Option<&str>,
    ) -> Result<PspStatus, PspError> {
        let reference = psp_reference(payment);
        let psp = account.credentials.adapter();
        psp.fetch_status(account.endpoint(&self.http), &reference, psp_order_id)
            .await
            .map(PspStatus::storable)
    }

    /// Creates a refund at the PSP of the gateway that captured the payment, or finds the one
    /// an earlier attempt created.
    pub async fn create_refund(
        &self,
        account: &PspAccount,
        refund: &RefundRequest,
    ) -> Result<PspRefund, PspError> {
        let psp = account.credentials.adapter();
        psp.create_refund(account.endpoint(&self.http), refund)
            .await
            .map(PspRefund::storable)
    }

    /// Asks the PSP where a refund stands; `None` when it knows no such refund.
    pub async fn fetch_refund(
        &self,
        account: &PspAccount,
        refund: &RefundRequest,
        psp_refund_id: Option<&str>,
    ) -> Result<Option<PspRefund>, PspError> {
        let psp = account.credentials.adapter();
        psp.fetch_refund(account.endpoint(&self.http), refund, psp_refund_id)
            .await
            .map(|found| found.map(PspRefund::storable))
    }

    /// Makes one harmless authenticated call and reports the status and latency.
    ///
    /// Transport failures are errors; any HTTP answer, even a refusal, is a [`CredentialCheck`].
    pub async fn test_credentials(
        &self,
        account: &PspAccount,
    ) -> Result<CredentialCheck, PspError> {
        let started = Instant::now();
        let psp = account.credentials.adapter();
        let probe = psp.probe(account.endpoint(&self.http)).await?;
        Ok(CredentialCheck {
            status: probe.status,
            latency: started.elapsed(),
            accepted: probe.accepted,
        })
    }
}

/// Sends a request; answers with 2xx and 4xx are returned for the adapter to read, everything
/// else becomes the matching [`PspError`].
pub(crate) async fn exchange(request: reqwest::RequestBuilder) -> Result<Answer, PspError> {
    let answer = crate::http::send(request).await?;
    match crate::http::server_side_failure(&answer) {
        Some(failure) => Err(failure.into()),
        None => Ok(answer),
    }
}

/// Parses a JSON answer; the error names the type, not the body (which may hold PII).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    answer: &Answer,
    what: &str,
) -> Result<T, PspError> {
    serde_json::from_slice(&answer.body).map_err(|e| {
        PspError::protocol(format!(
            "{what}: {} at line {} column {}",
            json_error_kind(&e),
            e.line(),
            e.column()
        ))
    })
}

/// The kind of a JSON error, without serde's message (which may quote the offending value).
fn json_error_kind(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Eof => "truncated JSON",
    }
}

/// Hex SHA-256 of a body, for dedupe keys of webhooks that carry no event id.
pub(crate) fn body_digest(raw_body: &[u8]) -> String {
    crate::crypto::sha256_hex(&[raw_body])
}

/// A header's value as text, or [`WebhookError::Missing`].
pub(crate) fn required_header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<&'a str, WebhookError> {
    let value = headers.get(name).ok_or(WebhookError::Missing(name))?;
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| WebhookError::Malformed(format!("header {name} is not text")))
}

/// Parses a signed webhook body; the error names the problem, never the content.
pub(crate) fn parse_webhook_json<T: serde::de::DeserializeOwned>(
    raw_body: &[u8],
) -> Result<T, WebhookError> {
    serde_json::from_slice(raw_body).map_err(|e| {
        WebhookError::Malformed(format!(
            "{} at line {} column {}",
            json_error_kind(&e),
            e.line(),
            e.column()
        ))
    })
}

/// Truncates to at most `max` characters, on a character boundary.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn razorpay() -> PspCredentials {
        PspCredentials::Razorpay {
            key_id: "rzp_test_abc".into(),
            key_secret: Secret::from("very-secret-key"),
            webhook_secret: Secret::from("very-secret-hook"),
        }
    }

    #[test]
    fn accounts_seal_and_open_whole() {
        let ring = Keyring::random("k1").unwrap();
        let account = PspAccount::test(razorpay()).with_base_url("http://127.0.0.1:9");
        let sealed = account.seal(&ring).unwrap();
        let opened = PspAccount::open(&ring, &sealed).unwrap();
        assert_eq!(opened.provider(), Provider::Razorpay);
        assert_eq!(opened.base_url.as_deref(), Some("http://127.0.0.1:9"));
        let PspCredentials::Razorpay { key_secret, .. } = opened.credentials else {
            panic!("provider changed")
        };
        assert_eq!(key_secret.expose(), b"very-secret-key");
    }

    #[test]
    fn every_provider_round_trips_through_the_admin_json() {
        let ring = Keyring::random("k1").unwrap();
        for json in [
            r#"{"credentials":{"provider":"razorpay","key_id":"rzp_test_1","key_secret":"s","webhook_secret":"w"}}"#,
            r#"{"credentials":{"provider":"payu","key":"TESTKEY1","salt":"TESTSALT"},"environment":"live"}"#,
            r#"{"credentials":{"provider":"cashfree","client_id":"cf","client_secret":"s"}}"#,
            r#"{"credentials":{"provider":"phonepe","merchant_id":"PGTESTPAYUAT","salt_key":"s","salt_index":1}}"#,
            r#"{"credentials":{"provider":"sandbox","webhook_secret":"whsec_c2VjcmV0"},"base_url":"http://127.0.0.1:1/sandbox"}"#,
        ] {
            let account: PspAccount = serde_json::from_str(json).unwrap();
            let reopened = PspAccount::open(&ring, &account.seal(&ring).unwrap()).unwrap();
            assert_eq!(reopened.provider(), account.provider());
            assert_eq!(reopened.environment, account.environment);
            assert_eq!(reopened.base_url, account.base_url);
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let account = PspAccount::test(razorpay());
        let shown = format!("{account:?}");
        assert!(shown.contains("rzp_test_abc"));
        assert!(!shown.contains("very-secret"));
    }

    #[test]
    fn opening_garbage_does_not_echo_it() {
        let ring = Keyring::random("k1").unwrap();
        let sealed =
            ring.seal(br#"{"credentials":{"provider":"razorpay","key_secret":"leak-me"}}"#);
        let err = PspAccount::open(&ring, &sealed).unwrap_err();
        assert!(!err.to_string().contains("leak-me"));
    }

    #[test]
    fn error_classes() {
        assert!(PspError::Unavailable { reason: "x".into() }.marks_gateway_failed());
        assert!(PspError::RateLimited { retry_after: None }.marks_gateway_failed());
        let rejected = PspError::local("c", "m");
        assert!(!rejected.marks_gateway_failed() && !rejected.is_retryable());
    }
}
