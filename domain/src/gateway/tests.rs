use super::*;
use crate::testing::fixtures::{gateway_id, merchant_id, other_merchant_id, payment_id, sealed};
use crate::testing::{given, t};
use crate::validation::Problem;

const MINUTE: i64 = 60;

fn registered_with(settings: GatewaySettings) -> GatewayEvent {
    GatewayEvent::GatewayRegistered {
        gateway_id: gateway_id(1),
        merchant_id: merchant_id(),
        provider: Provider::Razorpay,
        label: "Razorpay main".to_owned(),
        credentials: sealed("rzp-creds"),
        settings,
        enabled: true,
        at: t(0),
    }
}

fn registered() -> GatewayEvent {
    registered_with(GatewaySettings::default())
}

fn limited(limit: Paise) -> GatewayEvent {
    registered_with(GatewaySettings {
        monthly_limit: Some(limit),
        ..GatewaySettings::default()
    })
}

fn capped(cap: u32) -> GatewayEvent {
    registered_with(GatewaySettings {
        rpm_cap: Some(cap),
        ..GatewaySettings::default()
    })
}

fn request(amount: Paise, at: DateTime<Utc>) -> BookingRequest {
    BookingRequest {
        merchant_id: merchant_id(),
        amount,
        settings: CheckoutSettings::default(),
        at,
    }
}

fn book(n: u128, amount: Paise, at: DateTime<Utc>) -> GatewayCommand {
    GatewayCommand::Book {
        payment_id: payment_id(n),
        request: request(amount, at),
    }
}

fn booked(n: u128, amount: Paise, at: DateTime<Utc>) -> GatewayEvent {
    GatewayEvent::GatewayBooked {
        payment_id: payment_id(n),
        amount,
        late_success: false,
        at,
    }
}

fn released(n: u128, amount: Paise, booked_at: DateTime<Utc>, at: DateTime<Utc>) -> GatewayEvent {
    GatewayEvent::GatewayBookingReleased {
        payment_id: payment_id(n),
        amount,
        booked_at,
        at,
    }
}

fn unavailable(reason: Ineligible) -> GatewayError {
    GatewayError::Unavailable(reason)
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("valid RFC 3339 instant")
}

#[test]
fn a_gateway_is_registered_with_sealed_credentials() {
    let command = GatewayCommand::Register(RegisterGateway {
        gateway_id: gateway_id(1),
        merchant_id: merchant_id(),
        provider: Provider::Razorpay,
        label: "  Razorpay main ".to_owned(),
        credentials: sealed("rzp-creds"),
        settings: GatewaySettings::default(),
        enabled: true,
        at: t(0),
    });
    let gateway = given::<Gateway>([])
        .when(command)
        .then([registered()])
        .expect("registered");
    assert_eq!(gateway.label(), "Razorpay main");
    assert!(gateway.is_enabled() && !gateway.is_retired());
    assert_eq!(gateway.provider(), Provider::Razorpay);
    assert!(
        !format!("{gateway:?}").contains("rzp-creds"),
        "debug output must not show the sealed blob"
    );
}

#[test]
fn registration_refuses_bad_settings_naming_the_field() {
    let register = |settings: GatewaySettings, label: &str| {
        GatewayCommand::Register(RegisterGateway {
            gateway_id: gateway_id(1),
            merchant_id: merchant_id(),
            provider: Provider::Payu,
            label: label.to_owned(),
            credentials: sealed("c"),
            settings,
            enabled: true,
            at: t(0),
        })
    };
    let ok = GatewaySettings::default();
    given::<Gateway>([])
        .when(register(ok, " "))
        .then_error(Problem::Empty.at("label").into());
    given::<Gateway>([])
        .when(register(
            GatewaySettings {
                rpm_cap: Some(0),
                ..ok
            },
            "PayU",
        ))
        .then_error(
            Problem::OutOfRange { min: 1, max: 1_000 }
                .at("rpm_cap")
                .into(),
        );
    given::<Gateway>([])
        .when(register(
            GatewaySettings {
                rpm_cap: Some(MAX_RPM_CAP + 1),
                ..ok
            },
            "PayU",
        ))
        .then_error(
            Problem::OutOfRange { min: 1, max: 1_000 }
                .at("rpm_cap")
                .into(),
        );
    given::<Gateway>([])
        .when(register(
            GatewaySettings {
                monthly_limit: Some(Paise(0)),
                ..ok
            },
            "PayU",
        ))
        .then_error(Problem::NotPositive.at("monthly_limit").into());
    given::<Gateway>([registered()])
        .when(register(ok, "PayU"))
        .then_error(GatewayError::AlreadyRegistered);
}

