//! The resolver's batch in SQLite, in two phases so that the one writer is held only to
//! apply, the second overlapping the first:
//!
//! 1. [`decide`], on readers beside the writer: the queued leads, oldest first, each
//!    looked up by its blocking keys and decided by the core
//!    ([`leadflow_core::resolve::queued`]). Two threads load and look up alternate leads;
//!    one decides them in queue order. The leads decided earlier in the batch are not in
//!    the snapshot's index yet; a [`Batch`] stands in for them, so a lead still sees every
//!    lead queued before it, whether or not its run has been applied meanwhile.
//! 2. [`apply`], in the writer's transaction, in runs (each its own transaction, taking
//!    its queue rows) while the rest of the batch is still being decided: a lead no longer
//!    there (merged away, erased) is passed over; a merge loads its leads as they now
//!    stand and is decided by the core again over them (a merge writes each lead at the
//!    version it read); the rest is indexed and its reviews queued.
//!
//! A capture that changed a lead between the phases queued it again, so it is resolved
//! once more over what it now holds. One batch runs at a time per store. A batch that
//! fails keeps queued every row its applied runs did not take.

use super::apply::apply_one;
use super::capture::{ranked, stored_postings};
use super::connection::Readers;
use super::lead_following_merges;
use crate::{ResolveBatch, StoreError};
use leadflow_core::LeadId;
use leadflow_core::pipeline::Rules;
use leadflow_core::resolve::Record;
use leadflow_core::resolve::queued::{Batch, Held, Plan, Queued};
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::{Arc, mpsc};
use time::OffsetDateTime;

/// What the read phase took: how many queue rows, and the last one. Its plans went out
/// one by one as they were decided.
pub(super) struct Decided {
    pub taken: usize,
    pub last: Option<i64>,
}

/// A decided plan, with its queue row, on its way to the writer.
pub(super) type Planned = (i64, Plan);

/// Queued leads a gatherer may have ready ahead of the decider: enough to keep both busy,
/// few enough that a batch's candidate records are not all held at once.
const IN_FLIGHT: usize = 16;

/// Plans applied per writer transaction while captures wait on the writer: a capture
/// waits behind one run (a few milliseconds), not a whole batch.
pub(super) const APPLY_RUN: usize = 64;

/// Plans applied per writer transaction when nothing else waits (an import's drain):
/// fewer commits write each touched index page fewer times, and runs short enough that
/// the writer applies one while the readers decide the next.
pub(super) const ALONE_RUN: usize = 256;

/// Records a gatherer keeps parsed for the rest of its batch, at most: a batch's leads
/// share many candidates (the newest postings of common keys), and reading and parsing a
/// record was a fifth of the resolver's work. The records of one snapshot never change.
const KEPT_RECORDS: usize = 16_384;

/// A queued lead ready to decide: loaded, its keys looked up, and the records of the
/// candidates its stored postings alone would choose (the batch's leads seldom change the
/// choice; a candidate not read here is read when it is decided).
struct Gathered<'r> {
    seq: i64,
    queued: Queued<'r>,
    stored: Vec<Vec<String>>,
    records: HashMap<LeadId, Arc<Record>>,
}

/// Decides a batch on three readers: two gatherers load and look up alternate queued
/// leads (the lookups are most of the work, and independent of each other), and a
/// third thread decides them in queue order, each seeing the ones decided before it.
pub(super) fn decide(
    readers: &Readers,
    limit: usize,
    rules: &Rules,
    now: OffsetDateTime,
    plans: &tokio::sync::mpsc::UnboundedSender<Planned>,
) -> Result<Decided, StoreError> {
    // On a thread of its own: the caller is a pooled blocking thread that serves reads
    // afterwards, and a lowered priority cannot be raised again without privilege.
    std::thread::scope(|s| {
        s.spawn(|| {
            yield_to_capture();
            let own = readers.take()?;
            let decided = decide_on(&own, readers, limit, rules, now, plans);
            readers.give(own);
            decided
        })
        .join()
        .map_err(|_| StoreError::Internal("the resolver's decider panicked".into()))?
    })
}

fn decide_on(
    conn: &Connection,
    readers: &Readers,
    limit: usize,
    rules: &Rules,
    now: OffsetDateTime,
    plans: &tokio::sync::mpsc::UnboundedSender<Planned>,
) -> Result<Decided, StoreError> {
    // A read transaction for the batch: in autocommit each of its thousands of statements
    // took and released the log's read lock (a file-lock system call each).
    let snapshot = conn.unchecked_transaction()?;
    let rows: Vec<(i64, String)> = conn
        .prepare_cached("SELECT seq, lead_id FROM resolve_queue ORDER BY seq LIMIT ?1")?
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let decided = Decided { taken: rows.len(), last: rows.last().map(|r| r.0) };
    let (even, odd) = (readers.take()?, readers.take()?);
    let mut batch = Batch::default();
    std::thread::scope(|s| -> Result<(), StoreError> {
        let rows = &rows;
        let mut gatherers = Vec::with_capacity(2);
        for (first, reader) in [(0, even), (1, odd)] {
            let (send, receive) = mpsc::sync_channel(IN_FLIGHT);
            s.spawn(move || {
                yield_to_capture();
                gather(&reader, rows.iter().skip(first).step_by(2), rules, now, &send);
                readers.give(reader);
            });
            gatherers.push(receive);
        }
        for at in 0..rows.len() {
            let gathered = gatherers[at % 2]
                .recv()
                .map_err(|_| StoreError::Internal("a resolver gatherer stopped early".into()))??;
            let Some(Gathered { seq, queued, stored, mut records }) = gathered else { continue };
            if !batch.admits(&queued) {
                continue;
            }
            let found = ranked(conn, queued.keys(), &stored, &batch, &mut records)?;
            let plan = queued.decide(found).plan();
            batch.planned(&plan);
            plans
                .send((seq, plan))
                .map_err(|_| StoreError::Internal("the resolver's batch stopped applying".into()))?;
        }
        Ok(())
    })?;
    snapshot.finish()?;
    Ok(decided)
}

