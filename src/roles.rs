//! The roles a process can play — relay, API, workers, projectors — built from configuration,
//! alone (`lightspeed relay|serve|work|project`) or all in one process (`run`, `demo`).

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use std::net::SocketAddr;

use lightspeed_adapters::http::{HttpConfig, build_client};
use lightspeed_adapters::psp::PspClient;
use lightspeed_adapters::secrets::Keyring;
use lightspeed_api::AppState;
use lightspeed_api::readiness::NatsConnection;
use lightspeed_api::workers::QueuedStatusChecks;
use lightspeed_domain::SealedSecret;
use lightspeed_eventstore::PgEventStore;
use lightspeed_eventstore::relay::{Relay, RelayConfig};
use lightspeed_eventstore::seal::{Sealer, SealerConfig};
use lightspeed_live::{Hub, HubConfig, Sampler};
use lightspeed_monitoring::alerts::AlertEvaluator;
use lightspeed_monitoring::gauges::MetricsRefresher;
use lightspeed_monitoring::queues::{QueueControl, QueueSampler};
use lightspeed_projections::ProjectorDeps;
use lightspeed_sandbox::Sandbox;
use lightspeed_services::{Ledger, ResealReport, Resealer};
use lightspeed_workers::Deps;
use lightspeed_workers::control::WorkQueues;
use lightspeed_workers::reconciliation::Reconciler;

use crate::config::{Infra, Server};
use crate::success_rates::ReadModelSuccessRates;

