//! Pending-payment reconciliation: a payment whose PSP webhook never came is found by the sweep,
//! checked with the PSP's status API and settled with exactly one commission, however often the
//! sweep runs.

use std::time::Duration;

use lightspeed_adapters::psp::psp_reference;
use lightspeed_adapters::sandbox::{OrderStatus, order_id_for};
use lightspeed_domain::payment::PaymentStatus;
use lightspeed_workers::{QueueName, Reconciler, ReconciliationSettings, Sweep};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{World, order_view, wait_for};

#[tokio::test]
async fn a_payment_whose_webhook_never_came_is_settled_by_reconciliation_with_one_commission() {
    let w = World::new().await;
    let psp = MockServer::start().await;
    let merchant = w.merchant(None).await;
    w.gateway(merchant.id, 1, &psp.uri()).await;
    let stale = w.initiate(merchant.id, "ORD-STALE", 49_900).await;
    let payment = w.record_order(stale).await;
    let reference = psp_reference(stale);
    Mock::given(method("GET"))
        .and(path(format!("/v1/orders/{}", order_id_for(&reference))))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_view(
            &reference,
            payment.amount(),
            OrderStatus::Paid,
        )))
        .expect(1)
        .mount(&psp)
        .await;
    w.advance(Duration::from_secs(31 * 60));
    // A payment still within its 30 minutes is left alone.
    let recent = w.initiate(merchant.id, "ORD-RECENT", 10_000).await;
    w.record_order(recent).await;

    let reconciler = Reconciler::new(
        w.ledger.clone(),
        w.nats.jetstream.clone(),
        w.nats.config.clone(),
        ReconciliationSettings::default(),
    );
    let first = reconciler.sweep_once().await.expect("sweep");
    assert_eq!(
        first,
        Sweep {
            stale: 1,
            queued: 1,
            already_queued: 0,
            ..Sweep::default()
        }
    );
    // The hourly run and an admin's on-demand run in the same window queue one check.
    let second = reconciler.sweep_once().await.expect("sweep again");
    assert_eq!(
        second,
        Sweep {
            stale: 1,
            queued: 0,
            already_queued: 1,
            ..Sweep::default()
        }
    );

    let checker = w.start(QueueName::SettlementProcessing);
    let settler = w.start(QueueName::WebhookProcessing);
    wait_for("the success", || async {
        (w.payment(stale).await.status() == PaymentStatus::Succeeded).then_some(())
    })
    .await;
    w.drained(QueueName::SettlementProcessing).await;
    w.drained(QueueName::WebhookProcessing).await;
    checker.stop().await;
    settler.stop().await;

    let after = reconciler.sweep_once().await.expect("sweep after");
    assert_eq!(after.stale, 0, "a settled payment is not checked again");
    assert_eq!(w.commissions(merchant.id).await, 1);
    assert_eq!(w.payment(recent).await.status(), PaymentStatus::Pending);
}
