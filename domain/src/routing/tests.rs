use super::*;
use crate::Decider;
use crate::checkout_settings::CheckoutSettings;
use crate::gateway::{GatewayEvent, GatewaySettings};
use crate::money::Paise;
use crate::provider::Provider;
use crate::testing::fixtures::{gateway_id, merchant_id, payment_id, sealed};
use crate::testing::t;
use crate::validation::Problem;

/// A gateway folded from its registration and `then` (events after it).
fn gateway(n: u128, priority: u16, then: &[GatewayEvent]) -> Gateway {
    gateway_with(
        n,
        GatewaySettings {
            priority,
            ..GatewaySettings::default()
        },
        then,
    )
}

fn gateway_with(n: u128, settings: GatewaySettings, then: &[GatewayEvent]) -> Gateway {
    let registered = GatewayEvent::GatewayRegistered {
        gateway_id: gateway_id(n),
        merchant_id: merchant_id(),
        provider: Provider::Sandbox,
        label: format!("gateway {n}"),
        credentials: sealed("c"),
        settings,
        enabled: true,
        at: t(0),
    };
    Gateway::fold(std::iter::once(&registered).chain(then)).expect("registered")
}

fn booked_at(secs: i64) -> GatewayEvent {
    GatewayEvent::GatewayBooked {
        payment_id: payment_id(secs.unsigned_abs().into()),
        amount: Paise(100),
        late_success: false,
        at: t(secs),
    }
}

fn candidate(gateway: &Gateway, succeeded: u64, attempted: u64) -> RouteCandidate<'_> {
    RouteCandidate {
        gateway,
        success_rate: SuccessRate {
            succeeded,
            attempted,
        },
    }
}

fn request_in(mode: RoutingMode) -> BookingRequest {
    BookingRequest {
        merchant_id: merchant_id(),
        amount: Paise::rupees(100),
        settings: CheckoutSettings {
            routing_mode: mode,
            ..CheckoutSettings::default()
        },
        at: t(1_000),
    }
}

#[test]
fn smart_routing_prefers_the_highest_priority() {
    let (low, high) = (gateway(1, 1, &[]), gateway(2, 5, &[]));
    let candidates = [candidate(&low, 100, 100), candidate(&high, 1, 10)];
    assert_eq!(
        route(&candidates, &request_in(RoutingMode::Smart), &[]),
        Ok(gateway_id(2))
    );
}

#[test]
fn smart_routing_breaks_priority_ties_by_success_rate() {
    let (a, b) = (gateway(1, 3, &[]), gateway(2, 3, &[]));
    let candidates = [candidate(&a, 80, 100), candidate(&b, 95, 100)];
    assert_eq!(
        route(&candidates, &request_in(RoutingMode::Smart), &[]),
        Ok(gateway_id(2))
    );
}

#[test]
fn smart_routing_then_prefers_the_least_recently_used() {
    let recent = gateway(1, 3, &[booked_at(500)]);
    let older = gateway(2, 3, &[booked_at(100)]);
    let never = gateway(3, 3, &[]);
    let request = request_in(RoutingMode::Smart);
    let candidates = [candidate(&recent, 9, 10), candidate(&older, 9, 10)];
    assert_eq!(route(&candidates, &request, &[]), Ok(gateway_id(2)));
    let candidates = [
        candidate(&recent, 9, 10),
        candidate(&older, 9, 10),
        candidate(&never, 9, 10),
    ];
    assert_eq!(route(&candidates, &request, &[]), Ok(gateway_id(3)));
}

#[test]
fn round_robin_takes_the_least_recently_used_whatever_the_priority() {
    let high_recent = gateway(1, 9, &[booked_at(500)]);
    let low_older = gateway(2, 1, &[booked_at(100)]);
    let candidates = [
        candidate(&high_recent, 10, 10),
        candidate(&low_older, 0, 10),
    ];
    assert_eq!(
        route(&candidates, &request_in(RoutingMode::RoundRobin), &[]),
        Ok(gateway_id(2))
    );
}

#[test]
fn round_robin_breaks_ties_by_priority() {
    let (low, high) = (gateway(1, 1, &[]), gateway(2, 2, &[]));
    let candidates = [candidate(&low, 0, 0), candidate(&high, 0, 0)];
    assert_eq!(
        route(&candidates, &request_in(RoutingMode::RoundRobin), &[]),
        Ok(gateway_id(2))
    );
}

#[test]
fn round_robin_cycles_through_gateways_as_they_are_booked() {
    let mut gateways: Vec<Gateway> = (1..=3).map(|n| gateway(n, 0, &[])).collect();
    let mut chosen = Vec::new();
    for step in 0..6 {
        let request = BookingRequest {
            at: t(100 + step),
            ..request_in(RoutingMode::RoundRobin)
        };
        let candidates: Vec<_> = gateways.iter().map(|g| candidate(g, 0, 0)).collect();
        let id = route(&candidates, &request, &[]).expect("a gateway is free");
        chosen.push(id);
        let index = gateways
            .iter()
            .position(|g| g.id() == id)
            .expect("a candidate");
        let next = Gateway::evolve(Some(gateways[index].clone()), &booked_at(100 + step));
        gateways[index] = next.expect("registered");
    }
    let ids = [gateway_id(1), gateway_id(2), gateway_id(3)];
    assert_eq!(chosen, [ids, ids].concat());
}

