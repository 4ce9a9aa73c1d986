//! What the run asserts once everything has stopped, each check with the problems it found.

use std::collections::{HashMap, HashSet};

use lightspeed_domain::{MerchantId, Paise};

use crate::endpoint::Arrival;
use crate::facts::LogFacts;
use crate::faults::Recovery;
use crate::load::{Outcome, Seen};
use crate::settle::Settled;

/// One check and what it found wrong.
#[derive(Debug)]
pub struct Check {
    /// What it asserts.
    pub name: &'static str,
    /// Every problem found; none when it passed.
    pub problems: Vec<String>,
}

impl Check {
    /// A check with these problems.
    pub fn new(name: &'static str, problems: Vec<String>) -> Self {
        Self { name, problems }
    }
}

/// `amount × fee`, rounded half-up, computed here independently of the domain's arithmetic.
fn expected_commission(amount: Paise, bps: u32) -> i64 {
    let exact = i128::from(amount.0) * i128::from(bps);
    i64::try_from((exact + 5_000) / 10_000).unwrap_or(i64::MAX)
}

/// The load finished every payment it started.
pub fn load_finished(outcomes: &[Outcome]) -> Check {
    let problems = outcomes
        .iter()
        .filter_map(|o| match &o.seen {
            Seen::Unfinished(why) => Some(format!("order {}: {why}", o.order_id)),
            _ => None,
        })
        .collect();
    Check::new("the load finished every payment", problems)
}

/// Every order the load initiated has exactly one payment, the one the API answered with, and
/// no order of any merchant has two.
pub fn one_payment_per_order(
    outcomes: &[Outcome],
    merchants: &[MerchantId],
    log: &LogFacts,
) -> Check {
    let mut by_order: HashMap<(MerchantId, &str), Vec<&str>> = HashMap::new();
    for (id, payment) in &log.payments {
        by_order
            .entry((payment.merchant_id, payment.order_id.as_str()))
            .or_default()
            .push(id);
    }
    let mut problems: Vec<String> = by_order
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|((_, order), ids)| format!("order {order} has {} payments: {ids:?}", ids.len()))
        .collect();
    for outcome in outcomes {
        let key = (merchants[outcome.merchant], outcome.order_id.as_str());
        let found = by_order.get(&key).map(Vec::as_slice).unwrap_or_default();
        match (outcome.payment_id, found) {
            (Some(id), [only]) if id.to_string() == *only => {}
            (None, [] | [_]) => {}
            (answered, found) => problems.push(format!(
                "order {}: the API answered {answered:?}, the log holds {found:?}",
                outcome.order_id
            )),
        }
    }
    Check::new("every initiated order has exactly one payment", problems)
}

/// Every payment the load saw succeed is succeeded, and every succeeded payment carries
/// exactly one commission, equal to amount × fee rounded half-up.
pub fn successes_carry_one_commission(outcomes: &[Outcome], log: &LogFacts) -> Check {
    let mut problems = Vec::new();
    for outcome in outcomes.iter().filter(|o| o.seen == Seen::Succeeded) {
        let id = outcome
            .payment_id
            .map(|id| id.to_string())
            .unwrap_or_default();
        let status = log.payments.get(&id).map_or("missing", |p| p.status());
        if status != "succeeded" {
            problems.push(format!(
                "{id} (order {}) seen succeeded is {status}",
                outcome.order_id
            ));
        }
    }
    for (id, payment) in &log.payments {
        if payment.status() != "succeeded" {
            continue;
        }
        let expected = expected_commission(payment.amount, payment.fee.bps());
        let decided: Vec<i64> = payment.successes.iter().map(|c| c.0).collect();
        let accrued: Vec<i64> = payment.commissions.iter().map(|c| c.0).collect();
        if decided != [expected] || accrued != [expected] {
            problems.push(format!(
                "{id}: amount {} at {} bps should carry one commission of {expected}; \
                 decided {decided:?}, accrued {accrued:?}",
                payment.amount.0,
                payment.fee.bps()
            ));
        }
    }
    Check::new(
        "every success seen is succeeded, with one commission = amount × fee, half-up",
        problems,
    )
}

/// Nothing the load saw fail is succeeded.
pub fn failures_stay_failed(outcomes: &[Outcome], log: &LogFacts) -> Check {
    let problems = outcomes
        .iter()
        .filter(|o| o.seen == Seen::Failed)
        .filter_map(|o| {
            let id = o.payment_id?.to_string();
            let status = log.payments.get(&id).map_or("missing", |p| p.status());
            (status != "failed")
                .then(|| format!("{id} (order {}) seen failed is {status}", o.order_id))
        })
        .collect();
    Check::new("nothing seen failed is succeeded", problems)
}

