//! Settle: what one captured submission changes, decided over what the store loaded.
//!
//! The store runs these steps inside the transaction that commits the submission, and
//! between them loads what the next step needs; every decision is here, written once:
//!
//! 1. [`Settle::lookup`]: the keys to find the person by (the email's mailbox key; with
//!    fuzzy matching, the blocking keys). The store answers with the leads holding them.
//! 2. [`Settle::decide`]: match or create ([`resolve::decide`] over the ranked
//!    candidates). [`Decided::leads`] names the lead to join and the leads the submission
//!    bridges; the store loads each, followed through earlier merges (and locks them, on
//!    PostgreSQL).
//! 3. [`Decided::merge`]: the candidate merges into its lead or becomes a new one.
//!    [`Merged::context`] names what the rest needs: the account keys the lead claims,
//!    the events waiting for the person, the lead's earlier events for scoring.
//! 4. [`Merged::finish`]: account, visitor, waiting events, touchpoint, score and stage,
//!    the lead, its history, deliveries and routing, reviews of possible duplicates, and
//!    bridges, as [`Change`]s for the store to apply in order.
//!
//! Nothing here fails: a store that cannot load or apply fails the transaction, and the
//! submission stays in the inbox as pending.

use crate::Email;
use crate::account::{self, Found};
use crate::changes::{self, Change, LeadIndex};
use crate::engagement::{self, Event};
use crate::ids::{EventId, LeadId, ReviewId};
use crate::lead::Lead;
use crate::normalize::Candidate;
use crate::pipeline::{self, HistoryEntry, LeadEvent, Outcome, Rules, SubmissionMeta};
use crate::resolve::{self, Bridge, Decision, Matching, Record};
use time::OffsetDateTime;

/// Scoring reads at most this many of a lead's most recent events: behavioural rules look
/// at recent activity, and an unbounded history would make every capture slower.
pub const MAX_SCORED_EVENTS: usize = 2_000;
/// Most leads one lookup compares with; candidates sharing several keys come first.
pub const MAX_CANDIDATES: usize = 64;
/// A key shared by more leads than this (a common name with a common initial) says
/// little about identity: it is a stop key, skipped when the candidate has rarer keys.
pub const STOP_KEY_POSTINGS: usize = 32;
/// How many leads the store reads per blocking key: one more than a stop key's limit, so
/// that a stop key shows itself.
pub const POSTINGS_PER_KEY: usize = STOP_KEY_POSTINGS + 1;

/// A submission about to be settled.
#[derive(Debug)]
pub struct Settle<'r> {
    candidate: Candidate,
    meta: SubmissionMeta,
    record: Record,
    rules: &'r Rules,
    now: OffsetDateTime,
}

/// The keys to look the person up by.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lookup {
    /// The email's match key: the leads whose `email_key` it is.
    pub mailbox: Option<String>,
    /// Blocking keys (fuzzy matching only): up to [`POSTINGS_PER_KEY`] leads of each,
    /// newest first.
    pub keys: Vec<String>,
}

/// The leads that may be the person, as the store found them for a [`Lookup`].
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    /// The surviving leads with the mailbox key.
    pub by_mailbox: Vec<Lead>,
    /// The leads holding the blocking keys, with their match records, as [`rank`] chose
    /// them from each key's postings (the store ranks before it parses the records).
    pub ranked: Vec<(LeadId, Record)>,
}

impl<'r> Settle<'r> {
    pub fn new(candidate: Candidate, meta: SubmissionMeta, rules: &'r Rules, now: OffsetDateTime) -> Self {
        let record = resolve::match_record(&candidate.fields, &candidate.derived);
        Self { candidate, meta, record, rules, now }
    }

    pub fn lookup(&self) -> Lookup {
        lookup(&self.record, self.candidate.fields.email.as_ref(), &self.rules.matching)
    }

    /// Match or create, over the leads the lookup found.
    pub fn decide(self, found: Candidates) -> Decided<'r> {
        let decision = decide(&self.record, found, &self.rules.matching);
        Decided { settle: self, decision }
    }
}

/// The keys to find a record's person by.
pub fn lookup(record: &Record, email: Option<&Email>, matching: &Matching) -> Lookup {
    Lookup {
        mailbox: email.map(|e| matching.email_key(e)),
        keys: if matching.fuzzy { resolve::blocking_keys(record, &matching.model) } else { Vec::new() },
    }
}

