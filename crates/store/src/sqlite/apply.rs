//! Applies the core's [`Change`]s in SQLite, inside the writer's transaction: one
//! statement per change (a lead also replaces its match keys). Nothing here decides.

use super::{millis, outbox};
use crate::StoreError;
use crate::feedback::Doc;
use leadflow_core::changes::{Change, LeadIndex};
use leadflow_core::erase;
use leadflow_core::pipeline::HistoryEntry;
use leadflow_core::{Lead, LeadId, SubmissionId};
use rusqlite::{Connection, params};

pub(super) fn apply(conn: &Connection, changes: &[Change]) -> Result<(), StoreError> {
    changes.iter().try_for_each(|change| apply_one(conn, change))
}

/// Applies one change and writes what it adds to the change feed beside it.
pub(super) fn apply_one(conn: &Connection, change: &Change) -> Result<(), StoreError> {
    write_one(conn, change)?;
    super::feed::append(conn, &leadflow_core::feed::of(change))
}

fn write_one(conn: &Connection, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::Lead { lead, expected, index } => write_lead(conn, lead, *expected, index)?,
        Change::MergedAway { lead, into, at } => {
            conn.prepare_cached("UPDATE leads SET merged_into = ?2, updated_at = ?3 WHERE id = ?1")?
                .execute(params![lead.to_string(), into.to_string(), millis(*at)])?;
            delete_keys(conn, *lead)?;
        }
        Change::Unmerged { lead, at } => {
            conn.prepare_cached("UPDATE leads SET merged_into = NULL, updated_at = ?2 WHERE id = ?1")?
                .execute(params![lead.to_string(), millis(*at)])?;
        }
        Change::Index { lead, index } => {
            delete_keys(conn, *lead)?;
            write_keys(conn, *lead, index)?;
        }
        Change::Resolve { lead } => {
            conn.prepare_cached("INSERT INTO resolve_queue (lead_id) VALUES (?1)")?.execute([lead.to_string()])?;
        }
        Change::History { entry, submission } => insert_history(conn, entry, *submission)?,
        Change::Processed { submission, lead, outcome } => {
            conn.prepare_cached(
                "UPDATE submissions SET status = 'processed', lead_id = ?2, outcome = ?3, error = NULL WHERE id = ?1",
            )?
            .execute(params![submission.to_string(), lead.to_string(), outcome.as_str()])?;
        }
        Change::Touchpoint { lead, touch } => {
            conn.prepare_cached("INSERT INTO touchpoints (lead_id, at, doc) VALUES (?1, ?2, lf_seal(?3))")?
                .execute(params![lead.to_string(), millis(touch.at), serde_json::to_string(touch)?])?;
        }
        Change::Visitor { anonymous_id, lead } => {
            conn.prepare_cached("INSERT OR IGNORE INTO lead_visitors (anonymous_id, lead_id) VALUES (?1, ?2)")?
                .execute(params![anonymous_id, lead.to_string()])?;
        }
        Change::AttachEvents { lead, events, .. } => {
            let mut attach = conn.prepare_cached("UPDATE events SET lead_id = ?1 WHERE id = ?2 AND lead_id IS NULL")?;
            for event in events {
                attach.execute(params![lead.to_string(), event.to_string()])?;
            }
        }
        Change::StageChange { lead, from, to, at, actor, reason } => {
            conn.prepare_cached(
                "INSERT INTO stage_changes (lead_id, from_stage, to_stage, at, actor, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![lead.to_string(), from, to, millis(*at), actor, reason])?;
        }
        Change::Review { id, lead, candidate, score, evidence, at } => {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO duplicate_reviews (id, lead_id, candidate_id, score, evidence, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, lf_seal(?5), 'open', ?6)",
            )?
            .execute(params![
                id.to_string(),
                lead.to_string(),
                candidate.to_string(),
                score,
                serde_json::to_string(evidence)?,
                millis(*at)
            ])?;
        }
        Change::Account(account) => super::accounts::insert(conn, account)?,
        Change::AccountKeys { account, keys } => super::accounts::insert_keys(conn, *account, keys)?,
        Change::Delivery(delivery) => outbox::insert(conn, delivery)?,
        Change::Consent { lead, entries } => super::privacy::insert_entries(conn, *lead, entries)?,
        Change::ConsentReleased { lead, payload, at } => outbox::release_consent(conn, *lead, payload, *at)?,
        Change::RetryNeedsData { lead, destination, payload, at } => {
            outbox::retry_needs_data(conn, *lead, destination, payload, *at)?
        }
        Change::QueueRouting { lead, trigger, source, at } => {
            conn.prepare_cached(
                "INSERT INTO routing_queue (lead_id, trigger, source, queued_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (lead_id) DO NOTHING",
            )?
            .execute(params![lead.to_string(), trigger.as_str(), source, millis(*at)])?;
        }
        // Routing
        Change::RoutingPosition { queue, position } => {
            conn.prepare_cached(
                "INSERT INTO routing_positions (queue, position) VALUES (?1, ?2)
                 ON CONFLICT (queue) DO UPDATE SET position = excluded.position",
            )?
            .execute(params![queue, i64::try_from(*position).unwrap_or(0)])?;
        }
        Change::AssignedToday { rep, day } => {
            conn.prepare_cached(
                "INSERT INTO routing_daily (rep, day, assigned) VALUES (?1, ?2, 1)
                 ON CONFLICT (rep, day) DO UPDATE SET assigned = assigned + 1",
            )?
            .execute(params![rep, day.to_string()])?;
        }
        Change::AccountOwner { account, owner, at } => {
            conn.prepare_cached("UPDATE accounts SET owner = ?1, updated_at = ?2 WHERE id = ?3 AND owner IS NULL")?
                .execute(params![owner, millis(*at), account.to_string()])?;
        }
        Change::Assignment { lead, assignment: a, at } => {
            conn.prepare_cached(
                "INSERT INTO assignments (lead_id, owner, rule, source, stage, assigned_at, sla_due_at, tried)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (lead_id) DO UPDATE SET owner = excluded.owner, rule = excluded.rule,
                     source = excluded.source, stage = excluded.stage, assigned_at = excluded.assigned_at,
                     sla_due_at = excluded.sla_due_at, tried = excluded.tried",
            )?
            .execute(params![
                lead.to_string(),
                a.owner,
                a.rule,
                a.source,
                a.stage,
                millis(*at),
                a.sla_due_at.map(millis),
                serde_json::to_string(&a.tried)?
            ])?;
        }
        Change::SlaStopped { lead, owner } => {
            conn.prepare_cached(
                "UPDATE assignments SET sla_due_at = NULL, owner = coalesce(?2, owner) WHERE lead_id = ?1",
            )?
            .execute(params![lead.to_string(), owner])?;
        }
        // Events and feedback
        Change::Event(new) => {
            let event = &new.event;
            conn.prepare_cached(
                "INSERT INTO events (id, source, idempotency_key, lead_id, email, external_id, anonymous_id, kind, occurred_at, doc)
                 VALUES (?1, ?2, ?3, ?4, lf_blind(lower(trim(?5))), lf_blind(?6), ?7, ?8, ?9, lf_seal(?10))",
            )?
            .execute(params![
                event.id.to_string(),
                new.source.as_str(),
                new.idempotency_key.as_ref().map(|k| k.as_str()),
                event.lead_id.map(|l| l.to_string()),
                event.identity.email,
                event.identity.external_id,
                event.identity.anonymous_id,
                event.kind,
                millis(event.occurred_at),
                serde_json::to_string(event)?
            ])?;
        }
        Change::DropEvent { event } => {
            conn.prepare_cached("DELETE FROM events WHERE id = ?1")?.execute([event.to_string()])?;
        }
        Change::Feedback { feedback: fb, result, scrubbed } => {
            let doc = if *scrubbed { Doc::new(&erase::scrub_feedback(fb), result) } else { Doc::new(fb, result) };
            conn.prepare_cached(
                "INSERT INTO feedback (id, source, event_id, lead_id, status, has_owner, outcome, occurred_at, received_at, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, lf_seal(?10))",
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
                serde_json::to_string(&doc)?
            ])?;
        }
        Change::FeedbackSettled { feedback: fb, result } => {
            conn.prepare_cached("UPDATE feedback SET lead_id = ?2, outcome = ?3, doc = lf_seal(?4) WHERE id = ?1")?
                .execute(params![
                    fb.id.to_string(),
                    result.lead_id.map(|l| l.to_string()),
                    result.outcome.as_str(),
                    serde_json::to_string(&Doc::new(fb, result))?
                ])?;
        }
        Change::CrmLink { record, lead, at } => {
            conn.prepare_cached(
                "INSERT INTO crm_links (destination, crm_id, lead_id, linked_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (destination, crm_id) DO UPDATE SET lead_id = excluded.lead_id, linked_at = excluded.linked_at",
            )?
            .execute(params![record.destination, record.crm_id, lead.to_string(), millis(*at)])?;
        }
        Change::ErasedCrmRecord { lead, record, at } => outbox::add_erased_record(conn, *lead, record, *at)?,
        Change::Erase(write) => super::erase::write(conn, write)?,
    }
    Ok(())
}

