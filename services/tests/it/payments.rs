//! Payment operations over a real PostgreSQL: initiation with routing and idempotent order ids,
//! the per-minute cap across 50 gateways, reroutes, and exactly one commission per success.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::merchant::ClientKey;
use lightspeed_domain::payment::{PaymentDetails, PaymentError, PaymentStatus};
use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, ReportOutcome};
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::wallet::Wallet;
use lightspeed_domain::{
    BasisPoints, GatewayId, ManualClock, MerchantId, Paise, PaymentId, Provider, SealedSecret,
};
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_eventstore::{CommandContext, EventStore, PgEventStore, stream_of};
use lightspeed_services::{
    Initiated, Ledger, NewGateway, NewMerchant, PaymentRequest, ServiceError, Settled,
};

fn sealed(tag: &str) -> SealedSecret {
    SealedSecret {
        key_id: "test".into(),
        sealed: tag.into(),
    }
}

pub(crate) struct World {
    db: TestDatabase,
    pub(crate) clock: ManualClock,
    pub(crate) ledger: Ledger,
}

pub(crate) async fn world() -> World {
    let db = TestDatabase::new().await;
    let clock = ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0)
            .single()
            .expect("instant"),
    );
    let store = PgEventStore::new(db.pool.clone(), Arc::new(clock.clone()));
    World {
        db,
        clock,
        ledger: Ledger::new(store),
    }
}

impl World {
    /// Another instance of the service on the same database, as a second replica runs it: its
    /// own connections, group commit and caches.
    pub(crate) async fn another_instance(&self) -> Ledger {
        let pool = self.db.another_pool(8).await;
        Ledger::new(PgEventStore::new(pool, Arc::new(self.clock.clone())))
    }

    pub(crate) async fn merchant(&self, checkout: CheckoutSettings) -> MerchantId {
        let merchant_id = MerchantId::new();
        let key = format!("ck_{}", uuid::Uuid::now_v7().simple());
        self.ledger
            .onboard_merchant(
                NewMerchant {
                    merchant_id,
                    company_name: "Acme Retail".into(),
                    webhook_url: Some("https://acme.example/hooks".into()),
                    whatsapp: None,
                    client_key: ClientKey::parse(&key[..27]).expect("client key"),
                    client_salt: sealed("salt"),
                    webhook_secret: sealed("whsec"),
                    fee: BasisPoints::DEFAULT_FEE,
                    thresholds: Thresholds::default(),
                    checkout,
                    at: self.ledger.now(),
                },
                &CommandContext::default(),
            )
            .await
            .expect("onboard");
        merchant_id
    }

    async fn gateway(
        &self,
        merchant_id: MerchantId,
        priority: u16,
        rpm_cap: Option<u32>,
    ) -> GatewayId {
        let settings = GatewaySettings {
            priority,
            monthly_limit: None,
            rpm_cap,
        };
        self.gateway_with(merchant_id, settings).await
    }

    pub(crate) async fn gateway_with(
        &self,
        merchant_id: MerchantId,
        settings: GatewaySettings,
    ) -> GatewayId {
        let gateway_id = GatewayId::new();
        let priority = settings.priority;
        self.ledger
            .register_gateway(
                NewGateway {
                    gateway_id,
                    merchant_id,
                    provider: Provider::Sandbox,
                    label: format!("sandbox {priority}"),
                    credentials: sealed("credentials"),
                    settings,
                    enabled: true,
                    at: self.ledger.now(),
                },
                &CommandContext::default(),
            )
            .await
            .expect("register gateway");
        gateway_id
    }

    pub(crate) async fn initiate(
        &self,
        merchant_id: MerchantId,
        order_id: &str,
        amount: i64,
    ) -> Result<Initiated, ServiceError> {
        let merchant = self
            .ledger
            .current_merchant(merchant_id)
            .await
            .expect("merchant");
        self.ledger
            .initiate_payment(
                &merchant,
                &request(order_id, amount),
                &CommandContext::default(),
            )
            .await
    }

