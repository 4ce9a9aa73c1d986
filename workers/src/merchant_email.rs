//! Merchant email: writes an email notification out (subject and plain text from its message
//! name and parameters) and sends it through the SMTP mailer, in the delivery-attempt skeleton
//! WhatsApp notifications use ([`DeliveryAttempts`]): the same 4 attempts and backoff, each
//! attempt recorded on the notification's stream with the server's error, the server's
//! acceptance kept as the receipt.
//!
//! An email notification owes an attempt only to this sender; the WhatsApp sender leaves it
//! alone, and this one leaves WhatsApp notifications alone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lightspeed_adapters::mailer::{Mail, Mailer, MailerError};
use lightspeed_domain::notification::{
    Channel, NotificationCommand, NotificationError, NotificationStatus, email_messages,
};
use lightspeed_domain::retry::Jitter;
use lightspeed_domain::{Notification, NotificationId};
use lightspeed_eventstore::{CommandHandler, PgEventStore};
use lightspeed_services::Ledger;
use uuid::Uuid;

use crate::attempts::DeliveryAttempts;
use crate::ids;
use crate::queue::{Job, JobOutcome};
use crate::whatsapp::NOTIFICATION_EVENTS;

/// Longest one send may take, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends email notifications.
#[derive(Clone)]
pub(crate) struct MerchantEmail {
    pub(crate) ledger: Ledger,
    /// The SMTP mailer; without one, each attempt fails as `mail_not_configured` (retried, so
    /// mail configured meanwhile still sends it; ops may resend it after).
    pub(crate) mailer: Option<Mailer>,
    pub(crate) due_recheck: Duration,
}

/// The email to `to` for message `template` with `params`: `None` for a message name the
/// sender does not know.
pub fn write(to: &str, template: &str, params: &[String]) -> Option<Mail> {
    let param = |index: usize| params.get(index).map_or("", String::as_str);
    let company = param(0);
    let (subject, body) = match template {
        email_messages::ACCOUNT_SUSPENDED => (
            format!("{company}: your account is suspended"),
            format!(
                "Your LightSpeed account is suspended: new payments are refused until it is \
                 reinstated.\n\nReason: {}\n",
                param(1)
            ),
        ),
        email_messages::ACCOUNT_REINSTATED => (
            format!("{company}: your account is reinstated"),
            "Your LightSpeed account is reinstated: payments are accepted again.\n".to_owned(),
        ),
        email_messages::PAYOUT_SENT => (
            format!("{company}: payout of {} sent", param(1)),
            format!(
                "A commission payout of {} was sent.\n\nReference: {}\n",
                param(1),
                param(2)
            ),
        ),
        email_messages::PAYOUT_FAILED => (
            format!("{company}: payout of {} failed", param(1)),
            format!(
                "A commission payout of {} did not arrive: {}. The amount is due again.\n",
                param(1),
                param(2)
            ),
        ),
        email_messages::LOW_BALANCE => (
            format!("{company}: commission due is {}", param(1)),
            format!(
                "The commission you owe reached {}. Please settle it before payments are \
                 refused.\n",
                param(1)
            ),
        ),
        email_messages::QUOTA_ALERT => (
            format!("{company}: {} of your {} cap used", param(2), param(1)),
            format!(
                "You used {} of your {} cap ({}). It resets at {}.\n",
                param(2),
                param(1),
                param(3),
                param(4)
            ),
        ),
        _ => return None,
    };
    Some(Mail {
        to: to.to_owned(),
        subject,
        text: format!("Dear {company},\n\n{body}\n— LightSpeed\n"),
    })
}

impl DeliveryAttempts for MerchantEmail {
    type Message = Notification;
    type Id = NotificationId;
    type Recorded = ();

    const QUEUE: &'static str = crate::merchant_messages::QUEUE;
    const OWING_EVENTS: &'static [&'static str] = &NOTIFICATION_EVENTS;
    const NOUN: &'static str = "email notification";

    fn records(&self) -> &CommandHandler<Notification, PgEventStore> {
        self.ledger.notifications()
    }

    fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn due_recheck(&self) -> Duration {
        self.due_recheck
    }

    fn is_pending(notification: &Notification) -> bool {
        notification.channel() == Channel::Email
            && notification.status() == NotificationStatus::Queued
    }

    fn next_attempt_at(notification: &Notification) -> Option<DateTime<Utc>> {
        notification.next_attempt_at()
    }

    fn record_command_id(notification_id: NotificationId, version: u64) -> Uuid {
        ids::record_email_attempt_command(notification_id, version)
    }

    fn is_already_recorded(refusal: &NotificationError) -> bool {
        refusal.is_already_recorded()
    }

    /// Writes the message and sends it, for at most [`SEND_TIMEOUT`].
    async fn attempt(
        &self,
        _job: &Job,
        notification_id: NotificationId,
        notification: &Notification,
        _now: DateTime<Utc>,
    ) -> Result<(NotificationCommand, ()), JobOutcome> {
        let sent = self.send(notification).await;
        let record = attempt_record(sent, self.ledger.now());
        if let NotificationCommand::RecordAttemptFailed { error_code, .. } = &record {
            tracing::warn!(%notification_id, attempt = notification.attempts() + 1, %error_code, "merchant email failed");
        }
        Ok((record, ()))
    }
}

