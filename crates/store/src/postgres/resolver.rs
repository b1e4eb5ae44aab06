//! The resolver's batch in PostgreSQL, in one transaction and in the two phases SQLite
//! runs on two connections, so that a batch costs a few round trips rather than several per
//! lead:
//!
//! 1. Decide, over what the transaction reads before it writes anything: the queued
//!    leads (locked, followed through merges), every lookup's postings and the records of
//!    the leads the lookups choose, each read once for the whole batch. Each lead is then
//!    decided by the core ([`leadflow_core::resolve::queued`]) in queue order; a
//!    [`Batch`] stands in for the leads decided earlier in the batch, which the stored
//!    index does not hold yet, so a lead still sees every lead queued before it.
//! 2. Apply, in queue order: a merge takes its leads as they now stand (locked; read
//!    together for all the batch's merges, and again, after sending the writes so far,
//!    for a merge that needs a lead an earlier merge of the batch changed) and is decided
//!    again over them, and a merge writes each lead at the version it read, so a capture
//!    that changed one meanwhile makes the batch run again; the rest is indexed and its
//!    reviews queued. The writes go pipelined in one round trip at the end, the leads
//!    indexed side by side sharing multi-row statements and each merge's writes in their
//!    place between them.
//!
//! A transaction-level advisory lock lets one instance resolve at a time, so two leads of
//! one person captured on two instances are compared with each other rather than resolved
//! side by side, each blind to the other.

use super::Fail;
use super::apply::apply_runs;
use super::sealing::{Keys, Opened};
use super::settle::{load_leads, survivor};
use super::sql::{MAX_MERGE_HOPS, exec, limit, lock_id, one, rows};
use crate::{ResolveBatch, StoreError};
use deadpool_postgres::GenericClient;
use leadflow_core::changes::Change;
use leadflow_core::pipeline::Rules;
use leadflow_core::resolve::Record;
use leadflow_core::resolve::queued::{Batch, Held, Queued};
use leadflow_core::settle::{self, Lookup, POSTINGS_PER_KEY};
use leadflow_core::{Lead, LeadId};
use std::collections::{HashMap, HashSet};
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
    let ids = queued.iter().map(|r| r.try_get::<_, Uuid>(1)).collect::<Result<Vec<_>, _>>()?;

    // Decide.
    let stored = load_leads(c, ids.clone()).await?;
    let mut once = Batch::default();
    let mut leads = Vec::new();
    for id in ids {
        if let Some(lead) = once.admit(survivor(&stored, LeadId::from(id))?) {
            let queued = Queued::new(lead, rules, now);
            let lookup = queued.lookup();
            leads.push((queued, lookup));
        }
    }
    let postings = Postings::read(c, leads.iter().map(|(_, lookup)| lookup)).await?;
    let mut records = postings.records(c, leads.iter().map(|(_, lookup)| lookup)).await?;
    let mut plans = Vec::with_capacity(leads.len());
    for (queued, lookup) in leads {
        let found = postings.candidates(c, &lookup, &once, &mut records).await?;
        let plan = queued.decide(found).plan();
        once.planned(&plan);
        plans.push(plan);
    }

    // Apply. The leads merges need are read at once; a merge that needs one an earlier
    // merge of the batch changed sends the writes so far and reads it again.
    let wanted: Vec<Uuid> = plans
        .iter()
        .filter(|p| p.merges())
        .flat_map(|p| std::iter::once(p.lead).chain(p.leads()))
        .map(|id| *id.as_uuid())
        .collect();
    let read = load_leads(c, wanted).await?;
    let mut batch = ResolveBatch { taken: queued.len(), ..ResolveBatch::default() };
    let mut writes = Writes::default();
    let mut changed: HashSet<Uuid> = HashSet::new();
    // The batch's leads are locked: only the batch's own merges take one away.
    let mut merged_away: HashSet<LeadId> = HashSet::new();
    for plan in plans {
        let held = if plan.merges() {
            let wanted: Vec<LeadId> = std::iter::once(plan.lead).chain(plan.leads()).collect();
            let fresh;
            let stored = if wanted.iter().any(|id| passes(&read, *id, &changed)) {
                apply_runs(c, writes.take()).await?;
                fresh = load_leads(c, wanted.iter().map(|id| *id.as_uuid()).collect()).await?;
                &fresh
            } else {
                &read
            };
            let queued = survivor(stored, plan.lead)?.map(Box::new);
            let loaded = plan.leads().into_iter().map(|id| survivor(stored, id)).collect::<Result<_, _>>()?;
            Held::Leads { queued, loaded }
        } else if merged_away.contains(&plan.lead) {
            Held::Gone
        } else {
            Held::There
        };
        let mut resolved = plan.finish(held, rules, now);
        if resolved.changes.is_empty() {
            continue;
        }
        let changes = std::mem::take(&mut resolved.changes);
        if resolved.merged.is_empty() {
            writes.beside(changes);
        } else {
            changed
                .extend(std::iter::once(resolved.lead).chain(resolved.merged.iter().copied()).map(|id| *id.as_uuid()));
            writes.alone(changes);
        }
        merged_away.extend(resolved.merged.iter().copied());
        batch.add(resolved);
    }
    apply_runs(c, writes.take()).await?;
    exec(c, "DELETE FROM resolve_queue WHERE seq <= $1", &[&last]).await?;
    Ok(batch)
}

