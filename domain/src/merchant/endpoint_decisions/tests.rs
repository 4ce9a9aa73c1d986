use super::*;
use crate::checkout_settings::CheckoutSettings;
use crate::decider::Decider;
use crate::merchant::{ClientKey, OnboardMerchant};
use crate::money::BasisPoints;
use crate::standing::Thresholds;
use crate::testing::fixtures::{merchant_id, sealed};
use crate::testing::{given, t};
use crate::validation::{FieldError, Problem};

const DAY: i64 = 24 * 3600;

fn onboarded(webhook_url: Option<&str>) -> MerchantEvent {
    let o = OnboardMerchant {
        merchant_id: merchant_id(),
        company_name: "Acme".to_owned(),
        webhook_url: webhook_url.map(str::to_owned),
        whatsapp: None,
        client_key: ClientKey::parse("ck_a0123456789abcdef").expect("key"),
        client_salt: sealed("salt"),
        webhook_secret: sealed("whsec-first"),
        fee: BasisPoints::DEFAULT_FEE,
        thresholds: Thresholds::default(),
        checkout: CheckoutSettings::default(),
        at: t(0),
    };
    MerchantEvent::MerchantOnboarded {
        merchant_id: o.merchant_id,
        company_name: o.company_name,
        webhook_url: o.webhook_url,
        whatsapp: o.whatsapp,
        client_key: o.client_key,
        client_salt: o.client_salt,
        webhook_secret: o.webhook_secret,
        fee: o.fee,
        thresholds: o.thresholds,
        checkout: o.checkout,
        at: o.at,
    }
}

fn endpoint_id(n: u128) -> WebhookEndpointId {
    WebhookEndpointId(uuid::Uuid::from_u128(1000 + n))
}

fn filter(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|e| (*e).to_owned()).collect()
}

fn add(n: u128, entries: &[&str]) -> MerchantCommand {
    MerchantCommand::AddWebhookEndpoint {
        endpoint_id: endpoint_id(n),
        url: format!("https://acme.example/hooks/{n}"),
        description: format!("endpoint {n}"),
        event_types: filter(entries),
        secret: sealed(&format!("whsec-{n}")),
        at: t(10),
    }
}

fn added(n: u128, entries: &[&str]) -> MerchantEvent {
    MerchantEvent::WebhookEndpointAdded {
        endpoint_id: endpoint_id(n),
        url: format!("https://acme.example/hooks/{n}"),
        description: format!("endpoint {n}"),
        event_types: EventFilter::parse(&filter(entries)).expect("filter"),
        secret: sealed(&format!("whsec-{n}")),
        at: t(10),
    }
}

fn invalid(error: FieldError) -> MerchantError {
    MerchantError::Invalid(error)
}

#[test]
fn the_original_webhook_url_is_the_first_endpoint_receiving_everything() {
    let rotated = MerchantEvent::MerchantWebhookSecretRotated {
        secret: sealed("whsec-second"),
        previous_valid_until: t(DAY),
        at: t(5),
    };
    let merchant = Merchant::fold([&onboarded(Some("https://acme.example/hooks")), &rotated])
        .expect("merchant");
    let [first] = merchant.webhook_endpoints() else {
        panic!("one endpoint expected");
    };
    assert_eq!(first.id(), first_endpoint_id(merchant_id()));
    assert_eq!(first.url(), "https://acme.example/hooks");
    assert!(first.wants("payment.succeeded") && first.wants("refund.failed"));
    assert_eq!(
        first.secrets_valid_at(t(6)),
        vec![&sealed("whsec-second"), &sealed("whsec-first")]
    );
    assert_eq!(
        first.secrets_valid_at(t(DAY)),
        vec![&sealed("whsec-second")]
    );
    let without = Merchant::fold([&onboarded(None)]).expect("merchant");
    assert!(without.webhook_endpoints().is_empty());
}

