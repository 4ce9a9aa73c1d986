//! Ids derived from what a job is about, so a redelivered job issues the same commands (and the
//! log stores their effects once).

use lightspeed_domain::notification::Channel;
use lightspeed_domain::{
    GatewayId, NotificationId, PaymentId, PayoutId, RefundId, WebhookDeliveryId, WebhookEndpointId,
};
use lightspeed_eventstore::RecordedEvent;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// SHA-256 over a purpose and length-prefixed parts, so distinct inputs never collide by
/// concatenation.
fn digest(purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(purpose.as_bytes());
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// A command id (UUID v8) derived from a purpose and the ids it is about.
fn command_id(purpose: &str, parts: &[&[u8]]) -> Uuid {
    let digest = digest(purpose, parts);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The command that records the PSP order of `payment` on `gateway`: one per payment and gateway.
pub(crate) fn record_order_command(payment: PaymentId, gateway: GatewayId) -> Uuid {
    command_id(
        "record-psp-order",
        &[payment.as_uuid().as_bytes(), gateway.as_uuid().as_bytes()],
    )
}

/// The command that settles the outcome recorded by `event_id`: one per reported outcome.
pub(crate) fn settle_command(event_id: Uuid) -> Uuid {
    command_id("settle-psp-outcome", &[event_id.as_bytes()])
}

/// The command that records the PSP's first answer about `refund`: one per refund.
pub(crate) fn submit_refund_command(refund: RefundId) -> Uuid {
    command_id("submit-refund", &[refund.0.as_bytes()])
}

/// The command that records RazorpayX's refusal of `payout`: one per payout.
pub(crate) fn refused_payout_command(payout: PayoutId) -> Uuid {
    command_id("record-refused-payout", &[payout.as_uuid().as_bytes()])
}

/// The command that queues `delivery`.
pub(crate) fn queue_delivery_command(delivery: WebhookDeliveryId) -> Uuid {
    command_id("queue-webhook-delivery", &[delivery.as_uuid().as_bytes()])
}

/// The command that records the attempt owed after the delivery stream's `version`-th event: one
/// attempt record per scheduled attempt, however often its job is delivered.
pub(crate) fn record_attempt_command(delivery: WebhookDeliveryId, version: u64) -> Uuid {
    command_id(
        "record-webhook-attempt",
        &[delivery.as_uuid().as_bytes(), &version.to_be_bytes()],
    )
}

/// The command that records the attempt owed after the notification stream's `version`-th
/// event: one attempt record per owed attempt, however often its job is delivered.
pub(crate) fn record_notification_attempt_command(
    notification: NotificationId,
    version: u64,
) -> Uuid {
    command_id(
        "record-whatsapp-attempt",
        &[notification.as_uuid().as_bytes(), &version.to_be_bytes()],
    )
}

/// The notification carrying the `TXN_UPDATE` of a payment event: derived from the payment and
/// the event type, so a redelivered event names the same notification (and a late success
/// after a failure gets a message of its own).
pub fn txn_update_id(payment: PaymentId, event_type: &str) -> NotificationId {
    NotificationId(command_id(
        "txn-update-notification",
        &[payment.as_uuid().as_bytes(), event_type.as_bytes()],
    ))
}

/// The notification carrying the message a business event (`event_id`) owes the merchant on
/// `channel`: one per event and channel, however often the event's job is delivered.
pub fn merchant_message_id(event_id: Uuid, channel: Channel) -> NotificationId {
    let channel = match channel {
        Channel::Whatsapp => "whatsapp",
        Channel::Email => "email",
    };
    NotificationId(command_id(
        "merchant-message",
        &[event_id.as_bytes(), channel.as_bytes()],
    ))
}

/// The command that records the email attempt owed after the notification stream's
/// `version`-th event.
pub(crate) fn record_email_attempt_command(notification: NotificationId, version: u64) -> Uuid {
    command_id(
        "record-email-attempt",
        &[notification.as_uuid().as_bytes(), &version.to_be_bytes()],
    )
}

/// The webhook delivery of a payment event: a UUID v7 whose time is the event's and whose other
/// bits come from its id, so the same event always maps to the same delivery (and deliveries
/// still sort by time).
pub fn delivery_id_for(event: &RecordedEvent) -> WebhookDeliveryId {
    let digest = digest("webhook-delivery", &[event.event_id.as_bytes()]);
    time_ordered(event, &digest)
}

/// A UUID v7 with the event's time and the digest's first bits.
fn time_ordered(event: &RecordedEvent, digest: &[u8; 32]) -> WebhookDeliveryId {
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(event.recorded_at.timestamp_millis())
        .expect("the log records events after 1970");
    WebhookDeliveryId(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
}

/// The webhook delivery of the `webhook_type` a payment event sends besides its own (as
/// [`delivery_id_for`], with the type mixed into the derived bits).
pub fn delivery_id_of_type(event: &RecordedEvent, webhook_type: &str) -> WebhookDeliveryId {
    let digest = digest(
        "webhook-delivery-of-type",
        &[event.event_id.as_bytes(), webhook_type.as_bytes()],
    );
    time_ordered(event, &digest)
}

/// The delivery of the merchant event `event`'s `webhook_type` webhook to an endpoint other
/// than the merchant's first: derived from the event, the endpoint and the type, so a
/// redelivered event queues each endpoint's delivery once. (The first endpoint keeps
/// [`delivery_id_for`] and [`delivery_id_of_type`], the ids deliveries had before merchants had
/// several endpoints.)
pub fn delivery_id_for_endpoint(
    event: &RecordedEvent,
    endpoint: WebhookEndpointId,
    webhook_type: &str,
) -> WebhookDeliveryId {
    let digest = digest(
        "webhook-delivery-to-endpoint",
        &[
            event.event_id.as_bytes(),
            endpoint.as_uuid().as_bytes(),
            webhook_type.as_bytes(),
        ],
    );
    time_ordered(event, &digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightspeed_eventstore::{LogPosition, Metadata, StreamId};

    fn event(id: u128) -> RecordedEvent {
        RecordedEvent {
            log_position: LogPosition::START,
            event_id: Uuid::from_u128(id),
            stream_id: StreamId::parse("payment-1").expect("stream id"),
            stream_version: 1,
            event_type: "PaymentInitiated".into(),
            schema_version: 1,
            payload: lightspeed_eventstore::Payload::of(&serde_json::json!({})).expect("payload"),
            metadata: Metadata::default(),
            recorded_at: chrono::DateTime::from_timestamp_millis(1_795_000_000_123)
                .expect("instant"),
            row_hash: [0; 32],
        }
    }

    #[test]
    fn a_delivery_id_is_a_time_ordered_function_of_its_event() {
        let id = delivery_id_for(&event(7));
        assert_eq!(id, delivery_id_for(&event(7)));
        assert_ne!(id, delivery_id_for(&event(8)));
        let full = delivery_id_of_type(&event(7), "payment.refunded");
        assert_ne!(id, full);
        assert_eq!(full, delivery_id_of_type(&event(7), "payment.refunded"));
        assert_eq!(id.as_uuid().get_version_num(), 7);
        let (secs, nanos) = id
            .as_uuid()
            .get_timestamp()
            .expect("v7 timestamp")
            .to_unix();
        assert_eq!((secs, nanos / 1_000_000), (1_795_000_000, 123));
    }

    #[test]
    fn a_merchant_message_id_is_a_function_of_event_and_channel() {
        let (event, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let id = merchant_message_id(event, Channel::Whatsapp);
        assert_eq!(id, merchant_message_id(event, Channel::Whatsapp));
        assert_ne!(id, merchant_message_id(event, Channel::Email));
        assert_ne!(id, merchant_message_id(other, Channel::Whatsapp));
        assert_ne!(
            record_email_attempt_command(id, 1),
            record_notification_attempt_command(id, 1)
        );
    }

    #[test]
    fn a_transaction_update_id_is_a_function_of_payment_and_event_type() {
        let payment = PaymentId(Uuid::from_u128(1));
        let other = PaymentId(Uuid::from_u128(2));
        let id = txn_update_id(payment, "PaymentSucceeded");
        assert_eq!(id, txn_update_id(payment, "PaymentSucceeded"));
        assert_ne!(id, txn_update_id(payment, "PaymentFailed"));
        assert_ne!(id, txn_update_id(other, "PaymentSucceeded"));
        assert_ne!(
            record_notification_attempt_command(id, 1),
            record_notification_attempt_command(id, 2)
        );
    }

    #[test]
    fn command_ids_depend_on_every_input() {
        let payment = PaymentId(Uuid::from_u128(1));
        let gateway = GatewayId(Uuid::from_u128(2));
        let other = GatewayId(Uuid::from_u128(3));
        assert_eq!(
            record_order_command(payment, gateway),
            record_order_command(payment, gateway)
        );
        assert_ne!(
            record_order_command(payment, gateway),
            record_order_command(payment, other)
        );
        let delivery = WebhookDeliveryId(Uuid::from_u128(4));
        assert_ne!(
            record_attempt_command(delivery, 1),
            record_attempt_command(delivery, 3)
        );
        assert_ne!(
            settle_command(Uuid::from_u128(4)),
            queue_delivery_command(delivery)
        );
    }
}