#[test]
fn nothing_but_registration_is_accepted_before_it() {
    given::<Gateway>([])
        .when(book(1, Paise(100), t(1)))
        .then_error(GatewayError::NotRegistered);
}

#[test]
fn booking_an_enabled_gateway_records_the_booking() {
    let gateway = given::<Gateway>([registered()])
        .when(book(1, Paise::rupees(500), t(10)))
        .then([booked(1, Paise::rupees(500), t(10))])
        .expect("registered");
    let month = IstMonth::of(t(10));
    assert_eq!(gateway.usage().volume_in(month), Paise::rupees(500));
    assert_eq!(gateway.usage().bookings_in(month), 1);
    assert_eq!(gateway.usage().last_booked_at(), Some(t(10)));
}

#[test]
fn a_toggled_off_gateway_refuses_bookings() {
    given::<Gateway>([registered()])
        .when(GatewayCommand::Toggle {
            enabled: false,
            at: t(1),
        })
        .then([GatewayEvent::GatewayToggled {
            enabled: false,
            at: t(1),
        }]);
    given::<Gateway>([
        registered(),
        GatewayEvent::GatewayToggled {
            enabled: false,
            at: t(1),
        },
    ])
    .when(book(1, Paise(100), t(2)))
    .then_error(unavailable(Ineligible::Disabled));
}

#[test]
fn toggling_to_the_current_state_decides_nothing() {
    given::<Gateway>([registered()])
        .when(GatewayCommand::Toggle {
            enabled: true,
            at: t(1),
        })
        .then_nothing();
}

#[test]
fn a_gateway_of_another_merchant_refuses_bookings() {
    let request = BookingRequest {
        merchant_id: other_merchant_id(),
        ..request(Paise(100), t(1))
    };
    given::<Gateway>([registered()])
        .when(GatewayCommand::Book {
            payment_id: payment_id(1),
            request,
        })
        .then_error(unavailable(Ineligible::OtherMerchant));
}

#[test]
fn a_booking_that_would_pass_the_monthly_limit_is_refused() {
    let history = [
        limited(Paise::rupees(1_000)),
        booked(1, Paise::rupees(700), t(10)),
    ];
    given::<Gateway>(history.clone())
        .when(book(2, Paise::rupees(301), t(20)))
        .then_error(unavailable(Ineligible::MonthlyLimitReached {
            limit: Paise::rupees(1_000),
            volume: Paise::rupees(700),
            amount: Paise::rupees(301),
        }));
    // Exactly reaching the limit is allowed.
    given::<Gateway>(history)
        .when(book(2, Paise::rupees(300), t(20)))
        .then([booked(2, Paise::rupees(300), t(20))]);
}

#[test]
fn a_new_ist_month_starts_with_no_volume() {
    let end_of_march = utc("2026-03-31T18:29:59Z"); // 23:59:59 IST
    let start_of_april = utc("2026-03-31T18:30:00Z"); // 00:00:00 IST, 1 April
    let history = [
        limited(Paise::rupees(1_000)),
        booked(1, Paise::rupees(1_000), end_of_march),
    ];
    given::<Gateway>(history.clone())
        .when(book(2, Paise::rupees(1), end_of_march))
        .then_error(unavailable(Ineligible::MonthlyLimitReached {
            limit: Paise::rupees(1_000),
            volume: Paise::rupees(1_000),
            amount: Paise::rupees(1),
        }));
    let gateway = given::<Gateway>(history)
        .when(book(2, Paise::rupees(1_000), start_of_april))
        .then([booked(2, Paise::rupees(1_000), start_of_april)])
        .expect("registered");
    assert_eq!(
        gateway.usage().volume_in(IstMonth::of(start_of_april)),
        Paise::rupees(1_000)
    );
    assert_eq!(
        gateway.usage().volume_in(IstMonth::of(end_of_march)),
        Paise::ZERO
    );
}

