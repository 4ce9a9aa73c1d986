//! A worker process killed in the middle of a job, as an operator sees it: the job is retried by
//! another worker process within seconds (its acknowledgement window is short, and only a job
//! that signals progress keeps it), and a long job that does signal progress is never handed to
//! a second worker.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lightspeed_api::testing::{MerchantSettings, TestMerchant};
use lightspeed_domain::webhook_delivery::WebhookDeliveryStatus;
use lightspeed_domain::{Payment, PaymentId, WebhookDelivery};
use lightspeed_eventstore::{CommandHandler, EventStore, PgEventStore, stream_of};
use lightspeed_workers::queue::ACK_WAIT;

use support::processes::{HoldingEndpoint, kill};
use support::{World, bare_world, wait_for};

const QUEUE: &str = "merchant-webhooks";

/// The longest a retry may take after its worker was killed. The design's answer is the ack
/// window ([`ACK_WAIT`], 6 s) after the job's last progress signal; the rest is margin for a
/// loaded two-core machine starting the second process (database pool, NATS, consumers). It
/// stays a quarter of the 120 s window jobs used to wait out, so a window that grows back fails.
const RETRY_BOUND: Duration = Duration::from_secs(30);

/// The relay in the test process, a merchant whose webhooks go to an endpoint holding its
/// first requests for `holds`, and its sandbox gateway.
async fn merchant_holding(holds: Vec<Duration>) -> (World, TestMerchant, Arc<HoldingEndpoint>) {
    let mut world = bare_world().await;
    world.spawn_relay();
    let endpoint = HoldingEndpoint::start(holds).await;
    let merchant = world
        .app
        .merchant_with(MerchantSettings {
            webhook_url: Some(endpoint.url.clone()),
            ..MerchantSettings::default()
        })
        .await;
    world.app.sandbox_gateway(&merchant, 1, None).await;
    (world, merchant, endpoint)
}

/// The payment's `payment.created` webhook delivery, once it has been delivered.
async fn delivered(world: &World, id: &str) -> WebhookDelivery {
    let payment_id: PaymentId = id.parse().expect("payment id");
    let store = world.app.ledger.store();
    let payment = stream_of::<Payment>(payment_id).expect("stream");
    let initiated = store
        .read_stream(&payment, 0, 1)
        .await
        .expect("read the payment")
        .remove(0);
    let delivery = stream_of::<WebhookDelivery>(lightspeed_workers::delivery_id_for(&initiated))
        .expect("stream");
    let deliveries = CommandHandler::<WebhookDelivery, PgEventStore>::new(store.clone());
    wait_for("the webhook delivered", || async {
        deliveries
            .load(&delivery)
            .await
            .ok()?
            .state
            .filter(|d| d.status() == WebhookDeliveryStatus::Delivered)
    })
    .await
}

#[tokio::test]
async fn a_job_in_flight_when_its_worker_is_killed_is_retried_by_another_worker_within_seconds() {
    // The merchant's endpoint holds the first webhook far longer than the test lasts.
    let (world, merchant, endpoint) = merchant_holding(vec![Duration::from_secs(600)]).await;
    let mut first = world.worker(QUEUE);
    let id = world.initiate(&merchant, "ORD-CRASH").await;

    // The first worker is POSTing the payment.created webhook when it dies.
    endpoint.nth_request(1).await;
    let killed_at = kill(&mut first).await;
    let _second = world.worker(QUEUE);

    let retried_at = endpoint.nth_request(2).await;
    let retry_took = retried_at - killed_at;
    println!(
        "the job was retried {retry_took:?} after its worker was killed (ack window {ACK_WAIT:?})"
    );
    assert!(
        retry_took < RETRY_BOUND,
        "the job was retried only {retry_took:?} after the kill"
    );
    let delivered = delivered(&world, &id).await;
    assert_eq!(
        delivered.attempts(),
        1,
        "the killed attempt was never recorded"
    );
    assert_eq!(endpoint.arrivals().len(), 2);
}

#[tokio::test]
async fn a_job_longer_than_the_ack_window_is_worked_on_by_one_worker_only() {
    // The endpoint takes two ack windows and more to answer the first webhook.
    let slow = ACK_WAIT * 2 + Duration::from_secs(2);
    let (world, merchant, endpoint) = merchant_holding(vec![slow]).await;
    let _workers = [world.worker(QUEUE), world.worker(QUEUE)];
    let id = world.initiate(&merchant, "ORD-SLOW").await;

    let delivered = delivered(&world, &id).await;
    assert_eq!(delivered.attempts(), 1);
    assert_eq!(
        endpoint.arrivals().len(),
        1,
        "a job still being worked on was handed to the other worker"
    );
}
