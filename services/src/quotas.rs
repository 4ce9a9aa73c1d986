//! Merchant quotas in the log: the caps admins set, what a merchant used of them, and the
//! notifications (WhatsApp, email) queued when a cap reaches 80 % or 100 %. Admission itself is part of the
//! initiation's append (`payments/initiate.rs`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lightspeed_domain::calendar::IST;
use lightspeed_domain::merchant::Merchant;
use lightspeed_domain::notification::{
    Channel, NotificationCommand, NotificationType, QueueNotification, email_messages,
};
use lightspeed_domain::quota::{
    MerchantQuota, QuotaCaps, QuotaCommand, QuotaKind, QuotaUsage, UsageEvent, resets_at,
    usage_stream_key,
};
use lightspeed_domain::{MerchantId, Notification, NotificationId};
use lightspeed_eventstore::{CommandContext, Loaded, StreamId, stream_of};

use crate::error::ServiceError;
use crate::ledger::Ledger;
use crate::unit_of_work::UnitOfWork;

/// The WhatsApp template of quota notifications unless [`Ledger::with_quota_template`] names
/// another. Parameters: company name, cap (e.g. `daily payments`), percent reached, used of
/// the cap, and when the period resets (IST).
pub const DEFAULT_QUOTA_TEMPLATE: &str = "quota_alert";

/// One cap and its use in the current period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaUse {
    /// Which cap.
    pub quota: QuotaKind,
    /// The cap (a count, or paise), if set.
    pub limit: Option<i64>,
    /// Used in the current period (a count, or paise).
    pub used: i64,
    /// When the current period resets.
    pub resets_at: DateTime<Utc>,
}

/// A merchant's caps and what it used of them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaStatus {
    /// The caps in force.
    pub caps: QuotaCaps,
    /// When they were last changed.
    pub set_at: Option<DateTime<Utc>>,
    /// Each cap's use, daily ones first.
    pub usage: Vec<QuotaUse>,
}

impl Ledger {
    /// Names the WhatsApp template quota notifications are sent with.
    pub fn with_quota_template(mut self, template: &str) -> Self {
        self.quota_template = Arc::from(template);
        self
    }

    /// Replaces a merchant's quota caps (`None` lifts a cap); they apply to initiations decided
    /// from the next one on.
    pub async fn set_quota(
        &self,
        merchant_id: MerchantId,
        caps: QuotaCaps,
        context: &CommandContext,
    ) -> Result<QuotaStatus, ServiceError> {
        self.merchant(merchant_id).await?;
        let stream = stream_of::<MerchantQuota>(merchant_id)?;
        let command = QuotaCommand::SetCaps {
            merchant_id,
            caps,
            at: self.now(),
        };
        self.quotas.execute(&stream, &command, context).await?;
        self.quota_status(merchant_id).await
    }

    /// A merchant's caps and what it used of each in the current IST day and month, read from
    /// the log.
    pub async fn quota_status(&self, merchant_id: MerchantId) -> Result<QuotaStatus, ServiceError> {
        self.merchant(merchant_id).await?;
        let quota = self
            .quotas
            .load(&stream_of::<MerchantQuota>(merchant_id)?)
            .await?
            .state;
        let now = self.now();
        let usage = self
            .quota_usage
            .load(&usage_stream(merchant_id, now)?)
            .await?
            .state;
        let caps = quota.caps();
        let order = [
            QuotaKind::DailyCount,
            QuotaKind::DailyVolume,
            QuotaKind::MonthlyCount,
            QuotaKind::MonthlyVolume,
        ];
        Ok(QuotaStatus {
            caps,
            set_at: quota.set_at(),
            usage: order
                .into_iter()
                .map(|kind| QuotaUse {
                    quota: kind,
                    limit: caps.limit(kind),
                    used: usage.used(kind, now),
                    resets_at: resets_at(kind, now),
                })
                .collect(),
        })
    }

    /// The usage stream `at` counts on, at its version: from memory when this process read or
    /// appended it before and `from_memory` (a stale one fails the append, which decides again
    /// without it), else read from the log.
    pub(crate) async fn usage_at(
        &self,
        stream: &StreamId,
        from_memory: bool,
    ) -> Result<Loaded<QuotaUsage>, ServiceError> {
        self.quota_usage.warm(std::slice::from_ref(stream)).await?;
        if from_memory {
            let (cached, confirmed) = self
                .quota_usage
                .cached_within(stream, std::time::Duration::MAX);
            if confirmed {
                return Ok(cached);
            }
        }
        Ok(self.quota_usage.load(stream).await?)
    }

    /// Queues, in `unit`, a notification for each threshold `events` record, by WhatsApp and by
    /// email to a merchant who opted in to account-status messages on each.
    pub(crate) fn queue_quota_notifications(
        &self,
        unit: &mut UnitOfWork,
        merchant: &Merchant,
        events: &[UsageEvent],
    ) -> Result<(), ServiceError> {
        let recipients = merchant.recipients_for(NotificationType::AccountStatus);
        if recipients.is_empty() {
            return Ok(());
        }
        for event in events {
            let UsageEvent::QuotaThresholdReached {
                quota,
                percent,
                limit,
                used,
                resets_at,
                at,
                ..
            } = event
            else {
                continue;
            };
            let params = vec![
                merchant.company_name().to_owned(),
                quota_label(*quota).to_owned(),
                format!("{percent}%"),
                amount_text(*quota, *used, *limit),
                resets_at
                    .with_timezone(&IST)
                    .format("%d %b %Y %H:%M IST")
                    .to_string(),
            ];
            for &(channel, recipient) in &recipients {
                let template = match channel {
                    Channel::Whatsapp => self.quota_template.to_string(),
                    Channel::Email => email_messages::QUOTA_ALERT.to_owned(),
                };
                let notification_id = NotificationId::new();
                let queue = NotificationCommand::queue_on(
                    channel,
                    QueueNotification {
                        notification_id,
                        merchant_id: merchant.id(),
                        kind: NotificationType::AccountStatus,
                        template,
                        recipient: recipient.to_owned(),
                        params: params.clone(),
                        at: *at,
                    },
                );
                unit.decide(
                    &self.notifications,
                    &stream_of::<Notification>(notification_id)?,
                    &Loaded::default(),
                    &queue,
                )?;
            }
        }
        Ok(())
    }
}

/// The usage stream of `merchant` in the IST month of `at`.
pub(crate) fn usage_stream(
    merchant: MerchantId,
    at: DateTime<Utc>,
) -> Result<StreamId, ServiceError> {
    Ok(stream_of::<QuotaUsage>(usage_stream_key(merchant, at))?)
}

/// A cap in words, for the merchant's message.
fn quota_label(kind: QuotaKind) -> &'static str {
    match kind {
        QuotaKind::DailyCount => "daily payments",
        QuotaKind::DailyVolume => "daily volume",
        QuotaKind::MonthlyCount => "monthly payments",
        QuotaKind::MonthlyVolume => "monthly volume",
    }
}

/// `used of limit`, in payments or rupees.
fn amount_text(kind: QuotaKind, used: i64, limit: i64) -> String {
    if kind.is_count() {
        format!("{used} of {limit}")
    } else {
        use lightspeed_domain::Paise;
        format!("₹{} of ₹{}", Paise(used), Paise(limit))
    }
}
