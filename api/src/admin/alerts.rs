//! `GET /admin/alerts`: the ops alerts the evaluator recorded in the log.
//!
//! Read from the log's `ops_alert` category directly ([`newest_events`]) and decoded with the
//! domain's `OpsAlertEvent`: the category is small (one stream per condition, a few events
//! each) and no read model holds it yet; an `alerts` projection would be its home once alerts
//! gain state of their own (acknowledgement, assignment).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use lightspeed_domain::Decider;
use lightspeed_domain::ops_alert::{OpsAlert, OpsAlertEvent};
use lightspeed_eventstore::RecordedEvent;
use lightspeed_eventstore::recent::{NewestEvents, newest_events};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AdminQuery;
use super::views::CursorBody;
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Most alert events one step answers.
const MAX_LIMIT: u32 = 200;

/// The event that raises an alert: a stream whose latest event it is holds a firing alert.
const RAISED: &str = "OpsAlertRaised";

/// Which alerts.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Only alerts firing now (their latest event is a raise); no cursor then.
    pub firing: Option<bool>,
    /// Only this kind: `payment_failed` or `whatsapp_failure_rate`.
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
    /// The condition, e.g. `payment_failed.<payment id>` or `whatsapp_failure_rate`.
    pub key: String,
    /// `payment_failed` or `whatsapp_failure_rate`.
    pub kind: String,
    /// `raised` or `resolved`.
    pub state: String,
    /// For people.
    pub summary: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

impl AlertView {
    /// The view of one event of an `ops_alert` stream.
    fn of(event: &RecordedEvent) -> Result<Self, ApiError> {
        let unreadable =
            |why: String| ApiError::Internal(format!("ops alert event {}: {why}", event.event_id));
        let (state, summary) = match event.decode().map_err(|e| unreadable(e.to_string()))? {
            OpsAlertEvent::OpsAlertRaised { summary, .. } => ("raised", summary),
            OpsAlertEvent::OpsAlertResolved { summary, .. } => ("resolved", summary),
        };
        let key = event.stream_id.id();
        let kind = key.split_once('.').map_or(key, |(kind, _)| kind);
        Ok(Self {
            log_position: i64::try_from(event.log_position.position)
                .map_err(|e| unreadable(e.to_string()))?,
            key: key.to_owned(),
            kind: kind.to_owned(),
            state: state.to_owned(),
            summary,
            at: event.recorded_at,
        })
    }
}

/// Ops alerts, newest first: a failed payment, a WhatsApp failure rate over 5 % for 5 minutes.
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
    let page = NewestEvents {
        category: <OpsAlert as Decider>::CATEGORY,
        id_first_part: query.kind.as_deref(),
        before,
        latest_of_type: query.firing.unwrap_or(false).then_some(RAISED),
        limit: i64::from(limit) + 1,
    };
    let mut rows = newest_events(state.pool(), &page)
        .await?
        .iter()
        .map(AlertView::of)
        .collect::<Result<Vec<_>, _>>()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_are_raised_by_an_ops_alert_event() {
        assert!(OpsAlertEvent::EVENT_TYPES.contains(&RAISED));
    }
}
