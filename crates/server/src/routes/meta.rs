//! Documents about the service itself: metrics and the OpenAPI description.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;

/// Prometheus text exposition. Open unless `[server] metrics_key_env` is set (then the
/// token it names is required as a bearer token); on the API's address unless `[server]
/// metrics_listen` moves it to an address of its own.
#[utoipa::path(get, path = "/metrics", tag = "meta", operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, description = "`[server] metrics_key_env` is set and the request lacks that token (code `unauthorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`[server] metrics_listen` serves the metrics on another address", body = Problem, content_type = "application/problem+json"),
        doc::AddressLimited,
    ),
    security((), ("bearer" = [])))]
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    app.metrics.admit(&headers)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render()))
}
