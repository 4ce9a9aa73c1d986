//! Property tests over random command sequences: routing and booking never break a limit or cap
//! nor pick an ineligible gateway; commission is the exact half-up value; folding any valid
//! sequence is deterministic and survives `encode`/`decode`; wallet balances add up; refunds
//! never exceed the amount nor reverse more than the commission ([`refunds`]).

mod refunds;

use crate::calendar::{self, IstMonth};
use crate::checkout_settings::{CheckoutSettings, RoutingMode};
use crate::decider::{Decider, DomainEvent, decode, encode};
use crate::gateway::{
    BookingRequest, Gateway, GatewayCommand, GatewayEvent, GatewaySettings, RPM_WINDOW,
};
use crate::ids::{GatewayId, PaymentId};
use crate::merchant::{ClientKey, Merchant, MerchantCommand, OnboardMerchant};
use crate::money::{BasisPoints, Paise};
use crate::notification::{Notification, NotificationCommand, NotificationType, QueueNotification};
use crate::payment::{InitiatePayment, MerchantSnapshot, Payment, PaymentCommand, PaymentEvent};
use crate::provider::Provider;
use crate::retry::Jitter;
use crate::routing::{RouteCandidate, SuccessRate, route};
use crate::standing::{MerchantStatus, Thresholds};
use crate::testing::fixtures::{
    delivery_id, gateway_id, merchant_id, notification_id, payment_id, payout_id, sealed,
};
use crate::testing::t;
use crate::wallet::{PayoutReversalReason, PayoutStatus, Wallet, WalletCommand, WalletEvent};
use crate::webhook_delivery::{
    AttemptOutcome, QueueWebhookDelivery, WebhookAttempt, WebhookDelivery, WebhookDeliveryCommand,
};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde::Serialize;
use std::fmt::Debug;

/// Decides `commands` in order against the evolving state, keeping the events of those accepted.
fn run<D: Decider>(commands: impl IntoIterator<Item = D::Command>) -> Vec<D::Event> {
    let mut state = D::State::default();
    let mut events = Vec::new();
    for command in commands {
        if let Ok(decided) = D::decide(&state, &command) {
            for event in decided {
                state = D::evolve(state, &event);
                events.push(event);
            }
        }
    }
    events
}

/// Folding twice gives equal states with byte-identical snapshots, and so does folding the
/// events after a trip through the stored form.
fn replays_identically<D: Decider>(events: &[D::Event]) -> Result<(), TestCaseError>
where
    D::State: PartialEq + Debug + Serialize,
{
    let once = D::fold(events);
    let twice = D::fold(events);
    prop_assert_eq!(&once, &twice);
    let snapshot = serde_json::to_string(&once).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        &snapshot,
        &serde_json::to_string(&twice).map_err(|e| TestCaseError::fail(e.to_string()))?
    );
    let mut stored = Vec::with_capacity(events.len());
    for event in events {
        let (event_type, version, payload) =
            encode(event).map_err(|e| TestCaseError::fail(e.to_string()))?;
        stored.push(
            decode::<D::Event>(event_type, version, &payload)
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
    }
    prop_assert_eq!(&D::fold(&stored), &once);
    Ok(())
}

// ---------------------------------------------------------------- routing and booking

#[derive(Debug, Clone)]
struct GatewaySpec {
    enabled: bool,
    retired: bool,
    priority: u16,
    monthly_limit: Option<i64>,
    rpm_cap: Option<u32>,
    resting_secs: Option<u64>,
}

fn gateway_spec() -> impl Strategy<Value = GatewaySpec> {
    (
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.1),
        0u16..4,
        prop::option::weighted(0.6, 1i64..60_000),
        prop::option::weighted(0.5, 1u32..4),
        prop::option::weighted(0.2, 1u64..600),
    )
        .prop_map(
            |(enabled, retired, priority, monthly_limit, rpm_cap, resting_secs)| GatewaySpec {
                enabled,
                retired,
                priority,
                monthly_limit,
                rpm_cap,
                resting_secs,
            },
        )
}

