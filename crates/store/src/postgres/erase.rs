//! Erasure in PostgreSQL, in the caller's transaction: what each step of
//! [`leadflow_core::erase::plan`] asks to load, and the statements of the writes it
//! returns, sent pipelined with every other change.
//!
//! Across instances: every lead of the family is locked (`FOR UPDATE`) before anything
//! else is read, so a capture, event or feedback that found the lead before the erasure
//! committed waits for it and then sees the tombstone (which none of them writes to), and
//! whatever they committed first is read and erased here. The rows the erasure rewrites
//! that others write too (accounts, feedback, deliveries, import reports) are read
//! `FOR UPDATE`: what the core judged is what is written.

use super::Fail;
use super::apply::{Op, apply, p};
use super::feedback::row as feedback_row;
use super::sealing::{self, Blind, Opened, OpenedBytes, Sealed, SealedBytes};
use super::sql::{lead_from_row, lock_leads, opt, rows};
use crate::erase::outbox_state;
use crate::feedback::Doc;
use crate::{ErasureReceipt, StoreError};
use deadpool_postgres::GenericClient;
use leadflow_core::engagement::Event;
use leadflow_core::erase::CrmRecord;
use leadflow_core::erase::plan::{
    self, AccountUse, AttemptRow, Erase, Found, Lookup, Member, OutboxRow, Rows, Traces, WaitingEvent, Write,
};
use leadflow_core::pipeline::{HistoryEntry, Rules};
use leadflow_core::{AccountId, EventId, LeadId, ReviewId, SubmissionId};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use uuid::Uuid;

/// load the merge tree and lock the family → family → load its traces → named → load
/// the rows → finish → apply.
pub(super) async fn erase(
    c: &impl GenericClient,
    id: LeadId,
    actor: &str,
    reason: Option<&str>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<ErasureReceipt>, Fail> {
    let erase = Erase::new(id, actor.to_owned(), reason.map(str::to_owned), rules, now);
    let family = match erase.family(locked_tree(c, id).await?) {
        Found::Missing => return Ok(None),
        Found::AlreadyErased(receipt) => return Ok(Some(receipt)),
        Found::Family(family) => *family,
    };
    let traces = traces(c, &uuids(&family.ids(), LeadId::as_uuid)).await?;
    let named = family.named(traces).map_err(StoreError::from)?;
    let rows = load(c, &named.lookup()).await?;
    let erased = named.finish(rows);
    apply(c, &erased.changes).await?;
    Ok(Some(erased.receipt))
}

/// The statements of one erasure write.
pub(super) fn ops(write: &Write) -> Vec<Op<'_>> {
    let op = Op::new;
    match write {
        Write::Tombstone(t) => vec![op(
            "UPDATE leads SET email = $2, email_key = NULL, external_id = $3, account_id = $4, version = $5,
                 updated_at = $6, doc = $7, erased_at = $8
             WHERE id = $1",
            vec![
                p(t.id.as_uuid()),
                p(t.fields.email.as_ref().map(|e| Blind(e.as_str()))),
                p(t.fields.external_id.as_deref().map(Blind)),
                p(t.account_id.map(|a| *a.as_uuid())),
                p(i64::try_from(t.version).unwrap_or(i64::MAX)),
                p(t.updated_at),
                p(Sealed(&**t)),
                p(t.erased_at),
            ],
        )],
        Write::DeleteAccount(account) => vec![
            op("DELETE FROM account_keys WHERE account_id = $1", vec![p(account.as_uuid())]),
            op("DELETE FROM accounts WHERE id = $1", vec![p(account.as_uuid())]),
        ],
        Write::ScrubSubmissions(ids) => vec![op(
            "UPDATE submissions SET payload = '{}'::jsonb, idempotency_key = NULL, fingerprint = NULL, error = NULL
             WHERE id = ANY($1)",
            vec![p(uuids(ids, SubmissionId::as_uuid))],
        )],
        Write::DeleteSubmissions(ids) => {
            vec![op("DELETE FROM submissions WHERE id = ANY($1)", vec![p(uuids(ids, SubmissionId::as_uuid))])]
        }
        Write::History { row, entry } => {
            vec![op("UPDATE lead_history SET entry = $2 WHERE id = $1", vec![p(row), p(Sealed(&**entry))])]
        }
        Write::DeleteLeadKeys(lead) => vec![
            op("DELETE FROM lead_keys WHERE lead_id = $1", vec![p(lead.as_uuid())]),
            op("DELETE FROM lead_records WHERE lead_id = $1", vec![p(lead.as_uuid())]),
        ],
        Write::DeleteConsent(ids) => {
            vec![op("DELETE FROM consent_ledger WHERE lead_id = ANY($1)", vec![p(uuids(ids, LeadId::as_uuid))])]
        }
        Write::Suppress(entries) => entries.iter().map(super::privacy::suppress_op).collect(),
        Write::DeleteVisitors(ids) => vec![op("DELETE FROM lead_visitors WHERE anonymous_id = ANY($1)", vec![p(ids)])],
        Write::DeleteEvents(ids) => {
            vec![op("DELETE FROM events WHERE id = ANY($1)", vec![p(uuids(ids, EventId::as_uuid))])]
        }
        Write::Touchpoint { row, touch } => {
            vec![op("UPDATE touchpoints SET doc = $2 WHERE id = $1", vec![p(row), p(Sealed(&**touch))])]
        }
        Write::DeleteReviews(ids) => {
            vec![op("DELETE FROM duplicate_reviews WHERE id = ANY($1)", vec![p(uuids(ids, ReviewId::as_uuid))])]
        }
        Write::Feedback { feedback, result } => vec![op(
            "UPDATE feedback SET doc = $2 WHERE id = $1",
            vec![p(feedback.id.as_uuid()), p(Sealed(Doc::new(feedback, result)))],
        )],
        Write::CancelDeliveries(ids) => vec![
            op("DELETE FROM delivery_attempts WHERE delivery_id = ANY($1)", vec![p(ids)]),
            op("DELETE FROM outbox WHERE id = ANY($1)", vec![p(ids)]),
        ],
        Write::Delivered { id, payload, at } => vec![op(
            "UPDATE outbox SET payload = $2, last_error = NULL, last_response = NULL, updated_at = $3 WHERE id = $1",
            vec![p(id), p(Sealed(payload)), p(at)],
        )],
        Write::ScrubAttempts(ids) => vec![op(
            "UPDATE delivery_attempts SET request = NULL, response = NULL, error = NULL WHERE id = ANY($1)",
            vec![p(ids)],
        )],
        Write::Unqueue(lead) => vec![op("DELETE FROM routing_queue WHERE lead_id = $1", vec![p(lead.as_uuid())])],
        Write::Report { import, report } => {
            vec![op("UPDATE imports SET report = $2 WHERE id = $1", vec![p(import.as_uuid()), p(SealedBytes(report))])]
        }
        Write::NotBefore { delivery, at } => {
            vec![op("UPDATE outbox SET next_attempt_at = $2 WHERE id = $1", vec![p(delivery), p(at)])]
        }
    }
}

