use super::*;
use crate::testing::fixtures::{gateway_id, merchant_id, payment_id};
use crate::testing::{given, t};

fn merchant() -> MerchantSnapshot {
    MerchantSnapshot {
        merchant_id: merchant_id(),
        status: MerchantStatus::Active,
        fee: BasisPoints(350),
        thresholds: Thresholds::default(),
        balance_due: Paise::ZERO,
    }
}

fn initiate() -> InitiatePayment {
    InitiatePayment {
        payment_id: payment_id(1),
        merchant: merchant(),
        amount: Paise(49_900),
        currency: "INR".to_owned(),
        merchant_order_id: "ORD-9271".to_owned(),
        details: PaymentDetails::default(),
        gateway_id: gateway_id(1),
        at: t(0),
    }
}

fn initiated() -> PaymentEvent {
    PaymentEvent::PaymentInitiated {
        payment_id: payment_id(1),
        merchant_id: merchant_id(),
        amount: Paise(49_900),
        currency: Currency::Inr,
        merchant_order_id: "ORD-9271".to_owned(),
        details: PaymentDetails::default(),
        gateway_id: gateway_id(1),
        fee: BasisPoints(350),
        at: t(0),
    }
}

fn order_created() -> PaymentEvent {
    PaymentEvent::PspOrderCreated {
        gateway_id: gateway_id(1),
        psp_order_id: "order_DESlLckIVRkHWj".to_owned(),
        checkout: serde_json::json!({ "key": "rzp_test_x", "order_id": "order_DESlLckIVRkHWj" }),
        at: t(1),
    }
}

fn success(at: DateTime<Utc>) -> PaymentCommand {
    PaymentCommand::RecordSuccess {
        psp_payment_id: "pay_DESlfW9H8K9uqM".to_owned(),
        amount: Paise(49_900),
        at,
    }
}

fn succeeded(late_success: bool, at: DateTime<Utc>) -> PaymentEvent {
    PaymentEvent::PaymentSucceeded {
        gateway_id: gateway_id(1),
        amount: Paise(49_900),
        fee: BasisPoints(350),
        // 49 900 × 350 / 10 000 = 1 746.5 → 1 747 (half-up)
        commission: Paise(1_747),
        psp_payment_id: "pay_DESlfW9H8K9uqM".to_owned(),
        late_success,
        at,
    }
}

fn failure(at: DateTime<Utc>) -> PaymentCommand {
    PaymentCommand::RecordFailure {
        code: "BAD_REQUEST_ERROR".to_owned(),
        description: "Payment failed".to_owned(),
        at,
    }
}

fn failed(at: DateTime<Utc>) -> PaymentEvent {
    PaymentEvent::PaymentFailed {
        gateway_id: gateway_id(1),
        code: "BAD_REQUEST_ERROR".to_owned(),
        description: "Payment failed".to_owned(),
        at,
    }
}

fn reroute(to: u128, at: DateTime<Utc>) -> PaymentCommand {
    PaymentCommand::Reroute {
        to_gateway: gateway_id(to),
        reason: "HTTP 502".to_owned(),
        at,
    }
}

fn rerouted(from: u128, to: u128, attempt: u32, at: DateTime<Utc>) -> PaymentEvent {
    PaymentEvent::PaymentRerouted {
        from_gateway: gateway_id(from),
        to_gateway: gateway_id(to),
        attempt,
        reason: "HTTP 502".to_owned(),
        at,
    }
}

fn refund(id: &str, amount: Paise) -> PaymentCommand {
    PaymentCommand::RecordRefund {
        refund_id: id.to_owned(),
        amount,
        at: t(100),
    }
}

fn refunded(id: &str, amount: Paise, total: Paise) -> PaymentEvent {
    PaymentEvent::PaymentRefunded {
        refund_id: id.to_owned(),
        amount,
        refunded_total: total,
        commission_reversed: Paise::ZERO,
        psp_refund_id: None,
        at: t(100),
    }
}

