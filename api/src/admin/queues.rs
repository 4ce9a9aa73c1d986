//! Queue control: the queues now, their sampled depths over time (kept by
//! `lightspeed_monitoring`'s sampler), and pause, resume, retry and drain. Pause and resume are
//! recorded in the log, which workers read before fetching; retry and drain run on the broker
//! and are recorded afterwards.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use lightspeed_monitoring::queues::{self as monitored, QueueControl, QueueControlError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{AdminQuery, admin_error};
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Longest window of the time series: the samples' retention.
const MAX_SERIES_MINUTES: u32 = 24 * 60;
/// Most points one series answers; longer windows use wider buckets.
const MAX_SERIES_POINTS: u64 = 720;

/// Jobs of one queue, as the broker counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueDepth {
    /// Waiting to be fetched.
    pub waiting: u64,
    /// Fetched and not acknowledged yet (running, or waiting out a retry delay).
    pub active: u64,
    /// Given up on and kept for a retry (0 where the broker keeps none).
    pub failed: u64,
}

impl From<monitored::QueueDepth> for QueueDepth {
    fn from(depth: monitored::QueueDepth) -> Self {
        let monitored::QueueDepth {
            waiting,
            active,
            failed,
        } = depth;
        Self {
            waiting,
            active,
            failed,
        }
    }
}

/// One sampled depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueSample {
    /// The queue.
    pub queue: String,
    /// The start of the sample's interval (or of the bucket, in a series).
    pub sampled_at: DateTime<Utc>,
    /// Jobs waiting (the most seen in the bucket).
    pub waiting: i64,
    /// Jobs running (the most seen in the bucket).
    pub active: i64,
    /// Jobs failed (the most seen in the bucket).
    pub failed: i64,
    /// Whether the queue was paused (at any sample in the bucket).
    pub paused: bool,
}

impl From<monitored::QueueSample> for QueueSample {
    fn from(sample: monitored::QueueSample) -> Self {
        let monitored::QueueSample {
            queue,
            sampled_at,
            waiting,
            active,
            failed,
            paused,
        } = sample;
        Self {
            queue,
            sampled_at,
            waiting,
            active,
            failed,
            paused,
        }
    }
}

/// A queue now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    /// The queue's name.
    pub name: String,
    /// Jobs by state, when the broker answered.
    pub depth: Option<QueueDepth>,
    /// Why the depth is missing.
    pub depth_error: Option<String>,
    /// Whether workers are told to stop fetching.
    pub paused: bool,
    /// Since when.
    pub paused_since: Option<DateTime<Utc>>,
    /// When waiting jobs were last discarded.
    pub last_drained_at: Option<DateTime<Utc>>,
    /// When failed jobs were last put back.
    pub last_retried_at: Option<DateTime<Utc>>,
}

fn control(state: &AppState) -> Result<Arc<dyn QueueControl>, ApiError> {
    state.queues.clone().ok_or(ApiError::QueuesUnavailable)
}

fn known(control: &dyn QueueControl, name: &str) -> Result<(), ApiError> {
    if control.queues().iter().any(|queue| queue == name) {
        Ok(())
    } else {
        Err(ApiError::UnknownQueue(name.chars().take(64).collect()))
    }
}

fn queue_error(error: QueueControlError) -> ApiError {
    match error {
        QueueControlError::UnknownQueue(name) => ApiError::UnknownQueue(name),
        QueueControlError::Broker(why) => ApiError::QueueActionFailed(why),
    }
}

