//! Settle: what one captured submission changes, decided over what the store loaded.
//!
//! The store runs these steps inside the transaction that commits the submission, and
//! between them loads what the next step needs; every decision is here, written once:
//!
//! 1. [`Settle::lookup`]: the keys to find the person by (the email's mailbox key). The
//!    store answers with the leads holding them. Fuzzy matching is not done here: the
//!    lead is queued for the resolver ([`crate::resolve::queued`]) in this transaction.
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
    /// Blocking keys (the resolver's lookups; capture asks none): up to
    /// [`POSTINGS_PER_KEY`] leads of each, newest first.
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
        let mut lookup = lookup(self.candidate.fields.email.as_ref(), &self.rules.matching);
        if self.rules.matching.exact_phone {
            lookup.keys = phone_key(&self.record, &self.rules.matching.model).into_iter().collect();
        }
        lookup
    }

    /// Match or create, over the leads the lookup found.
    pub fn decide(self, found: Candidates) -> Decided<'r> {
        let decision = decide(&self.record, found, &self.rules.matching);
        Decided { settle: self, decision }
    }
}

/// The keys to find a record's person by at capture: the mailbox only.
pub fn lookup(email: Option<&Email>, matching: &Matching) -> Lookup {
    Lookup { mailbox: email.map(|e| matching.email_key(e)), keys: Vec::new() }
}

/// The record's phone blocking key (`p:` and its E.164 digits), if it has a phone.
fn phone_key(record: &Record, model: &resolve::Model) -> Option<String> {
    resolve::blocking_keys(record, model).into_iter().find(|k| k.starts_with("p:"))
}

/// Match or create, over the leads a lookup found. Exact email comes first.
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
    pub fn merge(self, loaded: Vec<Option<Lead>>) -> Merged<'r> {
        let Settle { mut candidate, meta, rules, now, .. } = self.settle;
        let ledger = match candidate.consent.as_mut() {
            Some(consent) => {
                let page = candidate.fields.landing_page_url.as_deref();
                crate::consent::date(consent, meta.received_at, meta.source.as_str(), page);
                crate::consent::entries(consent, meta.id, rules.channel(&meta.source), now)
            }
            None => Vec::new(),
        };
        let mut loaded = loaded.into_iter();
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
        let before = target.as_ref().map(|l| resolve::match_record(&l.fields, &l.derived));
        let visitor = candidate.visitor_id();
        let settlement = pipeline::settle(candidate, &meta, self.decision, target, now, rules);
        Merged { settlement, expected, before, visitor, bridges, ledger, meta, rules, now }
    }
}