/// Why an email attempt failed, as the attempt records it.
#[derive(Debug)]
enum EmailFailure {
    NotConfigured,
    UnknownMessage(String),
    Mailer(MailerError),
    TimedOut,
}

impl MerchantEmail {
    async fn send(&self, notification: &Notification) -> Result<String, EmailFailure> {
        let mailer = self.mailer.as_ref().ok_or(EmailFailure::NotConfigured)?;
        let mail = write(
            notification.recipient(),
            notification.template(),
            notification.params(),
        )
        .ok_or_else(|| EmailFailure::UnknownMessage(notification.template().to_owned()))?;
        tokio::time::timeout(SEND_TIMEOUT, mailer.send_for_receipt(&mail))
            .await
            .map_err(|_| EmailFailure::TimedOut)?
            .map_err(EmailFailure::Mailer)
    }
}

/// The command recording a send's result. Jitter is drawn here so the domain stays
/// deterministic.
fn attempt_record(sent: Result<String, EmailFailure>, at: DateTime<Utc>) -> NotificationCommand {
    let failure = match sent {
        Ok(receipt) => {
            return NotificationCommand::RecordSent {
                provider_message_id: receipt,
                at,
            };
        }
        Err(failure) => failure,
    };
    let (error_code, error_message, retryable) = match failure {
        // Mail configured meanwhile still sends it.
        EmailFailure::NotConfigured => (
            "mail_not_configured",
            "SMTP is not configured (SMTP_HOST)".to_owned(),
            true,
        ),
        EmailFailure::UnknownMessage(name) => (
            "unknown_message",
            format!("no email is written for {name:?}"),
            false,
        ),
        // The address or the text is not one we can send: trying again cannot help.
        EmailFailure::Mailer(error @ MailerError::Message(_)) => {
            ("rejected", error.to_string(), false)
        }
        EmailFailure::Mailer(error @ (MailerError::Smtp(_) | MailerError::Config(_))) => {
            ("smtp", error.to_string(), true)
        }
        EmailFailure::TimedOut => ("unavailable", "send timed out".to_owned(), true),
    };
    NotificationCommand::RecordAttemptFailed {
        error_code: error_code.to_owned(),
        error_message,
        retryable,
        rate_limited: false,
        retry_after_secs: None,
        jitter: Jitter::from_bps(rand::random_range(-Jitter::MAX_BPS..=Jitter::MAX_BPS)),
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(values: &[&str]) -> Vec<String> {
        values.iter().map(|&value| value.to_owned()).collect()
    }

    #[test]
    fn every_message_name_is_written_with_its_figures() {
        let suspended = write(
            "ops@acme.example",
            email_messages::ACCOUNT_SUSPENDED,
            &params(&["Acme", "unpaid commission"]),
        )
        .expect("known");
        assert_eq!(suspended.to, "ops@acme.example");
        assert_eq!(suspended.subject, "Acme: your account is suspended");
        assert!(suspended.text.contains("Reason: unpaid commission"));
        let sent = write(
            "ops@acme.example",
            email_messages::PAYOUT_SENT,
            &params(&["Acme", "₹1,200.00", "pout_1"]),
        )
        .expect("known");
        assert_eq!(sent.subject, "Acme: payout of ₹1,200.00 sent");
        assert!(sent.text.contains("Reference: pout_1"));
        for name in [
            email_messages::ACCOUNT_REINSTATED,
            email_messages::PAYOUT_FAILED,
            email_messages::LOW_BALANCE,
            email_messages::QUOTA_ALERT,
        ] {
            assert!(
                write("a@acme.example", name, &params(&["Acme"])).is_some(),
                "{name}"
            );
        }
        assert_eq!(
            write("a@acme.example", "txn_update", &params(&["Acme"])),
            None
        );
    }

    #[test]
    fn failures_worth_retrying_are_told_from_those_that_are_not() {
        let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("instant");
        let retryable = |sent| match attempt_record(sent, at) {
            NotificationCommand::RecordAttemptFailed { retryable, .. } => retryable,
            other => panic!("a failure, not {other:?}"),
        };
        assert!(retryable(Err(EmailFailure::Mailer(MailerError::Smtp(
            "421 try later".into()
        )))));
        assert!(retryable(Err(EmailFailure::NotConfigured)));
        assert!(!retryable(Err(EmailFailure::Mailer(MailerError::Message(
            "to: invalid".into()
        )))));
        assert!(!retryable(Err(EmailFailure::UnknownMessage("x".into()))));
        assert!(matches!(
            attempt_record(Ok("250 2.0.0 queued".into()), at),
            NotificationCommand::RecordSent { ref provider_message_id, .. } if provider_message_id == "250 2.0.0 queued"
        ));
    }
}
