//! LightSpeed's process managers: they react to the event log (and to a few jobs that are not
//! events), call PSPs and merchant endpoints, and record what happened as commands on the
//! ledger.
//!
//! | queue | consumes | does |
//! |---|---|---|
//! | `transaction-processing` | `payment.PaymentInitiated`, `payment.PaymentRerouted` | creates the PSP order, or reroutes after a gateway failure ([`transactions`]) |
//! | `webhook-processing` | `psp_outcome.PspOutcomeReported` | settles the outcome: success with one commission, or failure ([`outcomes`]) |
//! | `merchant-webhooks` | `payment.{PaymentInitiated,PaymentSucceeded,PaymentFailed,PaymentRefunded,RefundFailed}`, `webhook_delivery.{WebhookDeliveryQueued,WebhookRetryScheduled,WebhookDeliveryRequeued}` | queues and delivers signed merchant webhooks ([`merchant_webhooks`]) |
//! | `settlement-processing` | `<prefix>_jobs.{status_check,refund_check}` on the jobs stream | asks the PSP for a payment's or a refund's status and records the answer ([`status`], [`refunds`]); reconciliation queues these ([`reconciliation`]) |
//! | `refund-processing` | `payment.RefundRequested` | creates the refund at the PSP of the gateway that captured the payment, idempotently, and records its answer ([`refunds`]) |
//! | `payouts` | `wallet.PayoutRequested` | creates the RazorpayX payout, idempotently ([`payouts`]); the daily run requests them ([`payout_schedule`]) |
//! | `whatsapp-notifications` | `payment.{PaymentSucceeded,PaymentFailed,PaymentRefunded,RefundFailed}`, `notification.{NotificationQueued,NotificationAttemptFailed,NotificationRequeued}` | queues `TXN_UPDATE` messages for merchants who opted in and sends every WhatsApp notification through the provider ([`whatsapp`]) |
//! | `merchant-messages` | `merchant.{MerchantSuspended,MerchantReactivated}`, `wallet.{CommissionPaidOut,PayoutReversed}`, `merchant_invoices.InvoiceIssued`, `notification.{NotificationQueued,NotificationAttemptFailed,NotificationRequeued}` | queues account-status, payout and invoice messages on the channels merchants opted in to, and sends every email notification through the SMTP mailer ([`merchant_messages`], [`merchant_email`]) |
//!
//! Besides the queues, [`low_balance::run`] sweeps for merchants owed a `LOW_BALANCE` alert,
//! and [`invoice_schedule::run`] issues and mails the monthly commission invoices.
//!
//! Log subjects are `<prefix>.<category>.<EventType>` on the log's JetStream stream (the relay
//! publishes them); each subject is one durable consumer named `<queue>--<subject>` (see
//! [`queue::durable_name`]), shared by every replica. [`run`] runs one queue, [`run_all`] all
//! of them; both stop when the `shutdown` future completes, after the jobs in flight.

mod attempts;
pub mod control;
mod endpoint_health;
pub mod failed;
mod ids;
pub mod invoice_schedule;
pub mod jobs;
pub mod low_balance;
pub mod merchant_email;
pub mod merchant_messages;
pub mod merchant_webhooks;
pub mod outcomes;
pub mod payout_schedule;
pub mod payouts;
pub mod queue;
pub mod reconciliation;
pub mod refunds;
pub mod status;
mod support;
pub mod transactions;
pub mod whatsapp;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use lightspeed_adapters::mailer::Mailer;
use lightspeed_adapters::psp::PspClient;
use lightspeed_adapters::secrets::Keyring;
use lightspeed_adapters::webhook_target::TargetPolicy;
use lightspeed_adapters::whatsapp::WhatsAppProvider;
use lightspeed_eventstore::nats::LogStreamConfig;
use lightspeed_eventstore::{CommandHandler, PgEventStore};
use lightspeed_services::Ledger;
use tokio::sync::watch;

