//! The console's test harness, shared by every console test: the real API with the console
//! mounted ([`spawn_console`], over `api`'s harness: its own database and JetStream stream, a
//! manual clock) with the projectors, the relay and a live hub running, a headless Chromium driven over WebDriver
//! ([`Browser`]), and people signed in through one-time links, in the browser or over plain
//! HTTP ([`HttpSession`]).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use lightspeed_adapters::mailer::{Mailer, MailerConfig};
use lightspeed_api::admin_auth::AdminAuthConfig;
use lightspeed_api::testing::{ADMIN_EMAIL, ADMIN_SECRET, TestApp};
use lightspeed_console::{ConsoleConfig, SessionSettings};
use lightspeed_domain::access::Role;
use lightspeed_domain::person::PersonEmail;
use lightspeed_eventstore::CommandContext;
use lightspeed_live::{Hub, HubConfig, Sampler};
use lightspeed_projections::{ProjectorDeps, run_all};
use lightspeed_workers::control::WorkQueues;
use tokio::task::JoinHandle;

/// How many times [`eventually`] looks before giving up, and how long it waits between looks.
const LOOKS: usize = 200;
const BETWEEN_LOOKS: Duration = Duration::from_millis(100);

/// The API with the console mounted, its projectors and relay running, and its live hub
/// following the test's JetStream; stops when dropped.
pub struct ConsoleApp {
    /// The API's harness: database, clock, ledger, helpers.
    pub app: TestApp,
    /// The console's configuration.
    pub config: ConsoleConfig,
    /// The live hub the console's pages follow.
    pub hub: Hub,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for ConsoleApp {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the API with the console under `/console`, builds the read models, lets every
/// projector follow the log, and starts the relay and the live hub as `lightspeed run` does.
pub async fn spawn_console() -> ConsoleApp {
    spawn_console_with(None).await
}

/// As [`spawn_console`], sending sign-in links through the SMTP server `mail` names.
pub async fn spawn_console_with(mail: Option<MailerConfig>) -> ConsoleApp {
    let hub = Hub::new(HubConfig::default());
    let mounted = hub.clone();
    let mounted_mail = mail.clone();
    let app = TestApp::builder()
        .mount(move |state| {
            let config = config_for(&state.config.public_url, mounted_mail.as_ref());
            lightspeed_console::router(state.clone(), config, mounted)
        })
        .spawn()
        .await;
    // The first versions of the read models are built before the projectors follow the log.
    app.project().await;
    let deps = ProjectorDeps {
        store: app.ledger.store().clone(),
        live: None,
    };
    let projectors = tokio::spawn(async move {
        if let Err(e) = run_all(deps).await {
            panic!("projectors stopped: {e}");
        }
    });
    let relay = app.nats.spawn_relay(app.ledger.store());
    feed(&hub, &app).await;
    let config = config_for(&app.url, mail.as_ref());
    ConsoleApp {
        app,
        config,
        hub,
        tasks: vec![projectors, relay],
    }
}

/// Feeds `hub` as the binary does: the app's log on JetStream, and a sampler of its queues and
/// lag (sampling more often than the binary, so tests wait less).
async fn feed(hub: &Hub, app: &TestApp) {
    let (jetstream, log) = (app.nats.jetstream.clone(), app.nats.config.clone());
    hub.follow_log(jetstream.clone(), log.clone()).await;
    let stream_name = log.stream_name.clone();
    hub.sample(
        Sampler::new(app.ledger.clone())
            .queues(Arc::new(WorkQueues::new(jetstream, log)))
            .relay(stream_name)
            .interval(Duration::from_millis(200)),
    );
}

fn config_for(public_url: &str, mail: Option<&MailerConfig>) -> ConsoleConfig {
    ConsoleConfig {
        public_url: public_url.to_owned(),
        sessions: SessionSettings::default(),
        mailer: mail.map(|mail| Mailer::new(mail).expect("mailer")),
    }
}

impl ConsoleApp {
    /// Invites `email` with `role` into the people registry, as an admin would.
    pub async fn invite(&self, email: &str, role: Role) -> PersonEmail {
        let email = PersonEmail::parse(email).expect("email");
        self.app
            .ledger
            .invite_person(&email, role, &CommandContext::default())
            .await
            .expect("invite");
        email
    }

    /// A one-time sign-in link for `email`, as `lightspeed admin login-link` prints it.
    pub async fn login_link(&self, email: &str) -> String {
        let admins = AdminAuthConfig::new(ADMIN_SECRET, [ADMIN_EMAIL]).expect("admins");
        let ledger = self
            .app
            .ledger
            .clone()
            .with_bootstrap_admins(admins.bootstrap_admins().iter().cloned());
        lightspeed_console::login_link(&ledger, &self.config, email, "test")
            .await
            .expect("login link")
    }

    /// The address of a console page.
    pub fn page(&self, path: &str) -> String {
        format!("{}{path}", self.app.url)
    }
}

/// Looks at `check` until it answers `Some`, then answers that; panics with `what` after
/// [`LOOKS`] looks. For what happens in the background (projectors), never for timing.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..LOOKS {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(BETWEEN_LOOKS).await;
    }
    panic!("never happened: {what}");
}

