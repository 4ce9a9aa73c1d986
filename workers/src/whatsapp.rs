//! The WhatsApp sender (`whatsapp-notifications`): queues transaction updates for merchants who
//! opted in, and sends every queued notification through the configured provider.
//!
//! Two kinds of jobs share the queue:
//!
//! - **Queueing**, on `PaymentSucceeded`, `PaymentFailed`, `PaymentRefunded` and
//!   `RefundFailed`: if the merchant opted in to `TXN_UPDATE`, a notification is queued whose id
//!   derives from the payment and the event type ([`txn_update_id`]; and the refund, for a
//!   payment's several refunds), so a redelivered event queues nothing new. A refund's message
//!   carries the refund's amount and `refunded`, `partially refunded` or `refund failed`.
//! - **Sending**, on `NotificationQueued`, `NotificationAttemptFailed` and `NotificationRequeued`:
//!   such an event owes one attempt while it is still the notification's latest event and the
//!   notification is a queued WhatsApp one (a redelivered job for a sent notification does
//!   nothing; email notifications are sent by `merchant-messages`). The job
//!   waits (a delayed `nak`, re-checked at least every `due_recheck`) until the attempt is due on
//!   the ledger's clock, sends, and records the attempt as a command on the notification's
//!   stream; the domain decides when to try again (4 attempts, exponential backoff, longer after
//!   a rate limit, `Retry-After` honoured) or that it failed, with the provider's error kept.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lightspeed_adapters::whatsapp::{TemplateMessage, WhatsAppError, WhatsAppProvider};
use lightspeed_domain::notification::{
    Channel, NotificationCommand, NotificationError, NotificationStatus, NotificationType,
    QueueNotification,
};
use lightspeed_domain::payment::PaymentEvent;
use lightspeed_domain::retry::Jitter;
use lightspeed_domain::{Decider, Notification, NotificationId, Payment, PaymentId};
use lightspeed_eventstore::{CommandHandler, PgEventStore, RecordedEvent};
use lightspeed_services::Ledger;
use uuid::Uuid;

use crate::attempts::{DeliveryAttempts, attempt_owed};
use crate::ids::{self, txn_update_id};
use crate::queue::{JOB_TIMEOUT, Job, JobHandler, JobOutcome};
use crate::support::{caused_by, domain_event, ledger_failure, recorded_event, stream_key};

/// The queue's name.
pub const QUEUE: &str = "whatsapp-notifications";
/// Jobs the queue runs at once unless configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 30;
/// The payment events merchants hear about on WhatsApp (`TXN_UPDATE`).
pub const PAYMENT_EVENTS: [&str; 4] = [
    "PaymentSucceeded",
    "PaymentFailed",
    "PaymentRefunded",
    "RefundFailed",
];
/// The notification events that owe an attempt.
pub const NOTIFICATION_EVENTS: [&str; 3] = [
    "NotificationQueued",
    "NotificationAttemptFailed",
    "NotificationRequeued",
];
/// Longest one send may take, token renewal and its one retry included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
// A send and its recording fit in one job.
const _: () = assert!(SEND_TIMEOUT.as_secs() < JOB_TIMEOUT.as_secs());

/// What the WhatsApp queue and the low-balance watcher need to know, built by the binary from
/// its environment (`WA_TEMPLATE_LOW_BALANCE`, `WA_TEMPLATE_TXN_UPDATE`, `WA_LANGUAGE`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppSettings {
    /// The template of `LOW_BALANCE` alerts (Meta: its name; Gupshup: its id).
    pub low_balance_template: String,
    /// The template of `TXN_UPDATE` messages.
    pub txn_update_template: String,
    /// The templates' language code (Meta only), e.g. `en`.
    pub language: String,
    /// Jobs the queue runs at once (default [`DEFAULT_CONCURRENCY`]).
    pub concurrency: usize,
}

