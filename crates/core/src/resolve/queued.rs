//! Resolution after capture: fuzzy matching off the hot path.
//!
//! Capture settles exact matches (the mailbox key) in its own transaction and, in the same
//! transaction, queues the lead it created or changed ([`Change::Resolve`]). The resolver
//! takes queued leads in the order they were queued and, per batch, in one transaction:
//!
//! 1. [`Queued::new`] over the lead as stored now (followed through merges made since it
//!    was queued); [`Queued::lookup`]: its blocking keys. The store answers with each
//!    key's postings, chosen by [`crate::settle::rank`] as capture's lookups were.
//! 2. [`Queued::decide`]: [`resolve::decide`] over those leads, the lead itself left out.
//!    [`Resolving::leads`] names the leads a merge needs, for the store to load (followed
//!    through merges; locked on PostgreSQL).
//! 3. [`Resolving::finish`]: the older lead of the pair survives and the newer folds into
//!    it with the score and per-field evidence that decided it ([`crate::merges::absorb`]:
//!    the same history, `lead.merged` events and undo as every merge); bridged leads fold
//!    in too. Without a merge, the possible duplicates go to the review queue. Either way
//!    the surviving lead is indexed under its blocking keys, so later leads find it.
//!
//! A merged-away id keeps answering with its survivor, so an id the API returned as
//! `created` stays valid after the resolver merged it.

use crate::changes::{Change, LeadIndex};
use crate::ids::{LeadId, ReviewId};
use crate::lead::Lead;
use crate::pipeline::{HistoryEntry, LeadEvent, Rules};
use crate::resolve::{self, Decision, Explanation, Record};
use crate::settle::Lookup;
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

/// A queued lead about to be resolved.
#[derive(Debug)]
pub struct Queued<'r> {
    lead: Lead,
    record: Record,
    /// Computed once: the lookup and the plan both need them.
    keys: Vec<String>,
    rules: &'r Rules,
    now: OffsetDateTime,
}

/// What resolving one lead decided, waiting for the leads a merge needs.
#[derive(Debug)]
pub struct Resolving<'r> {
    queued: Queued<'r>,
    decision: Decision,
}

/// What resolving one lead changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The lead the queued one now is: itself, or the lead it merged into.
    pub lead: LeadId,
    /// The leads folded into `lead`.
    pub merged: Vec<LeadId>,
    /// Possible duplicates queued for review.
    pub reviews: usize,
    /// To apply in order.
    pub changes: Vec<Change>,
}

impl<'r> Queued<'r> {
    pub fn new(lead: Lead, rules: &'r Rules, now: OffsetDateTime) -> Self {
        let record = resolve::match_record(&lead.fields, &lead.derived);
        let mut keys = resolve::blocking_keys(&record, &rules.matching.model);
        keys.sort_unstable();
        keys.dedup();
        Self { lead, record, keys, rules, now }
    }

    pub fn lead_id(&self) -> LeadId {
        self.lead.id
    }

    /// The blocking keys, sorted: [`Queued::lookup`]'s, without the copy.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The blocking keys to find the lead's possible duplicates by. The mailbox is not
    /// asked: capture already settled it.
    pub fn lookup(&self) -> Lookup {
        Lookup { mailbox: None, keys: self.keys.clone() }
    }

    /// Match or not, over the leads the lookup found.
    pub fn decide<R: Borrow<Record>>(self, found: Vec<(LeadId, R)>) -> Resolving<'r> {
        let others: Vec<(LeadId, R)> = found.into_iter().filter(|(id, _)| *id != self.lead.id).collect();
        let decision = self.rules.matching.with_model(|model| resolve::decide(&self.record, &others, model));
        Resolving { queued: self, decision }
    }
}

