//! What the live feeds carry: [`Topic`]s and the typed [`LiveItem`]s a page shows.

use chrono::{DateTime, Utc};
use lightspeed_domain::{Currency, GatewayId, MerchantId, Paise};
use serde::Serialize;

/// A live feed a page may follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Payments initiated and changing status.
    Transactions,
    /// Gateways registered, toggled, resting after a failure, recovered, retired.
    GatewayHealth,
    /// Work queue depths and pauses, sampled.
    QueueStats,
    /// Ops alerts raised and resolved.
    Alerts,
    /// How far each projection and the relay are behind the log, sampled.
    ProjectionLag,
}

impl Topic {
    /// Every topic, in display order.
    pub const ALL: [Topic; 5] = [
        Topic::Transactions,
        Topic::GatewayHealth,
        Topic::QueueStats,
        Topic::Alerts,
        Topic::ProjectionLag,
    ];

    /// The topic's name in URLs and SSE event names.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Transactions => "transactions",
            Topic::GatewayHealth => "gateway_health",
            Topic::QueueStats => "queue_stats",
            Topic::Alerts => "alerts",
            Topic::ProjectionLag => "projection_lag",
        }
    }

    /// The topic named `name`, if any.
    pub fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|topic| topic.as_str() == name)
    }

    /// Its position in [`Topic::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One thing a live page shows, typed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LiveItem {
    /// A payment was initiated or changed.
    Payment(PaymentItem),
    /// A gateway's health changed.
    GatewayHealth(GatewayItem),
    /// The work queues as last sampled (sent when any figure changed).
    QueueStats(QueueStatsItem),
    /// An ops alert was raised or resolved.
    Alert(AlertItem),
    /// Projection and relay lag as last sampled (sent when any figure changed).
    ProjectionLag(ProjectionLagItem),
    /// The page missed items the hub no longer holds (or holds from another process): it
    /// should reload to show the present.
    Reset,
}

impl LiveItem {
    /// The topic that carries it; `None` for [`LiveItem::Reset`], which belongs to every topic.
    pub fn topic(&self) -> Option<Topic> {
        match self {
            LiveItem::Payment(_) => Some(Topic::Transactions),
            LiveItem::GatewayHealth(_) => Some(Topic::GatewayHealth),
            LiveItem::QueueStats(_) => Some(Topic::QueueStats),
            LiveItem::Alert(_) => Some(Topic::Alerts),
            LiveItem::ProjectionLag(_) => Some(Topic::ProjectionLag),
            LiveItem::Reset => None,
        }
    }

    /// A short name of its kind, used as the SSE event name by the JSON renderer.
    pub fn kind(&self) -> &'static str {
        match self {
            LiveItem::Payment(_) => "payment",
            LiveItem::GatewayHealth(_) => "gateway_health",
            LiveItem::QueueStats(_) => "queue_stats",
            LiveItem::Alert(_) => "alert",
            LiveItem::ProjectionLag(_) => "projection_lag",
            LiveItem::Reset => "reset",
        }
    }
}

/// A payment's change, as the transactions feed shows it (no payer details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentItem {
    /// The payment (the API's transaction id).
    pub payment_id: String,
    /// What happened.
    pub change: PaymentChange,
    /// When it was decided.
    pub at: DateTime<Utc>,
}

/// What happened to a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum PaymentChange {
    /// Initiated and routed: status `created`.
    Initiated {
        /// The merchant.
        merchant_id: MerchantId,
        /// Amount in paise.
        amount: Paise,
        /// Currency.
        currency: Currency,
        /// The merchant's order id.
        merchant_order_id: String,
        /// The gateway booked.
        gateway_id: GatewayId,
    },
    /// The PSP order exists: status `pending`.
    PspOrderCreated {
        /// The gateway.
        gateway_id: GatewayId,
    },
    /// Moved to another gateway.
    Rerouted {
        /// The gateway now booked.
        to_gateway: GatewayId,
        /// Which attempt this starts.
        attempt: u32,
    },
    /// Paid: status `succeeded`.
    Succeeded {
        /// Amount paid.
        amount: Paise,
        /// Commission decided.
        commission: Paise,
    },
    /// Failed: status `failed`.
    Failed {
        /// PSP or internal error code.
        code: String,
    },
    /// A refund was requested.
    RefundRequested {
        /// Its amount.
        amount: Paise,
    },
    /// A refund succeeded.
    Refunded {
        /// Its amount.
        amount: Paise,
        /// Refunded so far, this one included.
        refunded_total: Paise,
    },
    /// A refund failed.
    RefundFailed {
        /// Its amount.
        amount: Paise,
        /// The error code.
        code: String,
    },
}

/// A gateway's health change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayItem {
    /// The gateway.
    pub gateway_id: String,
    /// What happened.
    pub change: GatewayChange,
    /// When it was decided.
    pub at: DateTime<Utc>,
}

/// What happened to a gateway's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum GatewayChange {
    /// Registered.
    Registered {
        /// The merchant who owns it.
        merchant_id: MerchantId,
        /// The merchant's name for it.
        label: String,
        /// Whether it started on.
        enabled: bool,
    },
    /// Turned on or off.
    Toggled {
        /// On (true) or off (false).
        enabled: bool,
    },
    /// Failed; rests until `until`.
    TemporarilyFailed {
        /// What went wrong.
        reason: String,
        /// When it is eligible again.
        until: DateTime<Utc>,
    },
    /// A rest ended early.
    Recovered,
    /// Retired for good.
    Retired,
}

/// Every work queue as sampled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStatsItem {
    /// One entry per queue, in display order.
    pub queues: Vec<QueueStat>,
    /// When sampled.
    pub at: DateTime<Utc>,
}

/// One queue's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStat {
    /// The queue.
    pub queue: String,
    /// Jobs waiting.
    pub waiting: u64,
    /// Jobs running.
    pub active: u64,
    /// Jobs given up on and kept for a retry.
    pub failed: u64,
    /// Whether workers are paused on it.
    pub paused: bool,
}

/// An ops alert change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertItem {
    /// The alert's key (its stream id).
    pub key: String,
    /// `payment_failed` or `whatsapp_failure_rate`; `None` on a resolution.
    pub alert_kind: Option<String>,
    /// Whether it fires after this change.
    pub firing: bool,
    /// For people.
    pub summary: String,
    /// When it was decided.
    pub at: DateTime<Utc>,
}

/// Projection and relay lag as sampled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectionLagItem {
    /// Each active projection's lag.
    pub projections: Vec<ProjectionLag>,
    /// Events the relay has not published yet, when measured.
    pub relay_events: Option<i64>,
    /// How long the oldest of them has waited, in milliseconds, when measured.
    pub relay_ms: Option<i64>,
    /// When sampled.
    pub at: DateTime<Utc>,
}

/// One projection's lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectionLag {
    /// The projection.
    pub projection: String,
    /// Its active version.
    pub version: i32,
    /// Events not applied yet.
    pub lag_events: i64,
    /// How long the oldest of them has waited, in milliseconds.
    pub lag_ms: i64,
}
