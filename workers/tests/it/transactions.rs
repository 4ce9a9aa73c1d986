//! The transaction processor: one PSP order per payment, reroutes after a gateway failure.

use std::time::Duration;

use lightspeed_adapters::psp::psp_reference;
use lightspeed_adapters::sandbox::{CreateOrder, order_id_for};
use lightspeed_domain::Payment;
use lightspeed_domain::payment::PaymentStatus;
use lightspeed_eventstore::{CommandContext, stream_of};
use lightspeed_services::Ledger;
use lightspeed_workers::QueueName;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{PUBLIC_URL, SandboxOrders, World, wait_for};

async fn order_requests(psp: &MockServer) -> Vec<CreateOrder> {
    psp.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/v1/orders")
        .map(|r| r.body_json::<CreateOrder>().expect("order request"))
        .collect()
}

#[tokio::test]
async fn an_initiated_payment_gets_one_psp_order_even_when_its_job_is_redelivered() {
    let w = World::new().await;
    let psp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/orders"))
        .respond_with(SandboxOrders)
        .mount(&psp)
        .await;
    let merchant = w.merchant(None).await;
    let gateway = w.gateway(merchant.id, 1, &psp.uri()).await;
    let worker = w.start(QueueName::TransactionProcessing);

    let payment_id = w.initiate(merchant.id, "ORD-1", 49_900).await;
    let payment = wait_for("the PSP order", || async {
        let payment = w.payment(payment_id).await;
        payment.psp_order().is_some().then_some(payment)
    })
    .await;
    let reference = psp_reference(payment_id);
    assert_eq!(payment.status(), PaymentStatus::Pending);
    let order = payment.psp_order().expect("order");
    assert_eq!(order.psp_order_id, order_id_for(&reference));
    assert_eq!(order.checkout["provider"], "sandbox");
    let sent = order_requests(&psp).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].reference, reference);
    assert_eq!(sent[0].amount.0, 49_900);
    assert_eq!(
        sent[0].callback_url,
        format!("{PUBLIC_URL}/webhook/{}/{gateway}", merchant.client_key)
    );
    assert_eq!(
        sent[0].return_url,
        format!("{PUBLIC_URL}/checkout/{payment_id}/return")
    );

    // Every message of the queue is handed out again to a fresh consumer: the job finds the
    // order already recorded and asks the PSP nothing.
    worker.stop().await;
    w.forget_consumers(QueueName::TransactionProcessing).await;
    let worker = w.start(QueueName::TransactionProcessing);
    w.drained(QueueName::TransactionProcessing).await;
    worker.stop().await;
    assert_eq!(order_requests(&psp).await.len(), 1);
    let created = w
        .events(
            &lightspeed_eventstore::stream_of::<lightspeed_domain::Payment>(payment_id)
                .expect("stream"),
        )
        .await
        .iter()
        .filter(|e| e.event_type == "PspOrderCreated")
        .count();
    assert_eq!(created, 1);
}

#[tokio::test]
async fn a_psp_answering_503_rests_its_gateway_and_the_payment_moves_to_the_next() {
    let w = World::new().await;
    let (psp_a, psp_b) = (MockServer::start().await, MockServer::start().await);
    let merchant = w.merchant(None).await;
    let gateway_a = w.gateway(merchant.id, 1, &psp_a.uri()).await;
    let gateway_b = w.gateway(merchant.id, 2, &psp_b.uri()).await;
    let payment_id = w.initiate(merchant.id, "ORD-2", 25_000).await;

    // Whichever gateway routing chose first is the one that is down.
    let first = w.payment(payment_id).await.gateway_id();
    let (second, down, up) = if first == gateway_a {
        (gateway_b, &psp_a, &psp_b)
    } else {
        (gateway_a, &psp_b, &psp_a)
    };
    Mock::given(method("POST"))
        .and(path("/v1/orders"))
        .respond_with(ResponseTemplate::new(503))
        .mount(down)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/orders"))
        .respond_with(SandboxOrders)
        .mount(up)
        .await;
    let failed_at = w.now();
    let worker = w.start(QueueName::TransactionProcessing);

    let rerouted = wait_for("the reroute", || async {
        let payment = w.payment(payment_id).await;
        (payment.attempts() == 2).then_some(payment)
    })
    .await;
    assert_eq!(rerouted.tried_gateways(), [first, second]);
    assert_eq!(rerouted.status(), PaymentStatus::Created);
    let rested = w.gateway_state(first).await;
    let rest = rested.temporary_failure().expect("temporary failure");
    assert_eq!(rest.until, failed_at + chrono::Duration::minutes(5));
    assert!(rested.is_temporarily_failed(w.now()));

    // The attempt on the next gateway waits per the PSP retry schedule (1 s after a first
    // failure) on the ledger's clock.
    w.advance(Duration::from_secs(2));
    let payment = wait_for("the order on the next gateway", || async {
        let payment = w.payment(payment_id).await;
        payment.psp_order().is_some().then_some(payment)
    })
    .await;
    worker.stop().await;
    assert_eq!(payment.gateway_id(), second);
    assert_eq!(payment.status(), PaymentStatus::Pending);
    assert_eq!(order_requests(down).await.len(), 1);
    assert_eq!(order_requests(up).await.len(), 1);

    // The rest ends after the merchant's period (5 minutes by default).
    w.advance(Duration::from_secs(5 * 60));
    assert!(!w.gateway_state(first).await.is_temporarily_failed(w.now()));
}

#[tokio::test]
async fn an_order_recorded_by_a_delivery_that_raced_the_first_is_answered_with_the_first_record() {
    let w = World::new().await;
    let merchant = w.merchant(None).await;
    let gateway = w.gateway(merchant.id, 1, "http://127.0.0.1:9").await;
    let payment_id = w.initiate(merchant.id, "ORD-R", 49_900).await;
    let order_id = order_id_for(&psp_reference(payment_id));
    let record = CommandContext {
        command_id: Some(uuid::Uuid::now_v7()),
        ..CommandContext::default()
    };
    // A second delivery of the job, in another process, read the payment before the first
    // delivery recorded the order; it records the PSP's answer to its own call a minute later.
    let racing = Ledger::new(w.ledger.store().clone());
    racing.payment(payment_id).await.expect("read the payment");
    let first = w
        .ledger
        .record_psp_order(
            payment_id,
            gateway,
            order_id.clone(),
            serde_json::json!({"checkout_url": "https://psp.test/checkout/first"}),
            &record,
        )
        .await
        .expect("the first delivery records the order");
    w.advance(Duration::from_secs(60));
    let answered = racing
        .record_psp_order(
            payment_id,
            gateway,
            order_id,
            serde_json::json!({"checkout_url": "https://psp.test/checkout/second"}),
            &record,
        )
        .await
        .expect("the racing delivery is answered, not refused");

    assert_eq!(answered.psp_order(), first.psp_order());
    let created = w
        .events(&stream_of::<Payment>(payment_id).expect("stream"))
        .await
        .iter()
        .filter(|e| e.event_type == "PspOrderCreated")
        .count();
    assert_eq!(created, 1);
}
