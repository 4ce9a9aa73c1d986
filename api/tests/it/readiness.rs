//! Readiness names a projector that is running but receives nothing while the log moves on.

use crate::common;

use std::time::{Duration, Instant};

use common::{TestApp, problem};
use lightspeed_eventstore::testing::settled;
use lightspeed_projections::{ProjectorDeps, catalog, run_all, status, versions};
use reqwest::StatusCode;
use serde_json::Value;

/// The projectors' heartbeat as this API is told it; short, so the test waits little.
const HEARTBEAT: Duration = Duration::from_millis(500);

async fn ready(app: &TestApp) -> (StatusCode, Value) {
    problem(
        app.http
            .get(format!("{}/health/ready", app.url))
            .send()
            .await
            .expect("request"),
    )
    .await
}

fn projections_detail(readiness: &Value) -> String {
    readiness["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "projections")
        .and_then(|c| c["detail"].as_str())
        .unwrap_or_else(|| panic!("no projections detail in {readiness}"))
        .to_owned()
}

/// What every running projector records each second: its active version's lag.
async fn measure_every_lag(app: &TestApp) {
    for projection in catalog::all() {
        let active = versions::active(&app.db.pool, projection.name())
            .await
            .expect("active")
            .expect("built");
        status::measure_lag(&app.db.pool, projection.as_ref(), active.version)
            .await
            .expect("measure");
    }
}

#[tokio::test]
async fn a_projector_that_receives_nothing_while_the_log_moves_on_makes_the_api_not_ready() {
    let app = TestApp::builder()
        .config(|config| config.readiness.projector_heartbeat = HEARTBEAT)
        .spawn()
        .await;
    app.project().await;
    measure_every_lag(&app).await;
    let (status, readiness) = ready(&app).await;
    assert_eq!(status, StatusCode::OK, "{readiness}");

    // The log moves on; the projectors keep measuring but receive nothing, as one whose live
    // consumer a NATS restart lost.
    app.merchant().await;
    settled(&app.db.pool).await;
    tokio::time::sleep(HEARTBEAT * 2).await;
    measure_every_lag(&app).await;
    let (status, readiness) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{readiness}");
    let detail = projections_detail(&readiness);
    assert!(
        detail.contains("received nothing for over 500 ms while the log moved on")
            && detail.contains("merchants ("),
        "{detail}"
    );

    // Projectors that receive the log again make the API ready.
    let projectors = tokio::spawn(run_all(ProjectorDeps {
        store: app.ledger.store().clone(),
        live: None,
    }));
    let started = Instant::now();
    loop {
        let (status, readiness) = ready(&app).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still not ready: {readiness}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    projectors.abort();
}