pub use ids::{delivery_id_for, txn_update_id};
pub use jobs::{
    JobStreamConfig, RefundCheck, StatusCheck, publish_refund_check, publish_status_check,
    publish_status_check_as,
};
pub use merchant_messages::MessageTemplates;
pub use merchant_webhooks::resend_delivery;
pub use payout_schedule::PayoutSchedule;
pub use payouts::PayoutSettings;
pub use queue::{DEFAULT_CONCURRENCY, QueueDepth};
pub use reconciliation::{Reconciler, ReconciliationSettings, Sweep};
pub use refunds::{RefundDesk, RefundHandled};
pub use status::{StatusChecked, StatusChecker};
pub use whatsapp::{WhatsApp, WhatsAppSettings};

/// How often, at least, a job waiting for its due time looks again (so a moved clock or a
/// changed schedule is noticed): one hour.
pub const DEFAULT_DUE_RECHECK: Duration = Duration::from_secs(3600);

/// The shortest due re-check used, so a waiting job never spins.
pub const MIN_DUE_RECHECK: Duration = Duration::from_millis(10);

/// The queues, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueName {
    /// Creates PSP orders (`transaction-processing`).
    TransactionProcessing,
    /// Settles PSP outcomes (`webhook-processing`).
    WebhookProcessing,
    /// Delivers merchant webhooks (`merchant-webhooks`).
    MerchantWebhooks,
    /// Checks PSP statuses (`settlement-processing`).
    SettlementProcessing,
    /// Makes commission payouts at RazorpayX (`payouts`).
    Payouts,
    /// Queues and sends WhatsApp notifications (`whatsapp-notifications`).
    WhatsappNotifications,
    /// Creates refunds at PSPs (`refund-processing`).
    RefundProcessing,
    /// Queues merchant messages and sends email notifications (`merchant-messages`).
    MerchantMessages,
}

impl QueueName {
    /// Every queue, in a stable order.
    pub const ALL: [QueueName; 8] = [
        QueueName::TransactionProcessing,
        QueueName::WebhookProcessing,
        QueueName::MerchantWebhooks,
        QueueName::SettlementProcessing,
        QueueName::Payouts,
        QueueName::WhatsappNotifications,
        QueueName::RefundProcessing,
        QueueName::MerchantMessages,
    ];

    /// The queue's name, as used on the command line, in consumer names and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::TransactionProcessing => transactions::QUEUE,
            QueueName::WebhookProcessing => outcomes::QUEUE,
            QueueName::MerchantWebhooks => merchant_webhooks::QUEUE,
            QueueName::SettlementProcessing => status::QUEUE,
            QueueName::Payouts => payouts::QUEUE,
            QueueName::WhatsappNotifications => whatsapp::QUEUE,
            QueueName::RefundProcessing => refunds::QUEUE,
            QueueName::MerchantMessages => merchant_messages::QUEUE,
        }
    }

    /// What the queue consumes, given the log stream and how many jobs run at once.
    pub fn spec(self, log_stream: &LogStreamConfig, concurrency: usize) -> queue::QueueSpec {
        let on_log = |subjects: Vec<(&str, &str)>| {
            subjects
                .into_iter()
                .map(|(category, event_type)| log_stream.event_type_subject(category, event_type))
                .collect()
        };
        let (stream, filters) = match self {
            QueueName::TransactionProcessing => (
                log_stream.stream_name.clone(),
                on_log(
                    transactions::EVENT_TYPES
                        .iter()
                        .map(|event_type| ("payment", *event_type))
                        .collect(),
                ),
            ),
            QueueName::WebhookProcessing => (
                log_stream.stream_name.clone(),
                on_log(vec![("psp_outcome", outcomes::EVENT_TYPE)]),
            ),
            QueueName::MerchantWebhooks => (
                log_stream.stream_name.clone(),
                on_log(
                    merchant_webhooks::PAYMENT_EVENTS
                        .iter()
                        .map(|(event_type, _)| ("payment", *event_type))
                        .chain(
                            merchant_webhooks::DELIVERY_EVENTS
                                .iter()
                                .map(|event_type| ("webhook_delivery", *event_type)),
                        )
                        .collect(),
                ),
            ),
            QueueName::SettlementProcessing => {
                let jobs = JobStreamConfig::for_log(log_stream);
                (
                    jobs.stream_name.clone(),
                    vec![jobs.status_check_subject(), jobs.refund_check_subject()],
                )
            }
            QueueName::Payouts => (
                log_stream.stream_name.clone(),
                on_log(vec![("wallet", payouts::EVENT_TYPE)]),
            ),
            QueueName::WhatsappNotifications => (
                log_stream.stream_name.clone(),
                on_log(
                    whatsapp::PAYMENT_EVENTS
                        .iter()
                        .map(|event_type| ("payment", *event_type))
                        .chain(
                            whatsapp::NOTIFICATION_EVENTS
                                .iter()
                                .map(|event_type| ("notification", *event_type)),
                        )
                        .collect(),
                ),
            ),
            QueueName::RefundProcessing => (
                log_stream.stream_name.clone(),
                on_log(vec![("payment", refunds::EVENT_TYPE)]),
            ),
            QueueName::MerchantMessages => (
                log_stream.stream_name.clone(),
                on_log(merchant_messages::subjects()),
            ),
        };
        queue::QueueSpec {
            name: self.as_str().to_owned(),
            stream,
            filters,
            failed: failed::FailedJobStream::for_log(log_stream),
            concurrency,
        }
    }
}

