//! Recording CRM feedback: which lead it names, replays of an event id, stale and erased
//! leads, a reason completing an earlier refusal, and the feedback that waited for a CRM
//! record to be linked.
//!
//! The store loads, this module decides, the store applies the [`Change`]s:
//!
//! 1. the earlier rows with the same source and event id → [`replay`]: the first final
//!    outcome is the answer, nothing is written;
//! 2. the leads each identity names ([`Candidates`]) → [`Candidates::pick`]; the store
//!    locks the pick where it runs beside other writers;
//! 3. for that lead, the [`Latest`] applied feedback times and, when [`waiting_before`]
//!    asks, the refusal a reason may complete → [`record`].
//!
//! [`link`] decides what linking a CRM record to a lead settles.

use super::{Current, Feedback, FeedbackOutcome, FeedbackResult, apply};
use crate::changes::{self, Change};
use crate::erase::CrmRecord;
use crate::ids::FeedbackId;
use crate::lead::Lead;
use crate::pipeline::{LeadEvent, Rules};
use time::OffsetDateTime;

/// An earlier feedback row with the same source and event id.
#[derive(Clone, Debug, PartialEq)]
pub struct Earlier {
    pub id: FeedbackId,
    /// `None`: an outcome this build does not know.
    pub outcome: Option<FeedbackOutcome>,
    /// Its lead, followed through merges, as it stands now.
    pub lead: Option<Lead>,
    pub detail: Option<String>,
    pub allowed: Vec<String>,
}

/// The answer to a resend: what the earlier feedback with a final outcome became.
/// `None` when there is none (a refusal is evaluated afresh).
pub fn replay(earlier: &[Earlier]) -> Option<FeedbackResult> {
    let first = earlier.iter().find(|e| e.outcome.is_some_and(|o| o.is_final()))?;
    Some(FeedbackResult {
        id: first.id,
        outcome: first.outcome.unwrap_or(FeedbackOutcome::Ignored),
        lead_id: first.lead.as_ref().map(|l| l.id),
        stage: first.lead.as_ref().map(|l| l.lifecycle_stage.clone()),
        detail: first.detail.clone(),
        allowed: first.allowed.clone(),
        replayed: true,
    })
}

/// The surviving lead each way the feedback names one finds (followed through merges).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidates {
    pub by_lead_id: Option<Lead>,
    /// Through the CRM record linked to a lead.
    pub by_crm_record: Option<Lead>,
    pub by_email: Option<Lead>,
    /// The lowest id when several leads have it.
    pub by_external_id: Option<Lead>,
}

impl Candidates {
    /// The lead the feedback is about: by lead id, CRM record, email, then external id.
    pub fn pick(self) -> Option<Lead> {
        self.by_lead_id.or(self.by_crm_record).or(self.by_email).or(self.by_external_id)
    }
}

/// When the newest status and owner feedback applied to the lead (outcome applied or
/// unchanged) happened: older feedback never undoes newer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latest {
    pub status: Option<OffsetDateTime>,
    pub owner: Option<OffsetDateTime>,
}

/// A CRM that sends one field per event (HubSpot) may send the reason after the status:
/// feedback carrying only a reason completes the lead's last disqualification (or loss)
/// from the same source that was refused for want of one.
fn only_reason(fb: &Feedback) -> bool {
    fb.target.is_none() && fb.owner.is_none() && fb.reason.as_deref().is_some_and(|r| !r.trim().is_empty())
}

/// When `fb` may complete a refusal: the time at or before which that refusal (from the
/// same source, for want of a reason) must have happened. The store loads the lead's
/// newest such refusal.
pub fn waiting_before(fb: &Feedback) -> Option<OffsetDateTime> {
    only_reason(fb).then_some(fb.occurred_at)
}

/// What recording one feedback decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub result: FeedbackResult,
    pub changes: Vec<Change>,
}

