//! Health pages: the overview of every source and destination, one page per source and
//! per destination with its series as charts and its recent failures, and the alerts.

use super::charts::{self, Line};
use super::session::{Act, Session};
use super::{UiError, session_page};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use leadflow_app::{alerts, health};
use leadflow_core::SourceName;
use leadflow_core::health::alerts::Episode;
use leadflow_store::DeliveryStatus;
use minijinja::Value;
use minijinja::value::Serde;
use serde::Deserialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// How many days the overview's sparklines show.
const SPARK_DAYS: u32 = 14;
/// How many recent failures an integration's page lists.
const FAILURES: usize = 20;

fn episode(e: &Episode) -> Value {
    Value::from(Serde(serde_json::json!({
        "id": e.id,
        "rule": e.kind.as_str(),
        "scope": e.scope,
        "state": e.state.as_str(),
        "started_at": rfc3339(e.started_at),
        "resolved_at": e.resolved_at.map(rfc3339),
        "acknowledged_at": e.acknowledged_at.map(rfc3339),
        "acknowledged_by": e.acknowledged_by,
        "value": e.value,
        "threshold": e.threshold,
        "message": e.message,
    })))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

pub async fn overview(State(app): State<AppState>, session: Session) -> Result<Html<String>, UiError> {
    let (open, firing) = alerts::firing(&app).await?;
    let overview = health::overview(&app, &firing, SPARK_DAYS).await?;
    let spark = |daily: &BTreeMap<String, Vec<u64>>, name: &str| {
        Value::from_safe_string(charts::sparkline(daily.get(name).map(Vec::as_slice).unwrap_or_default()))
    };
    let sources: Vec<Value> = overview
        .report
        .sources
        .iter()
        .map(|s| minijinja::context! { spark => spark(&overview.source_daily, &s.name), ..Value::from(Serde(s)) })
        .collect();
    let destinations: Vec<Value> = overview
        .report
        .destinations
        .iter()
        .map(|d| minijinja::context! { spark => spark(&overview.destination_daily, &d.name), ..Value::from(Serde(d)) })
        .collect();
    let alerts: Vec<Value> = open.iter().map(episode).collect();
    session_page(
        &session,
        "overview",
        "overview.html",
        minijinja::context! { sources, destinations, alerts, days => SPARK_DAYS },
    )
}

/// The hours and days a detail's series cover, and its charts of `primary` with
/// `failures` over it.
fn charts(
    series: &BTreeMap<&'static str, health::Points>,
    primary: (&'static str, &'static str),
    failures: (&'static str, &'static str),
) -> (Value, Value) {
    let empty = health::Points::default();
    let (p, f) = (series.get(primary.0).unwrap_or(&empty), series.get(failures.0).unwrap_or(&empty));
    let values = |points: &[health::Point]| points.iter().map(|p| p.value).collect::<Vec<u64>>();
    let hours: Vec<OffsetDateTime> = p.hourly.iter().map(|p| p.at).collect();
    let days: Vec<OffsetDateTime> = p.daily.iter().map(|p| p.at).collect();
    let (ph, fh, pd, fd) = (values(&p.hourly), values(&f.hourly), values(&p.daily), values(&f.daily));
    let hourly = charts::bars(
        "per hour, last 24 hours",
        &hours,
        &[Line { class: "s1", label: primary.1, values: &ph }, Line { class: "s2", label: failures.1, values: &fh }],
    );
    let daily = charts::lines(
        "per day, last 90 days",
        &days,
        &[Line { class: "s1", label: primary.1, values: &pd }, Line { class: "s2", label: failures.1, values: &fd }],
    );
    (Value::from_safe_string(hourly), Value::from_safe_string(daily))
}

/// Each metric's total per window, for the counts table.
fn totals(series: &BTreeMap<&'static str, health::Points>) -> Vec<Value> {
    series
        .iter()
        .map(|(metric, p)| {
            let day: u64 = p.hourly.iter().map(|p| p.value).sum();
            let last_hour = p.hourly.last().map_or(0, |p| p.value);
            let week: u64 = p.daily.iter().rev().take(7).map(|p| p.value).sum();
            let quarter: u64 = p.daily.iter().map(|p| p.value).sum();
            minijinja::context! { metric => *metric, last_hour, day, week, quarter }
        })
        .collect()
}

pub async fn source(
    State(app): State<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> Result<Html<String>, UiError> {
    let (_, firing) = alerts::firing(&app).await?;
    let detail = health::source(&app, &name, &firing)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("No source is named {name:?}.")))?;
    let (hourly, daily) = charts(&detail.series, ("received", "received"), ("quarantined", "quarantined"));
    // Configured names parse; one only the counts know may not, and has no quarantine here.
    let quarantine = match SourceName::parse(&name) {
        Ok(source) => app.store.list_quarantine(Some(source), None, FAILURES).await?,
        Err(_) => Vec::new(),
    };
    let quarantine: Vec<Value> = quarantine
        .into_iter()
        .map(|q| {
            minijinja::context! {
                id => q.submission.id.to_string(),
                received_at => rfc3339(q.submission.received_at),
                errors => Serde(q.errors),
            }
        })
        .collect();
    session_page(
        &session,
        "overview",
        "integration.html",
        minijinja::context! {
            kind => "source",
            health => Serde(&detail.health),
            totals => totals(&detail.series),
            hourly, daily, quarantine,
        },
    )
}

pub async fn destination(
    State(app): State<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> Result<Html<String>, UiError> {
    let (_, firing) = alerts::firing(&app).await?;
    let detail = health::destination(&app, &name, &firing)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("No destination is named {name:?}.")))?;
    let (hourly, daily) = charts(&detail.series, ("attempts", "tries"), ("failed", "failed"));
    // Dead letters are shown to admin keys only, as the API lists them.
    let dead: Vec<Value> = if session.is_admin() {
        let page = app.store.list_deliveries(DeliveryStatus::Dead, Some(name.clone()), None, FAILURES).await?;
        page.iter().map(super::work::delivery).collect()
    } else {
        Vec::new()
    };
    session_page(
        &session,
        "overview",
        "integration.html",
        minijinja::context! {
            kind => "destination",
            health => Serde(&detail.health),
            totals => totals(&detail.series),
            hourly, daily, dead,
        },
    )
}

pub async fn alerts(State(app): State<AppState>, session: Session) -> Result<Html<String>, UiError> {
    let episodes = app.store.list_episodes(None, 200).await?;
    let (firing, resolved): (Vec<&Episode>, Vec<&Episode>) =
        episodes.iter().partition(|e| e.state == leadflow_core::health::alerts::State::Firing);
    let firing: Vec<Value> = firing.into_iter().map(episode).collect();
    let resolved: Vec<Value> = resolved.into_iter().map(episode).collect();
    session_page(&session, "alerts", "alerts.html", minijinja::context! { firing, resolved })
}

#[derive(Deserialize)]
pub struct AcknowledgeIn {
    /// Which page to go back to: `overview` or `alerts`.
    #[serde(default)]
    back: String,
}

pub async fn acknowledge(
    State(app): State<AppState>,
    Path(id): Path<String>,
    act: Act<AcknowledgeIn>,
) -> Result<Redirect, UiError> {
    app.store
        .acknowledge_episode(&id, &act.session.key.name, OffsetDateTime::now_utc())
        .await?
        .ok_or_else(|| UiError::NotFound(format!("No alert has the id {id:?}.")))?;
    // A fixed set of places to return to: never a URL from the form.
    Ok(Redirect::to(if act.form.back == "alerts" { "/ui/alerts" } else { "/ui" }))
}
