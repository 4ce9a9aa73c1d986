use super::*;
use crate::decider::Decider;
use crate::ids::GatewayId;
use crate::money::{BasisPoints, Currency};
use crate::payment::{PaymentCommand, PaymentDetails};
use crate::testing::fixtures::{gateway_id, merchant_id, payment_id, refund_id};
use crate::testing::{given, t};
use crate::validation::FieldError;

/// ₹499.00 at 3.50 %: commission 1 746.5 → 1 747 paise.
const AMOUNT: Paise = Paise(49_900);
const COMMISSION: Paise = Paise(1_747);

fn paid() -> Vec<PaymentEvent> {
    let gateway: GatewayId = gateway_id(1);
    vec![
        PaymentEvent::PaymentInitiated {
            payment_id: payment_id(1),
            merchant_id: merchant_id(),
            amount: AMOUNT,
            currency: Currency::Inr,
            merchant_order_id: "ORD-9271".to_owned(),
            details: PaymentDetails::default(),
            gateway_id: gateway,
            fee: BasisPoints(350),
            at: t(0),
        },
        PaymentEvent::PaymentSucceeded {
            gateway_id: gateway,
            amount: AMOUNT,
            fee: BasisPoints(350),
            commission: COMMISSION,
            psp_payment_id: "pay_FPoJKWQQ8lK13n".to_owned(),
            late_success: false,
            at: t(10),
        },
    ]
}

fn request(n: u128, amount: Paise, commission: RefundCommission) -> PaymentCommand {
    PaymentCommand::RequestRefund(RequestRefund {
        refund_id: refund_id(n),
        merchant_refund_id: format!("RF-{n}"),
        amount,
        reason: "returned".to_owned(),
        commission,
        at: t(100),
    })
}

fn requested(n: u128, amount: Paise, commission: RefundCommission) -> PaymentEvent {
    PaymentEvent::RefundRequested {
        refund_id: refund_id(n),
        merchant_refund_id: format!("RF-{n}"),
        amount,
        reason: "returned".to_owned(),
        commission,
        at: t(100),
    }
}

fn submitted(n: u128) -> PaymentEvent {
    PaymentEvent::RefundSubmitted {
        refund_id: refund_id(n),
        psp_refund_id: format!("rfnd_{n}"),
        at: t(101),
    }
}

fn succeed(n: u128) -> PaymentCommand {
    PaymentCommand::RecordRefundSucceeded {
        refund_id: refund_id(n),
        psp_refund_id: None,
        at: t(102),
    }
}

fn succeeded(n: u128, amount: Paise, total: Paise, reversed: Paise) -> PaymentEvent {
    PaymentEvent::PaymentRefunded {
        refund_id: refund_id(n).to_string(),
        amount,
        refunded_total: total,
        commission_reversed: reversed,
        psp_refund_id: Some(format!("rfnd_{n}")),
        at: t(102),
    }
}

fn fail(n: u128) -> PaymentCommand {
    PaymentCommand::RecordRefundFailed {
        refund_id: refund_id(n),
        code: "BAD_REQUEST_ERROR".to_owned(),
        reason: "payment more than 6 months old".to_owned(),
        at: t(102),
    }
}

fn failed(n: u128, amount: Paise) -> PaymentEvent {
    PaymentEvent::RefundFailed {
        refund_id: refund_id(n),
        amount,
        code: "BAD_REQUEST_ERROR".to_owned(),
        reason: "payment more than 6 months old".to_owned(),
        at: t(102),
    }
}

fn history(extra: impl IntoIterator<Item = PaymentEvent>) -> Vec<PaymentEvent> {
    paid().into_iter().chain(extra).collect()
}

const RETAIN: RefundCommission = RefundCommission::Retain;
const REVERSE: RefundCommission = RefundCommission::ReverseProportional;

#[test]
fn a_request_holds_its_amount_until_its_outcome() {
    let payment = given::<Payment>(paid())
        .when(request(1, Paise(10_000), RETAIN))
        .then([requested(1, Paise(10_000), RETAIN)])
        .expect("initiated");
    assert_eq!(payment.refundable(), Paise(39_900));
    assert_eq!(payment.refunded(), Paise::ZERO);
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    given::<Payment>(history([requested(1, Paise(10_000), RETAIN)]))
        .when(request(2, Paise(39_901), RETAIN))
        .then_error(PaymentError::RefundExceedsAmount {
            refundable: Paise(39_900),
            requested: Paise(39_901),
        });
}