#[test]
fn a_payment_is_initiated_with_the_fee_in_force() {
    let payment = given::<Payment>([])
        .when(PaymentCommand::Initiate(initiate()))
        .then([initiated()])
        .expect("initiated");
    assert_eq!(payment.status(), PaymentStatus::Created);
    assert_eq!(payment.fee(), BasisPoints(350));
    assert_eq!(
        payment.live_booking(),
        Some(Booking {
            gateway_id: gateway_id(1),
            amount: Paise(49_900),
            booked_at: t(0)
        })
    );
}

#[test]
fn a_suspended_or_closed_merchant_cannot_start_payments() {
    for status in [MerchantStatus::Suspended, MerchantStatus::Closed] {
        let command = InitiatePayment {
            merchant: MerchantSnapshot {
                status,
                ..merchant()
            },
            ..initiate()
        };
        given::<Payment>([])
            .when(PaymentCommand::Initiate(command))
            .then_error(PaymentError::MerchantNotActive { status });
    }
}

#[test]
fn a_merchant_owing_its_suspend_threshold_cannot_start_payments() {
    let owing = |balance_due| InitiatePayment {
        merchant: MerchantSnapshot {
            balance_due,
            ..merchant()
        },
        ..initiate()
    };
    given::<Payment>([])
        .when(PaymentCommand::Initiate(owing(Paise::rupees(10_000))))
        .then_error(PaymentError::BalanceDueOverLimit {
            balance_due: Paise::rupees(10_000),
            suspend_at: Paise::rupees(10_000),
        });
    given::<Payment>([])
        .when(PaymentCommand::Initiate(owing(
            Paise::rupees(10_000) - Paise(1),
        )))
        .then([initiated()]);
}

#[test]
fn initiation_refuses_bad_fields_naming_them() {
    let refuse = |command: InitiatePayment, field: &'static str, problem: Problem| {
        let then = given::<Payment>([]).when(PaymentCommand::Initiate(command));
        then.then_error(PaymentError::Invalid(problem.at(field)));
    };
    let amount_range = Problem::OutOfRange {
        min: 1,
        max: 1_000_000_000,
    };
    refuse(
        InitiatePayment {
            amount: Paise(0),
            ..initiate()
        },
        "amount",
        Problem::NotPositive,
    );
    refuse(
        InitiatePayment {
            amount: Paise(-100),
            ..initiate()
        },
        "amount",
        Problem::NotPositive,
    );
    refuse(
        InitiatePayment {
            amount: MAX_PAYMENT_AMOUNT + Paise(1),
            ..initiate()
        },
        "amount",
        amount_range,
    );
    refuse(
        InitiatePayment {
            currency: "USD".to_owned(),
            ..initiate()
        },
        "currency",
        Problem::Unsupported,
    );
    refuse(
        InitiatePayment {
            currency: "inr".to_owned(),
            ..initiate()
        },
        "currency",
        Problem::Unsupported,
    );
    refuse(
        InitiatePayment {
            merchant_order_id: String::new(),
            details: PaymentDetails::default(),
            ..initiate()
        },
        "merchant_order_id",
        Problem::Empty,
    );
    refuse(
        InitiatePayment {
            merchant_order_id: "A".repeat(41),
            details: PaymentDetails::default(),
            ..initiate()
        },
        "merchant_order_id",
        Problem::TooLong { max: 40 },
    );
    refuse(
        InitiatePayment {
            merchant_order_id: "ORD 1;DROP".to_owned(),
            details: PaymentDetails::default(),
            ..initiate()
        },
        "merchant_order_id",
        Problem::BadCharacters {
            allowed: "letters, digits, '-', '_' and '.'",
        },
    );
    let error = PaymentError::Invalid(Problem::Empty.at("merchant_order_id"));
    assert_eq!(error.field(), Some("merchant_order_id"));
}

