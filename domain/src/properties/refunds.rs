//! Refunds over random sequences of requests, PSP answers, outcomes and retries: what is refunded
//! and held never exceeds the amount, each refund succeeds at most once, commission reversals add
//! up to at most the commission (to it exactly when everything reversing is refunded), the
//! wallet's balance moves by exactly the reversals, and racing requests decided on one state
//! never both hold more than is left.

use super::{initiate, replays_identically, run};
use crate::decider::Decider;
use crate::money::{BasisPoints, Paise};
use crate::payment::refunds::{RefundCommission, RefundStatus, RequestRefund};
use crate::payment::{Payment, PaymentCommand, PaymentEvent};
use crate::testing::fixtures::{payment_id, refund_id};
use crate::testing::t;
use crate::wallet::{Wallet, WalletCommand};
use proptest::prelude::*;
use std::collections::BTreeMap;

const AMOUNT: Paise = Paise(49_900);

/// One step: what to do, to which of 6 refunds, with an amount and a pick.
fn step() -> impl Strategy<Value = (u8, u128, i64, bool)> {
    (0u8..5, 0u128..6, 1i64..30_000, any::<bool>())
}

fn to_command(index: usize, (kind, n, amount, pick): (u8, u128, i64, bool)) -> PaymentCommand {
    let at = t(100 + i64::try_from(index).unwrap_or(0));
    match kind {
        // Requests (and, for an id already used, a retry of one).
        0 | 1 => PaymentCommand::RequestRefund(RequestRefund {
            refund_id: refund_id(n),
            merchant_refund_id: format!("RF-{n}"),
            amount: Paise(amount),
            reason: String::new(),
            commission: if pick {
                RefundCommission::ReverseProportional
            } else {
                RefundCommission::Retain
            },
            at,
        }),
        2 => PaymentCommand::RecordRefundSubmitted {
            refund_id: refund_id(n),
            psp_refund_id: format!("rfnd_{n}_{}", u8::from(pick)),
            at,
        },
        3 => PaymentCommand::RecordRefundSucceeded {
            refund_id: refund_id(n),
            psp_refund_id: pick.then(|| format!("rfnd_{n}_1")),
            at,
        },
        _ => PaymentCommand::RecordRefundFailed {
            refund_id: refund_id(n),
            code: "FAILED".to_owned(),
            reason: String::new(),
            at,
        },
    }
}

/// The payment's commands: initiated and paid, then the steps, each sometimes repeated (a
/// redelivered job).
fn commands(steps: Vec<((u8, u128, i64, bool), bool)>) -> Vec<PaymentCommand> {
    let mut commands = vec![
        PaymentCommand::Initiate(initiate(AMOUNT, BasisPoints(350))),
        PaymentCommand::RecordSuccess {
            psp_payment_id: "pay_1".to_owned(),
            amount: AMOUNT,
            at: t(10),
        },
    ];
    for (index, (step, repeat)) in steps.into_iter().enumerate() {
        let command = to_command(index, step);
        if repeat {
            commands.push(command.clone());
        }
        commands.push(command);
    }
    commands
}