#[test]
fn a_failed_refund_gives_its_amount_back() {
    let payment = given::<Payment>(history([requested(1, AMOUNT, RETAIN), submitted(1)]))
        .when(fail(1))
        .then([failed(1, AMOUNT)])
        .expect("initiated");
    assert_eq!(payment.refundable(), AMOUNT);
    assert_eq!(
        payment.refund(refund_id(1)).map(|r| r.status),
        Some(RefundStatus::Failed)
    );
    given::<Payment>(history([requested(1, AMOUNT, RETAIN), failed(1, AMOUNT)]))
        .when(request(2, AMOUNT, RETAIN))
        .then([requested(2, AMOUNT, RETAIN)]);
}

#[test]
fn partial_refunds_up_to_the_amount_refund_the_payment_in_full() {
    let first = history([requested(1, Paise(10_000), RETAIN), submitted(1)]);
    let payment = given::<Payment>(first.clone())
        .when(succeed(1))
        .then([succeeded(1, Paise(10_000), Paise(10_000), Paise::ZERO)])
        .expect("initiated");
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(payment.refunded(), Paise(10_000));
    let second = first
        .into_iter()
        .chain([
            succeeded(1, Paise(10_000), Paise(10_000), Paise::ZERO),
            requested(2, Paise(39_900), RETAIN),
            submitted(2),
        ])
        .collect::<Vec<_>>();
    let payment = given::<Payment>(second)
        .when(succeed(2))
        .then([succeeded(2, Paise(39_900), AMOUNT, Paise::ZERO)])
        .expect("initiated");
    assert_eq!(payment.status(), PaymentStatus::Refunded);
    assert_eq!(payment.refundable(), Paise::ZERO);
    assert_eq!(payment.commission(), Some(COMMISSION), "retained");
}

#[test]
fn only_a_paid_payment_is_refunded_and_only_by_a_positive_amount() {
    let unpaid = paid().into_iter().take(1).collect::<Vec<_>>();
    given::<Payment>(unpaid)
        .when(request(1, Paise(100), RETAIN))
        .then_error(PaymentError::NotRefundable {
            status: PaymentStatus::Created,
        });
    for amount in [Paise(0), Paise(-100)] {
        given::<Payment>(paid())
            .when(request(1, amount, RETAIN))
            .then_error(PaymentError::Invalid(FieldError {
                field: "amount",
                problem: Problem::NotPositive,
            }));
    }
    let PaymentCommand::RequestRefund(mut bad_id) = request(1, Paise(100), RETAIN) else {
        unreachable!("a refund request")
    };
    bad_id.merchant_refund_id = "RF 1".to_owned();
    given::<Payment>(paid())
        .when(PaymentCommand::RequestRefund(bad_id))
        .then_error(PaymentError::Invalid(FieldError {
            field: "refund_id",
            problem: Problem::BadCharacters {
                allowed: "letters, digits, '-', '_' and '.'",
            },
        }));
    let full = history([
        requested(1, AMOUNT, RETAIN),
        succeeded(1, AMOUNT, AMOUNT, Paise::ZERO),
    ]);
    given::<Payment>(full)
        .when(request(2, Paise(1), RETAIN))
        .then_error(PaymentError::RefundExceedsAmount {
            refundable: Paise::ZERO,
            requested: Paise(1),
        });
}

#[test]
fn outcomes_are_final() {
    let done = history([
        requested(1, AMOUNT, RETAIN),
        succeeded(1, AMOUNT, AMOUNT, Paise::ZERO),
    ]);
    for command in [succeed(1), fail(1)] {
        let refused = Payment::decide(&Payment::fold(&done), &command);
        assert_eq!(
            refused,
            Err(PaymentError::RefundAlreadySucceeded(refund_id(1)))
        );
        assert!(refused.is_err_and(|e| e.is_already_recorded()));
    }
    let lost = history([requested(1, AMOUNT, RETAIN), failed(1, AMOUNT)]);
    given::<Payment>(lost.clone())
        .when(fail(1))
        .then_error(PaymentError::RefundAlreadyFailed(refund_id(1)));
    let late = Payment::decide(&Payment::fold(&lost), &succeed(1));
    assert_eq!(
        late,
        Err(PaymentError::RefundSucceededAfterFailure(refund_id(1)))
    );
    assert!(
        late.is_err_and(|e| !e.is_already_recorded()),
        "ops must look"
    );
    given::<Payment>(paid())
        .when(succeed(9))
        .then_error(PaymentError::UnknownRefund(refund_id(9)));
}

