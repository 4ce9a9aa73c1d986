//! [`QueueControl`] over the workers' queues on JetStream ([`WorkQueues`]): what the admin API
//! and the queue sampler act through in production.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lightspeed_workers::QueueName;
use lightspeed_workers::control::WorkQueues;

use crate::queues::{QueueControl, QueueControlError, QueueDepth};

/// The queue `name` names, or the admin's unknown name (cut to 64 characters).
fn queue(name: &str) -> Result<QueueName, QueueControlError> {
    name.parse()
        .map_err(|_| QueueControlError::UnknownQueue(name.chars().take(64).collect()))
}

fn broker_error(error: impl std::fmt::Display) -> QueueControlError {
    QueueControlError::Broker(error.to_string())
}

impl QueueControl for WorkQueues {
    fn queues(&self) -> Vec<String> {
        QueueName::ALL
            .iter()
            .map(|q| q.as_str().to_owned())
            .collect()
    }

    fn depth<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<QueueDepth, QueueControlError>> {
        Box::pin(async move {
            let depth = WorkQueues::depth(self, queue(name)?)
                .await
                .map_err(broker_error)?;
            Ok(QueueDepth {
                waiting: depth.waiting,
                active: depth.active,
                failed: depth.failed,
            })
        })
    }

    fn oldest_waiting<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<DateTime<Utc>>, QueueControlError>> {
        Box::pin(async move {
            WorkQueues::oldest_waiting(self, queue(name)?)
                .await
                .map_err(broker_error)
        })
    }

    fn retry_failed<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u64, QueueControlError>> {
        Box::pin(async move {
            WorkQueues::retry_failed(self, queue(name)?)
                .await
                .map_err(broker_error)
        })
    }

    fn drain<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u64, QueueControlError>> {
        Box::pin(async move {
            WorkQueues::drain(self, queue(name)?)
                .await
                .map_err(broker_error)
        })
    }
}
