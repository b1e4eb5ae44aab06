//! Liveness and readiness.

use crate::AppState;
use crate::error::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusOut {
    pub status: &'static str,
}

/// Answers while the process lives.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    responses((status = 200, description = "The process lives", body = StatusOut)))]
pub async fn healthz() -> Json<StatusOut> {
    Json(StatusOut { status: "ok" })
}

/// Answers 200 once the store is reachable and migrated, 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz", responses(
    (status = 200, description = "The store is reachable and migrated", body = StatusOut),
    (status = 503, description = "The store is out of reach", body = Problem, content_type = "application/problem+json"),
))]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<StatusOut>, ApiError> {
    app.store.ping().await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(StatusOut { status: "ready" }))
}
