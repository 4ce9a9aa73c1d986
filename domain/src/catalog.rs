//! The catalogue of stream categories and event types, for subscriptions, subjects and checks.
//!
//! Event type names are unique across the whole crate: the relay publishes each event on the
//! NATS subject `ledger.<category>.<EventType>`, so both are subject tokens (`[A-Za-z0-9_]`).

use crate::claims::{
    ClientKeyClaim, ClientKeyEvent, MerchantOrderClaim, MerchantOrderEvent, MerchantRefundClaim,
    MerchantRefundEvent, RefundLocator, RefundLocatorEvent,
};
use crate::decider::Decider;
use crate::gateway::{Gateway, GatewayEvent};
use crate::invoice::{InvoiceSeries, InvoiceSeriesEvent, MerchantInvoices, MerchantInvoicesEvent};
use crate::merchant::{Merchant, MerchantEvent};
use crate::merchant_alerts::{MerchantAlerts, MerchantAlertsEvent};
use crate::notification::{Notification, NotificationEvent};
use crate::ops_alert::{OpsAlert, OpsAlertEvent};
use crate::payment::{Payment, PaymentEvent};
use crate::person::{Person, PersonEvent};
use crate::psp_outcome::{PspOutcomeEvent, PspOutcomeRecord};
use crate::queue::{Queue, QueueEvent};
use crate::quota::{MerchantQuota, QuotaEvent, QuotaUsage, UsageEvent};
use crate::wallet::{Wallet, WalletEvent};
use crate::webhook_delivery::{WebhookDelivery, WebhookDeliveryEvent};

/// One stream category and the event types its streams record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Category {
    /// The category, e.g. `"payment"`; streams are named `<category>-<id>`.
    pub name: &'static str,
    /// Every event type recorded on streams of this category.
    pub event_types: &'static [&'static str],
}

/// Every stream category of the ledger.
pub const CATEGORIES: &[Category] = &[
    Category {
        name: <Merchant as Decider>::CATEGORY,
        event_types: MerchantEvent::EVENT_TYPES,
    },
    Category {
        name: <Gateway as Decider>::CATEGORY,
        event_types: GatewayEvent::EVENT_TYPES,
    },
    Category {
        name: <Payment as Decider>::CATEGORY,
        event_types: PaymentEvent::EVENT_TYPES,
    },
    Category {
        name: <Wallet as Decider>::CATEGORY,
        event_types: WalletEvent::EVENT_TYPES,
    },
    Category {
        name: <MerchantAlerts as Decider>::CATEGORY,
        event_types: MerchantAlertsEvent::EVENT_TYPES,
    },
    Category {
        name: <Notification as Decider>::CATEGORY,
        event_types: NotificationEvent::EVENT_TYPES,
    },
    Category {
        name: <WebhookDelivery as Decider>::CATEGORY,
        event_types: WebhookDeliveryEvent::EVENT_TYPES,
    },
    Category {
        name: <ClientKeyClaim as Decider>::CATEGORY,
        event_types: ClientKeyEvent::EVENT_TYPES,
    },
    Category {
        name: <MerchantOrderClaim as Decider>::CATEGORY,
        event_types: MerchantOrderEvent::EVENT_TYPES,
    },
    Category {
        name: <MerchantRefundClaim as Decider>::CATEGORY,
        event_types: MerchantRefundEvent::EVENT_TYPES,
    },
    Category {
        name: <RefundLocator as Decider>::CATEGORY,
        event_types: RefundLocatorEvent::EVENT_TYPES,
    },
    Category {
        name: <PspOutcomeRecord as Decider>::CATEGORY,
        event_types: PspOutcomeEvent::EVENT_TYPES,
    },
    Category {
        name: <Queue as Decider>::CATEGORY,
        event_types: QueueEvent::EVENT_TYPES,
    },
    Category {
        name: <OpsAlert as Decider>::CATEGORY,
        event_types: OpsAlertEvent::EVENT_TYPES,
    },
    Category {
        name: <Person as Decider>::CATEGORY,
        event_types: PersonEvent::EVENT_TYPES,
    },
    Category {
        name: <MerchantQuota as Decider>::CATEGORY,
        event_types: QuotaEvent::EVENT_TYPES,
    },
    Category {
        name: <QuotaUsage as Decider>::CATEGORY,
        event_types: UsageEvent::EVENT_TYPES,
    },
    Category {
        name: <InvoiceSeries as Decider>::CATEGORY,
        event_types: InvoiceSeriesEvent::EVENT_TYPES,
    },
    Category {
        name: <MerchantInvoices as Decider>::CATEGORY,
        event_types: MerchantInvoicesEvent::EVENT_TYPES,
    },
];

/// The category that records `event_type`, if any.
pub fn category_of(event_type: &str) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .find(|category| category.event_types.contains(&event_type))
        .map(|category| category.name)
}

#[cfg(test)]
mod tests;
