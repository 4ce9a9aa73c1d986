//! The merchant-messages queue (`merchant-messages`): tells merchants, on the channels they
//! opted in to, about what happened to their account, payouts and invoices, and sends every
//! email notification.
//!
//! Two kinds of jobs share the queue:
//!
//! - **Queueing**, on a business event: `MerchantSuspended` and `MerchantReactivated`
//!   (`ACCOUNT_STATUS`), `CommissionPaidOut` and `PayoutReversed` (`PAYOUT_UPDATE`: payout sent,
//!   payout failed) and `InvoiceIssued` (`INVOICE`, WhatsApp only: the PDF itself is mailed to
//!   the invoice address). For each channel the merchant opted in to for that type, one
//!   notification is queued whose id derives from the event and the channel
//!   ([`merchant_message_id`]), so a redelivered event, a second replica or a restart queues
//!   nothing new. WhatsApp notifications are sent by `whatsapp-notifications`.
//! - **Sending**, on the events of an email notification that owe an attempt
//!   ([`merchant_email`](crate::merchant_email)): the same attempts, backoff and give-up as
//!   WhatsApp's, through the SMTP mailer.

use lightspeed_domain::invoice::MerchantInvoices;
use lightspeed_domain::invoice::MerchantInvoicesEvent;
use lightspeed_domain::merchant::MerchantEvent;
use lightspeed_domain::notification::{
    Channel, NotificationType, QueueNotification, email_messages,
};
use lightspeed_domain::wallet::{PayoutReversalReason, WalletEvent};
use lightspeed_domain::{Decider, Merchant, MerchantId, Notification, Wallet};
use lightspeed_eventstore::RecordedEvent;
use lightspeed_invoice::{month_name, rupees};
use lightspeed_services::Ledger;

use crate::attempts::attempt_owed;
use crate::ids::merchant_message_id;
use crate::merchant_email::MerchantEmail;
use crate::queue::{Job, JobHandler, JobOutcome};
use crate::support::{caused_by, domain_event, ledger_failure, recorded_event, stream_key};
use crate::whatsapp::NOTIFICATION_EVENTS;

/// The queue's name.
pub const QUEUE: &str = "merchant-messages";
/// The merchant events merchants hear about (`ACCOUNT_STATUS`).
pub const MERCHANT_EVENTS: [&str; 2] = ["MerchantSuspended", "MerchantReactivated"];
/// The wallet events merchants hear about (`PAYOUT_UPDATE`).
pub const WALLET_EVENTS: [&str; 2] = ["CommissionPaidOut", "PayoutReversed"];
/// The invoice events merchants hear about (`INVOICE`).
pub const INVOICE_EVENTS: [&str; 1] = ["InvoiceIssued"];

/// The `(category, event type)` pairs the queue consumes: business events, then the events of
/// a notification that owe an attempt.
pub fn subjects() -> Vec<(&'static str, &'static str)> {
    let business = MERCHANT_EVENTS
        .iter()
        .map(|event_type| (Merchant::CATEGORY, *event_type))
        .chain(
            WALLET_EVENTS
                .iter()
                .map(|event_type| (Wallet::CATEGORY, *event_type)),
        )
        .chain(
            INVOICE_EVENTS
                .iter()
                .map(|event_type| (MerchantInvoices::CATEGORY, *event_type)),
        );
    business
        .chain(
            NOTIFICATION_EVENTS
                .iter()
                .map(|event_type| (Notification::CATEGORY, *event_type)),
        )
        .collect()
}

/// The WhatsApp templates of the messages this queue decides (Meta: names; Gupshup: ids),
/// built by the binary from `WA_TEMPLATE_ACCOUNT_SUSPENDED` and its siblings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplates {
    /// Suspension: company name, reason.
    pub account_suspended: String,
    /// Reinstatement: company name.
    pub account_reinstated: String,
    /// Payout sent: company name, amount, reference.
    pub payout_sent: String,
    /// Payout failed: company name, amount, reason.
    pub payout_failed: String,
    /// Invoice issued: company name, invoice number, month, total.
    pub invoice_issued: String,
}

