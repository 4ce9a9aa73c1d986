//! Rebuilds: a projection rebuilt from scratch equals the one built live; a layout change is
//! built while the old version keeps answering, then swapped in atomically.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{append, assert_same_rows, deps, scenario_with, store, wait_active, wait_caught_up};
use futures::future::BoxFuture;
use lightspeed_eventstore::RecordedEvent;
use lightspeed_eventstore::testing::{TestDatabase, TestNats};
use lightspeed_projections::compare::differences;
use lightspeed_projections::progress::Silent;
use lightspeed_projections::projection::RowCache;
use lightspeed_projections::versions::{self, VersionState};
use lightspeed_projections::wallets::Wallets;
use lightspeed_projections::{
    Projection, ProjectionError, ProjectorDeps, RebuildOptions, RunConfig, catalog,
    rebuild_projection, run_all, run_projection, status,
};
use sqlx::{AssertSqlSafe, PgConnection};

#[tokio::test]
async fn every_projection_rebuilt_from_scratch_equals_the_one_built_live() {
    let db = TestDatabase::new().await;
    let nats = TestNats::new().await;
    let store = store(&db);
    let relay = nats.spawn_relay(&store);
    let deps = ProjectorDeps {
        store: store.clone(),
        live: Some((nats.jetstream.clone(), nats.config.clone())),
    };
    // History before the projectors start, then more while they follow live: each round is
    // appended once every projector has applied the one before, so it reaches them live.
    let mut scenario = scenario_with(&store, 600, 11).await;
    let projectors = tokio::spawn(run_all(deps.clone()));
    for _ in 0..8 {
        all_caught_up(&store).await;
        append(&store, scenario.more(250)).await;
    }
    all_caught_up(&store).await;
    for projection in catalog::all() {
        let live = versions::active(store.pool(), projection.name())
            .await
            .expect("active")
            .expect("built");
        let report = rebuild_projection(
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
        assert!(
            report.events_applied > 0,
            "{} rebuilt something",
            projection.name()
        );
        let rebuilt = versions::find(store.pool(), projection.name(), report.version)
            .await
            .expect("find")
            .expect("rebuilt version");
        assert_eq!(rebuilt.state, VersionState::Building);
        assert_same_rows(
            store.pool(),
            projection.as_ref(),
            &live.schema_name,
            &rebuilt.schema_name,
        )
        .await;
        let found = differences(store.pool(), projection.as_ref(), &live, &rebuilt)
            .await
            .expect("compare");
        assert_eq!(found, [], "{} differs from its rebuild", projection.name());
        if projection.name() == "wallets" {
            a_row_lost_is_a_difference(store.pool(), projection.as_ref(), &live, &rebuilt).await;
        }
    }
    let statuses = status::all(store.pool()).await.expect("status");
    assert_eq!(
        statuses.iter().filter(|s| s.state == "active").count(),
        catalog::all().len()
    );
    projectors.abort();
    relay.abort();
}

/// Waits until every projection of the catalogue has an active version that applied the log.
async fn all_caught_up(store: &lightspeed_eventstore::PgEventStore) {
    for projection in catalog::all() {
        let active = wait_active(store.pool(), projection.name()).await;
        wait_caught_up(store, projection.as_ref(), active.version).await;
    }
}

/// A row deleted from the rebuilt version shows as one row only the live version holds.
async fn a_row_lost_is_a_difference(
    pool: &sqlx::PgPool,
    projection: &dyn Projection,
    live: &versions::VersionRecord,
    rebuilt: &versions::VersionRecord,
) {
    let table = projection.tables()[0];
    let schema = &rebuilt.schema_name;
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {schema}.{table} WHERE ctid = (SELECT ctid FROM {schema}.{table} LIMIT 1)"
    )))
    .execute(pool)
    .await
    .expect("delete a row");
    let found = differences(pool, projection, live, rebuilt)
        .await
        .expect("compare");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].table, found[0].only_first, found[0].only_second),
        (table, 1, 0)
    );
    assert_eq!(found[0].examples.len(), 1);
}

/// The next version of the wallets layout: a new column derived from old events (the largest payment
/// each merchant ever took).
struct WalletsWithLargestPayment;

