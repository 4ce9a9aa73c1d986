//! Shared helpers of the projection tests: isolated databases, scenarios, snapshots, waiting.

#![allow(dead_code, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use lightspeed_domain::SystemClock;
use lightspeed_eventstore::testing::{TestDatabase, settled};
use lightspeed_eventstore::{EventStore, LogPosition, PgEventStore};
use lightspeed_projections::progress::Silent;
use lightspeed_projections::scenario::{self, Operation, Scenario, ScenarioConfig};
use lightspeed_projections::versions::{self, VersionRecord};
use lightspeed_projections::{
    Projection, ProjectorDeps, RebuildOptions, RebuildReport, rebuild_projection,
};
use sqlx::{AssertSqlSafe, PgPool};

pub fn store(db: &TestDatabase) -> PgEventStore {
    PgEventStore::new(db.pool.clone(), Arc::new(SystemClock))
}

pub fn deps(db: &TestDatabase) -> ProjectorDeps {
    ProjectorDeps {
        store: store(db),
        live: None,
    }
}

/// Builds `projection`'s first version from the log and activates it.
pub async fn first_build(deps: &ProjectorDeps, projection: Arc<dyn Projection>) -> RebuildReport {
    let report = rebuild_projection(projection, deps, &RebuildOptions::default(), &Silent)
        .await
        .expect("first build");
    assert!(report.switched, "a first build is activated");
    report
}

/// A scenario with its first `events` events appended.
pub async fn scenario_with(store: &PgEventStore, events: usize, seed: u64) -> Scenario {
    let (scenario, operations) = scenario::generate(
        ScenarioConfig {
            seed,
            ..ScenarioConfig::default()
        },
        events,
    );
    scenario::append_each(store, operations)
        .await
        .expect("append scenario");
    scenario
}

pub async fn append(store: &PgEventStore, operations: Vec<Operation>) {
    scenario::append_each(store, operations)
        .await
        .expect("append");
}

/// Every row of `schema.table` as JSON, in `order` order.
pub async fn rows(pool: &PgPool, schema: &str, table: &str, order: &str) -> Vec<serde_json::Value> {
    let sql = format!(
        "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY {order}), '[]'::jsonb) FROM {schema}.{table} t"
    );
    let rows: serde_json::Value = sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .expect("snapshot");
    match rows {
        serde_json::Value::Array(rows) => rows,
        other => panic!("not an array: {other}"),
    }
}

/// The order that identifies every row of each table uniquely.
pub fn order_of(table: &str) -> &'static str {
    match table {
        "wallet_balances" | "merchants" => "merchant_id",
        "wallet_entries" | "webhook_delivery_attempts" | "audit_log" => "log_position",
        "commission_daily" => "day, merchant_id",
        "gateways" => "gateway_id",
        "transactions" | "refund_payments" => "payment_id",
        "refunds" => "payment_id, refund_key",
        "whatsapp_log" => "notification_id",
        "whatsapp_usage" => "merchant_id, day, template",
        "whatsapp_standing" => "day, notification_type",
        "webhook_deliveries" => "delivery_id",
        other => panic!("no order for {other}"),
    }
}

/// Asserts two versions of a projection hold the same rows.
pub async fn assert_same_rows(pool: &PgPool, projection: &dyn Projection, left: &str, right: &str) {
    for table in projection.tables() {
        let order = order_of(table);
        let a = rows(pool, left, table, order).await;
        let b = rows(pool, right, table, order).await;
        assert_eq!(
            a.len(),
            b.len(),
            "{table}: row counts of {left} and {right}"
        );
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{table}: {left} and {right} differ");
        }
    }
}

/// The last position of the log a gap-safe reader sees now.
pub async fn head(store: &PgEventStore) -> LogPosition {
    store.head().await.expect("head")
}

/// Waits (up to 60 s) until a version's checkpoint reaches the head of the relevant log.
pub async fn wait_caught_up(store: &PgEventStore, projection: &dyn Projection, version: i32) {
    let categories: Option<Vec<String>> = projection
        .categories()
        .map(|c| c.iter().map(|c| (*c).to_owned()).collect());
    settled(store.pool()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let record = versions::find(store.pool(), projection.name(), version)
            .await
            .expect("find")
            .expect("version exists");
        let rest = store
            .read_log(record.checkpoint, categories.as_deref(), 1)
            .await
            .expect("read");
        if rest.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} v{version} did not catch up (at {})",
            projection.name(),
            record.checkpoint
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 60 s) until `projection` has an active version; answers it.
pub async fn wait_active(pool: &PgPool, name: &str) -> VersionRecord {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(active) = versions::active(pool, name).await.expect("active") {
            return active;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never became active"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
