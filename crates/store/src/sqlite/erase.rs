//! Erasure in SQLite: one writer transaction turns the lead and every lead merged into it
//! into tombstones and scrubs or deletes every row that holds the person's data (see
//! [`Store::erase_lead`](crate::Store::erase_lead), where each table's treatment is the
//! same on both backends).

use super::apply::insert_history;
use super::{lead_following_merges, lead_from_doc, millis, outbox};
use crate::erase::{blank_report, json_string};
use crate::feedback::Doc;
use crate::{ErasureCounts, ErasureReceipt, StoreError};
use leadflow_core::attribute::Touchpoint;
use leadflow_core::erase::{self, CrmRecord, Identifiers};
use leadflow_core::pipeline::{HistoryEntry, LeadEvent, Rules};
use leadflow_core::{AccountId, Lead, LeadId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// In order: find the family and every way the person was named (their leads, the
/// snapshots in their history, their visitor ids and CRM records); refuse while an import
/// is unfinished; write the tombstones and drop an account left empty; scrub or delete,
/// table by table; then write the `erased` history entry and its deliveries.
pub(super) fn erase(
    conn: &Connection,
    id: LeadId,
    actor: &str,
    reason: Option<&str>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<ErasureReceipt>, StoreError> {
    let Some(survivor) = lead_following_merges(conn, id)? else { return Ok(None) };
    let family = family(conn, &survivor)?;
    let merged_ids: Vec<LeadId> = family.iter().skip(1).map(|l| l.id).collect();
    if let Some(at) = survivor.erased_at {
        return Ok(Some(ErasureReceipt {
            lead_id: survivor.id,
            erased_at: at,
            merged_ids,
            already_erased: true,
            tables: Vec::new(),
            destinations: Vec::new(),
        }));
    }
    let unfinished: Option<String> = conn
        .query_row(
            "SELECT id FROM imports WHERE status IN ('queued', 'running') ORDER BY created_at LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(import) = unfinished {
        return Err(StoreError::Conflict(format!(
            "import {import} is not finished and its stored file may hold this person's row; erase once it has finished"
        )));
    }
    let ids: Vec<String> = family.iter().map(|l| l.id.to_string()).collect();
    let mut who = Identifiers::default();
    for lead in &family {
        who.add_lead(lead);
    }
    let mut history: Vec<(i64, HistoryEntry)> = Vec::new();
    for id in &ids {
        let rows: Vec<(i64, String)> = conn
            .prepare_cached("SELECT id, entry FROM lead_history WHERE lead_id = ?1")?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (row, entry) in rows {
            history.push((row, serde_json::from_str(&entry)?));
        }
    }
    for (_, entry) in &history {
        who.add_event(&entry.event);
    }
    let mut visitors = BTreeSet::new();
    let mut crm_records = BTreeSet::new();
    for id in &ids {
        let mut found = conn.prepare_cached("SELECT anonymous_id FROM lead_visitors WHERE lead_id = ?1")?;
        for visitor in found.query_map([id], |r| r.get::<_, String>(0))? {
            visitors.insert(visitor?);
        }
        let mut links = conn.prepare_cached("SELECT destination, crm_id FROM crm_links WHERE lead_id = ?1")?;
        for link in links.query_map([id], |r| Ok(CrmRecord { destination: r.get(0)?, crm_id: r.get(1)? }))? {
            crm_records.insert(link?);
        }
    }

    let mut counts = ErasureCounts::default();
    let at = millis(now);
    let mut accounts: BTreeSet<AccountId> = BTreeSet::new();
    let mut tombstone = None;
    for lead in &family {
        accounts.extend(lead.account_id);
        let t = erase::tombstone(lead, now);
        conn.prepare_cached(
            "UPDATE leads SET email = NULL, email_key = NULL, external_id = NULL, account_id = NULL, version = ?2, updated_at = ?3,
                 doc = ?4, erased_at = ?3
             WHERE id = ?1",
        )?
        .execute(params![
            t.id.to_string(),
            super::apply::version_column(t.version)?,
            at,
            serde_json::to_string(&t)?
        ])?;
        counts.scrubbed("leads", 1);
        if t.id == survivor.id {
            tombstone = Some(t);
        }
    }
    let tombstone = tombstone.ok_or_else(|| StoreError::Internal("the survivor is not in its family".into()))?;
    // An account left without leads existed only for this person: its name and domains
    // came from their company and email.
    for account in accounts {
        let account = account.to_string();
        let used: bool =
            conn.query_row("SELECT EXISTS (SELECT 1 FROM leads WHERE account_id = ?1)", [&account], |r| r.get(0))?;
        if !used {
            let keys = conn.prepare_cached("DELETE FROM account_keys WHERE account_id = ?1")?.execute([&account])?;
            counts.deleted("account_keys", keys as u64);
            let gone = conn.prepare_cached("DELETE FROM accounts WHERE id = ?1")?.execute([&account])?;
            counts.deleted("accounts", gone as u64);
        }
    }

    for id in &ids {
        let n = conn
            .prepare_cached(
                "UPDATE submissions SET payload = '{}', idempotency_key = NULL, fingerprint = NULL, error = NULL WHERE lead_id = ?1",
            )?
            .execute([id])?;
        counts.scrubbed("submissions", n as u64);
    }
    // Submissions of the person never tied to a lead: quarantined, or not settled yet.
    for email in &who.emails {
        let n = conn
            .prepare_cached(
                "DELETE FROM submissions WHERE lead_id IS NULL AND status IN ('pending', 'rejected')
                   AND instr(lower(payload), ?1) > 0",
            )?
            .execute([json_string(email)])?;
        counts.deleted("submissions", n as u64);
    }

    for (row, entry) in history {
        let before = serde_json::to_string(&entry)?;
        let scrubbed = HistoryEntry { event: erase::scrub_event(entry.event), ..entry };
        let after = serde_json::to_string(&scrubbed)?;
        if after != before {
            conn.prepare_cached("UPDATE lead_history SET entry = ?2 WHERE id = ?1")?.execute(params![row, after])?;
            counts.scrubbed("lead_history", 1);
        }
    }

    for id in &ids {
        let n = conn.prepare_cached("DELETE FROM lead_keys WHERE lead_id = ?1")?.execute([id])?;
        counts.deleted("lead_keys", n as u64);
        let n = conn.prepare_cached("DELETE FROM lead_visitors WHERE lead_id = ?1")?.execute([id])?;
        counts.deleted("lead_visitors", n as u64);
        let n = conn.prepare_cached("DELETE FROM events WHERE lead_id = ?1")?.execute([id])?;
        counts.deleted("events", n as u64);
    }
    // Events of the person still waiting to be tied to a lead.
    let waiting = [
        ("lower(trim(email)) = ?1", &who.emails),
        ("external_id = ?1", &who.external_ids),
        ("anonymous_id = ?1", &visitors),
    ];
    for (condition, values) in waiting {
        for value in values {
            let sql = format!("DELETE FROM events WHERE lead_id IS NULL AND {condition}");
            let n = conn.prepare_cached(&sql)?.execute([value])?;
            counts.deleted("events", n as u64);
        }
    }

    for id in &ids {
        let rows: Vec<(i64, String)> = conn
            .prepare_cached("SELECT id, doc FROM touchpoints WHERE lead_id = ?1")?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (row, doc) in rows {
            let touch: Touchpoint = serde_json::from_str(&doc)?;
            let scrubbed = serde_json::to_string(&erase::scrub_touchpoint(&touch))?;
            if scrubbed != doc {
                conn.prepare_cached("UPDATE touchpoints SET doc = ?2 WHERE id = ?1")?
                    .execute(params![row, scrubbed])?;
                counts.scrubbed("touchpoints", 1);
            }
        }
        let n = conn
            .prepare_cached("DELETE FROM duplicate_reviews WHERE lead_id = ?1 OR candidate_id = ?1")?
            .execute([id])?;
        counts.deleted("duplicate_reviews", n as u64);
    }

    scrub_feedback(conn, &ids, &who, &crm_records, &mut counts)?;
    // Where the person's data went (or may have: a try failed, or is in flight), before
    // those deliveries are cancelled: a destination that cannot find its record says so.
    let mut delivered_to = BTreeSet::new();
    for id in &ids {
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT destination FROM outbox
             WHERE lead_id = ?1 AND (status = 'delivered' OR attempts > 0 OR lease_until > ?2)",
        )?;
        for destination in stmt.query_map(params![id, at], |r| r.get::<_, String>(0))? {
            delivered_to.insert(destination?);
        }
    }
    let leases = cancel_deliveries(conn, &family, at, &mut counts)?;

    for id in &ids {
        conn.prepare_cached("DELETE FROM routing_queue WHERE lead_id = ?1")?.execute([id])?;
        conn.prepare_cached("UPDATE assignments SET sla_due_at = NULL WHERE lead_id = ?1")?.execute([id])?;
    }
    blank_import_reports(conn, &ids, &who, &mut counts)?;

    let event = LeadEvent::Erased {
        actor: Some(actor.to_owned()),
        reason: reason.map(str::to_owned),
        merged: merged_ids.clone(),
        crm_records: crm_records.into_iter().collect(),
        delivered_to: delivered_to.into_iter().collect(),
    };
    insert_history(conn, &HistoryEntry { lead_id: survivor.id, at: now, event: event.clone() }, None)?;
    outbox::enqueue(conn, &tombstone, &event, rules, now)?;
    // A try in flight when the lead was erased ends before its lease does; the erasure
    // reaches the destination after it, not before.
    for (destination, lease) in leases {
        conn.prepare_cached(
            "UPDATE outbox SET next_attempt_at = max(next_attempt_at, ?3)
             WHERE lead_id = ?1 AND destination = ?2 AND event_type = 'lead.erased' AND status = 'pending'",
        )?
        .execute(params![survivor.id.to_string(), destination, lease])?;
    }
    let destinations = rules.outbox.deliveries(&event).into_iter().map(|(d, _)| d.to_owned()).collect();
    Ok(Some(ErasureReceipt {
        lead_id: survivor.id,
        erased_at: now,
        merged_ids,
        already_erased: false,
        tables: counts.into_tables(),
        destinations,
    }))
}

/// The survivor, then every lead merged into it (directly or through other merges).
fn family(conn: &Connection, survivor: &Lead) -> Result<Vec<Lead>, StoreError> {
    let docs: Vec<String> = conn
        .prepare_cached(
            "WITH RECURSIVE family(id) AS (
                 SELECT l.id FROM leads l WHERE l.merged_into = ?1
                 UNION SELECT l.id FROM leads l JOIN family f ON l.merged_into = f.id)
             SELECT doc FROM leads WHERE id IN (SELECT id FROM family) ORDER BY id",
        )?
        .query_map([survivor.id.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut family = vec![survivor.clone()];
    for doc in docs {
        family.push(lead_from_doc(&doc)?);
    }
    Ok(family)
}

/// Feedback about the family, and feedback still waiting that names the person by email,
/// external id or one of their CRM records, keeps its outcome and ids only.
fn scrub_feedback(
    conn: &Connection,
    ids: &[String],
    who: &Identifiers,
    crm_records: &BTreeSet<CrmRecord>,
    counts: &mut ErasureCounts,
) -> Result<(), StoreError> {
    let mut rows: BTreeSet<(String, String)> = BTreeSet::new();
    let mut collect = |sql: &str, args: &[&str]| -> Result<(), StoreError> {
        let mut stmt = conn.prepare_cached(sql)?;
        for row in stmt.query_map(rusqlite::params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))? {
            rows.insert(row?);
        }
        Ok(())
    };
    for id in ids {
        collect("SELECT id, doc FROM feedback WHERE lead_id = ?1", &[id])?;
    }
    for email in &who.emails {
        collect(
            "SELECT id, doc FROM feedback WHERE lead_id IS NULL AND lower(json_extract(doc, '$.identity.email')) = ?1",
            &[email],
        )?;
    }
    for external in &who.external_ids {
        collect(
            "SELECT id, doc FROM feedback WHERE lead_id IS NULL AND json_extract(doc, '$.identity.external_id') = ?1",
            &[external],
        )?;
    }
    for record in crm_records {
        collect(
            "SELECT id, doc FROM feedback WHERE lead_id IS NULL
               AND json_extract(doc, '$.identity.crm_destination') = ?1 AND json_extract(doc, '$.identity.crm_id') = ?2",
            &[&record.destination, &record.crm_id],
        )?;
    }
    for (id, doc) in rows {
        let scrubbed = serde_json::to_string(&serde_json::from_str::<Doc>(&doc)?.erased())?;
        if scrubbed != doc {
            conn.prepare_cached("UPDATE feedback SET doc = ?2 WHERE id = ?1")?.execute(params![id, scrubbed])?;
            counts.scrubbed("feedback", 1);
        }
    }
    Ok(())
}

/// Cancels the family's undelivered deliveries (they would carry the person to the
/// destinations) with their tries, and keeps the delivered ones for the audit without
/// what they carried. Returns, per destination, when a try still in flight loses its
/// lease.
fn cancel_deliveries(
    conn: &Connection,
    family: &[Lead],
    now: i64,
    counts: &mut ErasureCounts,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut leases: Vec<(String, i64)> = Vec::new();
    for lead in family {
        let id = lead.id.to_string();
        let leased: Vec<(String, i64)> = conn
            .prepare_cached(
                "SELECT destination, max(lease_until) FROM outbox
                 WHERE lead_id = ?1 AND status = 'pending' AND lease_until > ?2 GROUP BY destination",
            )?
            .query_map(params![id, now], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (destination, until) in leased {
            match leases.iter_mut().find(|(d, _)| *d == destination) {
                Some((_, known)) => *known = (*known).max(until),
                None => leases.push((destination, until)),
            }
        }
        let n = conn
            .prepare_cached(
                "DELETE FROM delivery_attempts
                 WHERE delivery_id IN (SELECT id FROM outbox WHERE lead_id = ?1 AND status <> 'delivered')",
            )?
            .execute([&id])?;
        counts.deleted("delivery_attempts", n as u64);
        let n =
            conn.prepare_cached("DELETE FROM outbox WHERE lead_id = ?1 AND status <> 'delivered'")?.execute([&id])?;
        counts.deleted("outbox", n as u64);
        let n = conn
            .prepare_cached(
                "UPDATE delivery_attempts SET request = NULL, response = NULL, error = NULL
                 WHERE delivery_id IN (SELECT id FROM outbox WHERE lead_id = ?1)
                   AND (request IS NOT NULL OR response IS NOT NULL OR error IS NOT NULL)",
            )?
            .execute([&id])?;
        counts.scrubbed("delivery_attempts", n as u64);
        let payload = serde_json::to_string(&erase::delivered_payload(lead.id))?;
        let n = conn
            .prepare_cached(
                "UPDATE outbox SET payload = ?2, last_error = NULL, last_response = NULL, updated_at = ?3
                 WHERE lead_id = ?1",
            )?
            .execute(params![id, payload, now])?;
        counts.scrubbed("outbox", n as u64);
    }
    Ok(leases)
}

/// Finished imports keep their report; the person's lines lose their external id. (An
/// unfinished import's file refuses the erasure before anything is done.)
fn blank_import_reports(
    conn: &Connection,
    ids: &[String],
    who: &Identifiers,
    counts: &mut ErasureCounts,
) -> Result<(), StoreError> {
    let mut imports = BTreeSet::new();
    for needle in ids.iter().chain(&who.external_ids) {
        let mut stmt =
            conn.prepare_cached("SELECT id FROM imports WHERE report IS NOT NULL AND instr(report, ?1) > 0")?;
        for id in stmt.query_map([needle.as_bytes()], |r| r.get::<_, String>(0))? {
            imports.insert(id?);
        }
    }
    let leads: BTreeSet<String> = ids.iter().cloned().collect();
    for import in imports {
        let report: Vec<u8> = conn.query_row("SELECT report FROM imports WHERE id = ?1", [&import], |r| r.get(0))?;
        if let Some((blanked, lines)) = blank_report(&report, &leads, &who.external_ids) {
            conn.prepare_cached("UPDATE imports SET report = ?2 WHERE id = ?1")?.execute(params![import, blanked])?;
            counts.scrubbed("imports", lines);
        }
    }
    Ok(())
}
