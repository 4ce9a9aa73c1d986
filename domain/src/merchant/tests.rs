use super::*;
use crate::testing::fixtures::{gateway_id, merchant_id, sealed};
use crate::testing::{given, t};

const DAY: i64 = 24 * 3600;

fn key(suffix: &str) -> ClientKey {
    ClientKey::parse(&format!("ck_{suffix}0123456789abcdef")).expect("a valid client key")
}

fn whatsapp() -> WhatsappContact {
    WhatsappContact {
        number: "919867800451".to_owned(),
        opt_ins: WhatsappOptIns {
            low_balance: true,
            ..WhatsappOptIns::default()
        },
    }
}

fn onboard() -> OnboardMerchant {
    OnboardMerchant {
        merchant_id: merchant_id(),
        company_name: "Acme Lounge Pvt Ltd".to_owned(),
        webhook_url: Some("https://acme.example/hooks".to_owned()),
        whatsapp: Some(whatsapp()),
        client_key: key("a"),
        client_salt: sealed("salt-a"),
        webhook_secret: sealed("whsec-a"),
        fee: BasisPoints::DEFAULT_FEE,
        thresholds: Thresholds::default(),
        checkout: CheckoutSettings::default(),
        at: t(0),
    }
}

fn onboarded() -> MerchantEvent {
    let o = onboard();
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

fn attached(n: u128) -> MerchantEvent {
    MerchantEvent::MerchantGatewayAttached {
        gateway_id: gateway_id(n),
        at: t(1),
    }
}

fn suspended() -> MerchantEvent {
    MerchantEvent::MerchantSuspended {
        reason: "KYC review".to_owned(),
        at: t(5),
    }
}

fn closed() -> MerchantEvent {
    MerchantEvent::MerchantClosed {
        reason: "churned".to_owned(),
        at: t(5),
    }
}

#[test]
fn a_merchant_is_onboarded_with_the_defaults() {
    let merchant = given::<Merchant>([])
        .when(MerchantCommand::Onboard(onboard()))
        .then([onboarded()])
        .expect("onboarded");
    assert_eq!(merchant.status(), MerchantStatus::Active);
    assert_eq!(merchant.fee(), BasisPoints(350));
    assert_eq!(merchant.thresholds().suspend_at, Paise::rupees(10_000));
    assert_eq!(merchant.thresholds().warn_at, Paise::rupees(5_000));
    assert_eq!(
        merchant.thresholds().auto_payout_minimum,
        Paise::rupees(1_000)
    );
    assert_eq!(merchant.checkout().default_rpm_cap, None);
    assert!(merchant.accepts_client_key(key("a").as_str()));
    assert!(merchant.webhook_endpoint_enabled());
    assert!(
        !format!("{merchant:?}").contains("salt-a"),
        "debug output must not show sealed blobs"
    );
}

#[test]
fn onboarding_normalises_the_whatsapp_number_and_trims_the_name() {
    let command = OnboardMerchant {
        company_name: "  Acme Lounge Pvt Ltd ".to_owned(),
        whatsapp: Some(WhatsappContact {
            number: "+919867800451".to_owned(),
            ..whatsapp()
        }),
        ..onboard()
    };
    given::<Merchant>([])
        .when(MerchantCommand::Onboard(command))
        .then([onboarded()]);
}

#[test]
fn onboarding_refuses_invalid_fields_naming_them() {
    let refuse = |command: OnboardMerchant, error: FieldError| {
        given::<Merchant>([])
            .when(MerchantCommand::Onboard(command))
            .then_error(MerchantError::Invalid(error));
    };
    refuse(
        OnboardMerchant {
            company_name: " ".to_owned(),
            ..onboard()
        },
        Problem::Empty.at("company_name"),
    );
    refuse(
        OnboardMerchant {
            webhook_url: Some("acme.example/hooks".to_owned()),
            ..onboard()
        },
        Problem::NotAUrl.at("webhook_url"),
    );
    refuse(
        OnboardMerchant {
            whatsapp: Some(WhatsappContact {
                number: "12345".to_owned(),
                ..whatsapp()
            }),
            ..onboard()
        },
        Problem::NotAPhoneNumber.at("whatsapp_number"),
    );
    refuse(
        OnboardMerchant {
            fee: BasisPoints(10_001),
            ..onboard()
        },
        Problem::OutOfRange {
            min: 0,
            max: 10_000,
        }
        .at("fee"),
    );
    refuse(
        OnboardMerchant {
            thresholds: Thresholds {
                warn_at: Paise::rupees(20_000),
                ..Thresholds::default()
            },
            ..onboard()
        },
        Problem::Exceeds {
            other: "suspend_at",
        }
        .at("warn_at"),
    );
    refuse(
        OnboardMerchant {
            thresholds: Thresholds {
                suspend_at: Paise::ZERO,
                ..Thresholds::default()
            },
            ..onboard()
        },
        Problem::NotPositive.at("suspend_at"),
    );
}

#[test]
fn a_merchant_is_onboarded_once() {
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::Onboard(onboard()))
        .then_error(MerchantError::AlreadyOnboarded);
    given::<Merchant>([])
        .when(MerchantCommand::Reactivate { at: t(1) })
        .then_error(MerchantError::NotOnboarded);
}