/// No payment of the log is left without an outcome.
pub fn none_pending(log: &LogFacts) -> Check {
    let problems = log
        .payments
        .iter()
        .filter(|(_, p)| p.status() == "pending")
        .map(|(id, p)| format!("{id} (order {}) is pending", p.order_id))
        .collect();
    Check::new("no payment left pending", problems)
}

/// Every webhook the log queued was delivered and arrived; every payment's creation and
/// outcome arrived; one `(payment, type)` never came under two `webhook-id`s; every arrival's
/// signature verified.
pub fn webhooks_delivered(log: &LogFacts, arrivals: &[Arrival]) -> Check {
    let mut problems = Vec::new();
    let arrived: HashSet<&str> = arrivals.iter().map(|a| a.webhook_id.as_str()).collect();
    for (id, delivery) in &log.deliveries {
        if !delivery.delivered || !arrived.contains(id.as_str()) {
            problems.push(format!(
                "{} of {} (webhook-id {id}): delivered in the log {}, arrived {}",
                delivery.event_type,
                delivery.payment_id,
                delivery.delivered,
                arrived.contains(id.as_str())
            ));
        }
    }
    let mut ids: HashMap<(&str, &str), HashSet<&str>> = HashMap::new();
    for arrival in arrivals {
        ids.entry((&arrival.transaction_id, &arrival.event_type))
            .or_default()
            .insert(&arrival.webhook_id);
        if !arrival.signed {
            problems.push(format!(
                "webhook-id {} arrived unsigned",
                arrival.webhook_id
            ));
        }
    }
    for ((payment, kind), under) in &ids {
        if under.len() > 1 {
            problems.push(format!("{kind} of {payment} arrived under {under:?}"));
        }
    }
    for (id, payment) in &log.payments {
        // A pending payment owes no outcome webhook (the pending check names it).
        let outcome =
            (payment.status() != "pending").then(|| format!("payment.{}", payment.status()));
        for kind in std::iter::once("payment.created").chain(outcome.as_deref()) {
            if !ids.contains_key(&(id.as_str(), kind)) {
                problems.push(format!("{kind} of {id} never arrived"));
            }
        }
    }
    Check::new(
        "every merchant webhook delivered at least once, duplicates only under one webhook-id",
        problems,
    )
}

/// No queue had work once the run settled, and none gave up on a job.
pub fn queues_idle(settled: &Settled) -> Check {
    let mut problems = settled.unsettled.clone();
    for queue in &settled.queues {
        match queue {
            Ok((name, waiting, active, failed)) if waiting + active + failed > 0 => problems.push(
                format!("{name}: {waiting} waiting, {active} active, {failed} failed"),
            ),
            Ok(_) => {}
            Err(why) => problems.push(why.clone()),
        }
    }
    Check::new("the run settled with no queue holding work", problems)
}

