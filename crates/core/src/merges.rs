//! Merges and their undoing, decided over the leads the store loaded.
//!
//! - [`absorb`]: one lead folds into another (a bridge at capture, a review decision, a
//!   batch search).
//! - [`unmerge`]: the survivor returns to its state just before it absorbed a lead, which
//!   lives on its own again.
//! - [`split`]: a submission merged at capture becomes a lead of its own, and the lead it
//!   joined returns to its state before.
//!
//! An undo is refused when the survivor changed after the merge: restoring the state kept
//! in the history would lose that change.

use crate::account::Found;
use crate::changes::{self, Change, LeadIndex};
use crate::engagement;
use crate::ids::{LeadId, ReviewId};
use crate::lead::Lead;
use crate::normalize::Candidate;
use crate::pipeline::{self, HistoryEntry, LeadEvent, Rules, SubmissionMeta};
use crate::resolve::{self, Decision, Evidence, Explanation};
use time::OffsetDateTime;

/// Why an undo cannot be done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Undoing would lose or break something: a person must look.
    #[error("{0}")]
    Conflict(String),
    /// The leads were erased: the state to restore is gone.
    #[error("lead {0} was erased")]
    Erased(LeadId),
}

/// Folds `absorbed` into `survivor` (both as stored, each followed through earlier
/// merges): the survivor gains what it lacked, the absorbed lead steps aside, both
/// histories record it, and the survivor's subscribers hear of it. `None` when they are
/// already one lead or either is erased: there is nothing to merge.
pub fn absorb(
    survivor: &mut Lead,
    absorbed: &Lead,
    explanation: Explanation,
    rules: &Rules,
    now: OffsetDateTime,
) -> Option<Vec<Change>> {
    if survivor.id == absorbed.id || survivor.erased_at.is_some() || absorbed.erased_at.is_some() {
        return None;
    }
    let expected = survivor.version;
    let before = Box::new(survivor.clone());
    let report = resolve::merge::absorb(survivor, absorbed, now, &rules.matching.legal_suffixes);
    let mut out = vec![
        // The absorbed lead steps aside first: its email is then free for the survivor.
        Change::MergedAway { lead: absorbed.id, into: survivor.id, at: now },
        Change::Lead {
            lead: Box::new(survivor.clone()),
            expected: Some(expected),
            index: LeadIndex::with_keys(survivor, &rules.matching),
        },
    ];
    let event = LeadEvent::Absorbed { absorbed: absorbed.id, explanation, filled: report.filled, before: Some(before) };
    out.extend(changes::follow_up(survivor, &event, rules, now));
    out.push(Change::History { entry: HistoryEntry { lead_id: survivor.id, at: now, event }, submission: None });
    let moved = LeadEvent::MergedInto { into: survivor.id };
    out.push(Change::History { entry: HistoryEntry { lead_id: absorbed.id, at: now, event: moved }, submission: None });
    Some(out)
}

/// A merged-away lead as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct MergedAway {
    pub id: LeadId,
    /// `None`: it was not merged (or was unmerged since).
    pub merged_into: Option<LeadId>,
    pub erased: bool,
}

/// Undoes the merge of `absorbed` into its survivor. `survivor` is the lead it was merged
/// into, followed through later merges; `history` is that lead's, newest first;
/// `absorbed_lead` is the absorbed lead as stored, which gets its match keys back.
/// `Ok(None)` when it was not merged.
pub fn unmerge(
    absorbed: &MergedAway,
    survivor: Option<&Lead>,
    history: &[HistoryEntry],
    absorbed_lead: &Lead,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<Vec<Change>>, Refusal> {
    if absorbed.erased {
        return Err(Refusal::Erased(absorbed.id));
    }
    let Some(survivor_id) = absorbed.merged_into else { return Ok(None) };
    let Some(current) = survivor.filter(|l| l.id == survivor_id) else {
        return Err(Refusal::Conflict(format!("lead {survivor_id} was itself merged since; undo that first")));
    };
    let before = history.iter().find_map(|e| match &e.event {
        LeadEvent::Absorbed { absorbed: a, before: Some(before), .. } if *a == absorbed.id => Some(before),
        _ => None,
    });
    let Some(before) = before else {
        return Err(Refusal::Conflict(format!("the merge of {} kept no earlier state to restore", absorbed.id)));
    };
    let restored = restore(current, before, now)?;
    let index = LeadIndex::with_keys(&restored, &rules.matching);
    Ok(Some(vec![
        Change::Lead { lead: Box::new(restored), expected: Some(current.version), index },
        Change::Unmerged { lead: absorbed.id, at: now },
        Change::Index { lead: absorbed.id, index: LeadIndex::with_keys(absorbed_lead, &rules.matching) },
        Change::History {
            entry: HistoryEntry { lead_id: survivor_id, at: now, event: LeadEvent::Unmerged { absorbed: absorbed.id } },
            submission: None,
        },
    ]))
}

/// The state kept before a merge, as the next version of `current`; refused when
/// `current` changed after the merge.
fn restore(current: &Lead, before: &Lead, now: OffsetDateTime) -> Result<Lead, Refusal> {
    if current.version != before.version + 1 {
        return Err(Refusal::Conflict(format!(
            "lead {} changed after the merge; undoing it would lose that change",
            current.id
        )));
    }
    let mut restored = before.clone();
    restored.version = current.version + 1;
    restored.updated_at = now;
    Ok(restored)
}

/// A submission merged at capture, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct MergedSubmission {
    pub meta: SubmissionMeta,
    /// The lead it settled into.
    pub lead_id: Option<LeadId>,
}

