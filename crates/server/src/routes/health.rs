//! Liveness and readiness, and integration health (`/v1/health`): what
//! `leadflow_app::health` reads from the stored aggregates.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{ApiQuery, Caller};
use axum::Json;
use axum::extract::{Path, State};
use leadflow_app::alerts;
use leadflow_app::health::{self, DestinationHealth, SourceHealth};
use leadflow_core::{SourceName, SubmissionId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusOut {
    pub status: &'static str,
}

/// Answers while the process lives.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    responses((status = 200, description = "The process lives", body = StatusOut), doc::AddressLimited))]
pub async fn healthz() -> Json<StatusOut> {
    Json(StatusOut { status: "ok" })
}

/// Answers 200 once the store is reachable and migrated, 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz", responses(
    (status = 200, description = "The store is reachable and migrated", body = StatusOut),
    (status = 503, description = "The store is out of reach", body = Problem, content_type = "application/problem+json"),
    doc::AddressLimited,
))]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<StatusOut>, ApiError> {
    app.store.ping().await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(StatusOut { status: "ready" }))
}

/// One bucket of a series.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PointOut {
    /// The bucket's start.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub value: u64,
}

/// A metric per hour over the last 24 hours and per day over the last 90 days.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SeriesOut {
    pub hourly: Vec<PointOut>,
    pub daily: Vec<PointOut>,
}

fn series_out(series: BTreeMap<&'static str, health::Points>) -> BTreeMap<String, SeriesOut> {
    let points = |p: Vec<health::Point>| p.into_iter().map(|p| PointOut { at: p.at, value: p.value }).collect();
    series
        .into_iter()
        .map(|(k, v)| (k.to_owned(), SeriesOut { hourly: points(v.hourly), daily: points(v.daily) }))
        .collect()
}

/// An alert that fires now (alert rules: see `/v1/alerts`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct FiringOut {
    pub id: String,
    /// The rule's kind: error_rate, silence, latency, volume, backlog, pending_fetch.
    pub rule: String,
    /// `source:NAME` or `destination:NAME`.
    pub scope: String,
}

/// Every configured source and destination with its status, counts over the last hour,
/// day and week, and backlog; and the alerts firing now.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthOut {
    pub sources: Vec<SourceHealth>,
    pub destinations: Vec<DestinationHealth>,
    pub alerts: Vec<FiringOut>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SourceDetailOut {
    #[serde(flatten)]
    pub health: SourceHealth,
    /// By metric: received, created, merged, quarantined, spam, rejected, refused.
    pub series: BTreeMap<String, SeriesOut>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DestinationDetailOut {
    #[serde(flatten)]
    pub health: DestinationHealth,
    /// By metric: attempts, delivered, failed, dead, needs_data.
    pub series: BTreeMap<String, SeriesOut>,
}

/// Integration health: each source's and destination's status (`ok`, `warning`,
/// `failing`, `silent`, `paused`), its counts and backlog, and the alerts firing now.
#[utoipa::path(get, path = "/v1/health", tag = "health", operation_id = "get_health",
    responses(
        (status = 200, description = "Every source and destination, and the firing alerts", body = HealthOut),
        doc::KeyProblems,
    ),
    security(("bearer" = [])))]
pub async fn overview(State(app): State<AppState>, caller: Caller) -> Result<Json<HealthOut>, ApiError> {
    caller.require_read()?;
    let (open, firing) = alerts::firing(&app).await?;
    let report = health::report(&app, &firing).await?;
    let alerts =
        open.into_iter().map(|e| FiringOut { id: e.id, rule: e.kind.as_str().to_owned(), scope: e.scope }).collect();
    Ok(Json(HealthOut { sources: report.sources, destinations: report.destinations, alerts }))
}

/// One source: its health and its series per hour (24 hours) and per day (90 days).
#[utoipa::path(get, path = "/v1/health/sources/{name}", tag = "health", operation_id = "get_source_health",
    params(("name" = String, Path, description = "The configured source name")),
    responses(
        (status = 200, description = "The source's health and series", body = SourceDetailOut),
        doc::KeyProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn source(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<SourceDetailOut>, ApiError> {
    caller.require_read()?;
    let (_, firing) = alerts::firing(&app).await?;
    let detail = health::source(&app, &name, &firing)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no source is named {name:?}")))?;
    Ok(Json(SourceDetailOut { health: detail.health, series: series_out(detail.series) }))
}

/// One destination: its health and its series per hour (24 hours) and per day (90 days).
#[utoipa::path(get, path = "/v1/health/destinations/{name}", tag = "health", operation_id = "get_destination_health",
    params(("name" = String, Path, description = "The configured destination name")),
    responses(
        (status = 200, description = "The destination's health and series", body = DestinationDetailOut),
        doc::KeyProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn destination(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<DestinationDetailOut>, ApiError> {
    caller.require_read()?;
    let (_, firing) = alerts::firing(&app).await?;
    let detail = health::destination(&app, &name, &firing)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no destination is named {name:?}")))?;
    Ok(Json(DestinationDetailOut { health: detail.health, series: series_out(detail.series) }))
}

/// A submission waiting in a source's inbox.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PendingOut {
    pub submission_id: SubmissionId,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: OffsetDateTime,
    /// Why settling (or reading it from the provider's API) last failed, if it did.
    pub error: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PendingQuery {
    /// Page after this submission id (ids sort by arrival).
    after: Option<SubmissionId>,
    /// Page size, at most 1000; default 100.
    limit: Option<usize>,
}

/// A source's pending submissions, oldest first: leads a provider announced that wait to
/// be read from its API (Facebook, LinkedIn), a batch source's rows waiting for their
/// batch, or submissions whose settling failed and is retried. Their payloads are not
/// shown: the lead may not be read yet, and what the provider sent is in the inbox.
#[utoipa::path(get, path = "/v1/health/sources/{name}/pending", tag = "health", operation_id = "list_source_pending",
    params(("name" = String, Path, description = "The configured source name"), PendingQuery),
    responses(
        (status = 200, description = "A page of pending submissions, oldest first", body = Vec<PendingOut>),
        doc::KeyProblems,
        doc::QueryProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn pending(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<PendingQuery>,
) -> Result<Json<Vec<PendingOut>>, ApiError> {
    caller.require_read()?;
    let source = SourceName::parse(&name)
        .ok()
        .filter(|s| app.config.source(s).is_some())
        .ok_or_else(|| ApiError::not_found(format!("no source is named {name:?}")))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let page = app.store.list_pending(Some(source), q.after, limit).await?;
    Ok(Json(
        page.into_iter()
            .map(|s| PendingOut {
                submission_id: s.submission.id,
                received_at: s.submission.received_at,
                error: s.errors.first().map(|e| e.message.clone()),
            })
            .collect(),
    ))
}
