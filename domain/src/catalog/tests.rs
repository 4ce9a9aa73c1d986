use super::*;
use crate::access::Role;
use crate::checkout_settings::CheckoutSettings;
use crate::decider::{DomainEvent, decode, decode_raw, encode};
use crate::gateway::GatewaySettings;
use crate::merchant::{ClientKey, EmailContact, EmailOptIns, WhatsappContact, WhatsappOptIns};
use crate::money::{BasisPoints, Currency, Paise};
use crate::notification::{Channel, NotificationType};
use crate::ops_alert::AlertKind;
use crate::payment::refunds::RefundCommission;
use crate::provider::Provider;
use crate::standing::Thresholds;
use crate::testing::fixtures::{
    delivery_id, gateway_id, merchant_id, notification_id, payment_id, payout_id, refund_id, sealed,
};
use crate::testing::t;
use crate::wallet::PayoutReversalReason;
use std::collections::BTreeSet;
use std::fmt::Debug;

/// Every sample round-trips through `encode`/`decode`, and the samples cover `event_types`
/// exactly (so a new variant without a sample fails here).
fn round_trips<E: DomainEvent + PartialEq + Debug>(event_types: &[&str], samples: &[E]) {
    let sampled: BTreeSet<&str> = samples.iter().map(DomainEvent::event_type).collect();
    let declared: BTreeSet<&str> = event_types.iter().copied().collect();
    assert_eq!(sampled, declared, "one sample per event type");
    assert_eq!(declared.len(), event_types.len(), "no type declared twice");
    for event in samples {
        let (event_type, schema_version, payload) = encode(event).expect("encodes");
        assert_eq!(event_type, event.event_type());
        assert_eq!(schema_version, 1);
        assert!(payload.is_object(), "{event_type} payload is a JSON object");
        let tagged = serde_json::to_value(event).expect("serialises");
        assert_eq!(
            tagged["type"], event_type,
            "the serde tag is the stored type name"
        );
        let decoded: E = decode(event_type, schema_version, &payload).expect("decodes");
        assert_eq!(&decoded, event);
        let text = serde_json::value::to_raw_value(&payload).expect("payload text");
        let decoded: E = decode_raw(event_type, schema_version, &text).expect("decodes its text");
        assert_eq!(&decoded, event, "{event_type} decodes from its text alike");
    }
}

