//! `/v1/sources`: checking a configured source end to end.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::Caller;
use crate::source_test::{self, SourceTestOut};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use leadflow_core::SourceName;
use serde_json::Value;

/// Sends a test lead through the source: its adapter, map → normalize → validate, and
/// capture. The body is optional: a payload in the source's own shape (the provider's,
/// for a webhook source); without one a synthetic lead is used. The lead created is real
/// and carries `custom.test = true`.
#[utoipa::path(post, path = "/v1/sources/{name}/test", tag = "sources", operation_id = "test_source",
    params(("name" = String, Path, description = "A configured source")),
    request_body(content = Option<Object>, description = "Optional payload in the source's shape", content_type = "application/json"),
    responses(
        (status = 200, description = "What each stage made of the test lead", body = SourceTestOut),
        doc::KeyProblems,
        (status = 400, description = "The body is neither empty nor a JSON object (code `malformed_json`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No source has that name", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the configured limit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn test(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<SourceTestOut>, ApiError> {
    caller.require_admin()?;
    let unknown = || ApiError::not_found(format!("no source is named {name:?}"));
    let source = SourceName::parse(&name).map_err(|_| unknown())?;
    let payload = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => Some(map),
            _ => return Err(ApiError::bad_request("malformed_json", "the body must be a JSON object, or empty")),
        }
    };
    source_test::run(&app.store, &app.config, &source, payload).await?.map(Json).ok_or_else(unknown)
}
