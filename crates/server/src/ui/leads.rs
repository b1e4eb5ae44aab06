//! Leads: a search, and a lead's page with its whole timeline.

use super::session::Session;
use super::{UiError, session_page};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use leadflow_core::{Email, Lead, LeadId};
use minijinja::Value;
use minijinja::value::Serde;
use serde::Deserialize;

const PAGE: usize = 100;
/// How many leads a search that is not an email address reads at most.
const SCAN: usize = 5_000;

#[derive(Deserialize)]
pub struct LeadsQuery {
    q: Option<String>,
    after: Option<String>,
}

/// What the list shows of a lead.
fn row(lead: &Lead) -> Value {
    let f = &lead.fields;
    minijinja::context! {
        id => lead.id.to_string(),
        first_name => f.first_name.clone(),
        last_name => f.last_name.clone(),
        email => f.email.as_ref().map(|e| e.as_str().to_owned()),
        company => f.company.clone(),
        source => lead.attribution.original.source.as_str(),
        stage => lead.lifecycle_stage.clone(),
        score => lead.score,
        owner => lead.owner.clone(),
        created_at => lead.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    }
}

/// Whether every word of the search is in the lead's name, company, original source,
/// stage or owner (case-insensitive).
fn matches(lead: &Lead, words: &[String]) -> bool {
    let f = &lead.fields;
    let haystack = [
        f.first_name.as_deref(),
        f.last_name.as_deref(),
        f.company.as_deref(),
        Some(lead.attribution.original.source.as_str()),
        Some(lead.lifecycle_stage.as_str()),
        lead.owner.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<&str>>()
    .join(" ")
    .to_lowercase();
    words.iter().all(|w| haystack.contains(w.as_str()))
}

pub async fn list(
    State(app): State<AppState>,
    session: Session,
    Query(query): Query<LeadsQuery>,
) -> Result<Html<String>, UiError> {
    let q = query.q.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let after = query
        .after
        .filter(|a| !a.is_empty())
        .map(|a| a.parse::<LeadId>().map_err(|_| UiError::BadRequest("after is not a lead id".into())))
        .transpose()?;
    let (leads, next, scanned) = if q.is_empty() {
        let page = app.store.list_leads(after, PAGE).await?;
        let next = (page.len() == PAGE).then(|| page.last().map(|l| l.id.to_string())).flatten();
        (page, next, None)
    } else if let Ok(email) = Email::parse(&q) {
        (app.store.find_leads_by_email(&email).await?, None, None)
    } else {
        // A bounded scan: the store has no index on names, companies, stages or owners,
        // so this reads at most SCAN leads (oldest first, from `after`) and filters them
        // here. A search index (SQLite FTS5, or pg_trgm on PostgreSQL, over those fields)
        // would answer it without reading leads; until then a search of a large store
        // says how far it looked, and the next link goes on from there.
        let words: Vec<String> = q.to_lowercase().split_whitespace().map(str::to_owned).collect();
        let (mut found, mut cursor, mut read) = (Vec::new(), after, 0);
        let mut exhausted = false;
        while read < SCAN && found.len() < PAGE {
            let page = app.store.list_leads(cursor, 500).await?;
            read += page.len();
            cursor = page.last().map(|l| l.id);
            exhausted = page.len() < 500;
            found.extend(page.into_iter().filter(|l| matches(l, &words)));
            if exhausted {
                break;
            }
        }
        found.truncate(PAGE);
        let next = (!exhausted).then(|| cursor.map(|c| c.to_string())).flatten();
        (found, next, Some(read))
    };
    let rows: Vec<Value> = leads.iter().map(row).collect();
    session_page(&session, "leads", "leads.html", minijinja::context! { rows, q, next, scanned, scan_limit => SCAN })
}

pub async fn show(
    State(app): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let missing = || UiError::NotFound(format!("No lead has the id {id:?}."));
    let lead_id: LeadId = id.parse().map_err(|_| missing())?;
    // A lead merged away answers with the lead it lives on in.
    let lead = app.store.get_lead(lead_id).await?.ok_or_else(missing)?;
    let moved_from = (lead.id != lead_id).then(|| lead_id.to_string());
    if lead.erased_at.is_some() {
        // Nothing personal is left to show, as the API's 410 says.
        return session_page(
            &session,
            "leads",
            "lead.html",
            minijinja::context! { erased => true, id => lead.id.to_string(), moved_from },
        );
    }
    let history = app.store.lead_history(lead.id).await?;
    let timeline: Vec<Value> = history.iter().map(|h| Value::from(Serde(h))).collect();
    // Deliveries, like the API's outbox, are an admin's to read: their tries keep what
    // the destinations answered.
    let deliveries: Vec<Value> = if session.is_admin() {
        app.store
            .lead_deliveries(lead.id, 100)
            .await?
            .into_iter()
            .map(|(d, tries)| {
                let tries: Vec<Value> = tries.iter().map(|t| Value::from(Serde(t))).collect();
                minijinja::context! {
                    id => d.id, destination => d.destination, event_type => d.event_type,
                    status => d.status.as_str(), attempts => d.attempts, tries,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    session_page(
        &session,
        "leads",
        "lead.html",
        minijinja::context! {
            lead => Serde(&lead),
            summary => row(&lead),
            timeline,
            moved_from,
            deliveries,
            admin => session.is_admin(),
        },
    )
}
