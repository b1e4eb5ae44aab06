//! Engagement in SQLite: events attached to leads, rescoring, touchpoints, stage changes
//! and the reports over them. Everything here runs inside the writer's transaction or on
//! a read connection.

use super::apply::apply;
use super::{lead_following_merges, millis};
use crate::{EventOutcome, NewEvent, SourceCount, StageCount, StoreError};
use leadflow_domain::attribute::Touchpoint;
use leadflow_domain::changes;
use leadflow_domain::engagement::{self, Event};
use leadflow_domain::pipeline::Rules;
use leadflow_domain::{Email, EventId, Lead, LeadId};
use leadflow_scoring::{EventView, TransitionError};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use time::OffsetDateTime;

use leadflow_domain::settle::{Identities, MAX_SCORED_EVENTS};

/// The lead and every lead merged into it, for reads that follow merges backwards.
const FAMILY: &str =
    "WITH RECURSIVE family(id) AS (SELECT ?1 UNION SELECT l.id FROM leads l JOIN family f ON l.merged_into = f.id)";

/// Events with no lead yet that name the person one of these ways (an event naming it two
/// ways comes twice; the core counts it once).
pub(super) fn waiting_events(conn: &Connection, who: &Identities) -> Result<Vec<Event>, StoreError> {
    let mut docs: Vec<String> = Vec::new();
    for (column, value) in
        [("email", &who.email), ("external_id", &who.external_id), ("anonymous_id", &who.anonymous_id)]
    {
        if let Some(value) = value {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT doc FROM events WHERE lead_id IS NULL AND {column} = ?1"))?;
            for doc in stmt.query_map([value], |r| r.get::<_, String>(0))? {
                docs.push(doc?);
            }
        }
    }
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

fn scored_events(conn: &Connection, lead: LeadId) -> Result<Vec<EventView>, StoreError> {
    Ok(family_events(conn, lead, MAX_SCORED_EVENTS)?.iter().map(Event::view).collect())
}

pub(super) fn family_events(conn: &Connection, lead: LeadId, limit: usize) -> Result<Vec<Event>, StoreError> {
    // The limit is written into the statement (one cached statement per limit): bound as a
    // parameter, SQLite re-prepared the statement on every execution.
    let docs: Vec<String> = conn
        .prepare_cached(&format!(
            "{FAMILY} SELECT doc FROM events WHERE lead_id IN (SELECT id FROM family) ORDER BY occurred_at DESC LIMIT {limit}"
        ))?
        .query_map([lead.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

pub(super) fn lead_events(conn: &Connection, lead: LeadId, limit: usize) -> Result<Vec<Event>, StoreError> {
    family_events(conn, lead, limit)
}

pub(super) fn touchpoints(conn: &Connection, lead: LeadId) -> Result<Vec<Touchpoint>, StoreError> {
    let docs: Vec<String> = conn
        .prepare_cached(&format!(
            "{FAMILY} SELECT doc FROM touchpoints WHERE lead_id IN (SELECT id FROM family) ORDER BY at, id"
        ))?
        .query_map([lead.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

/// Records events; each lead touched is rescored once, after all of its events in this
/// call are in: the same result as rescoring after each, for a fraction of the work.
pub(super) fn record(
    conn: &Connection,
    events: &[NewEvent],
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Vec<EventOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(events.len());
    let mut touched: BTreeMap<LeadId, Vec<usize>> = BTreeMap::new();
    for (i, new) in events.iter().enumerate() {
        if let Some(key) = &new.idempotency_key {
            let known: Option<(String, Option<String>)> = conn
                .prepare_cached("SELECT id, lead_id FROM events WHERE source = ?1 AND idempotency_key = ?2")?
                .query_row(params![new.source.as_str(), key.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((id, lead)) = known {
                let event_id: EventId = id.parse().map_err(|_| StoreError::Corrupt("event id".into()))?;
                outcomes.push(replayed(conn, event_id, lead)?);
                continue;
            }
        }
        let lead = match find_lead(conn, &new.event)? {
            Named::Erased(lead_id) => {
                outcomes.push(EventOutcome::Erased { lead_id });
                continue;
            }
            Named::Lead(id) => Some(id),
            Named::Nobody => None,
        };
        let mut event = new.event.clone();
        event.lead_id = lead;
        conn.prepare_cached(
            "INSERT INTO events (id, source, idempotency_key, lead_id, email, external_id, anonymous_id, kind, occurred_at, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            event.id.to_string(),
            new.source.as_str(),
            new.idempotency_key.as_ref().map(|k| k.as_str()),
            lead.map(|l| l.to_string()),
            event.identity.email,
            event.identity.external_id,
            event.identity.anonymous_id,
            event.kind,
            millis(event.occurred_at),
            serde_json::to_string(&event)?
        ])?;
        match lead {
            Some(lead) => {
                touched.entry(lead).or_default().push(i);
                outcomes.push(EventOutcome::Waiting { event_id: event.id, replayed: false });
            }
            None => outcomes.push(EventOutcome::Waiting { event_id: event.id, replayed: false }),
        }
    }
    for (lead_id, indexes) in touched {
        let Some(lead) = rescore(conn, lead_id, rules, now)? else { continue };
        if lead.erased_at.is_some() {
            // Nothing of the person is recorded against a tombstone.
            for i in indexes {
                if let Some(EventOutcome::Waiting { event_id, .. }) = outcomes.get(i).cloned() {
                    conn.prepare_cached("DELETE FROM events WHERE id = ?1")?.execute([event_id.to_string()])?;
                    outcomes[i] = EventOutcome::Erased { lead_id: lead.id };
                }
            }
            continue;
        }
        for i in indexes {
            if let Some(EventOutcome::Waiting { event_id, .. }) = outcomes.get(i).cloned() {
                outcomes[i] = EventOutcome::Attached {
                    event_id,
                    lead_id: lead.id,
                    score: lead.score,
                    stage: lead.lifecycle_stage.clone(),
                    replayed: false,
                };
            }
        }
    }
    Ok(outcomes)
}

fn replayed(conn: &Connection, event_id: EventId, lead: Option<String>) -> Result<EventOutcome, StoreError> {
    let lead = match lead {
        Some(id) => {
            let id: LeadId = id.parse().map_err(|_| StoreError::Corrupt("lead id".into()))?;
            lead_following_merges(conn, id)?
        }
        None => None,
    };
    Ok(match lead {
        Some(lead) => EventOutcome::Attached {
            event_id,
            lead_id: lead.id,
            score: lead.score,
            stage: lead.lifecycle_stage,
            replayed: true,
        },
        None => EventOutcome::Waiting { event_id, replayed: true },
    })
}

/// Whom an event names.
enum Named {
    Lead(LeadId),
    /// A lead that was erased: the event is not recorded.
    Erased(LeadId),
    Nobody,
}

/// The surviving lead an event names: by lead id, email, external id, then visitor id.
fn find_lead(conn: &Connection, event: &Event) -> Result<Named, StoreError> {
    let who = &event.identity;
    if let Some(id) = who.lead_id {
        return Ok(match lead_following_merges(conn, id)? {
            Some(lead) if lead.erased_at.is_some() => Named::Erased(lead.id),
            Some(lead) => Named::Lead(lead.id),
            None => Named::Nobody,
        });
    }
    if let Some(email) = who.email.as_deref().and_then(|e| Email::parse(e).ok()) {
        let id: Option<String> = conn
            .prepare_cached("SELECT id FROM leads WHERE email = ?1 AND merged_into IS NULL")?
            .query_row([email.as_str()], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            return Ok(Named::Lead(id.parse().map_err(|_| StoreError::Corrupt("lead id".into()))?));
        }
    }
    if let Some(external) = &who.external_id {
        let id: Option<String> = conn
            .prepare_cached("SELECT id FROM leads WHERE external_id = ?1 AND merged_into IS NULL LIMIT 1")?
            .query_row([external], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            return Ok(Named::Lead(id.parse().map_err(|_| StoreError::Corrupt("lead id".into()))?));
        }
    }
    if let Some(visitor) = &who.anonymous_id {
        let id: Option<String> = conn
            .prepare_cached("SELECT lead_id FROM lead_visitors WHERE anonymous_id = ?1")?
            .query_row([visitor], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            let id: LeadId = id.parse().map_err(|_| StoreError::Corrupt("lead id".into()))?;
            if let Some(lead) = lead_following_merges(conn, id)? {
                return Ok(Named::Lead(lead.id));
            }
        }
    }
    Ok(Named::Nobody)
}

/// Rescores a stored lead from its events; writes it only when something changed. An
/// erased lead keeps the score it had.
pub(super) fn rescore(
    conn: &Connection,
    lead_id: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<Lead>, StoreError> {
    let Some(mut lead) = lead_following_merges(conn, lead_id)? else { return Ok(None) };
    if lead.erased_at.is_some() {
        return Ok(Some(lead));
    }
    let events = scored_events(conn, lead.id)?;
    let expected = lead.version;
    let changes = engagement::rescore(&mut lead, &events, &rules.engagement, now);
    if !changes.is_empty() {
        lead.version += 1;
        apply(conn, &changes::updated(&lead, expected, changes, rules, now))?;
    }
    Ok(Some(lead))
}

pub(super) fn transition(
    conn: &Connection,
    lead_id: LeadId,
    to: &str,
    actor: &str,
    reason: Option<&str>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<Result<Lead, TransitionError>>, StoreError> {
    let Some(mut lead) = lead_following_merges(conn, lead_id)? else { return Ok(None) };
    if lead.erased_at.is_some() {
        return Err(StoreError::Erased(lead.id));
    }
    let expected = lead.version;
    let change = match engagement::transition(&mut lead, to, actor, reason, &rules.engagement, now) {
        Ok(change) => change,
        Err(refused) => return Ok(Some(Err(refused))),
    };
    lead.version += 1;
    apply(conn, &changes::updated(&lead, expected, vec![change], rules, now))?;
    Ok(Some(Ok(lead)))
}

pub(super) fn report_sources(
    conn: &Connection,
    from: OffsetDateTime,
    to: OffsetDateTime,
    latest: bool,
) -> Result<Vec<SourceCount>, StoreError> {
    let (source, campaign) = if latest { ("latest_source", "latest_campaign") } else { ("source", "campaign") };
    let sql = format!(
        "SELECT {source}, {campaign}, count(*) FROM leads
         WHERE merged_into IS NULL AND created_at >= ?1 AND created_at < ?2 AND {source} IS NOT NULL
           AND json_extract(doc, '$.custom.test') IS NOT 1
         GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params![millis(from), millis(to)], |r| {
            Ok(SourceCount { source: r.get(0)?, campaign: r.get(1)?, leads: r.get::<_, i64>(2)?.unsigned_abs() })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn report_stages(
    conn: &Connection,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<StageCount>, StoreError> {
    // Every lead reached the stage it started in; the others from its stage changes.
    let sql = "WITH cohort AS (
             SELECT id, source, campaign FROM leads
             WHERE merged_into IS NULL AND created_at >= ?1 AND created_at < ?2 AND source IS NOT NULL
               AND json_extract(doc, '$.custom.test') IS NOT 1
         ), reached AS (
             SELECT c.id, c.source, c.campaign, s.to_stage AS stage FROM cohort c JOIN stage_changes s ON s.lead_id = c.id
             UNION
             SELECT c.id, c.source, c.campaign, s.from_stage FROM cohort c JOIN stage_changes s ON s.lead_id = c.id
             UNION
             SELECT c.id, c.source, c.campaign, l.stage FROM cohort c JOIN leads l ON l.id = c.id
         )
         SELECT source, campaign, stage, count(DISTINCT id) FROM reached WHERE stage IS NOT NULL
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";
    let rows = conn
        .prepare_cached(sql)?
        .query_map(params![millis(from), millis(to)], |r| {
            Ok(StageCount {
                source: r.get(0)?,
                campaign: r.get(1)?,
                stage: r.get(2)?,
                leads: r.get::<_, i64>(3)?.unsigned_abs(),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Leads stored before these columns existed get them.
pub(super) fn backfill(conn: &Connection) -> Result<(), StoreError> {
    let docs: Vec<String> = conn
        .prepare("SELECT doc FROM leads WHERE merged_into IS NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for doc in &docs {
        let lead: Lead = serde_json::from_str(doc)?;
        conn.execute(
            "UPDATE leads SET external_id = ?2, stage = ?3, source = ?4, campaign = ?5, latest_source = ?6, latest_campaign = ?7 WHERE id = ?1",
            params![
                lead.id.to_string(),
                lead.fields.external_id,
                lead.lifecycle_stage,
                lead.attribution.original.source.as_str(),
                lead.attribution.original.utm_campaign,
                lead.attribution.latest.source.as_str(),
                lead.attribution.latest.utm_campaign
            ],
        )?;
    }
    Ok(())
}
