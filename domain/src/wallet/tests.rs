use super::*;
use crate::testing::fixtures::{payment_id, payout_id};
use crate::testing::{given, t};
use crate::validation::Problem;

/// The accrual of `commission` on a payment whose amount at 3.5 % gives exactly that.
fn accrued(n: u128, commission: Paise) -> WalletEvent {
    let amount = Paise(commission.0 * 10_000 / 350);
    assert_eq!(
        BasisPoints(350).of(amount),
        commission,
        "a consistent fixture"
    );
    WalletEvent::CommissionAccrued {
        payment_id: payment_id(n),
        amount,
        fee: BasisPoints(350),
        commission,
        at: t(0),
    }
}

fn accrue(amount: Paise, fee: BasisPoints, commission: Paise) -> WalletCommand {
    WalletCommand::AccrueCommission {
        payment_id: payment_id(1),
        amount,
        fee,
        commission,
        at: t(0),
    }
}

fn requested(n: u128, amount: Paise) -> WalletEvent {
    WalletEvent::PayoutRequested {
        payout_id: payout_id(n),
        amount,
        at: t(10),
    }
}

fn paid(n: u128, amount: Paise) -> WalletEvent {
    WalletEvent::CommissionPaidOut {
        payout_id: payout_id(n),
        amount,
        reference: "UTR123".to_owned(),
        at: t(20),
    }
}

fn reversed(n: u128, amount: Paise, was_paid_out: bool) -> WalletEvent {
    WalletEvent::PayoutReversed {
        payout_id: payout_id(n),
        amount,
        was_paid_out,
        reason: PayoutReversalReason::Reversed,
        detail: "beneficiary bank reversed".to_owned(),
        at: t(30),
    }
}

fn request_payout(n: u128, amount: Paise) -> WalletCommand {
    WalletCommand::RequestPayout {
        payout_id: payout_id(n),
        amount,
        at: t(10),
    }
}

fn mark_paid(n: u128) -> WalletCommand {
    WalletCommand::RecordPayoutPaid {
        payout_id: payout_id(n),
        reference: "UTR123".to_owned(),
        at: t(20),
    }
}

fn mark_reversed(n: u128) -> WalletCommand {
    WalletCommand::RecordPayoutReversed {
        payout_id: payout_id(n),
        reason: PayoutReversalReason::Reversed,
        detail: "beneficiary bank reversed".to_owned(),
        at: t(30),
    }
}

fn settle(amount: Paise) -> WalletCommand {
    WalletCommand::RecordManualSettlement {
        reference: "NEFT-881".to_owned(),
        amount,
        note: "paid by cheque".to_owned(),
        at: t(40),
    }
}

fn settled(amount: Paise) -> WalletEvent {
    WalletEvent::ManualSettlementRecorded {
        reference: "NEFT-881".to_owned(),
        amount,
        note: "paid by cheque".to_owned(),
        at: t(40),
    }
}

#[test]
fn the_commission_of_the_amount_at_the_fee_accrues() {
    let wallet = given::<Wallet>([])
        .when(accrue(Paise(10_000), BasisPoints(350), Paise(350)))
        .then([accrued(1, Paise(350))]);
    assert_eq!(wallet.balance_due(), Paise(350));
    assert_eq!(wallet.accruals(), 1);
    // 49 900 × 3.5 % = 1 746.5, rounded half-up.
    given::<Wallet>([accrued(2, Paise(350))])
        .when(accrue(Paise(49_900), BasisPoints(350), Paise(1_747)))
        .then([WalletEvent::CommissionAccrued {
            payment_id: payment_id(1),
            amount: Paise(49_900),
            fee: BasisPoints(350),
            commission: Paise(1_747),
            at: t(0),
        }]);
}

#[test]
fn a_commission_that_is_not_the_amount_at_the_fee_is_refused() {
    let mismatch = |amount: i64, fee: u32, commission: i64, expected: i64| {
        given::<Wallet>([accrued(2, Paise(350))])
            .when(accrue(Paise(amount), BasisPoints(fee), Paise(commission)))
            .then_error(WalletError::CommissionMismatch {
                payment_id: payment_id(1),
                amount: Paise(amount),
                fee: BasisPoints(fee),
                commission: Paise(commission),
                expected: Paise(expected),
            });
    };
    // Rounded down instead of half-up.
    mismatch(49_900, 350, 1_746, 1_747);
    // A round figure that is not the fee's: ₹1,500 on ₹60,000 is 2.5 %, not 3.5 %.
    mismatch(6_000_000, 350, 150_000, 210_000);
    // The fee of another merchant.
    mismatch(10_000, 200, 350, 200);
    // No amount, no commission to accrue.
    given::<Wallet>([])
        .when(accrue(Paise::ZERO, BasisPoints(350), Paise::ZERO))
        .then_error(WalletError::Invalid(Problem::NotPositive.at("amount")));
}