/// Undoes a merge made at capture: `lead` (as loaded, followed through merges) returns to
/// its state before `submission` merged into it, and the submission becomes a lead of its
/// own from `candidate` (the stored submission prepared again). `history` is the lead's
/// entries for that submission; `accounts` what the new lead's account keys found
/// ([`split_account_keys`]). `Ok(None)` when the submission did not merge into `lead`.
#[allow(clippy::too_many_arguments)]
pub fn split(
    lead_id: LeadId,
    current: Option<&Lead>,
    submission: Option<&MergedSubmission>,
    history: &[HistoryEntry],
    candidate: Candidate,
    accounts: &[Found],
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<(Lead, Vec<Change>)>, Refusal> {
    let Some(current) = current.filter(|l| l.id == lead_id) else { return Ok(None) };
    if current.erased_at.is_some() {
        return Err(Refusal::Erased(lead_id));
    }
    // Never merged here, or already split off.
    let Some(sub) = submission.filter(|s| s.lead_id == Some(lead_id)) else { return Ok(None) };
    let before = history.iter().find_map(|e| match &e.event {
        LeadEvent::Merged { submission_id, before, .. } if *submission_id == sub.meta.id => Some(before),
        _ => None,
    });
    let Some(before) = before else { return Ok(None) };
    let Some(before) = before else {
        return Err(Refusal::Conflict(format!("the merge of {} kept no earlier state to restore", sub.meta.id)));
    };
    let restored = restore(current, before, now)?;
    if candidate.fields.email.is_some() && candidate.fields.email == restored.fields.email {
        return Err(Refusal::Conflict(format!(
            "submission {} has the lead's own email address: one mailbox is one lead",
            sub.meta.id
        )));
    }
    let index = LeadIndex::with_keys(&restored, &rules.matching);
    let mut out = vec![Change::Lead { lead: Box::new(restored), expected: Some(current.version), index }];
    let create = Decision::Create { possible: Vec::new() };
    let settlement = pipeline::settle(candidate, &sub.meta, create, None, now, rules);
    let mut lead = settlement.lead;
    out.extend(crate::account::join(&mut lead, accounts, now));
    let scored = engagement::rescore(&mut lead, &[], &rules.engagement, now);
    out.push(Change::Lead {
        lead: Box::new(lead.clone()),
        expected: None,
        index: LeadIndex::with_keys(&lead, &rules.matching),
    });
    out.push(Change::Processed { submission: sub.meta.id, lead: lead.id, outcome: pipeline::Outcome::Created });
    let follow = changes::follow_up(&lead, &settlement.history.event, rules, now);
    out.push(Change::History { entry: settlement.history, submission: Some(sub.meta.id) });
    out.extend(follow);
    out.extend(changes::record(&lead, scored, rules, now));
    let event = LeadEvent::Split { submission_id: sub.meta.id, into: lead.id };
    out.push(Change::History { entry: HistoryEntry { lead_id, at: now, event }, submission: None });
    Ok(Some((lead, out)))
}

/// The account keys a lead made of `candidate` claims, for [`split`] to look up.
pub fn split_account_keys(candidate: &Candidate) -> Vec<String> {
    crate::account::Claim::of(&candidate.fields, &candidate.derived).keys()
}

/// A possible duplicate waiting for (or decided by) a person.
#[derive(Clone, Debug, PartialEq)]
pub struct Review {
    pub id: ReviewId,
    /// The newer lead.
    pub lead_id: LeadId,
    /// The lead it may duplicate.
    pub candidate_id: LeadId,
    pub score: f64,
    pub evidence: Vec<Evidence>,
    pub status: ReviewStatus,
    pub created_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewStatus {
    Open,
    /// Judged the same person: the newer lead was merged into the other.
    Merged,
    /// Judged different people; never proposed again.
    Distinct,
}

impl ReviewStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Merged => "merged",
            Self::Distinct => "distinct",
        }
    }
}

/// The merge a person's `Merged` decision on a review calls for.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewMerge {
    pub survivor: LeadId,
    pub absorbed: LeadId,
    pub explanation: Explanation,
}

/// What a person's decision on a review does. A review is decided once: `None` when it is
/// no longer open. Otherwise `Merged` folds the newer lead into the one it resembled,
/// explained as reviewed; `Distinct` (or `Open`) only records the decision.
pub fn decide_review(review: &Review, decision: ReviewStatus) -> Option<Option<ReviewMerge>> {
    if review.status != ReviewStatus::Open {
        return None;
    }
    Some((decision == ReviewStatus::Merged).then(|| ReviewMerge {
        survivor: review.candidate_id,
        absorbed: review.lead_id,
        explanation: reviewed(review.score, review.evidence.clone()),
    }))
}

