//! A projector following JetStream live rides out NATS restarts: it notices the lost consumer,
//! keeps up from PostgreSQL meanwhile, and its read model still equals a rebuild.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{append, assert_same_rows, deps, first_build, scenario_with, wait_caught_up};
use lightspeed_eventstore::testing::{PrivateNatsServer, TestDatabase, TestNats, settled};
use lightspeed_eventstore::{EventStore, LogPosition, PgEventStore};
use lightspeed_projections::progress::Silent;
use lightspeed_projections::versions;
use lightspeed_projections::wallets::Wallets;
use lightspeed_projections::{
    Projection, RebuildOptions, RunConfig, rebuild_projection, run_projection,
};
use tokio::sync::watch;

/// The target is 5 s from NATS coming back to a projector at the log head; twice that leaves
/// room for a loaded test machine and still fails a projector that waits for the NATS client's
/// own 15 s heartbeat to notice its lost consumer (13 to 23 s measured).
const RESUME_BOUND: Duration = Duration::from_secs(10);

/// How NATS goes down.
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// SIGTERM, as an operator restarts it.
    Stop,
    /// SIGKILL, as a crash.
    Kill,
}

/// Waits until `version` has applied every event of its categories up to `target`; answers how
/// long that took. Panics after [`RESUME_BOUND`].
async fn time_to_reach(
    store: &PgEventStore,
    projection: &dyn Projection,
    version: i32,
    target: LogPosition,
) -> Duration {
    let categories: Option<Vec<String>> = projection
        .categories()
        .map(|c| c.iter().map(|c| (*c).to_owned()).collect());
    let started = Instant::now();
    loop {
        let record = versions::find(store.pool(), projection.name(), version)
            .await
            .expect("find")
            .expect("version exists");
        let next = store
            .read_log(record.checkpoint, categories.as_deref(), 1)
            .await
            .expect("read");
        if next.first().is_none_or(|event| event.log_position > target) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < RESUME_BOUND,
            "{} was still behind {target} {} s after NATS came back (at {})",
            projection.name(),
            RESUME_BOUND.as_secs(),
            record.checkpoint
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until a subscription follows the test's stream live (it holds a consumer on it: only
/// subscriptions create them); answers how long that took. Panics after [`RESUME_BOUND`].
async fn time_to_follow_live(nats: &TestNats) -> Duration {
    let started = Instant::now();
    loop {
        let consumers = match nats.jetstream.get_stream(&nats.config.stream_name).await {
            Ok(mut stream) => stream.info().await.map_or(0, |i| i.state.consumer_count),
            Err(_) => 0,
        };
        if consumers > 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < RESUME_BOUND,
            "the projector did not follow JetStream within {} s",
            RESUME_BOUND.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_projector_resumes_soon_after_nats_restarts_and_equals_a_rebuild() {
    let db = TestDatabase::new().await;
    let mut server = PrivateNatsServer::start().await;
    let nats = TestNats::on(&server.url).await;
    let mut deps = deps(&db);
    deps.live = Some((nats.jetstream.clone(), nats.config.clone()));
    let store = deps.store.clone();
    let version = first_build(&deps, Arc::new(Wallets)).await.version;
    let relay = nats.spawn_relay(&store);
    let projector = tokio::spawn(run_projection(
        Arc::new(Wallets),
        deps.clone(),
        RunConfig::default(),
    ));
    let mut scenario = scenario_with(&store, 300, 17).await;
    wait_caught_up(&store, &Wallets, version).await;

    // Payments keep coming through both outages.
    let (stop_writing, mut writing) = watch::channel(false);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            while !*writing.borrow_and_update() {
                append(&store, scenario.more(10)).await;
                let _ = tokio::time::timeout(Duration::from_millis(20), writing.changed()).await;
            }
            scenario
        })
    };
    // The second outage outlasts JetStream's 5 s publish acknowledgement wait, so the relay
    // restarts too.
    for (outage, down) in [
        (Outage::Stop, Duration::from_secs(2)),
        (Outage::Kill, Duration::from_secs(7)),
    ] {
        time_to_follow_live(&nats).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        match outage {
            Outage::Stop => server.stop().await,
            Outage::Kill => server.kill(),
        }
        tokio::time::sleep(down).await;
        server.restart().await;
        settled(store.pool()).await;
        let target = store.head().await.expect("head");
        let took = time_to_reach(&store, &Wallets, version, target).await;
        println!(
            "{outage:?}, {} s down: the projector reached the log head {} ms after NATS came back",
            down.as_secs(),
            took.as_millis()
        );
        let live = took + time_to_follow_live(&nats).await;
        println!(
            "{outage:?}: the projector followed JetStream again {} ms after NATS came back",
            live.as_millis()
        );
        assert!(
            live < RESUME_BOUND,
            "followed JetStream again only {} ms after NATS came back",
            live.as_millis()
        );
    }
    stop_writing.send(true).expect("writer listens");
    let scenario = writer.await.expect("writer");
    wait_caught_up(&store, &Wallets, version).await;
    projector.abort();
    relay.abort();

    let live = versions::find(store.pool(), "wallets", version)
        .await
        .expect("find")
        .expect("live");
    let rebuilt = rebuild_projection(
        Arc::new(Wallets),
        &deps,
        &RebuildOptions {
            switch: false,
            ..RebuildOptions::default()
        },
        &Silent,
    )
    .await
    .expect("rebuild");
    let rebuilt = versions::find(store.pool(), "wallets", rebuilt.version)
        .await
        .expect("find")
        .expect("rebuilt");
    assert_same_rows(
        store.pool(),
        &Wallets,
        &live.schema_name,
        &rebuilt.schema_name,
    )
    .await;
    for (merchant_id, wallet) in scenario.wallets() {
        let row = lightspeed_projections::wallets::get(store.pool(), merchant_id.0)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(row.balance_due_paise, wallet.balance_due().0);
    }
}