#[test]
fn merchant_events_round_trip() {
    let settings = CheckoutSettings::default();
    round_trips(
        MerchantEvent::EVENT_TYPES,
        &[
            MerchantEvent::MerchantOnboarded {
                merchant_id: merchant_id(),
                company_name: "Acme".to_owned(),
                webhook_url: Some("https://acme.example/hooks".to_owned()),
                whatsapp: Some(WhatsappContact {
                    number: "919867800451".to_owned(),
                    opt_ins: WhatsappOptIns {
                        low_balance: true,
                        ..WhatsappOptIns::default()
                    },
                }),
                client_key: ClientKey::parse("ck_0123456789abcdef").expect("valid"),
                client_salt: sealed("salt"),
                webhook_secret: sealed("whsec"),
                fee: BasisPoints::DEFAULT_FEE,
                thresholds: Thresholds::default(),
                checkout: settings,
                at: t(0),
            },
            MerchantEvent::MerchantProfileUpdated {
                company_name: "Acme".to_owned(),
                webhook_url: None,
                at: t(1),
            },
            MerchantEvent::MerchantWhatsappContactChanged {
                contact: None,
                at: t(1),
            },
            MerchantEvent::MerchantKeysRotated {
                client_key: ClientKey::parse("ck_fedcba9876543210").expect("valid"),
                client_salt: sealed("salt2"),
                at: t(1),
            },
            MerchantEvent::MerchantFeeChanged {
                from: BasisPoints(350),
                to: BasisPoints(200),
                at: t(1),
            },
            MerchantEvent::MerchantThresholdsChanged {
                thresholds: Thresholds::default(),
                at: t(1),
            },
            MerchantEvent::MerchantCheckoutSettingsChanged { settings, at: t(1) },
            MerchantEvent::MerchantWebhookSecretRotated {
                secret: sealed("whsec2"),
                previous_valid_until: t(86_400),
                at: t(1),
            },
            MerchantEvent::MerchantWebhookEndpointDisabled {
                failing_since: t(0),
                at: t(1),
            },
            MerchantEvent::MerchantWebhookEndpointEnabled { at: t(1) },
            MerchantEvent::MerchantGatewayAttached {
                gateway_id: gateway_id(1),
                at: t(1),
            },
            MerchantEvent::MerchantGatewayDetached {
                gateway_id: gateway_id(1),
                at: t(1),
            },
            MerchantEvent::MerchantSuspended {
                reason: "review".to_owned(),
                at: t(1),
            },
            MerchantEvent::MerchantReactivated { at: t(1) },
            MerchantEvent::MerchantClosed {
                reason: "churned".to_owned(),
                at: t(1),
            },
            MerchantEvent::MerchantApiRateLimitChanged {
                per_minute: Some(500),
                at: t(1),
            },
            MerchantEvent::MerchantEmailContactChanged {
                contact: Some(EmailContact {
                    address: "ops@acme.example".to_owned(),
                    opt_ins: EmailOptIns {
                        account_status: true,
                        ..EmailOptIns::default()
                    },
                }),
                at: t(1),
            },
            MerchantEvent::MerchantRefundCommissionChanged {
                from: RefundCommission::Retain,
                to: RefundCommission::ReverseProportional,
                at: t(1),
            },
            MerchantEvent::MerchantSecretsResealed {
                client_salt: sealed("salt3"),
                webhook_secret: sealed("whsec3"),
                previous_webhook_secret: Some(sealed("whsec4")),
                at: t(1),
            },
            MerchantEvent::WebhookEndpointAdded {
                endpoint_id: crate::WebhookEndpointId(uuid::Uuid::from_u128(7)),
                url: "https://acme.example/orders".to_owned(),
                description: "orders".to_owned(),
                event_types: crate::merchant::EventFilter::parse(&["payment.*".to_owned()])
                    .expect("a filter"),
                secret: sealed("whsec5"),
                at: t(1),
            },
            MerchantEvent::WebhookEndpointUpdated {
                endpoint_id: crate::WebhookEndpointId(uuid::Uuid::from_u128(7)),
                url: "https://acme.example/orders".to_owned(),
                description: String::new(),
                enabled: false,
                event_types: crate::merchant::EventFilter::everything(),
                at: t(1),
            },
            MerchantEvent::WebhookEndpointRemoved {
                endpoint_id: crate::WebhookEndpointId(uuid::Uuid::from_u128(7)),
                at: t(1),
            },
            MerchantEvent::WebhookEndpointSecretRotated {
                endpoint_id: crate::WebhookEndpointId(uuid::Uuid::from_u128(7)),
                secret: sealed("whsec6"),
                previous_valid_until: t(2),
                at: t(1),
            },
            MerchantEvent::WebhookEndpointDisabled {
                endpoint_id: crate::WebhookEndpointId(uuid::Uuid::from_u128(7)),
                failing_since: t(0),
                at: t(1),
            },
            MerchantEvent::WebhookEndpointEnabled {
                endpoint_id: crate::WebhookEndpointId(uuid::Uuid::from_u128(7)),
                at: t(1),
            },
            MerchantEvent::WebhookEndpointSecretResealed {
                endpoint_id: crate::WebhookEndpointId(uuid::Uuid::from_u128(7)),
                secret: sealed("whsec7"),
                previous_secret: Some(sealed("whsec8")),
                at: t(1),
            },
        ],
    );
}

