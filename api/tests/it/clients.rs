//! The client libraries in `clients/` against the real API: the test starts the API on
//! loopback (real PostgreSQL and JetStream, the system clock, as the clients sign with real
//! time), onboards a merchant with one projected payment, and runs each library's integration
//! script as a child process with the base URL and the merchant's credentials. A missing
//! `python3` or `node` fails the test: nothing is skipped. Each library's unit tests run here too,
//! so the workspace's test command covers them.

use std::path::{Path, PathBuf};

use lightspeed_domain::clock::SystemClock;
use reqwest::StatusCode;
use tokio::process::Command;

use crate::common::{TestApp, TestMerchant, payment};

/// The payment the scripts find in the merchant's transactions.
const SEEDED_ORDER: &str = "ORD-SEEDED-1";

fn clients_dir() -> PathBuf {
    let api = Path::new(env!("CARGO_MANIFEST_DIR"));
    api.parent()
        .expect("the workspace holds the api crate")
        .join("clients")
}

/// Runs `command`; fails the test with its output unless it exits with status 0.
async fn run(mut command: Command, what: &str) {
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let output = command.output().await.unwrap_or_else(|error| {
        panic!("cannot run `{program}` ({error}): install it (apt-get install python3 nodejs)")
    });
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// Runs `program script` with the API's address and the merchant's credentials.
async fn run_script(
    app: &TestApp<SystemClock>,
    merchant: &TestMerchant,
    program: &str,
    script: &Path,
) {
    let salt = merchant.client_salt.expose_str().expect("salt is text");
    let mut command = Command::new(program);
    command
        .arg(script)
        .env("LIGHTSPEED_URL", &app.url)
        .env("LIGHTSPEED_CLIENT_KEY", &merchant.client_key)
        .env("LIGHTSPEED_CLIENT_SALT", salt)
        .env("LIGHTSPEED_SEEDED_ORDER", SEEDED_ORDER);
    run(command, &format!("{program} {}", script.display())).await;
}

async fn merchant_with_a_projected_payment(app: &TestApp<SystemClock>) -> TestMerchant {
    let merchant = app.merchant().await;
    app.sandbox_gateway(&merchant, 1, None).await;
    let response = app
        .initiate(&merchant, &payment(SEEDED_ORDER, 25_000))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    app.project().await;
    merchant
}

#[tokio::test]
async fn the_python_client_works_against_the_real_api() {
    let app = TestApp::builder().clock(SystemClock).spawn().await;
    let merchant = merchant_with_a_projected_payment(&app).await;
    let script = clients_dir().join("python/tests/integration.py");
    run_script(&app, &merchant, "python3", &script).await;
}

#[tokio::test]
async fn the_typescript_client_works_against_the_real_api() {
    let app = TestApp::builder().clock(SystemClock).spawn().await;
    let merchant = merchant_with_a_projected_payment(&app).await;
    let script = clients_dir().join("typescript/test/integration.mjs");
    run_script(&app, &merchant, "node", &script).await;
}

#[tokio::test]
async fn the_python_clients_unit_tests_pass() {
    let mut command = Command::new("python3");
    command
        .args(["-m", "unittest", "discover", "-s", "tests", "-t", "."])
        .current_dir(clients_dir().join("python"));
    run(command, "python3 -m unittest (clients/python)").await;
}

#[tokio::test]
async fn the_typescript_clients_unit_tests_pass() {
    let mut command = Command::new("node");
    command
        .args(["--test", "test/client.test.mjs", "test/routes.test.mjs"])
        .current_dir(clients_dir().join("typescript"));
    run(command, "node --test (clients/typescript)").await;
}
