//! The log at a glance, for `lightspeed status` and the demo.

use lightspeed_eventstore::log_counts::log_counts;
use lightspeed_eventstore::relay::load_mark;
use lightspeed_eventstore::seal::last_seal;
use sqlx::PgPool;

/// Counts and marks that say how the log is doing.
#[derive(Debug)]
pub struct LogState {
    events: i64,
    streams: i64,
    categories: Vec<(String, i64)>,
    relay: Option<String>,
    sealed_events: i64,
    seals: u64,
}

impl LogState {
    /// Reads the state of the log in `pool`, with the relay mark for `jetstream_stream`.
    pub async fn read(pool: &PgPool, jetstream_stream: &str) -> anyhow::Result<Self> {
        let counts = log_counts(pool).await?;
        let relay = load_mark(pool, jetstream_stream).await?.map(|mark| {
            format!(
                "position {} (JetStream sequence {})",
                mark.position, mark.jetstream_seq
            )
        });
        let seals = last_seal(pool).await?.map_or(0, |s| s.seal_number);
        Ok(Self {
            events: counts.events,
            streams: counts.streams,
            categories: counts.by_category,
            relay,
            sealed_events: counts.sealed_events,
            seals,
        })
    }
}

impl std::fmt::Display for LogState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "events:   {} in {} streams", self.events, self.streams)?;
        for (category, count) in &self.categories {
            writeln!(f, "  {category:<18} {count}")?;
        }
        writeln!(
            f,
            "relay:    {}",
            self.relay.as_deref().unwrap_or("has not published yet")
        )?;
        write!(
            f,
            "seals:    {} covering {} events",
            self.seals, self.sealed_events
        )
    }
}