#[test]
fn a_profile_update_moves_or_removes_the_first_endpoint() {
    let moved = MerchantEvent::MerchantProfileUpdated {
        company_name: "Acme".to_owned(),
        webhook_url: Some("https://acme.example/v2".to_owned()),
        at: t(3),
    };
    let history = [onboarded(None), moved.clone()];
    let merchant = Merchant::fold(&history).expect("merchant");
    assert_eq!(
        merchant.webhook_endpoints()[0].url(),
        "https://acme.example/v2"
    );
    assert_eq!(
        merchant.webhook_endpoints()[0].secret(),
        &sealed("whsec-first")
    );
    let removed = MerchantEvent::MerchantProfileUpdated {
        company_name: "Acme".to_owned(),
        webhook_url: None,
        at: t(4),
    };
    let merchant = Merchant::fold([&onboarded(None), &moved, &removed]).expect("merchant");
    assert!(merchant.webhook_endpoints().is_empty());
}

#[test]
fn endpoints_receive_only_the_event_types_their_filter_names() {
    let merchant = given::<Merchant>([onboarded(Some("https://acme.example/hooks"))])
        .when(add(1, &["payment.succeeded", "refund.*"]))
        .then([added(1, &["payment.succeeded", "refund.*"])])
        .expect("merchant");
    let receivers = |event_type: &str| -> Vec<WebhookEndpointId> {
        merchant
            .webhook_endpoints_for(event_type)
            .map(WebhookEndpoint::id)
            .collect()
    };
    let first = first_endpoint_id(merchant_id());
    assert_eq!(receivers("payment.succeeded"), vec![first, endpoint_id(1)]);
    assert_eq!(receivers("refund.succeeded"), vec![first, endpoint_id(1)]);
    assert_eq!(receivers("payment.failed"), vec![first]);
}

#[test]
fn an_eleventh_endpoint_a_bad_url_or_a_bad_filter_is_refused() {
    let full: Vec<MerchantEvent> = std::iter::once(onboarded(Some("https://acme.example/hooks")))
        .chain((1..MAX_WEBHOOK_ENDPOINTS as u128).map(|n| added(n, &["*"])))
        .collect();
    given::<Merchant>(full)
        .when(add(11, &["*"]))
        .then_error(MerchantError::TooManyWebhookEndpoints { limit: 10 });
    let bad_url = MerchantCommand::AddWebhookEndpoint {
        endpoint_id: endpoint_id(1),
        url: "ftp://acme.example".to_owned(),
        description: String::new(),
        event_types: filter(&["*"]),
        secret: sealed("whsec-1"),
        at: t(1),
    };
    given::<Merchant>([onboarded(None)])
        .when(bad_url)
        .then_error(invalid(Problem::NotAUrl.at("url")));
    for entries in [&["payment.paid"][..], &["pay*"], &["order.*"], &[]] {
        let expected = if entries.is_empty() {
            Problem::Empty
        } else {
            Problem::Unsupported
        };
        given::<Merchant>([onboarded(None)])
            .when(add(1, entries))
            .then_error(invalid(expected.at("event_types")));
    }
}

#[test]
fn rotating_an_endpoint_secret_keeps_the_old_one_for_the_grace_period() {
    let merchant = given::<Merchant>([onboarded(None), added(1, &["*"])])
        .when(MerchantCommand::RotateWebhookEndpointSecret {
            endpoint_id: endpoint_id(1),
            secret: sealed("whsec-1b"),
            grace_secs: 3600,
            at: t(100),
        })
        .then([MerchantEvent::WebhookEndpointSecretRotated {
            endpoint_id: endpoint_id(1),
            secret: sealed("whsec-1b"),
            previous_valid_until: t(3700),
            at: t(100),
        }])
        .expect("merchant");
    let endpoint = merchant.webhook_endpoint(endpoint_id(1)).expect("endpoint");
    assert_eq!(
        endpoint.secrets_valid_at(t(3699)),
        vec![&sealed("whsec-1b"), &sealed("whsec-1")]
    );
    assert_eq!(
        endpoint.secrets_valid_at(t(3700)),
        vec![&sealed("whsec-1b")]
    );
}

