//! Reports over the last N days: leads by source and campaign, the funnel by source, and
//! disqualification reasons, and attendance by event, from the same use cases as
//! `/v1/reports`.

use super::session::Session;
use super::{UiError, session_page};
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::Html;
use leadflow_app::reports;
use minijinja::Value;
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Deserialize)]
pub struct ReportsQuery {
    /// The period: the last this many days (default 30, at most 366).
    days: Option<u32>,
}

pub async fn show(
    State(app): State<AppState>,
    session: Session,
    Query(q): Query<ReportsQuery>,
) -> Result<Html<String>, UiError> {
    let days = q.days.unwrap_or(30).clamp(1, 366);
    let to = OffsetDateTime::now_utc();
    let from = to - time::Duration::days(i64::from(days));
    let (sources, funnel, disqualified, attendance) = tokio::try_join!(
        app.store.report_sources(from, to, false),
        reports::funnel(&app, from, to, true),
        reports::disqualifications(&app, from, to),
        reports::attendance(&app, None),
    )?;
    // Attendance is not bound to the period: an event's registrants span months.
    let attendance: Vec<Value> = attendance
        .into_iter()
        .map(|e| {
            let segments: Vec<Value> = e
                .segments
                .into_iter()
                .map(|s| {
                    let stages: Vec<Value> =
                        s.stages.into_iter().map(|(stage, leads)| minijinja::context! { stage, leads }).collect();
                    minijinja::context! { status => s.status, leads => s.leads, minutes => s.minutes, stages }
                })
                .collect();
            minijinja::context! { event => e.event, name => e.name, segments }
        })
        .collect();
    let sources: Vec<Value> = sources
        .into_iter()
        .map(|s| minijinja::context! { source => s.source, campaign => s.campaign, leads => s.leads })
        .collect();
    // Rows reach different stages: the columns are every stage any row reached, in the
    // contract's order (each row is sorted so already), and a row shows none where it has none.
    let mut columns: Vec<String> = Vec::new();
    let order: Vec<&str> = app.config.engagement.contract.stages().collect();
    for r in &funnel.rows {
        for s in &r.stages {
            if !columns.contains(&s.stage) {
                columns.push(s.stage.clone());
            }
        }
    }
    columns.sort_by_key(|c| order.iter().position(|o| o == c).unwrap_or(usize::MAX));
    let rows: Vec<Value> = funnel
        .rows
        .iter()
        .map(|r| {
            let cells: Vec<Value> = columns
                .iter()
                .map(|c| match r.stages.iter().find(|s| &s.stage == c) {
                    Some(s) => minijinja::context! { leads => s.leads, conversion => s.conversion },
                    None => minijinja::context! { leads => 0 },
                })
                .collect();
            minijinja::context! { source => r.source.clone(), cells }
        })
        .collect();
    let disqualified = disqualified.map(|d| {
        let by_reason: Vec<Value> =
            d.by_reason.into_iter().map(|(reason, leads)| minijinja::context! { reason, leads }).collect();
        minijinja::context! { stage => d.stage, total => d.total, by_reason }
    });
    session_page(
        &session,
        "reports",
        "reports.html",
        minijinja::context! {
            days, sources, columns, funnel => rows, handoff => funnel.handoff, disqualified, attendance
        },
    )
}
