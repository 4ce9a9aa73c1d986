//! The product's roles, each its own `lightspeed` process, started, killed and stopped the way
//! an operator's supervisor does. Each process writes its log to `<run dir>/<role>.log`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// A kind of role process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `lightspeed relay`: one leads, the others stand by.
    Relay,
    /// `lightspeed serve`.
    Api,
    /// `lightspeed work all`.
    Workers,
    /// `lightspeed project all`.
    Projectors,
}

/// Every kind, in the order their processes are started.
const START_ORDER: [Kind; 4] = [Kind::Relay, Kind::Projectors, Kind::Workers, Kind::Api];

impl Kind {
    /// How process names start: `relay`, `api`, `workers`, `projectors`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Relay => "relay",
            Kind::Api => "api",
            Kind::Workers => "workers",
            Kind::Projectors => "projectors",
        }
    }

    fn arguments(self) -> &'static [&'static str] {
        match self {
            Kind::Relay => &["relay"],
            Kind::Api => &["serve"],
            Kind::Workers => &["work", "all"],
            Kind::Projectors => &["project", "all"],
        }
    }

    fn of(process: &str) -> Option<Kind> {
        let kind = process.split_once('-').map_or(process, |(kind, _)| kind);
        START_ORDER.into_iter().find(|k| k.name() == kind)
    }
}

/// Processes of each kind: `replicas` of each, and at least two relays (one leads, the other
/// stands by), named `<kind>` when alone and `<kind>-a`, `<kind>-b`, … when not.
pub fn process_names(kind: Kind, replicas: usize) -> Vec<String> {
    let count = match kind {
        Kind::Relay => replicas.max(2),
        _ => replicas.max(1),
    };
    if count == 1 {
        return vec![kind.name().to_owned()];
    }
    (b'a'..)
        .take(count)
        .map(|suffix| format!("{}-{}", kind.name(), char::from(suffix)))
        .collect()
}

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
    /// Where each API process listens, `127.0.0.1:<port>`, in the order of their names.
    pub api_listen: Vec<String>,
}

impl Wiring {
    /// Each API process's URL.
    pub fn api_urls(&self) -> Vec<String> {
        self.api_listen
            .iter()
            .map(|listen| format!("http://{listen}"))
            .collect()
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
    replicas: usize,
    running: BTreeMap<String, Child>,
    started: Instant,
    /// Roles found exited without being killed, with when.
    pub unexpected_exits: Vec<String>,
}

impl Roles {
    /// No role running yet; `replicas` processes of each kind (see [`process_names`]), one API
    /// address in `wiring` per API process.
    pub fn new(binary: &Path, wiring: Wiring, replicas: usize, logs: &Path) -> Self {
        Self {
            binary: binary.to_owned(),
            wiring,
            replicas,
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

    /// The processes of `kind`.
    pub fn names(&self, kind: Kind) -> Vec<String> {
        process_names(kind, self.replicas)
    }

    /// Every process, in the order they are started.
    pub fn all(&self) -> Vec<String> {
        START_ORDER
            .into_iter()
            .flat_map(|k| self.names(k))
            .collect()
    }

    /// Where `name` listens if it is an API process, else the first API's address (what other
    /// roles name as the public URL).
    fn listen_of(&self, name: &str) -> &str {
        let index = self
            .names(Kind::Api)
            .iter()
            .position(|api| api == name)
            .unwrap_or(0);
        &self.wiring.api_listen[index]
    }

    /// A `lightspeed` command with the run's environment and nothing of the caller's, its
    /// database connections named `name`.
    pub fn command(&self, name: &str, args: &[&str]) -> Command {
        let listen = self.listen_of(name);
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.wiring.database_url(name))
            .env("NATS_URL", &self.wiring.nats_url)
            .env("NATS_STREAM", &self.wiring.stream)
            .env("NATS_SUBJECT_PREFIX", &self.wiring.subject_prefix)
            .env("PUBLIC_URL", format!("http://{listen}"))
            .env("LISTEN_ADDR", listen)
            .env("ENCRYPTION_KEY", ENCRYPTION_KEY)
            // The merchants' endpoints are fakes on loopback.
            .env("WEBHOOK_ALLOW_LOOPBACK_HTTP", "true")
            .env("INITIATE_RATE_PER_MINUTE", "1000000")
            .env("RUST_LOG", "warn,lightspeed_eventstore::relay=info")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null());
        command
    }

    /// Starts the process `role` (one of [`Roles::all`]), appending its output to its log.
    pub fn start(&mut self, role: &str) -> anyhow::Result<()> {
        let kind = Kind::of(role).with_context(|| format!("no role is named {role}"))?;
        let path = self.logs.join(format!("{role}.log"));
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        std::io::Write::write_all(&mut log, b"---- started by the chaos run ----\n")?;
        let child = self
            .command(role, kind.arguments())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        self.running.insert(role.to_owned(), child);
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
    pub async fn kill_and_restart(&mut self, role: &str) -> anyhow::Result<Instant> {
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
        let exited: Vec<String> = self
            .running
            .iter_mut()
            .filter_map(|(role, child)| {
                matches!(child.try_wait(), Ok(Some(_))).then(|| role.clone())
            })
            .collect();
        for role in &exited {
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
