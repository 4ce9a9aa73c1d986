//! Merchant notifications (WhatsApp and email) in the log: queueing one, the low-balance alert
//! with its cool-down, and the resend ops ask for. Sending is the workers' business; this is only the log.

use lightspeed_domain::merchant_alerts::{MerchantAlertsCommand, MerchantAlertsError};
use lightspeed_domain::notification::{
    Channel, NotificationCommand, NotificationError, NotificationType, QueueNotification,
    email_messages,
};
use lightspeed_domain::{MerchantAlerts, MerchantId, Notification, NotificationId, Wallet};
use lightspeed_eventstore::{AppendError, CommandContext, CommandError, Loaded, stream_of};

use crate::error::ServiceError;
use crate::ledger::{Ledger, MAX_ATTEMPTS};
use crate::unit_of_work::UnitOfWork;

/// What the watcher's look at one merchant came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LowBalanceAlert {
    /// This call raised the alert and queued its notification.
    Queued(NotificationId),
    /// The balance due is below the warn threshold.
    BelowThreshold,
    /// An alert was raised less than 6 hours ago (here or by another replica).
    CoolingDown,
    /// The merchant opted in to `LOW_BALANCE` on no channel (WhatsApp or email).
    NotOptedIn,
}

impl Ledger {
    /// Queues a WhatsApp notification; with a `command_id` in `context`, queueing it again (a
    /// redelivered job) stores nothing new. `false` when it was already queued.
    pub async fn queue_notification(
        &self,
        queue: QueueNotification,
        context: &CommandContext,
    ) -> Result<bool, ServiceError> {
        self.queue_notification_on(Channel::Whatsapp, queue, context)
            .await
    }

    /// Queues a notification on `channel`; `false` when it was already queued (the same id).
    pub async fn queue_notification_on(
        &self,
        channel: Channel,
        queue: QueueNotification,
        context: &CommandContext,
    ) -> Result<bool, ServiceError> {
        let stream = stream_of::<Notification>(queue.notification_id)?;
        let command = NotificationCommand::queue_on(channel, queue);
        match self.notifications.execute(&stream, &command, context).await {
            Ok(executed) => Ok(!executed.idempotent_replay),
            Err(CommandError::Rejected(NotificationError::AlreadyQueued)) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// The notification, if it was ever queued.
    pub async fn notification(
        &self,
        notification_id: NotificationId,
    ) -> Result<Option<Notification>, ServiceError> {
        let stream = stream_of::<Notification>(notification_id)?;
        Ok(self.notifications.load(&stream).await?.state)
    }

    /// Queues a failed notification again with a fresh attempt budget (ops' resend).
    pub async fn resend_notification(
        &self,
        notification_id: NotificationId,
        context: &CommandContext,
    ) -> Result<Notification, ServiceError> {
        let stream = stream_of::<Notification>(notification_id)?;
        let resend = NotificationCommand::Resend { at: self.now() };
        match self.notifications.execute(&stream, &resend, context).await {
            Ok(executed) => executed
                .state
                .ok_or(ServiceError::UnknownNotification(notification_id)),
            Err(CommandError::Rejected(NotificationError::NotQueued)) => {
                Err(ServiceError::UnknownNotification(notification_id))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Raises a `LOW_BALANCE` alert for the merchant if its balance due (folded from its wallet
    /// stream, whatever any read model says) is at or above its warn threshold, it opted in, and
    /// no alert was raised in the last 6 hours; the alert and its notifications (WhatsApp with
    /// `template`, email with the low-balance message; parameters: company name and balance
    /// due in rupees) are appended atomically. The alert names the first notification.
    ///
    /// The alerts stream is appended at the version it was decided on, so of several watchers
    /// deciding at once exactly one appends; the others decide again and find the cool-down.
    pub async fn raise_low_balance_alert(
        &self,
        merchant_id: MerchantId,
        template: &str,
        context: &CommandContext,
    ) -> Result<LowBalanceAlert, ServiceError> {
        let alerts_stream = stream_of::<MerchantAlerts>(merchant_id)?;
        let wallet_stream = stream_of::<Wallet>(merchant_id)?;
        for _ in 0..MAX_ATTEMPTS {
            let merchant = self.merchant(merchant_id).await?;
            let recipients: Vec<(Channel, &str, NotificationId)> = merchant
                .recipients_for(NotificationType::LowBalance)
                .into_iter()
                .map(|(channel, recipient)| (channel, recipient, NotificationId::new()))
                .collect();
            let Some(&(_, _, notification_id)) = recipients.first() else {
                return Ok(LowBalanceAlert::NotOptedIn);
            };
            let balance_due = self.wallets.load(&wallet_stream).await?.state.balance_due();
            let alerts = self.merchant_alerts.load(&alerts_stream).await?;
            let at = self.now();
            let mut unit = UnitOfWork::new(context.clone());
            let raise = MerchantAlertsCommand::RaiseLowBalanceAlert {
                notification_id,
                balance_due,
                warn_at: merchant.thresholds().warn_at,
                at,
            };
            match unit.decide(&self.merchant_alerts, &alerts_stream, &alerts, &raise) {
                Ok(_) => {}
                Err(MerchantAlertsError::BelowWarnThreshold { .. }) => {
                    return Ok(LowBalanceAlert::BelowThreshold);
                }
                Err(MerchantAlertsError::CoolingDown { .. }) => {
                    return Ok(LowBalanceAlert::CoolingDown);
                }
            }
            let params = vec![
                merchant.company_name().to_owned(),
                format!("₹{balance_due}"),
            ];
            for &(channel, recipient, id) in &recipients {
                let queue = NotificationCommand::queue_on(
                    channel,
                    QueueNotification {
                        notification_id: id,
                        merchant_id,
                        kind: NotificationType::LowBalance,
                        template: match channel {
                            Channel::Whatsapp => template.to_owned(),
                            Channel::Email => email_messages::LOW_BALANCE.to_owned(),
                        },
                        recipient: recipient.to_owned(),
                        params: params.clone(),
                        at,
                    },
                );
                unit.decide(
                    &self.notifications,
                    &stream_of::<Notification>(id)?,
                    &Loaded::default(),
                    &queue,
                )?;
            }
            match unit.commit(&self.store).await {
                Ok(_) => return Ok(LowBalanceAlert::Queued(notification_id)),
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contended)
    }
}
