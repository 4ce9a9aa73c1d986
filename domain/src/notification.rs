//! Notification: one message to a merchant, by WhatsApp or by email, through its attempts.
//!
//! Stream `notification-<NotificationId>`. Lifecycle: queued (merchant, type, channel,
//! template, recipient, parameters, attempt limit 4) → each failed attempt is recorded with its
//! error and, if another attempt is allowed, when to make it ([`next_wait`]: rate limits back
//! off longer, and a provider's `Retry-After` is honoured) → sent (provider message id) or
//! failed for good (attempts exhausted or a permanent error). Ops may resend a failed
//! notification, which queues it again with a fresh attempt budget. Every event names the
//! channel, so a reader of one channel's messages (the WhatsApp log) tells them apart by the
//! event alone.
//!
//! Whether a `LOW_BALANCE` notification may be queued at all is decided on the merchant's
//! alerts stream ([`crate::merchant_alerts`]), which enforces the 6-hour cool-down.

use crate::calendar;
use crate::decider::Decider;
use crate::ids::{MerchantId, NotificationId};
use crate::retry::{Jitter, WHATSAPP, WHATSAPP_RATE_LIMITED, whatsapp_wait_after};
use crate::validation::{self, FieldError, Problem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Longest template name, in characters (WhatsApp's own limit).
pub const MAX_TEMPLATE_CHARS: usize = 512;

/// Most template parameters.
pub const MAX_PARAMS: usize = 20;

/// Longest template parameter, in characters.
pub const MAX_PARAM_CHARS: usize = 1_024;

/// Longest error code or message kept, in characters.
pub const MAX_ERROR_CHARS: usize = 500;

/// What a notification is about; merchants opt in per type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationType {
    /// The balance due reached the warn threshold.
    LowBalance,
    /// A payment changed status.
    TxnUpdate,
    /// A payout changed status.
    PayoutUpdate,
    /// The merchant's account changed (suspended, reinstated, a quota threshold reached).
    AccountStatus,
    /// The month's commission invoice was issued.
    Invoice,
}

/// How a notification reaches the merchant. Notifications queued before email existed are
/// WhatsApp ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A WhatsApp template message to a number; the template is the provider's.
    #[default]
    Whatsapp,
    /// A plain-text email to an address; the template names the message the sender writes.
    Email,
}

/// The names of the email messages merchants receive: an email notification's template, which
/// the email sender writes out with the notification's parameters.
pub mod email_messages {
    /// A quota cap reached 80 % or 100 % (parameters as the WhatsApp quota template's).
    pub const QUOTA_ALERT: &str = "quota_alert";
    /// The balance due reached the warn threshold (company name, balance due).
    pub const LOW_BALANCE: &str = "low_balance";
    /// Ops suspended the account (company name, reason).
    pub const ACCOUNT_SUSPENDED: &str = "account_suspended";
    /// A suspension was lifted (company name).
    pub const ACCOUNT_REINSTATED: &str = "account_reinstated";
    /// A commission payout was sent (company name, amount, reference).
    pub const PAYOUT_SENT: &str = "payout_sent";
    /// A commission payout failed or was reversed (company name, amount, reason).
    pub const PAYOUT_FAILED: &str = "payout_failed";
}

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Waiting for its next attempt.
    Queued,
    /// Accepted by the provider.
    Sent,
    /// Given up on.
    Failed,
}

/// The last error a provider answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    /// Provider error code, e.g. `130429`.
    pub code: String,
    /// Provider error message.
    pub message: String,
}

/// A notification as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    id: NotificationId,
    merchant_id: MerchantId,
    kind: NotificationType,
    channel: Channel,
    template: String,
    recipient: String,
    params: Vec<String>,
    attempt_limit: u32,
    attempts: u32,
    status: NotificationStatus,
    next_attempt_at: Option<DateTime<Utc>>,
    last_error: Option<AttemptError>,
    provider_message_id: Option<String>,
    queued_at: DateTime<Utc>,
}

impl Notification {
    /// The notification's id.
    pub fn id(&self) -> NotificationId {
        self.id
    }

    /// The merchant it is for.
    pub fn merchant_id(&self) -> MerchantId {
        self.merchant_id
    }

