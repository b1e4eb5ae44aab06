//! Settling many submissions in one transaction, in a few round trips for all of them.
//!
//! The core decides in steps (lookup → decide → merge → context → finish, see
//! [`leadflow_core::settle`]); here the submissions walk the steps side by side, and
//! each load between two steps is one pipelined read for all of them. That is sound only
//! for submissions that read nothing another of them writes: each names what it touches
//! as it learns it ([`Claim`]), and one touching what an earlier one claimed waits for
//! the next round, which reads the earlier ones' writes. The first submission of a round
//! always settles, so every round makes progress; a batch of strangers settles in one or
//! two rounds, the same person sent twice in two.
//!
//! A round is at most four round trips, and for new leads two: the first reads what a
//! new lead needs besides its candidates (the accounts its company claims, the events
//! waiting for it) with the lookups, and the writes go in one pipeline. When the
//! transaction is this module's own, its BEGIN goes out with the first reads (behind it,
//! the advisory locks of every key, then the reads) and its COMMIT with the last writes.
//! Leads about to change are read `FOR UPDATE`.

use super::apply;
use super::capture::{earlier_outcome, submission_op};
use super::claims::{Claim, Ledger};
use super::sealing::{Blind, Opened};
use super::sql::{self, MAX_MERGE_HOPS, lead_from_row};
use super::{Fail, accounts, engagement};
use crate::{CaptureItem, Captured, StoreError, SubmissionStatus};
use deadpool_postgres::GenericClient;
use futures_util::future::{try_join, try_join3, try_join4};
use leadflow_core::account::{self, Account, Found};
use leadflow_core::changes::Change;
use leadflow_core::engagement::Event;
use leadflow_core::health::Tally;
use leadflow_core::pipeline::{Outcome, Rules, SubmissionMeta};
use leadflow_core::settle::{self, Candidates, Context, ContextQuery, Decided, Identities, Merged, Settle, Settled};
use leadflow_core::{Lead, LeadId};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};
use uuid::Uuid;

/// A submission to settle, with the rules of the call that brought it.
pub(super) struct Entry<'a> {
    pub(super) item: &'a CaptureItem,
    pub(super) rules: &'a Rules,
}

/// Whose transaction the settling runs in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Transaction {
    /// Begun and committed here, each in the same round trip as the reads or writes
    /// beside it. On an error the caller rolls back.
    Own,
    /// The caller's, already open.
    Callers,
}

/// The submissions holding each of these idempotency keys (`$1` sources, `$2` keys), by
/// their place in the arrays.
pub(super) const EARLIER: &str = "SELECT k.n, s.id, s.status, s.outcome, s.lead_id, s.error, s.fingerprint
     FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k (source, key, n)
     CROSS JOIN LATERAL (
         SELECT * FROM submissions WHERE source = k.source AND idempotency_key = k.key OFFSET 0
     ) s";

/// Settles every entry, in rounds, and answers in their order. `locks` (sorted) are taken
/// first, in the same round trip as the first reads.
pub(super) async fn settle_all(
    c: &impl GenericClient,
    entries: &[Entry<'_>],
    locks: &[i64],
    transaction: Transaction,
) -> Result<Vec<Captured>, Fail> {
    let mut answers: Vec<Option<Captured>> = vec![None; entries.len()];
    // A submission settled after it waited in the inbox was counted received then.
    let ids: Vec<Uuid> = entries.iter().map(|e| *e.item.submission.id.as_uuid()).collect();
    let inbox = super::health::stored_submissions(c, &ids).await?;
    let now = OffsetDateTime::now_utc();
    let mut waiting: Vec<Slot<'_>> = entries.iter().enumerate().map(|(at, entry)| lookup(at, entry, now)).collect();
    let mut first = true;
    loop {
        let open = Opening { begin: first && transaction == Transaction::Own, locks: if first { locks } else { &[] } };
        let left = round(c, entries, waiting, open, transaction == Transaction::Own, &inbox, &mut answers).await?;
        first = false;
        if left.is_empty() {
            break;
        }
        waiting = left;
    }
    answers
        .into_iter()
        .map(|a| a.ok_or_else(|| StoreError::Internal("a submission was left unsettled".into()).into()))
        .collect()
}

/// What the first reads of a round go behind.
#[derive(Clone, Copy)]
struct Opening<'a> {
    begin: bool,
    locks: &'a [i64],
}

