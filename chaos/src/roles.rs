//! The product's roles, each its own `lightspeed` process, started, killed and stopped the way
//! an operator's supervisor does. Each process writes its log to `<run dir>/<role>.log`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The two relays: one leads, the other stands by.
pub const RELAYS: [&str; 2] = ["relay-a", "relay-b"];
/// The API (`serve`).
pub const API: &str = "api";
/// The workers (`work all`).
pub const WORKERS: &str = "workers";
/// The projectors (`project all`).
pub const PROJECTORS: &str = "projectors";
/// Every role, in the order they are started.
pub const ALL: [&str; 5] = [RELAYS[0], RELAYS[1], PROJECTORS, WORKERS, API];

/// How long a stopped role may take to finish its work in flight before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// The sealing key every process of the run shares (a throwaway database's).
pub const ENCRYPTION_KEY: &str = "chaos:Y2hhb3MtcnVuLWtleS0wMDAwMDAwMDAwMDAwMDAwMDA=";

/// Where the roles find PostgreSQL, NATS and each other.
#[derive(Debug, Clone)]
pub struct Wiring {
    /// The database, without parameters: `postgres://…/<db>`.
    pub database: String,
    /// The NATS server.
    pub nats_url: String,
    /// The JetStream stream of the log.
    pub stream: String,
    /// The subject prefix of the log.
    pub subject_prefix: String,
    /// Where the API listens, `127.0.0.1:<port>`.
    pub api_listen: String,
}

impl Wiring {
    /// The API's URL.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_listen)
    }

    /// The database URL a process named `name` connects with (PostgreSQL shows the name in
    /// `pg_stat_activity`, which is how the run tells which relay leads).
    pub fn database_url(&self, name: &str) -> String {
        format!(
            "{}?sslmode=disable&application_name={}",
            self.database,
            application_name(name)
        )
    }
}

/// The `application_name` of a role's connections.
pub fn application_name(role: &str) -> String {
    format!("chaos-{role}")
}

/// The running role processes.
pub struct Roles {
    binary: PathBuf,
    wiring: Wiring,
    logs: PathBuf,
    running: BTreeMap<&'static str, Child>,
    started: Instant,
    /// Roles found exited without being killed, with when.
    pub unexpected_exits: Vec<String>,
}

fn arguments(role: &str) -> &'static [&'static str] {
    match role {
        API => &["serve"],
        WORKERS => &["work", "all"],
        PROJECTORS => &["project", "all"],
        _ => &["relay"],
    }
}

impl Roles {
    /// No role running yet.
    pub fn new(binary: &Path, wiring: Wiring, logs: &Path) -> Self {
        Self {
            binary: binary.to_owned(),
            wiring,
            logs: logs.to_owned(),
            running: BTreeMap::new(),
            started: Instant::now(),
            unexpected_exits: Vec::new(),
        }
    }

    /// The wiring the roles share.
    pub fn wiring(&self) -> &Wiring {
        &self.wiring
    }

    /// A `lightspeed` command with the run's environment and nothing of the caller's, its
    /// database connections named `name`.
    pub fn command(&self, name: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.wiring.database_url(name))
            .env("NATS_URL", &self.wiring.nats_url)
            .env("NATS_STREAM", &self.wiring.stream)
            .env("NATS_SUBJECT_PREFIX", &self.wiring.subject_prefix)
            .env("PUBLIC_URL", self.wiring.api_url())
            .env("LISTEN_ADDR", &self.wiring.api_listen)
            .env("ENCRYPTION_KEY", ENCRYPTION_KEY)
            // The merchants' endpoints are fakes on loopback.
            .env("WEBHOOK_ALLOW_LOOPBACK_HTTP", "true")
            .env("INITIATE_RATE_PER_MINUTE", "1000000")
            .env("RUST_LOG", "warn,lightspeed_eventstore::relay=info")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null());
        command
    }

    /// Starts `role`, appending its output to its log.
    pub fn start(&mut self, role: &'static str) -> anyhow::Result<()> {
        let path = self.logs.join(format!("{role}.log"));
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        std::io::Write::write_all(&mut log, b"---- started by the chaos run ----\n")?;
        let child = self
            .command(role, arguments(role))
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        self.running.insert(role, child);
        Ok(())
    }

    /// Kills `role` with SIGKILL and waits until it is gone; answers when it was killed.
    pub async fn kill(&mut self, role: &str) -> Instant {
        let killed_at = Instant::now();
        if let Some(mut child) = self.running.remove(role) {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        killed_at
    }

    /// Kills `role` and starts it again at once, as a supervisor would; answers when it was
    /// killed.
    pub async fn kill_and_restart(&mut self, role: &'static str) -> anyhow::Result<Instant> {
        let killed_at = self.kill(role).await;
        self.start(role)?;
        Ok(killed_at)
    }

    /// Stops `role` as Ctrl-C does, letting it finish its work in flight (SIGKILL after 30 s).
    pub async fn stop(&mut self, role: &str) {
        let Some(mut child) = self.running.remove(role) else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(STOP_GRACE, child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Starts again every role that exited although nobody stopped it, noting each.
    pub fn restart_exited(&mut self) -> anyhow::Result<()> {
        let exited: Vec<&'static str> = self
            .running
            .iter_mut()
            .filter_map(|(role, child)| matches!(child.try_wait(), Ok(Some(_))).then_some(*role))
            .collect();
        for role in exited {
            self.unexpected_exits.push(format!(
                "{role} exited by itself {:.1} s after the roles started (see {role}.log); \
                 started again",
                self.started.elapsed().as_secs_f64()
            ));
            self.start(role)?;
        }
        Ok(())
    }
}