    /// A PSP's report that the payment succeeded, for its whole amount.
    pub(crate) async fn success_report(
        &self,
        merchant_id: MerchantId,
        payment_id: PaymentId,
        dedupe_key: &str,
    ) -> ReportOutcome {
        let payment = self
            .ledger
            .payment_of(merchant_id, payment_id)
            .await
            .expect("payment");
        ReportOutcome {
            merchant_id,
            gateway_id: payment.gateway_id(),
            provider: Provider::Sandbox,
            dedupe_key: dedupe_key.into(),
            payment_id: Some(payment_id),
            psp_order_id: None,
            psp_payment_id: Some(format!("pay_{dedupe_key}")),
            outcome: PspOutcome::Succeeded {
                amount: payment.amount(),
            },
            source: OutcomeSource::Webhook,
            at: self.ledger.now(),
        }
    }

    async fn succeed(
        &self,
        merchant_id: MerchantId,
        payment_id: PaymentId,
        dedupe_key: &str,
    ) -> Settled {
        let report = self
            .success_report(merchant_id, payment_id, dedupe_key)
            .await;
        self.ledger
            .report_outcome(report.clone(), &CommandContext::default())
            .await
            .expect("report");
        self.ledger
            .settle_outcome(&report, &CommandContext::default())
            .await
            .expect("settle")
    }

    async fn wallet(&self, merchant_id: MerchantId) -> Wallet {
        self.ledger
            .wallets()
            .load(&stream_of::<Wallet>(merchant_id).expect("id"))
            .await
            .expect("wallet")
            .state
    }
}

pub(crate) fn request(order_id: &str, amount: i64) -> PaymentRequest {
    PaymentRequest {
        amount: Paise(amount),
        currency: "INR".into(),
        order_id: order_id.into(),
        details: PaymentDetails::default(),
        request_digest: format!("digest-{order_id}-{amount}"),
    }
}

#[tokio::test]
async fn an_order_id_starts_one_payment_and_a_different_request_with_it_is_refused() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    w.gateway(merchant, 1, None).await;
    let first = w
        .initiate(merchant, "ORD-1", 49_900)
        .await
        .expect("initiate");
    let Initiated::Created(payment_id) = first else {
        panic!("expected a new payment, got {first:?}")
    };
    let retry = w.initiate(merchant, "ORD-1", 49_900).await.expect("retry");
    assert_eq!(retry, Initiated::Existing(payment_id));
    let other = w.initiate(merchant, "ORD-1", 10_000).await;
    assert!(
        matches!(other, Err(ServiceError::OrderIdReused { payment_id: p }) if p == payment_id),
        "{other:?}"
    );

    // Another replica (cold caches) answers the same.
    let replica = Ledger::new(w.ledger.store().clone());
    let state = replica.current_merchant(merchant).await.expect("merchant");
    let retry = replica
        .initiate_payment(
            &state,
            &request("ORD-1", 49_900),
            &CommandContext::default(),
        )
        .await;
    assert_eq!(
        retry.expect("retry elsewhere"),
        Initiated::Existing(payment_id)
    );
    let payment = w
        .ledger
        .payment_of(merchant, payment_id)
        .await
        .expect("payment");
    assert_eq!(payment.status(), PaymentStatus::Created);
}

#[tokio::test]
async fn fifty_gateways_capped_at_one_a_minute_take_fifty_payments_then_none_within_the_minute() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    let mut gateways = std::collections::HashSet::new();
    for priority in 0..50 {
        gateways.insert(w.gateway(merchant, priority, Some(1)).await);
    }
    let mut used = std::collections::HashSet::new();
    for n in 0..50 {
        let initiated = w
            .initiate(merchant, &format!("ORD-{n}"), 10_000)
            .await
            .expect("initiate");
        let payment = w
            .ledger
            .payment_of(merchant, initiated.payment_id())
            .await
            .expect("payment");
        assert!(
            used.insert(payment.gateway_id()),
            "payment {n} went to a gateway already used"
        );
    }
    assert_eq!(used, gateways);
    let refused = w.initiate(merchant, "ORD-50", 10_000).await;
    assert!(
        matches!(refused, Err(ServiceError::NoGatewayAvailable(_))),
        "{refused:?}"
    );

    w.clock.advance(Duration::seconds(61));
    w.initiate(merchant, "ORD-51", 10_000)
        .await
        .expect("a minute later, capacity is back");
}

