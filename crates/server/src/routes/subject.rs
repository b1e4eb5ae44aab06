//! Subject access and retention: `GET /v1/leads/{id}/export`, everything held about the
//! person behind a lead (`leadflow_core::privacy::export` decides the document), and
//! `GET /v1/retention/runs`, what each retention run deleted. Both admin only.

use crate::AppState;
use crate::error::{ApiError, doc};
use crate::extract::{ApiQuery, Caller, not_found, path_id};
use axum::Json;
use axum::extract::{Path, State};
use leadflow_app::subject;
use leadflow_core::LeadId;
use leadflow_core::audit::Action;
use leadflow_core::privacy::export::{Document, Refused};
use leadflow_core::privacy::retention::Run;
use serde::Deserialize;

/// Everything held about the person behind a lead, as one JSON document.
///
/// The lead, every lead merged into it (directly or through others), every raw
/// submission as received, the history, events, touchpoints, deliveries with what was
/// sent and each try, the reviews naming it and the CRMs' feedback about it. An id that
/// was merged away exports its survivor (`requested_id` is the id asked for, `lead.id`
/// the survivor's). A section cut at the row limit is listed in `incomplete`.
#[utoipa::path(get, path = "/v1/leads/{id}/export", tag = "leads", operation_id = "export_lead",
    params(("id" = String, Path, description = "The lead id (a merged-away id exports its survivor)")),
    responses(
        (status = 200, description = "Everything held about the person", body = Document),
        doc::KeyProblems,
        doc::NotFound,
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn export(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Document>, ApiError> {
    caller.require_admin()?;
    let lead_id: LeadId = path_id(&id, "lead")?;
    match subject::export(&app, lead_id).await? {
        Ok(document) => {
            let entry = caller.audit(Action::PersonExported, document.lead.id.to_string());
            super::audit::note(&app, [entry]).await;
            Ok(Json(document))
        }
        Err(Refused::NotFound) => Err(not_found(&id, "lead")),
        Err(Refused::Erased(lead)) => Err(ApiError::erased(lead)),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<usize>,
}

/// Retention runs, newest first: when each ran and what it deleted per kind.
#[utoipa::path(get, path = "/v1/retention/runs", tag = "retention", operation_id = "list_retention_runs", params(RunsQuery),
    responses(
        (status = 200, description = "Runs, newest first", body = Vec<Run>),
        doc::KeyProblems,
        doc::QueryProblems,
    ),
    security(("bearer" = [])))]
pub async fn runs(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Json<Vec<Run>>, ApiError> {
    caller.require_admin()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(app.store.list_retention_runs(limit).await?))
}