/// Decides `fb` for `lead` (the pick, locked where it matters). `latest` and `waiting`
/// are the lead's, as [`Latest`] and [`waiting_before`] describe.
pub fn record(
    fb: &Feedback,
    lead: Option<Lead>,
    latest: Latest,
    waiting: Option<Feedback>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Recorded {
    let mut changes = Vec::new();
    if let Some(lead) = lead.as_ref().filter(|l| l.erased_at.is_some()) {
        // Nothing is applied to a tombstone, and nothing the CRM sent about it is kept.
        let result = erased(fb, lead);
        changes.push(Change::Feedback {
            feedback: Box::new(fb.clone()),
            result: Box::new(result.clone()),
            scrubbed: true,
        });
        return Recorded { result, changes };
    }
    let mut lead = lead;
    // A refusal older than a status applied since is history: the reason completes nothing.
    let waiting = waiting
        .filter(|w| only_reason(fb) && latest.status.is_none_or(|t| w.occurred_at >= t))
        .filter(|_| lead.is_some());
    let result = match waiting {
        Some(mut waiting) => {
            waiting.reason.clone_from(&fb.reason);
            let settled = settle(&waiting, lead.as_mut(), latest, rules, now, &mut changes);
            let result = completion(fb, &waiting, &settled);
            changes.push(Change::FeedbackSettled { feedback: Box::new(waiting), result: Box::new(settled) });
            result
        }
        None => settle(fb, lead.as_mut(), latest, rules, now, &mut changes),
    };
    changes.push(Change::Feedback {
        feedback: Box::new(fb.clone()),
        result: Box::new(result.clone()),
        scrubbed: false,
    });
    Recorded { result, changes }
}

/// Links `record` to `lead` (as stored, followed through merges) and settles the feedback
/// that waited for it (unmatched, naming this record), oldest first. Returns how many were
/// settled. A lead erased meanwhile settles nothing, and its erasure reaches the record.
pub fn link(
    record: &CrmRecord,
    lead_id: crate::ids::LeadId,
    lead: Option<Lead>,
    latest: Latest,
    mut waiting: Vec<Feedback>,
    rules: &Rules,
    now: OffsetDateTime,
) -> (u64, Vec<Change>) {
    let mut changes = vec![Change::CrmLink { record: record.clone(), lead: lead_id, at: now }];
    let Some(mut lead) = lead else { return (0, changes) };
    if lead.erased_at.is_some() {
        // A try in flight when the lead was erased made this record.
        changes.push(Change::ErasedCrmRecord { lead: lead.id, record: record.clone(), at: now });
        return (0, changes);
    }
    // Oldest first: none is then older than feedback settled before it, so `latest`
    // (what was applied before the link) is all staleness needs.
    waiting.sort_by_key(|w| (w.occurred_at, w.id));
    let mut settled = 0;
    for fb in waiting {
        let result = settle(&fb, Some(&mut lead), latest, rules, now, &mut changes);
        changes.push(Change::FeedbackSettled { feedback: Box::new(fb), result: Box::new(result) });
        settled += 1;
    }
    (settled, changes)
}

/// Applies `fb` to `lead` (if found): the lead's writes go to `out`, the result is the
/// caller's to store.
fn settle(
    fb: &Feedback,
    lead: Option<&mut Lead>,
    latest: Latest,
    rules: &Rules,
    now: OffsetDateTime,
    out: &mut Vec<Change>,
) -> FeedbackResult {
    let mut result = FeedbackResult {
        id: fb.id,
        outcome: FeedbackOutcome::Unmatched,
        lead_id: None,
        stage: None,
        detail: None,
        allowed: Vec::new(),
        replayed: false,
    };
    let Some(lead) = lead else {
        result.detail = Some("no lead matches".into());
        return result;
    };
    let decision = decide(lead, fb, rules, latest, now);
    out.extend(changes::bumped(lead, decision.changes, rules, now));
    if fb.status.is_some() || fb.owner.is_some() {
        out.push(crate::assignments::taken_up(lead.id, lead.owner.as_deref()));
    }
    result.outcome = decision.outcome;
    result.detail = decision.detail;
    result.allowed = decision.allowed;
    result.stage = Some(lead.lifecycle_stage.clone());
    result.lead_id = Some(lead.id);
    result
}

/// What became of feedback for a lead that was found.
struct Decision {
    outcome: FeedbackOutcome,
    /// History to write with the lead; empty when the lead did not change.
    changes: Vec<LeadEvent>,
    detail: Option<String>,
    allowed: Vec<String>,
}

/// Decides feedback for `lead` (changed in place when the decision is `Applied`).
fn decide(lead: &mut Lead, fb: &Feedback, rules: &Rules, latest: Latest, now: OffsetDateTime) -> Decision {
    let decision =
        |outcome, detail: Option<String>| Decision { outcome, changes: Vec::new(), detail, allowed: Vec::new() };
    let carries_status = fb.target.is_some();
    let carries_owner = fb.owner.is_some();
    if !carries_status && !carries_owner {
        return decision(FeedbackOutcome::Ignored, fb.ignored.clone().or_else(|| Some("nothing to act on".into())));
    }
    let newer = |latest: Option<OffsetDateTime>| latest.is_none_or(|l| fb.occurred_at >= l);
    let current =
        Current { status: carries_status && newer(latest.status), owner: carries_owner && newer(latest.owner) };
    if !current.status && !current.owner {
        return decision(FeedbackOutcome::Stale, Some("newer feedback was already applied to this lead".into()));
    }
    match apply(lead, fb, &rules.engagement, current, now) {
        Ok(changes) if changes.is_empty() => decision(FeedbackOutcome::Unchanged, None),
        Ok(changes) => Decision { outcome: FeedbackOutcome::Applied, changes, detail: None, allowed: Vec::new() },
        Err(refused) => Decision {
            outcome: refused.outcome,
            changes: Vec::new(),
            detail: Some(refused.detail),
            allowed: refused.allowed,
        },
    }
}

/// The result of reason-only feedback, from what became of the feedback it completed.
fn completion(own: &Feedback, waiting: &Feedback, settled: &FeedbackResult) -> FeedbackResult {
    let applied = matches!(settled.outcome, FeedbackOutcome::Applied | FeedbackOutcome::Unchanged);
    FeedbackResult {
        id: own.id,
        outcome: if applied { settled.outcome } else { FeedbackOutcome::Ignored },
        lead_id: settled.lead_id,
        stage: settled.stage.clone(),
        detail: Some(match &settled.detail {
            Some(why) if !applied => format!("the reason for feedback {} did not complete it: {why}", waiting.id),
            _ => format!("the reason completed feedback {}", waiting.id),
        }),
        allowed: Vec::new(),
        replayed: false,
    }
}

/// The result of feedback about an erased lead: refused, nothing applied.
fn erased(fb: &Feedback, lead: &Lead) -> FeedbackResult {
    FeedbackResult {
        id: fb.id,
        outcome: FeedbackOutcome::Erased,
        lead_id: Some(lead.id),
        stage: None,
        detail: Some(format!("lead {} was erased", lead.id)),
        allowed: Vec::new(),
        replayed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback::{FeedbackIdentity, FeedbackRules, FeedbackStatus};
    use crate::testing::lead;
    use serde_json::json;
    use time::Duration;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-06-01 12:00 UTC)
    }

    fn at_stage(stage: &str) -> Lead {
        let mut l = lead("ada@acme.com");
        l.lifecycle_stage = stage.to_owned();
        l
    }

    fn feedback(status: Option<FeedbackStatus>, reason: Option<&str>, at: OffsetDateTime) -> Feedback {
        let contract = crate::engagement::Engagement::default().contract;
        Feedback {
            id: FeedbackId::new(),
            source: "hubspot-main".into(),
            event_id: Some("e1".into()),
            identity: FeedbackIdentity::default(),
            status,
            crm_status: None,
            target: status.and_then(|s| FeedbackRules::default().stage(s, &contract)),
            reason: reason.map(str::to_owned),
            owner: None,
            ignored: None,
            occurred_at: at,
            received_at: at,
            payload: json!({"email": "ada@acme.com"}),
        }
    }

    fn stored(changes: &[Change]) -> Vec<(FeedbackOutcome, bool)> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::Feedback { result, scrubbed, .. } => Some((result.outcome, *scrubbed)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_resend_replays_the_final_outcome_and_a_refusal_is_evaluated_again() {
        let lead = at_stage("sql");
        let earlier = |outcome| Earlier {
            id: FeedbackId::new(),
            outcome: Some(outcome),
            lead: Some(lead.clone()),
            detail: None,
            allowed: Vec::new(),
        };
        assert_eq!(replay(&[earlier(FeedbackOutcome::ReasonRequired)]), None);
        let applied = earlier(FeedbackOutcome::Applied);
        let replayed = replay(&[earlier(FeedbackOutcome::Refused), applied.clone()]).unwrap();
        assert_eq!((replayed.id, replayed.outcome, replayed.replayed), (applied.id, FeedbackOutcome::Applied, true));
        assert_eq!(replayed.stage.as_deref(), Some("sql"));
    }

    #[test]
    fn the_lead_id_wins_then_the_crm_record_then_the_email() {
        let (a, b, c) = (lead("a@x.com"), lead("b@x.com"), lead("c@x.com"));
        let all = Candidates {
            by_lead_id: None,
            by_crm_record: Some(a.clone()),
            by_email: Some(b.clone()),
            by_external_id: Some(c.clone()),
        };
        assert_eq!(all.clone().pick().map(|l| l.id), Some(a.id));
        assert_eq!(Candidates { by_lead_id: Some(c.clone()), ..all.clone() }.pick().map(|l| l.id), Some(c.id));
        assert_eq!(Candidates { by_crm_record: None, ..all }.pick().map(|l| l.id), Some(b.id));
    }

    #[test]
    fn applied_feedback_moves_the_lead_stops_the_timer_and_is_stored() {
        let lead = at_stage("mql");
        let fb = feedback(Some(FeedbackStatus::Qualified), None, now());
        let recorded = record(&fb, Some(lead.clone()), Latest::default(), None, &Rules::default(), now());
        assert_eq!(recorded.result.outcome, FeedbackOutcome::Applied);
        assert_eq!(recorded.result.stage.as_deref(), Some("sql"));
        let [Change::Lead { lead: moved, expected, .. }, ..] = &recorded.changes[..] else { panic!() };
        assert_eq!((moved.version, *expected), (lead.version + 1, Some(lead.version)));
        assert!(recorded.changes.iter().any(|c| matches!(c, Change::SlaStopped { lead: id, .. } if *id == lead.id)));
        assert_eq!(stored(&recorded.changes), [(FeedbackOutcome::Applied, false)]);
    }

    #[test]
    fn older_feedback_than_one_applied_is_stale_and_changes_no_lead() {
        let fb = feedback(Some(FeedbackStatus::Won), None, now() - Duration::hours(1));
        let latest = Latest { status: Some(now()), owner: None };
        let recorded = record(&fb, Some(at_stage("mql")), latest, None, &Rules::default(), now());
        assert_eq!(recorded.result.outcome, FeedbackOutcome::Stale);
        assert!(!recorded.changes.iter().any(|c| matches!(c, Change::Lead { .. })));
    }

    #[test]
    fn unmatched_feedback_is_kept_and_erased_leads_keep_nothing_the_crm_sent() {
        let fb = feedback(Some(FeedbackStatus::Won), None, now());
        let unmatched = record(&fb, None, Latest::default(), None, &Rules::default(), now());
        assert_eq!(unmatched.result.outcome, FeedbackOutcome::Unmatched);
        assert_eq!(stored(&unmatched.changes), [(FeedbackOutcome::Unmatched, false)]);
        let mut tombstone = at_stage("mql");
        tombstone.erased_at = Some(now());
        let erased = record(&fb, Some(tombstone.clone()), Latest::default(), None, &Rules::default(), now());
        assert_eq!((erased.result.outcome, erased.result.lead_id), (FeedbackOutcome::Erased, Some(tombstone.id)));
        assert_eq!(stored(&erased.changes), [(FeedbackOutcome::Erased, true)]);
    }

    #[test]
    fn a_later_reason_completes_the_refused_disqualification() {
        let refused_at = now() - Duration::minutes(1);
        let waiting = feedback(Some(FeedbackStatus::Disqualified), None, refused_at);
        let reason = feedback(None, Some("no_budget"), now());
        assert_eq!(waiting_before(&reason), Some(now()));
        assert_eq!(waiting_before(&waiting), None);
        let recorded =
            record(&reason, Some(at_stage("sal")), Latest::default(), Some(waiting.clone()), &Rules::default(), now());
        assert_eq!(recorded.result.outcome, FeedbackOutcome::Applied);
        assert_eq!(recorded.result.stage.as_deref(), Some("disqualified"));
        assert!(recorded.changes.iter().any(|c| matches!(c,
            Change::FeedbackSettled { feedback, result } if feedback.id == waiting.id
                && feedback.reason.as_deref() == Some("no_budget") && result.outcome == FeedbackOutcome::Applied)));
        // A status applied after the refusal: the reason completes nothing.
        let latest = Latest { status: Some(now() - Duration::seconds(30)), owner: None };
        let late = record(&reason, Some(at_stage("sal")), latest, Some(waiting), &Rules::default(), now());
        assert_eq!(late.result.outcome, FeedbackOutcome::Ignored);
        assert!(!late.changes.iter().any(|c| matches!(c, Change::FeedbackSettled { .. })));
    }

    #[test]
    fn linking_settles_waiting_feedback_oldest_first_and_later_ones_are_not_stale() {
        let lead = at_stage("mql");
        let first = feedback(Some(FeedbackStatus::Accepted), None, now() - Duration::hours(2));
        let second = feedback(Some(FeedbackStatus::Qualified), None, now() - Duration::hours(1));
        let record_ = CrmRecord { destination: "hubspot-main".into(), crm_id: "42".into() };
        let (settled, changes) = link(
            &record_,
            lead.id,
            Some(lead.clone()),
            Latest::default(),
            vec![second.clone(), first.clone()],
            &Rules::default(),
            now(),
        );
        assert_eq!(settled, 2);
        assert!(matches!(&changes[0], Change::CrmLink { lead: id, .. } if *id == lead.id));
        let settled: Vec<_> = changes
            .iter()
            .filter_map(|c| match c {
                Change::FeedbackSettled { feedback, result } => Some((feedback.id, result.outcome)),
                _ => None,
            })
            .collect();
        assert_eq!(settled, [(first.id, FeedbackOutcome::Applied), (second.id, FeedbackOutcome::Applied)]);
        // Applied the other way round, the older one would be stale.
        let (_, changes) = link(
            &record_,
            lead.id,
            Some(lead.clone()),
            Latest { status: Some(now()), owner: None },
            vec![first],
            &Rules::default(),
            now(),
        );
        assert!(
            changes.iter().any(
                |c| matches!(c, Change::FeedbackSettled { result, .. } if result.outcome == FeedbackOutcome::Stale)
            )
        );
    }

    #[test]
    fn linking_a_record_to_an_erased_lead_sends_the_erasure_and_settles_nothing() {
        let mut lead = at_stage("mql");
        lead.erased_at = Some(now());
        let record_ = CrmRecord { destination: "hubspot-main".into(), crm_id: "42".into() };
        let waiting = vec![feedback(Some(FeedbackStatus::Won), None, now())];
        let (settled, changes) =
            link(&record_, lead.id, Some(lead.clone()), Latest::default(), waiting, &Rules::default(), now());
        assert_eq!(settled, 0);
        assert!(
            matches!(&changes[..], [Change::CrmLink { .. }, Change::ErasedCrmRecord { lead: id, .. }] if *id == lead.id)
        );
    }
}