#[test]
fn the_accrual_for_a_success_carries_the_payments_commission() {
    let success = crate::payment::PaymentEvent::PaymentSucceeded {
        gateway_id: crate::testing::fixtures::gateway_id(1),
        amount: Paise(10_000),
        fee: BasisPoints(350),
        commission: Paise(350),
        psp_payment_id: "pay_1".to_owned(),
        late_success: false,
        at: t(0),
    };
    assert_eq!(
        WalletCommand::accrual_for(payment_id(1), &success),
        Some(WalletCommand::AccrueCommission {
            payment_id: payment_id(1),
            amount: Paise(10_000),
            fee: BasisPoints(350),
            commission: Paise(350),
            at: t(0),
        })
    );
    let failure = crate::payment::PaymentEvent::PaymentFailed {
        gateway_id: crate::testing::fixtures::gateway_id(1),
        code: "X".to_owned(),
        description: String::new(),
        at: t(0),
    };
    assert_eq!(WalletCommand::accrual_for(payment_id(1), &failure), None);
}

#[test]
fn a_payout_reserves_its_amount() {
    let wallet = given::<Wallet>([accrued(1, Paise::rupees(2_000))])
        .when(request_payout(1, Paise::rupees(1_500)))
        .then([requested(1, Paise::rupees(1_500))]);
    assert_eq!(
        wallet.balance_due(),
        Paise::rupees(2_000),
        "a pending payout does not reduce the balance due"
    );
    assert_eq!(wallet.available(), Paise::rupees(500));
    assert_eq!(wallet.last_payout_requested_at(), Some(t(10)));
}

#[test]
fn a_payout_larger_than_the_balance_due_is_refused() {
    given::<Wallet>([accrued(1, Paise::rupees(2_000))])
        .when(request_payout(1, Paise::rupees(2_001)))
        .then_error(WalletError::PayoutExceedsBalance {
            requested: Paise::rupees(2_001),
            available: Paise::rupees(2_000),
        });
}

#[test]
fn a_payout_cannot_take_what_pending_payouts_reserved() {
    given::<Wallet>([
        accrued(1, Paise::rupees(2_000)),
        requested(1, Paise::rupees(1_500)),
    ])
    .when(request_payout(2, Paise::rupees(501)))
    .then_error(WalletError::PayoutExceedsBalance {
        requested: Paise::rupees(501),
        available: Paise::rupees(500),
    });
}

#[test]
fn payouts_must_be_positive_and_new() {
    given::<Wallet>([accrued(1, Paise(100))])
        .when(request_payout(1, Paise::ZERO))
        .then_error(Problem::NotPositive.at("amount").into());
    given::<Wallet>([accrued(1, Paise(100)), requested(1, Paise(50))])
        .when(request_payout(1, Paise(50)))
        .then_error(WalletError::PayoutAlreadyRequested(payout_id(1)));
}

#[test]
fn a_paid_out_payout_reduces_the_balance_due() {
    let wallet = given::<Wallet>([
        accrued(1, Paise::rupees(2_000)),
        requested(1, Paise::rupees(1_500)),
    ])
    .when(mark_paid(1))
    .then([paid(1, Paise::rupees(1_500))]);
    assert_eq!(wallet.balance_due(), Paise::rupees(500));
    assert_eq!(wallet.pending(), Paise::ZERO);
    assert_eq!(wallet.paid_out(), Paise::rupees(1_500));
    assert_eq!(wallet.last_paid_out_at(), Some(t(20)));
    assert_eq!(
        wallet.payout(payout_id(1)).map(|p| p.status),
        Some(PayoutStatus::PaidOut)
    );
}

#[test]
fn a_payout_is_paid_out_once() {
    let history = [
        accrued(1, Paise(100)),
        requested(1, Paise(100)),
        paid(1, Paise(100)),
    ];
    given::<Wallet>(history)
        .when(mark_paid(1))
        .then_error(WalletError::PayoutAlreadyPaidOut(payout_id(1)));
    given::<Wallet>([])
        .when(mark_paid(9))
        .then_error(WalletError::UnknownPayout(payout_id(9)));
}

#[test]
fn reversing_a_pending_payout_releases_its_reservation() {
    let wallet = given::<Wallet>([accrued(1, Paise(1_000)), requested(1, Paise(800))])
        .when(mark_reversed(1))
        .then([reversed(1, Paise(800), false)]);
    assert_eq!(wallet.balance_due(), Paise(1_000));
    assert_eq!(wallet.available(), Paise(1_000));
    assert_eq!(wallet.reversed(), Paise::ZERO);
}

