//! The `lightspeed` binary's roles as an operator runs them: child processes on the world's
//! database and JetStream stream, killed the way a crash kills them (SIGKILL); and a merchant
//! endpoint that holds each request for as long as the test says.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use lightspeed_eventstore::testing::nats_url;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::{ENCRYPTION_KEY, World, wait_for};

impl World {
    /// Starts `lightspeed <args>` on this world's database and stream; its database sessions
    /// carry `name` as their `application_name`, so the test can tell what each one holds.
    pub fn process(&self, name: &str, args: &[&str]) -> Child {
        let db = &self.app.db.url;
        let separator = if db.contains('?') { '&' } else { '?' };
        Command::new(env!("CARGO_BIN_EXE_lightspeed"))
            .args(args)
            .env(
                "DATABASE_URL",
                format!("{db}{separator}application_name={name}"),
            )
            .env("NATS_URL", nats_url())
            .env("NATS_STREAM", &self.app.nats.config.stream_name)
            .env("NATS_SUBJECT_PREFIX", &self.app.nats.config.subject_prefix)
            .env("ENCRYPTION_KEY", ENCRYPTION_KEY)
            // The merchants' endpoints are fakes on loopback.
            .env("WEBHOOK_ALLOW_LOOPBACK_HTTP", "true")
            .env("RUST_LOG", "warn")
            .env_remove("WA_API_KEY")
            .env_remove("RAZORPAYX_KEY_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start a lightspeed process")
    }

    /// Starts `lightspeed work <queue>`.
    pub fn worker(&self, queue: &str) -> Child {
        self.process(&format!("worker-{queue}"), &["work", queue])
    }
}

/// Kills a process the way a crash does (SIGKILL): no destructor runs, nothing is flushed, and
/// PostgreSQL aborts what it had open; answers when it was killed.
pub async fn kill(process: &mut Child) -> Instant {
    process.start_kill().expect("SIGKILL");
    let killed_at = Instant::now();
    process.wait().await.expect("the process is gone");
    killed_at
}

/// A merchant endpoint that notes when each request arrived, holds the first ones for the
/// test's holds (one each), then answers `200`.
pub struct HoldingEndpoint {
    /// Where it listens, e.g. `http://127.0.0.1:41234/hooks`.
    pub url: String,
    arrivals: Mutex<Vec<Instant>>,
    holds: Mutex<Vec<Duration>>,
}

impl HoldingEndpoint {
    /// Serves on loopback until the test ends.
    pub async fn start(holds: Vec<Duration>) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = Arc::new(Self {
            url: format!("http://{}/hooks", listener.local_addr().expect("addr")),
            arrivals: Mutex::new(Vec::new()),
            holds: Mutex::new(holds),
        });
        let router = Router::new()
            .route("/hooks", post(hold))
            .with_state(Arc::clone(&endpoint));
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        endpoint
    }

    /// When each request arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().expect("lock").clone()
    }

    /// Waits until `n` requests have arrived; answers when the `n`-th did.
    pub async fn nth_request(&self, n: usize) -> Instant {
        wait_for(&format!("request {n} at the merchant's endpoint"), || {
            std::future::ready(self.arrivals().get(n - 1).copied())
        })
        .await
    }
}

async fn hold(State(endpoint): State<Arc<HoldingEndpoint>>) -> StatusCode {
    let hold = {
        endpoint.arrivals.lock().expect("lock").push(Instant::now());
        let mut holds = endpoint.holds.lock().expect("lock");
        (!holds.is_empty()).then(|| holds.remove(0))
    };
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    StatusCode::OK
}