/// Decides `commands` one by one, checking after each that nothing exceeds the amount.
fn run_checked(commands: Vec<PaymentCommand>) -> Result<Vec<PaymentEvent>, TestCaseError> {
    let mut state = None;
    let mut events = Vec::new();
    for command in commands {
        if let Ok(decided) = Payment::decide(&state, &command) {
            for event in decided {
                state = Payment::evolve(state, &event);
                events.push(event);
            }
        }
        if let Some(payment) = &state {
            let held = payment
                .refunded()
                .saturating_add(payment.refunds_in_flight());
            prop_assert!(
                held <= payment.amount(),
                "{held} held of {}",
                payment.amount()
            );
        }
    }
    Ok(events)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Refunds never take more than the amount, succeed once each, and reverse at most the
    /// commission; the wallet's balance falls by exactly what was reversed.
    #[test]
    fn refunds_never_exceed_the_amount_nor_reverse_more_than_the_commission(
        steps in prop::collection::vec((step(), any::<bool>()), 0..60)
    ) {
        let events = run_checked(commands(steps))?;
        let payment = Payment::fold(&events).ok_or_else(|| TestCaseError::fail("initiated"))?;
        let commission = payment.commission().ok_or_else(|| TestCaseError::fail("paid"))?;
        let mut successes: BTreeMap<String, usize> = BTreeMap::new();
        let mut reversed = Paise::ZERO;
        for event in &events {
            if let PaymentEvent::PaymentRefunded { refund_id, commission_reversed, .. } = event {
                *successes.entry(refund_id.clone()).or_default() += 1;
                prop_assert!(*commission_reversed >= Paise::ZERO);
                reversed += *commission_reversed;
            }
        }
        prop_assert!(successes.values().all(|count| *count == 1), "{successes:?}");
        prop_assert_eq!(payment.commission_reversed(), reversed);
        prop_assert!(reversed <= commission);
        let reversing: Paise = payment
            .refunds()
            .iter()
            .filter(|r| r.status == RefundStatus::Succeeded && r.commission == RefundCommission::ReverseProportional)
            .map(|r| r.amount)
            .sum();
        if reversing == payment.amount() {
            prop_assert_eq!(reversed, commission);
        }
        prop_assert_eq!(payment.refunded() + payment.refunds_in_flight() + payment.refundable(), payment.amount());

        let wallet_commands = events
            .iter()
            .filter_map(|e| WalletCommand::accrual_for(payment_id(1), e).or_else(|| WalletCommand::reversal_for(payment_id(1), e)));
        let wallet = Wallet::fold(&run::<Wallet>(wallet_commands));
        prop_assert_eq!(wallet.balance_due(), commission - reversed);
        replays_identically::<Payment>(&events)?;
    }

    /// Two requests decided on the same state race for the stream: the loser is decided again on
    /// the winner's result, and together they never hold more than was left.
    #[test]
    fn racing_requests_never_together_exceed_what_is_left(
        before in prop::collection::vec((step(), any::<bool>()), 0..20),
        first in 1i64..50_000,
        second in 1i64..50_000,
    ) {
        let events = run_checked(commands(before))?;
        let state = Payment::fold(&events);
        let left = state.as_ref().map(Payment::refundable).ok_or_else(|| TestCaseError::fail("initiated"))?;
        let request = |n: u128, amount: i64| PaymentCommand::RequestRefund(RequestRefund {
            refund_id: refund_id(100 + n),
            merchant_refund_id: format!("RACE-{n}"),
            amount: Paise(amount),
            reason: String::new(),
            commission: RefundCommission::Retain,
            at: t(1_000),
        });
        let winner = Payment::decide(&state, &request(1, first));
        let after = match &winner {
            Ok(decided) => decided.iter().fold(state.clone(), Payment::evolve),
            Err(_) => state.clone(),
        };
        let loser = Payment::decide(&after, &request(2, second));
        let held = [winner.as_ref().ok().map(|_| first), loser.as_ref().ok().map(|_| second)]
            .into_iter()
            .flatten()
            .sum::<i64>();
        prop_assert!(Paise(held) <= left, "{held} taken of {left} left");
        prop_assert_eq!(winner.is_ok(), Paise(first) <= left);
    }

    /// However a payment is split into partial refunds under `reverse_proportional`, and in
    /// whatever order they succeed, the reversals add up to the commission to the paisa.
    #[test]
    fn reversals_of_a_full_refund_add_up_to_the_commission(
        amount in 1i64..=10_000_000,
        fee in 0u32..=10_000,
        cuts in prop::collection::vec(any::<u64>(), 0..8),
        order in any::<u64>(),
    ) {
        let mut points: Vec<i64> = cuts.iter().filter_map(|c| i64::try_from(c % u64::try_from(amount).unwrap_or(1)).ok()).filter(|p| *p > 0).collect();
        points.push(0);
        points.push(amount);
        points.sort_unstable();
        points.dedup();
        let parts: Vec<i64> = points.windows(2).map(|w| w[1] - w[0]).collect();
        let mut commands = vec![
            PaymentCommand::Initiate(initiate(Paise(amount), BasisPoints(fee))),
            PaymentCommand::RecordSuccess { psp_payment_id: "pay_1".to_owned(), amount: Paise(amount), at: t(10) },
        ];
        for (n, part) in (0u128..).zip(&parts) {
            commands.push(PaymentCommand::RequestRefund(RequestRefund {
                refund_id: refund_id(n),
                merchant_refund_id: format!("RF-{n}"),
                amount: Paise(*part),
                reason: String::new(),
                commission: RefundCommission::ReverseProportional,
                at: t(100),
            }));
        }
        let count = u128::try_from(parts.len()).unwrap_or(1);
        let start = u128::from(order) % count;
        for i in 0..count {
            commands.push(PaymentCommand::RecordRefundSucceeded { refund_id: refund_id((start + i) % count), psp_refund_id: None, at: t(200) });
        }
        let events = run_checked(commands)?;
        let payment = Payment::fold(&events).ok_or_else(|| TestCaseError::fail("initiated"))?;
        prop_assert_eq!(payment.refunded(), Paise(amount));
        prop_assert_eq!(Some(payment.commission_reversed()), payment.commission());
    }
}