#[test]
fn client_keys_have_a_fixed_shape() {
    assert!(ClientKey::parse("ck_0123456789abcdef").is_ok());
    assert!(
        ClientKey::parse("ck_0123456789abcde").is_err(),
        "15 characters is too short"
    );
    assert!(ClientKey::parse("pk_0123456789abcdef").is_err());
    assert!(ClientKey::parse("ck_0123456789abcde!").is_err());
    assert!(ClientKey::parse(&format!("ck_{}", "a".repeat(65))).is_err());
}

#[test]
fn rotating_keys_invalidates_the_old_ones_from_that_event_on() {
    let merchant = given::<Merchant>([onboarded()])
        .when(MerchantCommand::RotateKeys {
            client_key: key("b"),
            client_salt: sealed("salt-b"),
            at: t(10),
        })
        .then([MerchantEvent::MerchantKeysRotated {
            client_key: key("b"),
            client_salt: sealed("salt-b"),
            at: t(10),
        }])
        .expect("onboarded");
    assert!(merchant.accepts_client_key(key("b").as_str()));
    assert!(!merchant.accepts_client_key(key("a").as_str()));
    assert_eq!(merchant.client_salt(), &sealed("salt-b"));
    assert_eq!(merchant.keys_rotated_at(), Some(t(10)));
}

#[test]
fn a_key_rotation_must_issue_a_new_key() {
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::RotateKeys {
            client_key: key("a"),
            client_salt: sealed("salt-b"),
            at: t(10),
        })
        .then_error(MerchantError::ClientKeyNotNew);
}

#[test]
fn a_fee_change_records_both_fees_and_applies_from_then_on() {
    let merchant = given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeFee {
            fee: BasisPoints(250),
            at: t(10),
        })
        .then([MerchantEvent::MerchantFeeChanged {
            from: BasisPoints(350),
            to: BasisPoints(250),
            at: t(10),
        }])
        .expect("onboarded");
    assert_eq!(merchant.snapshot(Paise::ZERO).fee, BasisPoints(250));
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeFee {
            fee: BasisPoints(350),
            at: t(10),
        })
        .then_nothing();
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeFee {
            fee: BasisPoints(20_000),
            at: t(10),
        })
        .then_error(
            Problem::OutOfRange {
                min: 0,
                max: 10_000,
            }
            .at("fee")
            .into(),
        );
}

#[test]
fn thresholds_and_checkout_settings_change() {
    let thresholds = Thresholds {
        suspend_at: Paise::rupees(20_000),
        warn_at: Paise::rupees(15_000),
        auto_payout_minimum: Paise::rupees(500),
    };
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeThresholds {
            thresholds,
            at: t(10),
        })
        .then([MerchantEvent::MerchantThresholdsChanged {
            thresholds,
            at: t(10),
        }]);
    let settings = CheckoutSettings {
        routing_mode: crate::checkout_settings::RoutingMode::RoundRobin,
        skip_temporarily_failed: false,
        default_rpm_cap: Some(1),
        temporary_failure_secs: 120,
    };
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeCheckoutSettings {
            settings,
            at: t(10),
        })
        .then([MerchantEvent::MerchantCheckoutSettingsChanged {
            settings,
            at: t(10),
        }]);
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeCheckoutSettings {
            settings: CheckoutSettings {
                default_rpm_cap: Some(0),
                ..settings
            },
            at: t(10),
        })
        .then_error(
            Problem::OutOfRange { min: 1, max: 1_000 }
                .at("default_rpm_cap")
                .into(),
        );
}

