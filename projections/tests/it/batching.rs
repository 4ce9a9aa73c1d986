//! Batching: a projection built in large batches holds exactly the rows it holds when built one
//! event at a time, on a log where one row changes many times within a batch (a payment
//! initiated, rerouted, succeeded and refunded; a delivery queued and retried; a wallet accruing
//! and paying out) and batches split those histories at every point.

use crate::common;

use common::{assert_same_rows, deps, rows, scenario_with, store};
use lightspeed_eventstore::testing::{TestDatabase, settled};
use lightspeed_projections::progress::Silent;
use lightspeed_projections::rebuild::{KEPT_ROWS, MAX_REBUILD_BATCH};
use lightspeed_projections::versions::{self, VersionRecord};
use lightspeed_projections::{Projection, ProjectorDeps, RebuildOptions, catalog};
use lightspeed_projections::{compare::differences, rebuild_projection};
use std::sync::Arc;

/// Builds a new version of `projection` in batches of `batch_size`, keeping `rows_kept` rows
/// per table between writes, without switching to it.
async fn build_in_batches(
    deps: &ProjectorDeps,
    projection: Arc<dyn Projection>,
    batch_size: usize,
    rows_kept: usize,
) -> VersionRecord {
    let report = rebuild_projection(
        projection.clone(),
        deps,
        &RebuildOptions {
            batch_size,
            restart: true,
            switch: false,
            drop_previous: false,
            rows_kept,
        },
        &Silent,
    )
    .await
    .expect("build");
    assert!(
        report.events_applied > 0,
        "{} applied events",
        projection.name()
    );
    versions::find(deps.pool(), projection.name(), report.version)
        .await
        .expect("find")
        .expect("built")
}

/// Retires a version being built so that the next build starts a version of its own beside it.
async fn set_aside(deps: &ProjectorDeps, version: &VersionRecord) {
    sqlx::query(
        "UPDATE projections.versions SET state = 'retired' WHERE projection = $1 AND version = $2",
    )
    .bind(&version.projection)
    .bind(version.version)
    .execute(deps.pool())
    .await
    .expect("set aside");
}

#[tokio::test]
async fn every_projection_built_in_large_batches_equals_it_built_event_by_event() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let deps = deps(&db);
    scenario_with(&store, 1_500, 23).await;
    settled(store.pool()).await;
    for projection in catalog::all() {
        let one_by_one = build_in_batches(&deps, projection.clone(), 1, 0).await;
        assert_filled(&deps, projection.as_ref(), &one_by_one).await;
        set_aside(&deps, &one_by_one).await;
        // Five rows kept: most rows are forgotten after a write and loaded again; the default:
        // every row kept and written once, in one transaction.
        for (batch_size, rows_kept) in [(7, 5), (MAX_REBUILD_BATCH, KEPT_ROWS)] {
            let batched = build_in_batches(&deps, projection.clone(), batch_size, rows_kept).await;
            assert_same_rows(
                deps.pool(),
                projection.as_ref(),
                &one_by_one.schema_name,
                &batched.schema_name,
            )
            .await;
            let found = differences(deps.pool(), projection.as_ref(), &one_by_one, &batched)
                .await
                .expect("compare");
            assert_eq!(
                found,
                [],
                "{} in batches of {batch_size}",
                projection.name()
            );
            set_aside(&deps, &batched).await;
        }
    }
}

/// Asserts every table of a version holds rows, so the comparison compared something.
async fn assert_filled(deps: &ProjectorDeps, projection: &dyn Projection, version: &VersionRecord) {
    for table in projection.tables() {
        let held = rows(
            deps.pool(),
            &version.schema_name,
            table,
            common::order_of(table),
        )
        .await;
        assert!(!held.is_empty(), "{table} holds rows");
    }
}

#[tokio::test]
async fn a_switched_rebuild_has_every_index_its_layout_declares_once() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let deps = deps(&db);
    scenario_with(&store, 300, 5).await;
    settled(store.pool()).await;
    let projection: Arc<dyn Projection> = Arc::new(lightspeed_projections::wallets::Wallets);
    // Built without switching, then resumed and switched: the indexes are made exactly once.
    let building = build_in_batches(&deps, projection.clone(), 50, KEPT_ROWS).await;
    assert_eq!(plain_indexes(&deps, &building.schema_name).await, 0);
    let report = rebuild_projection(projection, &deps, &RebuildOptions::default(), &Silent)
        .await
        .expect("switch");
    assert!(report.switched);
    assert_eq!(report.version, building.version, "the build was resumed");
    let declared = lightspeed_projections::wallets::Wallets
        .create_tables("s")
        .matches("CREATE INDEX")
        .count() as i64;
    assert_eq!(plain_indexes(&deps, &building.schema_name).await, declared);
}

/// How many non-unique indexes the tables of `schema` have.
async fn plain_indexes(deps: &ProjectorDeps, schema: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_index x
           JOIN pg_class c ON c.oid = x.indexrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND NOT x.indisunique",
    )
    .bind(schema)
    .fetch_one(deps.pool())
    .await
    .expect("indexes")
}
