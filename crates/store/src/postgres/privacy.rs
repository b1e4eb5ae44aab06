//! The consent ledger and the suppression list in PostgreSQL.

use super::Fail;
use super::apply::{Op, apply, p};
use super::sealing::{Opened, Sealed};
use super::sql::{exec, lead_following_merges, rows};
use crate::StoreError;
use deadpool_postgres::GenericClient;
use leadflow_core::consent::{self, Entry, State};
use leadflow_core::pipeline::Rules;
use leadflow_core::suppress::Suppression;
use leadflow_core::{Lead, LeadId, SubmissionId};
use time::OffsetDateTime;
use uuid::Uuid;

pub(super) fn entry_op(lead: LeadId, e: &Entry) -> Op<'_> {
    Op::new(
        "INSERT INTO consent_ledger (lead_id, purpose, status, at, recorded_at, submission_id, doc)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            p(*lead.as_uuid()),
            p(&e.purpose),
            p(e.state.status.as_str()),
            p(e.state.at.unwrap_or(e.recorded_at)),
            p(e.recorded_at),
            p(e.submission_id.map(|s| *s.as_uuid())),
            p(Sealed(e)),
        ],
    )
}

pub(super) fn suppress_op(s: &Suppression) -> Op<'_> {
    Op::new(
        "INSERT INTO suppressions (hash, kind, entry, key_id, reason, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash) DO NOTHING",
        vec![
            p(&s.hash.value),
            p(s.hash.kind.as_str()),
            p(&s.entry),
            p(&s.key_id),
            p(&s.reason),
            p(&s.created_by),
            p(s.created_at),
        ],
    )
}

pub(super) async fn suppress(c: &impl GenericClient, entries: &[Suppression]) -> Result<u64, Fail> {
    let mut added = 0;
    for s in entries {
        added += exec(
            c,
            "INSERT INTO suppressions (hash, kind, entry, key_id, reason, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash) DO NOTHING",
            &[&s.hash.value, &s.hash.kind.as_str(), &s.entry, &s.key_id, &s.reason, &s.created_by, &s.created_at],
        )
        .await?;
    }
    Ok(added)
}

pub(super) async fn suppressed(c: &impl GenericClient, hashes: &[String]) -> Result<Vec<String>, Fail> {
    let found = rows(c, "SELECT hash FROM suppressions WHERE hash = ANY($1)", &[&hashes]).await?;
    found.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

pub(super) async fn lift(c: &impl GenericClient, hashes: &[String]) -> Result<u64, Fail> {
    exec(c, "DELETE FROM suppressions WHERE hash = ANY($1)", &[&hashes]).await
}

/// Settled submissions stay: touchpoints and history name them.
pub(super) async fn discard(c: &impl GenericClient, ids: &[SubmissionId]) -> Result<u64, Fail> {
    let ids: Vec<Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
    exec(c, "DELETE FROM submissions WHERE id = ANY($1) AND status <> 'processed'", &[&ids]).await
}

pub(super) async fn record(
    c: &impl GenericClient,
    lead: LeadId,
    purpose: &str,
    state: &State,
    actor: Option<&str>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<Lead>, Fail> {
    let Some(mut lead) = lead_following_merges(c, lead, true).await? else { return Ok(None) };
    let changes = consent::record_stored(&mut lead, purpose, state.clone(), actor, rules, now)
        .map_err(|consent::Erased(id)| StoreError::Erased(id))?;
    apply(c, &changes).await?;
    Ok(Some(lead))
}

/// The ledger of the lead and of every lead merged into it (at any depth).
pub(super) async fn ledger(c: &impl GenericClient, lead: LeadId) -> Result<Vec<(LeadId, Entry)>, Fail> {
    let found = rows(
        c,
        "WITH RECURSIVE family (id) AS (
             SELECT $1::uuid UNION SELECT l.id FROM leads l JOIN family f ON l.merged_into = f.id
         )
         SELECT c.lead_id, c.doc FROM consent_ledger c JOIN family f ON c.lead_id = f.id ORDER BY c.id",
        &[lead.as_uuid()],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            let id: Uuid = r.try_get(0)?;
            let Opened(entry): Opened<Entry> = r.try_get(1)?;
            Ok((LeadId::from(id), entry))
        })
        .collect()
}
