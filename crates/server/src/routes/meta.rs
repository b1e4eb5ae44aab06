//! Documents about the service itself: metrics and the OpenAPI description.

use axum::http::header;
use axum::response::IntoResponse;

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "meta", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String)))]
pub async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render())
}