#[test]
fn ineligible_gateways_are_passed_over_with_their_reasons() {
    let off = gateway(
        1,
        9,
        &[GatewayEvent::GatewayToggled {
            enabled: false,
            at: t(1),
        }],
    );
    let resting = gateway(
        2,
        9,
        &[GatewayEvent::GatewayTemporarilyFailed {
            reason: "503".to_owned(),
            until: t(2_000),
            at: t(900),
        }],
    );
    let full = gateway_with(
        3,
        GatewaySettings {
            priority: 9,
            monthly_limit: Some(Paise::rupees(50)),
            rpm_cap: None,
        },
        &[],
    );
    let busy = gateway_with(
        4,
        GatewaySettings {
            priority: 9,
            monthly_limit: None,
            rpm_cap: Some(1),
        },
        &[booked_at(990)],
    );
    let retired = gateway(
        5,
        9,
        &[GatewayEvent::GatewayRetired {
            reason: "gone".to_owned(),
            at: t(1),
        }],
    );
    let fallback = gateway(6, 0, &[]);
    let candidates = [
        candidate(&off, 1, 1),
        candidate(&resting, 1, 1),
        candidate(&full, 1, 1),
        candidate(&busy, 1, 1),
        candidate(&retired, 1, 1),
        candidate(&fallback, 0, 1),
    ];
    let request = request_in(RoutingMode::Smart);
    assert_eq!(route(&candidates, &request, &[]), Ok(gateway_id(6)));
    assert_eq!(
        route(&candidates, &request, &[gateway_id(6)]),
        Err(NoGatewayAvailable {
            rejected: vec![
                (gateway_id(1), Rejection::Ineligible(Ineligible::Disabled)),
                (
                    gateway_id(2),
                    Rejection::Ineligible(Ineligible::TemporarilyFailed { until: t(2_000) })
                ),
                (
                    gateway_id(3),
                    Rejection::Ineligible(Ineligible::MonthlyLimitReached {
                        limit: Paise::rupees(50),
                        volume: Paise::ZERO,
                        amount: Paise::rupees(100),
                    })
                ),
                (
                    gateway_id(4),
                    Rejection::Ineligible(Ineligible::RateLimited { cap: 1 })
                ),
                (gateway_id(5), Rejection::Ineligible(Ineligible::Retired)),
                (gateway_id(6), Rejection::AlreadyTried),
            ],
        })
    );
}

#[test]
fn no_gateways_means_no_gateway_available() {
    assert_eq!(
        route(&[], &request_in(RoutingMode::Smart), &[]),
        Err(NoGatewayAvailable { rejected: vec![] })
    );
}

#[test]
fn success_rates_rank_as_exact_smoothed_fractions() {
    let rate = |succeeded, attempted| SuccessRate {
        succeeded,
        attempted,
    };
    assert_eq!(
        rate(0, 0).rank_cmp(&rate(1, 2)),
        Ordering::Equal,
        "no history ranks at one half"
    );
    assert_eq!(rate(99, 100).rank_cmp(&rate(0, 0)), Ordering::Greater);
    assert_eq!(rate(0, 0).rank_cmp(&rate(1, 10)), Ordering::Greater);
    assert_eq!(
        rate(1, 1).rank_cmp(&rate(999, 1_000)),
        Ordering::Less,
        "more evidence beats one lucky payment"
    );
    let big = 1 << 62;
    assert_eq!(
        rate(big, big).rank_cmp(&rate(big - 1, big)),
        Ordering::Greater
    );
    assert_eq!(
        rate(u64::MAX, u64::MAX).rank_cmp(&rate(big, big)),
        Ordering::Equal,
        "clamped, no overflow"
    );
    assert_eq!(rate(0, 0).smoothed_bps(), 5_000);
    assert_eq!(rate(98, 98).smoothed_bps(), 9_900);
    assert_eq!(
        rate(5, 3).smoothed_bps(),
        8_000,
        "succeeded is capped at attempted"
    );
}

#[test]
fn checkout_settings_default_and_validation() {
    let defaults = CheckoutSettings::default();
    assert_eq!(defaults.routing_mode, RoutingMode::Smart);
    assert!(defaults.skip_temporarily_failed);
    assert_eq!(defaults.default_rpm_cap, None);
    assert_eq!(defaults.temporary_failure_secs, 300);
    assert_eq!(defaults.validate(), Ok(()));
    assert_eq!(
        CheckoutSettings {
            default_rpm_cap: Some(0),
            ..defaults
        }
        .validate(),
        Err(Problem::OutOfRange { min: 1, max: 1_000 }.at("default_rpm_cap"))
    );
    assert_eq!(
        CheckoutSettings {
            temporary_failure_secs: 0,
            ..defaults
        }
        .validate(),
        Err(Problem::OutOfRange {
            min: 1,
            max: 86_400
        }
        .at("temporary_failure_secs"))
    );
}