#[test]
fn rotating_the_first_endpoint_secret_rotates_the_merchant_secret() {
    let merchant = given::<Merchant>([onboarded(Some("https://acme.example/hooks"))])
        .when(MerchantCommand::RotateWebhookEndpointSecret {
            endpoint_id: first_endpoint_id(merchant_id()),
            secret: sealed("whsec-second"),
            grace_secs: 60,
            at: t(1),
        })
        .then([MerchantEvent::WebhookEndpointSecretRotated {
            endpoint_id: first_endpoint_id(merchant_id()),
            secret: sealed("whsec-second"),
            previous_valid_until: t(61),
            at: t(1),
        }])
        .expect("merchant");
    assert_eq!(merchant.webhook_secret(), &sealed("whsec-second"));
    assert_eq!(
        merchant.webhook_secrets_valid_at(t(2)),
        merchant.webhook_endpoints()[0].secrets_valid_at(t(2))
    );
}

#[test]
fn a_failing_endpoint_is_disabled_alone_and_enabled_again_by_its_merchant() {
    let history = [
        onboarded(Some("https://acme.example/hooks")),
        added(1, &["*"]),
    ];
    let merchant = given::<Merchant>(history.clone())
        .when(MerchantCommand::DisableFailingWebhookEndpoint {
            endpoint_id: endpoint_id(1),
            failing_since: t(0),
            at: t(5 * DAY),
        })
        .then([MerchantEvent::WebhookEndpointDisabled {
            endpoint_id: endpoint_id(1),
            failing_since: t(0),
            at: t(5 * DAY),
        }])
        .expect("merchant");
    assert!(
        !merchant
            .webhook_endpoint(endpoint_id(1))
            .expect("endpoint")
            .is_receiving()
    );
    assert!(merchant.webhook_endpoints()[0].is_receiving());
    given::<Merchant>(history.clone())
        .when(MerchantCommand::DisableFailingWebhookEndpoint {
            endpoint_id: endpoint_id(1),
            failing_since: t(0),
            at: t(DAY),
        })
        .then_error(MerchantError::EndpointNotFailingLongEnough {
            disable_from: t(5 * DAY),
        });
    let disabled = MerchantEvent::WebhookEndpointDisabled {
        endpoint_id: endpoint_id(1),
        failing_since: t(0),
        at: t(5 * DAY),
    };
    let enable = EndpointChanges {
        enabled: Some(true),
        ..EndpointChanges::default()
    };
    given::<Merchant>([history[0].clone(), history[1].clone(), disabled])
        .when(MerchantCommand::UpdateWebhookEndpoint {
            endpoint_id: endpoint_id(1),
            changes: enable,
            at: t(6 * DAY),
        })
        .then([MerchantEvent::WebhookEndpointEnabled {
            endpoint_id: endpoint_id(1),
            at: t(6 * DAY),
        }]);
}

#[test]
fn an_endpoint_is_updated_and_removed_by_id_and_an_unknown_id_is_refused() {
    let changes = EndpointChanges {
        description: Some("orders only".to_owned()),
        event_types: Some(filter(&["payment.*"])),
        enabled: Some(false),
        url: None,
    };
    given::<Merchant>([onboarded(None), added(1, &["*"])])
        .when(MerchantCommand::UpdateWebhookEndpoint {
            endpoint_id: endpoint_id(1),
            changes: changes.clone(),
            at: t(20),
        })
        .then([MerchantEvent::WebhookEndpointUpdated {
            endpoint_id: endpoint_id(1),
            url: "https://acme.example/hooks/1".to_owned(),
            description: "orders only".to_owned(),
            enabled: false,
            event_types: EventFilter::parse(&filter(&["payment.*"])).expect("filter"),
            at: t(20),
        }]);
    let merchant = given::<Merchant>([onboarded(None), added(1, &["*"])])
        .when(MerchantCommand::RemoveWebhookEndpoint {
            endpoint_id: endpoint_id(1),
            at: t(20),
        })
        .then([MerchantEvent::WebhookEndpointRemoved {
            endpoint_id: endpoint_id(1),
            at: t(20),
        }])
        .expect("merchant");
    assert!(merchant.webhook_endpoints().is_empty());
    given::<Merchant>([onboarded(None)])
        .when(MerchantCommand::RemoveWebhookEndpoint {
            endpoint_id: endpoint_id(2),
            at: t(20),
        })
        .then_error(MerchantError::UnknownWebhookEndpoint(endpoint_id(2)));
}

