//! CRM feedback in SQLite: recorded in the writer's transaction with the lead changes it
//! makes, the CRM record links deliveries learn, and the disqualification report.

use super::{from_millis, lead_following_merges, millis};
use crate::feedback::{Doc, FINAL_OUTCOMES, Row, completion, decide, only_reason};
use crate::{ReasonCount, StoreError, StoredFeedback};
use leadflow_domain::changes;
use leadflow_domain::erase::CrmRecord;
use leadflow_domain::feedback::{Feedback, FeedbackOutcome, FeedbackResult};
use leadflow_domain::pipeline::Rules;
use leadflow_domain::{FeedbackId, LeadId};
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

fn record_one(
    conn: &Connection,
    fb: &Feedback,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<FeedbackResult, StoreError> {
    if let Some(event) = &fb.event_id {
        let known: Option<(String, Option<String>, String, String)> = conn
            .prepare_cached(&format!(
                "SELECT id, lead_id, outcome, doc FROM feedback
                 WHERE source = ?1 AND event_id = ?2 AND outcome IN {FINAL_OUTCOMES}"
            ))?
            .query_row(params![fb.source, event], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        if let Some((id, lead, outcome, doc)) = known {
            let doc: Doc = serde_json::from_str(&doc)?;
            let lead = match lead {
                Some(id) => lead_following_merges(conn, parse_id(&id, "lead")?)?,
                None => None,
            };
            return Ok(FeedbackResult {
                id: parse_id(&id, "feedback")?,
                outcome: FeedbackOutcome::parse(&outcome).unwrap_or(FeedbackOutcome::Ignored),
                lead_id: lead.as_ref().map(|l| l.id),
                stage: lead.map(|l| l.lifecycle_stage),
                detail: doc.detail,
                allowed: doc.allowed,
                replayed: true,
            });
        }
    }
    let lead = find_lead(conn, fb)?;
    if let Some(erased) = lead.as_ref().filter(|l| l.erased_at.is_some()) {
        return refuse_erased(conn, fb, erased);
    }
    let completed = match &lead {
        Some(l) if only_reason(fb) => complete_waiting(conn, fb, l.id, rules, now)?,
        _ => None,
    };
    let result = match completed {
        Some(result) => result,
        None => settle(conn, fb, lead, rules, now)?,
    };
    conn.prepare_cached(
        "INSERT INTO feedback (id, source, event_id, lead_id, status, has_owner, outcome, occurred_at, received_at, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        fb.id.to_string(),
        fb.source,
        fb.event_id,
        result.lead_id.map(|l| l.to_string()),
        fb.status.map(|s| s.as_str()),
        fb.owner.is_some(),
        result.outcome.as_str(),
        millis(fb.occurred_at),
        millis(fb.received_at),
        serde_json::to_string(&Doc::new(fb, &result))?
    ])?;
    Ok(result)
}

/// Feedback about an erased lead: nothing is applied, and the row keeps the outcome and
/// ids, not what the CRM sent.
fn refuse_erased(conn: &Connection, fb: &Feedback, lead: &leadflow_domain::Lead) -> Result<FeedbackResult, StoreError> {
    let result = crate::feedback::erased(fb, lead);
    conn.prepare_cached(
        "INSERT INTO feedback (id, source, event_id, lead_id, status, has_owner, outcome, occurred_at, received_at, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        fb.id.to_string(),
        fb.source,
        fb.event_id,
        lead.id.to_string(),
        fb.status.map(|s| s.as_str()),
        fb.owner.is_some(),
        result.outcome.as_str(),
        millis(fb.occurred_at),
        millis(fb.received_at),
        serde_json::to_string(&Doc::new(fb, &result).erased())?
    ])?;
    Ok(result)
}