    /// What it is about.
    pub fn kind(&self) -> NotificationType {
        self.kind
    }

    /// WhatsApp or email.
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// The WhatsApp template name, or the email message's name.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The recipient's number (international format, digits only) or email address.
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// Template parameters, in order.
    pub fn params(&self) -> &[String] {
        &self.params
    }

    /// Attempts allowed since it was (re)queued.
    pub fn attempt_limit(&self) -> u32 {
        self.attempt_limit
    }

    /// Attempts made since it was (re)queued.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Queued, sent or failed.
    pub fn status(&self) -> NotificationStatus {
        self.status
    }

    /// When the next attempt is due, while queued.
    pub fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.next_attempt_at
    }

    /// Whether an attempt is due at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.next_attempt_at.is_some_and(|due| due <= now)
    }

    /// The last provider error.
    pub fn last_error(&self) -> Option<&AttemptError> {
        self.last_error.as_ref()
    }

    /// The provider's message id, once sent.
    pub fn provider_message_id(&self) -> Option<&str> {
        self.provider_message_id.as_deref()
    }

    /// When it was first queued.
    pub fn queued_at(&self) -> DateTime<Utc> {
        self.queued_at
    }
}

/// Everything needed to queue a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueNotification {
    /// The new notification's id.
    pub notification_id: NotificationId,
    /// The merchant it is for.
    pub merchant_id: MerchantId,
    /// What it is about.
    pub kind: NotificationType,
    /// WhatsApp template name or email message name (lowercase letters, digits and `_`).
    pub template: String,
    /// Recipient's number (international format; a leading `+` is dropped) or email address.
    pub recipient: String,
    /// Template parameters.
    pub params: Vec<String>,
    /// When it is decided.
    pub at: DateTime<Utc>,
}

/// What can be asked of a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationCommand {
    /// Queues a WhatsApp notification for immediate sending.
    Queue(QueueNotification),
    /// Queues an email notification for immediate sending: the recipient is an address and
    /// the template names one of the [`email_messages`].
    QueueEmail(QueueNotification),
    /// Records a failed attempt.
    RecordAttemptFailed {
        /// Provider error code.
        error_code: String,
        /// Provider error message.
        error_message: String,
        /// Whether trying again may help (false for e.g. an invalid number).
        retryable: bool,
        /// Whether the provider refused for rate limiting (backs off longer).
        rate_limited: bool,
        /// How long the provider asked us to wait (`Retry-After`), if it said.
        #[serde(default)]
        retry_after_secs: Option<u64>,
        /// Jitter for the next wait, drawn by the caller.
        jitter: Jitter,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Records that the provider accepted the message.
    RecordSent {
        /// The provider's message id.
        provider_message_id: String,
        /// When it is decided.
        at: DateTime<Utc>,
    },
    /// Queues a failed notification again, with a fresh attempt budget (ops).
    Resend {
        /// When it is decided.
        at: DateTime<Utc>,
    },
}

event_enum! {
    /// What a notification stream records.
    pub enum NotificationEvent {
        /// A notification was queued.
        NotificationQueued {
            /// The notification's id.
            notification_id: NotificationId,
            /// The merchant.
            merchant_id: MerchantId,
            /// What it is about.
            kind: NotificationType,
            /// WhatsApp or email (absent in events from before email: WhatsApp).
            #[serde(default)]
            channel: Channel,
            /// Template name.
            template: String,
            /// Recipient's number or email address.
            recipient: String,
            /// Template parameters.
            params: Vec<String>,
            /// Attempts allowed.
            attempt_limit: u32,
            /// When.
            at: DateTime<Utc>,
        },
        /// An attempt failed.
        NotificationAttemptFailed {
            /// The notification's channel (absent before email: WhatsApp).
            #[serde(default)]
            channel: Channel,
            /// Which attempt (1-based).
            attempt: u32,
            /// Provider error code.
            error_code: String,
            /// Provider error message.
            error_message: String,
            /// Whether trying again may help.
            retryable: bool,
            /// When the next attempt is due, if there is one.
            next_attempt_at: Option<DateTime<Utc>>,
            /// When.
            at: DateTime<Utc>,
        },
        /// The provider accepted the message.
        NotificationSent {
            /// The notification's channel (absent before email: WhatsApp).
            #[serde(default)]
            channel: Channel,
            /// Which attempt succeeded.
            attempt: u32,
            /// The provider's message id.
            provider_message_id: String,
            /// When.
            at: DateTime<Utc>,
        },
        /// The notification was given up on.
        NotificationFailed {
            /// The notification's channel (absent before email: WhatsApp).
            #[serde(default)]
            channel: Channel,
            /// Attempts made.
            attempts: u32,
            /// The last error code.
            error_code: String,
            /// When.
            at: DateTime<Utc>,
        },
        /// A failed notification was queued again.
        NotificationRequeued {
            /// The notification's channel (absent before email: WhatsApp).
            #[serde(default)]
            channel: Channel,
            /// Attempts allowed from now.
            attempt_limit: u32,
            /// When.
            at: DateTime<Utc>,
        },
    }
}