#[test]
fn reversing_a_paid_out_payout_restores_the_balance_due() {
    let wallet = given::<Wallet>([
        accrued(1, Paise(1_000)),
        requested(1, Paise(800)),
        paid(1, Paise(800)),
    ])
    .when(mark_reversed(1))
    .then([reversed(1, Paise(800), true)]);
    assert_eq!(wallet.balance_due(), Paise(1_000));
    assert_eq!(wallet.reversed(), Paise(800));
}

#[test]
fn updates_after_a_reversal_are_refused_as_already_recorded() {
    let history = [
        accrued(1, Paise(1_000)),
        requested(1, Paise(800)),
        reversed(1, Paise(800), false),
    ];
    given::<Wallet>(history.clone())
        .when(mark_paid(1))
        .then_error(WalletError::PayoutAlreadyReversed(payout_id(1)));
    given::<Wallet>(history)
        .when(mark_reversed(1))
        .then_error(WalletError::PayoutAlreadyReversed(payout_id(1)));
    assert!(WalletError::PayoutAlreadyReversed(payout_id(1)).is_already_recorded());
    assert!(!WalletError::UnknownPayout(payout_id(1)).is_already_recorded());
}

#[test]
fn a_manual_settlement_reduces_the_balance_due() {
    let wallet = given::<Wallet>([accrued(1, Paise(1_000))])
        .when(settle(Paise(600)))
        .then([settled(Paise(600))]);
    assert_eq!(wallet.balance_due(), Paise(400));
    assert_eq!(wallet.settled(), Paise(600));
}

#[test]
fn a_manual_settlement_cannot_exceed_the_unreserved_balance_due() {
    given::<Wallet>([accrued(1, Paise(1_000)), requested(1, Paise(800))])
        .when(settle(Paise(201)))
        .then_error(WalletError::SettlementExceedsBalance {
            requested: Paise(201),
            available: Paise(200),
        });
    given::<Wallet>([accrued(1, Paise(1_000))])
        .when(WalletCommand::RecordManualSettlement {
            reference: String::new(),
            amount: Paise(1),
            note: String::new(),
            at: t(0),
        })
        .then_error(Problem::Empty.at("reference").into());
}

#[test]
fn standing_follows_the_thresholds() {
    let thresholds = Thresholds::default();
    assert_eq!(
        standing(Paise::rupees(5_000) - Paise(1), &thresholds),
        Standing::Good
    );
    assert_eq!(standing(Paise::rupees(5_000), &thresholds), Standing::Warn);
    assert_eq!(
        standing(Paise::rupees(10_000) - Paise(1), &thresholds),
        Standing::Warn
    );
    assert_eq!(
        standing(Paise::rupees(10_000), &thresholds),
        Standing::Suspended
    );
}

#[test]
fn the_automatic_payout_collects_everything_available_from_the_minimum() {
    let thresholds = Thresholds::default();
    let below = Wallet::fold(&[accrued(1, Paise::rupees(999))]);
    assert_eq!(below.automatic_payout_amount(&thresholds), None);
    let above = Wallet::fold(&[
        accrued(1, Paise::rupees(1_200)),
        requested(1, Paise::rupees(100)),
    ]);
    assert_eq!(
        above.automatic_payout_amount(&thresholds),
        Some(Paise::rupees(1_100))
    );
}

#[test]
fn a_commission_reversal_lowers_the_balance_due_and_may_leave_a_credit() {
    let reverse = WalletCommand::ReverseCommission {
        payment_id: payment_id(1),
        refund_id: "refund-1".to_owned(),
        refund_amount: Paise(24_950),
        commission: Paise(874),
        at: t(40),
    };
    let reversed = WalletEvent::CommissionReversed {
        payment_id: payment_id(1),
        refund_id: "refund-1".to_owned(),
        refund_amount: Paise(24_950),
        commission: Paise(874),
        at: t(40),
    };
    let wallet = given::<Wallet>([accrued(1, Paise(1_747))])
        .when(reverse.clone())
        .then([reversed.clone()]);
    assert_eq!(wallet.balance_due(), Paise(873));
    assert_eq!(wallet.commission_reversed(), Paise(874));
    // Collected already: the reversal leaves the merchant a credit and no payout is possible.
    let wallet = given::<Wallet>([
        accrued(1, Paise(1_747)),
        requested(1, Paise(1_747)),
        paid(1, Paise(1_747)),
    ])
    .when(reverse)
    .then([reversed]);
    assert_eq!(wallet.balance_due(), Paise(-874));
    assert_eq!(wallet.automatic_payout_amount(&Thresholds::default()), None);
    given::<Wallet>([])
        .when(request_payout(2, Paise(1)))
        .then_error(WalletError::PayoutExceedsBalance {
            requested: Paise(1),
            available: Paise::ZERO,
        });
}