/// Match or create, over the leads a lookup found. Exact email comes first: it also finds
/// leads stored while fuzzy matching was off, which have no blocking keys.
pub fn decide(record: &Record, found: Candidates, matching: &Matching) -> Decision {
    let mut compared: Vec<(LeadId, Record)> =
        found.by_mailbox.iter().map(|l| (l.id, resolve::match_record(&l.fields, &l.derived))).collect();
    for (id, r) in found.ranked {
        if compared.iter().all(|(known, _)| *known != id) {
            compared.push((id, r));
        }
    }
    matching.with_model(|model| resolve::decide(record, &compared, model))
}

/// Chooses the candidates worth comparing from each blocking key's postings: keys held by
/// more than [`STOP_KEY_POSTINGS`] leads are skipped unless every key is that common (then
/// the most recent leads of the rarest stand in); leads sharing more keys come first; at
/// most [`MAX_CANDIDATES`]. Generic over how the store holds ids and records, so it can
/// parse only the chosen ones.
pub fn rank<I: PartialEq, R>(postings: Vec<Vec<(I, R)>>) -> Vec<(I, R)> {
    let selective = postings.iter().any(|p| p.len() <= STOP_KEY_POSTINGS);
    let chosen: Vec<Vec<(I, R)>> = if selective {
        postings.into_iter().filter(|p| p.len() <= STOP_KEY_POSTINGS).collect()
    } else {
        postings.into_iter().min_by_key(Vec::len).into_iter().collect()
    };
    let mut hits: Vec<(I, R, usize)> = Vec::new();
    for (id, record) in chosen.into_iter().flatten() {
        match hits.iter_mut().find(|(known, _, _)| *known == id) {
            Some(hit) => hit.2 += 1,
            None => hits.push((id, record, 1)),
        }
    }
    // Stable: among leads sharing as many keys, the order the store gave (newest first).
    hits.sort_by_key(|hit| std::cmp::Reverse(hit.2));
    hits.truncate(MAX_CANDIDATES);
    hits.into_iter().map(|(id, record, _)| (id, record)).collect()
}

/// A decision, waiting for the leads it names.
#[derive(Debug)]
pub struct Decided<'r> {
    settle: Settle<'r>,
    decision: Decision,
}

impl<'r> Decided<'r> {
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The leads to load, each followed through merges: the lead to join first, then the
    /// leads bridged into it. Empty for a new lead.
    pub fn leads(&self) -> Vec<LeadId> {
        match &self.decision {
            Decision::Merge { into, also, .. } => {
                std::iter::once(*into).chain(also.iter().map(|b| b.lead_id)).collect()
            }
            Decision::Create { .. } => Vec::new(),
        }
    }

    /// merge or create → attribute. `loaded` answers [`Decided::leads`], in order (`None`
    /// for a lead that is gone).
    pub fn merge(self, mut loaded: Vec<Option<Lead>>) -> Merged<'r> {
        let Settle { candidate, meta, rules, now, .. } = self.settle;
        let mut loaded = loaded.drain(..);
        // Never into a tombstone: an erased person who comes back is a new lead.
        let target = loaded.next().flatten().filter(|l| l.erased_at.is_none());
        // Only a submission that joined a lead brings other leads into it.
        let bridges: Vec<(Bridge, Lead)> = match (&target, &self.decision) {
            (Some(_), Decision::Merge { also, .. }) => {
                also.iter().cloned().zip(loaded).filter_map(|(b, l)| l.map(|l| (b, l))).collect()
            }
            _ => Vec::new(),
        };
        let expected = target.as_ref().map(|l| l.version);
        let visitor = candidate.visitor_id();
        let settlement = pipeline::settle(candidate, &meta, self.decision, target, now, rules);
        Merged { settlement, expected, visitor, bridges, meta, rules, now }
    }
}

/// The candidate merged or created, waiting for its context.
#[derive(Debug)]
pub struct Merged<'r> {
    settlement: pipeline::Settlement,
    /// The version the joined lead had when loaded; `None` for a new lead.
    expected: Option<u64>,
    visitor: Option<String>,
    bridges: Vec<(Bridge, Lead)>,
    meta: SubmissionMeta,
    rules: &'r Rules,
    now: OffsetDateTime,
}