impl Default for MessageTemplates {
    /// Templates named like the email messages (`account_suspended`, …, `invoice_issued`).
    fn default() -> Self {
        Self {
            account_suspended: email_messages::ACCOUNT_SUSPENDED.to_owned(),
            account_reinstated: email_messages::ACCOUNT_REINSTATED.to_owned(),
            payout_sent: email_messages::PAYOUT_SENT.to_owned(),
            payout_failed: email_messages::PAYOUT_FAILED.to_owned(),
            invoice_issued: "invoice_issued".to_owned(),
        }
    }
}

/// Queues merchant messages for business events and sends email notifications.
#[derive(Clone)]
pub(crate) struct MerchantMessages {
    pub(crate) ledger: Ledger,
    pub(crate) templates: MessageTemplates,
    pub(crate) email: MerchantEmail,
}

impl JobHandler for MerchantMessages {
    async fn handle(&self, job: Job) -> JobOutcome {
        let event = match recorded_event(&job) {
            Ok(event) => event,
            Err(outcome) => return outcome,
        };
        let handled = match event.stream_id.category() {
            Notification::CATEGORY => attempt_owed(&self.email, &job, &event).await,
            _ => self.queue_for(&job, &event).await,
        };
        handled.unwrap_or_else(|outcome| outcome)
    }
}

/// What a business event tells the merchant: its type, the template on each channel (no email
/// message: WhatsApp only) and the parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    kind: NotificationType,
    whatsapp_template: String,
    email_message: Option<&'static str>,
    params: Vec<String>,
}

impl MerchantMessages {
    /// Queues the messages `event` owes its merchant, one per channel opted in to.
    async fn queue_for(&self, job: &Job, event: &RecordedEvent) -> Result<JobOutcome, JobOutcome> {
        let Some((merchant_id, about)) = about(event)? else {
            return Ok(JobOutcome::Done);
        };
        let merchant = self
            .ledger
            .merchant(merchant_id)
            .await
            .map_err(|e| ledger_failure(job, "load the merchant", &e))?;
        let message = about.message(&self.templates, merchant.company_name());
        for (channel, recipient) in merchant.recipients_for(message.kind) {
            let template = match channel {
                Channel::Whatsapp => message.whatsapp_template.clone(),
                Channel::Email => match message.email_message {
                    Some(name) => name.to_owned(),
                    None => continue,
                },
            };
            let queue = QueueNotification {
                notification_id: merchant_message_id(event.event_id, channel),
                merchant_id,
                kind: message.kind,
                template,
                recipient: recipient.to_owned(),
                params: message.params.clone(),
                at: self.ledger.now(),
            };
            // The notification's stream is appended only if it does not exist yet, so a
            // redelivered event finds it queued and stores nothing.
            self.ledger
                .queue_notification_on(channel, queue, &caused_by(event, QUEUE, None))
                .await
                .map_err(|e| ledger_failure(job, "queue the merchant message", &e))?;
        }
        Ok(JobOutcome::Done)
    }
}

/// The business fact an event records, as far as merchant messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum About {
    Suspended {
        reason: String,
    },
    Reinstated,
    PayoutSent {
        amount: lightspeed_domain::Paise,
        reference: String,
    },
    PayoutFailed {
        amount: lightspeed_domain::Paise,
        reason: PayoutReversalReason,
    },
    InvoiceIssued {
        number: String,
        month: String,
        total: lightspeed_domain::Paise,
    },
}