#[tokio::test]
async fn concurrent_initiations_never_book_a_gateway_past_its_cap() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    for priority in 0..5 {
        w.gateway(merchant, priority, Some(2)).await;
    }
    let ledger = Arc::new(w.ledger.clone());
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                let state = ledger.current_merchant(merchant).await.expect("merchant");
                ledger
                    .initiate_payment(
                        &state,
                        &request(&format!("ORD-{n}"), 5_000),
                        &CommandContext::default(),
                    )
                    .await
            })
        })
        .collect();
    let mut per_gateway = std::collections::HashMap::<GatewayId, usize>::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(initiated) => {
                let payment = w
                    .ledger
                    .payment_of(merchant, initiated.payment_id())
                    .await
                    .expect("payment");
                *per_gateway.entry(payment.gateway_id()).or_default() += 1;
            }
            Err(ServiceError::NoGatewayAvailable(_)) => refused += 1,
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    assert!(
        per_gateway.values().all(|&n| n <= 2),
        "a cap of 2 per minute held: {per_gateway:?}"
    );
    assert_eq!(per_gateway.values().sum::<usize>(), 10);
    assert_eq!(refused, 6);
}

#[tokio::test]
async fn a_booking_nobody_raced_leaves_the_gateway_state_current_in_the_cache() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    // No cap: bookings are appended "unchanged since", tolerating other bookings.
    let gateway = w.gateway(merchant, 1, None).await;
    let stream = stream_of::<lightspeed_domain::gateway::Gateway>(gateway).expect("stream");
    for order in ["ORD-1", "ORD-2"] {
        w.initiate(merchant, order, 10_000).await.expect("initiate");
    }
    let in_log = w
        .ledger
        .store()
        .stream_version(&stream)
        .await
        .expect("version");
    assert_eq!(w.ledger.gateways().cached(&stream).version, in_log);
}

#[tokio::test]
async fn a_merchant_changed_after_authentication_is_decided_on_again() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    w.gateway(merchant, 1, None).await;
    let authenticated = w.ledger.current_merchant(merchant).await.expect("merchant");
    // Another replica changes the fee between this request's authentication and its append.
    let elsewhere = Ledger::new(w.ledger.store().clone());
    elsewhere
        .update_merchant(
            merchant,
            &[lightspeed_domain::merchant::MerchantCommand::ChangeFee {
                fee: BasisPoints(200),
                at: w.ledger.now(),
            }],
            &CommandContext::default(),
        )
        .await
        .expect("fee");
    let payment = w
        .ledger
        .initiate_payment(
            &authenticated,
            &request("ORD-1", 10_000),
            &CommandContext::default(),
        )
        .await
        .expect("initiate")
        .payment_id();
    let payment = w
        .ledger
        .payment_of(merchant, payment)
        .await
        .expect("payment");
    assert_eq!(payment.fee(), BasisPoints(200));
}

#[tokio::test]
async fn a_suspended_merchant_is_refused_with_the_amount_due() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    w.gateway(merchant, 1, None).await;
    // ₹3,00,000 at 3.5 % is ₹10,500 of commission: past the ₹10,000 suspend threshold.
    let big = w
        .initiate(merchant, "BIG", 30_000_000)
        .await
        .expect("initiate")
        .payment_id();
    assert!(matches!(
        w.succeed(merchant, big, "evt_big").await,
        Settled::Succeeded {
            commission: Paise(1_050_000),
            ..
        }
    ));
    let refused = w.initiate(merchant, "NEXT", 100).await;
    match refused {
        Err(ServiceError::Payment(PaymentError::BalanceDueOverLimit { balance_due, .. })) => {
            assert_eq!(balance_due, Paise(1_050_000));
        }
        other => panic!("expected a suspension, got {other:?}"),
    }
}