impl Resolving<'_> {
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The decision as data, to apply later in another transaction (SQLite decides on
    /// reader connections, beside the writer, and applies in the writer).
    pub fn plan(self) -> Plan {
        let Queued { lead, record, keys, .. } = self.queued;
        Plan { lead: lead.id, record, keys, decision: self.decision }
    }

    /// The leads to load, each followed through merges: the lead matched first, then the
    /// leads bridged into it. Empty without a merge.
    pub fn leads(&self) -> Vec<LeadId> {
        match &self.decision {
            Decision::Merge { into, also, .. } => {
                std::iter::once(*into).chain(also.iter().map(|b| b.lead_id)).collect()
            }
            Decision::Create { .. } => Vec::new(),
        }
    }

    /// The changes, over the leads [`Resolving::leads`] named, in order (`None` for one
    /// that is gone).
    pub fn finish(self, loaded: Vec<Option<Lead>>) -> Resolved {
        let Queued { lead, rules, now, .. } = self.queued;
        let (explanation, bridges, possible) = match self.decision {
            Decision::Merge { explanation, also, .. } => (Some(explanation), also, Vec::new()),
            Decision::Create { possible } => (None, Vec::new(), possible),
        };
        let mut loaded = loaded.into_iter();
        // Never into a tombstone, and never into itself (a lead merged into the queued one
        // since the lookup is already one lead with it).
        let matched = loaded.next().flatten().filter(|l| l.erased_at.is_none() && l.id != lead.id).zip(explanation);
        let Some((matched, explanation)) = matched else {
            return index_or_review(lead, possible, rules, now);
        };
        // The older lead survives: its id is the one people and CRMs have known longest.
        let (mut survivor, absorbed) = if matched.id < lead.id { (matched, lead) } else { (lead, matched) };
        let queued = absorbed.id;
        let mut changes = resolve_merge(&mut survivor, &absorbed, explanation, rules, now);
        let mut merged = vec![queued];
        for (bridge, other) in bridges.into_iter().zip(loaded) {
            let Some(other) = other.filter(|o| !merged.contains(&o.id) && o.id != survivor.id) else { continue };
            let more = resolve_merge(&mut survivor, &other, bridge.explanation, rules, now);
            if !more.is_empty() {
                merged.push(other.id);
                changes.extend(more);
            }
        }
        if changes.is_empty() {
            merged.clear();
        }
        Resolved { lead: survivor.id, merged, reviews: 0, changes }
    }
}

/// A decision taken on a snapshot, applied later: the lead, what it was compared as, and
/// what was decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub lead: LeadId,
    record: Record,
    keys: Vec<String>,
    decision: Decision,
}

impl Plan {
    /// Whether applying the plan merges: then it needs the queued lead and
    /// [`Plan::leads`] loaded as they now stand; otherwise only whether the lead is still
    /// there (not merged away, not erased).
    pub fn merges(&self) -> bool {
        matches!(self.decision, Decision::Merge { .. })
    }

    /// The leads a merge needs, as [`Resolving::leads`].
    pub fn leads(&self) -> Vec<LeadId> {
        match &self.decision {
            Decision::Merge { into, also, .. } => {
                std::iter::once(*into).chain(also.iter().map(|b| b.lead_id)).collect()
            }
            Decision::Create { .. } => Vec::new(),
        }
    }

    /// The changes, over what the store now holds: whether the lead is still one of its
    /// own (not merged away, not erased: nothing to do otherwise); for a merge, the lead as
    /// it now stands and [`Plan::leads`] loaded. Without a merge the lead is indexed as it
    /// was compared (a capture that changed it since queued it again).
    pub fn finish(self, held: Held, rules: &Rules, now: OffsetDateTime) -> Resolved {
        let gone = Resolved { lead: self.lead, merged: Vec::new(), reviews: 0, changes: Vec::new() };
        match (self.decision, held) {
            (Decision::Create { .. }, Held::Gone) => gone,
            (Decision::Create { possible }, _) => {
                let index = LeadIndex { email: None, email_key: None, keys: self.keys, record: Some(self.record) };
                with_reviews(self.lead, vec![Change::Index { lead: self.lead, index }], possible, now)
            }
            (merge @ Decision::Merge { .. }, Held::Leads { queued: Some(lead), loaded })
                if lead.erased_at.is_none() && lead.id == self.lead =>
            {
                Resolving { queued: Queued::new(*lead, rules, now), decision: merge }.finish(loaded)
            }
            (Decision::Merge { .. }, _) => gone,
        }
    }
}

/// What the store holds now, for [`Plan::finish`].
#[derive(Debug)]
pub enum Held {
    /// The lead is still one of its own (all a plan without a merge needs to know).
    There,
    /// The lead was merged away or erased since the plan was made.
    Gone,
    /// For a merge: the queued lead followed through merges, and [`Plan::leads`] loaded.
    Leads { queued: Option<Box<Lead>>, loaded: Vec<Option<Lead>> },
}

/// One resolver batch: which queued leads it resolves (each once: a lead queued twice, or
/// merged into one resolved earlier in the batch, is not resolved again; an erased or gone
/// one not at all), and, for a batch decided on a snapshot, the leads decided so far under
/// their blocking keys (the snapshot does not hold their keys yet, and a later lead of the
/// batch must still find an earlier one).
#[derive(Debug, Default)]
pub struct Batch {
    seen: HashSet<LeadId>,
    /// The planned leads' records, each held once: a lead has up to dozens of keys.
    planned: Vec<(LeadId, Record)>,
    /// Per key, positions in `planned`, oldest first.
    postings: HashMap<String, Vec<usize>>,
}

