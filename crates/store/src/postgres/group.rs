//! Group commit for captures: concurrent calls settle in one transaction.
//!
//! Every call's submissions queue for one task, which takes all the calls waiting and
//! settles them together ([`settle::settle_all`]): one transaction, one commit (one WAL
//! flush, durable as ever) and a few round trips for all of them, where each call alone
//! would pay its own. A call is answered once the transaction holding its submissions
//! committed. Other instances on the same database group their own calls; between groups,
//! advisory locks, row locks and constraints settle races as between single captures.

use super::capture::capture_one_guarded;
use super::settle::{self, Entry, Transaction};
use super::{Connections, Fail, MAX_ATTEMPTS, backoff, sql};
use crate::{CaptureItem, Captured, StoreError};
use leadflow_core::pipeline::Rules;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// A group stops growing at this many submissions, or at as many key locks as one
/// transaction takes one by one ([`sql::MAX_KEY_LOCKS`]); a call is never split. It
/// bounds how long one transaction holds its locks.
const MAX_GROUP_ITEMS: usize = 4096;
/// Groups settling at once: while one waits for its commit, the next gathers and reads.
const IN_FLIGHT: usize = 2;
/// Calls waiting beyond this wait to be queued.
const QUEUE_DEPTH: usize = 4096;

type Answer = Result<Vec<Captured>, StoreError>;

struct Call {
    items: Vec<CaptureItem>,
    rules: Rules,
    /// The advisory locks of the items' keys, sorted.
    locks: Vec<i64>,
    reply: oneshot::Sender<Answer>,
}

/// The queue of captures waiting to be grouped, shared by every handle on the database.
#[derive(Clone)]
pub(super) struct Groups {
    queue: mpsc::Sender<Call>,
    redone: Arc<AtomicU64>,
}

impl Groups {
    /// Starts the task that gathers groups; it ends when the store is dropped.
    pub(super) fn start(db: Connections) -> Self {
        let (queue, calls) = mpsc::channel(QUEUE_DEPTH);
        let redone = Arc::new(AtomicU64::new(0));
        tokio::spawn(gather(db, calls, redone.clone()));
        Self { queue, redone }
    }

    /// Settles the items in the next group; answers once it committed.
    pub(super) async fn capture(&self, items: Vec<CaptureItem>, rules: &Rules) -> Answer {
        let (reply, answer) = oneshot::channel();
        let locks = sql::capture_locks(&items);
        let call = Call { items, rules: rules.clone(), locks, reply };
        self.queue.send(call).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Internal("a capture group ended without an answer".into()))?
    }

    /// How many groups failed as a whole and were redone submission by submission.
    pub(super) fn redone(&self) -> u64 {
        self.redone.load(Ordering::Relaxed)
    }
}

async fn gather(db: Connections, mut calls: mpsc::Receiver<Call>, redone: Arc<AtomicU64>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    // A call that did not fit the last group starts the next.
    let mut next: Option<Call> = None;
    loop {
        let first = match next.take() {
            Some(call) => call,
            None => match calls.recv().await {
                Some(call) => call,
                None => break,
            },
        };
        // Calls arriving while every slot is busy join this group.
        let Ok(slot) = slots.clone().acquire_owned().await else { break };
        let (mut items, mut locks) = (first.items.len(), first.locks.len());
        let mut group = vec![first];
        while items < MAX_GROUP_ITEMS {
            let Ok(call) = calls.try_recv() else { break };
            // Not past the key locks one transaction takes one by one.
            if locks + call.locks.len() > sql::MAX_KEY_LOCKS {
                next = Some(call);
                break;
            }
            items += call.items.len();
            locks += call.locks.len();
            group.push(call);
        }
        let (db, redone) = (db.clone(), redone.clone());
        tokio::spawn(async move {
            let answers = commit(&db, &group, &redone).await;
            for (call, answer) in group.into_iter().zip(answers) {
                // A caller that gave up is not told: its submissions are committed anyway.
                let _ = call.reply.send(answer);
            }
            drop(slot);
        });
    }
}

/// Settles a group in one transaction, and answers each call. When that fails for another
/// reason than a lost database, it is redone submission by submission, each in a
/// savepoint, so a failing one is kept as pending and the rest settle: an acknowledged
/// submission is never lost, and one call's bad submission fails no other call.
async fn commit(db: &Connections, group: &[Call], redone: &AtomicU64) -> Vec<Answer> {
    let entries: Vec<Entry<'_>> =
        group.iter().flat_map(|call| call.items.iter().map(|item| Entry { item, rules: &call.rules })).collect();
    let mut locks: Vec<i64> = group.iter().flat_map(|call| call.locks.iter().copied()).collect();
    locks.sort_unstable();
    locks.dedup();
    let settled = match settle_group(db, &entries, &locks).await {
        Err(e @ (StoreError::Unavailable(_) | StoreError::Closed)) => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, items = entries.len(), "a capture group failed; redoing it item by item");
            redone.fetch_add(1, Ordering::Relaxed);
            transaction!(db, true, |tx| {
                sql::lock_keys(&tx, &locks).await?;
                let mut out = Vec::with_capacity(entries.len());
                for entry in &entries {
                    out.push(capture_one_guarded(&tx, entry).await?);
                }
                out
            })
        }
        ok => ok,
    };
    match settled {
        Ok(all) => {
            let mut all = all.into_iter();
            group.iter().map(|call| Ok(all.by_ref().take(call.items.len()).collect())).collect()
        }
        Err(e) => group.iter().map(|_| Err(e.clone())).collect(),
    }
}

/// Settles the entries in one transaction of their own, run again when it lost a race
/// (see [`Fail::retryable`]), like `transaction!`; but its BEGIN and COMMIT travel with
/// the first reads and the last writes instead of costing a round trip each.
async fn settle_group(db: &Connections, entries: &[Entry<'_>], locks: &[i64]) -> Answer {
    let mut attempt = 0u32;
    loop {
        let client = db.client().await?;
        let settling = super::feed::scoped(settle::settle_all(&client, entries, locks, Transaction::Own));
        match super::sealing::scoped(db.sealer(), settling).await {
            Ok(settled) => return Ok(settled),
            Err(e) => {
                // Whatever was begun is rolled back; a connection that cannot say so is
                // not given back to the pool, where its open transaction would linger.
                if client.batch_execute("ROLLBACK").await.is_err() {
                    drop(deadpool_postgres::Object::take(client));
                }
                if attempt + 1 < MAX_ATTEMPTS && e.retryable(true) {
                    attempt += 1;
                    tracing::debug!(attempt, error = ?e.code(), "a capture group lost a race; running it again");
                    backoff(attempt).await;
                    continue;
                }
                return Err(e.into_store());
            }
        }
    }
}
