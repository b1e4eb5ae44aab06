//! Engagement in PostgreSQL: events attached to leads, rescoring, touchpoints, stage
//! changes and the reports over them.
//!
//! Across instances: a lead is rescored only with its row locked (`FOR UPDATE`) and its
//! events read after the lock is granted, so of two calls adding events to one lead the
//! second scores both. Events naming a person by email, external id or visitor id take
//! the same advisory locks a capture of that person takes, so an event is never left
//! waiting for a lead that committed beside it.

use super::Fail;
use super::apply::apply;
use super::sealing::{Blind, Opened};
use super::sql::{MAX_MERGE_HOPS, exec, identity_lock, lead_following_merges, limit, lock_id, opt, rows};
use crate::{EventOutcome, NewEvent, SourceCount, StageCount};
use deadpool_postgres::GenericClient;
use leadflow_core::attribute::Touchpoint;
use leadflow_core::engagement::record::{self, Found, Known, Recording, Seen};
use leadflow_core::engagement::{self, Event, Unmoved};
use leadflow_core::pipeline::Rules;
use leadflow_core::scoring::{EventView, TransitionError};
use leadflow_core::settle::MAX_SCORED_EVENTS;
use leadflow_core::{Email, EventId, Lead, LeadId};
use std::collections::BTreeMap;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// The lead and every lead merged into it, for reads that follow merges backwards. Each
/// step is an index probe (`OFFSET 0` keeps the planner from joining the whole table).
const FAMILY: &str = "WITH RECURSIVE family(id) AS (
    SELECT $1::uuid
    UNION SELECT m.id FROM family f CROSS JOIN LATERAL (SELECT id FROM leads WHERE merged_into = f.id OFFSET 0) m)";

async fn scored_events(c: &impl GenericClient, lead: LeadId) -> Result<Vec<EventView>, Fail> {
    Ok(family_events(c, lead, MAX_SCORED_EVENTS).await?.iter().map(Event::view).collect())
}

pub(super) async fn family_events(c: &impl GenericClient, lead: LeadId, n: usize) -> Result<Vec<Event>, Fail> {
    Ok(families_events(c, &[lead], n).await?.remove(&lead).unwrap_or_default())
}

/// Each lead's events and those of the leads merged into it, newest first, at most `n`
/// a lead: for many leads in one statement.
pub(super) async fn families_events(
    c: &impl GenericClient,
    leads: &[LeadId],
    n: usize,
) -> Result<HashMap<LeadId, Vec<Event>>, Fail> {
    let roots: Vec<Uuid> = leads.iter().map(|l| *l.as_uuid()).collect();
    let found = rows(
        c,
        "WITH RECURSIVE family(root, id) AS (
             SELECT r, r FROM unnest($1::uuid[]) AS r
             UNION SELECT f.root, m.id
             FROM family f CROSS JOIN LATERAL (SELECT id FROM leads WHERE merged_into = f.id OFFSET 0) m)
         SELECT root, doc FROM (
             SELECT f.root, e.doc, e.occurred_at, e.id,
                    row_number() OVER (PARTITION BY f.root ORDER BY e.occurred_at DESC, e.id DESC) AS n
             FROM family f CROSS JOIN LATERAL (
                 SELECT doc, occurred_at, id FROM events WHERE lead_id = f.id
                 ORDER BY occurred_at DESC, id DESC LIMIT $2 OFFSET 0
             ) e
         ) ranked
         WHERE n <= $2
         ORDER BY root, occurred_at DESC, id DESC",
        &[&roots, &limit(n)],
    )
    .await?;
    let mut events: HashMap<LeadId, Vec<Event>> = HashMap::new();
    for row in found {
        let root = LeadId::from(row.try_get::<_, Uuid>(0)?);
        events.entry(root).or_default().push(row.try_get::<_, Opened<Event>>(1)?.0);
    }
    Ok(events)
}