impl Projection for WalletsWithLargestPayment {
    fn name(&self) -> &'static str {
        Wallets.name()
    }

    fn layout(&self) -> i32 {
        Wallets.layout() + 1
    }

    fn categories(&self) -> Option<&'static [&'static str]> {
        Wallets.categories()
    }

    fn tables(&self) -> &'static [&'static str] {
        Wallets.tables()
    }

    fn create_tables(&self, schema: &str) -> String {
        format!(
            "{}\nALTER TABLE {schema}.wallet_balances
                  ADD COLUMN largest_payment_paise bigint NOT NULL DEFAULT 0;",
            Wallets.create_tables(schema)
        )
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        schema: &'a str,
        events: &'a [RecordedEvent],
        rows: &'a mut RowCache,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            Wallets
                .apply(&mut *conn, schema, events, &mut *rows)
                .await?;
            // The statements below change the balances, so those kept by key go in first.
            rows.write(&mut *conn, schema).await?;
            for event in events
                .iter()
                .filter(|e| e.event_type == "CommissionAccrued")
            {
                let amount = event.payload.to_value()?["amount"].as_i64().unwrap_or(0);
                let sql = format!(
                    "UPDATE {schema}.wallet_balances
                        SET largest_payment_paise = greatest(largest_payment_paise, $1)
                      WHERE merchant_id = $2::uuid"
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(amount)
                    .bind(event.stream_id.id())
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_layout_change_is_rebuilt_while_the_old_version_answers_then_swapped() {
    let db = TestDatabase::new().await;
    let deps = deps(&db);
    let store = deps.store.clone();
    let mut scenario = scenario_with(&store, 1_500, 23).await;
    let merchants = scenario.wallets().len() as i64;

    // Version 1 built and followed live.
    let v1 = tokio::spawn(run_projection(
        Arc::new(Wallets),
        deps.clone(),
        RunConfig::default(),
    ));
    let active = wait_active(store.pool(), "wallets").await;
    wait_caught_up(&store, &Wallets, active.version).await;

    // Readers keep reading and writers keep writing while version 2 is built.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let pool = store.pool().clone();
        let stop = stop.clone();
        let reads = reads.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (rows, accrued): (i64, i64) = sqlx::query_as(
                    "SELECT count(*), coalesce(sum(commission_accrued_paise), 0)::bigint
                       FROM read.wallet_balances",
                )
                .fetch_one(&pool)
                .await
                .expect("the old version keeps answering");
                assert_eq!(rows, merchants, "never a half-built model");
                assert!(accrued > 0, "never an empty model");
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let writer = {
        let store = store.clone();
        let operations = scenario.more(600);
        tokio::spawn(async move { append(&store, operations).await })
    };
    let report = rebuild_projection(
        Arc::new(WalletsWithLargestPayment),
        &deps,
        &RebuildOptions {
            batch_size: 200,
            ..RebuildOptions::default()
        },
        &Silent,
    )
    .await
    .expect("rebuild v2");
    writer.await.expect("writer");
    assert!(report.switched);
    assert_eq!(report.previous_version, Some(active.version));
    stop.store(true, Ordering::Relaxed);
    reader.await.expect("reader");
    assert!(reads.load(Ordering::Relaxed) > 0);

    // The old projector notices it is out of date and stops.
    let old = tokio::time::timeout(Duration::from_secs(30), v1)
        .await
        .expect("v1 projector stops")
        .expect("joined");
    assert!(
        matches!(old, Err(ProjectionError::Superseded { .. })),
        "{old:?}"
    );

    // The new layout's projector follows the switched version.
    let v2 = tokio::spawn(run_projection(
        Arc::new(WalletsWithLargestPayment),
        deps.clone(),
        RunConfig::default(),
    ));
    append(&store, scenario.more(300)).await;
    wait_caught_up(&store, &WalletsWithLargestPayment, report.version).await;
    let largest: i64 =
        sqlx::query_scalar("SELECT max(largest_payment_paise) FROM read.wallet_balances")
            .fetch_one(store.pool())
            .await
            .expect("new column readable");
    assert!(largest > 0);
    // And it equals the domain's own folding of every wallet stream.
    for (merchant_id, wallet) in scenario.wallets() {
        let row = lightspeed_projections::wallets::get(store.pool(), merchant_id.0)
            .await
            .expect("read")
            .expect("wallet row");
        assert_eq!(row.commission_accrued_paise, wallet.accrued().0);
        assert_eq!(row.paid_out_paise, wallet.paid_out().0);
        assert_eq!(row.reversed_paise, wallet.reversed().0);
        assert_eq!(row.settled_paise, wallet.settled().0);
        assert_eq!(row.balance_due_paise, wallet.balance_due().0);
        assert_eq!(row.pending_payouts_paise, wallet.pending().0);
        assert_eq!(row.payments_succeeded, wallet.accruals() as i64);
    }

    // The old version is kept until told, then dropped.
    let old = versions::find(store.pool(), "wallets", active.version)
        .await
        .expect("find")
        .expect("kept");
    assert_eq!(old.state, VersionState::Retired);
    versions::drop_version(store.pool(), "wallets", active.version)
        .await
        .expect("drop");
    let schema_left: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)",
    )
    .bind(&old.schema_name)
    .fetch_one(store.pool())
    .await
    .expect("schemata");
    assert!(!schema_left);
    assert!(matches!(
        versions::drop_version(store.pool(), "wallets", report.version).await,
        Err(ProjectionError::WrongState { .. })
    ));
    v2.abort();
}