/// What a person's merge decision on a review explains.
pub fn reviewed(score: f64, evidence: Vec<resolve::Evidence>) -> Explanation {
    Explanation { rule: resolve::MatchRule::Reviewed, score: Some(score), evidence }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::lead;

    #[test]
    fn a_merge_steps_the_absorbed_lead_aside_before_the_survivor_takes_its_email() {
        let (mut survivor, absorbed) = (lead("a@example.com"), lead("b@example.com"));
        let explanation = Explanation { rule: resolve::MatchRule::Reviewed, score: None, evidence: vec![] };
        let now = OffsetDateTime::now_utc();
        let changes = absorb(&mut survivor, &absorbed, explanation, &Rules::default(), now).unwrap();
        assert!(
            matches!(&changes[0], Change::MergedAway { lead, into, .. } if *lead == absorbed.id && *into == survivor.id)
        );
        assert!(matches!(&changes[1], Change::Lead { lead, expected: Some(1), .. } if lead.version == 2));
        let kinds: Vec<&LeadEvent> = changes
            .iter()
            .filter_map(|c| match c {
                Change::History { entry, .. } => Some(&entry.event),
                _ => None,
            })
            .collect();
        assert!(matches!(kinds.as_slice(), [LeadEvent::Absorbed { .. }, LeadEvent::MergedInto { .. }]));
    }

    #[test]
    fn nothing_merges_into_itself_or_into_a_tombstone() {
        let a = lead("a@example.com");
        let explanation = Explanation { rule: resolve::MatchRule::Reviewed, score: None, evidence: vec![] };
        let now = OffsetDateTime::now_utc();
        assert!(absorb(&mut a.clone(), &a, explanation.clone(), &Rules::default(), now).is_none());
        let mut erased = lead("b@example.com");
        erased.erased_at = Some(now);
        assert!(absorb(&mut erased, &a, explanation, &Rules::default(), now).is_none());
    }

    #[test]
    fn unmerge_restores_the_survivor_and_frees_the_absorbed_lead() {
        let (mut survivor, absorbed) = (lead("a@example.com"), lead("b@example.com"));
        let now = OffsetDateTime::now_utc();
        let merge = absorb(&mut survivor, &absorbed, reviewed(0.9, vec![]), &Rules::default(), now).unwrap();
        let history: Vec<HistoryEntry> = merge
            .into_iter()
            .rev()
            .filter_map(|c| match c {
                Change::History { entry, .. } if entry.lead_id == survivor.id => Some(entry),
                _ => None,
            })
            .collect();
        let away = MergedAway { id: absorbed.id, merged_into: Some(survivor.id), erased: false };
        let changes = unmerge(&away, Some(&survivor), &history, &absorbed, &Rules::default(), now).unwrap().unwrap();
        assert!(matches!(&changes[0], Change::Lead { lead, expected: Some(2), .. } if lead.version == 3));
        assert!(matches!(&changes[1], Change::Unmerged { lead, .. } if *lead == absorbed.id));
        // Changed after the merge: refused.
        let mut changed = survivor.clone();
        changed.version += 1;
        let refused = unmerge(&away, Some(&changed), &history, &absorbed, &Rules::default(), now);
        assert!(matches!(refused, Err(Refusal::Conflict(_))), "{refused:?}");
        // Not merged: nothing to do; erased: refused.
        let alone = MergedAway { merged_into: None, ..away.clone() };
        assert_eq!(unmerge(&alone, Some(&survivor), &history, &absorbed, &Rules::default(), now), Ok(None));
        let erased = MergedAway { erased: true, ..away };
        assert_eq!(
            unmerge(&erased, Some(&survivor), &history, &absorbed, &Rules::default(), now),
            Err(Refusal::Erased(absorbed.id))
        );
    }

    #[test]
    fn a_review_is_decided_once_and_a_merge_folds_the_newer_lead_into_the_other() {
        let (newer, older) = (lead("a@example.com"), lead("b@example.com"));
        let mut review = Review {
            id: ReviewId::new(),
            lead_id: newer.id,
            candidate_id: older.id,
            score: 0.91,
            evidence: vec![],
            status: ReviewStatus::Open,
            created_at: OffsetDateTime::UNIX_EPOCH,
            decided_at: None,
        };
        let merge = decide_review(&review, ReviewStatus::Merged).flatten().unwrap();
        assert_eq!((merge.survivor, merge.absorbed), (older.id, newer.id));
        assert_eq!(merge.explanation.rule, resolve::MatchRule::Reviewed);
        assert_eq!(merge.explanation.score, Some(0.91));
        assert_eq!(decide_review(&review, ReviewStatus::Distinct), Some(None));
        review.status = ReviewStatus::Distinct;
        assert_eq!(decide_review(&review, ReviewStatus::Merged), None);
    }
}