#[derive(Debug, Clone)]
enum RoutingStep {
    Route {
        amount: i64,
        advance_secs: i64,
        round_robin: bool,
    },
    Release {
        pick: usize,
        advance_secs: i64,
    },
    LateSuccess {
        pick: usize,
        advance_secs: i64,
    },
    Fail {
        gateway: usize,
        rest_secs: u64,
    },
    Toggle {
        gateway: usize,
        enabled: bool,
    },
}

fn routing_step() -> impl Strategy<Value = RoutingStep> {
    prop_oneof![
        6 => (1i64..20_000, 0i64..40, any::<bool>())
            .prop_map(|(amount, advance_secs, round_robin)| RoutingStep::Route { amount, advance_secs, round_robin }),
        2 => (any::<usize>(), 0i64..40).prop_map(|(pick, advance_secs)| RoutingStep::Release { pick, advance_secs }),
        1 => (any::<usize>(), 0i64..40).prop_map(|(pick, advance_secs)| RoutingStep::LateSuccess { pick, advance_secs }),
        1 => (any::<usize>(), 1u64..300).prop_map(|(gateway, rest_secs)| RoutingStep::Fail { gateway, rest_secs }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(gateway, enabled)| RoutingStep::Toggle { gateway, enabled }),
    ]
}

/// One booking as the test model remembers it.
struct ModelBooking {
    gateway: usize,
    payment_id: PaymentId,
    amount: Paise,
    at: DateTime<Utc>,
    routed: bool,
    released: bool,
}

/// A gateway's eligibility flags as the test model tracks them, independently of its state.
struct ModelGateway {
    enabled: bool,
    retired: bool,
    resting_until: Option<DateTime<Utc>>,
}

struct Simulation {
    gateways: Vec<Gateway>,
    events: Vec<Vec<GatewayEvent>>,
    models: Vec<ModelGateway>,
    specs: Vec<GatewaySpec>,
}

impl Simulation {
    fn new(specs: &[GatewaySpec], start: DateTime<Utc>) -> Result<Simulation, TestCaseError> {
        let mut simulation = Simulation {
            gateways: Vec::new(),
            events: Vec::new(),
            models: Vec::new(),
            specs: specs.to_vec(),
        };
        for (index, spec) in specs.iter().enumerate() {
            let n = u128::try_from(index).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut events = vec![GatewayEvent::GatewayRegistered {
                gateway_id: gateway_id(n),
                merchant_id: merchant_id(),
                provider: Provider::Sandbox,
                label: format!("g{n}"),
                credentials: sealed("c"),
                settings: GatewaySettings {
                    priority: spec.priority,
                    monthly_limit: spec.monthly_limit.map(Paise),
                    rpm_cap: spec.rpm_cap,
                },
                enabled: spec.enabled,
                at: start,
            }];
            let mut resting_until = None;
            if let Some(rest) = spec.resting_secs {
                let until = calendar::plus_secs(start, rest);
                events.push(GatewayEvent::GatewayTemporarilyFailed {
                    reason: "x".to_owned(),
                    until,
                    at: start,
                });
                resting_until = Some(until);
            }
            if spec.retired {
                events.push(GatewayEvent::GatewayRetired {
                    reason: "x".to_owned(),
                    at: start,
                });
            }
            let gateway =
                Gateway::fold(&events).ok_or_else(|| TestCaseError::fail("registered"))?;
            simulation.gateways.push(gateway);
            simulation.events.push(events);
            simulation.models.push(ModelGateway {
                enabled: spec.enabled,
                retired: spec.retired,
                resting_until,
            });
        }
        Ok(simulation)
    }