impl std::fmt::Display for QueueName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for QueueName {
    type Err = UnknownQueue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QueueName::ALL
            .into_iter()
            .find(|queue| queue.as_str() == s)
            .ok_or_else(|| UnknownQueue(s.chars().take(64).collect()))
    }
}

/// A queue name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown queue {0:?}; expected transaction-processing, webhook-processing, merchant-webhooks, settlement-processing, payouts, whatsapp-notifications, refund-processing or merchant-messages"
)]
pub struct UnknownQueue(pub String);

/// What the workers need from the rest of the process.
#[derive(Clone)]
pub struct Deps {
    /// The ledger's operations (and its clock).
    pub ledger: Ledger,
    /// Opens gateway credentials and merchant webhook secrets, only in the call that uses them.
    pub keyring: Arc<Keyring>,
    /// Calls PSPs.
    pub psp_client: PspClient,
    /// Calls merchant endpoints (built with `lightspeed_adapters::http::build_client`: no
    /// redirects).
    pub http_client: reqwest::Client,
    /// JetStream, where the log is relayed and jobs are queued.
    pub jetstream: jetstream::Context,
    /// The log's stream and subject prefix.
    pub log_stream: LogStreamConfig,
    /// Our public base URL, e.g. `https://pay.example.com` (PSP callbacks and return pages).
    pub public_url: String,
    /// Jobs each queue runs at once (1 to [`queue::MAX_CONCURRENCY`]).
    pub concurrency: usize,
    /// How often, at least, a job waiting for its due time looks again. Every look is a delivery
    /// of the message: [`queue::MAX_DELIVER`] leaves [`queue::DUE_WAIT_LOOKS`] of them for the
    /// longest wait (12 h for a webhook retry) at the default, so a shorter re-check is for a
    /// manual clock that moves; at least [`MIN_DUE_RECHECK`] is used.
    pub due_recheck: Duration,
    /// RazorpayX settings; without them the `payouts` queue consumes nothing (requested payouts
    /// wait in the log's stream for a worker that has them).
    pub payouts: Option<PayoutSettings>,
    /// The WhatsApp provider and templates; without them the `whatsapp-notifications` queue
    /// does not run (see [`Deps::with_whatsapp`]).
    pub whatsapp: Option<WhatsApp>,
    /// The WhatsApp templates of account-status, payout and invoice messages.
    pub message_templates: MessageTemplates,
    /// The SMTP mailer of merchant email; without it, email notifications fail their attempts
    /// as `mail_not_configured` (ops may resend them once mail is configured).
    pub mailer: Option<Mailer>,
    /// Which merchant endpoint addresses webhooks may reach (public `https` only by default).
    pub webhook_targets: TargetPolicy,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("log_stream", &self.log_stream)
            .field("public_url", &self.public_url)
            .field("concurrency", &self.concurrency)
            .field("due_recheck", &self.due_recheck)
            .field("payouts", &self.payouts)
            .field("whatsapp", &self.whatsapp)
            .field("message_templates", &self.message_templates)
            .field("mailer", &self.mailer)
            .field("webhook_targets", &self.webhook_targets)
            .finish_non_exhaustive()
    }
}

