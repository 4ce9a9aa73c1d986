//! `GET /admin/alerts`: the ops alerts the evaluator recorded in the log, each with its state
//! now; `POST /admin/alerts/{id}/ack`: a person acknowledges one.
//!
//! Read from the log's `ops_alert` category directly ([`newest_events`]) and decoded with the
//! domain's `OpsAlertEvent`; each alert's state now is its stream folded by the domain's
//! `OpsAlert` (through the ledger's bounded cache). The category is small (one stream per
//! condition, a few events each) and no read model holds it yet.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use lightspeed_domain::Decider;
use lightspeed_domain::ops_alert::{
    AlertKind, FIRING_EVENT_TYPES, OpsAlert, OpsAlertError, OpsAlertEvent,
};
use lightspeed_eventstore::RecordedEvent;
use lightspeed_eventstore::recent::{NewestEvents, newest_events};
use lightspeed_services::ServiceError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AdminQuery;
use super::admin_error;
use super::views::CursorBody;
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Most alert events one step answers.
const MAX_LIMIT: u32 = 200;

/// Longest alert key accepted in a path.
const MAX_KEY_CHARS: usize = 200;

/// Which alerts.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Only alerts firing now (acknowledged or not), the latest event of each; no cursor then.
    pub firing: Option<bool>,
    /// Only this kind, e.g. `payment_failed`, `gateway_limit_reached`, `queue_backlog`.
    pub kind: Option<String>,
    /// Events per step, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// A previous step's `next_cursor`.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

/// One alert event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AlertView {
    /// The event's log position (the order and cursor).
    pub log_position: i64,
    /// The condition, e.g. `payment_failed.<payment id>` or `whatsapp_failure_rate`; the `id`
    /// of `POST /admin/alerts/{id}/ack`.
    pub key: String,
    /// E.g. `payment_failed`, `gateway_limit_near`, `relay_lag`.
    pub kind: String,
    /// What this event recorded: `raised`, `resolved` or `acknowledged`.
    pub state: String,
    /// For people (for an acknowledgement, who acknowledged).
    pub summary: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The alert as it stands now (after every event of its stream).
    pub alert: AlertState,
}

/// An alert as it stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AlertState {
    /// `firing`, `acknowledged` (firing, and a person has seen it) or `resolved`.
    pub state: String,
    /// Whether its condition holds.
    pub firing: bool,
    /// When it was last raised.
    pub raised_at: DateTime<Utc>,
    /// When it was last resolved, if after its last raise.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who acknowledged it since its last raise.
    pub acknowledged_by: Option<String>,
    /// When.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// How often it was raised.
    pub times_raised: u32,
}

impl From<&OpsAlert> for AlertState {
    fn from(alert: &OpsAlert) -> Self {
        Self {
            state: alert.state_name().to_owned(),
            firing: alert.is_firing(),
            raised_at: alert.raised_at(),
            resolved_at: alert.resolved_at(),
            acknowledged_by: alert.acknowledged_by().map(str::to_owned),
            acknowledged_at: alert.acknowledged_at(),
            times_raised: alert.times_raised(),
        }
    }
}

impl AlertView {
    /// The view of one event of an `ops_alert` stream, with its alert as it stands now.
    async fn of(state: &AppState, event: &RecordedEvent) -> Result<Self, ApiError> {
        let unreadable =
            |why: String| ApiError::Internal(format!("ops alert event {}: {why}", event.event_id));
        let (recorded, summary) = match event.decode().map_err(|e| unreadable(e.to_string()))? {
            OpsAlertEvent::OpsAlertRaised { summary, .. } => ("raised", summary),
            OpsAlertEvent::OpsAlertResolved { summary, .. } => ("resolved", summary),
            OpsAlertEvent::OpsAlertAcknowledged { by, .. } => {
                ("acknowledged", format!("acknowledged by {by}"))
            }
        };
        let alert = state
            .ledger
            .alert(event.stream_id.id())
            .await?
            .ok_or_else(|| unreadable("its stream holds no alert".to_owned()))?;
        let key = event.stream_id.id();
        let kind = key.split_once('.').map_or(key, |(kind, _)| kind);
        Ok(Self {
            log_position: i64::try_from(event.log_position.position)
                .map_err(|e| unreadable(e.to_string()))?,
            key: key.to_owned(),
            kind: kind.to_owned(),
            state: recorded.to_owned(),
            summary,
            at: event.recorded_at,
            alert: AlertState::from(&alert),
        })
    }
}

