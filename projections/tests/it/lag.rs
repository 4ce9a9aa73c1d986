//! Lag: what a projection still has to apply, counted among its own categories only.

use crate::common;

use std::sync::Arc;

use common::{append, deps, first_build, scenario_with, store};
use lightspeed_eventstore::testing::{TestDatabase, settled};
use lightspeed_projections::audit_log::AuditLog;
use lightspeed_projections::commission::Commission;
use lightspeed_projections::merchants::Merchants;
use lightspeed_projections::scenario::Operation;
use lightspeed_projections::{Projection, status};

/// Events of `operations` that `projection` reads.
fn events_for(projection: &dyn Projection, operations: &[Operation]) -> i64 {
    let count = operations
        .iter()
        .flat_map(|operation| &operation.0)
        .filter(|append| {
            projection
                .categories()
                .is_none_or(|categories| categories.contains(&append.stream_id.category()))
        })
        .map(|append| append.events.len())
        .sum::<usize>();
    i64::try_from(count).expect("count")
}

#[tokio::test]
async fn lag_counts_the_events_of_its_categories_after_its_checkpoint() {
    let db = TestDatabase::new().await;
    let store = store(&db);
    let deps = deps(&db);
    let mut scenario = scenario_with(&store, 300, 17).await;
    settled(&db.pool).await;
    // Merchants: a rare category, whose checkpoint stays at its last event while the log goes
    // on; commission: wallet events only; the audit log: every event.
    let projections: [Arc<dyn Projection>; 3] = [
        Arc::new(Merchants),
        Arc::new(Commission),
        Arc::new(AuditLog),
    ];
    let mut versions = Vec::new();
    for projection in &projections {
        versions.push(first_build(&deps, Arc::clone(projection)).await.version);
    }

    let more = scenario.more(600);
    append(&store, more.clone()).await;
    settled(&db.pool).await;

    for (projection, version) in projections.iter().zip(versions) {
        status::measure_lag(&db.pool, projection.as_ref(), version)
            .await
            .expect("measure");
        let measured = status::all(&db.pool)
            .await
            .expect("status")
            .into_iter()
            .find(|s| s.projection == projection.name() && s.version == version)
            .expect("version");
        let expected = events_for(projection.as_ref(), &more);
        assert_eq!(measured.lag_events, expected, "{}", projection.name());
        assert_eq!(measured.lag_ms > 0, expected > 0, "{}", projection.name());
    }
}