/// What every role shares, connected once.
#[derive(Clone)]
pub struct Roles {
    /// The event log on a migrated database.
    pub store: PgEventStore,
    /// JetStream.
    pub jetstream: async_nats::jetstream::Context,
    /// Opens sealed secrets.
    pub keyring: Arc<Keyring>,
    /// The ledger's operations, ranking gateways by the read model's success rates.
    pub ledger: Ledger,
    /// Configuration.
    pub infra: Infra,
    /// The NATS connection, for readiness.
    pub nats: async_nats::Client,
    /// The Prometheus recorder of this process, when one could be installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Roles {
    /// Connects to PostgreSQL (refusing an unmigrated database) and NATS; `metrics` is the
    /// process's Prometheus recorder, if installed.
    pub async fn connect(
        infra: &Infra,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> anyhow::Result<Self> {
        let store = PgEventStore::new(
            infra.database().await?,
            Arc::new(lightspeed_domain::SystemClock),
        );
        let rates = ReadModelSuccessRates::spawn(store.pool().clone());
        let nats = infra.nats().await?;
        Ok(Self {
            ledger: Ledger::new(store.clone()).with_success_rates(rates),
            jetstream: async_nats::jetstream::new(nats.clone()),
            nats,
            keyring: Arc::new(infra.keyring()?),
            store,
            infra: infra.clone(),
            metrics,
        })
    }

    /// Publishes the log to JetStream and seals it, forever.
    pub async fn relay(&self) {
        let relay = Relay::new(
            self.store.clone(),
            self.jetstream.clone(),
            self.infra.log_stream(),
            RelayConfig::default(),
        );
        let sealer = Sealer::new(self.store.pool().clone(), SealerConfig::default());
        tokio::join!(relay.run(), sealer.run());
    }

    /// Serves the API (with the sandbox PSP under `/sandbox`) until `shutdown`, with the
    /// operations tasks that go with it: metrics refresh, alert evaluation, queue sampling and
    /// the sandbox's sweeps (its owed webhooks, its expired orders).
    pub async fn serve(
        &self,
        server: &Server,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let config = server.api_config(&self.infra)?;
        let sandbox = Sandbox::new(
            self.store.pool().clone(),
            Arc::clone(&self.keyring),
            server.sandbox_config(&config.public_url),
            Arc::clone(self.store.clock()),
        )?;
        tokio::spawn(sandbox.clone().run());
        let checks = QueuedStatusChecks::new(self.jetstream.clone(), self.infra.log_stream());
        let queues: Arc<dyn QueueControl> = Arc::new(WorkQueues::new(
            self.jetstream.clone(),
            self.infra.log_stream(),
        ));
        tokio::spawn(QueueSampler::new(self.ledger.clone(), Arc::clone(&queues)).run());
        let hub = self.live_hub(Arc::clone(&queues)).await;
        let mut state = AppState::builder(self.ledger.clone(), Arc::clone(&self.keyring), config)
            .status_checks(Arc::new(checks))
            .queue_control(Arc::clone(&queues))
            .reconciliation(Arc::new(self.reconciler()))
            .readiness_check(Arc::new(NatsConnection(self.nats.clone())))
            .psp_client(PspClient::new(&HttpConfig::default())?);
        if let Some(handle) = &self.metrics {
            state = state.metrics(handle.clone());
            let refresher = MetricsRefresher::new(
                self.store.pool().clone(),
                Some(self.infra.nats_stream.clone()),
                handle.clone(),
            );
            tokio::spawn(refresher.run());
        }
        let mailer = match self.infra.mail.config() {
            Some(config) => Some(lightspeed_adapters::mailer::Mailer::new(&config)?),
            None => None,
        };
        let alert_config = server.alerts.config(crate::alert_settings::AlertPlumbing {
            slack_webhook_url: server.slack_webhook_url.clone(),
            mailer,
            whatsapp: self
                .infra
                .whatsapp
                .provider(&self.keyring, Arc::clone(self.store.clock()))?,
            whatsapp_language: self.infra.whatsapp.wa_language.clone(),
            relay_stream: self.infra.nats_stream.clone(),
        })?;
        let alerts = AlertEvaluator::new(self.ledger.clone(), alert_config)?
            .with_queues(Arc::clone(&queues));
        tokio::spawn(alerts.run());
        let state = state.build();
        let extra = axum::Router::new()
            .nest("/sandbox", lightspeed_sandbox::router(sandbox))
            .merge(crate::console::router(
                &state,
                &server.console,
                &self.infra.mail,
                hub,
            )?);
        let router = lightspeed_api::app(state, extra);
        let listener = tokio::net::TcpListener::bind(&server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", server.listen))?;
        tracing::info!(listen = %server.listen, public_url = %self.infra.public_url, "serving the API");
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        Ok(())
    }

    /// The process's one live hub for the console: following the log's JetStream copy
    /// (payments, gateway health, alerts) and sampling `queues` and projection and relay lag.
    async fn live_hub(&self, queues: Arc<dyn QueueControl>) -> Hub {
        let hub = Hub::new(HubConfig::default());
        hub.follow_log(self.jetstream.clone(), self.infra.log_stream())
            .await;
        hub.sample(
            Sampler::new(self.ledger.clone())
                .queues(queues)
                .relay(self.infra.nats_stream.clone()),
        );
        hub
    }

    /// What the workers need.
    pub fn worker_deps(&self) -> anyhow::Result<Deps> {
        let http = HttpConfig::default();
        let mut deps = Deps::new(
            self.ledger.clone(),
            Arc::clone(&self.keyring),
            PspClient::new(&http)?,
            build_client(&http)?,
            self.jetstream.clone(),
            self.infra.log_stream(),
            self.infra.public_url.clone(),
        );
        deps.webhook_targets = self.infra.webhook_targets();
        deps.payouts = self.infra.payouts.worker_settings()?;
        if deps.payouts.is_none() {
            tracing::info!("RazorpayX is not configured: the payouts queue leaves payouts pending");
        }
        let whatsapp = &self.infra.whatsapp;
        if let Some(provider) = whatsapp.provider(&self.keyring, Arc::clone(self.store.clock()))? {
            deps = deps.with_whatsapp(provider, whatsapp.settings());
        }
        deps.message_templates = whatsapp.message_templates();
        deps.mailer = match self.infra.mail.config() {
            Some(config) => Some(lightspeed_adapters::mailer::Mailer::new(&config)?),
            None => None,
        };
        Ok(deps)
    }

    /// The pending-payment reconciler.
    fn reconciler(&self) -> Reconciler {
        Reconciler::new(
            self.ledger.clone(),
            self.jetstream.clone(),
            self.infra.log_stream(),
            self.infra.payouts.reconciliation(),
        )
    }

    /// The scheduled work, until `shutdown`: the daily payout run, the reconciliation sweeps and
    /// the low-balance watcher. Safe on several replicas: a day's payout run is one set of
    /// payouts however often it runs, a payment is checked once per sweep window, and a
    /// merchant's low-balance alert is a decision on its alerts stream.
    pub async fn schedules(&self, shutdown: impl Future<Output = ()> + Send) {
        let payouts = self.infra.payouts.clone();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let signal = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        tokio::join!(
            async {
                shutdown.await;
                let _ = stop.send(true);
            },
            lightspeed_workers::payout_schedule::run(
                self.ledger.clone(),
                payouts.schedule(),
                signal(stopped.clone()),
            ),
            lightspeed_workers::reconciliation::run(
                self.reconciler(),
                payouts.reconcile_interval(),
                signal(stopped.clone()),
            ),
            self.invoice_run(signal(stopped.clone())),
            async {
                // Alerts nobody would send are not raised: the watcher needs WhatsApp or mail.
                if self.infra.whatsapp.wa_api_key.is_some() || self.infra.mail.config().is_some() {
                    lightspeed_workers::low_balance::run(
                        self.ledger.clone(),
                        self.infra.whatsapp.wa_template_low_balance.clone(),
                        self.infra.whatsapp.low_balance_interval(),
                        signal(stopped.clone()),
                    )
                    .await;
                }
            },
        );
    }

    /// The monthly invoice run (1st, 02:00 IST), mailing invoices when SMTP is configured.
    async fn invoice_run(&self, shutdown: impl Future<Output = ()>) {
        let invoicing = lightspeed_services::Invoicing::new(
            self.ledger.clone(),
            self.infra.invoice_taxes.0.clone(),
        );
        let mail = match self
            .infra
            .mail
            .config()
            .map(|c| lightspeed_adapters::mailer::Mailer::new(&c))
        {
            Some(Ok(mailer)) => Some(lightspeed_workers::invoice_schedule::InvoiceMail {
                mailer,
                seller: lightspeed_invoice::Seller::default(),
            }),
            Some(Err(error)) => {
                tracing::warn!(%error, "invoices are issued but not mailed");
                None
            }
            None => None,
        };
        lightspeed_workers::invoice_schedule::run(
            invoicing,
            mail,
            lightspeed_workers::invoice_schedule::InvoiceSchedule::default(),
            shutdown,
        )
        .await;
    }

    /// `lightspeed keys rotate`: reseals every secret in the ledger under the keyring's current
    /// key (the first of `ENCRYPTION_KEY`), recorded as done by `system:keys-rotate`.
    pub async fn rotate_keys(&self) -> anyhow::Result<ResealReport> {
        let resealer = KeyringResealer(&self.keyring);
        Ok(self
            .ledger
            .rotate_keys(&resealer, "system:keys-rotate")
            .await?)
    }

    /// What the projectors need (live from JetStream).
    pub fn projector_deps(&self) -> ProjectorDeps {
        ProjectorDeps {
            store: self.store.clone(),
            live: Some((self.jetstream.clone(), self.infra.log_stream())),
        }
    }
}

/// The keyring as the ledger's resealer: it opens with whichever key a blob names and seals
/// with the first key.
struct KeyringResealer<'a>(&'a Keyring);

impl Resealer for KeyringResealer<'_> {
    fn key_id(&self) -> &str {
        self.0.sealing_key_id()
    }

    fn is_current(&self, sealed: &SealedSecret) -> bool {
        self.0.is_current(sealed)
    }

    fn reseal(&self, sealed: &SealedSecret) -> Result<SealedSecret, String> {
        self.0.reseal(sealed).map_err(|e| e.to_string())
    }
}