/// Why a notification command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// The stream has no `NotificationQueued` yet.
    #[error("notification not queued")]
    NotQueued,
    /// `Queue` on an existing notification.
    #[error("notification already queued")]
    AlreadyQueued,
    /// A field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The notification was already sent.
    #[error("notification already sent")]
    AlreadySent,
    /// The notification was given up on; resend it to try again.
    #[error("notification already failed")]
    AlreadyFailed,
    /// Only a failed notification can be resent.
    #[error("notification is {status:?}; only a failed one can be resent")]
    NotFailed {
        /// Its status.
        status: NotificationStatus,
    },
}

impl NotificationEvent {
    /// The channel of the notification the event is about.
    pub fn channel(&self) -> Channel {
        match self {
            NotificationEvent::NotificationQueued { channel, .. }
            | NotificationEvent::NotificationAttemptFailed { channel, .. }
            | NotificationEvent::NotificationSent { channel, .. }
            | NotificationEvent::NotificationFailed { channel, .. }
            | NotificationEvent::NotificationRequeued { channel, .. } => *channel,
        }
    }
}

impl NotificationCommand {
    /// The command queueing `queue` on `channel`.
    pub fn queue_on(channel: Channel, queue: QueueNotification) -> Self {
        match channel {
            Channel::Whatsapp => NotificationCommand::Queue(queue),
            Channel::Email => NotificationCommand::QueueEmail(queue),
        }
    }
}

impl NotificationError {
    /// True for a repeated or late report about an attempt: callers acknowledge it without effect.
    pub fn is_already_recorded(&self) -> bool {
        matches!(
            self,
            NotificationError::AlreadySent | NotificationError::AlreadyFailed
        )
    }
}

/// The wait before the next attempt after `failed_attempt`: the schedule's slot, or the
/// provider's `Retry-After` when longer, capped at the rate-limited schedule's longest wait so a
/// provider cannot park a notification indefinitely; `None` when the attempts are exhausted.
pub fn next_wait(
    failed_attempt: u32,
    rate_limited: bool,
    retry_after_secs: Option<u64>,
    jitter: Jitter,
) -> Option<Duration> {
    let scheduled = whatsapp_wait_after(failed_attempt, rate_limited, jitter)?;
    let asked = retry_after_secs.map_or(Duration::ZERO, |secs| {
        Duration::from_secs(secs).min(WHATSAPP_RATE_LIMITED.max_wait)
    });
    Some(scheduled.max(asked))
}

fn is_template_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

impl Decider for Notification {
    const CATEGORY: &'static str = "notification";
    type State = Option<Notification>;
    type Command = NotificationCommand;
    type Event = NotificationEvent;
    type Error = NotificationError;