#[test]
fn gateway_events_round_trip() {
    round_trips(
        GatewayEvent::EVENT_TYPES,
        &[
            GatewayEvent::GatewayRegistered {
                gateway_id: gateway_id(1),
                merchant_id: merchant_id(),
                provider: Provider::Cashfree,
                label: "CF".to_owned(),
                credentials: sealed("creds"),
                settings: GatewaySettings {
                    priority: 3,
                    monthly_limit: Some(Paise(1)),
                    rpm_cap: Some(1),
                },
                enabled: true,
                at: t(0),
            },
            GatewayEvent::GatewaySettingsChanged {
                label: "CF".to_owned(),
                settings: GatewaySettings::default(),
                at: t(1),
            },
            GatewayEvent::GatewayCredentialsRotated {
                credentials: sealed("creds2"),
                at: t(1),
            },
            GatewayEvent::GatewayCredentialsResealed {
                credentials: sealed("creds3"),
                at: t(1),
            },
            GatewayEvent::GatewayToggled {
                enabled: false,
                at: t(1),
            },
            GatewayEvent::GatewayBooked {
                payment_id: payment_id(1),
                amount: Paise(100),
                late_success: false,
                at: t(1),
            },
            GatewayEvent::GatewayBookingReleased {
                payment_id: payment_id(1),
                amount: Paise(100),
                booked_at: t(1),
                at: t(2),
            },
            GatewayEvent::GatewayTemporarilyFailed {
                reason: "503".to_owned(),
                until: t(300),
                at: t(1),
            },
            GatewayEvent::GatewayRecovered { at: t(1) },
            GatewayEvent::GatewayRetired {
                reason: "gone".to_owned(),
                at: t(1),
            },
        ],
    );
}

#[test]
fn payment_events_round_trip() {
    round_trips(
        PaymentEvent::EVENT_TYPES,
        &[
            PaymentEvent::PaymentInitiated {
                payment_id: payment_id(1),
                merchant_id: merchant_id(),
                amount: Paise(49_900),
                currency: Currency::Inr,
                merchant_order_id: "ORD-1".to_owned(),
                details: crate::payment::PaymentDetails::default(),
                gateway_id: gateway_id(1),
                fee: BasisPoints(350),
                at: t(0),
            },
            PaymentEvent::PspOrderCreated {
                gateway_id: gateway_id(1),
                psp_order_id: "order_1".to_owned(),
                checkout: serde_json::json!({ "url": "https://checkout.example/1", "fields": { "a": [1, 2] } }),
                at: t(1),
            },
            PaymentEvent::PaymentRerouted {
                from_gateway: gateway_id(1),
                to_gateway: gateway_id(2),
                attempt: 2,
                reason: "502".to_owned(),
                at: t(1),
            },
            PaymentEvent::PaymentSucceeded {
                gateway_id: gateway_id(2),
                amount: Paise(49_900),
                fee: BasisPoints(350),
                commission: Paise(1_747),
                psp_payment_id: "pay_1".to_owned(),
                late_success: true,
                at: t(2),
            },
            PaymentEvent::PaymentFailed {
                gateway_id: gateway_id(2),
                code: "E325".to_owned(),
                description: "Bank denied".to_owned(),
                at: t(2),
            },
            PaymentEvent::PaymentRefunded {
                refund_id: "rfnd_1".to_owned(),
                amount: Paise(100),
                refunded_total: Paise(100),
                commission_reversed: Paise(4),
                psp_refund_id: Some("rfnd_FS8TWyPrCsa0OB".to_owned()),
                at: t(3),
            },
            PaymentEvent::RefundRequested {
                refund_id: refund_id(1),
                merchant_refund_id: "RF-1".to_owned(),
                amount: Paise(100),
                reason: "returned".to_owned(),
                commission: RefundCommission::ReverseProportional,
                at: t(3),
            },
            PaymentEvent::RefundSubmitted {
                refund_id: refund_id(1),
                psp_refund_id: "rfnd_FS8TWyPrCsa0OB".to_owned(),
                at: t(3),
            },
            PaymentEvent::RefundFailed {
                refund_id: refund_id(1),
                amount: Paise(100),
                code: "BAD_REQUEST_ERROR".to_owned(),
                reason: "payment more than 6 months old".to_owned(),
                at: t(3),
            },
        ],
    );
}