#[tokio::test]
async fn the_same_success_reported_five_times_and_two_racing_reports_make_one_commission() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    w.gateway(merchant, 1, None).await;
    let payment = w
        .initiate(merchant, "ORD-1", 49_900)
        .await
        .expect("initiate")
        .payment_id();
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(w.succeed(merchant, payment, "evt_same").await);
    }
    // Two different reports of the same success (webhook and status check), racing.
    let (a, b) = tokio::join!(
        w.succeed(merchant, payment, "evt_a"),
        w.succeed(merchant, payment, "evt_b")
    );
    outcomes.extend([a, b]);
    let successes = outcomes
        .iter()
        .filter(|o| matches!(o, Settled::Succeeded { .. }))
        .count();
    assert_eq!(successes, 1, "{outcomes:?}");
    let wallet = w.wallet(merchant).await;
    assert_eq!(wallet.accruals(), 1);
    assert_eq!(wallet.accrued(), Paise(1_747)); // 49 900 × 350 / 10 000 = 1 746.5 → 1 747
    let events = w
        .ledger
        .store()
        .read_stream(&stream_of::<Wallet>(merchant).expect("id"), 0, 100)
        .await
        .expect("read");
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn a_failing_gateway_rests_and_the_payment_moves_on_until_three_have_been_tried() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    let best = w.gateway(merchant, 30, None).await;
    let second = w.gateway(merchant, 20, None).await;
    let third = w.gateway(merchant, 10, None).await;
    let fourth = w.gateway(merchant, 0, None).await;
    let payment = w
        .initiate(merchant, "ORD-1", 10_000)
        .await
        .expect("initiate")
        .payment_id();
    let ctx = CommandContext::default();
    let moved = w
        .ledger
        .reroute_after_gateway_failure(payment, best, "PSP answered 503", &ctx)
        .await
        .expect("reroute");
    assert_eq!(moved.gateway_id(), second);
    let resting = w.ledger.gateway_of(merchant, best).await.expect("gateway");
    assert!(resting.is_temporarily_failed(w.ledger.now()));
    // The next payment avoids the resting gateway; once the rest is over it is used again.
    let next = w
        .initiate(merchant, "ORD-2", 10_000)
        .await
        .expect("initiate")
        .payment_id();
    assert_eq!(
        w.ledger
            .payment_of(merchant, next)
            .await
            .expect("payment")
            .gateway_id(),
        second
    );
    let moved = w
        .ledger
        .reroute_after_gateway_failure(payment, second, "timeout", &ctx)
        .await
        .expect("reroute");
    assert_eq!(moved.gateway_id(), third);
    let failed = w
        .ledger
        .reroute_after_gateway_failure(payment, third, "PSP answered 500", &ctx)
        .await
        .expect("fail");
    assert_eq!(
        failed.status(),
        PaymentStatus::Failed,
        "three gateways tried: the payment fails"
    );
    assert!(!failed.tried_gateways().contains(&fourth));

    w.clock.advance(Duration::minutes(6));
    let later = w
        .initiate(merchant, "ORD-3", 10_000)
        .await
        .expect("initiate")
        .payment_id();
    assert_eq!(
        w.ledger
            .payment_of(merchant, later)
            .await
            .expect("payment")
            .gateway_id(),
        best
    );
}

#[tokio::test]
async fn concurrent_payments_on_one_uncapped_gateway_all_book_without_conflicts() {
    let w = world().await;
    let merchant = w.merchant(CheckoutSettings::default()).await;
    let gateway = w.gateway(merchant, 1, None).await;
    let ledger = Arc::new(w.ledger.clone());
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                let state = ledger.current_merchant(merchant).await.expect("merchant");
                ledger
                    .initiate_payment(
                        &state,
                        &request(&format!("HOT-{n}"), 1_000),
                        &CommandContext::default(),
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert!(matches!(
            task.await.expect("task"),
            Ok(Initiated::Created(_))
        ));
    }
    let gateway = w
        .ledger
        .gateway_of(merchant, gateway)
        .await
        .expect("gateway");
    assert_eq!(
        gateway
            .usage()
            .bookings_in(lightspeed_domain::calendar::IstMonth::of(w.ledger.now())),
        40
    );
}