#[test]
fn the_largest_payment_and_a_forty_character_order_id_are_accepted() {
    let command = InitiatePayment {
        amount: MAX_PAYMENT_AMOUNT,
        merchant_order_id: "A".repeat(40),
        details: PaymentDetails::default(),
        ..initiate()
    };
    let events = Payment::decide(&None, &PaymentCommand::Initiate(command)).expect("accepted");
    assert_eq!(events.len(), 1);
}

#[test]
fn a_payment_is_initiated_once() {
    given::<Payment>([initiated()])
        .when(PaymentCommand::Initiate(initiate()))
        .then_error(PaymentError::AlreadyInitiated);
    given::<Payment>([])
        .when(success(t(1)))
        .then_error(PaymentError::NotInitiated);
}

#[test]
fn the_psp_order_is_recorded_once_for_the_current_gateway() {
    let PaymentEvent::PspOrderCreated {
        gateway_id: gateway,
        psp_order_id,
        checkout,
        at,
    } = order_created()
    else {
        unreachable!("order_created builds a PspOrderCreated")
    };
    let record = PaymentCommand::RecordPspOrder {
        gateway_id: gateway,
        psp_order_id,
        checkout,
        at,
    };
    let payment = given::<Payment>([initiated()])
        .when(record.clone())
        .then([order_created()])
        .expect("initiated");
    assert_eq!(payment.status(), PaymentStatus::Pending);
    given::<Payment>([initiated(), order_created()])
        .when(record.clone())
        .then_nothing();
    given::<Payment>([initiated(), order_created()])
        .when(PaymentCommand::RecordPspOrder {
            gateway_id: gateway_id(1),
            psp_order_id: "order_other".to_owned(),
            checkout: serde_json::Value::Null,
            at: t(2),
        })
        .then_error(PaymentError::PspOrderAlreadyCreated {
            psp_order_id: "order_DESlLckIVRkHWj".to_owned(),
        });
    given::<Payment>([initiated(), rerouted(1, 2, 2, t(1))])
        .when(record)
        .then_error(PaymentError::StaleGateway {
            current: gateway_id(2),
            reported: gateway_id(1),
        });
}

#[test]
fn a_payment_is_rerouted_at_most_twice() {
    let payment = given::<Payment>([initiated()])
        .when(reroute(2, t(1)))
        .then([rerouted(1, 2, 2, t(1))])
        .expect("initiated");
    assert_eq!(payment.gateway_id(), gateway_id(2));
    assert_eq!(
        payment.live_booking().map(|b| (b.gateway_id, b.booked_at)),
        Some((gateway_id(2), t(1)))
    );
    given::<Payment>([initiated(), rerouted(1, 2, 2, t(1))])
        .when(reroute(3, t(2)))
        .then([rerouted(2, 3, 3, t(2))]);
    given::<Payment>([
        initiated(),
        rerouted(1, 2, 2, t(1)),
        rerouted(2, 3, 3, t(2)),
    ])
    .when(reroute(4, t(3)))
    .then_error(PaymentError::RerouteLimitReached { attempts: 3 });
}

#[test]
fn a_reroute_never_returns_to_a_gateway_already_tried() {
    given::<Payment>([initiated(), rerouted(1, 2, 2, t(1))])
        .when(reroute(1, t(2)))
        .then_error(PaymentError::GatewayAlreadyTried(gateway_id(1)));
}

#[test]
fn a_payment_with_a_psp_order_or_an_outcome_is_not_rerouted() {
    given::<Payment>([initiated(), order_created()])
        .when(reroute(2, t(2)))
        .then_error(PaymentError::PspOrderExists);
    given::<Payment>([initiated(), failed(t(2))])
        .when(reroute(2, t(3)))
        .then_error(PaymentError::AlreadyFailed);
}

#[test]
fn success_decides_the_commission_once_from_the_fee_at_initiation() {
    let payment = given::<Payment>([initiated(), order_created()])
        .when(success(t(10)))
        .then([succeeded(false, t(10))])
        .expect("initiated");
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(payment.commission(), Some(Paise(1_747)));
}

