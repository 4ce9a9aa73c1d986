//! The status checker: a payment whose webhook never came (or did not verify) is settled from
//! the PSP's status API, exactly once.

use lightspeed_adapters::psp::psp_reference;
use lightspeed_adapters::sandbox::{OrderStatus, order_id_for};
use lightspeed_domain::payment::PaymentStatus;
use lightspeed_domain::psp_outcome::{OutcomeSource, PspOutcome, PspOutcomeEvent};
use lightspeed_eventstore::Metadata;
use lightspeed_workers::jobs::Queued;
use lightspeed_workers::{QueueName, StatusCheck, StatusChecked, publish_status_check};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{World, order_view, wait_for};

#[tokio::test]
async fn a_status_check_settles_a_payment_whose_webhook_never_came_with_one_commission() {
    let w = World::new().await;
    let psp = MockServer::start().await;
    let merchant = w.merchant(None).await;
    let gateway = w.gateway(merchant.id, 1, &psp.uri()).await;
    let payment_id = w.initiate(merchant.id, "ORD-9", 49_900).await;
    let payment = w.record_order(payment_id).await;
    let reference = psp_reference(payment_id);
    Mock::given(method("GET"))
        .and(path(format!("/v1/orders/{}", order_id_for(&reference))))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_view(
            &reference,
            payment.amount(),
            OrderStatus::Paid,
        )))
        .mount(&psp)
        .await;
    let checker = w.start(QueueName::SettlementProcessing);
    let settler = w.start(QueueName::WebhookProcessing);

    // The webhook intake got a webhook whose signature did not verify: it asks for a check.
    let check = StatusCheck {
        gateway_id: gateway,
        payment_id,
        psp_order_id: None,
        reason: "webhook signature did not verify".into(),
    };
    let queued = publish_status_check(&w.nats.jetstream, &w.nats.config, &check)
        .await
        .expect("publish");
    assert_eq!(queued, Queued::New);
    // The PSP retried its webhook at once: the same check is not queued twice.
    let again = publish_status_check(&w.nats.jetstream, &w.nats.config, &check)
        .await
        .expect("publish");
    assert_eq!(again, Queued::Duplicate);

    let paid = wait_for("the success", || async {
        let payment = w.payment(payment_id).await;
        (payment.status() == PaymentStatus::Succeeded).then_some(payment)
    })
    .await;
    w.drained(QueueName::SettlementProcessing).await;
    w.drained(QueueName::WebhookProcessing).await;
    checker.stop().await;
    settler.stop().await;
    assert_eq!(
        paid.success().map(|s| s.psp_payment_id.as_str()),
        Some("sbp_1")
    );
    assert_eq!(w.commissions(merchant.id).await, 1);

    // What reconciliation will do: a payment already settled is not asked about again.
    let checked = w
        .deps
        .status_checker()
        .check_payment_status(payment_id, None, Metadata::default())
        .await
        .expect("check");
    assert_eq!(checked, StatusChecked::AlreadySucceeded);

    let PspOutcomeEvent::PspOutcomeReported {
        report: recorded, ..
    } = w
        .outcome_event(gateway, "status:succeeded:sbp_1")
        .await
        .decode()
        .expect("outcome");
    assert_eq!(recorded.source, OutcomeSource::StatusCheck);
    assert_eq!(
        recorded.outcome,
        PspOutcome::Succeeded {
            amount: payment.amount()
        }
    );
    assert_eq!(recorded.psp_order_id, Some(order_id_for(&reference)));
}

#[tokio::test]
async fn a_check_of_a_pending_payment_records_nothing() {
    let w = World::new().await;
    let psp = MockServer::start().await;
    let merchant = w.merchant(None).await;
    w.gateway(merchant.id, 1, &psp.uri()).await;
    let payment_id = w.initiate(merchant.id, "ORD-10", 10_000).await;
    let checker = w.deps.status_checker();
    assert_eq!(
        checker
            .check_payment_status(payment_id, None, Metadata::default())
            .await
            .expect("check"),
        StatusChecked::NoPspOrder
    );
    let payment = w.record_order(payment_id).await;
    let reference = psp_reference(payment_id);
    Mock::given(method("GET"))
        .and(path(format!("/v1/orders/{}", order_id_for(&reference))))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_view(
            &reference,
            payment.amount(),
            OrderStatus::Created,
        )))
        .mount(&psp)
        .await;
    assert_eq!(
        checker
            .check_payment_status(payment_id, None, Metadata::default())
            .await
            .expect("check"),
        StatusChecked::Pending
    );
    assert_eq!(w.payment(payment_id).await.status(), PaymentStatus::Pending);
}