/// Loads and looks up `rows` in order on its own snapshot, sending each (`None` for a lead
/// gone since it was queued) until the first error, which it sends too; it stops early
/// when the decider has stopped listening.
fn gather<'a, 'r>(
    conn: &Connection,
    rows: impl Iterator<Item = &'a (i64, String)>,
    rules: &'r Rules,
    now: OffsetDateTime,
    send: &mpsc::SyncSender<Result<Option<Gathered<'r>>, StoreError>>,
) {
    let snapshot = match conn.unchecked_transaction() {
        Ok(s) => s,
        Err(e) => {
            let _ = send.send(Err(e.into()));
            return;
        }
    };
    let mut read = HashMap::new();
    for (seq, id) in rows {
        if read.len() > KEPT_RECORDS {
            read.clear();
        }
        let gathered = gather_one(conn, *seq, id, rules, now, &mut read);
        let failed = gathered.is_err();
        if send.send(gathered).is_err() || failed {
            return;
        }
    }
    drop(snapshot);
}

fn gather_one<'r>(
    conn: &Connection,
    seq: i64,
    id: &str,
    rules: &'r Rules,
    now: OffsetDateTime,
    read: &mut HashMap<LeadId, Arc<Record>>,
) -> Result<Option<Gathered<'r>>, StoreError> {
    let id: LeadId = id.parse().map_err(|_| StoreError::Corrupt(format!("resolve queue row {seq}")))?;
    let Some(lead) = lead_following_merges(conn, id)? else { return Ok(None) };
    let queued = Queued::new(lead, rules, now);
    let stored = stored_postings(conn, queued.keys())?;
    let records = ranked(conn, queued.keys(), &stored, &Batch::default(), read)?.into_iter().collect();
    Ok(Some(Gathered { seq, queued, stored, records }))
}

/// Applies `plans` (a run of a decided batch, in queue order) and takes the queue rows
/// up to `through`. A batch is applied in runs, each its own transaction, so that
/// captures waiting on the writer are not held behind a whole batch.
pub(super) fn apply(
    conn: &Connection,
    plans: &[(i64, Plan)],
    through: i64,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<ResolveBatch, StoreError> {
    let mut batch = ResolveBatch::default();
    for (_, plan) in plans {
        let held = if plan.merges() {
            let queued = lead_following_merges(conn, plan.lead)?.map(Box::new);
            let loaded =
                plan.leads().into_iter().map(|id| lead_following_merges(conn, id)).collect::<Result<_, _>>()?;
            Held::Leads { queued, loaded }
        } else if still_there(conn, plan.lead)? {
            Held::There
        } else {
            Held::Gone
        };
        let resolved = plan.clone().finish(held, rules, now);
        if resolved.changes.is_empty() {
            continue;
        }
        for change in &resolved.changes {
            apply_one(conn, change)?;
        }
        batch.add(resolved);
    }
    conn.prepare_cached("DELETE FROM resolve_queue WHERE seq <= ?1")?.execute([through])?;
    Ok(batch)
}

/// How many decided plans to gather into the next run: a short run while other writes
/// wait on the writer, a longer one alone.
pub(super) fn run_length(waiting: bool) -> usize {
    if waiting { APPLY_RUN } else { ALONE_RUN }
}

/// Lowers the calling thread's scheduling priority. Fuzzy matching shares the processors
/// with capture, and a capture held up by it is what a client waits for, while the
/// resolver catches up as soon as capture leaves it room (an import's drain has no one
/// to yield to). Only the deciding threads: the writer that applies serves captures too.
/// Best effort: a thread that cannot be lowered runs as it is.
fn yield_to_capture() {
    // On Linux a thread id names the one thread, and each thread has its own nice value.
    #[cfg(target_os = "linux")]
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), RESOLVER_NICE);
}

/// The nice value of the resolver's deciding threads (0 is normal, 19 the lowest): they
/// get about a tenth of a busy processor's time beside a thread at 0, so under sustained
/// load they still make progress.
#[cfg(target_os = "linux")]
const RESOLVER_NICE: i32 = 10;

/// Whether the lead is still one of its own (not merged away, not erased).
fn still_there(conn: &Connection, lead: LeadId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM leads WHERE id = ?1 AND merged_into IS NULL AND erased_at IS NULL")?
        .query_row([lead.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn backlog(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.prepare_cached("SELECT count(*) FROM resolve_queue")?.query_row([], |r| r.get(0))?;
    Ok(n.unsigned_abs())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_deciding_thread_yields_alone() {
        let nice = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let before = nice();
        let lowered = std::thread::spawn(move || {
            yield_to_capture();
            nice()
        })
        .join()
        .unwrap();
        // Raising a nice value needs no privilege, so this holds unless a test runner
        // already runs at or past it.
        assert_eq!(lowered, RESOLVER_NICE.max(before));
        assert_eq!(nice(), before, "the thread that spawned it keeps its priority");
    }
}
