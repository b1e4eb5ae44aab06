//! `/v1/reports`: leads by original and latest source over a period, the funnel (how
//! many leads of each source, or source and campaign, reached each stage, the conversion
//! from stage to stage and from the handoff stage), and disqualifications by source,
//! campaign and reason, so marketing sees which campaigns bring leads sales turns down
//! (`leadflow_app::reports` works them out).

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use leadflow_app::reports;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// RFC 3339; default: 30 days before `to`.
    from: Option<String>,
    /// RFC 3339, exclusive; default: now.
    to: Option<String>,
    /// `original` (default) or `latest` source (sources report only).
    by: Option<String>,
    /// `campaign` (default: a row per source and campaign) or `source` (funnel only).
    group: Option<String>,
}

fn period(q: &Period) -> Result<(OffsetDateTime, OffsetDateTime), ApiError> {
    let parse = |name: &'static str, v: &Option<String>| -> Result<Option<OffsetDateTime>, ApiError> {
        v.as_deref()
            .map(|s| OffsetDateTime::parse(s, &Rfc3339))
            .transpose()
            .map_err(|_| ApiError::bad_request("invalid_query", format!("{name} must be an RFC 3339 time")))
    };
    let to = parse("to", &q.to)?.unwrap_or_else(OffsetDateTime::now_utc);
    let from = parse("from", &q.from)?.unwrap_or(to - time::Duration::days(30));
    if from >= to {
        return Err(ApiError::bad_request("invalid_query", "from must be before to"));
    }
    Ok((from, to))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SourceRow {
    pub source: String,
    pub campaign: Option<String>,
    pub leads: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SourcesOut {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub to: OffsetDateTime,
    /// `original` or `latest`.
    pub by: &'static str,
    pub rows: Vec<SourceRow>,
}

/// Leads created in the period, by original (or latest) source and campaign.
#[utoipa::path(get, path = "/v1/reports/sources", tag = "reports", operation_id = "report_sources", params(Period),
    responses(
        (status = 200, description = "Leads by source and campaign", body = SourcesOut),
        doc::KeyProblems,
        (status = 400, description = "A query parameter does not parse, or the period is empty", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn sources(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Period>,
) -> Result<Json<SourcesOut>, ApiError> {
    caller.require_read()?;
    let (from, to) = period(&q)?;
    let by = match q.by.as_deref() {
        None | Some("original") => "original",
        Some("latest") => "latest",
        Some(_) => return Err(ApiError::bad_request("invalid_query", "by must be original or latest")),
    };
    let rows = app.store.report_sources(from, to, by == "latest").await?;
    let rows = rows.into_iter().map(|r| SourceRow { source: r.source, campaign: r.campaign, leads: r.leads }).collect();
    Ok(Json(SourcesOut { from, to, by, rows }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FunnelStage {
    pub stage: String,
    /// Leads that reached this stage (or went beyond it through it).
    pub leads: u64,
    /// `leads` over the previous stage's, on the contract's main path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion: Option<f64>,
    /// `leads` over the handoff stage's (MQL), for the stages after it: how many handed-off
    /// leads sales accepted, qualified, turned into opportunities and won.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_handoff: Option<f64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FunnelRow {
    pub source: String,
    /// Absent when grouped by source.
    pub campaign: Option<String>,
    pub stages: Vec<FunnelStage>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FunnelOut {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub to: OffsetDateTime,
    /// `campaign` or `source`.
    pub group: &'static str,
    /// The stage leads are handed off to sales in.
    pub handoff: String,
    pub rows: Vec<FunnelRow>,
}

/// For leads created in the period: how many of each source and campaign reached each
/// stage, and the conversion from one stage to the next, in the contract's stage order.
#[utoipa::path(get, path = "/v1/reports/funnel", tag = "reports", operation_id = "report_funnel", params(Period),
    responses(
        (status = 200, description = "The funnel by source (and campaign)", body = FunnelOut),
        doc::KeyProblems,
        (status = 400, description = "A query parameter does not parse, or the period is empty", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn funnel(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Period>,
) -> Result<Json<FunnelOut>, ApiError> {
    caller.require_read()?;
    let (from, to) = period(&q)?;
    let group = match q.group.as_deref() {
        None | Some("campaign") => "campaign",
        Some("source") => "source",
        Some(_) => return Err(ApiError::bad_request("invalid_query", "group must be campaign or source")),
    };
    let funnel = reports::funnel(&app, from, to, group == "source").await?;
    let stage = |s: reports::FunnelStage| FunnelStage {
        stage: s.stage,
        leads: s.leads,
        conversion: s.conversion,
        from_handoff: s.from_handoff,
    };
    let rows = funnel
        .rows
        .into_iter()
        .map(|r| FunnelRow {
            source: r.source,
            campaign: r.campaign,
            stages: r.stages.into_iter().map(stage).collect(),
        })
        .collect();
    let handoff = funnel.handoff;
    Ok(Json(FunnelOut { from, to, group, handoff, rows }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DisqualificationRow {
    pub source: String,
    pub campaign: Option<String>,
    /// From the contract's `disqualify_reasons`.
    pub reason: Option<String>,
    pub leads: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReasonTotal {
    pub reason: Option<String>,
    pub leads: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DisqualificationsOut {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub to: OffsetDateTime,
    /// The contract's disqualified stage.
    pub stage: String,
    /// Leads disqualified in the period.
    pub total: u64,
    /// By original source, campaign and reason; most leads first.
    pub rows: Vec<DisqualificationRow>,
    /// By reason over every source; most leads first.
    pub by_reason: Vec<ReasonTotal>,
}

/// Leads disqualified in the period (by a CRM's feedback or a person), by original source,
/// campaign (`utm_campaign`) and reason.
#[utoipa::path(get, path = "/v1/reports/disqualifications", tag = "reports", operation_id = "report_disqualifications", params(Period),
    responses(
        (status = 200, description = "Disqualifications by source, campaign and reason", body = DisqualificationsOut),
        doc::KeyProblems,
        (status = 400, description = "A query parameter does not parse, or the period is empty", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn disqualifications(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Period>,
) -> Result<Json<DisqualificationsOut>, ApiError> {
    caller.require_read()?;
    let (from, to) = period(&q)?;
    let Some(found) = reports::disqualifications(&app, from, to).await? else {
        return Err(ApiError::bad_request("no_disqualified_stage", "the lifecycle contract has no disqualified stage"));
    };
    let reports::Disqualifications { stage, total, rows, by_reason } = found;
    let rows = rows
        .into_iter()
        .map(|c| DisqualificationRow { source: c.source, campaign: c.campaign, reason: c.reason, leads: c.leads })
        .collect();
    let by_reason = by_reason.into_iter().map(|(reason, leads)| ReasonTotal { reason, leads }).collect();
    Ok(Json(DisqualificationsOut { from, to, stage, total, rows, by_reason }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttendanceQuery {
    /// One event's id (e.g. `zoom:webinar:81234567890`); default: every event.
    event: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StageLeads {
    pub stage: String,
    pub leads: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AttendanceSegment {
    /// `registered`, `attended`, `no_show` or `cancelled`.
    pub status: String,
    pub leads: u64,
    /// Minutes attended, added up.
    pub minutes: u64,
    /// Where these leads stand now, in the contract's stage order.
    pub stages: Vec<StageLeads>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventAttendance {
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub segments: Vec<AttendanceSegment>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AttendanceOut {
    pub events: Vec<EventAttendance>,
}

/// Attendance by event, segmented by status (registered, attended, no-show, cancelled):
/// the leads of each segment, their minutes, and the stage each has reached.
#[utoipa::path(get, path = "/v1/reports/attendance", tag = "reports", operation_id = "report_attendance",
    params(AttendanceQuery),
    responses(
        (status = 200, description = "Attendance by event and status", body = AttendanceOut),
        doc::KeyProblems,
        (status = 400, description = "A query parameter does not parse", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn attendance(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AttendanceQuery>,
) -> Result<Json<AttendanceOut>, ApiError> {
    caller.require_read()?;
    if q.event.as_deref().is_some_and(|e| e.is_empty() || e.len() > 255) {
        return Err(ApiError::bad_request("invalid_query", "event must be 1 to 255 characters"));
    }
    let events = reports::attendance(&app, q.event).await?;
    let events = events
        .into_iter()
        .map(|e| EventAttendance {
            event: e.event,
            name: e.name,
            segments: e
                .segments
                .into_iter()
                .map(|s| AttendanceSegment {
                    status: s.status,
                    leads: s.leads,
                    minutes: s.minutes,
                    stages: s.stages.into_iter().map(|(stage, leads)| StageLeads { stage, leads }).collect(),
                })
                .collect(),
        })
        .collect();
    Ok(Json(AttendanceOut { events }))
}