/// Gives `fb`'s reason to the lead's latest feedback from the same source that was
/// refused for want of one (and is not older than a status applied since), settles it
/// again and updates its row. `None` when nothing waits for a reason.
fn complete_waiting(
    conn: &Connection,
    fb: &Feedback,
    lead: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<FeedbackResult>, StoreError> {
    let waiting = conn
        .prepare_cached(
            "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, doc FROM feedback
             WHERE lead_id = ?1 AND source = ?2 AND outcome = 'reason_required' AND occurred_at <= ?3
               AND occurred_at >= coalesce((SELECT max(occurred_at) FROM feedback WHERE lead_id = ?1
                   AND outcome IN ('applied', 'unchanged') AND status IS NOT NULL), occurred_at)
             ORDER BY occurred_at DESC, id DESC LIMIT 1",
        )?
        .query_row(params![lead.to_string(), fb.source, millis(fb.occurred_at)], |r| Ok(row(r)))
        .optional()?;
    let Some(waiting) = waiting else { return Ok(None) };
    let mut waiting = waiting?.into_stored().feedback;
    waiting.reason.clone_from(&fb.reason);
    let settled = settle(conn, &waiting, lead_following_merges(conn, lead)?, rules, now)?;
    conn.prepare_cached("UPDATE feedback SET outcome = ?2, doc = ?3 WHERE id = ?1")?.execute(params![
        waiting.id.to_string(),
        settled.outcome.as_str(),
        serde_json::to_string(&Doc::new(&waiting, &settled))?
    ])?;
    Ok(Some(completion(fb, &waiting, &settled)))
}

/// Applies feedback to `lead` (if found) and says what became of it; the caller stores
/// the row.
fn settle(
    conn: &Connection,
    fb: &Feedback,
    lead: Option<leadflow_domain::Lead>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<FeedbackResult, StoreError> {
    let mut result = FeedbackResult {
        id: fb.id,
        outcome: FeedbackOutcome::Unmatched,
        lead_id: None,
        stage: None,
        detail: None,
        allowed: Vec::new(),
        replayed: false,
    };
    let Some(mut lead) = lead else {
        result.detail = Some("no lead matches".into());
        return Ok(result);
    };
    let latest = |column: &str| -> Result<Option<OffsetDateTime>, StoreError> {
        let ms: Option<i64> = conn
            .prepare_cached(&format!(
                "SELECT max(occurred_at) FROM feedback
                 WHERE lead_id = ?1 AND outcome IN ('applied', 'unchanged') AND {column}"
            ))?
            .query_row([lead.id.to_string()], |r| r.get(0))?;
        Ok(ms.map(from_millis))
    };
    let (latest_status, latest_owner) = (latest("status IS NOT NULL")?, latest("has_owner = 1")?);
    let expected = lead.version;
    let decision = decide(&mut lead, fb, rules, latest_status, latest_owner, now);
    if !decision.changes.is_empty() {
        lead.version += 1;
        super::apply::apply(conn, &changes::updated(&lead, expected, decision.changes, rules, now))?;
    }
    if fb.status.is_some() || fb.owner.is_some() {
        super::routing::taken_up(conn, lead.id, lead.owner.as_deref())?;
    }
    result.outcome = decision.outcome;
    result.detail = decision.detail;
    result.allowed = decision.allowed;
    result.stage = Some(lead.lifecycle_stage.clone());
    result.lead_id = Some(lead.id);
    Ok(result)
}

/// The surviving lead feedback names: by lead id, CRM record id, email, external id.
fn find_lead(conn: &Connection, fb: &Feedback) -> Result<Option<leadflow_domain::Lead>, StoreError> {
    let who = &fb.identity;
    if let Some(id) = who.lead_id
        && let Some(lead) = lead_following_merges(conn, id)?
    {
        return Ok(Some(lead));
    }
    let mut lookups: Vec<(&str, Vec<String>)> = Vec::new();
    if let (Some(destination), Some(crm)) = (&who.crm_destination, &who.crm_id) {
        lookups.push((
            "SELECT lead_id FROM crm_links WHERE destination = ?1 AND crm_id = ?2",
            vec![destination.clone(), crm.clone()],
        ));
    }
    if let Some(email) = &who.email {
        lookups
            .push(("SELECT id FROM leads WHERE email = ?1 AND merged_into IS NULL", vec![email.as_str().to_owned()]));
    }
    if let Some(external) = &who.external_id {
        lookups.push((
            "SELECT id FROM leads WHERE external_id = ?1 AND merged_into IS NULL ORDER BY id LIMIT 1",
            vec![external.clone()],
        ));
    }
    for (sql, args) in lookups {
        let id: Option<String> =
            conn.prepare_cached(sql)?.query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0)).optional()?;
        if let Some(id) = id
            && let Some(lead) = lead_following_merges(conn, parse_id(&id, "lead")?)?
        {
            return Ok(Some(lead));
        }
    }
    Ok(None)
}

/// Links the record and applies the feedback that waited for it (unmatched, naming this
/// record), oldest first; returns how many items were settled.
pub(super) fn link(
    conn: &Connection,
    destination: &str,
    crm_id: &str,
    lead: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO crm_links (destination, crm_id, lead_id, linked_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (destination, crm_id) DO UPDATE SET lead_id = excluded.lead_id, linked_at = excluded.linked_at",
    )?
    .execute(params![destination, crm_id, lead.to_string(), millis(now)])?;
    if let Some(erased) = lead_following_merges(conn, lead)?.filter(|l| l.erased_at.is_some()) {
        // A try in flight when the lead was erased made this record: its erasure must
        // reach it too. Nothing waiting is applied to a tombstone.
        let record = CrmRecord { destination: destination.to_owned(), crm_id: crm_id.to_owned() };
        super::outbox::add_erased_record(conn, erased.id, &record, now)?;
        return Ok(0);
    }
    let waiting: Vec<Result<Row, StoreError>> = conn
        .prepare_cached(
            "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, doc FROM feedback
             WHERE outcome = 'unmatched' AND json_extract(doc, '$.identity.crm_destination') = ?1
               AND json_extract(doc, '$.identity.crm_id') = ?2
             ORDER BY occurred_at, id",
        )?
        .query_map(params![destination, crm_id], |r| Ok(row(r)))?
        .collect::<Result<_, _>>()?;
    let mut settled = 0;
    for waiting in waiting {
        let fb = waiting?.into_stored().feedback;
        let result = settle(conn, &fb, lead_following_merges(conn, lead)?, rules, now)?;
        conn.prepare_cached("UPDATE feedback SET lead_id = ?2, outcome = ?3, doc = ?4 WHERE id = ?1")?.execute(
            params![
                fb.id.to_string(),
                result.lead_id.map(|l| l.to_string()),
                result.outcome.as_str(),
                serde_json::to_string(&Doc::new(&fb, &result))?
            ],
        )?;
        settled += 1;
    }
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
            "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, doc FROM feedback
             WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3",
        )?
        .query_map(params![source, after.map(|a| a.to_string()), i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(row(r))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter().map(|r| r.map(Row::into_stored)).collect()
}

/// A `list` row; a malformed id or document is corruption, not a SQLite error.
fn row(r: &rusqlite::Row<'_>) -> Result<Row, StoreError> {
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
               AND json_extract(l.doc, '$.custom.test') IS NOT 1
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