/// Writes a lead: its document, the columns matched on, and its match keys. `expected` is
/// the version it had when read (`None` for a new lead): a lead changed since then is a
/// conflict, not a silent overwrite.
pub(super) fn write_lead(
    conn: &Connection,
    lead: &Lead,
    expected: Option<u64>,
    index: &LeadIndex,
) -> Result<(), StoreError> {
    let doc = serde_json::to_string(lead)?;
    let email = index.email.as_deref();
    let version = version_column(lead.version)?;
    let id = lead.id.to_string();
    let account = lead.account_id.map(|a| a.to_string());
    let (original, latest) = (&lead.attribution.original, &lead.attribution.latest);
    let (created, updated) = (millis(lead.created_at), millis(lead.updated_at));
    let columns: [&dyn rusqlite::ToSql; 13] = [
        &id,
        &email,
        &version,
        &updated,
        &doc,
        &account,
        &lead.fields.external_id,
        &lead.lifecycle_stage,
        &original.source.as_str(),
        &original.utm_campaign,
        &latest.source.as_str(),
        &latest.utm_campaign,
        &index.email_key,
    ];
    match expected {
        None => {
            let mut values = columns.to_vec();
            values.push(&created);
            conn.prepare_cached(
                "INSERT INTO leads (id, email, version, updated_at, doc, account_id, external_id, stage, source,
                                    campaign, latest_source, latest_campaign, email_key, created_at)
                 VALUES (?1, lf_blind(?2), ?3, ?4, lf_seal(?5), ?6, lf_blind(?7), ?8, ?9, ?10, ?11, ?12, lf_blind(?13), ?14)",
            )?
            .execute(values.as_slice())?;
        }
        Some(expected) => {
            let expected = version_column(expected)?;
            let mut values = columns.to_vec();
            values.push(&expected);
            let changed = conn
                .prepare_cached(
                    "UPDATE leads SET email = lf_blind(?2), version = ?3, updated_at = ?4, doc = lf_seal(?5), account_id = ?6,
                        external_id = lf_blind(?7), stage = ?8, source = ?9, campaign = ?10, latest_source = ?11,
                        latest_campaign = ?12, email_key = lf_blind(?13)
                     WHERE id = ?1 AND version = ?14 AND merged_into IS NULL",
                )?
                .execute(values.as_slice())?;
            if changed != 1 {
                return Err(StoreError::Conflict(format!("lead {} changed concurrently", lead.id)));
            }
            if index.record.is_some() {
                delete_keys(conn, lead.id)?;
            }
        }
    }
    write_keys(conn, lead.id, index)
}