impl Batch {
    /// The queued lead as loaded (followed through merges), if the batch resolves it.
    pub fn admit(&mut self, lead: Option<Lead>) -> Option<Lead> {
        lead.filter(|l| self.admits_lead(l))
    }

    /// [`Batch::admit`] for a lead already made ready to resolve (a store that loads and
    /// looks up several queued leads at once, and decides them in queue order).
    pub fn admits(&mut self, queued: &Queued) -> bool {
        self.admits_lead(&queued.lead)
    }

    fn admits_lead(&mut self, lead: &Lead) -> bool {
        lead.erased_at.is_none() && self.seen.insert(lead.id)
    }

    /// The leads a resolution merged are resolved with it.
    pub fn resolved(&mut self, resolved: &Resolved) {
        self.seen.extend(resolved.merged.iter().copied());
    }

    /// A plan decided on a snapshot: later leads of the batch find its lead.
    pub fn planned(&mut self, plan: &Plan) {
        let at = self.planned.len();
        self.planned.push((plan.lead, plan.record.clone()));
        for key in &plan.keys {
            self.postings.entry(key.clone()).or_default().push(at);
        }
    }

    /// The batch's planned leads holding `key`, newest first.
    pub fn postings(&self, key: &str) -> impl Iterator<Item = &(LeadId, Record)> {
        self.postings.get(key).into_iter().flat_map(|p| p.iter().rev()).filter_map(|&at| self.planned.get(at))
    }
}

fn resolve_merge(
    survivor: &mut Lead,
    absorbed: &Lead,
    why: Explanation,
    rules: &Rules,
    now: OffsetDateTime,
) -> Vec<Change> {
    crate::merges::absorb(survivor, absorbed, why, rules, now).unwrap_or_default()
}