/// A signed-in session driven over plain HTTP (for forged requests and status codes).
pub struct HttpSession {
    /// The client, which follows no redirect.
    pub http: reqwest::Client,
    /// `ls_session=<value>`.
    pub cookie: String,
}

impl HttpSession {
    /// Signs in `email` with a fresh link.
    pub async fn sign_in(console: &ConsoleApp, email: &str) -> HttpSession {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let link = console.login_link(email).await;
        let answer = http.post(&link).send().await.expect("redeem");
        assert_eq!(answer.status(), 303, "redeeming {link}");
        let set_cookie = answer.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .to_owned();
        let cookie = set_cookie.split(';').next().expect("pair").to_owned();
        HttpSession { http, cookie }
    }

    /// `GET` with the session.
    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http
            .get(url)
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("get")
    }

    /// `POST` a form with the session.
    pub async fn post(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(url)
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .expect("post")
    }

    /// The session's CSRF token, as a page's forms carry it.
    pub async fn csrf(&self, console: &ConsoleApp) -> String {
        let page = self
            .get(&console.page("/console"))
            .await
            .text()
            .await
            .expect("page");
        csrf_in(&page).expect("a form with a CSRF token")
    }
}

/// The CSRF token of the first form on a page.
pub fn csrf_in(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(page[at..].split('"').next()?.to_owned())
}

/// A headless Chromium on its own chromedriver, in a process group of their own; the whole
/// group ends when the value is dropped (killing chromedriver alone leaves Chromium running).
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium on it.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver (apt-get install chromium chromium-driver; scripts/services does)",
            );
        let url = format!("http://127.0.0.1:{port}");
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities());
        let client = eventually("chromedriver answers", || async {
            builder.connect(&url).await.ok()
        })
        .await;
        Browser { client, driver }
    }

    /// Opens a sign-in link and presses its button; lands on the overview.
    pub async fn sign_in(&self, console: &ConsoleApp, email: &str) {
        let link = console.login_link(email).await;
        self.client.goto(&link).await.expect("open link");
        self.click("form button[type=submit]").await;
        self.wait_for("main h1").await;
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Waits until an element matching `css` is on the page.
    pub async fn wait_for(&self, css: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .text()
            .await
            .expect("text")
    }

    /// Saves a screenshot of the page as `target/console-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let folder = screenshots_folder();
        std::fs::create_dir_all(&folder).expect("screenshots folder");
        std::fs::write(folder.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

fn capabilities() -> serde_json::Map<String, serde_json::Value> {
    let options = serde_json::json!({
        "binary": chromium(),
        "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,900", "--lang=en-GB"],
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    capabilities
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Where screenshots go: `<target>/console-screenshots/`.
pub fn screenshots_folder() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-screenshots")
}
