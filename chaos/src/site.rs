//! The run's own world on this machine: a private PostgreSQL cluster and a private NATS server
//! (so restarting them disturbs nobody else), the database migrated, the merchants onboarded
//! with sandbox gateways and a webhook endpoint, and every role started as its own process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use lightspeed_adapters::merchant_webhook::WebhookSecret;
use lightspeed_adapters::psp::{PspAccount, PspCredentials};
use lightspeed_adapters::secrets::{Keyring, generate_webhook_secret};
use lightspeed_api::testing::{MerchantSettings, TestMerchant, onboard_merchant, register_gateway};
use lightspeed_domain::checkout_settings::CheckoutSettings;
use lightspeed_domain::gateway::GatewaySettings;
use lightspeed_domain::standing::Thresholds;
use lightspeed_domain::{Paise, SystemClock};
use lightspeed_eventstore::PgEventStore;
use lightspeed_eventstore::nats::LogStreamConfig;
use lightspeed_eventstore::testing::{PrivateNatsServer, PrivatePostgres};
use lightspeed_services::Ledger;
use sqlx::postgres::PgPoolOptions;

use crate::endpoint::MerchantEndpoint;
use crate::load::Shop;
use crate::roles::{self, ENCRYPTION_KEY, Kind, Roles, Wiring};

/// How long a merchant's gateway rests after its PSP failed.
const REST_SECS: u64 = 10;

/// The run's database on its private cluster.
const DATABASE: &str = "chaos";

/// Everything the run started.
pub struct Site {
    /// The private PostgreSQL cluster.
    pub postgres: PrivatePostgres,
    /// The private NATS server.
    pub nats: PrivateNatsServer,
    /// The role processes.
    pub roles: Roles,
    /// The ledger, on the run's database, as this process reads it.
    pub ledger: Ledger,
    /// JetStream on the private server.
    pub jetstream: async_nats::jetstream::Context,
    /// The log's stream and subjects.
    pub log_stream: LogStreamConfig,
    /// The merchants' webhook endpoint.
    pub endpoint: Arc<MerchantEndpoint>,
    /// The merchants, in order.
    pub merchants: Vec<TestMerchant>,
    /// Where the role logs go.
    pub dir: PathBuf,
}

impl Site {
    /// Starts PostgreSQL, NATS and `replicas` processes of each role, and onboards `merchants`
    /// merchants.
    pub async fn start(
        binary: &Path,
        merchants: usize,
        replicas: usize,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let postgres = PrivatePostgres::start().await;
        let nats = PrivateNatsServer::start().await;
        let log_stream = LogStreamConfig {
            stream_name: "CHAOS".into(),
            subject_prefix: "chaos".into(),
        };
        let wiring = Wiring {
            database: postgres.url(DATABASE).replace("?sslmode=disable", ""),
            nats_url: nats.url.clone(),
            stream: log_stream.stream_name.clone(),
            subject_prefix: log_stream.subject_prefix.clone(),
            api_listen: roles::process_names(Kind::Api, replicas)
                .iter()
                .map(|_| Ok(format!("127.0.0.1:{}", free_port()?)))
                .collect::<anyhow::Result<_>>()?,
        };
        let roles = Roles::new(binary, wiring, replicas, dir);
        migrate(&roles).await?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&roles.wiring().database_url("checker"))
            .await
            .context("connect to the run's database")?;
        let ledger = Ledger::new(PgEventStore::new(pool, Arc::new(SystemClock)));
        let client = async_nats::connect(&nats.url).await?;
        let (endpoint, hooks) = MerchantEndpoint::start().await?;
        let mut site = Self {
            postgres,
            nats,
            roles,
            ledger,
            jetstream: async_nats::jetstream::new(client),
            log_stream,
            endpoint,
            merchants: Vec::new(),
            dir: dir.to_owned(),
        };
        site.onboard(merchants, &hooks).await?;
        for role in site.roles.all() {
            site.roles.start(&role)?;
        }
        for api in site.roles.wiring().api_urls() {
            wait_for_api(&api).await?;
        }
        Ok(site)
    }

    /// The merchants' credentials, for the load.
    pub fn shops(&self) -> Vec<Shop> {
        self.merchants
            .iter()
            .map(|m| Shop {
                client_key: m.client_key.clone(),
                client_salt: m.client_salt.clone(),
            })
            .collect()
    }

    /// The run's database.
    pub fn pool(&self) -> &sqlx::PgPool {
        self.ledger.store().pool()
    }

    /// Onboards the merchants, each with two sandbox gateways on an API's sandbox PSP (the
    /// merchants take the API processes in turn),
    /// thresholds no run reaches (no suspension, no payout) and a 10 s rest for a gateway whose
    /// PSP failed.
    async fn onboard(&mut self, count: usize, hooks: &str) -> anyhow::Result<()> {
        let keyring = Keyring::parse(ENCRYPTION_KEY)?;
        let far = Paise::rupees(1_000_000_000);
        let apis = self.roles.wiring().api_urls();
        for index in 0..count {
            let sandbox = format!("{}/sandbox", apis[index % apis.len()]);
            let settings = MerchantSettings {
                webhook_url: Some(format!("{hooks}/{index}")),
                thresholds: Thresholds {
                    suspend_at: far,
                    warn_at: far,
                    auto_payout_minimum: far,
                },
                // The sandbox PSP shares the database: while PostgreSQL restarts it fails, and
                // the gateways rest. 10 s instead of the default 5 minutes keeps the merchant
                // taking payments within the run.
                checkout: CheckoutSettings {
                    temporary_failure_secs: REST_SECS,
                    ..CheckoutSettings::default()
                },
                ..MerchantSettings::default()
            };
            let merchant = onboard_merchant(&self.ledger, &keyring, settings).await;
            for priority in [20, 10] {
                let account = PspAccount::test(PspCredentials::Sandbox {
                    webhook_secret: generate_webhook_secret(),
                })
                .with_base_url(&sandbox);
                let settings = GatewaySettings {
                    priority,
                    ..GatewaySettings::default()
                };
                register_gateway(&self.ledger, &keyring, merchant.id, account, settings).await;
            }
            self.merchants.push(merchant);
        }
        let secrets = self
            .merchants
            .iter()
            .map(|m| WebhookSecret::from_secret(&m.webhook_secret))
            .collect::<Result<_, _>>()?;
        self.endpoint.set_secrets(secrets);
        Ok(())
    }
}

/// Waits (up to a minute) until the API at `api` answers `/health`.
async fn wait_for_api(api: &str) -> anyhow::Result<()> {
    let url = format!("{api}/health");
    for _ in 0..600 {
        if reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the API did not answer {url} within a minute; see its log")
}

/// `lightspeed migrate` on the run's database (creating it).
async fn migrate(roles: &Roles) -> anyhow::Result<()> {
    let output = roles.command("migrate", &["migrate"]).output().await?;
    if !output.status.success() {
        bail!(
            "lightspeed migrate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