pub(super) async fn lead_events(c: &impl GenericClient, lead: LeadId, n: usize) -> Result<Vec<Event>, Fail> {
    family_events(c, lead, n).await
}

pub(super) async fn touchpoints(c: &impl GenericClient, lead: LeadId) -> Result<Vec<Touchpoint>, Fail> {
    let sql = format!("{FAMILY} SELECT doc FROM touchpoints WHERE lead_id IN (SELECT id FROM family) ORDER BY at, id");
    rows(c, &sql, &[lead.as_uuid()]).await?.iter().map(|r| Ok(r.try_get::<_, Opened<Touchpoint>>(0)?.0)).collect()
}

/// The advisory locks recording `events` takes before it looks anything up: each
/// idempotency key, and each way the events name a person (shared with captures).
/// Sorted and without repeats.
pub(super) fn event_locks(events: &[NewEvent]) -> Vec<i64> {
    let mut locks = Vec::new();
    for new in events {
        if let Some(key) = &new.idempotency_key {
            locks.push(lock_id("event", &format!("{}\0{}", new.source.as_str(), key.as_str())));
        }
        let who = &new.event.identity;
        if let Some(email) = who.email.as_deref().and_then(|e| Email::parse(e).ok()) {
            locks.push(identity_lock("email", email.as_str()));
        }
        if let Some(external) = &who.external_id {
            locks.push(identity_lock("external_id", external));
        }
        if let Some(visitor) = &who.anonymous_id {
            locks.push(identity_lock("anonymous_id", visitor));
        }
    }
    locks.sort_unstable();
    locks.dedup();
    locks
}