/// What acknowledging answers: the alert as it stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AcknowledgedAlert {
    /// The alert's key.
    pub key: String,
    /// Its kind.
    pub kind: String,
    /// Its latest summary.
    pub summary: String,
    /// Its state now.
    pub alert: AlertState,
}

/// Ops alert events, newest first, each with its alert's state now: failed payments and
/// payouts, gateways near or at their monthly limit, resting or failing, merchants with no
/// gateway, queue backlogs, projection and relay lag, disabled webhook endpoints, the WhatsApp
/// failure rate.
#[utoipa::path(
    get,
    path = "/admin/alerts",
    tag = "admin-reads",
    params(AlertsQuery),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "Alert events", body = CursorBody<AlertView>),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    AdminQuery(query): AdminQuery<AlertsQuery>,
) -> Result<Json<CursorBody<AlertView>>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let before: Option<i64> = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::InvalidQuery(format!("bad alerts cursor {c:?}")))
        })
        .transpose()?;
    let firing = query.firing.unwrap_or(false);
    let page = NewestEvents {
        category: <OpsAlert as Decider>::CATEGORY,
        id_first_part: query.kind.as_deref(),
        before,
        latest_of_types: firing.then_some(&FIRING_EVENT_TYPES[..]),
        limit: i64::from(limit) + 1,
    };
    let events = newest_events(state.pool(), &page).await?;
    let mut rows = Vec::with_capacity(events.len());
    for event in &events {
        let view = AlertView::of(&state, event).await?;
        if !firing || view.alert.firing {
            rows.push(view);
        }
    }
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|row| row.log_position.to_string()))
        .flatten();
    Ok(Json(CursorBody {
        items: rows,
        next_cursor,
    }))
}

/// A person acknowledges the alert `id` (its key): recorded in the log with their email (and
/// so in the audit log); acknowledging it again before it is raised again changes nothing.
#[utoipa::path(
    post,
    path = "/admin/alerts/{id}/ack",
    tag = "admin-reads",
    params(("id" = String, Path, description = "The alert's key, e.g. `gateway_limit_reached.<gateway id>`")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "Acknowledged (or already acknowledged)", body = AcknowledgedAlert),
        (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn acknowledge(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<AcknowledgedAlert>, ApiError> {
    let kind = id.split_once('.').map_or(id.as_str(), |(kind, _)| kind);
    if id.chars().count() > MAX_KEY_CHARS || AlertKind::parse(kind).is_none() {
        return Err(ApiError::AlertNotFound);
    }
    state
        .ledger
        .acknowledge_alert(&id, &admin.email, &admin.context(&headers))
        .await
        .map_err(|e| match e {
            ServiceError::Alert(OpsAlertError::NotRaised) => ApiError::AlertNotFound,
            // The key did not make a stream id: no alert can have it.
            ServiceError::Invalid(_) => ApiError::AlertNotFound,
            other => admin_error(other),
        })?;
    let alert = state
        .ledger
        .alert(&id)
        .await?
        .ok_or(ApiError::AlertNotFound)?;
    tracing::info!(alert = %id, admin = %admin.email, "ops alert acknowledged");
    Ok(Json(AcknowledgedAlert {
        key: id.clone(),
        kind: alert.kind().as_str().to_owned(),
        summary: alert.summary().to_owned(),
        alert: AlertState::from(&alert),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firing_alerts_are_found_by_ops_alert_events() {
        for event_type in FIRING_EVENT_TYPES {
            assert!(OpsAlertEvent::EVENT_TYPES.contains(&event_type));
        }
    }
}
