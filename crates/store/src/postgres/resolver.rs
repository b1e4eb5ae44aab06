//! The resolver's batch in PostgreSQL: queued leads, oldest first, each resolved by the
//! core ([`leadflow_core::resolve::queued`]) over the leads its blocking keys find, in one
//! transaction. A transaction-level advisory lock lets one instance resolve at a time, so
//! two leads of one person captured on two instances are compared with each other rather
//! than resolved side by side, each blind to the other. The leads a merge writes are
//! locked and written at the version they were read: a capture that changed one meanwhile
//! makes the batch run again.

use super::Fail;
use super::apply::apply;
use super::sealing::{Keys, Opened};
use super::sql::{exec, lead_following_merges, limit, lock_id, one, rows};
use crate::{ResolveBatch, StoreError};
use deadpool_postgres::GenericClient;
use leadflow_core::LeadId;
use leadflow_core::pipeline::Rules;
use leadflow_core::resolve::Record;
use leadflow_core::resolve::queued::{Batch, Queued};
use leadflow_core::settle::{self, Lookup, POSTINGS_PER_KEY};
use time::OffsetDateTime;
use uuid::Uuid;

pub(super) async fn resolve_queued(
    c: &impl GenericClient,
    max: usize,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<ResolveBatch, Fail> {
    let locked: bool = one(c, "SELECT pg_try_advisory_xact_lock($1)", &[&lock_id("resolver", "")]).await?.try_get(0)?;
    if !locked {
        return Ok(ResolveBatch::default());
    }
    let queued = rows(c, "SELECT seq, lead_id FROM resolve_queue ORDER BY seq LIMIT $1", &[&limit(max)]).await?;
    let Some(last) = queued.last().map(|r| r.try_get::<_, i64>(0)).transpose()? else {
        return Ok(ResolveBatch::default());
    };
    let mut batch = ResolveBatch { taken: queued.len(), ..ResolveBatch::default() };
    let mut once = Batch::default();
    for row in queued {
        let id = LeadId::from(row.try_get::<_, Uuid>(1)?);
        let Some(lead) = once.admit(lead_following_merges(c, id, true).await?) else { continue };
        let queued = Queued::new(lead, rules, now);
        let found = by_keys(c, &queued.lookup()).await?;
        let resolving = queued.decide(found);
        let mut loaded = Vec::new();
        for id in resolving.leads() {
            loaded.push(lead_following_merges(c, id, true).await?);
        }
        let resolved = resolving.finish(loaded);
        apply(c, &resolved.changes).await?;
        once.resolved(&resolved);
        batch.add(resolved);
    }
    exec(c, "DELETE FROM resolve_queue WHERE seq <= $1", &[&last]).await?;
    Ok(batch)
}

/// The leads holding the lookup's blocking keys, ranked by the core as capture's were.
pub(super) async fn by_keys(c: &impl GenericClient, lookup: &Lookup) -> Result<Vec<(LeadId, Record)>, Fail> {
    if lookup.keys.is_empty() {
        return Ok(Vec::new());
    }
    // Each key its own bounded index range scan. Rows name their key by its place: the
    // column may hold the key's blind index.
    let found = rows(
        c,
        "SELECT k.n, p.lead_id, p.record
         FROM unnest($1::text[]) WITH ORDINALITY AS k (key, n)
         CROSS JOIN LATERAL (
             SELECT lead_keys.lead_id, r.record FROM lead_keys JOIN lead_records r USING (lead_id)
             WHERE lead_keys.key = k.key ORDER BY lead_keys.lead_id DESC LIMIT $2
         ) p",
        &[&Keys(&lookup.keys), &limit(POSTINGS_PER_KEY)],
    )
    .await?;
    let mut postings: Vec<Vec<(Uuid, Record)>> = lookup.keys.iter().map(|_| Vec::new()).collect();
    for row in found {
        let Opened(record): Opened<Record> = row.try_get(2)?;
        let n = usize::try_from(row.try_get::<_, i64>(0)? - 1).ok();
        let Some(posting) = n.and_then(|n| postings.get_mut(n)) else {
            return Err(StoreError::Internal("a posting answers no key".into()).into());
        };
        posting.push((row.try_get(1)?, record));
    }
    Ok(settle::rank(postings).into_iter().map(|(id, r)| (LeadId::from(id), r)).collect())
}

pub(super) async fn backlog(c: &impl GenericClient) -> Result<u64, Fail> {
    let n: i64 = one(c, "SELECT count(*) FROM resolve_queue", &[]).await?.try_get(0)?;
    Ok(n.unsigned_abs())
}