/// Records events as the core decides ([`record::Recording`]): each event looked up and
/// written in turn, then each lead touched rescored once, in lead id order, so two calls
/// touching the same leads lock them in the same order. The caller holds [`event_locks`].
pub(super) async fn record(
    c: &impl GenericClient,
    events: &[NewEvent],
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Vec<EventOutcome>, Fail> {
    let mut recording = Recording::new();
    for new in events {
        let seen = seen(c, new).await?;
        apply(c, &recording.place(new, seen)).await?;
    }
    for lead_id in recording.touched() {
        // Locked before its events are read: a concurrent call that added events to it
        // scores after this one commits, and then reads them all. A lead erased while
        // this call waited for the lock gets none of them.
        let lead = lead_following_merges(c, lead_id, true).await?;
        let events = match &lead {
            Some(lead) => scored_events(c, lead.id).await?,
            None => Vec::new(),
        };
        apply(c, &recording.rescored(lead_id, lead, &events, rules, now)).await?;
    }
    Ok(recording.finish())
}

/// What the core's lookup for `new` finds.
async fn seen(c: &impl GenericClient, new: &NewEvent) -> Result<Seen, Fail> {
    let mut seen = Seen::default();
    if let Some(key) = &new.idempotency_key {
        let known = opt(
            c,
            "SELECT id, lead_id FROM events WHERE source = $1 AND idempotency_key = $2",
            &[&new.source.as_str(), &key.as_str()],
        )
        .await?;
        if let Some(row) = known {
            let lead = match row.try_get::<_, Option<Uuid>>(1)? {
                Some(id) => lead_following_merges(c, LeadId::from(id), false).await?,
                None => None,
            };
            seen.known = Some(Known { event_id: EventId::from(row.try_get::<_, Uuid>(0)?), lead });
            // A replay is answered from what is known; nothing else is looked up.
            return Ok(seen);
        }
    }
    let lookup = record::lookup(new);
    if let Some(id) = lookup.lead_id {
        seen.by_lead_id = survivor(c, id).await?;
    }
    if let Some(email) = &lookup.email {
        seen.by_email =
            lead_id(c, "SELECT id FROM leads WHERE email = $1 AND merged_into IS NULL", &Blind(email.as_str())).await?;
    }
    if let Some(external) = &lookup.external_id {
        seen.by_external_id = lead_id(
            c,
            "SELECT id FROM leads WHERE external_id = $1 AND merged_into IS NULL ORDER BY id LIMIT 1",
            &Blind(external),
        )
        .await?;
    }
    if let Some(visitor) = &lookup.visitor
        && let Some(id) = lead_id(c, "SELECT lead_id FROM lead_visitors WHERE anonymous_id = $1", visitor).await?
    {
        seen.by_visitor = survivor(c, id).await?.map(|found| found.id);
    }
    Ok(seen)
}

async fn lead_id(
    c: &impl GenericClient,
    sql: &str,
    value: &(dyn tokio_postgres::types::ToSql + Sync),
) -> Result<Option<LeadId>, Fail> {
    Ok(opt(c, sql, &[value]).await?.map(|row| row.try_get::<_, Uuid>(0)).transpose()?.map(LeadId::from))
}

/// The lead `id` names, followed through merges, without reading its document.
async fn survivor(c: &impl GenericClient, id: LeadId) -> Result<Option<Found>, Fail> {
    let mut current = *id.as_uuid();
    for _ in 0..MAX_MERGE_HOPS {
        let row = opt(c, "SELECT merged_into, erased_at IS NOT NULL FROM leads WHERE id = $1", &[&current]).await?;
        let Some(row) = row else { return Ok(None) };
        match row.try_get::<_, Option<Uuid>>(0)? {
            Some(next) => current = next,
            None => return Ok(Some(Found { id: LeadId::from(current), erased: row.try_get(1)? })),
        }
    }
    Err(crate::StoreError::Corrupt(format!("lead {id} is merged through more than {MAX_MERGE_HOPS} hops")).into())
}

/// Rescores a stored lead from its events, as the core decides. The lead's row is locked
/// before its events are read (see [`record`]).
pub(super) async fn rescore(
    c: &impl GenericClient,
    lead_id: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<Lead>, Fail> {
    let Some(mut lead) = lead_following_merges(c, lead_id, true).await? else { return Ok(None) };
    let events = scored_events(c, lead.id).await?;
    apply(c, &engagement::rescore_stored(&mut lead, &events, rules, now)).await?;
    Ok(Some(lead))
}

pub(super) async fn transition(
    c: &impl GenericClient,
    lead_id: LeadId,
    to: &str,
    actor: &str,
    reason: Option<&str>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<Result<Lead, TransitionError>>, Fail> {
    let Some(mut lead) = lead_following_merges(c, lead_id, true).await? else { return Ok(None) };
    match engagement::transition_stored(&mut lead, to, actor, reason, rules, now) {
        Ok(changes) => apply(c, &changes).await?,
        Err(Unmoved::Refused(refused)) => return Ok(Some(Err(refused))),
        Err(Unmoved::Erased(id)) => return Err(crate::StoreError::Erased(id).into()),
    }
    Ok(Some(Ok(lead)))
}

fn count(n: i64) -> u64 {
    n.unsigned_abs()
}

pub(super) async fn report_sources(
    c: &impl GenericClient,
    from: OffsetDateTime,
    to: OffsetDateTime,
    latest: bool,
) -> Result<Vec<SourceCount>, Fail> {
    let (source, campaign) = if latest { ("latest_source", "latest_campaign") } else { ("source", "campaign") };
    // `COLLATE "C"`: the order SQLite gives, whatever the database's collation.
    let sql = format!(
        "SELECT {source}, {campaign}, count(*) FROM leads
         WHERE merged_into IS NULL AND created_at >= $1 AND created_at < $2 AND {source} IS NOT NULL
           AND NOT test
         GROUP BY 1, 2 ORDER BY 3 DESC, {source} COLLATE \"C\", {campaign} COLLATE \"C\" NULLS FIRST"
    );
    rows(c, &sql, &[&from, &to])
        .await?
        .iter()
        .map(|r| Ok(SourceCount { source: r.try_get(0)?, campaign: r.try_get(1)?, leads: count(r.try_get(2)?) }))
        .collect()
}

pub(super) async fn report_stages(
    c: &impl GenericClient,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<StageCount>, Fail> {
    // Every lead reached the stage it started in; the others from its stage changes.
    let sql = "WITH cohort AS (
             SELECT id, source, campaign FROM leads
             WHERE merged_into IS NULL AND created_at >= $1 AND created_at < $2 AND source IS NOT NULL
               AND NOT test
         ), reached AS (
             SELECT c.id, c.source, c.campaign, s.to_stage AS stage FROM cohort c JOIN stage_changes s ON s.lead_id = c.id
             UNION
             SELECT c.id, c.source, c.campaign, s.from_stage FROM cohort c JOIN stage_changes s ON s.lead_id = c.id
             UNION
             SELECT c.id, c.source, c.campaign, l.stage FROM cohort c JOIN leads l ON l.id = c.id
         )
         SELECT source, campaign, stage, count(DISTINCT id) FROM reached WHERE stage IS NOT NULL
         GROUP BY 1, 2, 3 ORDER BY source COLLATE \"C\", campaign COLLATE \"C\" NULLS FIRST, stage COLLATE \"C\"";
    rows(c, sql, &[&from, &to])
        .await?
        .iter()
        .map(|r| {
            Ok(StageCount {
                source: r.try_get(0)?,
                campaign: r.try_get(1)?,
                stage: r.try_get(2)?,
                leads: count(r.try_get(3)?),
            })
        })
        .collect()
}

/// An attendance report's line: event, status, stage.
type Group = (String, &'static str, String);
/// The greatest name, the entries and the minutes.
type Sums = (Option<String>, u64, u64);

/// Attendance by event, status and stage, over surviving leads that are not test leads.
/// Added up here, not in SQL: the attendance is inside the lead's document, which may be
/// sealed.
pub(super) async fn report_attendance(
    c: &impl GenericClient,
    event: Option<&str>,
) -> Result<Vec<crate::AttendanceCount>, Fail> {
    let found = rows(
        c,
        "SELECT stage, doc FROM leads WHERE merged_into IS NULL AND erased_at IS NULL AND stage IS NOT NULL AND NOT test",
        &[],
    )
    .await?;
    // In byte order, as SQLite sorts.
    let mut counts: BTreeMap<Group, Sums> = BTreeMap::new();
    for row in &found {
        let stage: String = row.try_get(0)?;
        let Opened(lead): Opened<Lead> = row.try_get(1)?;
        for a in lead.attendance.into_iter().filter(|a| event.is_none_or(|e| e == a.event)) {
            let count = counts.entry((a.event, a.status.as_str(), stage.clone())).or_default();
            count.0 = count.0.take().max(a.name);
            count.1 += 1;
            count.2 += u64::from(a.minutes);
        }
    }
    Ok(counts
        .into_iter()
        .map(|((event, status, stage), (name, leads, minutes))| crate::AttendanceCount {
            event,
            name,
            status: status.to_owned(),
            stage,
            leads,
            minutes,
        })
        .collect())
}

/// Leads stored before these columns existed get them.
pub(super) async fn backfill(c: &impl GenericClient) -> Result<(), Fail> {
    for row in rows(c, "SELECT doc FROM leads WHERE merged_into IS NULL", &[]).await? {
        let Opened(lead): Opened<Lead> = row.try_get(0)?;
        exec(
            c,
            "UPDATE leads SET external_id = $2, stage = $3, source = $4, campaign = $5, latest_source = $6,
                 latest_campaign = $7
             WHERE id = $1",
            &[
                lead.id.as_uuid(),
                &lead.fields.external_id,
                &lead.lifecycle_stage,
                &lead.attribution.original.source.as_str(),
                &lead.attribution.original.utm_campaign,
                &lead.attribution.latest.source.as_str(),
                &lead.attribution.latest.utm_campaign,
            ],
        )
        .await?;
    }
    Ok(())
}
