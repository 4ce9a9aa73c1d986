//! A running job keeps its message: it signals progress, so a job longer than the ack window is
//! never handed to a second replica; and consumers an earlier release created are brought to the
//! current ack window and delivery bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::PublishMessage;
use lightspeed_workers::queue::{
    self, ACK_WAIT, Job, JobHandler, JobOutcome, MAX_DELIVER, NeverPaused,
};
use lightspeed_workers::{JobStreamConfig, QueueName};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::{World, wait_for};

const QUEUE: QueueName = QueueName::SettlementProcessing;

/// Works on every job for `work`, counting how often it was handed one.
struct Slow {
    work: Duration,
    handed: AtomicU64,
}

impl JobHandler for Slow {
    async fn handle(&self, _job: Job) -> JobOutcome {
        self.handed.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.work).await;
        JobOutcome::Done
    }
}

/// A replica of the queue, sharing its durable consumers with every other replica.
fn replica(world: &World, handler: Arc<Slow>, stopped: watch::Receiver<bool>) -> JoinHandle<()> {
    let spec = QUEUE.spec(&world.nats.config, 2);
    let jetstream = world.nats.jetstream.clone();
    tokio::spawn(async move {
        queue::run(&jetstream, &spec, handler, Arc::new(NeverPaused), stopped)
            .await
            .expect("queue ran");
    })
}

async fn publish(world: &World, payload: &str) {
    let jobs = JobStreamConfig::for_log(&world.nats.config);
    jobs.ensure_stream(&world.nats.jetstream)
        .await
        .expect("jobs stream");
    world
        .nats
        .jetstream
        .send_publish(
            jobs.status_check_subject(),
            PublishMessage::build().payload(payload.to_owned().into()),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
}

/// Waits until the queue's consumer holds nothing waiting or unacknowledged.
async fn settled(world: &World) {
    let spec = QUEUE.spec(&world.nats.config, 1);
    wait_for("the job acknowledged", || async {
        let stream = world.nats.jetstream.get_stream(&spec.stream).await.ok()?;
        let info = stream.consumer_info(&spec.durable_names()[0]).await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_job_longer_than_the_ack_window_is_handed_to_one_replica_only() {
    let world = World::new().await;
    let slow = Arc::new(Slow {
        work: ACK_WAIT * 2 + Duration::from_secs(1),
        handed: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let replicas = [
        replica(&world, Arc::clone(&slow), stopped.clone()),
        replica(&world, Arc::clone(&slow), stopped),
    ];
    publish(&world, "a long PSP call").await;

    settled(&world).await;
    assert_eq!(
        slow.handed.load(Ordering::SeqCst),
        1,
        "a job still running was handed to another replica"
    );
    let _ = stop.send(true);
    for replica in replicas {
        replica.await.expect("replica");
    }
}

#[tokio::test]
async fn consumers_of_an_earlier_release_get_the_current_ack_window() {
    let world = World::new().await;
    let spec = QUEUE.spec(&world.nats.config, 1);
    let stream = JobStreamConfig::for_log(&world.nats.config)
        .ensure_stream(&world.nats.jetstream)
        .await
        .expect("jobs stream");
    let durable = spec.durable_names().remove(0);
    stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: spec.filters[0].clone(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(120),
            max_deliver: 1_000,
            max_ack_pending: queue::MAX_ACK_PENDING,
            ..Default::default()
        })
        .await
        .expect("a consumer as an earlier release made it");

    let slow = Arc::new(Slow {
        work: Duration::ZERO,
        handed: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let running = replica(&world, Arc::clone(&slow), stopped);
    publish(&world, "after the upgrade").await;
    settled(&world).await;

    let config = stream
        .consumer_info(&durable)
        .await
        .expect("consumer info")
        .config
        .clone();
    assert_eq!(
        (config.ack_wait, config.max_deliver),
        (ACK_WAIT, MAX_DELIVER)
    );
    assert_eq!(slow.handed.load(Ordering::SeqCst), 1);
    let _ = stop.send(true);
    running.await.expect("replica");
}