/// Whether `id`, followed through merges in `read`, passes a lead in `changed`.
fn passes(read: &HashMap<Uuid, (Option<Uuid>, Lead)>, id: LeadId, changed: &HashSet<Uuid>) -> bool {
    let mut current = Some(*id.as_uuid());
    for _ in 0..=MAX_MERGE_HOPS {
        let Some(at) = current else { return false };
        if changed.contains(&at) {
            return true;
        }
        current = read.get(&at).and_then(|(into, _)| *into);
    }
    true
}

/// A batch's writes in order, as runs for [`apply_runs`]: the writes of leads indexed
/// side by side share statements; a merge's go alone, between them.
#[derive(Default)]
struct Writes {
    runs: Vec<Vec<Vec<Change>>>,
    /// Whether the last run takes more writes beside its own.
    open: bool,
}

impl Writes {
    fn beside(&mut self, changes: Vec<Change>) {
        match self.runs.last_mut() {
            Some(run) if self.open => run.push(changes),
            _ => self.runs.push(vec![changes]),
        }
        self.open = true;
    }

    fn alone(&mut self, changes: Vec<Change>) {
        self.runs.push(vec![changes]);
        self.open = false;
    }

    fn take(&mut self) -> Vec<Vec<Vec<Change>>> {
        self.open = false;
        std::mem::take(&mut self.runs)
    }
}

/// The stored postings of every key a batch's lookups ask, newest first, as the
/// transaction read them before writing.
struct Postings(HashMap<String, Vec<Uuid>>);

impl Postings {
    async fn read<'a>(c: &impl GenericClient, lookups: impl Iterator<Item = &'a Lookup>) -> Result<Self, Fail> {
        let mut keys: Vec<String> = lookups.flat_map(|l| l.keys.iter().cloned()).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut postings: HashMap<String, Vec<Uuid>> = HashMap::with_capacity(keys.len());
        if keys.is_empty() {
            return Ok(Self(postings));
        }
        // Rows name their key by its place: the column may hold the key's blind index.
        let found = rows(
            c,
            "SELECT k.n, p.lead_id
             FROM unnest($1::text[]) WITH ORDINALITY AS k (key, n)
             CROSS JOIN LATERAL (
                 SELECT lead_id FROM lead_keys WHERE lead_keys.key = k.key ORDER BY lead_id DESC LIMIT $2
             ) p",
            &[&Keys(&keys), &limit(POSTINGS_PER_KEY)],
        )
        .await?;
        for row in found {
            let key = usize::try_from(row.try_get::<_, i64>(0)? - 1).ok().and_then(|n| keys.get(n));
            let Some(key) = key else {
                return Err(StoreError::Internal("a posting answers no key".into()).into());
            };
            postings.entry(key.clone()).or_default().push(row.try_get(1)?);
        }
        Ok(Self(postings))
    }

    fn of(&self, key: &str) -> &[Uuid] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// The records of the stored leads each lookup chooses, read once for the batch. A lead
    /// decided earlier in the batch can change a later lookup's choice; the few records
    /// that then lack are read when asked.
    async fn records<'a>(
        &self,
        c: &impl GenericClient,
        lookups: impl Iterator<Item = &'a Lookup>,
    ) -> Result<HashMap<Uuid, Record>, Fail> {
        let mut wanted: Vec<Uuid> = lookups
            .flat_map(|lookup| {
                let postings = lookup.keys.iter().map(|k| self.of(k).iter().map(|id| (*id, ())).collect()).collect();
                settle::rank(postings).into_iter().map(|(id, ())| id)
            })
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        read_records(c, &wanted).await
    }

    /// The leads holding the lookup's keys, ranked by the core: the batch's decided leads
    /// first (newer than any stored), then the stored postings.
    async fn candidates(
        &self,
        c: &impl GenericClient,
        lookup: &Lookup,
        batch: &Batch,
        records: &mut HashMap<Uuid, Record>,
    ) -> Result<Vec<(LeadId, Record)>, Fail> {
        let postings: Vec<Vec<(Uuid, Option<Record>)>> = lookup
            .keys
            .iter()
            .map(|k| {
                let planned = batch.postings(k).map(|(id, r)| (*id.as_uuid(), Some(r.clone())));
                planned.chain(self.of(k).iter().map(|id| (*id, None))).collect()
            })
            .collect();
        let ranked = settle::rank(postings);
        let lacking: Vec<Uuid> = ranked
            .iter()
            .filter(|(id, known)| known.is_none() && !records.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        if !lacking.is_empty() {
            records.extend(read_records(c, &lacking).await?);
        }
        Ok(ranked
            .into_iter()
            .filter_map(|(id, known)| known.or_else(|| records.get(&id).cloned()).map(|r| (LeadId::from(id), r)))
            .collect())
    }
}

async fn read_records(c: &impl GenericClient, ids: &[Uuid]) -> Result<HashMap<Uuid, Record>, Fail> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let found = rows(c, "SELECT lead_id, record FROM lead_records WHERE lead_id = ANY($1)", &[&ids]).await?;
    let mut records = HashMap::with_capacity(found.len());
    for row in found {
        let Opened(record): Opened<Record> = row.try_get(1)?;
        records.insert(row.try_get(0)?, record);
    }
    Ok(records)
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