#[test]
fn a_success_before_the_psp_order_is_recorded_is_still_a_success() {
    given::<Payment>([initiated()])
        .when(success(t(10)))
        .then([succeeded(false, t(10))]);
}

#[test]
fn a_duplicate_success_is_refused_and_is_a_no_op() {
    let history = [initiated(), order_created(), succeeded(false, t(10))];
    given::<Payment>(history)
        .when(success(t(11)))
        .then_error(PaymentError::AlreadySucceeded);
    assert!(PaymentError::AlreadySucceeded.is_already_recorded());
}

#[test]
fn a_success_for_another_amount_is_refused() {
    given::<Payment>([initiated(), order_created()])
        .when(PaymentCommand::RecordSuccess {
            psp_payment_id: "pay_x".to_owned(),
            amount: Paise(100),
            at: t(10),
        })
        .then_error(PaymentError::AmountMismatch {
            expected: Paise(49_900),
            reported: Paise(100),
        });
}

#[test]
fn a_failure_releases_the_booking() {
    let payment = given::<Payment>([initiated(), order_created()])
        .when(failure(t(10)))
        .then([failed(t(10))])
        .expect("initiated");
    assert_eq!(payment.status(), PaymentStatus::Failed);
    assert_eq!(payment.live_booking(), None);
}

#[test]
fn a_duplicate_or_stale_failure_is_refused() {
    given::<Payment>([initiated(), failed(t(10))])
        .when(failure(t(11)))
        .then_error(PaymentError::AlreadyFailed);
    given::<Payment>([initiated(), succeeded(false, t(10))])
        .when(failure(t(11)))
        .then_error(PaymentError::AlreadySucceeded);
    assert!(PaymentError::AlreadyFailed.is_already_recorded());
}

#[test]
fn a_failure_needs_a_code() {
    given::<Payment>([initiated()])
        .when(PaymentCommand::RecordFailure {
            code: " ".to_owned(),
            description: String::new(),
            at: t(1),
        })
        .then_error(Problem::Empty.at("code").into());
}

#[test]
fn a_late_success_after_a_failure_is_accepted_once() {
    let history = [initiated(), order_created(), failed(t(10))];
    let payment = given::<Payment>(history.clone())
        .when(success(t(60)))
        .then([succeeded(true, t(60))])
        .expect("initiated");
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(payment.success().map(|s| s.late), Some(true));
    // The late success books the gateway again.
    assert_eq!(payment.live_booking().map(|b| b.booked_at), Some(t(60)));
    assert!(payment.failure().is_some(), "the failure stays on record");
    given::<Payment>(history.into_iter().chain([succeeded(true, t(60))]))
        .when(success(t(61)))
        .then_error(PaymentError::AlreadySucceeded);
}

#[test]
fn refunds_the_psp_reported_keep_the_commission() {
    let history = [initiated(), order_created(), succeeded(false, t(10))];
    let payment = given::<Payment>(history.clone())
        .when(refund("rfnd_1", Paise(10_000)))
        .then([refunded("rfnd_1", Paise(10_000), Paise(10_000))])
        .expect("initiated");
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(payment.refunded(), Paise(10_000));
    assert_eq!(payment.commission(), Some(Paise(1_747)));
    let payment = given::<Payment>(history.into_iter().chain([refunded(
        "rfnd_1",
        Paise(10_000),
        Paise(10_000),
    )]))
    .when(refund("rfnd_2", Paise(39_900)))
    .then([refunded("rfnd_2", Paise(39_900), Paise(49_900))])
    .expect("initiated");
    assert_eq!(payment.status(), PaymentStatus::Refunded);
    assert_eq!(payment.commission(), Some(Paise(1_747)));
}

