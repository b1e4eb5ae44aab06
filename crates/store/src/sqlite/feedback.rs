//! CRM feedback in SQLite: recorded in the writer's transaction with the lead changes it
//! makes, the CRM record links deliveries learn, and the disqualification report.

use super::apply::apply;
use super::{from_millis, lead_following_merges, millis};
use crate::feedback::{Doc, Row};
use crate::{ReasonCount, StoreError, StoredFeedback};
use leadflow_core::erase::CrmRecord;
use leadflow_core::feedback::record::{self, Candidates, Earlier, Latest};
use leadflow_core::feedback::{Feedback, FeedbackOutcome, FeedbackResult};
use leadflow_core::pipeline::Rules;
use leadflow_core::{FeedbackId, Lead, LeadId};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

fn parse_id<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("{what} id {s:?}")))
}

pub(super) fn record(
    conn: &Connection,
    items: &[Feedback],
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Vec<FeedbackResult>, StoreError> {
    items.iter().map(|fb| record_one(conn, fb, rules, now)).collect()
}

/// load → replay? → load the lead and its feedback → decide → apply, as
/// [`leadflow_core::feedback::record`] lays out.
fn record_one(
    conn: &Connection,
    fb: &Feedback,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<FeedbackResult, StoreError> {
    if let Some(event) = &fb.event_id
        && let Some(replayed) = record::replay(&earlier(conn, &fb.source, event)?)
    {
        return Ok(replayed);
    }
    let lead = candidates(conn, fb)?.pick();
    let (latest, waiting) = match &lead {
        Some(lead) => (latest(conn, lead.id)?, waiting(conn, fb, lead.id)?),
        None => (Latest::default(), None),
    };
    let recorded = record::record(fb, lead, latest, waiting, rules, now);
    apply(conn, &recorded.changes)?;
    Ok(recorded.result)
}

/// The rows recorded earlier with this source and event id.
fn earlier(conn: &Connection, source: &str, event: &str) -> Result<Vec<Earlier>, StoreError> {
    let rows: Vec<(String, Option<String>, String, String)> = conn
        .prepare_cached("SELECT id, lead_id, outcome, lf_open(doc) FROM feedback WHERE source = ?1 AND event_id = ?2")?
        .query_map(params![source, event], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(id, lead, outcome, doc)| {
            let doc: Doc = serde_json::from_str(&doc)?;
            let lead = match lead {
                Some(id) => lead_following_merges(conn, parse_id(&id, "lead")?)?,
                None => None,
            };
            Ok(Earlier {
                id: parse_id(&id, "feedback")?,
                outcome: FeedbackOutcome::parse(&outcome),
                lead,
                detail: doc.detail,
                allowed: doc.allowed,
            })
        })
        .collect()
}

/// The surviving lead each way the feedback names one finds.
fn candidates(conn: &Connection, fb: &Feedback) -> Result<Candidates, StoreError> {
    let who = &fb.identity;
    let by = |sql: &str, args: &[&str]| -> Result<Option<Lead>, StoreError> {
        let id: Option<String> =
            conn.prepare_cached(sql)?.query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0)).optional()?;
        match id {
            Some(id) => lead_following_merges(conn, parse_id(&id, "lead")?),
            None => Ok(None),
        }
    };
    Ok(Candidates {
        by_lead_id: match who.lead_id {
            Some(id) => lead_following_merges(conn, id)?,
            None => None,
        },
        by_crm_record: match (&who.crm_destination, &who.crm_id) {
            (Some(destination), Some(crm)) => {
                by("SELECT lead_id FROM crm_links WHERE destination = ?1 AND crm_id = ?2", &[destination, crm])?
            }
            _ => None,
        },
        by_email: match &who.email {
            Some(email) => {
                by("SELECT id FROM leads WHERE email = lf_blind(?1) AND merged_into IS NULL", &[email.as_str()])?
            }
            None => None,
        },
        by_external_id: match &who.external_id {
            Some(external) => by(
                "SELECT id FROM leads WHERE external_id = lf_blind(?1) AND merged_into IS NULL ORDER BY id LIMIT 1",
                &[external],
            )?,
            None => None,
        },
    })
}

/// When the newest status and owner feedback applied to the lead happened.
fn latest(conn: &Connection, lead: LeadId) -> Result<Latest, StoreError> {
    let latest = |column: &str| -> Result<Option<OffsetDateTime>, StoreError> {
        let ms: Option<i64> = conn
            .prepare_cached(&format!(
                "SELECT max(occurred_at) FROM feedback
                 WHERE lead_id = ?1 AND outcome IN ('applied', 'unchanged') AND {column}"
            ))?
            .query_row([lead.to_string()], |r| r.get(0))?;
        Ok(ms.map(from_millis))
    };
    Ok(Latest { status: latest("status IS NOT NULL")?, owner: latest("has_owner = 1")? })
}