    /// Decides `command` on gateway `index`; records and applies the events if accepted.
    fn apply(&mut self, index: usize, command: &GatewayCommand) -> bool {
        let state = Some(self.gateways[index].clone());
        match Gateway::decide(&state, command) {
            Ok(events) => {
                let next = events.iter().fold(state, Gateway::evolve);
                if let Some(gateway) = next {
                    self.gateways[index] = gateway;
                }
                self.events[index].extend(events);
                true
            }
            Err(_) => false,
        }
    }
}

fn index_of(id: GatewayId) -> Option<usize> {
    usize::try_from(
        id.as_uuid()
            .as_u128()
            .checked_sub(gateway_id(0).as_uuid().as_u128())?,
    )
    .ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// Routing only picks gateways the independent model says are eligible; booking accepts
    /// every pick; no gateway ever exceeds its monthly limit (unreleased routed bookings in the IST
    /// month, month boundary included, checked after every step) or its RPM cap over any minute;
    /// when routing finds nothing, every gateway really is ineligible.
    #[test]
    fn routing_and_booking_never_break_a_limit_or_cap(
        specs in prop::collection::vec(gateway_spec(), 1..6),
        steps in prop::collection::vec(routing_step(), 1..80),
        default_rpm_cap in prop::option::weighted(0.3, 1u32..4),
        skip_temporarily_failed in prop::bool::weighted(0.8),
    ) {
        // Five minutes before midnight IST on 31 March: the run crosses into April.
        let mut now: DateTime<Utc> = "2026-03-31T18:25:00Z".parse().map_err(|_| TestCaseError::fail("instant"))?;
        let mut simulation = Simulation::new(&specs, now)?;
        let mut bookings: Vec<ModelBooking> = Vec::new();
        let mut next_payment = 0u128;
        for step in steps {
            match step {
                RoutingStep::Route { amount, advance_secs, round_robin } => {
                    now = calendar::plus_secs(now, advance_secs.unsigned_abs());
                    let settings = CheckoutSettings {
                        routing_mode: if round_robin { RoutingMode::RoundRobin } else { RoutingMode::Smart },
                        skip_temporarily_failed,
                        default_rpm_cap,
                        ..CheckoutSettings::default()
                    };
                    let request = BookingRequest { merchant_id: merchant_id(), amount: Paise(amount), settings, at: now };
                    let candidates: Vec<RouteCandidate<'_>> = simulation.gateways.iter().enumerate().map(|(i, gateway)| {
                        let attempted = u64::try_from(i).unwrap_or(0) * 7 + 3;
                        RouteCandidate { gateway, success_rate: SuccessRate { succeeded: attempted / 2, attempted } }
                    }).collect();
                    match route(&candidates, &request, &[]) {
                        Ok(id) => {
                            let index = index_of(id).ok_or_else(|| TestCaseError::fail("known gateway"))?;
                            let model = &simulation.models[index];
                            prop_assert!(model.enabled && !model.retired, "picked a disabled or retired gateway");
                            prop_assert!(
                                !(skip_temporarily_failed && model.resting_until.is_some_and(|until| until > now)),
                                "picked a resting gateway"
                            );
                            next_payment += 1;
                            let payment = payment_id(next_payment);
                            let booked = simulation.apply(index, &GatewayCommand::Book { payment_id: payment, request });
                            prop_assert!(booked, "the gateway refused the booking routing chose");
                            bookings.push(ModelBooking { gateway: index, payment_id: payment, amount: Paise(amount), at: now, routed: true, released: false });
                        }
                        Err(none) => {
                            prop_assert_eq!(none.rejected.len(), candidates.len());
                            for candidate in &candidates {
                                prop_assert!(candidate.gateway.check_bookable(&request).is_err());
                            }
                        }
                    }
                }
                RoutingStep::Release { pick, advance_secs } => {
                    now = calendar::plus_secs(now, advance_secs.unsigned_abs());
                    if bookings.is_empty() { continue; }
                    let count = bookings.len();
                    let booking = &mut bookings[pick % count];
                    if booking.released || !booking.routed { continue; }
                    let command = GatewayCommand::ReleaseBooking { payment_id: booking.payment_id, amount: booking.amount, booked_at: booking.at, at: now };
                    booking.released = true;
                    let gateway = booking.gateway;
                    prop_assert!(simulation.apply(gateway, &command), "a release is always recorded");
                }
                RoutingStep::LateSuccess { pick, advance_secs } => {
                    now = calendar::plus_secs(now, advance_secs.unsigned_abs());
                    if bookings.is_empty() { continue; }
                    let index = pick % bookings.len();
                    if !bookings[index].released { continue; }
                    let (gateway, payment_id, amount) = (bookings[index].gateway, bookings[index].payment_id, bookings[index].amount);
                    let late = GatewayCommand::BookLateSuccess { payment_id, amount, at: now };
                    prop_assert!(simulation.apply(gateway, &late), "a late success is always booked");
                    bookings.push(ModelBooking { gateway, payment_id, amount, at: now, routed: false, released: false });
                }
                RoutingStep::Fail { gateway, rest_secs } => {
                    let index = gateway % simulation.gateways.len();
                    if simulation.apply(index, &GatewayCommand::MarkTemporarilyFailed { reason: "x".to_owned(), rest_secs, at: now }) {
                        let until = calendar::plus_secs(now, rest_secs);
                        let model = &mut simulation.models[index];
                        model.resting_until = Some(model.resting_until.map_or(until, |u| u.max(until)));
                    }
                }
                RoutingStep::Toggle { gateway, enabled } => {
                    let index = gateway % simulation.gateways.len();
                    if simulation.apply(index, &GatewayCommand::Toggle { enabled, at: now }) {
                        simulation.models[index].enabled = enabled;
                    }
                }
            }
            within_monthly_limits(&simulation, &bookings, now)?;
        }
        for (index, _) in simulation.gateways.iter().enumerate() {
            let routed: Vec<&ModelBooking> = bookings.iter().filter(|b| b.gateway == index && b.routed).collect();
            // No minute holds more routed bookings than the cap.
            if let Some(cap) = simulation.specs[index].rpm_cap.or(default_rpm_cap) {
                for booking in &routed {
                    let from = calendar::minus(booking.at, RPM_WINDOW);
                    let in_window = routed.iter().filter(|b| b.at > from && b.at <= booking.at).count();
                    prop_assert!(in_window <= cap as usize, "{} bookings in a minute, cap {}", in_window, cap);
                }
            }
            replays_identically::<Gateway>(&simulation.events[index])?;
        }
    }
}

