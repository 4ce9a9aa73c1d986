//! Sandboxes served on loopback over a test database, as API processes would serve them.

use std::sync::Arc;
use std::time::Duration;

use lightspeed_adapters::http::HttpConfig;
use lightspeed_adapters::secrets::Keyring;
use lightspeed_domain::Clock;
use lightspeed_eventstore::testing::TestDatabase;
use lightspeed_sandbox::{Sandbox, SandboxConfig, router};
use tokio::task::JoinHandle;

/// One process's sandbox, served under `/sandbox` on its own port until dropped.
pub struct Served {
    /// Where its router is reached, `/sandbox` included.
    pub base_url: String,
    /// The instance, for calls without HTTP.
    pub sandbox: Sandbox,
    server: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The settings of every test sandbox: quick retries.
pub fn config(base_url: &str) -> SandboxConfig {
    let mut config = SandboxConfig::new(base_url);
    config.first_retry_delay = Duration::from_millis(20);
    config
}

/// Serves a sandbox over `db` with `keyring` and `clock`, configured by `configure`.
pub async fn serve(
    db: &TestDatabase,
    keyring: &Arc<Keyring>,
    clock: Arc<dyn Clock>,
    configure: impl FnOnce(&mut SandboxConfig),
) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base_url = format!(
        "http://{}/sandbox",
        listener.local_addr().expect("bound address")
    );
    let mut config = config(&base_url);
    configure(&mut config);
    let sandbox =
        Sandbox::new(db.pool.clone(), Arc::clone(keyring), config, clock).expect("sandbox");
    let app = axum::Router::new().nest("/sandbox", router(sandbox.clone()));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Served {
        base_url,
        sandbox,
        server,
    }
}

/// A keyring the instances of one test share, as processes share `ENCRYPTION_KEY`.
pub fn keyring() -> Arc<Keyring> {
    Arc::new(Keyring::random("sandbox-test").expect("keyring"))
}

/// A client that, like a browser under test, shows redirects instead of following them.
pub fn browser() -> reqwest::Client {
    lightspeed_adapters::http::build_client(&HttpConfig::default()).expect("browser client")
}
