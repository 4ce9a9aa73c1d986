//! Two instances of the service on one database, as two replicas run them (each with its own
//! connections, group commit and caches), racing: initiations against gateways' monthly limits,
//! and one PSP outcome settled by both at once. What counts is read back from the log.

use std::collections::BTreeMap;
use std::sync::Arc;

use lightspeed_domain::calendar::IstMonth;
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::{Gateway, GatewayEvent, GatewaySettings};
use lightspeed_domain::payment::{Payment, PaymentEvent};
use lightspeed_domain::wallet::{Wallet, WalletEvent};
use lightspeed_domain::{BasisPoints, GatewayId, MerchantId, Paise, PaymentId};
use lightspeed_eventstore::{CommandContext, EventStore, PgEventStore, stream_of};
use lightspeed_services::{Initiated, Ledger, ServiceError, Settled};

use crate::payments::{World, request, world};

/// Each gateway's monthly limit in the race.
const MONTHLY_LIMIT: Paise = Paise(10_000);
/// Each payment's amount: three fit under the limit (9 000), a fourth would pass it.
const AMOUNT: i64 = 3_000;
/// How often a caller tries again after an answer of "contended" before the test gives up.
const CALLER_RETRIES: usize = 100;

/// Initiates a payment as a caller does: trying again while the answer is "contended" (nothing
/// was stored), until it is created or refused.
async fn initiate_until_answered(
    ledger: &Ledger,
    merchant: MerchantId,
    order_id: &str,
) -> Result<Initiated, ServiceError> {
    for _ in 0..CALLER_RETRIES {
        let state = ledger.current_merchant(merchant).await?;
        let context = CommandContext::default();
        match ledger
            .initiate_payment(&state, &request(order_id, AMOUNT), &context)
            .await
        {
            Err(ServiceError::Contended) => continue,
            answered => return answered,
        }
    }
    panic!("{order_id} stayed contended {CALLER_RETRIES} times");
}

/// A gateway's unreleased routed volume per IST month after each event of its stream, in order.
async fn volume_after_each_event(store: &PgEventStore, gateway: GatewayId) -> Vec<Paise> {
    let stream = stream_of::<Gateway>(gateway).expect("stream");
    let mut by_month = BTreeMap::<IstMonth, Paise>::new();
    let mut after_each = Vec::new();
    for recorded in store.read_stream(&stream, 0, 10_000).await.expect("read") {
        match recorded.decode::<GatewayEvent>().expect("decode") {
            GatewayEvent::GatewayBooked { amount, at, .. } => {
                let volume = by_month.entry(IstMonth::of(at)).or_default();
                *volume = volume.saturating_add(amount);
                after_each.push(*volume);
            }
            GatewayEvent::GatewayBookingReleased {
                amount, booked_at, ..
            } => {
                let volume = by_month.entry(IstMonth::of(booked_at)).or_default();
                *volume = volume.saturating_sub(amount);
                after_each.push(*volume);
            }
            _ => {}
        }
    }
    after_each
}

async fn limited_gateways(w: &World, merchant: MerchantId, count: u16) -> Vec<GatewayId> {
    let mut gateways = Vec::new();
    for priority in 0..count {
        let settings = GatewaySettings {
            priority,
            monthly_limit: Some(MONTHLY_LIMIT),
            rpm_cap: None,
        };
        gateways.push(w.gateway_with(merchant, settings).await);
    }
    gateways
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initiations_racing_from_two_instances_never_book_a_gateway_past_its_monthly_limit() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    let gateways = limited_gateways(&w, merchant, 4).await;
    let instances = [
        Arc::new(w.ledger.clone()),
        Arc::new(w.another_instance().await),
    ];
    // 24 payments of 3 000 against 4 gateways with room for 3 each.
    let tasks: Vec<_> = (0..24)
        .map(|n| {
            let ledger = Arc::clone(&instances[n % 2]);
            tokio::spawn(async move {
                initiate_until_answered(&ledger, merchant, &format!("ORD-{n}")).await
            })
        })
        .collect();
    let (mut created, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(Initiated::Created(_)) => created += 1,
            Err(ServiceError::NoGatewayAvailable(_)) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    for gateway in gateways {
        let volumes = volume_after_each_event(w.ledger.store(), gateway).await;
        assert!(
            volumes.iter().all(|v| *v <= MONTHLY_LIMIT),
            "gateway {gateway} booked past its limit: {volumes:?}"
        );
        assert_eq!(volumes.last(), Some(&Paise(9_000)), "{gateway} filled");
    }
    assert_eq!((created, refused), (12, 12));
}

/// The commissions the merchant's wallet accrued, by payment, read from the log.
async fn accruals(store: &PgEventStore, merchant: MerchantId) -> Vec<(PaymentId, Paise)> {
    let stream = stream_of::<Wallet>(merchant).expect("stream");
    let events = store.read_stream(&stream, 0, 1_000).await.expect("read");
    events
        .iter()
        .filter_map(|e| match e.decode::<WalletEvent>().expect("decode") {
            WalletEvent::CommissionAccrued {
                payment_id,
                commission,
                ..
            } => Some((payment_id, commission)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_outcome_settled_at_once_by_two_instances_accrues_one_commission() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    let unlimited = GatewaySettings {
        priority: 1,
        monthly_limit: None,
        rpm_cap: None,
    };
    w.gateway_with(merchant, unlimited).await;
    let payment = w
        .initiate(merchant, "ORD-1", 49_900)
        .await
        .expect("initiate")
        .payment_id();
    let report = w.success_report(merchant, payment, "evt_1").await;
    w.ledger
        .report_outcome(report.clone(), &CommandContext::default())
        .await
        .expect("report");
    let instances = [
        Arc::new(w.ledger.clone()),
        Arc::new(w.another_instance().await),
    ];
    for instance in &instances {
        instance.payment_of(merchant, payment).await.expect("seen");
    }
    // Each instance settles it four times at once, as its job redelivered to two workers would.
    let start = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let (ledger, report) = (Arc::clone(&instances[n % 2]), report.clone());
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                ledger
                    .settle_outcome(&report, &CommandContext::default())
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task").expect("settle"));
    }
    let commission = BasisPoints::DEFAULT_FEE.of(Paise(49_900));
    let succeeded = Settled::Succeeded {
        commission,
        late_success: false,
    };
    assert_eq!(
        outcomes.iter().filter(|o| **o == succeeded).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Settled::Unchanged)
            .count(),
        7,
        "{outcomes:?}"
    );
    let store = w.ledger.store();
    assert_eq!(accruals(store, merchant).await, vec![(payment, commission)]);
    let payment_stream = stream_of::<Payment>(payment).expect("stream");
    let successes = store
        .read_stream(&payment_stream, 0, 100)
        .await
        .expect("read")
        .iter()
        .filter(|e| {
            matches!(
                e.decode::<PaymentEvent>(),
                Ok(PaymentEvent::PaymentSucceeded { .. })
            )
        })
        .count();
    assert_eq!(successes, 1);
}