    fn decide(
        state: &Option<Notification>,
        command: &NotificationCommand,
    ) -> Result<Vec<NotificationEvent>, NotificationError> {
        let notification = match (state, command) {
            (None, NotificationCommand::Queue(queue)) => {
                return queue_notification(queue, Channel::Whatsapp);
            }
            (None, NotificationCommand::QueueEmail(queue)) => {
                return queue_notification(queue, Channel::Email);
            }
            (Some(_), NotificationCommand::Queue(_) | NotificationCommand::QueueEmail(_)) => {
                return Err(NotificationError::AlreadyQueued);
            }
            (None, _) => return Err(NotificationError::NotQueued),
            (Some(notification), _) => notification,
        };
        match command {
            NotificationCommand::Queue(_) | NotificationCommand::QueueEmail(_) => {
                Err(NotificationError::AlreadyQueued)
            }
            NotificationCommand::RecordAttemptFailed {
                error_code,
                error_message,
                retryable,
                rate_limited,
                retry_after_secs,
                jitter,
                at,
            } => {
                ensure_queued(notification)?;
                let attempt = notification.attempts.saturating_add(1);
                // A refusal for rate limiting is worth waiting out whatever the error says.
                let retryable = *retryable || *rate_limited;
                let next_attempt_at = if retryable {
                    notification.next_attempt_at_after(
                        attempt,
                        *rate_limited,
                        *retry_after_secs,
                        *jitter,
                        *at,
                    )
                } else {
                    None
                };
                Ok(FailedAttempt {
                    channel: notification.channel,
                    attempt,
                    error_code: validation::excerpt(error_code, MAX_ERROR_CHARS),
                    error_message: validation::excerpt(error_message, MAX_ERROR_CHARS),
                    retryable,
                    next_attempt_at,
                    at: *at,
                }
                .events())
            }
            NotificationCommand::RecordSent {
                provider_message_id,
                at,
            } => record_sent(notification, provider_message_id, *at),
            NotificationCommand::Resend { at } => resend(notification, *at),
        }
    }

    fn evolve(state: Option<Notification>, event: &NotificationEvent) -> Option<Notification> {
        match state {
            Some(notification) => notification.apply(event),
            // Events before the queueing describe no notification yet.
            None => Notification::queued(event),
        }
    }
}

impl Notification {
    /// The notification a queueing event starts; `None` for any other event.
    fn queued(event: &NotificationEvent) -> Option<Notification> {
        let NotificationEvent::NotificationQueued {
            notification_id,
            merchant_id,
            kind,
            channel,
            template,
            recipient,
            params,
            attempt_limit,
            at,
        } = event
        else {
            return None;
        };
        Some(Notification {
            id: *notification_id,
            merchant_id: *merchant_id,
            kind: *kind,
            channel: *channel,
            template: template.clone(),
            recipient: recipient.clone(),
            params: params.clone(),
            attempt_limit: *attempt_limit,
            attempts: 0,
            status: NotificationStatus::Queued,
            next_attempt_at: Some(*at),
            last_error: None,
            provider_message_id: None,
            queued_at: *at,
        })
    }

    /// The notification after `event`; a queueing event starts it afresh.
    fn apply(mut self, event: &NotificationEvent) -> Option<Notification> {
        match event {
            NotificationEvent::NotificationQueued { .. } => return Notification::queued(event),
            NotificationEvent::NotificationAttemptFailed {
                attempt,
                error_code,
                error_message,
                next_attempt_at,
                ..
            } => {
                self.attempts = *attempt;
                self.last_error = Some(AttemptError {
                    code: error_code.clone(),
                    message: error_message.clone(),
                });
                self.next_attempt_at = *next_attempt_at;
            }
            NotificationEvent::NotificationSent {
                attempt,
                provider_message_id,
                ..
            } => {
                self.attempts = *attempt;
                self.status = NotificationStatus::Sent;
                self.provider_message_id = Some(provider_message_id.clone());
                self.next_attempt_at = None;
            }
            NotificationEvent::NotificationFailed { .. } => {
                self.status = NotificationStatus::Failed;
                self.next_attempt_at = None;
            }
            NotificationEvent::NotificationRequeued {
                attempt_limit, at, ..
            } => {
                self.status = NotificationStatus::Queued;
                self.attempt_limit = *attempt_limit;
                self.attempts = 0;
                self.next_attempt_at = Some(*at);
            }
        }
        Some(self)
    }