#[test]
fn refunds_cannot_exceed_the_amount_or_repeat() {
    let history = [
        initiated(),
        succeeded(false, t(10)),
        refunded("rfnd_1", Paise(40_000), Paise(40_000)),
    ];
    given::<Payment>(history.clone())
        .when(refund("rfnd_2", Paise(9_901)))
        .then_error(PaymentError::RefundExceedsAmount {
            refundable: Paise(9_900),
            requested: Paise(9_901),
        });
    given::<Payment>(history)
        .when(refund("rfnd_1", Paise(40_000)))
        .then_error(PaymentError::RefundAlreadyRecorded {
            refund_id: "rfnd_1".to_owned(),
        });
}

#[test]
fn only_a_succeeded_payment_is_refunded() {
    given::<Payment>([initiated(), order_created()])
        .when(refund("rfnd_1", Paise(100)))
        .then_error(PaymentError::NotRefundable {
            status: PaymentStatus::Pending,
        });
    given::<Payment>([initiated(), failed(t(10))])
        .when(refund("rfnd_1", Paise(100)))
        .then_error(PaymentError::NotRefundable {
            status: PaymentStatus::Failed,
        });
}

#[test]
fn a_booking_knows_how_to_release_itself() {
    let payment = Payment::fold(&[initiated()]).expect("initiated");
    let booking = payment.live_booking().expect("booked at initiation");
    assert_eq!(
        booking.release(payment.id(), t(5)),
        GatewayCommand::ReleaseBooking {
            payment_id: payment_id(1),
            amount: Paise(49_900),
            booked_at: t(0),
            at: t(5),
        }
    );
}

#[test]
fn payment_details_are_checked_and_normalised() {
    let mut command = initiate();
    command.details = PaymentDetails {
        customer_name: Some("  Asha  ".into()),
        customer_email: Some("asha@example.com".into()),
        customer_phone: Some("+919867800451".into()),
        redirect_url: Some("https://shop.example/return".into()),
        notes: [("booking".to_owned(), "bk_1".to_owned())].into(),
    };
    let payment = Payment::decide(&None, &PaymentCommand::Initiate(command))
        .expect("valid details")
        .iter()
        .fold(None, Payment::evolve)
        .expect("initiated");
    assert_eq!(payment.details().customer_name.as_deref(), Some("Asha"));
    assert_eq!(
        payment.details().customer_phone.as_deref(),
        Some("919867800451")
    );

    for (bad, field) in [
        (
            PaymentDetails {
                customer_email: Some("not-an-email".into()),
                ..PaymentDetails::default()
            },
            "customer.email",
        ),
        (
            PaymentDetails {
                customer_phone: Some("12".into()),
                ..PaymentDetails::default()
            },
            "customer.phone",
        ),
        (
            PaymentDetails {
                redirect_url: Some("javascript:alert(1)".into()),
                ..PaymentDetails::default()
            },
            "redirect_url",
        ),
        (
            PaymentDetails {
                notes: (0..16).map(|i| (format!("k{i}"), "v".to_owned())).collect(),
                ..PaymentDetails::default()
            },
            "notes",
        ),
    ] {
        let mut command = initiate();
        command.details = bad;
        let refused = Payment::decide(&None, &PaymentCommand::Initiate(command));
        assert_eq!(refused.map_err(|e| e.field()), Err(Some(field)));
    }
}

#[test]
fn a_status_has_one_name_shown_and_stored_everywhere() {
    for status in PaymentStatus::ALL {
        let name = status.as_str();
        assert_eq!(PaymentStatus::parse(name), Some(status));
        assert_eq!(serde_json::to_value(status).expect("json"), name);
        assert_eq!(status.to_string(), name);
    }
    assert_eq!(
        PaymentStatus::parse("initiated"),
        Some(PaymentStatus::Created)
    );
    assert_eq!(
        PaymentStatus::parse("awaiting_payment"),
        Some(PaymentStatus::Pending)
    );
    assert_eq!(PaymentStatus::parse("paid"), None);
    let finals: Vec<_> = PaymentStatus::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .collect();
    assert_eq!(
        finals,
        [
            PaymentStatus::Succeeded,
            PaymentStatus::Failed,
            PaymentStatus::Refunded
        ]
    );
}