/// What the rest of settling reads, for the store to load.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContextQuery {
    /// The account keys the lead claims (empty when it has an account or claims none):
    /// the accounts holding any of them.
    pub account_keys: Vec<String>,
    /// Events with no lead yet that name the person one of these ways.
    pub waiting: Identities,
    /// The lead whose events (and those of the leads merged into it), newest first, at
    /// most [`MAX_SCORED_EVENTS`], feed its score; `None` for a new lead, which has none.
    pub events_of: Option<LeadId>,
}

/// The ways an event can name a person before it belongs to a lead.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identities {
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub anonymous_id: Option<String>,
}

/// The store's answer to a [`ContextQuery`].
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Each account key held, with its account.
    pub accounts: Vec<Found>,
    pub waiting: Vec<Event>,
    pub events: Vec<Event>,
}

/// What settling decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Settled {
    pub outcome: Outcome,
    /// The lead as it stands after every change.
    pub lead: Lead,
    /// To apply in order. [`Change::Processed`] marks where the submission's inbox row is
    /// settled: after the lead it names, before the history that names it.
    pub changes: Vec<Change>,
}

impl Merged<'_> {
    pub fn context(&self) -> ContextQuery {
        let lead = &self.settlement.lead;
        ContextQuery {
            account_keys: account::wanted_keys(lead),
            waiting: Identities {
                email: lead.fields.email.as_ref().map(|e| Email::as_str(e).to_owned()),
                external_id: lead.fields.external_id.clone(),
                anonymous_id: self.visitor.clone(),
            },
            events_of: (lead.version > 1).then_some(lead.id),
        }
    }

    pub fn finish(self, context: Context) -> Settled {
        let Merged { settlement, expected, visitor, bridges, meta, rules, now } = self;
        let pipeline::Settlement { outcome, mut lead, history, touch, possible_duplicates } = settlement;
        let mut out = Vec::new();
        out.extend(account::join(&mut lead, &context.accounts, now));
        if let Some(anonymous_id) = visitor {
            out.push(Change::Visitor { anonymous_id, lead: lead.id });
        }
        let mut waiting = context.waiting;
        waiting.sort_by_key(|e| e.id);
        waiting.dedup_by_key(|e| e.id);
        let attached: Vec<EventId> = waiting.iter().map(|e| e.id).collect();
        let mut rescored = Vec::new();
        if !attached.is_empty() {
            rescored.push(LeadEvent::EventsAttached { count: attached.len() as u64 });
            out.push(Change::AttachEvents { lead: lead.id, events: attached });
        }
        out.push(Change::Touchpoint { lead: lead.id, touch: Box::new(touch) });
        let mut events = context.events;
        events.extend(waiting);
        events.sort_by_key(|e| std::cmp::Reverse(e.occurred_at));
        events.truncate(MAX_SCORED_EVENTS);
        let views: Vec<_> = events.iter().map(Event::view).collect();
        rescored.extend(engagement::rescore(&mut lead, &views, &rules.engagement, now));

        let index = LeadIndex::of(&lead, &rules.matching);
        out.push(Change::Lead { lead: Box::new(lead.clone()), expected, index });
        out.push(Change::Processed { submission: meta.id, lead: lead.id, outcome });
        let follow = changes::follow_up(&lead, &history.event, rules, now);
        out.push(Change::History { entry: history, submission: Some(meta.id) });
        out.extend(follow);
        out.extend(changes::record(&lead, rescored, rules, now));
        if !possible_duplicates.is_empty() {
            let lead_ids = possible_duplicates.iter().map(|p| p.lead_id).collect();
            for p in possible_duplicates {
                out.push(Change::Review {
                    id: ReviewId::new(),
                    lead: lead.id,
                    candidate: p.lead_id,
                    score: p.score,
                    evidence: p.evidence,
                    at: now,
                });
            }
            let entry = HistoryEntry { lead_id: lead.id, at: now, event: LeadEvent::PossibleDuplicates { lead_ids } };
            out.push(Change::History { entry, submission: None });
        }
        let mut absorbed: Vec<LeadId> = Vec::new();
        for (bridge, other) in bridges {
            // A lead bridged twice (two bridges that lead to one survivor) merges once.
            if absorbed.contains(&other.id) {
                continue;
            }
            if let Some(merge) = crate::merges::absorb(&mut lead, &other, bridge.explanation, rules, now) {
                absorbed.push(other.id);
                out.extend(merge);
            }
        }
        Settled { outcome, lead, changes: out }
    }
}
