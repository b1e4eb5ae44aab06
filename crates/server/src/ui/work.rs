//! What an operator clears: dead letters (replayed one by one or by destination and time
//! range), the quarantine (replayed with the configuration as it is now) and the review
//! queue (merge or distinct). Each action is a form post that redirects back to its list
//! with the outcome as a number or a fixed word, never as text from the request.

use super::session::{Act, Nothing, Session};
use super::{UiError, session_page};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Redirect};
use leadflow_app::ingest::{self, Settled};
use leadflow_app::{audit, deliveries, merges};
use leadflow_core::audit::Action;
use leadflow_core::{ReviewId, SourceName, SubmissionId};
use leadflow_store::{Captured, DeliveryStatus, OutboxDelivery, ReplayFilter, ReviewStatus};
use minijinja::Value;
use minijinja::value::Serde;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

const PAGE: usize = 100;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A delivery as the lists show it: no payload (it is the lead's data).
pub fn delivery(d: &OutboxDelivery) -> Value {
    minijinja::context! {
        id => d.id.clone(),
        destination => d.destination.clone(),
        lead_id => d.lead_id.to_string(),
        event_type => d.event_type.clone(),
        status => d.status.as_str(),
        attempts => d.attempts,
        last_status => d.last_status,
        last_error => d.last_error.clone(),
        created_at => rfc3339(d.created_at),
        updated_at => rfc3339(d.updated_at),
    }
}

/// A query value left empty by a form means "not given".
fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
pub struct DeliveriesQuery {
    status: Option<String>,
    destination: Option<String>,
    after: Option<String>,
    /// How many were just replayed.
    replayed: Option<u64>,
}

pub async fn deliveries(
    State(app): State<AppState>,
    session: Session,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Html<String>, UiError> {
    if !session.is_admin() {
        return Err(UiError::Forbidden(
            "Dead letters are shown to admin keys only (as the API lists them): their errors may echo personal data."
                .into(),
        ));
    }
    let status = match given(q.status) {
        None => DeliveryStatus::Dead,
        Some(s) => DeliveryStatus::parse(&s).ok_or_else(|| {
            UiError::BadRequest("status must be dead, needs_data, blocked_consent, pending or delivered".into())
        })?,
    };
    let destination = given(q.destination);
    let page = app.store.list_deliveries(status, destination.clone(), given(q.after), PAGE).await?;
    let next = (page.len() == PAGE).then(|| page.last().map(|d| d.id.clone())).flatten();
    let rows: Vec<Value> = page.iter().map(delivery).collect();
    let destinations: Vec<String> = app.config.destinations.iter().map(|d| d.name.clone()).collect();
    session_page(
        &session,
        "deliveries",
        "deliveries.html",
        minijinja::context! {
            rows, next, destinations, destination,
            status => status.as_str(),
            replayed => q.replayed,
        },
    )
}

fn back_to_dead(destination: Option<&str>, replayed: u64) -> Redirect {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("status", "dead");
    if let Some(d) = destination {
        query.append_pair("destination", d);
    }
    query.append_pair("replayed", &replayed.to_string());
    Redirect::to(&format!("/ui/deliveries?{}", query.finish()))
}

#[derive(Deserialize)]
pub struct ReplayOneIn {
    /// The list to go back to.
    destination: Option<String>,
}

pub async fn replay_delivery(
    State(app): State<AppState>,
    Path(id): Path<String>,
    act: Act<ReplayOneIn>,
) -> Result<Redirect, UiError> {
    let replayed = deliveries::replay_one(&app, &id)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("No delivery has the id {id:?}.")))?;
    let entry = audit::replayed_one(act.session.audit(Action::DeliveryReplayed, &id), &replayed);
    crate::routes::audit::note(&app, [entry]).await;
    Ok(back_to_dead(given(act.form.destination).as_deref(), 1))
}

