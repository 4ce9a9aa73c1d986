//! WhatsApp notification commands: ops resend one the sender gave up on.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use lightspeed_domain::Notification;
use lightspeed_domain::notification::NotificationStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{admin_error, parse_id};
use crate::admin_auth::AdminUser;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// A notification as its stream says it stands.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotificationBody {
    /// The notification.
    pub notification_id: Uuid,
    /// The merchant it is for.
    pub merchant_id: Uuid,
    /// `LOW_BALANCE`, `TXN_UPDATE`, `PAYOUT_UPDATE` or `ACCOUNT_STATUS`.
    pub notification_type: String,
    /// The WhatsApp template.
    pub template: String,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    /// Attempts since it was (re)queued.
    pub attempts: u32,
    /// Attempts allowed since it was (re)queued.
    pub attempt_limit: u32,
    /// When the next attempt is due, while queued.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

fn status_name(status: NotificationStatus) -> &'static str {
    match status {
        NotificationStatus::Queued => "queued",
        NotificationStatus::Sent => "sent",
        NotificationStatus::Failed => "failed",
    }
}

impl From<&Notification> for NotificationBody {
    fn from(notification: &Notification) -> Self {
        Self {
            notification_id: notification.id().0,
            merchant_id: notification.merchant_id().0,
            notification_type: serde_json::to_value(notification.kind())
                .ok()
                .and_then(|kind| kind.as_str().map(str::to_owned))
                .unwrap_or_default(),
            template: notification.template().to_owned(),
            status: status_name(notification.status()).to_owned(),
            attempts: notification.attempts(),
            attempt_limit: notification.attempt_limit(),
            next_attempt_at: notification.next_attempt_at(),
        }
    }
}

/// Queues a failed WhatsApp notification again with a fresh budget of 4 attempts; the
/// `whatsapp-notifications` queue sends it.
#[utoipa::path(
    post,
    path = "/admin/whatsapp/{id}/resend",
    tag = "admin-whatsapp",
    params(("id" = String, Path, description = "The notification id")),
    security(("admin_jwt" = [])),
    responses(
        (status = 200, description = "Queued again", body = NotificationBody),
        (status = 404, description = "No such notification", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The notification is queued or sent, not failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resend(
    State(state): State<AppState>,
    admin: AdminUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<NotificationBody>, ApiError> {
    let notification_id = parse_id(&id, ApiError::NotificationNotFound)?;
    let notification = state
        .ledger
        .resend_notification(notification_id, &admin.context(&headers))
        .await
        .map_err(admin_error)?;
    tracing::info!(%notification_id, admin = %admin.email, "WhatsApp notification resent");
    Ok(Json(NotificationBody::from(&notification)))
}