/// The lead's newest feedback from `fb`'s source refused for want of a reason, when the
/// core asks for it.
fn waiting(conn: &Connection, fb: &Feedback, lead: LeadId) -> Result<Option<Feedback>, StoreError> {
    let Some(before) = record::waiting_before(fb) else { return Ok(None) };
    let found = conn
        .prepare_cached(
            "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, lf_open(doc) FROM feedback
             WHERE lead_id = ?1 AND source = ?2 AND outcome = 'reason_required' AND occurred_at <= ?3
             ORDER BY occurred_at DESC, id DESC LIMIT 1",
        )?
        .query_row(params![lead.to_string(), fb.source, millis(before)], |r| Ok(row(r)))
        .optional()?;
    Ok(found.transpose()?.map(|r| r.into_stored().feedback))
}

/// Links the record and settles the feedback that waited for it, as the core decides;
/// returns how many items were settled.
pub(super) fn link(
    conn: &Connection,
    destination: &str,
    crm_id: &str,
    lead_id: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let lead = lead_following_merges(conn, lead_id)?;
    let latest = match &lead {
        Some(lead) => latest(conn, lead.id)?,
        None => Latest::default(),
    };
    let waiting: Vec<Result<Row, StoreError>> = conn
        .prepare_cached(
            "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, lf_open(doc) FROM feedback
             WHERE outcome = 'unmatched' AND json_extract(lf_open(doc), '$.identity.crm_destination') = ?1
               AND json_extract(lf_open(doc), '$.identity.crm_id') = ?2
             ORDER BY occurred_at, id",
        )?
        .query_map(params![destination, crm_id], |r| Ok(row(r)))?
        .collect::<Result<_, _>>()?;
    let waiting = waiting.into_iter().map(|r| r.map(|r| r.into_stored().feedback)).collect::<Result<_, _>>()?;
    let record = CrmRecord { destination: destination.to_owned(), crm_id: crm_id.to_owned() };
    let (settled, changes) = record::link(&record, lead_id, lead, latest, waiting, rules, now);
    apply(conn, &changes)?;
    Ok(settled)
}

pub(super) fn list(
    conn: &Connection,
    source: Option<&str>,
    after: Option<FeedbackId>,
    limit: usize,
) -> Result<Vec<StoredFeedback>, StoreError> {
    let rows: Vec<Result<Row, StoreError>> = conn
        .prepare_cached(
            "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, lf_open(doc) FROM feedback
             WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3",
        )?
        .query_map(params![source, after.map(|a| a.to_string()), i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(row(r))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter().map(|r| r.map(Row::into_stored)).collect()
}

/// A `list` row; a malformed id or document is corruption, not a SQLite error.
pub(super) fn row(r: &rusqlite::Row<'_>) -> Result<Row, StoreError> {
    let id: String = r.get(0)?;
    let lead_id: Option<String> = r.get(3)?;
    let doc: String = r.get(8)?;
    Ok(Row {
        id: parse_id(&id, "feedback")?,
        source: r.get(1)?,
        event_id: r.get(2)?,
        lead_id: lead_id.map(|l| parse_id(&l, "lead")).transpose()?,
        status: r.get(4)?,
        outcome: r.get(5)?,
        occurred_at: from_millis(r.get(6)?),
        received_at: from_millis(r.get(7)?),
        doc: serde_json::from_str(&doc)?,
    })
}

pub(super) fn report_disqualifications(
    conn: &Connection,
    from: OffsetDateTime,
    to: OffsetDateTime,
    stage: &str,
) -> Result<Vec<ReasonCount>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT l.source, l.campaign, s.reason, count(DISTINCT s.lead_id)
             FROM stage_changes s JOIN leads l ON l.id = s.lead_id
             WHERE s.to_stage = ?1 AND s.at >= ?2 AND s.at < ?3 AND l.source IS NOT NULL
               AND json_extract(lf_open(l.doc), '$.custom.test') IS NOT 1
             GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3",
        )?
        .query_map(params![stage, millis(from), millis(to)], |r| {
            Ok(ReasonCount {
                source: r.get(0)?,
                campaign: r.get(1)?,
                reason: r.get(2)?,
                leads: r.get::<_, i64>(3)?.unsigned_abs(),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