#[test]
fn a_released_booking_no_longer_counts_towards_the_month() {
    let history = [
        limited(Paise::rupees(1_000)),
        booked(1, Paise::rupees(800), t(10)),
        released(1, Paise::rupees(800), t(10), t(20)),
    ];
    let gateway = given::<Gateway>(history)
        .when(book(2, Paise::rupees(1_000), t(30)))
        .then([booked(2, Paise::rupees(1_000), t(30))])
        .expect("registered");
    assert_eq!(gateway.usage().bookings_in(IstMonth::of(t(30))), 1);
}

#[test]
fn releasing_a_booking_from_an_earlier_month_leaves_this_month_alone() {
    let march = utc("2026-03-20T10:00:00Z");
    let april = utc("2026-04-02T10:00:00Z");
    let gateway = Gateway::fold(&[
        limited(Paise::rupees(1_000)),
        booked(1, Paise::rupees(400), march),
        booked(2, Paise::rupees(600), april),
        released(1, Paise::rupees(400), march, april),
    ])
    .expect("registered");
    assert_eq!(
        gateway.usage().volume_in(IstMonth::of(april)),
        Paise::rupees(600)
    );
}

#[test]
fn a_late_success_books_unconditionally() {
    let history = [
        limited(Paise::rupees(1_000)),
        booked(1, Paise::rupees(1_000), t(10)),
        GatewayEvent::GatewayToggled {
            enabled: false,
            at: t(11),
        },
        GatewayEvent::GatewayRetired {
            reason: "closed account".to_owned(),
            at: t(12),
        },
    ];
    let late = GatewayEvent::GatewayBooked {
        payment_id: payment_id(2),
        amount: Paise::rupees(500),
        late_success: true,
        at: t(20),
    };
    let gateway = given::<Gateway>(history)
        .when(GatewayCommand::BookLateSuccess {
            payment_id: payment_id(2),
            amount: Paise::rupees(500),
            at: t(20),
        })
        .then([late])
        .expect("registered");
    // Volume counts it (past the limit), but it is neither a request nor a use.
    assert_eq!(
        gateway.usage().volume_in(IstMonth::of(t(20))),
        Paise::rupees(1_500)
    );
    assert_eq!(gateway.usage().requests_in_window(t(20)), 1);
    assert_eq!(gateway.usage().last_booked_at(), Some(t(10)));
}

#[test]
fn releases_are_recorded_even_on_a_retired_gateway() {
    let history = [
        registered(),
        booked(1, Paise(100), t(1)),
        GatewayEvent::GatewayRetired {
            reason: "closed".to_owned(),
            at: t(2),
        },
    ];
    given::<Gateway>(history)
        .when(GatewayCommand::ReleaseBooking {
            payment_id: payment_id(1),
            amount: Paise(100),
            booked_at: t(1),
            at: t(3),
        })
        .then([released(1, Paise(100), t(1), t(3))]);
}

#[test]
fn the_rpm_cap_refuses_bookings_within_a_minute() {
    let history = [
        capped(2),
        booked(1, Paise(100), t(0)),
        booked(2, Paise(100), t(30)),
    ];
    given::<Gateway>(history.clone())
        .when(book(3, Paise(100), t(MINUTE - 1)))
        .then_error(unavailable(Ineligible::RateLimited { cap: 2 }));
    // A minute after the first booking, it has left the window.
    given::<Gateway>(history)
        .when(book(3, Paise(100), t(MINUTE)))
        .then([booked(3, Paise(100), t(MINUTE))]);
}

#[test]
fn the_merchant_default_cap_applies_to_gateways_without_their_own() {
    let settings = CheckoutSettings {
        default_rpm_cap: Some(1),
        ..CheckoutSettings::default()
    };
    let request = BookingRequest {
        settings,
        ..request(Paise(100), t(5))
    };
    given::<Gateway>([registered(), booked(1, Paise(100), t(0))])
        .when(GatewayCommand::Book {
            payment_id: payment_id(2),
            request,
        })
        .then_error(unavailable(Ineligible::RateLimited { cap: 1 }));
    // The gateway's own cap wins over the default.
    given::<Gateway>([capped(5), booked(1, Paise(100), t(0))])
        .when(GatewayCommand::Book {
            payment_id: payment_id(2),
            request,
        })
        .then([booked(2, Paise(100), t(5))]);
}

#[test]
fn the_seeds_one_per_minute_setting_allows_one_booking_a_minute() {
    let history = [capped(1), booked(1, Paise(100), t(0))];
    given::<Gateway>(history.clone())
        .when(book(2, Paise(100), t(59)))
        .then_error(unavailable(Ineligible::RateLimited { cap: 1 }));
    given::<Gateway>(history)
        .when(book(2, Paise(100), t(60)))
        .then([booked(2, Paise(100), t(60))]);
}

