//! `/v1/reviews`: possible duplicates waiting for a person to say "the same person"
//! (merge) or "not the same person" (distinct). Decisions are remembered.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{ApiQuery, Caller, ValidatedJson, not_found, path_id};
use axum::Json;
use axum::extract::{Path, State};
use leadflow_app::merges;
use leadflow_core::audit::Action;
use leadflow_core::{Lead, LeadId, ReviewId};
use leadflow_store::{Review, ReviewStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

const MAX_PAGE: usize = 500;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReviewOut {
    pub id: ReviewId,
    /// The newer lead.
    pub lead_id: LeadId,
    /// The lead it may duplicate.
    pub candidate_id: LeadId,
    /// The match score in bits.
    pub score: f64,
    /// Field, comparison level and weight of each piece of evidence.
    #[schema(value_type = Vec<Object>)]
    pub evidence: Vec<leadflow_core::resolve::Evidence>,
    /// `open`, `merged` or `distinct`.
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<OffsetDateTime>,
    /// Both leads as they stand now, side by side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead: Option<Lead>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Lead>,
}

async fn out(app: &AppState, r: Review) -> Result<ReviewOut, ApiError> {
    let lead = app.store.get_lead(r.lead_id).await?;
    let candidate = app.store.get_lead(r.candidate_id).await?;
    Ok(ReviewOut {
        id: r.id,
        lead_id: r.lead_id,
        candidate_id: r.candidate_id,
        score: r.score,
        evidence: r.evidence,
        status: r.status.as_str(),
        created_at: r.created_at,
        decided_at: r.decided_at,
        lead,
        candidate,
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// Page after this review id.
    after: Option<ReviewId>,
    /// Page size, at most 500; default 50.
    limit: Option<usize>,
}

/// Open reviews, oldest first, each with both leads.
#[utoipa::path(get, path = "/v1/reviews", tag = "reviews", operation_id = "list_reviews", params(ReviewQuery),
    responses(
        (status = 200, description = "Open reviews, oldest first", body = Vec<ReviewOut>),
        doc::KeyProblems,
        doc::QueryProblems,
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReviewQuery>,
) -> Result<Json<Vec<ReviewOut>>, ApiError> {
    caller.require_read()?;
    let reviews = app.store.list_reviews(q.after, q.limit.unwrap_or(50).clamp(1, MAX_PAGE)).await?;
    let mut out_list = Vec::with_capacity(reviews.len());
    for r in reviews {
        out_list.push(out(&app, r).await?);
    }
    Ok(Json(out_list))
}

#[derive(Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The same person: the newer lead is merged into the other.
    Merge,
    /// Not the same person; never proposed again.
    Distinct,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DecisionIn {
    pub decision: Decision,
}

/// Decide an open review.
#[utoipa::path(post, path = "/v1/reviews/{id}", tag = "reviews", operation_id = "decide_review", request_body = DecisionIn,
    params(("id" = String, Path, description = "The review id")),
    responses(
        (status = 200, description = "The review as decided", body = ReviewOut),
        doc::KeyProblems,
        doc::BodyProblems,
        (status = 404, description = "No such open review", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn decide(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ValidatedJson(body): ValidatedJson<DecisionIn>,
) -> Result<Json<ReviewOut>, ApiError> {
    caller.require_admin()?;
    let decision = match body.decision {
        Decision::Merge => ReviewStatus::Merged,
        Decision::Distinct => ReviewStatus::Distinct,
    };
    let missing = || not_found(&id, "open review");
    let rid: ReviewId = path_id(&id, "open review")?;
    let decided = merges::decide_review(&app, rid, decision).await?.ok_or_else(missing)?;
    super::audit::note(&app, leadflow_app::audit::review_decided(&decided, caller.audit(Action::ReviewDecided, "")))
        .await;
    Ok(Json(out(&app, decided).await?))
}