/// Indexes a lead under its blocking keys, if the index names them: each key's posting,
/// and the lead's match record once.
pub(super) fn write_keys(conn: &Connection, lead: LeadId, index: &LeadIndex) -> Result<(), StoreError> {
    let Some(record) = index.record.as_ref().filter(|_| !index.keys.is_empty()) else { return Ok(()) };
    let id = lead.to_string();
    conn.prepare_cached("INSERT OR REPLACE INTO lead_records (lead_id, record) VALUES (?1, lf_seal(?2))")?
        .execute(params![id, serde_json::to_string(record)?])?;
    // One statement for all of a lead's keys. OR IGNORE cannot abort, so SQLite keeps no
    // statement journal for it.
    let rows = vec!["(lf_key(?), ?)"; index.keys.len()].join(", ");
    let mut insert = conn.prepare_cached(&format!("INSERT OR IGNORE INTO lead_keys (key, lead_id) VALUES {rows}"))?;
    let values: Vec<&str> = index.keys.iter().flat_map(|k| [k.as_str(), id.as_str()]).collect();
    insert.execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

/// A lead is no longer found by its blocking keys.
pub(super) fn delete_keys(conn: &Connection, lead: LeadId) -> Result<(), StoreError> {
    let id = lead.to_string();
    conn.prepare_cached("DELETE FROM lead_keys WHERE lead_id = ?1")?.execute([&id])?;
    conn.prepare_cached("DELETE FROM lead_records WHERE lead_id = ?1")?.execute([&id])?;
    Ok(())
}

pub(super) fn insert_history(
    conn: &Connection,
    entry: &HistoryEntry,
    submission: Option<SubmissionId>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO lead_history (lead_id, at, submission_id, entry) VALUES (?1, ?2, ?3, lf_seal(?4))",
    )?
    .execute(params![
        entry.lead_id.to_string(),
        millis(entry.at),
        submission.map(|s| s.to_string()),
        serde_json::to_string(entry)?
    ])?;
    Ok(())
}

pub(super) fn version_column(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Internal(format!("lead version {v} out of range")))
}