#[test]
fn the_previous_webhook_secret_stays_valid_until_the_grace_deadline() {
    let merchant = given::<Merchant>([onboarded()])
        .when(MerchantCommand::RotateWebhookSecret {
            secret: sealed("whsec-b"),
            grace_secs: DEFAULT_WEBHOOK_SECRET_GRACE_SECS,
            at: t(100),
        })
        .then([MerchantEvent::MerchantWebhookSecretRotated {
            secret: sealed("whsec-b"),
            previous_valid_until: t(100 + DAY),
            at: t(100),
        }])
        .expect("onboarded");
    let (old, new) = (sealed("whsec-a"), sealed("whsec-b"));
    assert_eq!(
        merchant.webhook_secrets_valid_at(t(100 + DAY - 1)),
        [&new, &old]
    );
    assert_eq!(merchant.webhook_secrets_valid_at(t(100 + DAY)), [&new]);
    assert_eq!(merchant.webhook_secret(), &new);
}

#[test]
fn a_second_rotation_ends_the_first_secrets_grace() {
    let history = [
        onboarded(),
        MerchantEvent::MerchantWebhookSecretRotated {
            secret: sealed("whsec-b"),
            previous_valid_until: t(100 + DAY),
            at: t(100),
        },
        MerchantEvent::MerchantWebhookSecretRotated {
            secret: sealed("whsec-c"),
            previous_valid_until: t(200 + DAY),
            at: t(200),
        },
    ];
    let merchant = Merchant::fold(&history).expect("onboarded");
    assert_eq!(
        merchant.webhook_secrets_valid_at(t(300)),
        [&sealed("whsec-c"), &sealed("whsec-b")]
    );
}

#[test]
fn webhook_secret_grace_is_at_most_seven_days() {
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::RotateWebhookSecret {
            secret: sealed("whsec-b"),
            grace_secs: MAX_WEBHOOK_SECRET_GRACE_SECS + 1,
            at: t(100),
        })
        .then_error(
            Problem::OutOfRange {
                min: 0,
                max: 604_800,
            }
            .at("grace_secs")
            .into(),
        );
}

#[test]
fn the_webhook_endpoint_is_disabled_only_after_five_days_of_failure() {
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::DisableWebhookEndpoint {
            failing_since: t(0),
            at: t(5 * DAY - 1),
        })
        .then_error(MerchantError::EndpointNotFailingLongEnough {
            disable_from: t(5 * DAY),
        });
    let merchant = given::<Merchant>([onboarded()])
        .when(MerchantCommand::DisableWebhookEndpoint {
            failing_since: t(0),
            at: t(5 * DAY),
        })
        .then([MerchantEvent::MerchantWebhookEndpointDisabled {
            failing_since: t(0),
            at: t(5 * DAY),
        }])
        .expect("onboarded");
    assert!(!merchant.webhook_endpoint_enabled());
}

#[test]
fn a_disabled_endpoint_is_re_enabled_explicitly_or_by_a_new_url() {
    let disabled = MerchantEvent::MerchantWebhookEndpointDisabled {
        failing_since: t(0),
        at: t(5 * DAY),
    };
    given::<Merchant>([onboarded(), disabled.clone()])
        .when(MerchantCommand::EnableWebhookEndpoint { at: t(6 * DAY) })
        .then([MerchantEvent::MerchantWebhookEndpointEnabled { at: t(6 * DAY) }]);
    let url = Some("https://acme.example/v2/hooks".to_owned());
    let merchant = given::<Merchant>([onboarded(), disabled])
        .when(MerchantCommand::UpdateProfile {
            company_name: "Acme Lounge Pvt Ltd".to_owned(),
            webhook_url: url.clone(),
            at: t(6 * DAY),
        })
        .then([
            MerchantEvent::MerchantProfileUpdated {
                company_name: "Acme Lounge Pvt Ltd".to_owned(),
                webhook_url: url,
                at: t(6 * DAY),
            },
            MerchantEvent::MerchantWebhookEndpointEnabled { at: t(6 * DAY) },
        ])
        .expect("onboarded");
    assert!(merchant.webhook_endpoint_enabled());
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::EnableWebhookEndpoint { at: t(1) })
        .then_nothing();
}

