//! Two processes of every role (API, workers, projectors, relays) on one PostgreSQL and one
//! NATS, under payment load, each process killed once while its twin carries on: the replicated
//! run of the fault harness (`chaos/`). It checks, from the log, the read models, JetStream and
//! the merchants' endpoint, that no order became two payments, every success carries exactly one
//! commission, every event id reached the merchant as one webhook, `audit verify` and
//! `audit commission` are clean, and every read model equals a rebuild of it.

use std::path::Path;

use lightspeed_chaos::{Plan, run_plan};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_of_every_role_share_the_work_and_lose_or_double_nothing() {
    lightspeed_adapters::http::install_crypto_provider();
    let lightspeed = Path::new(env!("CARGO_BIN_EXE_lightspeed"));
    let passed = run_plan(lightspeed, &Plan::replicated(), false)
        .await
        .expect("the run starts and finishes");
    assert!(passed, "a check failed: the report above names it");
}