#[derive(Deserialize)]
pub struct ReplayManyIn {
    destination: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// A `datetime-local` value (`2026-12-06T09:30`, seconds optional) read as UTC, or a full
/// RFC 3339 time.
fn form_time(value: Option<String>, field: &str) -> Result<Option<OffsetDateTime>, UiError> {
    let Some(s) = given(value) else { return Ok(None) };
    if let Ok(t) = OffsetDateTime::parse(&s, &Rfc3339) {
        return Ok(Some(t));
    }
    let minute = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let second = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(&s, &minute)
        .or_else(|_| PrimitiveDateTime::parse(&s, &second))
        .map(|t| Some(t.assume_utc()))
        .map_err(|_| UiError::BadRequest(format!("{field} must be a date and time, e.g. 2026-12-06T09:30 (UTC)")))
}

pub async fn replay_deliveries(State(app): State<AppState>, act: Act<ReplayManyIn>) -> Result<Redirect, UiError> {
    let form = act.form;
    let destination = given(form.destination);
    let filter = ReplayFilter {
        destination: destination.clone(),
        from: form_time(form.from, "from")?,
        to: form_time(form.to, "to")?,
    };
    let replayed = deliveries::replay_many(&app, filter.clone()).await?;
    let entry = audit::replayed_many(act.session.audit(Action::DeliveriesReplayed, ""), &filter, replayed);
    crate::routes::audit::note(&app, [entry]).await;
    Ok(back_to_dead(destination.as_deref(), replayed))
}

#[derive(Deserialize)]
pub struct QuarantineQuery {
    source: Option<String>,
    after: Option<String>,
    /// What the last replay came to: `settled` or `quarantined`.
    replayed: Option<String>,
    /// What the last bulk replay came to.
    settled: Option<u64>,
    stayed: Option<u64>,
}

pub async fn quarantine(
    State(app): State<AppState>,
    session: Session,
    Query(q): Query<QuarantineQuery>,
) -> Result<Html<String>, UiError> {
    let source =
        given(q.source).map(|s| SourceName::parse(&s).map_err(|e| UiError::BadRequest(e.to_string()))).transpose()?;
    let after = given(q.after)
        .map(|s| s.parse::<SubmissionId>().map_err(|_| UiError::BadRequest("after is not a submission id".into())))
        .transpose()?;
    let page = app.store.list_quarantine(source.clone(), after, PAGE).await?;
    let next = (page.len() == PAGE).then(|| page.last().map(|s| s.submission.id.to_string())).flatten();
    let rows: Vec<Value> = page
        .into_iter()
        .map(|s| {
            let payload = serde_json::to_string_pretty(&s.submission.payload).unwrap_or_default();
            minijinja::context! {
                id => s.submission.id.to_string(),
                source => s.submission.source.as_str(),
                received_at => rfc3339(s.submission.received_at),
                errors => Serde(&s.errors),
                payload,
            }
        })
        .collect();
    let replayed = q.replayed.filter(|r| r == "settled" || r == "quarantined");
    let sources: Vec<String> = app.config.sources.iter().map(|s| s.name.as_str().to_owned()).collect();
    // The dry run of a bulk replay: how many it would take, from the backlog counts the
    // health report reads (kept per source beside the quarantine, not counted by a scan).
    let backlog = leadflow_app::health::backlogs(&app).await?.quarantine;
    let waiting: u64 = match &source {
        Some(s) => backlog.get(s.as_str()).copied().unwrap_or(0),
        None => backlog.values().sum(),
    };
    let bulk = q.settled.zip(q.stayed).map(|(settled, stayed)| minijinja::context! { settled, stayed });
    session_page(
        &session,
        "quarantine",
        "quarantine.html",
        minijinja::context! { rows, next, sources, replayed, bulk, waiting, source => source.map(|s| s.as_str().to_owned()) },
    )
}

#[derive(Deserialize)]
pub struct ReplayQuarantineIn {
    source: Option<String>,
}

/// Replays every quarantined submission, or one source's, with the configuration as it
/// is now; the page said beforehand how many that is.
pub async fn replay_quarantine(State(app): State<AppState>, act: Act<ReplayQuarantineIn>) -> Result<Redirect, UiError> {
    let source = given(act.form.source)
        .map(|s| SourceName::parse(&s).map_err(|e| UiError::BadRequest(e.to_string())))
        .transpose()?;
    let (settled, stayed) = ingest::replay_all(&app, source.clone()).await?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(s) = &source {
        query.append_pair("source", s.as_str());
    }
    query.append_pair("settled", &settled.to_string()).append_pair("stayed", &stayed.to_string());
    Ok(Redirect::to(&format!("/ui/quarantine?{}", query.finish())))
}

pub async fn replay_quarantined(
    State(app): State<AppState>,
    Path(id): Path<String>,
    _act: Act<Nothing>,
) -> Result<Redirect, UiError> {
    let missing = || UiError::NotFound(format!("No quarantined submission has the id {id:?}."));
    let sid: SubmissionId = id.parse().map_err(|_| missing())?;
    let settled = ingest::replay(&app, &[sid]).await?.pop().flatten().ok_or_else(missing)?;
    let outcome = match settled {
        Settled::Captured(Captured::Rejected { .. }) => "quarantined",
        _ => "settled",
    };
    Ok(Redirect::to(&format!("/ui/quarantine?replayed={outcome}")))
}

#[derive(Deserialize)]
pub struct ReviewsQuery {
    after: Option<String>,
    /// The decision just made: `merged` or `distinct`.
    decided: Option<String>,
}

pub async fn reviews(
    State(app): State<AppState>,
    session: Session,
    Query(q): Query<ReviewsQuery>,
) -> Result<Html<String>, UiError> {
    let after = given(q.after)
        .map(|s| s.parse::<ReviewId>().map_err(|_| UiError::BadRequest("after is not a review id".into())))
        .transpose()?;
    const REVIEWS: usize = 50;
    let page = app.store.list_reviews(after, REVIEWS).await?;
    let next = (page.len() == REVIEWS).then(|| page.last().map(|r| r.id.to_string())).flatten();
    let mut rows = Vec::with_capacity(page.len());
    for r in page {
        let (lead, candidate) = (app.store.get_lead(r.lead_id).await?, app.store.get_lead(r.candidate_id).await?);
        rows.push(minijinja::context! {
            id => r.id.to_string(),
            score => r.score,
            evidence => Serde(&r.evidence),
            created_at => rfc3339(r.created_at),
            lead => Serde(lead),
            candidate => Serde(candidate),
        });
    }
    let decided = q.decided.filter(|d| d == "merged" || d == "distinct");
    session_page(&session, "reviews", "reviews.html", minijinja::context! { rows, next, decided })
}

#[derive(Deserialize)]
pub struct DecisionIn {
    decision: String,
}

pub async fn decide_review(
    State(app): State<AppState>,
    Path(id): Path<String>,
    act: Act<DecisionIn>,
) -> Result<Redirect, UiError> {
    let decision = match act.form.decision.as_str() {
        "merge" => ReviewStatus::Merged,
        "distinct" => ReviewStatus::Distinct,
        _ => return Err(UiError::BadRequest("decision must be merge or distinct".into())),
    };
    let missing = || UiError::NotFound(format!("No open review has the id {id:?}."));
    let rid: ReviewId = id.parse().map_err(|_| missing())?;
    let decided = merges::decide_review(&app, rid, decision).await?.ok_or_else(missing)?;
    crate::routes::audit::note(&app, audit::review_decided(&decided, act.session.audit(Action::ReviewDecided, "")))
        .await;
    Ok(Redirect::to(&format!("/ui/reviews?decided={}", decided.status.as_str())))
}
