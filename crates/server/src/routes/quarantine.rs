//! `/v1/quarantine`: submissions from webhooks and imports that failed validation, kept
//! with their reasons until the mapping, the configuration or the data is fixed and they
//! are replayed.

use crate::AppState;
use crate::error::{ApiError, doc};
use crate::extract::{ApiQuery, Caller, ValidatedJson, not_found, path_id};
use crate::routes::leads::CaptureOut;
use axum::Json;
use axum::extract::{Path, State};
use leadflow_app::ingest;
use leadflow_core::{FieldError, SourceName, SubmissionId};
use leadflow_store::{StoredSubmission, SubmissionStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

const MAX_PAGE: usize = 1000;

#[derive(Serialize, utoipa::ToSchema)]
pub struct QuarantinedOut {
    pub submission_id: SubmissionId,
    pub source: SourceName,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: OffsetDateTime,
    /// Why it was quarantined.
    pub errors: Vec<FieldError>,
    /// The submission exactly as received.
    #[schema(value_type = Object)]
    pub payload: Map<String, Value>,
}

impl From<StoredSubmission> for QuarantinedOut {
    fn from(s: StoredSubmission) -> Self {
        Self {
            submission_id: s.submission.id,
            source: s.submission.source,
            received_at: s.submission.received_at,
            errors: s.errors,
            payload: s.submission.payload,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuarantineQuery {
    /// Only this source's submissions.
    source: Option<String>,
    /// Page after this submission id (ids sort by arrival).
    after: Option<SubmissionId>,
    /// Page size, at most 1000; default 100.
    limit: Option<usize>,
}

fn source_param(source: Option<String>) -> Result<Option<SourceName>, ApiError> {
    source.map(|s| SourceName::parse(&s).map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))).transpose()
}

/// List quarantined submissions, oldest first.
#[utoipa::path(get, path = "/v1/quarantine", tag = "quarantine", operation_id = "list_quarantine", params(QuarantineQuery),
    responses(
        (status = 200, description = "A page of quarantined submissions, oldest first", body = Vec<QuarantinedOut>),
        doc::KeyProblems,
        doc::QueryProblems,
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<QuarantineQuery>,
) -> Result<Json<Vec<QuarantinedOut>>, ApiError> {
    caller.require_read()?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let page = app.store.list_quarantine(source_param(q.source)?, q.after, limit).await?;
    Ok(Json(page.into_iter().map(QuarantinedOut::from).collect()))
}

/// One quarantined submission, with its payload and reasons.
#[utoipa::path(get, path = "/v1/quarantine/{id}", tag = "quarantine", operation_id = "get_quarantined", params(("id" = String, Path, description = "The submission id")),
    responses(
        (status = 200, description = "The submission and why it is quarantined", body = QuarantinedOut),
        doc::KeyProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn show(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<QuarantinedOut>, ApiError> {
    caller.require_read()?;
    let missing = || not_found(&id, "quarantined submission");
    let sid: SubmissionId = path_id(&id, "quarantined submission")?;
    let stored =
        app.store.get_submission(sid).await?.filter(|s| s.status == SubmissionStatus::Rejected).ok_or_else(missing)?;
    Ok(Json(stored.into()))
}

/// Replay one quarantined submission with the current configuration.
#[utoipa::path(post, path = "/v1/quarantine/{id}/replay", tag = "quarantine", operation_id = "replay_quarantined", params(("id" = String, Path, description = "The submission id")),
    responses(
        (status = 200, description = "Settled, or still quarantined with fresh reasons", body = CaptureOut),
        doc::KeyProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn replay_one(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CaptureOut>, ApiError> {
    caller.require_admin()?;
    let missing = || not_found(&id, "quarantined submission");
    let sid: SubmissionId = path_id(&id, "quarantined submission")?;
    let settled = ingest::replay(&app, &[sid]).await?.pop().flatten().ok_or_else(missing)?;
    Ok(Json(CaptureOut::from_settled(settled, true)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReplayOut {
    /// Submissions that settled and left the quarantine.
    pub settled: usize,
    /// Submissions that failed again and stay, with fresh reasons.
    pub still_quarantined: usize,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReplayIn {
    /// Only this source's submissions; every source when left out.
    pub source: Option<String>,
}

/// Replay every quarantined submission, or one source's.
#[utoipa::path(post, path = "/v1/quarantine/replay", tag = "quarantine", operation_id = "replay_quarantine", request_body = ReplayIn,
    responses(
        (status = 200, description = "How many settled and how many stay", body = ReplayOut),
        doc::KeyProblems,
        doc::BodyProblems,
    ),
    security(("bearer" = [])))]
pub async fn replay_all(
    State(app): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<ReplayIn>,
) -> Result<Json<ReplayOut>, ApiError> {
    caller.require_admin()?;
    let source = source_param(body.source)?;
    let (settled, still_quarantined) = ingest::replay_all(&app, source).await?;
    Ok(Json(ReplayOut { settled, still_quarantined }))
}