/// After every step: each gateway's state counts the month's unreleased volume as the model
/// does, and routed, unreleased bookings stay within the monthly limit in every IST month.
/// Routing checks the month's volume (late successes included) before each booking; late
/// successes may pass the limit, by design, and are not routed.
fn within_monthly_limits(
    simulation: &Simulation,
    bookings: &[ModelBooking],
    now: DateTime<Utc>,
) -> Result<(), TestCaseError> {
    for (index, gateway) in simulation.gateways.iter().enumerate() {
        let unreleased = |month: IstMonth, routed_only: bool| -> Paise {
            bookings
                .iter()
                .filter(|b| b.gateway == index && !b.released && (b.routed || !routed_only))
                .filter(|b| IstMonth::of(b.at) == month)
                .fold(Paise::ZERO, |sum, b| sum.saturating_add(b.amount))
        };
        let month = IstMonth::of(now);
        prop_assert_eq!(gateway.usage().volume_in(month), unreleased(month, false));
        let Some(limit) = simulation.specs[index].monthly_limit.map(Paise) else {
            continue;
        };
        for booking in bookings.iter().filter(|b| b.gateway == index && b.routed) {
            let month = IstMonth::of(booking.at);
            let routed = unreleased(month, true);
            prop_assert!(
                routed <= limit,
                "{} booked in {} over the limit {}",
                routed,
                month,
                limit
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- commission

proptest! {
    /// `BasisPoints::of` is the exact half-up value of amount × fee / 10 000, for any amount.
    #[test]
    fn commission_is_the_exact_half_up_value(amount in 0i64..=i64::MAX, fee in 0u32..=10_000) {
        let exact = u128::from(amount.unsigned_abs()) * u128::from(fee);
        let expected = exact / 10_000 + u128::from(exact % 10_000 * 2 >= 10_000);
        let commission = BasisPoints(fee).of(Paise(amount));
        prop_assert_eq!(u128::from(commission.0.unsigned_abs()), expected);
    }

    /// A payment's success carries exactly that commission, from the fee at initiation, and the
    /// wallet accepts it.
    #[test]
    fn a_successful_payment_decides_the_exact_commission(amount in 1i64..=crate::payment::MAX_PAYMENT_AMOUNT.0, fee in 0u32..=10_000) {
        let events = run::<Payment>([
            PaymentCommand::Initiate(initiate(Paise(amount), BasisPoints(fee))),
            PaymentCommand::RecordSuccess { psp_payment_id: "pay_1".to_owned(), amount: Paise(amount), at: t(10) },
        ]);
        let Some(success) = events.last() else { return Err(TestCaseError::fail("no events")) };
        let Some(accrual @ WalletCommand::AccrueCommission { commission, .. }) = WalletCommand::accrual_for(payment_id(1), success) else {
            return Err(TestCaseError::fail(format!("not a success: {success:?}")));
        };
        let exact = u128::from(amount.unsigned_abs()) * u128::from(fee);
        let expected = exact / 10_000 + u128::from(exact % 10_000 * 2 >= 10_000);
        prop_assert_eq!(u128::from(commission.0.unsigned_abs()), expected);
        prop_assert!(Wallet::decide(&Wallet::default(), &accrual).is_ok(), "the wallet accrues it");
    }
}

// ---------------------------------------------------------------- payments

fn initiate(amount: Paise, fee: BasisPoints) -> InitiatePayment {
    InitiatePayment {
        payment_id: payment_id(1),
        merchant: MerchantSnapshot {
            merchant_id: merchant_id(),
            status: MerchantStatus::Active,
            fee,
            thresholds: Thresholds::default(),
            balance_due: Paise::ZERO,
        },
        amount,
        currency: "INR".to_owned(),
        merchant_order_id: "ORD-1".to_owned(),
        details: crate::payment::PaymentDetails::default(),
        gateway_id: gateway_id(0),
        at: t(0),
    }
}

fn payment_command() -> impl Strategy<Value = (u8, u8, i64)> {
    (0u8..6, 0u8..4, 1i64..2_000)
}

fn to_payment_command(step: usize, (kind, pick, amount): (u8, u8, i64)) -> PaymentCommand {
    let at = t(i64::try_from(step).unwrap_or(0) + 1);
    match kind {
        0 => PaymentCommand::RecordPspOrder {
            gateway_id: gateway_id(u128::from(pick % 3)),
            psp_order_id: format!("order_{pick}"),
            checkout: serde_json::json!({ "pick": pick }),
            at,
        },
        1 => PaymentCommand::Reroute {
            to_gateway: gateway_id(u128::from(pick)),
            reason: "502".to_owned(),
            at,
        },
        // Mostly the right amount, sometimes a mismatch.
        2 => PaymentCommand::RecordSuccess {
            psp_payment_id: format!("pay_{pick}"),
            amount: if pick == 3 {
                Paise(amount)
            } else {
                Paise(1_000)
            },
            at,
        },
        3 => PaymentCommand::RecordFailure {
            code: format!("E{pick}"),
            description: "no".to_owned(),
            at,
        },
        _ => PaymentCommand::RecordRefund {
            refund_id: format!("rfnd_{pick}"),
            amount: Paise(amount / 4 + 1),
            at,
        },
    }
}

proptest! {
    /// Whatever PSPs report, in whatever order and however often, a payment succeeds at most
    /// once (so accrues one commission), tries at most 3 gateways, never refunds more than its
    /// amount, and replays identically.
    #[test]
    fn a_payment_succeeds_at_most_once(steps in prop::collection::vec(payment_command(), 0..40)) {
        let commands = std::iter::once(PaymentCommand::Initiate(initiate(Paise(1_000), BasisPoints(350))))
            .chain(steps.into_iter().enumerate().map(|(i, s)| to_payment_command(i, s)));
        let events = run::<Payment>(commands);
        let successes = events.iter().filter(|e| matches!(e, PaymentEvent::PaymentSucceeded { .. })).count();
        prop_assert!(successes <= 1);
        let payment = Payment::fold(&events).ok_or_else(|| TestCaseError::fail("initiated"))?;
        prop_assert!(payment.attempts() <= crate::payment::MAX_ATTEMPTS);
        prop_assert!(payment.refunded() <= payment.amount());
        if successes == 1 {
            prop_assert_eq!(payment.commission(), Some(Paise(35)));
        }
        replays_identically::<Payment>(&events)?;
    }
}

// ---------------------------------------------------------------- wallet

fn wallet_command() -> impl Strategy<Value = (u8, u128, i64)> {
    (0u8..5, 0u128..5, 1i64..8_000)
}

fn to_wallet_command(step: usize, (kind, id, amount): (u8, u128, i64)) -> WalletCommand {
    let at = t(i64::try_from(step).unwrap_or(0));
    match kind {
        0 => WalletCommand::AccrueCommission {
            payment_id: payment_id(u128::try_from(step).unwrap_or(0)),
            amount: Paise(amount * 30),
            fee: BasisPoints(350),
            commission: BasisPoints(350).of(Paise(amount * 30)),
            at,
        },
        1 => WalletCommand::RequestPayout {
            payout_id: payout_id(id),
            amount: Paise(amount),
            at,
        },
        2 => WalletCommand::RecordPayoutPaid {
            payout_id: payout_id(id),
            reference: format!("UTR{step}"),
            at,
        },
        3 => WalletCommand::RecordPayoutReversed {
            payout_id: payout_id(id),
            reason: PayoutReversalReason::Failed,
            detail: String::new(),
            at,
        },
        _ => WalletCommand::RecordManualSettlement {
            reference: format!("S{step}"),
            amount: Paise(amount),
            note: String::new(),
            at,
        },
    }
}

proptest! {
    /// For any valid sequence: balance due = accrued − paid out + reversed − settled (each total
    /// summed from the events themselves), it never goes negative, pending payouts never exceed
    /// it, and the wallet replays identically.
    #[test]
    fn wallet_balance_due_adds_up(steps in prop::collection::vec(wallet_command(), 0..60)) {
        let events = run::<Wallet>(steps.into_iter().enumerate().map(|(i, s)| to_wallet_command(i, s)));
        let sum = |pick: fn(&WalletEvent) -> Option<Paise>| events.iter().filter_map(pick).fold(Paise::ZERO, |a, b| a + b);
        let accrued = sum(|e| match e { WalletEvent::CommissionAccrued { commission, .. } => Some(*commission), _ => None });
        let paid_out = sum(|e| match e { WalletEvent::CommissionPaidOut { amount, .. } => Some(*amount), _ => None });
        let reversed = sum(|e| match e { WalletEvent::PayoutReversed { amount, was_paid_out: true, .. } => Some(*amount), _ => None });
        let settled = sum(|e| match e { WalletEvent::ManualSettlementRecorded { amount, .. } => Some(*amount), _ => None });
        let wallet = Wallet::fold(&events);
        prop_assert_eq!(wallet.balance_due(), accrued - paid_out + reversed - settled);
        prop_assert!(wallet.balance_due() >= Paise::ZERO);
        prop_assert!(wallet.pending() >= Paise::ZERO && wallet.pending() <= wallet.balance_due());
        let accruals = events.iter().filter(|e| matches!(e, WalletEvent::CommissionAccrued { .. })).count();
        prop_assert_eq!(wallet.accruals(), u64::try_from(accruals).unwrap_or(u64::MAX));
        let pending: Paise = (0..5)
            .filter_map(|id| wallet.payout(payout_id(id)))
            .filter(|p| p.status == PayoutStatus::Pending)
            .map(|p| p.amount)
            .sum();
        prop_assert_eq!(wallet.pending(), pending);
        replays_identically::<Wallet>(&events)?;
    }
}

// ---------------------------------------------------------------- merchants, notifications, webhooks

fn onboard() -> MerchantCommand {
    MerchantCommand::Onboard(OnboardMerchant {
        merchant_id: merchant_id(),
        company_name: "Acme".to_owned(),
        webhook_url: Some("https://acme.example/hooks".to_owned()),
        whatsapp: None,
        client_key: ClientKey::parse("ck_0123456789abcdef").expect("a valid key"),
        client_salt: sealed("salt"),
        webhook_secret: sealed("whsec"),
        fee: BasisPoints::DEFAULT_FEE,
        thresholds: Thresholds::default(),
        checkout: CheckoutSettings::default(),
        at: t(0),
    })
}

fn to_merchant_command(step: usize, (kind, n): (u8, u32)) -> MerchantCommand {
    let at = t(i64::try_from(step).unwrap_or(0) * 3_600);
    match kind {
        0 | 1 => MerchantCommand::AttachGateway {
            gateway_id: gateway_id(u128::from(n % 60)),
            at,
        },
        2 => MerchantCommand::DetachGateway {
            gateway_id: gateway_id(u128::from(n % 60)),
            at,
        },
        3 => MerchantCommand::ChangeFee {
            fee: BasisPoints(n % 12_000),
            at,
        },
        4 => MerchantCommand::Suspend {
            reason: "review".to_owned(),
            at,
        },
        5 => MerchantCommand::Reactivate { at },
        6 => MerchantCommand::RotateWebhookSecret {
            secret: sealed(&format!("whsec{n}")),
            grace_secs: u64::from(n % 100_000),
            at,
        },
        7 => MerchantCommand::RotateKeys {
            client_key: ClientKey::parse(&format!("ck_{n:016}")).expect("a valid key"),
            client_salt: sealed(&format!("salt{n}")),
            at,
        },
        8 => MerchantCommand::DisableWebhookEndpoint {
            failing_since: t(0),
            at,
        },
        9 => MerchantCommand::EnableWebhookEndpoint { at },
        _ => MerchantCommand::Close {
            reason: "done".to_owned(),
            at,
        },
    }
}

fn to_notification_command(step: usize, (kind, flags): (u8, u8)) -> NotificationCommand {
    let at = t(i64::try_from(step).unwrap_or(0) * 60);
    match kind {
        0 | 1 => NotificationCommand::RecordAttemptFailed {
            error_code: "131000".to_owned(),
            error_message: "no".to_owned(),
            retryable: flags & 1 == 1,
            rate_limited: flags & 2 == 2,
            retry_after_secs: None,
            jitter: Jitter::from_bps(i32::from(flags) * 100 - 1_000),
            at,
        },
        2 => NotificationCommand::RecordSent {
            provider_message_id: format!("wamid.{step}"),
            at,
        },
        _ => NotificationCommand::Resend { at },
    }
}

fn to_webhook_command(step: usize, (kind, status): (u8, u16)) -> WebhookDeliveryCommand {
    let at = t(i64::try_from(step).unwrap_or(0) * 3_600);
    match kind {
        0 => WebhookDeliveryCommand::Requeue { at },
        1 => WebhookDeliveryCommand::RecordAttempt(WebhookAttempt {
            outcome: AttemptOutcome::TransportError {
                error: "refused".to_owned(),
            },
            duration_ms: 5,
            retry_after_secs: None,
            jitter: Jitter::NONE,
            at,
        }),
        _ => WebhookDeliveryCommand::RecordAttempt(WebhookAttempt {
            outcome: AttemptOutcome::Response {
                status_code: status,
                body_excerpt: String::new(),
            },
            duration_ms: 50,
            retry_after_secs: Some(u64::from(status)),
            jitter: Jitter::from_bps(i32::from(status % 4_000) - 2_000),
            at,
        }),
    }
}

proptest! {
    /// Merchants keep at most 50 active gateways and replay identically.
    #[test]
    fn merchants_replay_identically(steps in prop::collection::vec((0u8..11, any::<u32>()), 0..120)) {
        let commands = std::iter::once(onboard()).chain(steps.into_iter().enumerate().map(|(i, s)| to_merchant_command(i + 1, s)));
        let events = run::<Merchant>(commands);
        let merchant = Merchant::fold(&events).ok_or_else(|| TestCaseError::fail("onboarded"))?;
        prop_assert!(merchant.active_gateways().len() <= crate::merchant::MAX_ACTIVE_GATEWAYS);
        replays_identically::<Merchant>(&events)?;
    }

    /// Notifications never make more attempts than their limit per queueing, and replay identically.
    #[test]
    fn notifications_replay_identically(steps in prop::collection::vec((0u8..4, 0u8..4), 0..30)) {
        let queue = NotificationCommand::Queue(QueueNotification {
            notification_id: notification_id(1),
            merchant_id: merchant_id(),
            kind: NotificationType::TxnUpdate,
            template: "txn_update".to_owned(),
            recipient: "919867800451".to_owned(),
            params: vec![],
            at: t(0),
        });
        let events = run::<Notification>(std::iter::once(queue).chain(steps.into_iter().enumerate().map(|(i, s)| to_notification_command(i + 1, s))));
        let notification = Notification::fold(&events).ok_or_else(|| TestCaseError::fail("queued"))?;
        prop_assert!(notification.attempts() <= notification.attempt_limit());
        replays_identically::<Notification>(&events)?;
    }

    /// Webhook deliveries never exceed 8 attempts per queueing, and replay identically.
    #[test]
    fn webhook_deliveries_replay_identically(steps in prop::collection::vec((0u8..4, 100u16..600), 0..40)) {
        let queue = WebhookDeliveryCommand::Queue(QueueWebhookDelivery {
            delivery_id: delivery_id(1),
            merchant_id: merchant_id(),
            payment_id: Some(payment_id(1)),
            event_type: "payment.succeeded".to_owned(),
            payload: serde_json::json!({ "n": 1 }),
            endpoint_url: "https://acme.example/hooks".to_owned(),
            endpoint_id: crate::merchant::first_endpoint_id(merchant_id()),
            at: t(0),
        });
        let events = run::<WebhookDelivery>(std::iter::once(queue).chain(steps.into_iter().enumerate().map(|(i, s)| to_webhook_command(i + 1, s))));
        let delivery = WebhookDelivery::fold(&events).ok_or_else(|| TestCaseError::fail("queued"))?;
        prop_assert!(delivery.attempts() <= crate::retry::WEBHOOK_MAX_ATTEMPTS);
        replays_identically::<WebhookDelivery>(&events)?;
    }
}

/// Keeps the event type of every generated event meaningful to the catalogue.
#[test]
fn generated_events_belong_to_the_catalogue() {
    let events = run::<Payment>([PaymentCommand::Initiate(initiate(
        Paise(100),
        BasisPoints(350),
    ))]);
    for event in &events {
        assert_eq!(
            crate::catalog::category_of(event.event_type()),
            Some(<Payment as Decider>::CATEGORY)
        );
    }
}