#[test]
fn whatsapp_contact_changes_and_opt_ins_decide_the_recipient() {
    let merchant = Merchant::fold(&[onboarded()]).expect("onboarded");
    assert_eq!(
        merchant.whatsapp_recipient_for(NotificationType::LowBalance),
        Some("919867800451")
    );
    assert_eq!(
        merchant.whatsapp_recipient_for(NotificationType::TxnUpdate),
        None
    );
    let merchant = given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeWhatsappContact {
            contact: None,
            at: t(1),
        })
        .then([MerchantEvent::MerchantWhatsappContactChanged {
            contact: None,
            at: t(1),
        }])
        .expect("onboarded");
    assert_eq!(
        merchant.whatsapp_recipient_for(NotificationType::LowBalance),
        None
    );
}

#[test]
fn an_email_contact_is_explicit_consent_per_type_and_off_by_default() {
    let merchant = Merchant::fold(&[onboarded()]).expect("onboarded");
    assert_eq!(merchant.email(), None);
    assert_eq!(
        merchant.recipients_for(NotificationType::LowBalance),
        [(Channel::Whatsapp, "919867800451")]
    );
    let contact = EmailContact {
        address: " ops@acme.example ".to_owned(),
        opt_ins: EmailOptIns {
            account_status: true,
            low_balance: true,
            ..EmailOptIns::default()
        },
    };
    let changed = MerchantEvent::MerchantEmailContactChanged {
        contact: Some(EmailContact {
            address: "ops@acme.example".to_owned(),
            ..contact.clone()
        }),
        at: t(1),
    };
    let merchant = given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeEmailContact {
            contact: Some(contact.clone()),
            at: t(1),
        })
        .then([changed.clone()])
        .expect("onboarded");
    assert_eq!(
        merchant.recipients_for(NotificationType::LowBalance),
        [
            (Channel::Whatsapp, "919867800451"),
            (Channel::Email, "ops@acme.example")
        ]
    );
    assert_eq!(
        merchant.email_recipient_for(NotificationType::AccountStatus),
        Some("ops@acme.example")
    );
    assert_eq!(
        merchant.email_recipient_for(NotificationType::PayoutUpdate),
        None
    );
    // The same contact again changes nothing; none stops every email.
    given::<Merchant>([onboarded(), changed.clone()])
        .when(MerchantCommand::ChangeEmailContact {
            contact: Some(contact),
            at: t(2),
        })
        .then([]);
    let merchant = given::<Merchant>([onboarded(), changed.clone()])
        .when(MerchantCommand::ChangeEmailContact {
            contact: None,
            at: t(2),
        })
        .then([MerchantEvent::MerchantEmailContactChanged {
            contact: None,
            at: t(2),
        }])
        .expect("onboarded");
    assert_eq!(
        merchant.email_recipient_for(NotificationType::AccountStatus),
        None
    );
}

#[test]
fn an_email_contact_needs_one_address() {
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeEmailContact {
            contact: Some(EmailContact {
                address: "ops@acme".to_owned(),
                opt_ins: EmailOptIns::default(),
            }),
            at: t(1),
        })
        .then_error(MerchantError::Invalid(Problem::NotAnEmail.at("email")));
}

#[test]
fn opt_ins_stored_before_invoice_messages_existed_leave_them_off() {
    let stored = serde_json::json!({
        "low_balance": true,
        "transaction_updates": false,
        "payout_updates": true,
        "account_status": true
    });
    let opt_ins: WhatsappOptIns = serde_json::from_value(stored).expect("decodes");
    assert!(opt_ins.allows(NotificationType::PayoutUpdate));
    assert!(!opt_ins.allows(NotificationType::Invoice));
}

