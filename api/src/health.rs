//! `GET /health` (the process answers) and `GET /health/ready` (it can do its job, see
//! [`crate::readiness`]). Not ready is a 503 with the failing checks.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::readiness::{Readiness, readiness};
use crate::state::AppState;

/// Liveness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Alive {
    /// Always `alive`.
    pub status: String,
}

/// The process is up and answering.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Alive))
)]
pub async fn alive() -> Json<Alive> {
    Json(Alive {
        status: "alive".into(),
    })
}

/// PostgreSQL, NATS, relay lag and projection lag within bounds.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; the failing checks say why", body = Readiness),
    )
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let readiness = readiness(
        state.pool(),
        &state.config.readiness,
        &state.readiness_checks,
    )
    .await;
    let status = if readiness.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
