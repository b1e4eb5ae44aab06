//! `/v1/sources`: checking a configured source end to end.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::Caller;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use leadflow_app::sources::{self, SourceTest, StageReport};
use leadflow_core::{LeadId, SourceName};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceTestOut {
    pub source: String,
    pub adapter: String,
    /// `adapter`, `prepare` (map, normalize, validate) and `capture`, in order; a stage
    /// that fails ends the run.
    pub stages: Vec<StageOut>,
    /// The test lead, when capture ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<LeadId>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StageOut {
    pub stage: &'static str,
    /// `ok`, `skipped` or `failed`.
    pub status: &'static str,
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl From<SourceTest> for SourceTestOut {
    fn from(t: SourceTest) -> Self {
        let stage = |s: StageReport| StageOut { stage: s.stage, status: s.status, detail: s.detail };
        Self {
            source: t.source,
            adapter: t.adapter,
            stages: t.stages.into_iter().map(stage).collect(),
            lead_id: t.lead_id,
        }
    }
}

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
    sources::test(&app, &source, payload).await?.map(|t| Json(t.into())).ok_or_else(unknown)
}
