//! The runtime: a projector process killed while it works (SIGKILL, many times) converges to
//! the same rows; redelivered events change nothing.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{append, assert_same_rows, deps, first_build, scenario_with, store, wait_caught_up};
use lightspeed_eventstore::subscription::Subscription;
use lightspeed_eventstore::testing::{TestDatabase, settled};
use lightspeed_eventstore::{EventStore, LogPosition, PgEventStore};
use lightspeed_projections::audit_log::AuditLog;
use lightspeed_projections::commission::Commission;
use lightspeed_projections::progress::Silent;
use lightspeed_projections::versions;
use lightspeed_projections::wallets::Wallets;
use lightspeed_projections::{
    BatchOutcome, Projection, RebuildOptions, RunConfig, apply_batch, rebuild_projection,
    run_projection,
};

fn spawn_runner(db: &TestDatabase, projection: &str, batch_size: usize) -> Child {
    Command::new(env!("CARGO_BIN_EXE_projector-runner"))
        .arg(projection)
        .arg(batch_size.to_string())
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the projector runner")
}

/// SIGKILL: no destructor, no rollback from the client; PostgreSQL aborts what was open.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Where a projection's active version stands.
async fn checkpoint(store: &PgEventStore, projection: &dyn Projection) -> LogPosition {
    versions::active(store.pool(), projection.name())
        .await
        .expect("active")
        .expect("built")
        .checkpoint
}

/// Whether the log holds an event of `projection`'s categories past `position`.
async fn short_of_head(
    store: &PgEventStore,
    projection: &dyn Projection,
    position: LogPosition,
) -> bool {
    settled(store.pool()).await;
    let categories: Option<Vec<String>> = projection
        .categories()
        .map(|c| c.iter().map(|c| (*c).to_owned()).collect());
    !store
        .read_log(position, categories.as_deref(), 1)
        .await
        .expect("read")
        .is_empty()
}

/// Runs `projection` in a runner process and kills it once it has committed a batch past
/// `from`; answers where its checkpoint stood after the kill.
async fn kill_mid_work(
    db: &TestDatabase,
    projection: &dyn Projection,
    batch_size: usize,
    from: LogPosition,
) -> LogPosition {
    let store = store(db);
    let mut runner = spawn_runner(db, projection.name(), batch_size);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while checkpoint(&store, projection).await == from {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} made no progress",
            projection.name()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    kill(&mut runner);
    checkpoint(&store, projection).await
}

#[tokio::test]
async fn a_projector_killed_mid_batch_many_times_converges_to_the_same_rows() {
    let db = TestDatabase::new().await;
    let deps = deps(&db);
    let store = deps.store.clone();
    // Versions activated on an empty log, so the live batch path (not the rebuild) does the work.
    for projection in [
        Arc::new(Wallets) as Arc<dyn Projection>,
        Arc::new(Commission),
    ] {
        first_build(&deps, projection).await;
    }
    let mut scenario = scenario_with(&store, 3_000, 5).await;
    for round in 0..16u64 {
        if round % 4 == 0 {
            append(&store, scenario.more(200)).await;
        }
        // Each runner is killed once it has committed this round's first batch, and each kill
        // must find it with work left: killed while working, never after it caught up.
        for (projection, batch_size) in [(&Wallets as &dyn Projection, 7), (&Commission, 5)] {
            let before = checkpoint(&store, projection).await;
            let after = kill_mid_work(&db, projection, batch_size, before).await;
            assert!(
                after > before,
                "{}: round {round} made progress",
                projection.name()
            );
            assert!(
                short_of_head(&store, projection, after).await,
                "{}: round {round} was killed after catching up, not mid-work",
                projection.name()
            );
        }
    }
    // Let them finish undisturbed.
    let mut wallets = spawn_runner(&db, "wallets", 7);
    let mut commission = spawn_runner(&db, "commission", 5);
    for projection in [&Wallets as &dyn Projection, &Commission] {
        let active = versions::active(store.pool(), projection.name())
            .await
            .expect("active")
            .expect("built");
        wait_caught_up(&store, projection, active.version).await;
    }
    kill(&mut wallets);
    kill(&mut commission);

    for projection in [
        Arc::new(Wallets) as Arc<dyn Projection>,
        Arc::new(Commission),
    ] {
        let live = versions::active(store.pool(), projection.name())
            .await
            .expect("active")
            .expect("built");
        let rebuilt = rebuild_projection(
            projection.clone(),
            &deps,
            &RebuildOptions {
                switch: false,
                ..RebuildOptions::default()
            },
            &Silent,
        )
        .await
        .expect("rebuild");
        let rebuilt = versions::find(store.pool(), projection.name(), rebuilt.version)
            .await
            .expect("find")
            .expect("rebuilt");
        assert_same_rows(
            store.pool(),
            projection.as_ref(),
            &live.schema_name,
            &rebuilt.schema_name,
        )
        .await;
        // Every event counted once: the checkpoint's tally equals the log's.
        let applied: i64 = sqlx::query_scalar(
            "SELECT events_applied FROM projections.versions WHERE projection = $1 AND version = $2",
        )
        .bind(projection.name())
        .bind(live.version)
        .fetch_one(store.pool())
        .await
        .expect("tally");
        let categories: Vec<String> = projection
            .categories()
            .unwrap_or_default()
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        let logged: i64 =
            sqlx::query_scalar("SELECT count(*) FROM ledger.events WHERE category = ANY($1)")
                .bind(&categories)
                .fetch_one(store.pool())
                .await
                .expect("count");
        assert_eq!(
            applied,
            logged,
            "{}: each event applied once",
            projection.name()
        );
    }
    // The domain's own folding agrees with the wallets that survived the kills.
    for (merchant_id, wallet) in scenario.wallets() {
        let row = lightspeed_projections::wallets::get(store.pool(), merchant_id.0)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(row.balance_due_paise, wallet.balance_due().0);
        assert_eq!(row.commission_accrued_paise, wallet.accrued().0);
    }
}