#[test]
fn a_merchant_has_at_most_fifty_active_gateways() {
    let fifty: Vec<MerchantEvent> = std::iter::once(onboarded())
        .chain((1..=50).map(attached))
        .collect();
    given::<Merchant>(fifty.clone())
        .when(MerchantCommand::AttachGateway {
            gateway_id: gateway_id(51),
            at: t(2),
        })
        .then_error(MerchantError::TooManyGateways { limit: 50 });
    // Retiring one frees a slot.
    let detached = MerchantEvent::MerchantGatewayDetached {
        gateway_id: gateway_id(7),
        at: t(2),
    };
    let merchant = given::<Merchant>(fifty.iter().cloned().chain([detached]))
        .when(MerchantCommand::AttachGateway {
            gateway_id: gateway_id(51),
            at: t(3),
        })
        .then([MerchantEvent::MerchantGatewayAttached {
            gateway_id: gateway_id(51),
            at: t(3),
        }])
        .expect("onboarded");
    assert_eq!(merchant.active_gateways().len(), 50);
    // Attaching an attached gateway again changes nothing.
    given::<Merchant>(fifty)
        .when(MerchantCommand::AttachGateway {
            gateway_id: gateway_id(1),
            at: t(2),
        })
        .then_nothing();
}

#[test]
fn detaching_a_gateway_that_is_not_active_decides_nothing() {
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::DetachGateway {
            gateway_id: gateway_id(1),
            at: t(2),
        })
        .then_nothing();
}

#[test]
fn a_suspended_merchant_accepts_no_payments_until_reactivated() {
    let merchant = given::<Merchant>([onboarded()])
        .when(MerchantCommand::Suspend {
            reason: "KYC review".to_owned(),
            at: t(5),
        })
        .then([suspended()])
        .expect("onboarded");
    assert!(!merchant.is_accepting_payments(Paise::ZERO));
    given::<Merchant>([onboarded(), suspended()])
        .when(MerchantCommand::Suspend {
            reason: "again".to_owned(),
            at: t(6),
        })
        .then_nothing();
    let merchant = given::<Merchant>([onboarded(), suspended()])
        .when(MerchantCommand::Reactivate { at: t(6) })
        .then([MerchantEvent::MerchantReactivated { at: t(6) }])
        .expect("onboarded");
    assert!(merchant.is_accepting_payments(Paise::ZERO));
}

#[test]
fn a_merchant_owing_its_suspend_threshold_accepts_no_payments() {
    let merchant = Merchant::fold(&[onboarded()]).expect("onboarded");
    assert!(merchant.is_accepting_payments(Paise::rupees(10_000) - Paise(1)));
    assert!(!merchant.is_accepting_payments(Paise::rupees(10_000)));
}

#[test]
fn a_closed_merchant_refuses_everything_but_detaching_gateways() {
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::Close {
            reason: "churned".to_owned(),
            at: t(5),
        })
        .then([closed()]);
    given::<Merchant>([onboarded(), closed()])
        .when(MerchantCommand::Reactivate { at: t(6) })
        .then_error(MerchantError::Closed);
    given::<Merchant>([onboarded(), closed()])
        .when(MerchantCommand::ChangeFee {
            fee: BasisPoints(100),
            at: t(6),
        })
        .then_error(MerchantError::Closed);
    given::<Merchant>([onboarded(), attached(1), closed()])
        .when(MerchantCommand::DetachGateway {
            gateway_id: gateway_id(1),
            at: t(6),
        })
        .then([MerchantEvent::MerchantGatewayDetached {
            gateway_id: gateway_id(1),
            at: t(6),
        }]);
    let merchant = Merchant::fold(&[onboarded(), closed()]).expect("onboarded");
    assert!(!merchant.is_accepting_payments(Paise::ZERO));
}

#[test]
fn suspension_and_closure_need_a_reason() {
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::Suspend {
            reason: String::new(),
            at: t(5),
        })
        .then_error(Problem::Empty.at("reason").into());
}