impl WhatsAppSettings {
    /// Settings with these templates, language `en` and the default concurrency.
    pub fn new(
        low_balance_template: impl Into<String>,
        txn_update_template: impl Into<String>,
    ) -> Self {
        Self {
            low_balance_template: low_balance_template.into(),
            txn_update_template: txn_update_template.into(),
            language: "en".to_owned(),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// A configured provider with its settings.
#[derive(Clone)]
pub struct WhatsApp {
    /// Sends template messages (Meta Cloud API or Gupshup).
    pub provider: Arc<dyn WhatsAppProvider>,
    /// Templates, language, concurrency.
    pub settings: WhatsAppSettings,
}

impl std::fmt::Debug for WhatsApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsApp")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Queues transaction updates and sends notifications.
#[derive(Clone)]
pub(crate) struct WhatsAppSender {
    pub(crate) ledger: Ledger,
    pub(crate) whatsapp: WhatsApp,
    pub(crate) due_recheck: Duration,
}

impl JobHandler for WhatsAppSender {
    async fn handle(&self, job: Job) -> JobOutcome {
        let event = match recorded_event(&job) {
            Ok(event) => event,
            Err(outcome) => return outcome,
        };
        let handled = match event.stream_id.category() {
            Payment::CATEGORY => self.queue_txn_update(&job, &event).await,
            Notification::CATEGORY => attempt_owed(self, &job, &event).await,
            _ => Ok(JobOutcome::Done),
        };
        handled.unwrap_or_else(|outcome| outcome)
    }
}

impl WhatsAppSender {
    async fn queue_txn_update(
        &self,
        job: &Job,
        event: &RecordedEvent,
    ) -> Result<JobOutcome, JobOutcome> {
        if !PAYMENT_EVENTS.contains(&event.event_type.as_str()) {
            return Ok(JobOutcome::Done);
        }
        let payment_event = domain_event::<PaymentEvent>(event)?;
        let payment_id: PaymentId = stream_key(event)?;
        let payment = self
            .ledger
            .payment(payment_id)
            .await
            .map_err(|e| ledger_failure(job, "load the payment", &e))?
            .ok_or_else(|| JobOutcome::GiveUp(format!("unknown payment {payment_id}")))?;
        let Some(update) = TxnUpdate::of(&payment_event, payment.amount()) else {
            return Ok(JobOutcome::Done);
        };
        let merchant = self
            .ledger
            .merchant(payment.merchant_id())
            .await
            .map_err(|e| ledger_failure(job, "load the merchant", &e))?;
        let Some(recipient) = merchant.whatsapp_recipient_for(NotificationType::TxnUpdate) else {
            return Ok(JobOutcome::Done);
        };
        let notification_id = match &update.refund {
            Some(refund) => txn_update_id(payment_id, &format!("{}:{refund}", event.event_type)),
            None => txn_update_id(payment_id, &event.event_type),
        };
        let queue = QueueNotification {
            notification_id,
            merchant_id: merchant.id(),
            kind: NotificationType::TxnUpdate,
            template: self.whatsapp.settings.txn_update_template.clone(),
            recipient: recipient.to_owned(),
            params: vec![
                payment.merchant_order_id().to_owned(),
                format!("₹{}", update.amount.unwrap_or(payment.amount())),
                update.status.to_owned(),
            ],
            at: self.ledger.now(),
        };
        // The notification's stream is appended only if it does not exist yet, so a
        // redelivered event finds it queued and stores nothing.
        self.ledger
            .queue_notification(queue, &caused_by(event, QUEUE, None))
            .await
            .map_err(|e| ledger_failure(job, "queue the transaction update", &e))?;
        Ok(JobOutcome::Done)
    }
}

/// What a payment event's `TXN_UPDATE` says: its status word, the amount when it is a refund's
/// (else the payment's), and the refund it is about.
struct TxnUpdate {
    status: &'static str,
    amount: Option<lightspeed_domain::Paise>,
    refund: Option<String>,
}

impl TxnUpdate {
    /// The update a payment event of a payment of `amount` sends; `None` for events merchants
    /// do not hear about.
    fn of(event: &PaymentEvent, amount: lightspeed_domain::Paise) -> Option<Self> {
        let plain = |status| TxnUpdate {
            status,
            amount: None,
            refund: None,
        };
        match event {
            PaymentEvent::PaymentSucceeded { .. } => Some(plain("succeeded")),
            PaymentEvent::PaymentFailed { .. } => Some(plain("failed")),
            PaymentEvent::PaymentRefunded {
                refund_id,
                amount: refunded,
                refunded_total,
                ..
            } => Some(TxnUpdate {
                status: if *refunded_total >= amount {
                    "refunded"
                } else {
                    "partially refunded"
                },
                amount: Some(*refunded),
                refund: Some(refund_id.clone()),
            }),
            PaymentEvent::RefundFailed {
                refund_id,
                amount: failed,
                ..
            } => Some(TxnUpdate {
                status: "refund failed",
                amount: Some(*failed),
                refund: Some(refund_id.to_string()),
            }),
            _ => None,
        }
    }
}

impl DeliveryAttempts for WhatsAppSender {
    type Message = Notification;
    type Id = NotificationId;
    type Recorded = ();

    const QUEUE: &'static str = QUEUE;
    const OWING_EVENTS: &'static [&'static str] = &NOTIFICATION_EVENTS;
    const NOUN: &'static str = "notification";

    fn records(&self) -> &CommandHandler<Notification, PgEventStore> {
        self.ledger.notifications()
    }

    fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn due_recheck(&self) -> Duration {
        self.due_recheck
    }

    /// Email notifications are the `merchant-messages` queue's to send.
    fn is_pending(notification: &Notification) -> bool {
        notification.channel() == Channel::Whatsapp
            && notification.status() == NotificationStatus::Queued
    }

    fn next_attempt_at(notification: &Notification) -> Option<DateTime<Utc>> {
        notification.next_attempt_at()
    }

    fn record_command_id(notification_id: NotificationId, version: u64) -> Uuid {
        ids::record_notification_attempt_command(notification_id, version)
    }

    fn is_already_recorded(refusal: &NotificationError) -> bool {
        refusal.is_already_recorded()
    }

    /// Sends the template message through the provider, for at most [`SEND_TIMEOUT`].
    async fn attempt(
        &self,
        _job: &Job,
        notification_id: NotificationId,
        notification: &Notification,
        _now: DateTime<Utc>,
    ) -> Result<(NotificationCommand, ()), JobOutcome> {
        let message = TemplateMessage {
            to: notification.recipient().to_owned(),
            template: notification.template().to_owned(),
            language: self.whatsapp.settings.language.clone(),
            body_params: notification.params().to_vec(),
            button_url_param: None,
        };
        let sent =
            tokio::time::timeout(SEND_TIMEOUT, self.whatsapp.provider.send_template(&message))
                .await
                .unwrap_or_else(|_| {
                    Err(WhatsAppError::Unavailable {
                        reason: "send timed out".to_owned(),
                    })
                });
        let record = attempt_record(sent, self.ledger.now());
        if let NotificationCommand::RecordAttemptFailed { error_code, .. } = &record {
            tracing::warn!(%notification_id, attempt = notification.attempts() + 1, %error_code, "WhatsApp send failed");
        }
        Ok((record, ()))
    }
}

/// The command recording a send's result. Jitter is drawn here so the domain stays
/// deterministic.
fn attempt_record(sent: Result<String, WhatsAppError>, at: DateTime<Utc>) -> NotificationCommand {
    let error = match sent {
        Ok(provider_message_id) => {
            return NotificationCommand::RecordSent {
                provider_message_id,
                at,
            };
        }
        Err(error) => error,
    };
    let message = error.to_string();
    let (error_code, retryable, rate_limited, retry_after) = match error {
        WhatsAppError::RateLimited { retry_after } => {
            ("rate_limited".to_owned(), true, true, retry_after)
        }
        WhatsAppError::Unavailable { .. } => ("unavailable".to_owned(), true, false, None),
        // A Meta token cannot be renewed by us and Gupshup's was renewed and retried already;
        // later attempts still help when ops replace the token meanwhile.
        WhatsAppError::TokenExpired => ("token_expired".to_owned(), true, false, None),
        WhatsAppError::Rejected { code, .. } => (code, false, false, None),
        // The provider may have accepted a message whose answer we could not read: trying
        // again could send it twice, so it is failed for ops to look at and resend.
        WhatsAppError::Protocol { .. } => ("protocol".to_owned(), false, false, None),
    };
    NotificationCommand::RecordAttemptFailed {
        error_code,
        error_message: message,
        retryable,
        rate_limited,
        retry_after_secs: retry_after.map(|wait| wait.as_secs()),
        jitter: Jitter::from_bps(rand::random_range(-Jitter::MAX_BPS..=Jitter::MAX_BPS)),
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightspeed_domain::Paise;
    use lightspeed_domain::notification::NotificationEvent;
    use lightspeed_domain::payment::PaymentEvent;

    #[test]
    fn event_type_names_exist_in_the_domain() {
        for ours in PAYMENT_EVENTS {
            assert!(PaymentEvent::EVENT_TYPES.contains(&ours), "{ours}");
        }
        for ours in NOTIFICATION_EVENTS {
            assert!(NotificationEvent::EVENT_TYPES.contains(&ours), "{ours}");
        }
    }

    #[test]
    fn a_refund_update_carries_its_amount_and_whether_it_completes_the_refund() {
        let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("instant");
        let refunded = |amount: i64, total: i64| PaymentEvent::PaymentRefunded {
            refund_id: "r1".into(),
            amount: Paise(amount),
            refunded_total: Paise(total),
            commission_reversed: Paise::ZERO,
            psp_refund_id: None,
            at,
        };
        let partial = TxnUpdate::of(&refunded(100, 100), Paise(500)).expect("update");
        assert_eq!(partial.status, "partially refunded");
        assert_eq!(partial.amount, Some(Paise(100)));
        let full = TxnUpdate::of(&refunded(400, 500), Paise(500)).expect("update");
        assert_eq!(full.status, "refunded");
        assert_eq!(full.refund.as_deref(), Some("r1"));
    }

    #[test]
    fn provider_errors_become_attempt_records() {
        let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("instant");
        let limited = attempt_record(
            Err(WhatsAppError::RateLimited {
                retry_after: Some(Duration::from_secs(600)),
            }),
            at,
        );
        assert!(matches!(
            limited,
            NotificationCommand::RecordAttemptFailed {
                rate_limited: true,
                retry_after_secs: Some(600),
                ..
            }
        ));
        let rejected = attempt_record(
            Err(WhatsAppError::Rejected {
                code: "132001".into(),
                message: "Template name does not exist".into(),
            }),
            at,
        );
        assert!(matches!(
            rejected,
            NotificationCommand::RecordAttemptFailed { retryable: false, ref error_code, .. } if error_code == "132001"
        ));
        assert!(matches!(
            attempt_record(Ok("wamid.1".into()), at),
            NotificationCommand::RecordSent { .. }
        ));
    }
}
