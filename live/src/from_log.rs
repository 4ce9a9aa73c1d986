//! Which events of the log the live feeds show, and the item each one becomes.

use lightspeed_domain::gateway::GatewayEvent;
use lightspeed_domain::ops_alert::OpsAlertEvent;
use lightspeed_domain::payment::PaymentEvent;
use lightspeed_eventstore::RecordedEvent;

use crate::item::{AlertItem, GatewayChange, GatewayItem, LiveItem, PaymentChange, PaymentItem};

/// Event types of gateway streams that change its health; bookings and settings do not.
const GATEWAY_HEALTH_EVENTS: [&str; 5] = [
    "GatewayRegistered",
    "GatewayToggled",
    "GatewayTemporarilyFailed",
    "GatewayRecovered",
    "GatewayRetired",
];

/// Whether an event of `category` and `event_type` may become an item, told from its subject
/// alone so that the others are never decoded.
pub(crate) fn shown(category: &str, event_type: &str) -> bool {
    match category {
        "payment" | "ops_alert" => true,
        "gateway" => GATEWAY_HEALTH_EVENTS.contains(&event_type),
        _ => false,
    }
}

/// The item an event of the log becomes, if the feeds show it (an event that does not decode
/// is logged and skipped: a live page is no place to stop for it).
pub(crate) fn item_of(event: &RecordedEvent) -> Option<LiveItem> {
    let id = event.stream_id.id().to_owned();
    let decoded = match event.stream_id.category() {
        "payment" => event.decode().map(|e| payment(id, e)),
        "gateway" => event.decode().map(|e| gateway(id, e)),
        "ops_alert" => event.decode().map(|e| alert(id, e)),
        _ => return None,
    };
    decoded.unwrap_or_else(|e| {
        tracing::warn!(event_id = %event.event_id, error = %e, "live feed skips an undecodable event");
        None
    })
}

fn payment(payment_id: String, event: PaymentEvent) -> Option<LiveItem> {
    let at = event.at();
    let change = match event {
        PaymentEvent::PaymentInitiated {
            merchant_id,
            amount,
            currency,
            merchant_order_id,
            gateway_id,
            ..
        } => PaymentChange::Initiated {
            merchant_id,
            amount,
            currency,
            merchant_order_id,
            gateway_id,
        },
        PaymentEvent::PspOrderCreated { gateway_id, .. } => {
            PaymentChange::PspOrderCreated { gateway_id }
        }
        PaymentEvent::PaymentRerouted {
            to_gateway,
            attempt,
            ..
        } => PaymentChange::Rerouted {
            to_gateway,
            attempt,
        },
        PaymentEvent::PaymentSucceeded {
            amount, commission, ..
        } => PaymentChange::Succeeded { amount, commission },
        PaymentEvent::PaymentFailed { code, .. } => PaymentChange::Failed { code },
        PaymentEvent::RefundRequested { amount, .. } => PaymentChange::RefundRequested { amount },
        PaymentEvent::PaymentRefunded {
            amount,
            refunded_total,
            ..
        } => PaymentChange::Refunded {
            amount,
            refunded_total,
        },
        PaymentEvent::RefundFailed { amount, code, .. } => {
            PaymentChange::RefundFailed { amount, code }
        }
        PaymentEvent::RefundSubmitted { .. } => return None,
    };
    Some(LiveItem::Payment(PaymentItem {
        payment_id,
        change,
        at,
    }))
}

fn gateway(gateway_id: String, event: GatewayEvent) -> Option<LiveItem> {
    let at = event.at();
    let change = match event {
        GatewayEvent::GatewayRegistered {
            merchant_id,
            label,
            enabled,
            ..
        } => GatewayChange::Registered {
            merchant_id,
            label,
            enabled,
        },
        GatewayEvent::GatewayToggled { enabled, .. } => GatewayChange::Toggled { enabled },
        GatewayEvent::GatewayTemporarilyFailed { reason, until, .. } => {
            GatewayChange::TemporarilyFailed { reason, until }
        }
        GatewayEvent::GatewayRecovered { .. } => GatewayChange::Recovered,
        GatewayEvent::GatewayRetired { .. } => GatewayChange::Retired,
        _ => return None,
    };
    Some(LiveItem::GatewayHealth(GatewayItem {
        gateway_id,
        change,
        at,
    }))
}

fn alert(key: String, event: OpsAlertEvent) -> Option<LiveItem> {
    let at = event.at();
    let item = match event {
        OpsAlertEvent::OpsAlertRaised { kind, summary, .. } => AlertItem {
            key,
            alert_kind: Some(kind.as_str().to_owned()),
            firing: true,
            summary,
            at,
        },
        OpsAlertEvent::OpsAlertResolved { summary, .. } => AlertItem {
            key,
            alert_kind: None,
            firing: false,
            summary,
            at,
        },
        // An acknowledgement changes no alert's firing.
        OpsAlertEvent::OpsAlertAcknowledged { .. } => return None,
    };
    Some(LiveItem::Alert(item))
}