/// One submission's way through a round.
struct Slot<'a> {
    at: usize,
    claim: Claim,
    /// Waits for the next round.
    deferred: bool,
    step: Step<'a>,
}

// Slots live for one round in one vector, replaced in place: boxing the large steps
// would only add an allocation per submission and step.
#[allow(clippy::large_enum_variant)]
enum Step<'a> {
    Lookup(Settle<'a>, settle::Lookup),
    Decided(Decided<'a>, Vec<LeadId>),
    Merged(Merged<'a>, ContextQuery),
    Settled(Settled),
    /// Answered by an earlier submission with its key.
    Answered,
}

impl Slot<'_> {
    fn live(&self) -> bool {
        !self.deferred && !matches!(self.step, Step::Answered)
    }
}

/// Checks every live slot's claim in order; those that clash wait. Slots already waiting
/// keep what they named.
fn pass(slots: &mut [Slot<'_>]) {
    let mut ledger = Ledger::default();
    for slot in slots.iter_mut() {
        if slot.deferred {
            ledger.block(&slot.claim);
        } else if slot.live() && !ledger.admit(&slot.claim) {
            slot.deferred = true;
        }
    }
}

/// Runs the steps once for `slots` (each at its lookup); returns those left for the next
/// round, at their lookup again. With `commit`, the round that leaves none commits.
async fn round<'a>(
    c: &impl GenericClient,
    entries: &'a [Entry<'a>],
    mut slots: Vec<Slot<'a>>,
    open: Opening<'_>,
    commit: bool,
    inbox: &[Uuid],
    answers: &mut [Option<Captured>],
) -> Result<Vec<Slot<'a>>, Fail> {
    pass(&mut slots);

    // Earlier submissions with the same keys, the candidates, and what a new lead reads
    // next: one round trip.
    let mut loaded = load_lookups(c, entries, &slots, open).await?;
    for (i, row) in std::mem::take(&mut loaded.earlier) {
        let item = entries[slots[i].at].item;
        if let Some(first) = earlier_outcome(c, &item.submission, &row).await? {
            answers[slots[i].at] = Some(first);
            slots[i].step = Step::Answered;
        }
    }
    for (i, slot) in slots.iter_mut().enumerate() {
        if !slot.live() {
            continue;
        }
        let Step::Lookup(settling, lookup) = std::mem::replace(&mut slot.step, Step::Answered) else { continue };
        // Capture asks the mailbox, and the phone key with `exact_phone`; the resolver
        // looks up the other blocking keys later.
        let by_mailbox = loaded.by_mailbox.remove(&i).unwrap_or_default();
        let ranked = super::resolver::by_keys(c, &lookup).await?;
        for id in by_mailbox.iter().map(|l| l.id).chain(ranked.iter().map(|(id, _)| *id)) {
            slot.claim.read("lead", id.as_uuid().as_bytes());
        }
        let decided = settling.decide(Candidates { by_mailbox, ranked });
        let wanted = decided.leads();
        for id in &wanted {
            slot.claim.write("lead", id.as_uuid().as_bytes());
        }
        slot.step = Step::Decided(decided, wanted);
    }
    pass(&mut slots);

    // The leads to join and bridge, locked, followed through earlier merges.
    let wanted: Vec<Uuid> = slots
        .iter()
        .filter(|s| s.live())
        .filter_map(|s| match &s.step {
            Step::Decided(_, ids) => Some(ids.iter().map(|id| *id.as_uuid())),
            _ => None,
        })
        .flatten()
        .collect();
    let stored = load_leads(c, wanted).await?;
    for slot in slots.iter_mut().filter(|s| s.live()) {
        let Step::Decided(decided, ids) = std::mem::replace(&mut slot.step, Step::Answered) else { continue };
        let mut leads = Vec::with_capacity(ids.len());
        for id in ids {
            let lead = survivor(&stored, id)?;
            if let Some(lead) = &lead {
                slot.claim.write("lead", lead.id.as_uuid().as_bytes());
            }
            leads.push(lead);
        }
        let merged = decided.merge(leads);
        let query = merged.context();
        for key in &query.account_keys {
            slot.claim.read("account_key", key);
        }
        slot.step = Step::Merged(merged, query);
    }
    pass(&mut slots);

    // What the rest reads and the first round trip did not: accounts, waiting events,
    // earlier events.
    load_context(c, &slots, &mut loaded.context).await?;
    let context = &mut loaded.context;
    for (i, slot) in slots.iter_mut().enumerate() {
        if !slot.live() {
            continue;
        }
        let Step::Merged(merged, query) = std::mem::replace(&mut slot.step, Step::Answered) else { continue };
        let found: Vec<Found> = query
            .account_keys
            .iter()
            .filter_map(|key| context.accounts.get(key).map(|a| Found { key: key.clone(), account: a.clone() }))
            .collect();
        for f in &found {
            slot.claim.read("account", f.account.id.as_uuid().as_bytes());
        }
        let waiting = context.waiting.remove(&i).map(|(_, events)| events).unwrap_or_default();
        let events = context.events.remove(&i).unwrap_or_default();
        let settled = merged.finish(Context { accounts: found, waiting, events });
        claim_writes(&mut slot.claim, &settled.changes);
        slot.step = Step::Settled(settled);
    }
    pass(&mut slots);

    // The writes of all that settled, merged into multi-row statements: one round trip,
    // with the COMMIT when nothing waits for another round.
    let mut units = Vec::new();
    let mut tally = Tally::default();
    for slot in slots.iter().filter(|s| s.live()) {
        let Step::Settled(settled) = &slot.step else { continue };
        let sub = &entries[slot.at].item.submission;
        let source = sub.source.as_str();
        if !inbox.contains(sub.id.as_uuid()) {
            tally.received(source, sub.received_at);
        }
        let provider_time = leadflow_core::health::tally::provider_time(&sub.payload);
        tally.settled(source, settled.outcome == Outcome::Merged, provider_time, OffsetDateTime::now_utc());
        // The inbox row is written once, settled: an insert, not an insert and an update.
        units.push(apply::unit(&settled.changes, |change| match change {
            Change::Processed { lead, outcome, .. } => {
                Some(submission_op(sub, SubmissionStatus::Processed, Some((*lead, *outcome)), None))
            }
            _ => None,
        })?);
    }
    // Last: the counts' rows are shared by every transaction of the source, so they are
    // held from here to the commit only.
    units.push(super::health::ops(&tally));
    let last = !slots.iter().any(|s| s.deferred);
    apply::apply_units(c, units, commit && last).await?;

    let mut left = Vec::new();
    for slot in slots {
        if slot.deferred {
            // One that waited from the start keeps its lookup (it depends on nothing
            // stored); one that went further starts again.
            left.push(match slot.step {
                Step::Lookup(..) => Slot { deferred: false, ..slot },
                _ => lookup(slot.at, &entries[slot.at], OffsetDateTime::now_utc()),
            });
        } else if let Step::Settled(settled) = slot.step {
            let submission_id = entries[slot.at].item.submission.id;
            answers[slot.at] = Some(Captured::Settled {
                submission_id,
                outcome: settled.outcome,
                lead: Box::new(settled.lead),
                replayed: false,
            });
        }
    }
    Ok(left)
}