impl Deps {
    /// Dependencies with the default concurrency ([`DEFAULT_CONCURRENCY`]) and due re-check
    /// ([`DEFAULT_DUE_RECHECK`]).
    pub fn new(
        ledger: Ledger,
        keyring: Arc<Keyring>,
        psp_client: PspClient,
        http_client: reqwest::Client,
        jetstream: jetstream::Context,
        log_stream: LogStreamConfig,
        public_url: impl Into<String>,
    ) -> Self {
        Self {
            ledger,
            keyring,
            psp_client,
            http_client,
            jetstream,
            log_stream,
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            concurrency: DEFAULT_CONCURRENCY,
            due_recheck: DEFAULT_DUE_RECHECK,
            payouts: None,
            whatsapp: None,
            message_templates: MessageTemplates::default(),
            mailer: None,
            webhook_targets: TargetPolicy::default(),
        }
    }

    /// These dependencies, sending WhatsApp notifications through `provider` with `settings`.
    pub fn with_whatsapp(
        mut self,
        provider: Arc<dyn WhatsAppProvider>,
        settings: WhatsAppSettings,
    ) -> Self {
        self.whatsapp = Some(WhatsApp { provider, settings });
        self
    }

    /// A refund desk over these dependencies (what refund checks and the refund queue call).
    pub fn refund_desk(&self) -> RefundDesk {
        RefundDesk::new(
            self.ledger.clone(),
            Arc::clone(&self.keyring),
            self.psp_client.clone(),
            &self.public_url,
        )
    }