fn resealed(n: u128, secret: &str, previous: Option<&str>) -> ResealedEndpointSecrets {
    ResealedEndpointSecrets {
        endpoint_id: endpoint_id(n),
        secret: sealed(secret),
        previous_secret: previous.map(sealed),
    }
}

fn rotated(n: u128, secret: &str) -> MerchantEvent {
    MerchantEvent::WebhookEndpointSecretRotated {
        endpoint_id: endpoint_id(n),
        secret: sealed(secret),
        previous_valid_until: t(DAY),
        at: t(20),
    }
}

#[test]
fn resealing_endpoint_secrets_keeps_their_grace_and_skips_those_already_resealed() {
    let history = [
        onboarded(Some("https://acme.example/hooks")),
        added(1, &["*"]),
        added(2, &["refund.*"]),
        rotated(1, "whsec-1b"),
    ];
    let merchant = given::<Merchant>(history.clone())
        .when(MerchantCommand::ResealWebhookEndpointSecrets {
            endpoints: vec![
                resealed(1, "whsec-1b-new-key", Some("whsec-1-new-key")),
                resealed(2, "whsec-2", None),
            ],
            at: t(30),
        })
        .then([MerchantEvent::WebhookEndpointSecretResealed {
            endpoint_id: endpoint_id(1),
            secret: sealed("whsec-1b-new-key"),
            previous_secret: Some(sealed("whsec-1-new-key")),
            at: t(30),
        }])
        .expect("merchant");
    let endpoint = merchant.webhook_endpoint(endpoint_id(1)).expect("endpoint");
    assert_eq!(
        endpoint.secrets_valid_at(t(DAY - 1)),
        vec![&sealed("whsec-1b-new-key"), &sealed("whsec-1-new-key")]
    );
    assert_eq!(
        endpoint.previous_secret().map(|p| p.valid_until),
        Some(t(DAY))
    );
    assert_eq!(merchant.webhook_secret(), &sealed("whsec-first"));
    assert_eq!(
        merchant.webhook_endpoints()[0].secret(),
        &sealed("whsec-first")
    );
}

#[test]
fn an_endpoint_reseal_covers_exactly_its_secrets_and_never_the_first_endpoint() {
    let history = [
        onboarded(Some("https://acme.example/hooks")),
        added(1, &["*"]),
        rotated(1, "whsec-1b"),
        added(2, &["*"]),
    ];
    let reseal = |endpoints| MerchantCommand::ResealWebhookEndpointSecrets {
        endpoints,
        at: t(30),
    };
    given::<Merchant>(history.clone())
        .when(reseal(vec![resealed(1, "whsec-1b-new-key", None)]))
        .then_error(MerchantError::PreviousSecretMismatch);
    given::<Merchant>(history.clone())
        .when(reseal(vec![resealed(2, "whsec-2-new", Some("ghost"))]))
        .then_error(MerchantError::PreviousSecretMismatch);
    given::<Merchant>(history.clone())
        .when(reseal(vec![resealed(9, "whsec-9", None)]))
        .then_error(MerchantError::UnknownWebhookEndpoint(endpoint_id(9)));
    given::<Merchant>(history)
        .when(reseal(vec![ResealedEndpointSecrets {
            endpoint_id: first_endpoint_id(merchant_id()),
            secret: sealed("whsec-first-new-key"),
            previous_secret: None,
        }]))
        .then_error(MerchantError::FirstEndpointResealedApart);
}

#[test]
fn a_closed_merchant_endpoints_are_still_resealed() {
    let closed = MerchantEvent::MerchantClosed {
        reason: "churned".to_owned(),
        at: t(20),
    };
    given::<Merchant>([onboarded(None), added(1, &["*"]), closed])
        .when(MerchantCommand::ResealWebhookEndpointSecrets {
            endpoints: vec![resealed(1, "whsec-1-new-key", None)],
            at: t(30),
        })
        .then([MerchantEvent::WebhookEndpointSecretResealed {
            endpoint_id: endpoint_id(1),
            secret: sealed("whsec-1-new-key"),
            previous_secret: None,
            at: t(30),
        }]);
}