/// The merge tree holding `id`, read again once the family it names is locked: a merge
/// that committed meanwhile added a member, which is locked too.
async fn locked_tree(c: &impl GenericClient, id: LeadId) -> Result<Vec<Member>, Fail> {
    let mut locked: BTreeSet<LeadId> = BTreeSet::new();
    loop {
        let tree = tree(c, id).await?;
        let family = plan::family_of(id, &tree).unwrap_or_default();
        let extra: Vec<LeadId> = family.into_iter().filter(|l| !locked.contains(l)).collect();
        if extra.is_empty() {
            return Ok(tree);
        }
        lock_leads(c, &extra).await?;
        locked.extend(extra);
    }
}

/// Every lead of the merge tree holding `id`: up its merges to the survivor, then down
/// from it to every lead merged into it.
async fn tree(c: &impl GenericClient, id: LeadId) -> Result<Vec<Member>, Fail> {
    let found = rows(
        c,
        "WITH RECURSIVE up(id, merged_into) AS (SELECT id, merged_into FROM leads WHERE id = $1
                 UNION SELECT l.id, l.merged_into FROM leads l JOIN up ON l.id = up.merged_into),
             down(id) AS (SELECT id FROM up WHERE merged_into IS NULL
                 UNION SELECT l.id FROM leads l JOIN down ON l.merged_into = down.id)
         SELECT merged_into, doc FROM leads WHERE id IN (SELECT id FROM up UNION SELECT id FROM down)",
        &[id.as_uuid()],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            let into: Option<Uuid> = r.try_get(0)?;
            Ok(Member { lead: lead_from_row(r, 1)?, merged_into: into.map(LeadId::from) })
        })
        .collect()
}

