//! `/v1/reports`: leads by original and latest source over a period, and the funnel
//! (how many leads of each source and campaign reached each stage, and the conversion
//! from stage to stage).

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct Period {
    /// RFC 3339; default: 30 days before `to`.
    from: Option<String>,
    /// RFC 3339, exclusive; default: now.
    to: Option<String>,
    /// `original` (default) or `latest` source (sources report only).
    by: Option<String>,
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
#[utoipa::path(get, path = "/v1/reports/sources", tag = "reports", params(Period),
    responses(
        (status = 200, body = SourcesOut),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
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
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FunnelRow {
    pub source: String,
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
    pub rows: Vec<FunnelRow>,
}

/// For leads created in the period: how many of each source and campaign reached each
/// stage, and the conversion from one stage to the next, in the contract's stage order.
#[utoipa::path(get, path = "/v1/reports/funnel", tag = "reports", params(Period),
    responses(
        (status = 200, body = FunnelOut),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn funnel(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Period>,
) -> Result<Json<FunnelOut>, ApiError> {
    caller.require_read()?;
    let (from, to) = period(&q)?;
    let counts = app.store.report_stages(from, to).await?;
    let order: Vec<String> = app.config.engagement.contract.stages().map(str::to_owned).collect();
    let mut rows: Vec<FunnelRow> = Vec::new();
    for c in counts {
        let row = match rows.iter_mut().position(|r| r.source == c.source && r.campaign == c.campaign) {
            Some(i) => &mut rows[i],
            None => {
                rows.push(FunnelRow { source: c.source.clone(), campaign: c.campaign.clone(), stages: Vec::new() });
                let last = rows.len() - 1;
                &mut rows[last]
            }
        };
        row.stages.push(FunnelStage { stage: c.stage, leads: c.leads, conversion: None });
    }
    for row in &mut rows {
        row.stages.sort_by_key(|s| order.iter().position(|o| *o == s.stage).unwrap_or(usize::MAX));
        let mut previous: Option<u64> = None;
        for stage in &mut row.stages {
            stage.conversion = previous.filter(|p| *p > 0).map(|p| stage.leads as f64 / p as f64);
            previous = Some(stage.leads);
        }
    }
    Ok(Json(FunnelOut { from, to, rows }))
}