async fn view(
    state: &AppState,
    control: &dyn QueueControl,
    name: &str,
) -> Result<QueueView, ApiError> {
    let queue = state.ledger.queue_state(name).await.map_err(admin_error)?;
    let (depth, depth_error) = match control.depth(name).await {
        Ok(depth) => (Some(depth.into()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(QueueView {
        name: name.to_owned(),
        depth,
        depth_error,
        paused: queue.is_paused(),
        paused_since: queue.paused_since(),
        last_drained_at: queue.last_drained_at(),
        last_retried_at: queue.last_retried_at(),
    })
}

/// Every queue now: depths from the broker, pause state from the log.
#[utoipa::path(
    get,
    path = "/admin/queues",
    tag = "admin-queues",
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The queues", body = Vec<QueueView>),
        (status = 503, description = "Queue control is not wired on this server", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<QueueView>>, ApiError> {
    let control = control(&state)?;
    // Each queue's view is a few broker and database round trips: read them at once.
    let names = control.queues();
    let views = futures::future::try_join_all(
        names
            .iter()
            .map(|name| view(&state, control.as_ref(), name)),
    )
    .await?;
    Ok(Json(views))
}

/// Which queue and how far back.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// The queue.
    pub queue: String,
    /// Minutes back from now, 1 to 1 440 (default 60).
    pub minutes: Option<u32>,
}

/// A queue's sampled depths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeriesBody {
    /// The queue.
    pub queue: String,
    /// Width of each point's bucket, in seconds (the most seen in the bucket is shown).
    pub bucket_secs: u64,
    /// Oldest first.
    pub points: Vec<QueueSample>,
}

/// A queue's depth over time, sampled every 5 seconds and kept for a day.
#[utoipa::path(
    get,
    path = "/admin/queues/series",
    tag = "admin-queues",
    params(SeriesQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "The series", body = SeriesBody),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such queue", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn series(
    State(state): State<AppState>,
    _admin: AdminUser,
    AdminQuery(query): AdminQuery<SeriesQuery>,
) -> Result<Json<SeriesBody>, ApiError> {
    let control = control(&state)?;
    known(control.as_ref(), &query.queue)?;
    let minutes = query.minutes.unwrap_or(60);
    if !(1..=MAX_SERIES_MINUTES).contains(&minutes) {
        return Err(ApiError::InvalidQuery(format!(
            "minutes must be between 1 and {MAX_SERIES_MINUTES}"
        )));
    }
    let window_secs = u64::from(minutes) * 60;
    let bucket_secs = window_secs
        .div_ceil(MAX_SERIES_POINTS)
        .max(monitored::SAMPLE_INTERVAL.as_secs());
    let to = state.ledger.now();
    let from = to - chrono::TimeDelta::minutes(i64::from(minutes));
    let points = monitored::series(
        state.pool(),
        &query.queue,
        from,
        to,
        Duration::from_secs(bucket_secs),
    )
    .await?;
    Ok(Json(SeriesBody {
        queue: query.queue,
        bucket_secs,
        points: points.into_iter().map(Into::into).collect(),
    }))
}

/// The confirmation a drain needs.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionQuery {
    /// For `drain`: the queue's name again, to confirm discarding its waiting jobs.
    pub confirm: Option<String>,
}

/// What a queue action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueActionBody {
    /// `pause`, `resume`, `retry` or `drain`.
    pub action: String,
    /// Jobs put back (retry) or discarded (drain).
    pub jobs: Option<u64>,
    /// The queue after the action.
    pub queue: QueueView,
}

/// Pauses, resumes, retries the failed jobs of, or drains a queue.
///
/// `pause` stops workers fetching (jobs wait in the broker, none is lost); `resume` lets them
/// fetch again; `retry` puts failed jobs back; `drain` discards the waiting jobs and needs
/// `?confirm=<queue name>`, without which nothing changes.
#[utoipa::path(
    post,
    path = "/admin/queues/{name}/{action}",
    tag = "admin-queues",
    params(
        ("name" = String, Path, description = "The queue"),
        ("action" = String, Path, description = "`pause`, `resume`, `retry` or `drain`"),
        ActionQuery,
    ),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "Done and recorded in the log", body = QueueActionBody),
        (status = 400, description = "`drain` without `confirm=<queue name>`; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such queue or action", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The broker failed to carry out the action", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Queue control is not wired on this server", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn act(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    AdminQuery(query): AdminQuery<ActionQuery>,
) -> Result<Json<QueueActionBody>, ApiError> {
    let control = control(&state)?;
    known(control.as_ref(), &name)?;
    let context = admin.context(&headers);
    let jobs = match action.as_str() {
        "pause" | "resume" => {
            let paused = action == "pause";
            if paused {
                state.ledger.pause_queue(&name, &context).await
            } else {
                state.ledger.resume_queue(&name, &context).await
            }
            .map_err(admin_error)?;
            control.pause_changed(&name, paused).await;
            None
        }
        "retry" => {
            let jobs = control.retry_failed(&name).await.map_err(queue_error)?;
            state
                .ledger
                .record_queue_retry(&name, jobs, &context)
                .await
                .map_err(admin_error)?;
            Some(jobs)
        }
        "drain" => {
            if query.confirm.as_deref() != Some(name.as_str()) {
                return Err(ApiError::ConfirmationRequired(format!(
                    "draining discards every waiting job of {name}; repeat with ?confirm={name}"
                )));
            }
            let jobs = control.drain(&name).await.map_err(queue_error)?;
            state
                .ledger
                .record_queue_drain(&name, jobs, &context)
                .await
                .map_err(admin_error)?;
            Some(jobs)
        }
        other => {
            return Err(ApiError::UnknownQueueAction(
                other.chars().take(32).collect(),
            ));
        }
    };
    tracing::info!(queue = %name, %action, jobs = ?jobs, admin = %admin.email, "queue action");
    Ok(Json(QueueActionBody {
        queue: view(&state, control.as_ref(), &name).await?,
        action,
        jobs,
    }))
}
