//! Engagement in SQLite: events attached to leads, rescoring, touchpoints, stage changes
//! and the reports over them. Everything here runs inside the writer's transaction or on
//! a read connection.

use super::apply::apply;
use super::{MAX_MERGE_HOPS, lead_following_merges, millis};
use crate::{EventOutcome, NewEvent, SourceCount, StageCount, StoreError};
use leadflow_core::attribute::Touchpoint;
use leadflow_core::engagement::record::{self, Found, Known, Recording, Seen};
use leadflow_core::engagement::{self, Event, Unmoved};
use leadflow_core::pipeline::Rules;
use leadflow_core::scoring::{EventView, TransitionError};
use leadflow_core::{Lead, LeadId};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use leadflow_core::settle::{Identities, MAX_SCORED_EVENTS};

/// The lead and every lead merged into it, for reads that follow merges backwards.
const FAMILY: &str =
    "WITH RECURSIVE family(id) AS (SELECT ?1 UNION SELECT l.id FROM leads l JOIN family f ON l.merged_into = f.id)";

/// Events with no lead yet that name the person one of these ways (an event naming it two
/// ways comes twice; the core counts it once).
pub(super) fn waiting_events(conn: &Connection, who: &Identities) -> Result<Vec<Event>, StoreError> {
    let mut docs: Vec<String> = Vec::new();
    // Emails and external ids are stored as blind indexes (see `apply`).
    for (column, value) in [
        ("email = lf_blind(lower(trim(?1)))", &who.email),
        ("external_id = lf_blind(?1)", &who.external_id),
        ("anonymous_id = ?1", &who.anonymous_id),
    ] {
        if let Some(value) = value {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT lf_open(doc) FROM events WHERE lead_id IS NULL AND {column}"))?;
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
            "{FAMILY} SELECT lf_open(doc) FROM events WHERE lead_id IN (SELECT id FROM family) ORDER BY occurred_at DESC LIMIT {limit}"
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
            "{FAMILY} SELECT lf_open(doc) FROM touchpoints WHERE lead_id IN (SELECT id FROM family) ORDER BY at, id"
        ))?
        .query_map([lead.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

/// Records events as the core decides ([`record::Recording`]): each event looked up and
/// written in turn, then each lead touched rescored once.
pub(super) fn record(
    conn: &Connection,
    events: &[NewEvent],
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Vec<EventOutcome>, StoreError> {
    let mut recording = Recording::new();
    for new in events {
        let seen = seen(conn, new)?;
        apply(conn, &recording.place(new, seen))?;
    }
    for lead_id in recording.touched() {
        let lead = lead_following_merges(conn, lead_id)?;
        let events = match &lead {
            Some(lead) => scored_events(conn, lead.id)?,
            None => Vec::new(),
        };
        apply(conn, &recording.rescored(lead_id, lead, &events, rules, now))?;
    }
    Ok(recording.finish())
}

/// What the core's lookup for `new` finds.
fn seen(conn: &Connection, new: &NewEvent) -> Result<Seen, StoreError> {
    let mut seen = Seen::default();
    if let Some(key) = &new.idempotency_key {
        let known: Option<(String, Option<String>)> = conn
            .prepare_cached("SELECT id, lead_id FROM events WHERE source = ?1 AND idempotency_key = ?2")?
            .query_row(params![new.source.as_str(), key.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((id, lead)) = known {
            let lead = match lead {
                Some(id) => lead_following_merges(conn, parse_lead(&id)?)?,
                None => None,
            };
            let event_id = id.parse().map_err(|_| StoreError::Corrupt("event id".into()))?;
            seen.known = Some(Known { event_id, lead });
            // A replay is answered from what is known; nothing else is looked up.
            return Ok(seen);
        }
    }
    let lookup = record::lookup(new);
    if let Some(id) = lookup.lead_id {
        seen.by_lead_id = survivor(conn, id)?;
    }
    if let Some(email) = &lookup.email {
        seen.by_email =
            lead_id(conn, "SELECT id FROM leads WHERE email = lf_blind(?1) AND merged_into IS NULL", email.as_str())?;
    }
    if let Some(external) = &lookup.external_id {
        seen.by_external_id = lead_id(
            conn,
            "SELECT id FROM leads WHERE external_id = lf_blind(?1) AND merged_into IS NULL ORDER BY id LIMIT 1",
            external,
        )?;
    }
    if let Some(visitor) = &lookup.visitor
        && let Some(id) = lead_id(conn, "SELECT lead_id FROM lead_visitors WHERE anonymous_id = ?1", visitor)?
    {
        seen.by_visitor = survivor(conn, id)?.map(|found| found.id);
    }
    Ok(seen)
}

fn lead_id(conn: &Connection, sql: &str, value: &str) -> Result<Option<LeadId>, StoreError> {
    let id: Option<String> = conn.prepare_cached(sql)?.query_row([value], |r| r.get(0)).optional()?;
    id.as_deref().map(parse_lead).transpose()
}

fn parse_lead(id: &str) -> Result<LeadId, StoreError> {
    id.parse().map_err(|_| StoreError::Corrupt("lead id".into()))
}

/// The lead `id` names, followed through merges, without reading its document.
fn survivor(conn: &Connection, id: LeadId) -> Result<Option<Found>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT merged_into, erased_at IS NOT NULL FROM leads WHERE id = ?1")?;
    let mut current = id;
    for _ in 0..MAX_MERGE_HOPS {
        let row: Option<(Option<String>, bool)> =
            stmt.query_row([current.to_string()], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        match row {
            None => return Ok(None),
            Some((Some(next), _)) => current = parse_lead(&next)?,
            Some((None, erased)) => return Ok(Some(Found { id: current, erased })),
        }
    }
    Err(StoreError::Corrupt(format!("lead {id} is merged through more than {MAX_MERGE_HOPS} hops")))
}

/// Rescores a stored lead from its events, as the core decides.
pub(super) fn rescore(
    conn: &Connection,
    lead_id: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<Lead>, StoreError> {
    let Some(mut lead) = lead_following_merges(conn, lead_id)? else { return Ok(None) };
    let events = scored_events(conn, lead.id)?;
    apply(conn, &engagement::rescore_stored(&mut lead, &events, rules, now))?;
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
    match engagement::transition_stored(&mut lead, to, actor, reason, rules, now) {
        Ok(changes) => apply(conn, &changes)?,
        Err(Unmoved::Refused(refused)) => return Ok(Some(Err(refused))),
        Err(Unmoved::Erased(id)) => return Err(StoreError::Erased(id)),
    }
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
           AND json_extract(lf_open(doc), '$.custom.test') IS NOT 1
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
               AND json_extract(lf_open(doc), '$.custom.test') IS NOT 1
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

pub(super) fn report_attendance(
    conn: &Connection,
    event: Option<&str>,
) -> Result<Vec<crate::AttendanceCount>, StoreError> {
    let sql = "SELECT json_extract(a.value, '$.event'), max(json_extract(a.value, '$.name')),
                json_extract(a.value, '$.status'), l.stage, count(*), coalesce(sum(json_extract(a.value, '$.minutes')), 0)
         FROM leads l, json_each(lf_open(l.doc), '$.attendance') a
         WHERE l.merged_into IS NULL AND l.erased_at IS NULL AND l.stage IS NOT NULL
           AND json_extract(lf_open(l.doc), '$.custom.test') IS NOT 1
           AND (?1 IS NULL OR json_extract(a.value, '$.event') = ?1)
         GROUP BY 1, 3, 4 ORDER BY 1, 3, 4";
    let rows = conn
        .prepare_cached(sql)?
        .query_map(params![event], |r| {
            Ok(crate::AttendanceCount {
                event: r.get(0)?,
                name: r.get(1)?,
                status: r.get(2)?,
                stage: r.get(3)?,
                leads: r.get::<_, i64>(4)?.unsigned_abs(),
                minutes: r.get::<_, i64>(5)?.unsigned_abs(),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Leads stored before these columns existed get them.
pub(super) fn backfill(conn: &Connection) -> Result<(), StoreError> {
    let docs: Vec<String> = conn
        .prepare("SELECT lf_open(doc) FROM leads WHERE merged_into IS NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for doc in &docs {
        let lead: Lead = serde_json::from_str(doc)?;
        conn.execute(
            "UPDATE leads SET external_id = lf_blind(?2), stage = ?3, source = ?4, campaign = ?5, latest_source = ?6, latest_campaign = ?7 WHERE id = ?1",
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
