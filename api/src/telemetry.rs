//! Logs and traces: `tracing` to stderr (JSON when `LOG_FORMAT=json`, filtered by `RUST_LOG`),
//! and spans exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The binary reads
//! these settings (flags or environment) into a [`TelemetryConfig`]. Every request
//! runs in a span carrying its `x-request-id` (see [`crate::app`]).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How logs and traces are emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// JSON lines instead of text.
    pub json: bool,
    /// A `RUST_LOG`-style filter (default `info`).
    pub filter: String,
    /// Where spans are exported over OTLP/HTTP (base URL), if anywhere.
    pub otlp_endpoint: Option<String>,
    /// The service name on exported spans (default `lightspeed`).
    pub service_name: String,
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter does not parse.
    #[error("RUST_LOG: {0}")]
    Filter(String),
    /// The OTLP exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    /// A global subscriber is already installed.
    #[error("tracing is already initialised: {0}")]
    AlreadyInitialised(String),
}

/// Keeps the trace exporter running; dropping it flushes and stops it. Hold it in `main`.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("exporting", &self.provider.is_some())
            .finish()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("trace export did not shut down cleanly: {e}");
        }
    }
}

/// Installs the global subscriber: logs to stderr, and OTLP trace export when configured.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let filter =
        EnvFilter::try_new(&config.filter).map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(endpoint, &config.service_name)?),
        None => None,
    };
    let otel = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("lightspeed")));
    let json = config.json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
    });
    let text =
        (!config.json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(text)
        .with(otel)
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))?;
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(
    endpoint: &str,
    service_name: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}