    /// When to try again after `attempt` failed at `at`; `None` once the attempts allowed or the
    /// schedule are used up.
    fn next_attempt_at_after(
        &self,
        attempt: u32,
        rate_limited: bool,
        retry_after_secs: Option<u64>,
        jitter: Jitter,
        at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        next_wait(attempt, rate_limited, retry_after_secs, jitter)
            .filter(|_| attempt < self.attempt_limit)
            .map(|wait| calendar::plus(at, wait))
    }
}

/// A failed attempt as recorded: the notification fails with it when no attempt follows.
struct FailedAttempt {
    channel: Channel,
    attempt: u32,
    error_code: String,
    error_message: String,
    retryable: bool,
    next_attempt_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
}

impl FailedAttempt {
    fn events(self) -> Vec<NotificationEvent> {
        let gives_up = self.next_attempt_at.is_none();
        let mut events = vec![NotificationEvent::NotificationAttemptFailed {
            channel: self.channel,
            attempt: self.attempt,
            error_code: self.error_code.clone(),
            error_message: self.error_message,
            retryable: self.retryable,
            next_attempt_at: self.next_attempt_at,
            at: self.at,
        }];
        if gives_up {
            events.push(NotificationEvent::NotificationFailed {
                channel: self.channel,
                attempts: self.attempt,
                error_code: self.error_code,
                at: self.at,
            });
        }
        events
    }
}

fn record_sent(
    notification: &Notification,
    provider_message_id: &str,
    at: DateTime<Utc>,
) -> Result<Vec<NotificationEvent>, NotificationError> {
    ensure_queued(notification)?;
    validation::token(
        "provider_message_id",
        provider_message_id,
        200,
        // An SMTP server's acceptance line has spaces: `250 2.0.0 Ok: queued as 4F2A1`.
        |c| c == ' ' || c.is_ascii_graphic(),
        "printable ASCII",
    )?;
    Ok(vec![NotificationEvent::NotificationSent {
        channel: notification.channel,
        attempt: notification.attempts.saturating_add(1),
        provider_message_id: provider_message_id.to_owned(),
        at,
    }])
}

/// Queues a failed notification again with a fresh attempt budget.
fn resend(
    notification: &Notification,
    at: DateTime<Utc>,
) -> Result<Vec<NotificationEvent>, NotificationError> {
    if notification.status != NotificationStatus::Failed {
        return Err(NotificationError::NotFailed {
            status: notification.status,
        });
    }
    Ok(vec![NotificationEvent::NotificationRequeued {
        channel: notification.channel,
        attempt_limit: WHATSAPP.max_attempts,
        at,
    }])
}

fn queue_notification(
    queue: &QueueNotification,
    channel: Channel,
) -> Result<Vec<NotificationEvent>, NotificationError> {
    validation::token(
        "template",
        &queue.template,
        MAX_TEMPLATE_CHARS,
        is_template_char,
        "lowercase letters, digits and '_'",
    )?;
    let recipient = match channel {
        Channel::Whatsapp => validation::phone("recipient", &queue.recipient)?,
        Channel::Email => validation::email("recipient", &queue.recipient)?,
    };
    if queue.params.len() > MAX_PARAMS {
        return Err(Problem::OutOfRange {
            min: 0,
            max: MAX_PARAMS as i64,
        }
        .at("params")
        .into());
    }
    if queue
        .params
        .iter()
        .any(|param| param.chars().count() > MAX_PARAM_CHARS)
    {
        return Err(Problem::TooLong {
            max: MAX_PARAM_CHARS,
        }
        .at("params")
        .into());
    }
    Ok(vec![NotificationEvent::NotificationQueued {
        notification_id: queue.notification_id,
        merchant_id: queue.merchant_id,
        kind: queue.kind,
        channel,
        template: queue.template.clone(),
        recipient,
        params: queue.params.clone(),
        attempt_limit: WHATSAPP.max_attempts,
        at: queue.at,
    }])
}

fn ensure_queued(notification: &Notification) -> Result<(), NotificationError> {
    match notification.status {
        NotificationStatus::Queued => Ok(()),
        NotificationStatus::Sent => Err(NotificationError::AlreadySent),
        NotificationStatus::Failed => Err(NotificationError::AlreadyFailed),
    }
}

#[cfg(test)]
mod tests;