#[test]
fn a_submission_is_recorded_once_and_an_outcome_may_overtake_it() {
    let submit = |psp: &str| PaymentCommand::RecordRefundSubmitted {
        refund_id: refund_id(1),
        psp_refund_id: psp.to_owned(),
        at: t(101),
    };
    given::<Payment>(history([requested(1, AMOUNT, RETAIN)]))
        .when(submit("rfnd_1"))
        .then([submitted(1)]);
    given::<Payment>(history([requested(1, AMOUNT, RETAIN), submitted(1)]))
        .when(submit("rfnd_1"))
        .then_nothing();
    given::<Payment>(history([requested(1, AMOUNT, RETAIN), submitted(1)]))
        .when(submit("rfnd_other"))
        .then_error(PaymentError::RefundSubmittedAs {
            psp_refund_id: "rfnd_1".to_owned(),
        });
    given::<Payment>(history([
        requested(1, AMOUNT, RETAIN),
        succeeded(1, AMOUNT, AMOUNT, Paise::ZERO),
    ]))
    .when(submit("rfnd_1"))
    .then_nothing();
    // The PSP's webhook arrives before the create call's answer is recorded.
    let payment = given::<Payment>(history([requested(1, AMOUNT, RETAIN)]))
        .when(PaymentCommand::RecordRefundSucceeded {
            refund_id: refund_id(1),
            psp_refund_id: Some("rfnd_1".to_owned()),
            at: t(102),
        })
        .then([succeeded(1, AMOUNT, AMOUNT, Paise::ZERO)])
        .expect("initiated");
    assert_eq!(
        payment
            .refund(refund_id(1))
            .and_then(|r| r.psp_refund_id.clone()),
        Some("rfnd_1".to_owned())
    );
}

#[test]
fn a_proportional_reversal_adds_up_to_the_commission_across_partials() {
    // Thirds of ₹499.00: cumulative shares 582.3 → 582, 1 164.7 → 1 165, 1 747.
    let thirds = [Paise(16_633), Paise(16_633), Paise(16_634)];
    let expected = [Paise(582), Paise(583), Paise(582)];
    let mut events = paid();
    let mut total = Paise::ZERO;
    for (n, (amount, reversed)) in (1..).zip(thirds.into_iter().zip(expected)) {
        events.push(requested(n, amount, REVERSE));
        events.push(submitted(n));
        total += amount;
        given::<Payment>(events.clone())
            .when(succeed(n))
            .then([succeeded(n, amount, total, reversed)]);
        events.push(succeeded(n, amount, total, reversed));
    }
    let payment = Payment::fold(&events).expect("initiated");
    assert_eq!(payment.commission_reversed(), COMMISSION);
    assert_eq!(payment.status(), PaymentStatus::Refunded);
}

#[test]
fn a_reversal_covers_only_refunds_requested_under_reverse_proportional() {
    let events = history([
        requested(1, Paise(10_000), RETAIN),
        succeeded(1, Paise(10_000), Paise(10_000), Paise::ZERO),
        requested(2, Paise(39_900), REVERSE),
        submitted(2),
    ]);
    // 1 747 × 39 900 / 49 900 = 1 396.9 → 1 397; the retained refund's share stays accrued.
    given::<Payment>(events).when(succeed(2)).then([succeeded(
        2,
        Paise(39_900),
        AMOUNT,
        Paise(1_397),
    )]);
}

#[test]
fn a_refund_the_psp_reported_without_a_request_counts_once() {
    let external = PaymentCommand::RecordRefund {
        refund_id: "rfnd_dashboard".to_owned(),
        amount: Paise(1_000),
        at: t(100),
    };
    let event = PaymentEvent::PaymentRefunded {
        refund_id: "rfnd_dashboard".to_owned(),
        amount: Paise(1_000),
        refunded_total: Paise(1_000),
        commission_reversed: Paise::ZERO,
        psp_refund_id: None,
        at: t(100),
    };
    let payment = given::<Payment>(paid())
        .when(external.clone())
        .then([event.clone()])
        .expect("initiated");
    assert_eq!(payment.refundable(), Paise(48_900));
    given::<Payment>(history([event]))
        .when(external)
        .then_error(PaymentError::RefundAlreadyRecorded {
            refund_id: "rfnd_dashboard".to_owned(),
        });
}
