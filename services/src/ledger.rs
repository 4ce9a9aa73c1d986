//! The handlers of every aggregate, shared by the operations.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lightspeed_domain::claims::{ClientKeyClaim, MerchantOrderClaim, MerchantRefundClaim};
use lightspeed_domain::gateway::Gateway;
use lightspeed_domain::merchant::Merchant;
use lightspeed_domain::merchant_alerts::MerchantAlerts;
use lightspeed_domain::notification::Notification;
use lightspeed_domain::ops_alert::OpsAlert;
use lightspeed_domain::payment::Payment;
use lightspeed_domain::person::{Person, PersonEmail};
use lightspeed_domain::psp_outcome::PspOutcomeRecord;
use lightspeed_domain::queue::Queue;
use lightspeed_domain::quota::{MerchantQuota, QuotaUsage};
use lightspeed_domain::routing::SuccessRate;
use lightspeed_domain::wallet::Wallet;
use lightspeed_domain::{Clock, GatewayId};
use lightspeed_eventstore::{CommandHandler, PgEventStore};

/// Where routing learns each gateway's recent success rate (the read side); gateways it does
/// not know rank as having no history.
pub trait SuccessRates: Send + Sync + std::fmt::Debug {
    /// The success rate of `gateway`, if known.
    fn success_rate(&self, gateway: GatewayId) -> Option<SuccessRate>;
}

/// The ledger's operations over the event log.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub(crate) store: PgEventStore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) merchants: CommandHandler<Merchant, PgEventStore>,
    pub(crate) gateways: CommandHandler<Gateway, PgEventStore>,
    pub(crate) payments: CommandHandler<Payment, PgEventStore>,
    pub(crate) wallets: CommandHandler<Wallet, PgEventStore>,
    pub(crate) client_keys: CommandHandler<ClientKeyClaim, PgEventStore>,
    pub(crate) orders: CommandHandler<MerchantOrderClaim, PgEventStore>,
    pub(crate) refund_claims: CommandHandler<MerchantRefundClaim, PgEventStore>,
    pub(crate) outcomes: CommandHandler<PspOutcomeRecord, PgEventStore>,
    pub(crate) queues: CommandHandler<Queue, PgEventStore>,
    pub(crate) alerts: CommandHandler<OpsAlert, PgEventStore>,
    pub(crate) notifications: CommandHandler<Notification, PgEventStore>,
    pub(crate) merchant_alerts: CommandHandler<MerchantAlerts, PgEventStore>,
    pub(crate) people: CommandHandler<Person, PgEventStore>,
    pub(crate) quotas: CommandHandler<MerchantQuota, PgEventStore>,
    pub(crate) quota_usage: CommandHandler<QuotaUsage, PgEventStore>,
    /// One initiation at a time decides on a usage stream (by the stream's slot), so this
    /// process's initiations of a capped merchant queue instead of conflicting on its version.
    pub(crate) quota_turns: Arc<[tokio::sync::Mutex<()>]>,
    /// The WhatsApp template of quota notifications.
    pub(crate) quota_template: Arc<str>,
    /// The emails of `ADMIN_EMAILS`: admins whatever the registry says.
    pub(crate) bootstrap_admins: Arc<std::collections::BTreeSet<PersonEmail>>,
    pub(crate) success_rates: Option<Arc<dyn SuccessRates>>,
    /// One refresh of a merchant's wallet and gateways at a time (by the wallet stream's slot):
    /// requests that find them old meanwhile use what it read instead of reading them too.
    pub(crate) funds_refreshes: Arc<[tokio::sync::Mutex<()>]>,
}

/// How many times an operation is decided again after another writer got there first.
pub(crate) const MAX_ATTEMPTS: usize = 8;

/// How long a wallet or gateway state the log confirmed stays good enough to accept a payment
/// on without reading it again. What could invalidate the acceptance is re-checked by the
/// append itself (the chosen gateway's version, the order id's claim); what is not (another
/// gateway switched on, the wallet's balance due) is at most this old. The merchant is read
/// with every request, and refusals are always decided on states just read.
pub(crate) const STATE_REUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// How many locks merchants' wallet-and-gateway refreshes are spread over.
const FUNDS_REFRESH_SLOTS: usize = 256;

impl Ledger {
    /// Operations over `store`, reading time from the store's clock.
    pub fn new(store: PgEventStore) -> Self {
        Self {
            clock: Arc::clone(store.clock()),
            merchants: CommandHandler::new(store.clone()),
            gateways: CommandHandler::new(store.clone()),
            payments: CommandHandler::new(store.clone()),
            wallets: CommandHandler::new(store.clone()),
            client_keys: CommandHandler::new(store.clone()),
            orders: CommandHandler::new(store.clone()),
            refund_claims: CommandHandler::new(store.clone()),
            outcomes: CommandHandler::new(store.clone()),
            queues: CommandHandler::new(store.clone()),
            alerts: CommandHandler::new(store.clone()),
            notifications: CommandHandler::new(store.clone()),
            merchant_alerts: CommandHandler::new(store.clone()),
            people: CommandHandler::new(store.clone()),
            quotas: CommandHandler::new(store.clone()),
            quota_usage: CommandHandler::new(store.clone()),
            quota_turns: (0..FUNDS_REFRESH_SLOTS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            quota_template: Arc::from(crate::quotas::DEFAULT_QUOTA_TEMPLATE),
            bootstrap_admins: Arc::default(),
            success_rates: None,
            funds_refreshes: (0..FUNDS_REFRESH_SLOTS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            store,
        }
    }

    /// Lets routing rank gateways by the success rates `rates` knows.
    pub fn with_success_rates(mut self, rates: Arc<dyn SuccessRates>) -> Self {
        self.success_rates = Some(rates);
        self
    }

    /// The event log.
    pub fn store(&self) -> &PgEventStore {
        &self.store
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The merchant handler, for single-stream merchant commands.
    pub fn merchants(&self) -> &CommandHandler<Merchant, PgEventStore> {
        &self.merchants
    }

    /// The gateway handler, for single-stream gateway commands.
    pub fn gateways(&self) -> &CommandHandler<Gateway, PgEventStore> {
        &self.gateways
    }

    /// The payment handler, for single-stream payment commands and reads.
    pub fn payments(&self) -> &CommandHandler<Payment, PgEventStore> {
        &self.payments
    }

    /// The wallet handler, for single-stream wallet commands and reads.
    pub fn wallets(&self) -> &CommandHandler<Wallet, PgEventStore> {
        &self.wallets
    }

    /// The notification handler, for recording WhatsApp attempts.
    pub fn notifications(&self) -> &CommandHandler<Notification, PgEventStore> {
        &self.notifications
    }
}