    /// A status checker over these dependencies (what reconciliation calls).
    pub fn status_checker(&self) -> StatusChecker {
        StatusChecker::new(
            self.ledger.clone(),
            Arc::clone(&self.keyring),
            self.psp_client.clone(),
        )
    }
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A queue could not start.
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
    /// The log's stream could not be created.
    #[error("log stream: {0}")]
    LogStream(String),
    /// The jobs stream could not be created.
    #[error(transparent)]
    Jobs(#[from] jobs::JobError),
    /// The endpoint-health bucket could not be opened.
    #[error("{0}")]
    EndpointHealth(String),
    /// `whatsapp-notifications` was asked for without a WhatsApp provider.
    #[error("the whatsapp-notifications queue needs a WhatsApp provider (WA_API_URL, WA_API_KEY)")]
    WhatsAppNotConfigured,
}

/// Runs one queue until `shutdown` completes, then lets the jobs in flight finish.
pub async fn run(
    queue: QueueName,
    deps: Deps,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WorkerError> {
    let (stop, stopped) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
        // The sender stays alive while the queue drains; dropping it would also mean "stop".
        std::future::pending::<Result<(), WorkerError>>().await
    };
    tokio::select! {
        result = run_queue(queue, &deps, stopped) => result,
        never = signal => never,
    }
}

/// Runs every queue until `shutdown` completes (the all-in-one mode); stops all of them if one
/// fails to start. Without a WhatsApp provider, `whatsapp-notifications` is left out.
pub async fn run_all(
    deps: Deps,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WorkerError> {
    let (stop, stopped) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
        std::future::pending::<Result<(), WorkerError>>().await
    };
    if deps.whatsapp.is_none() {
        tracing::info!("no WhatsApp provider configured; whatsapp-notifications does not run");
    }
    let all = futures::future::try_join_all(
        QueueName::ALL
            .into_iter()
            .filter(|queue| *queue != QueueName::WhatsappNotifications || deps.whatsapp.is_some())
            .map(|queue| run_queue(queue, &deps, stopped.clone())),
    );
    tokio::select! {
        result = all => result.map(|_| ()),
        never = signal => never,
    }
}

/// The JetStream key-value bucket where the health of merchant webhook endpoints is kept:
/// `<LOG STREAM>_webhook_endpoints`.
pub fn endpoint_health_bucket(log_stream: &LogStreamConfig) -> String {
    endpoint_health::EndpointHealthBook::bucket_name(log_stream)
}

async fn run_queue(
    queue: QueueName,
    deps: &Deps,
    stopped: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let spec = queue.spec(&deps.log_stream, deps.concurrency_of(queue));
    let js = &deps.jetstream;
    let gate = Arc::new(control::LogPauseGate::new(deps.ledger.clone(), queue));
    // A worker may start before the relay first leads; both create the log stream the same way.
    if queue != QueueName::SettlementProcessing {
        deps.log_stream
            .ensure_stream(js)
            .await
            .map_err(|e| WorkerError::LogStream(e.to_string()))?;
    }
    match queue {
        QueueName::TransactionProcessing => {
            let handler = deps.transaction_processor();
            queue::run(js, &spec, Arc::new(handler), gate, stopped).await?;
        }
        QueueName::WebhookProcessing => {
            let handler = outcomes::OutcomeProcessor {
                ledger: deps.ledger.clone(),
            };
            queue::run(js, &spec, Arc::new(handler), gate, stopped).await?;
        }
        QueueName::MerchantWebhooks => {
            let handler = deps.merchant_webhooks().await?;
            queue::run(js, &spec, Arc::new(handler), gate, stopped).await?;
        }
        QueueName::SettlementProcessing => {
            JobStreamConfig::for_log(&deps.log_stream)
                .ensure_stream(js)
                .await?;
            let handler = refunds::SettlementJobs {
                status: deps.status_checker(),
                refunds: deps.refund_desk(),
            };
            queue::run(js, &spec, Arc::new(handler), gate, stopped).await?;
        }
        QueueName::Payouts => match deps.payout_processor() {
            Some(handler) => queue::run(js, &spec, Arc::new(handler), gate, stopped).await?,
            None => {
                tracing::info!(queue = %queue, "no RazorpayX settings; the payouts queue is idle");
                let mut stopped = stopped;
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        },
        QueueName::WhatsappNotifications => {
            let handler = deps.whatsapp_sender()?;
            queue::run(js, &spec, Arc::new(handler), gate, stopped).await?;
        }
        QueueName::RefundProcessing => {
            let handler = refunds::RefundProcessor {
                desk: deps.refund_desk(),
            };
            queue::run(js, &spec, Arc::new(handler), gate, stopped).await?;
        }
        QueueName::MerchantMessages => {
            let handler = deps.merchant_messages();
            queue::run(js, &spec, Arc::new(handler), gate, stopped).await?;
        }
    }
    Ok(())
}

/// What each queue runs with, built from the dependencies.
impl Deps {
    /// Jobs `queue` runs at once: the WhatsApp settings' own for `whatsapp-notifications`.
    fn concurrency_of(&self, queue: QueueName) -> usize {
        match (queue, &self.whatsapp) {
            (QueueName::WhatsappNotifications, Some(whatsapp)) => whatsapp.settings.concurrency,
            _ => self.concurrency,
        }
    }

    /// The due re-check the queues use: never below [`MIN_DUE_RECHECK`].
    fn bounded_due_recheck(&self) -> Duration {
        self.due_recheck.max(MIN_DUE_RECHECK)
    }

    /// The `transaction-processing` handler.
    fn transaction_processor(&self) -> transactions::TransactionProcessor {
        transactions::TransactionProcessor {
            ledger: self.ledger.clone(),
            keyring: Arc::clone(&self.keyring),
            psp: self.psp_client.clone(),
            public_url: self.public_url.clone(),
            due_recheck: self.bounded_due_recheck(),
        }
    }

    /// The `merchant-webhooks` handler, with the endpoint-health bucket opened.
    async fn merchant_webhooks(&self) -> Result<merchant_webhooks::MerchantWebhooks, WorkerError> {
        let health = endpoint_health::EndpointHealthBook::open(&self.jetstream, &self.log_stream)
            .await
            .map_err(|e| WorkerError::EndpointHealth(e.to_string()))?;
        Ok(merchant_webhooks::MerchantWebhooks {
            ledger: self.ledger.clone(),
            deliveries: CommandHandler::<_, PgEventStore>::new(self.ledger.store().clone()),
            keyring: Arc::clone(&self.keyring),
            targets: self.webhook_targets,
            health,
            due_recheck: self.bounded_due_recheck(),
        })
    }

    /// The `payouts` handler; `None` without RazorpayX settings.
    fn payout_processor(&self) -> Option<payouts::PayoutProcessor> {
        let settings = self.payouts.clone()?;
        Some(payouts::PayoutProcessor {
            ledger: self.ledger.clone(),
            client: settings.client(self.http_client.clone()),
            settings,
        })
    }

    /// The `merchant-messages` handler.
    fn merchant_messages(&self) -> merchant_messages::MerchantMessages {
        merchant_messages::MerchantMessages {
            ledger: self.ledger.clone(),
            templates: self.message_templates.clone(),
            email: merchant_email::MerchantEmail {
                ledger: self.ledger.clone(),
                mailer: self.mailer.clone(),
                due_recheck: self.bounded_due_recheck(),
            },
        }
    }

    /// The `whatsapp-notifications` handler; an error without a WhatsApp provider.
    fn whatsapp_sender(&self) -> Result<whatsapp::WhatsAppSender, WorkerError> {
        let whatsapp = self
            .whatsapp
            .clone()
            .ok_or(WorkerError::WhatsAppNotConfigured)?;
        Ok(whatsapp::WhatsAppSender {
            ledger: self.ledger.clone(),
            whatsapp,
            due_recheck: self.bounded_due_recheck(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_round_trip() {
        for queue in QueueName::ALL {
            assert_eq!(queue.as_str().parse::<QueueName>(), Ok(queue));
        }
        assert!("payments".parse::<QueueName>().is_err());
    }

    #[test]
    fn every_queue_consumes_named_subjects() {
        let log = LogStreamConfig::default();
        let spec = QueueName::TransactionProcessing.spec(&log, 25);
        assert_eq!(
            spec.filters,
            [
                "ledger.payment.PaymentInitiated",
                "ledger.payment.PaymentRerouted"
            ]
        );
        assert_eq!(spec.stream, "LEDGER");
        assert_eq!(
            QueueName::MerchantWebhooks.spec(&log, 25).filters.len(),
            merchant_webhooks::PAYMENT_EVENTS.len() + merchant_webhooks::DELIVERY_EVENTS.len()
        );
        let status = QueueName::SettlementProcessing.spec(&log, 25);
        assert_eq!(status.stream, "LEDGER_JOBS");
        assert_eq!(
            status.filters,
            ["ledger_jobs.status_check", "ledger_jobs.refund_check"]
        );
        assert_eq!(
            status.durable_names(),
            [
                "settlement-processing--ledger_jobs_status_check",
                "settlement-processing--ledger_jobs_refund_check"
            ]
        );
        let refunds = QueueName::RefundProcessing.spec(&log, 25);
        assert_eq!(refunds.filters, ["ledger.payment.RefundRequested"]);
        let whatsapp = QueueName::WhatsappNotifications.spec(&log, 30);
        assert_eq!(whatsapp.stream, "LEDGER");
        assert_eq!(
            whatsapp.filters,
            [
                "ledger.payment.PaymentSucceeded",
                "ledger.payment.PaymentFailed",
                "ledger.payment.PaymentRefunded",
                "ledger.payment.RefundFailed",
                "ledger.notification.NotificationQueued",
                "ledger.notification.NotificationAttemptFailed",
                "ledger.notification.NotificationRequeued"
            ]
        );
        let messages = QueueName::MerchantMessages.spec(&log, 25);
        assert_eq!(
            messages.filters,
            [
                "ledger.merchant.MerchantSuspended",
                "ledger.merchant.MerchantReactivated",
                "ledger.wallet.CommissionPaidOut",
                "ledger.wallet.PayoutReversed",
                "ledger.merchant_invoices.InvoiceIssued",
                "ledger.notification.NotificationQueued",
                "ledger.notification.NotificationAttemptFailed",
                "ledger.notification.NotificationRequeued"
            ]
        );
    }
}
