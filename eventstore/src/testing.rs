//! Isolated resources for tests: a fresh migrated database and a private JetStream stream each,
//! removed again when dropped (even when the test panics).

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::migrate::{MIGRATOR, ensure_database};

/// The server tests create their databases on (`TEST_DATABASE_URL`, a maintenance database).
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The NATS server tests use (`NATS_URL`).
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

fn unique_suffix() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A freshly created and migrated database, dropped with the value.
#[derive(Debug)]
pub struct TestDatabase {
    /// A pool on it.
    pub pool: PgPool,
    /// Its connection URL.
    pub url: String,
    name: String,
}

impl TestDatabase {
    /// Creates and migrates a database with a unique name.
    pub async fn new() -> Self {
        let name = format!("ls_test_{}", unique_suffix());
        let admin = PgConnectOptions::from_str(&admin_url()).expect("TEST_DATABASE_URL");
        let url = admin.clone().database(&name).to_url_lossy().to_string();
        ensure_database(&url).await.expect("create test database");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await
            .expect("connect to test database");
        MIGRATOR.run(&pool).await.expect("migrate test database");
        Self { pool, url, name }
    }

    /// A second pool on the same database, e.g. for a concurrent writer.
    pub async fn another_pool(&self, max_connections: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(&self.url)
            .await
            .expect("connect to test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop has no runtime to await on; a short-lived one on its own thread does the clean-up.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build()
            else {
                return;
            };
            // FORCE ends the test's own connections too.
            runtime.block_on(async move {
                let Ok(admin) = PgConnectOptions::from_str(&admin_url()) else { return };
                let Ok(mut conn) = admin.connect().await else { return };
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                let _ = conn.close().await;
            });
        });
        let _ = cleanup.join();
    }
}
