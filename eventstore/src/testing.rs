//! Isolated resources for tests: a fresh migrated database and a private JetStream stream each,
//! removed again when dropped (even when the test panics).

use std::str::FromStr;

use futures::StreamExt;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::migrate::{MIGRATOR, ensure_database};

/// The server tests create their databases on (`TEST_DATABASE_URL`, a maintenance database;
/// on loopback, without TLS, like the product's default).
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
        "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".to_owned()
    })
}

/// Waits (up to 60 s) until every event committed so far is below the gap-safe mark, so a
/// gap-safe read sees them all. The mark is the oldest transaction running anywhere on the
/// cluster: a parallel test's transaction can hold it back for a moment after the writes.
pub async fn settled(pool: &PgPool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let held_back: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM ledger.events
                             WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot()))",
        )
        .fetch_one(pool)
        .await
        .expect("read the safe mark");
        if !held_back {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "committed events stayed above the gap-safe mark for 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The NATS server tests use (`NATS_URL`).
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// How many batches of appends the group commit has in flight at most: once that many appends
/// are held waiting, every later one queues until they are let go.
pub const APPEND_COMMITTERS: usize = crate::group_commit::COMMITTERS;

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
        // Built before migrating, so a failed migration still drops the database.
        let db = Self { pool, url, name };
        MIGRATOR.run(&db.pool).await.expect("migrate test database");
        db
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
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            // FORCE ends the test's own connections too.
            runtime.block_on(async move {
                let Ok(admin) = PgConnectOptions::from_str(&admin_url()) else {
                    return;
                };
                let Ok(mut conn) = admin.connect().await else {
                    return;
                };
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            });
        });
        let _ = cleanup.join();
    }
}

/// A private JetStream stream and subject prefix on the shared NATS server, deleted on drop.
#[derive(Debug)]
pub struct TestNats {
    /// The connection.
    pub client: async_nats::Client,
    /// JetStream on it.
    pub jetstream: async_nats::jetstream::Context,
    /// The stream and prefix only this test uses.
    pub config: crate::nats::LogStreamConfig,
    url: String,
}

impl TestNats {
    /// Connects to `NATS_URL` and picks a unique stream name and subject prefix.
    pub async fn new() -> Self {
        Self::on(&nats_url()).await
    }

    /// The same, on a given server.
    pub async fn on(url: &str) -> Self {
        let suffix = unique_suffix();
        let client = async_nats::connect(url).await.expect("connect to NATS");
        let jetstream = async_nats::jetstream::new(client.clone());
        let config = crate::nats::LogStreamConfig {
            stream_name: format!("T_{suffix}"),
            subject_prefix: format!("t{suffix}"),
        };
        Self {
            client,
            jetstream,
            config,
            url: url.to_owned(),
        }
    }

    /// Runs a relay from `store` to this test's stream, polling the log every 5 ms.
    pub fn spawn_relay(&self, store: &crate::PgEventStore) -> tokio::task::JoinHandle<()> {
        let relay = crate::relay::Relay::new(
            store.clone(),
            self.jetstream.clone(),
            self.config.clone(),
            crate::relay::RelayConfig {
                idle_poll: std::time::Duration::from_millis(5),
                ..crate::relay::RelayConfig::default()
            },
        );
        tokio::spawn(async move { relay.run().await })
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let url = self.url.clone();
        let stream = self.config.stream_name.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(client) = async_nats::connect(&url).await else {
                    return;
                };
                let jetstream = async_nats::jetstream::new(client);
                // The log stream and those named after it: the workers' queues
                // (`<stream>_JOBS`, `<stream>_FAILED`) and KV buckets (`KV_<stream>_...`).
                let (queues, buckets) = (format!("{stream}_"), format!("KV_{stream}_"));
                let ours: Vec<String> = jetstream
                    .stream_names()
                    .filter_map(|name| async move { name.ok() })
                    .filter(|name| {
                        std::future::ready(
                            *name == stream
                                || name.starts_with(&queues)
                                || name.starts_with(&buckets),
                        )
                    })
                    .collect()
                    .await;
                for name in ours {
                    let _ = jetstream.delete_stream(&name).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A NATS server of the test's own, on a free loopback port, so a test can stop and restart it
/// without disturbing other tests. Killed and its storage removed on drop.
#[derive(Debug)]
pub struct PrivateNatsServer {
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
    port: u16,
    store_dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

/// How long a stopped server may take to exit before it is killed.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl PrivateNatsServer {
    /// Starts `nats-server -js` with its own storage directory.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let store_dir = std::env::temp_dir().join(format!("ls-nats-{}", unique_suffix()));
        let mut server = Self {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store_dir,
            child: None,
        };
        server.restart().await;
        server
    }

    /// Stops the server the way an operator does (SIGTERM), killing it if it has not exited
    /// within ten seconds.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let terminated = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let deadline = std::time::Instant::now() + STOP_GRACE;
        while terminated && std::time::Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server abruptly (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same storage (killing it first if it runs),
    /// and waits until it accepts connections.
    pub async fn restart(&mut self) {
        self.kill();
        let binary = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "nats-server",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nats-server");
        let child = std::process::Command::new(binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("nats-server did not start on port {}", self.port);
    }
}

impl Drop for PrivateNatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store_dir);
    }
}

/// How a [`PrivatePostgres`] is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostgresStop {
    /// As an operator restarts it: clients are disconnected, a checkpoint is written.
    Fast,
    /// As a crash does: every server process is ended at once, and the next start recovers
    /// from the write-ahead log.
    Immediate,
}