#[test]
fn wallet_events_round_trip() {
    round_trips(
        WalletEvent::EVENT_TYPES,
        &[
            WalletEvent::CommissionAccrued {
                payment_id: payment_id(1),
                amount: Paise(49_900),
                fee: BasisPoints(350),
                commission: Paise(1_747),
                at: t(0),
            },
            WalletEvent::CommissionReversed {
                payment_id: payment_id(1),
                refund_id: refund_id(1).to_string(),
                refund_amount: Paise(24_950),
                commission: Paise(874),
                at: t(1),
            },
            WalletEvent::PayoutRequested {
                payout_id: payout_id(1),
                amount: Paise(1_000),
                at: t(1),
            },
            WalletEvent::CommissionPaidOut {
                payout_id: payout_id(1),
                amount: Paise(1_000),
                reference: "UTR1".to_owned(),
                at: t(2),
            },
            WalletEvent::PayoutReversed {
                payout_id: payout_id(1),
                amount: Paise(1_000),
                was_paid_out: true,
                reason: PayoutReversalReason::Reversed,
                detail: "bank".to_owned(),
                at: t(3),
            },
            WalletEvent::ManualSettlementRecorded {
                reference: "NEFT".to_owned(),
                amount: Paise(500),
                note: "cheque".to_owned(),
                at: t(4),
            },
        ],
    );
}

#[test]
fn alert_notification_and_webhook_events_round_trip() {
    round_trips(
        MerchantAlertsEvent::EVENT_TYPES,
        &[MerchantAlertsEvent::LowBalanceAlertRaised {
            notification_id: notification_id(1),
            balance_due: Paise::rupees(6_000),
            warn_at: Paise::rupees(5_000),
            at: t(0),
        }],
    );
    round_trips(
        NotificationEvent::EVENT_TYPES,
        &[
            NotificationEvent::NotificationQueued {
                notification_id: notification_id(1),
                merchant_id: merchant_id(),
                kind: NotificationType::LowBalance,
                channel: Channel::Email,
                template: "low_balance".to_owned(),
                recipient: "billing@acme.example".to_owned(),
                params: vec!["₹6,000".to_owned()],
                attempt_limit: 4,
                at: t(0),
            },
            NotificationEvent::NotificationAttemptFailed {
                channel: Channel::Whatsapp,
                attempt: 1,
                error_code: "130429".to_owned(),
                error_message: "Rate limit hit".to_owned(),
                retryable: true,
                next_attempt_at: Some(t(300)),
                at: t(1),
            },
            NotificationEvent::NotificationSent {
                channel: Channel::Whatsapp,
                attempt: 2,
                provider_message_id: "wamid.1".to_owned(),
                at: t(2),
            },
            NotificationEvent::NotificationFailed {
                channel: Channel::Whatsapp,
                attempts: 4,
                error_code: "131000".to_owned(),
                at: t(3),
            },
            NotificationEvent::NotificationRequeued {
                channel: Channel::Whatsapp,
                attempt_limit: 4,
                at: t(4),
            },
        ],
    );
    round_trips(
        WebhookDeliveryEvent::EVENT_TYPES,
        &[
            WebhookDeliveryEvent::WebhookDeliveryQueued {
                delivery_id: delivery_id(1),
                merchant_id: merchant_id(),
                payment_id: Some(payment_id(1)),
                event_type: "payment.succeeded".to_owned(),
                payload: serde_json::json!({ "amount": 49_900 }),
                endpoint_url: "https://acme.example/hooks".to_owned(),
                endpoint_id: None,
                at: t(0),
            },
            WebhookDeliveryEvent::WebhookDeliveryAttempted {
                attempt: 1,
                status_code: Some(500),
                error: None,
                duration_ms: 80,
                response_excerpt: Some("oops".to_owned()),
                at: t(1),
            },
            WebhookDeliveryEvent::WebhookDelivered {
                attempt: 2,
                status_code: 200,
                at: t(6),
            },
            WebhookDeliveryEvent::WebhookRetryScheduled {
                next_attempt: 2,
                next_attempt_at: t(6),
                at: t(1),
            },
            WebhookDeliveryEvent::WebhookDeliveryGivenUp {
                attempts: 8,
                at: t(9),
            },
            WebhookDeliveryEvent::WebhookDeliveryRequeued { at: t(10) },
        ],
    );
}