#[tokio::test]
async fn redelivered_events_change_nothing() {
    let db = TestDatabase::new().await;
    let deps = deps(&db);
    let store = store(&db);
    let report = first_build(&deps, Arc::new(Commission)).await;
    let _scenario = scenario_with(&store, 800, 3).await;
    let wallet = vec!["wallet".to_owned()];
    settled(store.pool()).await;
    let mut batch = Vec::new();
    let mut after = LogPosition::START;
    loop {
        let read = store
            .read_log(after, Some(wallet.as_slice()), 1_000)
            .await
            .expect("read");
        let Some(last) = read.last() else { break };
        after = last.log_position;
        batch.extend(read);
    }
    assert!(!batch.is_empty());
    let (first, second) = batch.split_at(batch.len() / 2);

    // The same batch twice: the second delivery applies nothing.
    assert_eq!(
        apply_batch(store.pool(), &Commission, report.version, first)
            .await
            .expect("apply"),
        BatchOutcome::Applied(first.len())
    );
    let totals = || async {
        let totals: (i64, i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(payments), 0)::bigint, coalesce(sum(commission_paise), 0)::bigint,
                    coalesce(sum(payouts_paise), 0)::bigint
               FROM read.commission_daily",
        )
        .fetch_one(store.pool())
        .await
        .expect("totals");
        totals
    };
    let after_first = totals().await;
    assert_eq!(
        apply_batch(store.pool(), &Commission, report.version, first)
            .await
            .expect("apply again"),
        BatchOutcome::Applied(0)
    );
    assert_eq!(totals().await, after_first);

    // An overlapping batch applies only what is new.
    let overlap_start = first.len().saturating_sub(10);
    assert_eq!(
        apply_batch(
            store.pool(),
            &Commission,
            report.version,
            &batch[overlap_start..]
        )
        .await
        .expect("overlap"),
        BatchOutcome::Applied(second.len())
    );
    let complete = totals().await;

    // A subscription restarted from an older position (what a JetStream consumer replaying
    // from an old sequence delivers) changes nothing either.
    let mut replay = Subscription::new(store.clone(), None, Some(wallet), LogPosition::START);
    let mut replayed = 0;
    while replayed < batch.len() {
        let events = replay.next_batch(100).await.expect("replay");
        replayed += events.len();
        assert_eq!(
            apply_batch(store.pool(), &Commission, report.version, &events)
                .await
                .expect("apply replay"),
            BatchOutcome::Applied(0)
        );
    }
    assert_eq!(totals().await, complete);

    // And it equals a rebuild from scratch.
    let rebuilt = rebuild_projection(
        Arc::new(Commission),
        &deps,
        &RebuildOptions {
            switch: false,
            ..RebuildOptions::default()
        },
        &Silent,
    )
    .await
    .expect("rebuild");
    let live = versions::find(store.pool(), "commission", report.version)
        .await
        .expect("find")
        .expect("live");
    let rebuilt = versions::find(store.pool(), "commission", rebuilt.version)
        .await
        .expect("find")
        .expect("rebuilt");
    assert_same_rows(
        store.pool(),
        &Commission,
        &live.schema_name,
        &rebuilt.schema_name,
    )
    .await;
}

/// Lingering lets events gather only while a projector keeps up: one that is behind takes full
/// batches back to back, so a long linger does not slow its catching up.
#[tokio::test]
async fn a_projector_behind_catches_up_without_lingering() {
    let db = TestDatabase::new().await;
    let deps = deps(&db);
    let store = deps.store.clone();
    let version = first_build(&deps, Arc::new(AuditLog)).await.version;
    scenario_with(&store, 1_000, 41).await;
    // Every event below the gap-safe mark before it starts: a transaction of another test left
    // open meanwhile would otherwise cut a batch short, and a short batch lingers by design.
    settled(store.pool()).await;
    let projector = tokio::spawn(run_projection(
        Arc::new(AuditLog),
        deps.clone(),
        RunConfig {
            batch_size: 50,
            linger: Duration::from_secs(3_600),
            ..RunConfig::default()
        },
    ));
    wait_caught_up(&store, &AuditLog, version).await;
    projector.abort();
}