/// No merge: the lead is indexed under its keys, and its possible duplicates go to review.
fn index_or_review(
    lead: Lead,
    possible: Vec<resolve::PossibleDuplicate>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Resolved {
    let index = vec![Change::Index { lead: lead.id, index: LeadIndex::with_keys(&lead, &rules.matching) }];
    with_reviews(lead.id, index, possible, now)
}

fn with_reviews(
    lead: LeadId,
    mut changes: Vec<Change>,
    possible: Vec<resolve::PossibleDuplicate>,
    now: OffsetDateTime,
) -> Resolved {
    let reviews = possible.len();
    if !possible.is_empty() {
        let lead_ids = possible.iter().map(|p| p.lead_id).collect();
        changes.extend(possible.into_iter().map(|p| Change::Review {
            id: ReviewId::new(),
            lead,
            candidate: p.lead_id,
            score: p.score,
            evidence: p.evidence,
            at: now,
        }));
        let entry = HistoryEntry { lead_id: lead, at: now, event: LeadEvent::PossibleDuplicates { lead_ids } };
        changes.push(Change::History { entry, submission: None });
    }
    Resolved { lead, merged: Vec::new(), reviews, changes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::MatchRule;
    use crate::testing::lead_from as lead;
    use serde_json::json;

    fn rules() -> Rules {
        Rules::default()
    }

    fn kinds(changes: &[Change]) -> Vec<&'static str> {
        changes
            .iter()
            .map(|c| match c {
                Change::Lead { .. } => "lead",
                Change::MergedAway { .. } => "merged away",
                Change::History { .. } => "history",
                Change::Index { .. } => "index",
                Change::Review { .. } => "review",
                _ => "other",
            })
            .collect()
    }

    fn record_of(l: &Lead) -> (LeadId, Record) {
        (l.id, resolve::match_record(&l.fields, &l.derived))
    }

    fn bob() -> Lead {
        lead(
            json!({"first_name": "Bob", "last_name": "Smith", "company": "ACME Incorporated", "phone": "(415) 555-2671", "country": "US"}),
        )
    }

    fn robert() -> Lead {
        lead(json!({"first_name": "Robert", "last_name": "Smith", "company": "Acme Inc.", "phone": "+1 415 555 2671"}))
    }

    #[test]
    fn a_lead_matching_an_older_one_folds_into_it_with_its_evidence() {
        let rules = rules();
        let older = robert();
        let newer = bob();
        assert!(older.id < newer.id);
        let queued = Queued::new(newer.clone(), &rules, OffsetDateTime::now_utc());
        assert!(!queued.lookup().keys.is_empty());
        assert!(queued.lookup().mailbox.is_none(), "capture settled the mailbox");
        let resolving = queued.decide(vec![record_of(&newer), record_of(&older)]);
        assert_eq!(resolving.leads(), vec![older.id], "never itself");
        let done = resolving.finish(vec![Some(older.clone())]);
        assert_eq!(done.lead, older.id, "the older lead survives");
        assert_eq!(done.merged, vec![newer.id]);
        assert!(kinds(&done.changes).starts_with(&["merged away", "lead"]), "{:?}", kinds(&done.changes));
        let explained = done.changes.iter().find_map(|c| match c {
            Change::History { entry: HistoryEntry { event: LeadEvent::Absorbed { explanation, .. }, .. }, .. } => {
                Some(explanation.clone())
            }
            _ => None,
        });
        let explained = explained.expect("the survivor's history explains the merge");
        assert_eq!(explained.rule, MatchRule::Fuzzy);
        assert!(!explained.evidence.is_empty());
    }

    #[test]
    fn a_queued_lead_older_than_its_match_survives() {
        let rules = rules();
        let older = robert();
        let newer = bob();
        let done = Queued::new(older.clone(), &rules, OffsetDateTime::now_utc())
            .decide(vec![record_of(&newer)])
            .finish(vec![Some(newer.clone())]);
        assert_eq!((done.lead, done.merged), (older.id, vec![newer.id]));
    }

    #[test]
    fn without_a_match_the_lead_is_indexed_and_nothing_merges() {
        let rules = rules();
        let alone = lead(json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.mil"}));
        let resolving =
            Queued::new(alone.clone(), &rules, OffsetDateTime::now_utc()).decide(vec![record_of(&robert())]);
        assert!(resolving.leads().is_empty());
        let done = resolving.finish(Vec::new());
        assert_eq!((done.lead, done.merged.len(), done.reviews), (alone.id, 0, 0));
        match &done.changes[..] {
            [Change::Index { lead, index }] => {
                assert_eq!(*lead, alone.id);
                assert!(index.record.is_some() && !index.keys.is_empty(), "the keys are replaced: {index:?}");
            }
            other => panic!("expected the index only, got {:?}", kinds(other)),
        }
    }

    #[test]
    fn a_plan_taken_on_a_snapshot_applies_over_the_leads_as_they_now_stand() {
        let rules = rules();
        let (older, newer) = (robert(), bob());
        let now = OffsetDateTime::now_utc();
        // A later lead of the batch finds an earlier one through the batch's own index, and
        // each lead is resolved once.
        let mut once = Batch::default();
        assert!(once.admit(Some(older.clone())).is_some());
        assert!(once.admit(Some(older.clone())).is_none(), "queued twice");
        assert!(once.admit(None).is_none());
        let mut batch = Batch::default();
        let first = Queued::new(older.clone(), &rules, now).decide(Vec::<(LeadId, Record)>::new()).plan();
        assert!(!first.merges());
        batch.planned(&first);
        let queued = Queued::new(newer.clone(), &rules, now);
        let found: Vec<(LeadId, Record)> =
            queued.lookup().keys.iter().flat_map(|k| batch.postings(k).cloned()).take(1).collect();
        assert_eq!(found.first().map(|f| f.0), Some(older.id), "found by a shared key");
        let plan = queued.decide(found).plan();
        assert!(plan.merges());
        assert_eq!(plan.leads(), vec![older.id]);
        // Indexed as compared, without reading the lead again.
        let indexed = first.clone().finish(Held::There, &rules, now);
        assert!(matches!(&indexed.changes[..], [Change::Index { index, .. }] if index.record.is_some()));
        assert!(first.finish(Held::Gone, &rules, now).changes.is_empty(), "gone since: nothing to index");
        // The queued lead gone since the snapshot (or merged into another): nothing to merge.
        for queued in [None, Some(Box::new(older.clone()))] {
            let gone = plan.clone().finish(Held::Leads { queued, loaded: vec![Some(older.clone())] }, &rules, now);
            assert!(gone.changes.is_empty() && gone.merged.is_empty());
        }
        let held = Held::Leads { queued: Some(Box::new(newer.clone())), loaded: vec![Some(older.clone())] };
        let done = plan.finish(held, &rules, now);
        assert_eq!((done.lead, done.merged), (older.id, vec![newer.id]));
    }

    #[test]
    fn a_match_erased_or_gone_since_the_lookup_is_no_merge() {
        let rules = rules();
        let newer = bob();
        let mut older = robert();
        older.erased_at = Some(OffsetDateTime::now_utc());
        for loaded in [None, Some(older.clone())] {
            let done = Queued::new(newer.clone(), &rules, OffsetDateTime::now_utc())
                .decide(vec![record_of(&older)])
                .finish(vec![loaded]);
            assert_eq!((done.lead, done.merged.len()), (newer.id, 0));
            assert_eq!(kinds(&done.changes), ["index"]);
        }
    }
}