#[test]
fn resealing_keeps_the_key_and_the_grace_period_and_works_on_a_closed_merchant() {
    let rotated = MerchantEvent::MerchantWebhookSecretRotated {
        secret: sealed("whsec-b"),
        previous_valid_until: t(DAY),
        at: t(10),
    };
    let resealed = MerchantEvent::MerchantSecretsResealed {
        client_salt: sealed("salt-a2"),
        webhook_secret: sealed("whsec-b2"),
        previous_webhook_secret: Some(sealed("whsec-a2")),
        at: t(20),
    };
    let merchant = given::<Merchant>([onboarded(), rotated.clone(), closed()])
        .when(MerchantCommand::ResealSecrets {
            client_salt: sealed("salt-a2"),
            webhook_secret: sealed("whsec-b2"),
            previous_webhook_secret: Some(sealed("whsec-a2")),
            at: t(20),
        })
        .then([resealed.clone()])
        .expect("onboarded");
    assert!(merchant.accepts_client_key(key("a").as_str()));
    assert_eq!(merchant.keys_rotated_at(), None, "a reseal is no rotation");
    assert_eq!(merchant.client_salt(), &sealed("salt-a2"));
    assert_eq!(
        merchant.webhook_secrets_valid_at(t(30)),
        vec![&sealed("whsec-b2"), &sealed("whsec-a2")]
    );
    assert_eq!(
        merchant.previous_webhook_secret().map(|p| p.valid_until),
        Some(t(DAY))
    );
    given::<Merchant>([onboarded(), rotated.clone(), resealed])
        .when(MerchantCommand::ResealSecrets {
            client_salt: sealed("salt-a2"),
            webhook_secret: sealed("whsec-b2"),
            previous_webhook_secret: Some(sealed("whsec-a2")),
            at: t(30),
        })
        .then_nothing();
}

#[test]
fn a_reseal_covers_the_previous_secret_exactly_when_there_is_one() {
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::ResealSecrets {
            client_salt: sealed("salt-a2"),
            webhook_secret: sealed("whsec-a2"),
            previous_webhook_secret: Some(sealed("ghost")),
            at: t(20),
        })
        .then_error(MerchantError::PreviousSecretMismatch);
    let rotated = MerchantEvent::MerchantWebhookSecretRotated {
        secret: sealed("whsec-b"),
        previous_valid_until: t(DAY),
        at: t(10),
    };
    given::<Merchant>([onboarded(), rotated])
        .when(MerchantCommand::ResealSecrets {
            client_salt: sealed("salt-a2"),
            webhook_secret: sealed("whsec-b2"),
            previous_webhook_secret: None,
            at: t(20),
        })
        .then_error(MerchantError::PreviousSecretMismatch);
}

#[test]
fn a_merchant_may_have_its_own_api_rate_within_bounds() {
    let merchant = given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeApiRateLimit {
            per_minute: Some(500),
            at: t(10),
        })
        .then([MerchantEvent::MerchantApiRateLimitChanged {
            per_minute: Some(500),
            at: t(10),
        }])
        .expect("onboarded");
    assert_eq!(merchant.api_rate_per_minute(), Some(500));
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeApiRateLimit {
            per_minute: None,
            at: t(10),
        })
        .then_nothing();
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeApiRateLimit {
            per_minute: Some(0),
            at: t(10),
        })
        .then_error(MerchantError::Invalid(
            Problem::OutOfRange {
                min: 1,
                max: i64::from(MAX_API_RATE_PER_MINUTE),
            }
            .at("api_rate_per_minute"),
        ));
}

#[test]
fn the_refund_commission_treatment_is_retained_until_changed() {
    use crate::payment::refunds::RefundCommission;
    assert_eq!(
        Merchant::fold(&[onboarded()]).map(|m| m.refund_commission()),
        Some(RefundCommission::Retain)
    );
    let merchant = given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeRefundCommission {
            policy: RefundCommission::ReverseProportional,
            at: t(10),
        })
        .then([MerchantEvent::MerchantRefundCommissionChanged {
            from: RefundCommission::Retain,
            to: RefundCommission::ReverseProportional,
            at: t(10),
        }])
        .expect("onboarded");
    assert_eq!(
        merchant.refund_commission(),
        RefundCommission::ReverseProportional
    );
    given::<Merchant>([onboarded()])
        .when(MerchantCommand::ChangeRefundCommission {
            policy: RefundCommission::Retain,
            at: t(10),
        })
        .then_nothing();
}