#[test]
fn a_temporarily_failed_gateway_rests_for_the_merchant_setting() {
    let failed = GatewayEvent::GatewayTemporarilyFailed {
        reason: "HTTP 503".to_owned(),
        until: t(300),
        at: t(0),
    };
    given::<Gateway>([registered()])
        .when(GatewayCommand::MarkTemporarilyFailed {
            reason: "HTTP 503".to_owned(),
            rest_secs: 300,
            at: t(0),
        })
        .then([failed.clone()]);
    given::<Gateway>([registered(), failed.clone()])
        .when(book(1, Paise(100), t(299)))
        .then_error(unavailable(Ineligible::TemporarilyFailed { until: t(300) }));
    given::<Gateway>([registered(), failed.clone()])
        .when(book(1, Paise(100), t(300)))
        .then([booked(1, Paise(100), t(300))]);
    // A merchant who turned skipping off still routes to it.
    let settings = CheckoutSettings {
        skip_temporarily_failed: false,
        ..CheckoutSettings::default()
    };
    let request = BookingRequest {
        settings,
        ..request(Paise(100), t(10))
    };
    given::<Gateway>([registered(), failed])
        .when(GatewayCommand::Book {
            payment_id: payment_id(1),
            request,
        })
        .then([booked(1, Paise(100), t(10))]);
}

#[test]
fn a_second_failure_report_never_shortens_the_rest() {
    let failed = GatewayEvent::GatewayTemporarilyFailed {
        reason: "timeout".to_owned(),
        until: t(600),
        at: t(0),
    };
    given::<Gateway>([registered(), failed])
        .when(GatewayCommand::MarkTemporarilyFailed {
            reason: "timeout".to_owned(),
            rest_secs: 60,
            at: t(10),
        })
        .then([GatewayEvent::GatewayTemporarilyFailed {
            reason: "timeout".to_owned(),
            until: t(600),
            at: t(10),
        }]);
}

#[test]
fn a_rest_outside_one_second_to_a_day_is_refused() {
    given::<Gateway>([registered()])
        .when(GatewayCommand::MarkTemporarilyFailed {
            reason: "x".to_owned(),
            rest_secs: 0,
            at: t(0),
        })
        .then_error(
            Problem::OutOfRange {
                min: 1,
                max: 86_400,
            }
            .at("rest_secs")
            .into(),
        );
}

#[test]
fn a_temporary_failure_can_be_cleared_early() {
    let failed = GatewayEvent::GatewayTemporarilyFailed {
        reason: "x".to_owned(),
        until: t(300),
        at: t(0),
    };
    given::<Gateway>([registered(), failed.clone()])
        .when(GatewayCommand::ClearTemporaryFailure { at: t(10) })
        .then([GatewayEvent::GatewayRecovered { at: t(10) }]);
    given::<Gateway>([registered(), failed])
        .when(GatewayCommand::ClearTemporaryFailure { at: t(300) })
        .then_nothing();
}

#[test]
fn a_correction_of_settings_or_credentials_ends_the_rest() {
    let failed = GatewayEvent::GatewayTemporarilyFailed {
        reason: "HTTP 401".to_owned(),
        until: t(300),
        at: t(0),
    };
    let settings = GatewaySettings {
        priority: 3,
        ..GatewaySettings::default()
    };
    given::<Gateway>([registered(), failed.clone()])
        .when(GatewayCommand::ChangeSettings {
            label: "Main".to_owned(),
            settings,
            at: t(10),
        })
        .then([
            GatewayEvent::GatewaySettingsChanged {
                label: "Main".to_owned(),
                settings,
                at: t(10),
            },
            GatewayEvent::GatewayRecovered { at: t(10) },
        ]);
    let gateway = given::<Gateway>([registered(), failed.clone()])
        .when(GatewayCommand::RotateCredentials {
            credentials: sealed("fixed"),
            at: t(10),
        })
        .then([
            GatewayEvent::GatewayCredentialsRotated {
                credentials: sealed("fixed"),
                at: t(10),
            },
            GatewayEvent::GatewayRecovered { at: t(10) },
        ])
        .expect("registered");
    assert!(!gateway.is_temporarily_failed(t(11)));
    // The same credentials again change nothing, so the rest stays.
    given::<Gateway>([registered(), failed.clone()])
        .when(GatewayCommand::RotateCredentials {
            credentials: sealed("rzp-creds"),
            at: t(10),
        })
        .then_nothing();
    // After the rest ran out there is nothing to end.
    given::<Gateway>([registered(), failed])
        .when(GatewayCommand::RotateCredentials {
            credentials: sealed("fixed"),
            at: t(400),
        })
        .then([GatewayEvent::GatewayCredentialsRotated {
            credentials: sealed("fixed"),
            at: t(400),
        }]);
}

