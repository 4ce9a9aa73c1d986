//! Queue control on a real broker: a paused queue fetches nothing and loses nothing, a job given
//! up on waits on the failed-jobs stream until ops retry it, and a drain discards only what
//! waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::jetstream::message::PublishMessage;
use lightspeed_eventstore::CommandContext;
use lightspeed_workers::control::{LogPauseGate, WorkQueues};
use lightspeed_workers::queue::{self, Job, JobHandler, JobOutcome, PauseGate};
use lightspeed_workers::{JobStreamConfig, QueueName};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common::{World, wait_for};

const QUEUE: QueueName = QueueName::SettlementProcessing;

/// Records every job it sees; gives up on a payload the first time it is named in `fail_once`.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, String)>>,
    fail_once: Mutex<Vec<String>>,
}

impl Recorder {
    fn payloads(&self) -> Vec<String> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, p)| p.clone())
            .collect()
    }
}

impl JobHandler for Recorder {
    async fn handle(&self, job: Job) -> JobOutcome {
        let payload = String::from_utf8_lossy(&job.payload).into_owned();
        self.seen
            .lock()
            .expect("lock")
            .push((job.subject.clone(), payload.clone()));
        let mut fail_once = self.fail_once.lock().expect("lock");
        match fail_once.iter().position(|p| *p == payload) {
            Some(at) => {
                fail_once.remove(at);
                JobOutcome::GiveUp("the PSP refused the credentials".into())
            }
            None => JobOutcome::Done,
        }
    }
}

/// Counts the gate's answers that said "paused", so a test knows the fetch loops asked.
struct Counting {
    gate: LogPauseGate,
    paused_answers: AtomicU64,
}

impl PauseGate for Counting {
    async fn is_paused(&self) -> bool {
        let paused = self.gate.is_paused().await;
        if paused {
            self.paused_answers.fetch_add(1, Ordering::SeqCst);
        }
        paused
    }
}

struct Running {
    recorder: Arc<Recorder>,
    gate: Arc<Counting>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.expect("queue task");
    }
}

async fn start(world: &World, recorder: Arc<Recorder>) -> Running {
    JobStreamConfig::for_log(&world.nats.config)
        .ensure_stream(&world.nats.jetstream)
        .await
        .expect("jobs stream");
    let spec = QUEUE.spec(&world.nats.config, 4);
    let gate = Arc::new(Counting {
        gate: LogPauseGate::new(world.ledger.clone(), QUEUE),
        paused_answers: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let jetstream = world.nats.jetstream.clone();
    let (handler, task_gate) = (Arc::clone(&recorder), Arc::clone(&gate));
    let task = tokio::spawn(async move {
        queue::run(&jetstream, &spec, handler, task_gate, stopped)
            .await
            .expect("queue ran");
    });
    Running {
        recorder,
        gate,
        stop,
        task,
    }
}

async fn publish(world: &World, payload: &str) {
    let subject = JobStreamConfig::for_log(&world.nats.config).status_check_subject();
    world
        .nats
        .jetstream
        .send_publish(
            subject,
            PublishMessage::build().payload(payload.to_owned().into()),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
}

fn queues(world: &World) -> WorkQueues {
    WorkQueues::new(world.nats.jetstream.clone(), world.nats.config.clone())
}

#[tokio::test]
async fn a_paused_queue_fetches_nothing_and_loses_nothing() {
    let world = World::new().await;
    world
        .ledger
        .pause_queue(QUEUE.as_str(), &CommandContext::default())
        .await
        .expect("pause");
    let running = start(&world, Arc::default()).await;
    for n in 0..5 {
        publish(&world, &format!("job-{n}")).await;
    }
    // The fetch loops have asked the gate several times since the jobs were stored, and were
    // told to wait every time.
    let asked = running.gate.paused_answers.load(Ordering::SeqCst);
    wait_for("the gate asked again while paused", || async {
        (running.gate.paused_answers.load(Ordering::SeqCst) >= asked + 4).then_some(())
    })
    .await;
    assert!(
        running.recorder.payloads().is_empty(),
        "a paused queue ran a job"
    );
    let depth = queues(&world).depth(QUEUE).await.expect("depth");
    assert_eq!((depth.waiting, depth.active), (5, 0));

    world
        .ledger
        .resume_queue(QUEUE.as_str(), &CommandContext::default())
        .await
        .expect("resume");
    wait_for("every job ran after the resume", || async {
        (running.recorder.payloads().len() == 5).then_some(())
    })
    .await;
    let mut payloads = running.recorder.payloads();
    payloads.sort();
    assert_eq!(payloads, ["job-0", "job-1", "job-2", "job-3", "job-4"]);
    running.stop().await;
}

#[tokio::test]
async fn a_failed_job_waits_for_a_retry_and_comes_back_as_it_was() {
    let world = World::new().await;
    let recorder = Arc::new(Recorder::default());
    recorder
        .fail_once
        .lock()
        .expect("lock")
        .push("refused".into());
    let running = start(&world, Arc::clone(&recorder)).await;
    let queues = queues(&world);
    publish(&world, "refused").await;
    publish(&world, "fine").await;

    let depth = wait_for("the refused job kept as failed", || async {
        let depth = queues.depth(QUEUE).await.ok()?;
        (depth.failed == 1 && depth.waiting == 0 && depth.active == 0).then_some(depth)
    })
    .await;
    assert_eq!(depth.failed, 1);
    assert_eq!(recorder.payloads(), ["refused", "fine"]);

    assert_eq!(queues.retry_failed(QUEUE).await.expect("retry"), 1);
    wait_for("the retried job ran", || async {
        (recorder.payloads().len() == 3).then_some(())
    })
    .await;
    let seen = recorder.seen.lock().expect("lock").clone();
    let subject = JobStreamConfig::for_log(&world.nats.config).status_check_subject();
    assert_eq!(seen[2], (subject, "refused".to_owned()));
    let depth = wait_for("nothing left", || async {
        let depth = queues.depth(QUEUE).await.ok()?;
        (depth.active == 0).then_some(depth)
    })
    .await;
    assert_eq!((depth.waiting, depth.failed), (0, 0));
    assert_eq!(queues.retry_failed(QUEUE).await.expect("retry"), 0);
    running.stop().await;
}

#[tokio::test]
async fn a_drain_discards_the_waiting_jobs_and_nothing_after() {
    let world = World::new().await;
    world
        .ledger
        .pause_queue(QUEUE.as_str(), &CommandContext::default())
        .await
        .expect("pause");
    let running = start(&world, Arc::default()).await;
    let queues = queues(&world);
    for n in 0..7 {
        publish(&world, &format!("stale-{n}")).await;
    }
    wait_for("the jobs waiting", || async {
        (queues.depth(QUEUE).await.ok()?.waiting == 7).then_some(())
    })
    .await;

    assert_eq!(queues.drain(QUEUE).await.expect("drain"), 7);
    let depth = queues.depth(QUEUE).await.expect("depth");
    assert_eq!((depth.waiting, depth.active, depth.failed), (0, 0, 0));

    world
        .ledger
        .resume_queue(QUEUE.as_str(), &CommandContext::default())
        .await
        .expect("resume");
    publish(&world, "fresh").await;
    wait_for("the fresh job ran", || async {
        (!running.recorder.payloads().is_empty()).then_some(())
    })
    .await;
    assert_eq!(running.recorder.payloads(), ["fresh"]);
    running.stop().await;
}