/// A PostgreSQL cluster of the caller's own (`initdb` into a temporary directory, serving a free
/// loopback port), so a run can stop and restart it without disturbing the machine's shared
/// server. Stopped, and its directory removed, on drop.
///
/// The binaries are taken from `PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`,
/// else the `PATH`. PostgreSQL refuses to run as root: as root, it runs as the `postgres` user.
#[derive(Debug)]
pub struct PrivatePostgres {
    /// `postgres://postgres@127.0.0.1:<port>/postgres?sslmode=disable`, a maintenance database.
    pub admin_url: String,
    port: u16,
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Creates the cluster and starts it; waits until it accepts connections.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("ls-postgres-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        let cluster = Self {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"),
            port,
            dir,
            bin: postgres_binaries(),
            as_postgres: running_as_root(),
        };
        if cluster.as_postgres {
            run_checked(
                std::process::Command::new("chown")
                    .arg("postgres:")
                    .arg(&cluster.dir),
            );
        }
        cluster.initdb();
        cluster.start_again().await;
        cluster
    }

    /// The URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.join("data")
    }

    /// A command running `binary` of the cluster's PostgreSQL as the cluster's owner.
    fn command(&self, binary: &str) -> std::process::Command {
        let program = self.bin.join(binary);
        if self.as_postgres {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            std::process::Command::new(program)
        }
    }

    fn initdb(&self) {
        run_checked(
            self.command("initdb")
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(self.data()),
        );
        // Loopback and a socket inside the directory only; room for many role processes.
        // Without fsync a crash of the server loses nothing (the kernel keeps what it was
        // handed); only a crash of the machine would.
        let settings = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 300\nfsync = off\n",
            self.port,
            self.dir.display()
        );
        let conf = self.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
        text.push_str(&settings);
        std::fs::write(&conf, text).expect("write postgresql.conf");
    }

    /// Starts the (stopped) cluster and waits until it accepts connections.
    pub async fn start_again(&self) {
        let mut command = self.command("pg_ctl");
        command
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"));
        run_blocking(command).await;
    }

    /// Stops the cluster and waits until it has.
    pub async fn stop(&self, how: PostgresStop) {
        let mode = match how {
            PostgresStop::Fast => "fast",
            PostgresStop::Immediate => "immediate",
        };
        let mut command = self.command("pg_ctl");
        command
            .args(["stop", "-w", "-t", "60", "-m", mode, "-D"])
            .arg(self.data());
        run_blocking(command).await;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-w", "-m", "immediate", "-D"])
            .arg(self.data())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory of the PostgreSQL server binaries (see [`PrivatePostgres`]).
fn postgres_binaries() -> std::path::PathBuf {
    if let Ok(bin) = std::env::var("PG_BIN") {
        return bin.into();
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    newest.map(|(_, bin)| bin).unwrap_or_default()
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// Runs a short command to completion, panicking with its output if it fails.
fn run_checked(command: &mut std::process::Command) {
    let output = command.output().expect("run a PostgreSQL command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// [`run_checked`] off the async runtime's threads (a start or stop takes seconds).
async fn run_blocking(mut command: std::process::Command) {
    tokio::task::spawn_blocking(move || run_checked(&mut command))
        .await
        .expect("the PostgreSQL command's thread");
}