#[test]
fn a_retired_gateway_refuses_bookings_and_changes() {
    let retired = GatewayEvent::GatewayRetired {
        reason: "moved to PayU".to_owned(),
        at: t(5),
    };
    given::<Gateway>([registered()])
        .when(GatewayCommand::Retire {
            reason: "moved to PayU".to_owned(),
            at: t(5),
        })
        .then([retired.clone()]);
    given::<Gateway>([registered(), retired.clone()])
        .when(book(1, Paise(100), t(6)))
        .then_error(unavailable(Ineligible::Retired));
    given::<Gateway>([registered(), retired.clone()])
        .when(GatewayCommand::Toggle {
            enabled: false,
            at: t(6),
        })
        .then_error(GatewayError::Retired);
    given::<Gateway>([registered(), retired])
        .when(GatewayCommand::Retire {
            reason: "again".to_owned(),
            at: t(7),
        })
        .then_nothing();
}

#[test]
fn settings_and_credentials_can_change() {
    let settings = GatewaySettings {
        priority: 7,
        monthly_limit: Some(Paise::rupees(50_000)),
        rpm_cap: Some(30),
    };
    let gateway = given::<Gateway>([registered()])
        .when(GatewayCommand::ChangeSettings {
            label: "Main".to_owned(),
            settings,
            at: t(1),
        })
        .then([GatewayEvent::GatewaySettingsChanged {
            label: "Main".to_owned(),
            settings,
            at: t(1),
        }])
        .expect("registered");
    assert_eq!(gateway.settings().priority, 7);
    given::<Gateway>([registered()])
        .when(GatewayCommand::RotateCredentials {
            credentials: sealed("new"),
            at: t(1),
        })
        .then([GatewayEvent::GatewayCredentialsRotated {
            credentials: sealed("new"),
            at: t(1),
        }]);
    given::<Gateway>([registered()])
        .when(GatewayCommand::RotateCredentials {
            credentials: sealed("rzp-creds"),
            at: t(1),
        })
        .then_nothing();
}

#[test]
fn the_booking_window_stays_bounded_however_long_the_stream() {
    let mut gateway = Gateway::fold(&[registered()]);
    for n in 0..5_000 {
        gateway = Gateway::evolve(gateway, &booked(n, Paise(1), t(0)));
    }
    let gateway = gateway.expect("registered");
    assert_eq!(gateway.usage().recent_bookings.len(), MAX_RPM_CAP as usize);
    let gateway =
        Gateway::evolve(Some(gateway), &booked(5_000, Paise(1), t(61))).expect("registered");
    assert_eq!(
        gateway.usage().recent_bookings.len(),
        1,
        "instants older than a minute are dropped"
    );
    assert_eq!(gateway.usage().bookings_in(IstMonth::of(t(61))), 5_001);
}

#[test]
fn credentials_are_resealed_even_on_a_retired_gateway() {
    let retired = GatewayEvent::GatewayRetired {
        reason: "closed account".to_owned(),
        at: t(5),
    };
    let gateway = given::<Gateway>([registered(), retired.clone()])
        .when(GatewayCommand::ResealCredentials {
            credentials: sealed("rzp-creds-k2"),
            at: t(10),
        })
        .then([GatewayEvent::GatewayCredentialsResealed {
            credentials: sealed("rzp-creds-k2"),
            at: t(10),
        }])
        .expect("registered");
    assert_eq!(gateway.credentials(), &sealed("rzp-creds-k2"));
    assert!(gateway.is_retired());
    given::<Gateway>([registered()])
        .when(GatewayCommand::ResealCredentials {
            credentials: sealed("rzp-creds"),
            at: t(10),
        })
        .then_nothing();
    given::<Gateway>([registered(), retired])
        .when(GatewayCommand::RotateCredentials {
            credentials: sealed("other"),
            at: t(10),
        })
        .then_error(GatewayError::Retired);
}
