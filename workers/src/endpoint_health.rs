//! Since when each merchant webhook endpoint has failed: the input of the domain's
//! endpoint-health policy, kept in a JetStream key-value bucket shared by every replica.
//!
//! One key per endpoint (its id; a merchant's first endpoint shares the merchant's UUID, the key
//! it had when merchants had one endpoint) holds `{failing_since, last_success_at}`: a success clears
//! `failing_since`; a failure sets it unless it is already set or a later success was seen
//! (replicas may record out of order). Updates are compare-and-set on the key's revision. The
//! bucket is operational state, not a fact of the log: what the log records is the decision,
//! `WebhookEndpointDisabled` with its `failing_since`. Losing the bucket only restarts
//! the five-day clock.

use async_nats::jetstream::{self, kv, stream};
use chrono::{DateTime, Utc};
use lightspeed_domain::WebhookEndpointId;
use lightspeed_eventstore::nats::LogStreamConfig;
use serde::{Deserialize, Serialize};

/// Compare-and-set attempts per update before giving up on a contended key.
const MAX_UPDATE_ATTEMPTS: usize = 8;

/// What one delivery attempt says about the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observation {
    /// It answered 2xx at this instant.
    Succeeded(DateTime<Utc>),
    /// It failed at this instant.
    Failed(DateTime<Utc>),
}

impl Observation {
    /// When the endpoint was observed.
    pub(crate) fn at(self) -> DateTime<Utc> {
        match self {
            Self::Succeeded(at) | Self::Failed(at) => at,
        }
    }
}

/// The stored state of one endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct EndpointRecord {
    failing_since: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
}

impl EndpointRecord {
    fn observe(self, observation: Observation) -> Self {
        match observation {
            Observation::Succeeded(at) => Self {
                failing_since: self.failing_since.filter(|since| *since > at),
                last_success_at: Some(self.last_success_at.map_or(at, |last| last.max(at))),
            },
            Observation::Failed(at) => {
                if self.last_success_at.is_some_and(|last| last >= at) {
                    return self;
                }
                Self {
                    failing_since: Some(self.failing_since.map_or(at, |since| since.min(at))),
                    ..self
                }
            }
        }
    }
}

/// Why the endpoint-health book could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("webhook endpoint health: {0}")]
pub(crate) struct HealthError(String);

/// The bucket of endpoint states.
#[derive(Debug, Clone)]
pub(crate) struct EndpointHealthBook {
    kv: kv::Store,
}

impl EndpointHealthBook {
    /// The bucket that goes with a log stream: `<LOG STREAM>_webhook_endpoints`.
    pub(crate) fn bucket_name(log_stream: &LogStreamConfig) -> String {
        format!("{}_webhook_endpoints", log_stream.stream_name)
    }

    /// Opens the bucket, creating it if absent.
    pub(crate) async fn open(
        jetstream: &jetstream::Context,
        log_stream: &LogStreamConfig,
    ) -> Result<Self, HealthError> {
        let bucket = Self::bucket_name(log_stream);
        // The bucket's stream is created by hand, in the key-value layout: async-nats's
        // `create_key_value` first asks for the account's limits, whose answer from
        // nats-server 2.9 it cannot decode.
        jetstream
            .get_or_create_stream(stream::Config {
                name: format!("KV_{bucket}"),
                description: Some("Since when each merchant's webhook endpoint has failed".into()),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::New,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(|e| HealthError(e.to_string()))?;
        let kv = jetstream
            .get_key_value(&bucket)
            .await
            .map_err(|e| HealthError(e.to_string()))?;
        Ok(Self { kv })
    }

    /// Records an observation of `endpoint`; answers since when it has been failing
    /// (`None` when it is healthy).
    pub(crate) async fn observe(
        &self,
        endpoint: WebhookEndpointId,
        observation: Observation,
    ) -> Result<Option<DateTime<Utc>>, HealthError> {
        self.update(endpoint, |record| record.observe(observation))
            .await
            .map(|record| record.failing_since)
    }

    /// Starts the endpoint's record afresh (after it was disabled, so a re-enabled endpoint gets
    /// its full five days again).
    pub(crate) async fn reset(&self, endpoint: WebhookEndpointId) -> Result<(), HealthError> {
        self.update(endpoint, |_| EndpointRecord::default())
            .await
            .map(|_| ())
    }

    async fn update(
        &self,
        endpoint: WebhookEndpointId,
        change: impl Fn(EndpointRecord) -> EndpointRecord,
    ) -> Result<EndpointRecord, HealthError> {
        let key = endpoint.to_string();
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let entry = self
                .kv
                .entry(key.as_str())
                .await
                .map_err(|e| HealthError(e.to_string()))?;
            let (current, revision) = match &entry {
                Some(entry) if entry.operation == kv::Operation::Put => (
                    serde_json::from_slice(&entry.value).unwrap_or_default(),
                    Some(entry.revision),
                ),
                _ => (EndpointRecord::default(), None),
            };
            let next = change(current);
            if next == current && revision.is_some() {
                return Ok(next);
            }
            let value: bytes::Bytes = serde_json::to_vec(&next)
                .map_err(|e| HealthError(e.to_string()))?
                .into();
            let written = match revision {
                Some(revision) => self
                    .kv
                    .update(key.as_str(), value, revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.kind() == kv::UpdateErrorKind::WrongLastRevision),
                None => self
                    .kv
                    .create(key.as_str(), value)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.kind() == kv::CreateErrorKind::AlreadyExists),
            };
            match written {
                Ok(()) => return Ok(next),
                // Another replica wrote first: read its value and apply the change again.
                Err(true) => continue,
                Err(false) => return Err(HealthError(format!("could not write {key}"))),
            }
        }
        Err(HealthError(format!(
            "{key} stayed contended after {MAX_UPDATE_ATTEMPTS} attempts"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0)
            .single()
            .expect("instant")
            + chrono::Duration::minutes(minutes)
    }

    #[test]
    fn failing_since_is_the_first_failure_after_the_last_success() {
        let record = EndpointRecord::default()
            .observe(Observation::Failed(t(10)))
            .observe(Observation::Failed(t(5)))
            .observe(Observation::Failed(t(20)));
        assert_eq!(record.failing_since, Some(t(5)));
        let healed = record.observe(Observation::Succeeded(t(30)));
        assert_eq!(healed.failing_since, None);
        assert_eq!(healed.last_success_at, Some(t(30)));
    }

    #[test]
    fn a_failure_recorded_after_a_later_success_changes_nothing() {
        let record = EndpointRecord::default().observe(Observation::Succeeded(t(30)));
        assert_eq!(record.observe(Observation::Failed(t(20))), record);
        let failing = record.observe(Observation::Failed(t(40)));
        assert_eq!(failing.failing_since, Some(t(40)));
        // An older success arriving late does not heal a newer failure.
        assert_eq!(
            failing.observe(Observation::Succeeded(t(35))).failing_since,
            Some(t(40))
        );
    }
}