/// The first step: what the submission looks the person up by, claimed for writing (a
/// new or merged lead will hold those keys), with its inbox row and identities.
fn lookup<'a>(at: usize, entry: &'a Entry<'a>, now: OffsetDateTime) -> Slot<'a> {
    let Entry { item, rules } = entry;
    let sub = &item.submission;
    let meta = SubmissionMeta { id: sub.id, source: sub.source.clone(), received_at: sub.received_at };
    let settling = Settle::new(item.candidate.clone(), meta, rules, now);
    let lookup = settling.lookup();
    let mut claim = Claim::default();
    claim.write("submission", sub.id.as_uuid().as_bytes());
    if let Some(key) = &sub.idempotency_key {
        claim.write("idempotency", format!("{}\0{}", sub.source.as_str(), key.as_str()));
    }
    if let Some(mailbox) = &lookup.mailbox {
        claim.write("mailbox", mailbox);
    }
    // Two captures of one phone-only person wait for each other, as for a mailbox.
    for key in &lookup.keys {
        claim.write("key", key);
    }
    // The events waiting for the person, found and attached by these.
    if let Some(email) = &item.candidate.fields.email {
        claim.write("email", email.as_str());
    }
    if let Some(external) = &item.candidate.fields.external_id {
        claim.write("external_id", external);
    }
    if let Some(visitor) = item.candidate.visitor_id() {
        claim.write("anonymous_id", visitor);
    }
    Slot { at, claim, deferred: false, step: Step::Lookup(settling, lookup) }
}

