//! The PSP outcome processor: at-least-once delivery, exactly one effect.

use std::time::Duration;

use lightspeed_domain::payment::{PaymentEvent, PaymentStatus};
use lightspeed_domain::{BasisPoints, Payment};
use lightspeed_eventstore::stream_of;
use lightspeed_workers::QueueName;

use crate::common::{World, wait_for};

/// How many times each outcome is delivered in all.
const DELIVERIES: usize = 5;

#[tokio::test]
async fn one_outcome_delivered_five_times_and_a_racing_report_accrue_exactly_one_commission() {
    let w = World::new().await;
    let merchant = w.merchant(None).await;
    w.gateway(merchant.id, 1, "http://127.0.0.1:9").await;
    let payment_id = w.initiate(merchant.id, "ORD-3", 49_900).await;
    w.record_order(payment_id).await;
    // The PSP's webhook, and a second report of the same capture under another key (a status
    // check, or a PSP that sends two event types): both recorded, racing for the payment.
    w.report_success(payment_id, "evt_1").await;
    let racing = w.report_success(payment_id, "evt_2").await;
    w.relayed(&w.outcome_event(racing.gateway_id, &racing.dedupe_key).await)
        .await;

    let mut worker = w.start(QueueName::WebhookProcessing);
    wait_for("the success", || async {
        (w.payment(payment_id).await.status() == PaymentStatus::Succeeded).then_some(())
    })
    .await;
    w.drained(QueueName::WebhookProcessing).await;
    for _ in 1..DELIVERIES {
        worker.stop().await;
        w.forget_consumers(QueueName::WebhookProcessing).await;
        worker = w.start(QueueName::WebhookProcessing);
        w.drained(QueueName::WebhookProcessing).await;
    }
    worker.stop().await;

    assert_eq!(w.commissions(merchant.id).await, 1);
    let payment = w.payment(payment_id).await;
    let commission = BasisPoints::DEFAULT_FEE.of(payment.amount());
    assert_eq!(payment.commission(), Some(commission));
    let wallet = w
        .ledger
        .wallets()
        .load(&stream_of::<lightspeed_domain::Wallet>(merchant.id).expect("stream"))
        .await
        .expect("wallet")
        .state;
    assert_eq!(wallet.balance_due(), commission);
}

#[tokio::test]
async fn a_settlement_is_decided_as_of_its_report_and_a_late_redelivery_stores_nothing_new() {
    let w = World::new().await;
    let merchant = w.merchant(None).await;
    w.gateway(merchant.id, 1, "http://127.0.0.1:9").await;
    let payment_id = w.initiate(merchant.id, "ORD-L", 49_900).await;
    w.record_order(payment_id).await;
    let report = w.report_success(payment_id, "evt_late").await;

    // The job runs an hour after the report, in a freshly started process.
    w.advance(Duration::from_secs(3600));
    let worker = w.start_fresh(QueueName::WebhookProcessing);
    wait_for("the success", || async {
        (w.payment(payment_id).await.status() == PaymentStatus::Succeeded).then_some(())
    })
    .await;
    w.drained(QueueName::WebhookProcessing).await;
    worker.stop().await;
    let payment_stream = stream_of::<Payment>(payment_id).expect("stream");
    let succeeded: PaymentEvent = w
        .payment_event(payment_id, "PaymentSucceeded")
        .await
        .decode()
        .expect("payment event");
    assert_eq!(succeeded.at(), report.at);
    let before = w.events(&payment_stream).await.len();

    // Handed out again another hour later (its acknowledgement lost) to another fresh process.
    w.advance(Duration::from_secs(3600));
    w.forget_consumers(QueueName::WebhookProcessing).await;
    let worker = w.start_fresh(QueueName::WebhookProcessing);
    w.drained(QueueName::WebhookProcessing).await;
    worker.stop().await;
    assert_eq!(w.events(&payment_stream).await.len(), before);
    assert_eq!(w.commissions(merchant.id).await, 1);
    assert_eq!(w.failed_jobs(QueueName::WebhookProcessing).await, (0, None));
}