/// The candidate merged or created, waiting for its context.
#[derive(Debug)]
pub struct Merged<'r> {
    settlement: pipeline::Settlement,
    /// The version the joined lead had when loaded; `None` for a new lead.
    expected: Option<u64>,
    /// The joined lead's match record when loaded; `None` for a new lead.
    before: Option<Record>,
    visitor: Option<String>,
    bridges: Vec<(Bridge, Lead)>,
    /// The consent ledger entries the submission brings.
    ledger: Vec<crate::consent::Entry>,
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
        let Merged { settlement, expected, before, visitor, bridges, ledger, meta, rules, now } = self;
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
            out.push(Change::AttachEvents { lead: lead.id, events: attached, at: now });
        }
        out.push(Change::Touchpoint { lead: lead.id, touch: Box::new(touch) });
        if !ledger.is_empty() {
            out.push(Change::Consent { lead: lead.id, entries: ledger });
        }
        let mut events = context.events;
        events.extend(waiting);
        events.sort_by_key(|e| std::cmp::Reverse(e.occurred_at));
        events.truncate(MAX_SCORED_EVENTS);
        let views: Vec<_> = events.iter().map(Event::view).collect();
        rescored.extend(engagement::rescore(&mut lead, &views, &rules.engagement, now));

        let index = LeadIndex::mailbox(&lead, &rules.matching);
        out.push(Change::Lead { lead: Box::new(lead.clone()), expected, index });
        // A new lead, or one whose identity changed, waits for the resolver; a repeat
        // that changed no compared field does not.
        if rules.matching.fuzzy && before.as_ref() != Some(&resolve::match_record(&lead.fields, &lead.derived)) {
            out.push(Change::Resolve { lead: lead.id });
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engagement::Identity;
    use crate::ids::SubmissionId;
    use crate::source::SourceName;
    use crate::testing::lead;
    use serde_json::json;

    fn settle<'r>(v: serde_json::Value, rules: &'r Rules) -> Settle<'r> {
        let candidate =
            pipeline::prepare(v.as_object().unwrap(), &crate::config::SourceConfig::api(), &Default::default())
                .unwrap();
        let meta = SubmissionMeta {
            id: SubmissionId::new(),
            source: SourceName::parse("webinar").unwrap(),
            received_at: OffsetDateTime::now_utc(),
        };
        Settle::new(candidate, meta, rules, OffsetDateTime::now_utc())
    }

    fn kinds(changes: &[Change]) -> Vec<&'static str> {
        changes
            .iter()
            .map(|c| match c {
                Change::Lead { expected: None, .. } => "insert lead",
                Change::Lead { .. } => "update lead",
                Change::MergedAway { .. } => "merged away",
                Change::History { .. } => "history",
                Change::Processed { .. } => "processed",
                Change::Touchpoint { .. } => "touchpoint",
                Change::Visitor { .. } => "visitor",
                Change::AttachEvents { .. } => "attach events",
                Change::Account(_) => "account",
                Change::AccountKeys { .. } => "account keys",
                Change::Review { .. } => "review",
                Change::Resolve { .. } => "resolve",
                _ => "other",
            })
            .collect()
    }

    fn waiting(email: &str, kind: &str) -> Event {
        Event {
            id: EventId::new(),
            kind: kind.into(),
            occurred_at: OffsetDateTime::now_utc(),
            url: None,
            properties: Default::default(),
            lead_id: None,
            identity: Identity { email: Some(email.into()), ..Default::default() },
        }
    }

    #[test]
    fn a_new_person_becomes_a_lead_with_its_account_touchpoint_and_history_in_that_order() {
        let rules = Rules::default();
        let s = settle(json!({"email": "ada@acme.com", "company": "Acme"}), &rules);
        assert_eq!(s.lookup().mailbox.as_deref(), Some("ada@acme.com"));
        let decided = s.decide(Candidates::default());
        assert!(decided.leads().is_empty());
        let merged = decided.merge(Vec::new());
        let query = merged.context();
        assert!(query.account_keys.contains(&"d:acme.com".to_owned()), "{query:?}");
        assert_eq!(query.events_of, None, "a new lead has no events of its own");
        let done = merged.finish(Context::default());
        assert_eq!(done.outcome, Outcome::Created);
        assert!(done.lead.account_id.is_some());
        // The account before the lead that names it; the inbox row after the lead, before
        // the history that names the submission.
        assert_eq!(kinds(&done.changes), ["account", "touchpoint", "insert lead", "resolve", "processed", "history"]);
    }

    #[test]
    fn a_repeat_that_changes_no_compared_field_is_not_resolved_again() {
        let rules = Rules::default();
        let stored = lead("ada@example.com");
        let settled = |payload: serde_json::Value| {
            let decided =
                settle(payload, &rules).decide(Candidates { by_mailbox: vec![stored.clone()], ranked: Vec::new() });
            let merged = decided.merge(vec![Some(stored.clone())]);
            kinds(&merged.finish(Context::default()).changes)
        };
        assert!(!settled(json!({"email": "ada@example.com", "utm_source": "ads"})).contains(&"resolve"));
        assert!(settled(json!({"email": "ada@example.com", "last_name": "Lovelace"})).contains(&"resolve"));
        let off = Rules {
            matching: std::sync::Arc::new(crate::resolve::Matching { fuzzy: false, ..Default::default() }),
            ..Rules::default()
        };
        let decided = settle(json!({"email": "grace@example.com"}), &off).decide(Candidates::default());
        assert!(!kinds(&decided.merge(Vec::new()).finish(Context::default()).changes).contains(&"resolve"));
    }

    #[test]
    fn the_same_mailbox_merges_at_the_version_it_was_loaded_with() {
        let rules = Rules::default();
        let stored = lead("ada@example.com");
        let s = settle(json!({"email": "ADA@example.com", "city": "Lyon"}), &rules);
        let decided = s.decide(Candidates { by_mailbox: vec![stored.clone()], ranked: Vec::new() });
        assert_eq!(decided.leads(), vec![stored.id]);
        let done = decided.merge(vec![Some(stored.clone())]).finish(Context::default());
        assert_eq!(done.outcome, Outcome::Merged);
        assert_eq!(done.lead.id, stored.id);
        let write = done.changes.iter().find(|c| matches!(c, Change::Lead { .. }));
        assert!(matches!(write, Some(Change::Lead { expected: Some(1), lead, .. }) if lead.version == 2), "{write:?}");
    }

    #[test]
    fn an_erased_lead_is_never_merged_into() {
        let rules = Rules::default();
        let mut stored = lead("ada@example.com");
        stored.erased_at = Some(OffsetDateTime::now_utc());
        let s = settle(json!({"email": "ada@example.com"}), &rules);
        let decided = s.decide(Candidates { by_mailbox: vec![stored.clone()], ranked: Vec::new() });
        let done = decided.merge(vec![Some(stored.clone())]).finish(Context::default());
        assert_eq!(done.outcome, Outcome::Created);
        assert_ne!(done.lead.id, stored.id);
    }

    #[test]
    fn waiting_events_are_attached_once_and_counted_in_history() {
        let rules = Rules::default();
        let s = settle(json!({"email": "ada@example.com", "custom": {"anonymous_id": "v-1"}}), &rules);
        let merged = s.decide(Candidates::default()).merge(Vec::new());
        let query = merged.context();
        assert_eq!(query.waiting.anonymous_id.as_deref(), Some("v-1"));
        let event = waiting("ada@example.com", "page_view");
        // Named by email and by visitor id: the store finds it twice.
        let context = Context { waiting: vec![event.clone(), event.clone()], ..Context::default() };
        let done = merged.finish(context);
        let attached: Vec<&Vec<EventId>> = done
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::AttachEvents { events, .. } => Some(events),
                _ => None,
            })
            .collect();
        assert_eq!(attached, [&vec![event.id]]);
        let counted = done.changes.iter().any(
            |c| matches!(c, Change::History { entry, .. } if entry.event == LeadEvent::EventsAttached { count: 1 }),
        );
        assert!(counted, "{:?}", kinds(&done.changes));
    }

    #[test]
    fn a_bridged_lead_is_absorbed_after_the_submission_settles() {
        let rules = Rules::default();
        let (target, other) = (lead("ada@example.com"), lead("ada.l@example.org"));
        let s = settle(json!({"email": "ada@example.com"}), &rules);
        let mut decided = s.decide(Candidates { by_mailbox: vec![target.clone()], ranked: Vec::new() });
        let explanation =
            resolve::Explanation { rule: resolve::MatchRule::Bridged, score: Some(0.99), evidence: vec![] };
        if let Decision::Merge { also, .. } = &mut decided.decision {
            also.push(Bridge { lead_id: other.id, explanation: explanation.clone() });
            also.push(Bridge { lead_id: other.id, explanation });
        }
        assert_eq!(decided.leads(), vec![target.id, other.id, other.id]);
        let done = decided
            .merge(vec![Some(target.clone()), Some(other.clone()), Some(other.clone())])
            .finish(Context::default());
        let away: Vec<&Change> = done.changes.iter().filter(|c| matches!(c, Change::MergedAway { .. })).collect();
        assert_eq!(away.len(), 1, "bridged once: {:?}", kinds(&done.changes));
        assert_eq!(done.lead.version, 3, "the merge, then the bridge");
    }

    #[test]
    fn stop_keys_give_way_to_rarer_keys_and_shared_keys_rank_first() {
        let common: Vec<(u32, ())> = (0..40).map(|i| (i, ())).collect();
        let rare_a = vec![(100, ()), (101, ())];
        let rare_b = vec![(101, ())];
        let ranked: Vec<u32> = rank(vec![common.clone(), rare_a, rare_b]).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ranked, [101, 100], "the stop key is skipped; the lead on two keys comes first");
        // Every key common: the rarest stands in, capped.
        let ranked = rank(vec![common.clone(), common[..35].to_vec()]);
        assert_eq!(ranked.len(), 35);
        let many: Vec<Vec<(u32, ())>> = (0..3).map(|k| (0..30).map(|i| (k * 100 + i, ())).collect()).collect();
        assert_eq!(rank(many).len(), MAX_CANDIDATES);
    }
}