/// What the changes write beyond the leads and keys already claimed: a lead's new match
/// keys (a merge brings the other's), accounts and the keys they take, a visitor id.
fn claim_writes(claim: &mut Claim, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Lead { lead, index, .. } => {
                claim.write("lead", lead.id.as_uuid().as_bytes());
                if let Some(mailbox) = &index.email_key {
                    claim.write("mailbox", mailbox);
                }
            }
            Change::MergedAway { lead, .. } => claim.write("lead", lead.as_uuid().as_bytes()),
            Change::Account(account) => {
                claim.write("account", account.id.as_uuid().as_bytes());
                for key in accounts::keys_of(account) {
                    claim.write("account_key", key);
                }
            }
            Change::AccountKeys { account, keys } => {
                claim.write("account", account.as_uuid().as_bytes());
                for key in keys {
                    claim.write("account_key", key);
                }
            }
            Change::Visitor { anonymous_id, .. } => claim.write("anonymous_id", anonymous_id),
            _ => {}
        }
    }
}

/// What the first round trip of a round read.
#[derive(Default)]
struct Lookups {
    /// Rows of [`EARLIER`], by slot.
    earlier: Vec<(usize, Row)>,
    by_mailbox: HashMap<usize, Vec<Lead>>,
    context: Loaded,
}

/// Context read so far, and what was asked for it, so a later read asks only the rest.
#[derive(Default)]
struct Loaded {
    asked_accounts: HashSet<String>,
    accounts: HashMap<String, Account>,
    /// By slot: who was asked for, and the events waiting for them.
    waiting: HashMap<usize, (Identities, Vec<Event>)>,
    events: HashMap<usize, Vec<Event>>,
}

