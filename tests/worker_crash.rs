//! A worker process killed in the middle of a job, as an operator sees it: the job is retried by
//! another worker process within seconds (its acknowledgement window is short, and only a job
//! that signals progress keeps it), and a long job that does signal progress is never handed to
//! a second worker.

mod processes;

use std::time::Duration;

use lightspeed_workers::queue::ACK_WAIT;

use processes::{World, kill};

const QUEUE: &str = "merchant-webhooks";

/// The longest a retry may take after its worker was killed. The design's answer is the ack
/// window ([`ACK_WAIT`], 6 s) after the job's last progress signal; the rest is margin for a
/// loaded two-core machine starting the second process (database pool, NATS, consumers). It
/// stays a quarter of the 120 s window jobs used to wait out, so a window that grows back fails.
const RETRY_BOUND: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_job_in_flight_when_its_worker_is_killed_is_retried_by_another_worker_within_seconds() {
    // The merchant's endpoint holds the first webhook far longer than the test lasts.
    let world = World::new(vec![Duration::from_secs(600)]).await;
    let mut first = world.worker(QUEUE);
    let payment_id = world.initiate("ORD-CRASH").await;

    // The first worker is POSTing the payment.created webhook when it dies.
    world.endpoint.nth_request(1).await;
    let killed_at = kill(&mut first).await;
    let _second = world.worker(QUEUE);

    let retried_at = world.endpoint.nth_request(2).await;
    let retry_took = retried_at - killed_at;
    println!(
        "the job was retried {retry_took:?} after its worker was killed (ack window {ACK_WAIT:?})"
    );
    assert!(
        retry_took < RETRY_BOUND,
        "the job was retried only {retry_took:?} after the kill"
    );
    let delivered = world.delivered(payment_id).await;
    assert_eq!(
        delivered.attempts(),
        1,
        "the killed attempt was never recorded"
    );
    assert_eq!(world.endpoint.arrivals().len(), 2);
}

#[tokio::test]
async fn a_job_longer_than_the_ack_window_is_worked_on_by_one_worker_only() {
    // The endpoint takes two ack windows and more to answer the first webhook.
    let slow = ACK_WAIT * 2 + Duration::from_secs(2);
    let world = World::new(vec![slow]).await;
    let _workers = [world.worker(QUEUE), world.worker(QUEUE)];
    let payment_id = world.initiate("ORD-SLOW").await;

    let delivered = world.delivered(payment_id).await;
    assert_eq!(delivered.attempts(), 1);
    assert_eq!(
        world.endpoint.arrivals().len(),
        1,
        "a job still being worked on was handed to the other worker"
    );
}