/// The merchant an event is about and what it tells them; `None` for events that tell nothing.
fn about(event: &RecordedEvent) -> Result<Option<(MerchantId, About)>, JobOutcome> {
    let event_type = event.event_type.as_str();
    let fact = match event.stream_id.category() {
        Merchant::CATEGORY if MERCHANT_EVENTS.contains(&event_type) => {
            match domain_event::<MerchantEvent>(event)? {
                MerchantEvent::MerchantSuspended { reason, .. } => About::Suspended { reason },
                MerchantEvent::MerchantReactivated { .. } => About::Reinstated,
                _ => return Ok(None),
            }
        }
        Wallet::CATEGORY if WALLET_EVENTS.contains(&event_type) => {
            match domain_event::<WalletEvent>(event)? {
                WalletEvent::CommissionPaidOut {
                    amount, reference, ..
                } => About::PayoutSent { amount, reference },
                WalletEvent::PayoutReversed { amount, reason, .. } => {
                    About::PayoutFailed { amount, reason }
                }
                _ => return Ok(None),
            }
        }
        MerchantInvoices::CATEGORY if INVOICE_EVENTS.contains(&event_type) => {
            match domain_event::<MerchantInvoicesEvent>(event)? {
                MerchantInvoicesEvent::InvoiceIssued { invoice, .. } => About::InvoiceIssued {
                    number: invoice.number.to_string(),
                    month: month_name(invoice.month),
                    total: invoice.total,
                },
                _ => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some((stream_key(event)?, fact)))
}

impl About {
    /// The message to `company`, with `templates` for WhatsApp.
    fn message(self, templates: &MessageTemplates, company: &str) -> Message {
        let company = company.to_owned();
        let (kind, whatsapp_template, email_message, params) = match self {
            About::Suspended { reason } => (
                NotificationType::AccountStatus,
                &templates.account_suspended,
                Some(email_messages::ACCOUNT_SUSPENDED),
                vec![company, reason],
            ),
            About::Reinstated => (
                NotificationType::AccountStatus,
                &templates.account_reinstated,
                Some(email_messages::ACCOUNT_REINSTATED),
                vec![company],
            ),
            About::PayoutSent { amount, reference } => (
                NotificationType::PayoutUpdate,
                &templates.payout_sent,
                Some(email_messages::PAYOUT_SENT),
                vec![company, rupees(amount), reference],
            ),
            About::PayoutFailed { amount, reason } => (
                NotificationType::PayoutUpdate,
                &templates.payout_failed,
                Some(email_messages::PAYOUT_FAILED),
                vec![company, rupees(amount), reversal_words(reason).to_owned()],
            ),
            About::InvoiceIssued {
                number,
                month,
                total,
            } => (
                NotificationType::Invoice,
                &templates.invoice_issued,
                None,
                vec![company, number, month, rupees(total)],
            ),
        };
        Message {
            kind,
            whatsapp_template: whatsapp_template.clone(),
            email_message,
            params,
        }
    }
}

/// Why a payout did not arrive, in words for the merchant.
fn reversal_words(reason: PayoutReversalReason) -> &'static str {
    match reason {
        PayoutReversalReason::Failed => "the transfer failed",
        PayoutReversalReason::Rejected => "the transfer was rejected",
        PayoutReversalReason::Cancelled => "the transfer was cancelled",
        PayoutReversalReason::Reversed => "the bank reversed the transfer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightspeed_domain::Paise;

    #[test]
    fn event_type_names_exist_in_the_domain() {
        for ours in MERCHANT_EVENTS {
            assert!(MerchantEvent::EVENT_TYPES.contains(&ours), "{ours}");
        }
        for ours in WALLET_EVENTS {
            assert!(WalletEvent::EVENT_TYPES.contains(&ours), "{ours}");
        }
        for ours in INVOICE_EVENTS {
            assert!(MerchantInvoicesEvent::EVENT_TYPES.contains(&ours), "{ours}");
        }
    }

    #[test]
    fn a_failed_payout_tells_its_amount_and_why_and_an_invoice_goes_by_whatsapp_only() {
        let templates = MessageTemplates::default();
        let failed = About::PayoutFailed {
            amount: Paise(1_250_050),
            reason: PayoutReversalReason::Reversed,
        }
        .message(&templates, "Acme");
        assert_eq!(failed.kind, NotificationType::PayoutUpdate);
        assert_eq!(failed.email_message, Some(email_messages::PAYOUT_FAILED));
        assert_eq!(
            failed.params,
            ["Acme", "₹12,500.50", "the bank reversed the transfer"]
        );
        let invoice = About::InvoiceIssued {
            number: "LS-2627-000001".into(),
            month: "November 2026".into(),
            total: Paise(100),
        }
        .message(&templates, "Acme");
        assert_eq!(invoice.kind, NotificationType::Invoice);
        assert_eq!(invoice.email_message, None);
        assert_eq!(invoice.whatsapp_template, "invoice_issued");
    }
}