/// The earlier submissions with the live slots' keys and the leads holding their
/// mailboxes; and, expecting new leads, the accounts their
/// companies claim and the events waiting for them: one round trip, behind `open`.
async fn load_lookups(
    c: &impl GenericClient,
    entries: &[Entry<'_>],
    slots: &[Slot<'_>],
    open: Opening<'_>,
) -> Result<Lookups, Fail> {
    let (mut keyed, mut sources, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    let (mut mailboxed, mut mailboxes) = (Vec::new(), Vec::new());
    let mut account_keys: Vec<String> = Vec::new();
    let mut who: Vec<(usize, Identities)> = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        let Step::Lookup(_, lookup) = &slot.step else { continue };
        if !slot.live() {
            continue;
        }
        let item = entries[slot.at].item;
        let sub = &item.submission;
        if let Some(key) = &sub.idempotency_key {
            keyed.push(i);
            sources.push(sub.source.as_str());
            keys.push(key.as_str());
        }
        if let Some(mailbox) = &lookup.mailbox {
            mailboxed.push(i);
            mailboxes.push(Blind(mailbox.as_str()));
        }
        // What the lead reads next if it is new, as `Merged::context` will ask.
        let candidate = &item.candidate;
        account_keys.extend(account::Claim::of(&candidate.fields, &candidate.derived).keys());
        let identities = Identities {
            email: candidate.fields.email.as_ref().map(|e| e.as_str().to_owned()),
            external_id: candidate.fields.external_id.clone(),
            anonymous_id: candidate.visitor_id(),
        };
        if identities != Identities::default() {
            who.push((i, identities));
        }
    }
    account_keys.sort_unstable();
    account_keys.dedup();
    // Each key its own index probe (a nested loop forced by `OFFSET 0`), whatever the
    // planner guesses of the array and the table.
    const MAILBOX: &str = "SELECT k.n, l.doc FROM unnest($1::text[]) WITH ORDINALITY AS k (key, n)
         CROSS JOIN LATERAL (SELECT doc FROM leads WHERE email_key = k.key AND merged_into IS NULL OFFSET 0) l";
    // Prepared first, so that the statements go out in this order: the locks before any
    // read.
    let lock_s = prepared(c, sql::key_locks_statement(open.locks), !open.locks.is_empty()).await?;
    let earlier_s = prepared(c, EARLIER, !keyed.is_empty()).await?;
    let mailbox_s = prepared(c, MAILBOX, !mailboxed.is_empty()).await?;
    let accounts_s = prepared(c, accounts::BY_KEYS, !account_keys.is_empty()).await?;
    let waiting_s = prepared(c, WAITING, !who.is_empty()).await?;
    let begin = async {
        if open.begin {
            c.batch_execute("BEGIN").await?;
        }
        Ok::<_, Fail>(())
    };
    let waiting_params = identity_columns(&who);
    let ((_, _, earlier, mailbox), (accounts, waiting)) = try_join(
        try_join4(
            begin,
            async {
                match &lock_s {
                    Some(s) => sql::take_key_locks(c, s, open.locks).await,
                    None => Ok(()),
                }
            },
            query(c, earlier_s.as_ref(), &[&sources, &keys]),
            query(c, mailbox_s.as_ref(), &[&mailboxes]),
        ),
        try_join(
            query(c, accounts_s.as_ref(), &[&account_keys]),
            query(c, waiting_s.as_ref(), &[&waiting_params.0, &waiting_params.1, &waiting_params.2]),
        ),
    )
    .await?;

    let mut loaded = Lookups::default();
    for row in earlier {
        loaded.earlier.push((nth(&row, &keyed)?, row));
    }
    for row in &mailbox {
        loaded.by_mailbox.entry(nth(row, &mailboxed)?).or_default().push(lead_from_row(row, 1)?);
    }
    loaded.context.accounts = accounts::found_by_key(&accounts)?;
    loaded.context.asked_accounts = account_keys.into_iter().collect();
    let asked: Vec<usize> = who.iter().map(|(i, _)| *i).collect();
    let mut waiting_by_slot = events_by_slot(&waiting, &asked)?;
    for (i, identities) in who {
        let events = waiting_by_slot.remove(&i).unwrap_or_default();
        loaded.context.waiting.insert(i, (identities, events));
    }
    Ok(loaded)
}

/// Events with no lead yet naming one of these people (`$1` emails, `$2` external ids,
/// `$3` visitor ids, one person per place), by place; each arm reads its own partial
/// index. An event naming a person two ways comes twice; the core counts it once.
const WAITING: &str = "SELECT w.n, e.doc
     FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS w (email, external_id, anonymous_id, n)
     CROSS JOIN LATERAL (
         SELECT doc FROM events WHERE lead_id IS NULL AND email = w.email
         UNION ALL SELECT doc FROM events WHERE lead_id IS NULL AND external_id = w.external_id
         UNION ALL SELECT doc FROM events WHERE lead_id IS NULL AND anonymous_id = w.anonymous_id
     ) e";

type IdentityColumns<'a> = (Vec<Option<Blind<String>>>, Vec<Option<Blind<&'a str>>>, Vec<Option<&'a str>>);

fn identity_columns(who: &[(usize, Identities)]) -> IdentityColumns<'_> {
    (
        // As events store it (see `apply`).
        who.iter().map(|(_, w)| w.email.as_deref().map(|e| Blind(e.trim().to_lowercase()))).collect(),
        who.iter().map(|(_, w)| w.external_id.as_deref().map(Blind)).collect(),
        who.iter().map(|(_, w)| w.anonymous_id.as_deref()).collect(),
    )
}

/// The slot a row answers, from its first column (the 1-based place in the arrays).
fn nth(row: &Row, places: &[usize]) -> Result<usize, Fail> {
    let n: i64 = row.try_get(0)?;
    usize::try_from(n - 1)
        .ok()
        .and_then(|n| places.get(n).copied())
        .ok_or_else(|| StoreError::Internal("a row answers no submission".into()).into())
}

fn events_by_slot(rows: &[Row], places: &[usize]) -> Result<HashMap<usize, Vec<Event>>, Fail> {
    let mut by_slot: HashMap<usize, Vec<Event>> = HashMap::new();
    for row in rows {
        by_slot.entry(nth(row, places)?).or_default().push(row.try_get::<_, Opened<Event>>(1)?.0);
    }
    Ok(by_slot)
}

/// A statement prepared (cached per connection) if it is to run.
async fn prepared(c: &impl GenericClient, sql: &str, needed: bool) -> Result<Option<Statement>, Fail> {
    Ok(if needed { Some(c.prepare_cached(sql).await?) } else { None })
}

/// Runs a prepared statement, or answers nothing for one that was not needed. Sent when
/// first polled: futures polled together go out in the order polled.
async fn query(
    c: &impl GenericClient,
    statement: Option<&Statement>,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, Fail> {
    match statement {
        Some(s) => Ok(c.query(s, params).await?),
        None => Ok(Vec::new()),
    }
}

/// The leads with these ids and those they were merged into, each row locked, by id.
pub(super) async fn load_leads(
    c: &impl GenericClient,
    ids: Vec<Uuid>,
) -> Result<HashMap<Uuid, (Option<Uuid>, Lead)>, Fail> {
    let mut stored = HashMap::new();
    let mut next = ids;
    for _ in 0..MAX_MERGE_HOPS {
        next.retain(|id| !stored.contains_key(id));
        next.sort_unstable();
        next.dedup();
        if next.is_empty() {
            return Ok(stored);
        }
        // In id order, so two transactions lock shared leads in one order.
        let rows = super::sql::rows(
            c,
            "SELECT id, merged_into, doc FROM leads WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            &[&next],
        )
        .await?;
        next = Vec::new();
        for row in rows {
            let id: Uuid = row.try_get(0)?;
            let into: Option<Uuid> = row.try_get(1)?;
            next.extend(into);
            stored.insert(id, (into, lead_from_row(&row, 2)?));
        }
    }
    Err(StoreError::Corrupt(format!("a lead is merged through more than {MAX_MERGE_HOPS} hops")).into())
}

/// The lead `id` names, followed through merges; `None` when it is gone.
pub(super) fn survivor(stored: &HashMap<Uuid, (Option<Uuid>, Lead)>, id: LeadId) -> Result<Option<Lead>, Fail> {
    let mut current = *id.as_uuid();
    for _ in 0..=MAX_MERGE_HOPS {
        match stored.get(&current) {
            None => return Ok(None),
            Some((Some(into), _)) => current = *into,
            Some((None, lead)) => return Ok(Some(lead.clone())),
        }
    }
    Err(StoreError::Corrupt(format!("lead {id} is merged through more than {MAX_MERGE_HOPS} hops")).into())
}

/// Reads what the live slots' context queries ask and `loaded` lacks: accounts of keys
/// not asked yet, waiting events of people other than the ones asked for, and the earlier
/// events of the leads joined. One round trip, none when nothing is missing.
async fn load_context(c: &impl GenericClient, slots: &[Slot<'_>], loaded: &mut Loaded) -> Result<(), Fail> {
    let mut account_keys: Vec<&str> = Vec::new();
    let mut who: Vec<(usize, Identities)> = Vec::new();
    let mut scored: Vec<(usize, LeadId)> = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        let Step::Merged(_, query) = &slot.step else { continue };
        if !slot.live() {
            continue;
        }
        account_keys
            .extend(query.account_keys.iter().filter(|k| !loaded.asked_accounts.contains(*k)).map(String::as_str));
        let asked = loaded.waiting.get(&i).map(|(w, _)| w);
        let anyone = query.waiting != Identities::default();
        if asked != Some(&query.waiting) {
            loaded.waiting.remove(&i);
            if anyone {
                who.push((i, query.waiting.clone()));
            }
        }
        scored.extend(query.events_of.map(|lead| (i, lead)));
    }
    if account_keys.is_empty() && who.is_empty() && scored.is_empty() {
        return Ok(());
    }
    account_keys.sort_unstable();
    account_keys.dedup();
    let accounts_s = prepared(c, accounts::BY_KEYS, !account_keys.is_empty()).await?;
    let waiting_s = prepared(c, WAITING, !who.is_empty()).await?;
    let waiting_params = identity_columns(&who);
    let leads: Vec<LeadId> = scored.iter().map(|(_, lead)| *lead).collect();
    let earlier = async {
        if leads.is_empty() {
            return Ok(HashMap::new());
        }
        engagement::families_events(c, &leads, settle::MAX_SCORED_EVENTS).await
    };
    let (accounts, waiting, mut earlier) = try_join3(
        query(c, accounts_s.as_ref(), &[&account_keys]),
        query(c, waiting_s.as_ref(), &[&waiting_params.0, &waiting_params.1, &waiting_params.2]),
        earlier,
    )
    .await?;
    loaded.accounts.extend(accounts::found_by_key(&accounts)?);
    loaded.asked_accounts.extend(account_keys.into_iter().map(str::to_owned));
    let asked: Vec<usize> = who.iter().map(|(i, _)| *i).collect();
    let mut waiting_by_slot = events_by_slot(&waiting, &asked)?;
    for (i, identities) in who {
        let events = waiting_by_slot.remove(&i).unwrap_or_default();
        loaded.waiting.insert(i, (identities, events));
    }
    loaded.events.extend(scored.iter().map(|(i, lead)| (*i, earlier.remove(lead).unwrap_or_default())));
    Ok(())
}
