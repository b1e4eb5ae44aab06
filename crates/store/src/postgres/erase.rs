//! Erasure in PostgreSQL: the same steps as the SQLite store, in the caller's
//! transaction. Across instances: every lead of the family is locked (`FOR UPDATE`)
//! before anything is read, so a capture, event or feedback that found the lead before
//! the erasure committed waits for it and then sees the tombstone (which none of them
//! writes to), and whatever they committed first is read and erased here.

use super::Fail;
use super::apply::insert_history;
use super::sql::{exec, lead_following_merges, lead_from_row, lock_leads, opt, rows};
use crate::erase::{blank_report, json_string};
use crate::feedback::Doc;
use crate::{ErasureCounts, ErasureReceipt, StoreError};
use deadpool_postgres::GenericClient;
use leadflow_core::attribute::Touchpoint;
use leadflow_core::erase::{self, CrmRecord, Identifiers};
use leadflow_core::pipeline::{HistoryEntry, LeadEvent, Rules};
use leadflow_core::{Lead, LeadId};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use tokio_postgres::types::Json;
use uuid::Uuid;

/// In order: find the family and every way the person was named (their leads, the
/// snapshots in their history, their visitor ids and CRM records); refuse while an import
/// is unfinished; write the tombstones and drop an account left empty; scrub or delete,
/// table by table; then write the `erased` history entry and its deliveries.
pub(super) async fn erase(
    c: &impl GenericClient,
    id: LeadId,
    actor: &str,
    reason: Option<&str>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<ErasureReceipt>, Fail> {
    let Some(unlocked) = lead_following_merges(c, id, false).await? else { return Ok(None) };
    // Lock the family as it was found, then read it again under the locks: a merge that
    // committed meanwhile added a member, which is locked too.
    let mut locked = family_ids(c, unlocked.id).await?;
    lock_leads(c, &locked).await?;
    let (survivor, family) = loop {
        let Some(survivor) = lead_following_merges(c, id, true).await? else { return Ok(None) };
        let ids = family_ids(c, survivor.id).await?;
        let extra: Vec<LeadId> = ids.iter().filter(|i| !locked.contains(i)).copied().collect();
        if extra.is_empty() {
            break (survivor.clone(), family(c, &survivor, &ids).await?);
        }
        lock_leads(c, &extra).await?;
        locked.extend(extra);
    };
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
    let unfinished =
        opt(c, "SELECT id FROM imports WHERE status IN ('queued', 'running') ORDER BY created_at LIMIT 1", &[]).await?;
    if let Some(row) = unfinished {
        let import: Uuid = row.try_get(0)?;
        return Err(StoreError::Conflict(format!(
            "import {import} is not finished and its stored file may hold this person's row; erase once it has finished"
        ))
        .into());
    }
    let ids: Vec<Uuid> = family.iter().map(|l| *l.id.as_uuid()).collect();
    let mut who = Identifiers::default();
    for lead in &family {
        who.add_lead(lead);
    }
    let mut history: Vec<(i64, HistoryEntry)> = Vec::new();
    for row in rows(c, "SELECT id, entry FROM lead_history WHERE lead_id = ANY($1)", &[&ids]).await? {
        let Json(entry): Json<HistoryEntry> = row.try_get(1)?;
        history.push((row.try_get(0)?, entry));
    }
    for (_, entry) in &history {
        who.add_event(&entry.event);
    }
    let visitors: Vec<String> = rows(c, "SELECT anonymous_id FROM lead_visitors WHERE lead_id = ANY($1)", &[&ids])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut crm_records = BTreeSet::new();
    for row in rows(c, "SELECT destination, crm_id FROM crm_links WHERE lead_id = ANY($1)", &[&ids]).await? {
        crm_records.insert(CrmRecord { destination: row.try_get(0)?, crm_id: row.try_get(1)? });
    }

    let mut counts = ErasureCounts::default();
    let mut accounts: BTreeSet<Uuid> = BTreeSet::new();
    let mut tombstone = None;
    for lead in &family {
        accounts.extend(lead.account_id.map(|a| *a.as_uuid()));
        let t = erase::tombstone(lead, now);
        let version = i64::try_from(t.version).map_err(|_| StoreError::Internal("lead version out of range".into()))?;
        exec(
            c,
            "UPDATE leads SET email = NULL, email_key = NULL, external_id = NULL, account_id = NULL, version = $2, updated_at = $3,
                 doc = $4, erased_at = $3
             WHERE id = $1",
            &[t.id.as_uuid(), &version, &now, &Json(&t)],
        )
        .await?;
        counts.scrubbed("leads", 1);
        if t.id == survivor.id {
            tombstone = Some(t);
        }
    }
    let tombstone = tombstone.ok_or_else(|| StoreError::Internal("the survivor is not in its family".into()))?;
    // An account left without leads existed only for this person: its name and domains
    // came from their company and email. Locked first: a capture joining it meanwhile
    // either committed (and the account stays) or waits and founds a new one.
    for account in accounts {
        if opt(c, "SELECT id FROM accounts WHERE id = $1 FOR UPDATE", &[&account]).await?.is_none() {
            continue;
        }
        let used: bool = opt(c, "SELECT EXISTS (SELECT 1 FROM leads WHERE account_id = $1)", &[&account])
            .await?
            .map_or(Ok(true), |r| r.try_get(0))?;
        if !used {
            let n = exec(c, "DELETE FROM account_keys WHERE account_id = $1", &[&account]).await?;
            counts.deleted("account_keys", n);
            let n = exec(c, "DELETE FROM accounts WHERE id = $1", &[&account]).await?;
            counts.deleted("accounts", n);
        }
    }

    let n = exec(
        c,
        "UPDATE submissions SET payload = '{}'::jsonb, idempotency_key = NULL, fingerprint = NULL, error = NULL WHERE lead_id = ANY($1)",
        &[&ids],
    )
    .await?;
    counts.scrubbed("submissions", n);
    // Submissions of the person never tied to a lead: quarantined, or not settled yet.
    for email in &who.emails {
        let n = exec(
            c,
            "DELETE FROM submissions WHERE lead_id IS NULL AND status IN ('pending', 'rejected')
               AND strpos(lower(payload::text), $1) > 0",
            &[&json_string(email)],
        )
        .await?;
        counts.deleted("submissions", n);
    }

    for (row, entry) in history {
        let scrubbed = HistoryEntry { event: erase::scrub_event(entry.event.clone()), ..entry.clone() };
        if scrubbed != entry {
            exec(c, "UPDATE lead_history SET entry = $2 WHERE id = $1", &[&row, &Json(&scrubbed)]).await?;
            counts.scrubbed("lead_history", 1);
        }
    }

    for (table, sql) in [
        ("lead_keys", "DELETE FROM lead_keys WHERE lead_id = ANY($1)"),
        ("lead_visitors", "DELETE FROM lead_visitors WHERE lead_id = ANY($1)"),
        ("events", "DELETE FROM events WHERE lead_id = ANY($1)"),
        ("duplicate_reviews", "DELETE FROM duplicate_reviews WHERE lead_id = ANY($1) OR candidate_id = ANY($1)"),
    ] {
        counts.deleted(table, exec(c, sql, &[&ids]).await?);
    }
    // Events of the person still waiting to be tied to a lead.
    let emails: Vec<&str> = who.emails.iter().map(String::as_str).collect();
    let externals: Vec<&str> = who.external_ids.iter().map(String::as_str).collect();
    for (condition, values) in [
        ("email IS NOT NULL AND lower(btrim(email)) = ANY($1)", &emails),
        ("external_id = ANY($1)", &externals),
        ("anonymous_id = ANY($1)", &visitors.iter().map(String::as_str).collect()),
    ] {
        let sql = format!("DELETE FROM events WHERE lead_id IS NULL AND {condition}");
        counts.deleted("events", exec(c, &sql, &[values]).await?);
    }

    for row in rows(c, "SELECT id, doc FROM touchpoints WHERE lead_id = ANY($1)", &[&ids]).await? {
        let (id, Json(touch)): (i64, Json<Touchpoint>) = (row.try_get(0)?, row.try_get(1)?);
        let scrubbed = erase::scrub_touchpoint(&touch);
        if scrubbed != touch {
            exec(c, "UPDATE touchpoints SET doc = $2 WHERE id = $1", &[&id, &Json(&scrubbed)]).await?;
            counts.scrubbed("touchpoints", 1);
        }
    }

    scrub_feedback(c, &ids, &emails, &externals, &crm_records, &mut counts).await?;
    // Where the person's data went (or may have: a try failed, or is in flight), before
    // those deliveries are cancelled: a destination that cannot find its record says so.
    let delivered_to: Vec<String> = rows(
        c,
        "SELECT DISTINCT destination FROM outbox
         WHERE lead_id = ANY($1) AND (status = 'delivered' OR attempts > 0 OR lease_until > $2) ORDER BY 1",
        &[&ids, &now],
    )
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    let leases = cancel_deliveries(c, &family, now, &mut counts).await?;
    exec(c, "DELETE FROM routing_queue WHERE lead_id = ANY($1)", &[&ids]).await?;
    exec(c, "UPDATE assignments SET sla_due_at = NULL WHERE lead_id = ANY($1)", &[&ids]).await?;
    blank_import_reports(c, &family, &who, &mut counts).await?;

    let event = LeadEvent::Erased {
        actor: Some(actor.to_owned()),
        reason: reason.map(str::to_owned),
        merged: merged_ids.clone(),
        crm_records: crm_records.into_iter().collect(),
        delivered_to,
    };
    insert_history(c, &HistoryEntry { lead_id: survivor.id, at: now, event: event.clone() }, None).await?;
    super::outbox::enqueue(c, &tombstone, &event, rules, now).await?;
    // A try in flight when the lead was erased ends before its lease does; the erasure
    // reaches the destination after it, not before.
    for (destination, lease) in leases {
        exec(
            c,
            "UPDATE outbox SET next_attempt_at = greatest(next_attempt_at, $3)
             WHERE lead_id = $1 AND destination = $2 AND event_type = 'lead.erased' AND status = 'pending'",
            &[survivor.id.as_uuid(), &destination, &lease],
        )
        .await?;
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

/// The lead and every lead merged into it (directly or through other merges).
async fn family_ids(c: &impl GenericClient, survivor: LeadId) -> Result<Vec<LeadId>, Fail> {
    let found = rows(
        c,
        "WITH RECURSIVE family(id) AS (
             SELECT $1::uuid UNION SELECT l.id FROM leads l JOIN family f ON l.merged_into = f.id)
         SELECT id FROM family",
        &[survivor.as_uuid()],
    )
    .await?;
    found.iter().map(|r| Ok(LeadId::from(r.try_get::<_, Uuid>(0)?))).collect()
}

/// The survivor, then the other members in id order.
async fn family(c: &impl GenericClient, survivor: &Lead, ids: &[LeadId]) -> Result<Vec<Lead>, Fail> {
    let others: Vec<Uuid> = ids.iter().filter(|i| **i != survivor.id).map(|i| *i.as_uuid()).collect();
    let mut family = vec![survivor.clone()];
    for row in rows(c, "SELECT doc FROM leads WHERE id = ANY($1) ORDER BY id", &[&others]).await? {
        family.push(lead_from_row(&row, 0)?);
    }
    Ok(family)
}

/// Feedback about the family, and feedback still waiting that names the person by email,
/// external id or one of their CRM records, keeps its outcome and ids only.
async fn scrub_feedback(
    c: &impl GenericClient,
    ids: &[Uuid],
    emails: &[&str],
    externals: &[&str],
    crm_records: &BTreeSet<CrmRecord>,
    counts: &mut ErasureCounts,
) -> Result<(), Fail> {
    let destinations: Vec<&str> = crm_records.iter().map(|r| r.destination.as_str()).collect();
    let crm_ids: Vec<&str> = crm_records.iter().map(|r| r.crm_id.as_str()).collect();
    let found = rows(
        c,
        "SELECT id, doc FROM feedback
         WHERE lead_id = ANY($1)
            OR (lead_id IS NULL AND (lower(doc -> 'identity' ->> 'email') = ANY($2)
                OR doc -> 'identity' ->> 'external_id' = ANY($3)
                OR (doc -> 'identity' ->> 'crm_destination', doc -> 'identity' ->> 'crm_id')
                   IN (SELECT * FROM unnest($4::text[], $5::text[]))))
         FOR UPDATE",
        &[&ids, &emails, &externals, &destinations, &crm_ids],
    )
    .await?;
    for row in found {
        let (id, Json(doc)): (Uuid, Json<serde_json::Value>) = (row.try_get(0)?, row.try_get(1)?);
        let scrubbed = serde_json::to_value(serde_json::from_value::<Doc>(doc.clone())?.erased())?;
        if scrubbed != doc {
            exec(c, "UPDATE feedback SET doc = $2 WHERE id = $1", &[&id, &Json(&scrubbed)]).await?;
            counts.scrubbed("feedback", 1);
        }
    }
    Ok(())
}

/// Cancels the family's undelivered deliveries (they would carry the person to the
/// destinations) with their tries, and keeps the delivered ones for the audit without
/// what they carried. Returns, per destination, when a try still in flight loses its
/// lease.
async fn cancel_deliveries(
    c: &impl GenericClient,
    family: &[Lead],
    now: OffsetDateTime,
    counts: &mut ErasureCounts,
) -> Result<Vec<(String, OffsetDateTime)>, Fail> {
    let ids: Vec<Uuid> = family.iter().map(|l| *l.id.as_uuid()).collect();
    let leases = rows(
        c,
        "SELECT destination, max(lease_until) FROM outbox
         WHERE lead_id = ANY($1) AND status = 'pending' AND lease_until > $2 GROUP BY destination",
        &[&ids, &now],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<Vec<_>, Fail>>()?;
    let n = exec(
        c,
        "DELETE FROM delivery_attempts
         WHERE delivery_id IN (SELECT id FROM outbox WHERE lead_id = ANY($1) AND status <> 'delivered')",
        &[&ids],
    )
    .await?;
    counts.deleted("delivery_attempts", n);
    let n = exec(c, "DELETE FROM outbox WHERE lead_id = ANY($1) AND status <> 'delivered'", &[&ids]).await?;
    counts.deleted("outbox", n);
    let n = exec(
        c,
        "UPDATE delivery_attempts SET request = NULL, response = NULL, error = NULL
         WHERE delivery_id IN (SELECT id FROM outbox WHERE lead_id = ANY($1))
           AND (request IS NOT NULL OR response IS NOT NULL OR error IS NOT NULL)",
        &[&ids],
    )
    .await?;
    counts.scrubbed("delivery_attempts", n);
    for lead in family {
        let n = exec(
            c,
            "UPDATE outbox SET payload = $2, last_error = NULL, last_response = NULL, updated_at = $3
             WHERE lead_id = $1",
            &[lead.id.as_uuid(), &Json(erase::delivered_payload(lead.id)), &now],
        )
        .await?;
        counts.scrubbed("outbox", n);
    }
    Ok(leases)
}

/// Finished imports keep their report; the person's lines lose their external id. (An
/// unfinished import's file refuses the erasure before anything is done.)
async fn blank_import_reports(
    c: &impl GenericClient,
    family: &[Lead],
    who: &Identifiers,
    counts: &mut ErasureCounts,
) -> Result<(), Fail> {
    let leads: BTreeSet<String> = family.iter().map(|l| l.id.to_string()).collect();
    let mut imports: BTreeSet<Uuid> = BTreeSet::new();
    for needle in leads.iter().chain(&who.external_ids) {
        let found = rows(
            c,
            "SELECT id FROM imports WHERE report IS NOT NULL AND position($1::bytea IN report) > 0",
            &[&needle.as_bytes()],
        )
        .await?;
        for row in found {
            imports.insert(row.try_get(0)?);
        }
    }
    for import in imports {
        let Some(row) = opt(c, "SELECT report FROM imports WHERE id = $1 FOR UPDATE", &[&import]).await? else {
            continue;
        };
        let report: Vec<u8> = row.try_get(0)?;
        if let Some((blanked, lines)) = blank_report(&report, &leads, &who.external_ids) {
            exec(c, "UPDATE imports SET report = $2 WHERE id = $1", &[&import, &blanked]).await?;
            counts.scrubbed("imports", lines);
        }
    }
    Ok(())
}