/// Every fault's roles came back to work.
pub fn faults_recovered(recoveries: &[Recovery]) -> Check {
    let problems = recoveries
        .iter()
        .filter(|r| r.took.is_none())
        .map(|r| {
            format!(
                "{} at +{:.1} s: {}",
                r.fault.name(),
                r.at.as_secs_f64(),
                r.detail
            )
        })
        .collect();
    Check::new("every role came back to work after every fault", problems)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lightspeed_domain::{BasisPoints, PaymentId};

    use super::*;
    use crate::facts::{DeliveryFacts, PaymentFacts};

    #[test]
    fn commission_rounds_half_up_away_from_the_domain_code() {
        // 3.5 % of ₹1.50 is 5.25 paise: 5; of ₹1.70, 5.95: 6; of ₹1.00, exactly 3.5: 4.
        assert_eq!(expected_commission(Paise(150), 350), 5);
        assert_eq!(expected_commission(Paise(170), 350), 6);
        assert_eq!(expected_commission(Paise(100), 350), 4);
    }

    /// A log of one succeeded payment of ₹1.00 (commission 4 paise) for order `A-1`, and the
    /// load's view of it.
    fn one_success(merchant: MerchantId) -> (PaymentId, LogFacts, Vec<Outcome>) {
        let id = PaymentId::new();
        let mut log = LogFacts::default();
        log.payments.insert(
            id.to_string(),
            PaymentFacts {
                merchant_id: merchant,
                order_id: "A-1".into(),
                amount: Paise(100),
                fee: BasisPoints::DEFAULT_FEE,
                successes: vec![Paise(4)],
                failures: 0,
                refunded: false,
                commissions: vec![Paise(4)],
            },
        );
        let outcome = Outcome {
            merchant: 0,
            order_id: "A-1".into(),
            amount: 100,
            payment_id: Some(id),
            seen: Seen::Succeeded,
            took: Duration::ZERO,
        };
        (id, log, vec![outcome])
    }

    fn payment(log: &mut LogFacts, id: PaymentId) -> &mut PaymentFacts {
        log.payments.get_mut(&id.to_string()).expect("the payment")
    }

    #[test]
    fn a_success_passes_and_a_second_or_wrong_commission_fails() {
        let merchant = MerchantId::new();
        let (id, mut log, outcomes) = one_success(merchant);
        assert!(
            successes_carry_one_commission(&outcomes, &log)
                .problems
                .is_empty()
        );
        assert!(
            one_payment_per_order(&outcomes, &[merchant], &log)
                .problems
                .is_empty()
        );
        assert!(none_pending(&log).problems.is_empty());
        payment(&mut log, id).commissions.push(Paise(4));
        assert_eq!(
            successes_carry_one_commission(&outcomes, &log)
                .problems
                .len(),
            1
        );
        payment(&mut log, id).commissions = vec![Paise(3)];
        assert_eq!(
            successes_carry_one_commission(&outcomes, &log)
                .problems
                .len(),
            1
        );
    }

    #[test]
    fn a_success_seen_that_the_log_has_failed_or_pending_fails() {
        let (id, mut log, outcomes) = one_success(MerchantId::new());
        payment(&mut log, id).successes.clear();
        payment(&mut log, id).commissions.clear();
        assert_eq!(none_pending(&log).problems.len(), 1);
        payment(&mut log, id).failures = 1;
        assert!(none_pending(&log).problems.is_empty());
        assert_eq!(
            successes_carry_one_commission(&outcomes, &log)
                .problems
                .len(),
            1
        );
    }

    #[test]
    fn a_failure_seen_that_the_log_has_succeeded_fails() {
        let (_, log, mut outcomes) = one_success(MerchantId::new());
        outcomes[0].seen = Seen::Failed;
        assert_eq!(failures_stay_failed(&outcomes, &log).problems.len(), 1);
    }

    #[test]
    fn a_second_payment_for_one_order_fails() {
        let merchant = MerchantId::new();
        let (id, mut log, outcomes) = one_success(merchant);
        let twin = payment(&mut log, id).clone();
        log.payments.insert(PaymentId::new().to_string(), twin);
        let check = one_payment_per_order(&outcomes, &[merchant], &log);
        // The order has two payments, and the load's order is not the log's only one.
        assert_eq!(check.problems.len(), 2, "{:?}", check.problems);
    }

    fn arrival(id: &str, payment: PaymentId, kind: &str) -> Arrival {
        Arrival {
            webhook_id: id.into(),
            event_type: kind.into(),
            transaction_id: payment.to_string(),
            signed: true,
        }
    }

    fn delivered(log: &mut LogFacts, id: &str, payment: PaymentId, kind: &str) {
        let facts = DeliveryFacts {
            payment_id: payment.to_string(),
            event_type: kind.into(),
            delivered: true,
        };
        log.deliveries.insert(id.into(), facts);
    }

    #[test]
    fn a_redelivery_under_the_same_id_passes_and_under_another_fails() {
        let (id, mut log, _) = one_success(MerchantId::new());
        delivered(&mut log, "w1", id, "payment.created");
        delivered(&mut log, "w2", id, "payment.succeeded");
        let mut arrivals = vec![
            arrival("w1", id, "payment.created"),
            arrival("w2", id, "payment.succeeded"),
            arrival("w2", id, "payment.succeeded"),
        ];
        assert!(webhooks_delivered(&log, &arrivals).problems.is_empty());
        arrivals.push(arrival("w3", id, "payment.succeeded"));
        assert_eq!(webhooks_delivered(&log, &arrivals).problems.len(), 1);
        arrivals.pop();
        arrivals.remove(0);
        // payment.created never arrived: its delivery and the payment's webhooks both say so.
        assert_eq!(webhooks_delivered(&log, &arrivals).problems.len(), 2);
    }
}