#[test]
fn queue_and_ops_alert_events_round_trip() {
    round_trips(
        QueueEvent::EVENT_TYPES,
        &[
            QueueEvent::QueuePaused { at: t(0) },
            QueueEvent::QueueResumed { at: t(1) },
            QueueEvent::QueueFailedJobsRetried { jobs: 3, at: t(2) },
            QueueEvent::QueueDrained { jobs: 9, at: t(3) },
        ],
    );
    round_trips(
        OpsAlertEvent::EVENT_TYPES,
        &[
            OpsAlertEvent::OpsAlertRaised {
                kind: AlertKind::PaymentFailed,
                summary: "payment failed".to_owned(),
                at: t(0),
            },
            OpsAlertEvent::OpsAlertResolved {
                summary: "back to normal".to_owned(),
                at: t(1),
            },
            OpsAlertEvent::OpsAlertAcknowledged {
                by: "asha@example.com".to_owned(),
                at: t(2),
            },
        ],
    );
}

#[test]
fn person_events_round_trip() {
    let email = crate::person::PersonEmail::parse("ops@example.com").expect("valid");
    round_trips(
        PersonEvent::EVENT_TYPES,
        &[
            PersonEvent::PersonInvited {
                email,
                role: Role::Ops,
                at: t(0),
            },
            PersonEvent::PersonRoleChanged {
                from: Role::Ops,
                to: Role::Auditor,
                at: t(1),
            },
            PersonEvent::PersonRemoved {
                role: Role::Auditor,
                at: t(2),
            },
            PersonEvent::PersonTokenRevoked {
                token_id: "0193f1d2-jti".to_owned(),
                expires_at: t(3600),
                at: t(3),
            },
            PersonEvent::PersonTokensRevoked { at: t(4) },
        ],
    );
}

#[test]
fn event_type_names_are_unique_across_the_crate_and_subject_safe() {
    let mut seen = BTreeSet::new();
    for category in CATEGORIES {
        let token_ok =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        assert!(
            token_ok(category.name),
            "category {:?} is a subject token",
            category.name
        );
        assert!(
            category.name.starts_with(|c: char| c.is_ascii_lowercase()),
            "category {:?} is lowercase",
            category.name
        );
        for event_type in category.event_types {
            assert!(token_ok(event_type), "{event_type:?} is a subject token");
            assert!(
                seen.insert(*event_type),
                "{event_type} is declared by two categories"
            );
            assert_eq!(category_of(event_type), Some(category.name));
        }
    }
    let categories: BTreeSet<&str> = CATEGORIES.iter().map(|c| c.name).collect();
    assert_eq!(categories.len(), CATEGORIES.len(), "categories are unique");
    assert_eq!(category_of("NoSuchEvent"), None);
}

#[test]
fn an_unknown_type_or_malformed_payload_is_a_typed_decode_error() {
    let unknown = decode::<PaymentEvent>("PaymentTeleported", 1, &serde_json::json!({}));
    assert!(matches!(unknown, Err(crate::UpcastError::Malformed { .. })));
    let malformed = decode::<PaymentEvent>("PaymentFailed", 1, &serde_json::json!({ "code": 7 }));
    assert!(matches!(
        malformed,
        Err(crate::UpcastError::Malformed { .. })
    ));
    let text =
        |json: &str| serde_json::value::RawValue::from_string(json.to_owned()).expect("JSON");
    let unknown = decode_raw::<PaymentEvent>("PaymentTeleported", 1, &text("{}"));
    assert!(matches!(unknown, Err(crate::UpcastError::Malformed { .. })));
    let malformed = decode_raw::<PaymentEvent>("PaymentFailed", 1, &text(r#"{"code": 7}"#));
    assert!(matches!(
        malformed,
        Err(crate::UpcastError::Malformed { .. })
    ));
}

#[test]
fn sealed_blobs_never_show_in_debug_output() {
    let event = GatewayEvent::GatewayCredentialsRotated {
        credentials: sealed("TOP-SECRET-BLOB"),
        at: t(0),
    };
    assert!(!format!("{event:?}").contains("TOP-SECRET-BLOB"));
}