async fn traces(c: &impl GenericClient, leads: &[Uuid]) -> Result<Traces, Fail> {
    let unfinished =
        opt(c, "SELECT id FROM imports WHERE status IN ('queued', 'running') ORDER BY created_at LIMIT 1", &[]).await?;
    let history = rows(c, "SELECT id, entry FROM lead_history WHERE lead_id = ANY($1)", &[&leads]).await?;
    let visitors = rows(c, "SELECT anonymous_id FROM lead_visitors WHERE lead_id = ANY($1)", &[&leads]).await?;
    let links = rows(c, "SELECT destination, crm_id FROM crm_links WHERE lead_id = ANY($1)", &[&leads]).await?;
    Ok(Traces {
        unfinished_import: unfinished.map(|r| r.try_get::<_, Uuid>(0)).transpose()?.map(Into::into),
        history: history
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<_, Opened<HistoryEntry>>(1)?.0)))
            .collect::<Result<_, Fail>>()?,
        visitors: visitors.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?,
        crm_records: links
            .iter()
            .map(|r| Ok(CrmRecord { destination: r.try_get(0)?, crm_id: r.try_get(1)? }))
            .collect::<Result<_, Fail>>()?,
    })
}

async fn load(c: &impl GenericClient, lookup: &Lookup) -> Result<Rows, Fail> {
    let leads = uuids(&lookup.leads, LeadId::as_uuid);
    let accounts = uuids(&lookup.accounts, AccountId::as_uuid);
    // Locked: a capture joining an account meanwhile either committed (and is counted)
    // or waits and founds a new one.
    let used = rows(
        c,
        "SELECT a.id, (SELECT count(*) FROM leads WHERE account_id = a.id),
                (SELECT count(*) FROM account_keys WHERE account_id = a.id)
         FROM accounts a WHERE a.id = ANY($1) ORDER BY a.id FOR UPDATE",
        &[&accounts],
    )
    .await?;
    // What the core judges is narrowed down here only when it can be read in SQL: sealed,
    // every candidate is read, and the core picks (as it does anyway).
    let sealed = sealing::sealed()?;
    let unsettled = rows(
        c,
        "SELECT id, payload FROM submissions
         WHERE lead_id IS NULL
           AND ($2 OR EXISTS (SELECT 1 FROM unnest($1::text[]) m WHERE strpos(lower(payload::text), m) > 0))",
        &[&lookup.mentions, &sealed],
    )
    .await?;
    let of_family = {
        let leads = &leads;
        move |sql: &'static str| async move { rows(c, sql, &[leads]).await }
    };
    let lead_keys = of_family("SELECT count(*) FROM lead_keys WHERE lead_id = ANY($1)").await?;
    let consent = of_family("SELECT count(*) FROM consent_ledger WHERE lead_id = ANY($1)").await?;
    // Emails and external ids are stored as written (see `apply`), possibly as blind
    // indexes: the values come from the document.
    let emails: Vec<Blind<String>> = lookup.emails.iter().map(|e| Blind(e.trim().to_lowercase())).collect();
    let external_ids: Vec<Blind<&str>> = lookup.external_ids.iter().map(|e| Blind(e.as_str())).collect();
    let waiting = rows(
        c,
        "SELECT id, doc, anonymous_id FROM events
         WHERE lead_id IS NULL
           AND (email = ANY($1) OR lower(btrim(email)) = ANY($1) OR external_id = ANY($2) OR anonymous_id = ANY($3))",
        &[&emails, &external_ids, &lookup.visitors],
    )
    .await?;
    let crm_ids: Vec<&str> = lookup.crm_records.iter().map(|r| r.crm_id.as_str()).collect();
    // The CRM record id alone finds the candidates; the core checks the destination.
    let feedback = rows(
        c,
        "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, doc FROM feedback
         WHERE lead_id = ANY($1)
            OR (lead_id IS NULL AND ($5 OR lower(doc -> 'identity' ->> 'email') = ANY($2)
                OR doc -> 'identity' ->> 'external_id' = ANY($3) OR doc -> 'identity' ->> 'crm_id' = ANY($4)))
         FOR UPDATE",
        &[&leads, &lookup.emails, &lookup.external_ids, &crm_ids, &sealed],
    )
    .await?;
    let deliveries = rows(
        c,
        "SELECT id, lead_id, destination, status, attempts, lease_until FROM outbox WHERE lead_id = ANY($1) FOR UPDATE",
        &[&leads],
    )
    .await?;
    let attempts = rows(
        c,
        "SELECT a.id, a.delivery_id, a.request IS NOT NULL OR a.response IS NOT NULL OR a.error IS NOT NULL
         FROM delivery_attempts a JOIN outbox o ON o.id = a.delivery_id WHERE o.lead_id = ANY($1)",
        &[&leads],
    )
    .await?;
    let needles: Vec<&[u8]> = lookup.report_needles.iter().map(|n| n.as_bytes()).collect();
    let reports = rows(
        c,
        "SELECT id, report FROM imports
         WHERE report IS NOT NULL
           AND ($2 OR EXISTS (SELECT 1 FROM unnest($1::bytea[]) n WHERE position(n IN report) > 0))
         FOR UPDATE",
        &[&needles, &sealed],
    )
    .await?;
    Ok(Rows {
        accounts: used
            .iter()
            .map(|r| {
                let (id, leads, keys): (Uuid, i64, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                Ok(AccountUse { id: id.into(), leads: leads.unsigned_abs(), keys: keys.unsigned_abs() })
            })
            .collect::<Result<_, Fail>>()?,
        submissions: ids(&of_family("SELECT id FROM submissions WHERE lead_id = ANY($1)").await?)?,
        unsettled: unsettled
            .iter()
            .map(|r| {
                let Opened(payload): Opened<serde_json::Value> = r.try_get(1)?;
                Ok((r.try_get::<_, Uuid>(0)?.into(), payload.to_string()))
            })
            .collect::<Result<_, Fail>>()?,
        lead_keys: lead_keys.first().map(|r| r.try_get::<_, i64>(0)).transpose()?.unwrap_or(0).unsigned_abs(),
        consent: consent.first().map(|r| r.try_get::<_, i64>(0)).transpose()?.unwrap_or(0).unsigned_abs(),
        events: ids(&of_family("SELECT id FROM events WHERE lead_id = ANY($1)").await?)?,
        waiting: waiting
            .iter()
            .map(|r| {
                let id: Uuid = r.try_get(0)?;
                let Opened(event): Opened<Event> = r.try_get(1)?;
                let (email, external_id) = (event.identity.email, event.identity.external_id);
                Ok(WaitingEvent { id: id.into(), email, external_id, anonymous_id: r.try_get(2)? })
            })
            .collect::<Result<_, Fail>>()?,
        touchpoints: of_family("SELECT id, doc FROM touchpoints WHERE lead_id = ANY($1)")
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<_, Opened<_>>(1)?.0)))
            .collect::<Result<_, Fail>>()?,
        reviews: ids(
            &of_family("SELECT id FROM duplicate_reviews WHERE lead_id = ANY($1) OR candidate_id = ANY($1)").await?
        )?,
        feedback: feedback
            .iter()
            .map(|r| {
                let stored = feedback_row(r)?.into_stored();
                Ok((stored.feedback, stored.result))
            })
            .collect::<Result<_, Fail>>()?,
        deliveries: deliveries
            .iter()
            .map(|r| {
                let (lead, status, attempts): (Uuid, String, i32) = (r.try_get(1)?, r.try_get(3)?, r.try_get(4)?);
                Ok(OutboxRow {
                    id: r.try_get(0)?,
                    lead: lead.into(),
                    destination: r.try_get(2)?,
                    state: outbox_state(&status)?,
                    attempts: attempts.unsigned_abs(),
                    lease_until: r.try_get(5)?,
                })
            })
            .collect::<Result<_, Fail>>()?,
        attempts: attempts
            .iter()
            .map(|r| Ok(AttemptRow { id: r.try_get(0)?, delivery: r.try_get(1)?, holds_text: r.try_get(2)? }))
            .collect::<Result<_, Fail>>()?,
        reports: reports
            .iter()
            .map(|r| Ok((r.try_get::<_, Uuid>(0)?.into(), r.try_get::<_, OpenedBytes>(1)?.0)))
            .collect::<Result<_, Fail>>()?,
    })
}

fn uuids<T>(ids: &[T], uuid: fn(&T) -> &Uuid) -> Vec<Uuid> {
    ids.iter().map(|id| *uuid(id)).collect()
}

fn ids<T: From<Uuid>>(found: &[tokio_postgres::Row]) -> Result<Vec<T>, Fail> {
    found.iter().map(|r| Ok(T::from(r.try_get::<_, Uuid>(0)?))).collect()
}
