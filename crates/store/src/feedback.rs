//! What both backends decide alike when recording CRM feedback: which parts of it are
//! current, what [`apply`] made of it, and the row kept for the audit. The backends look
//! the lead up, lock it and write; the decision is here once.

use leadflow_domain::Lead;
use leadflow_domain::feedback::{self, Current, Feedback, FeedbackIdentity, FeedbackOutcome, FeedbackResult};
use leadflow_domain::pipeline::{LeadEvent, Rules};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Outcomes that make a resend with the same event id a replay, as SQL text.
pub(crate) const FINAL_OUTCOMES: &str = "('applied', 'unchanged', 'stale', 'unmatched', 'ignored')";

/// What became of feedback for a lead that was found.
pub(crate) struct Decision {
    pub outcome: FeedbackOutcome,
    /// History to write with the lead; empty when the lead did not change.
    pub changes: Vec<LeadEvent>,
    pub detail: Option<String>,
    pub allowed: Vec<String>,
}

/// Decides feedback for `lead` (changed in place when the decision is `Applied`).
/// `latest_status` and `latest_owner` are when the newest status and owner feedback
/// already applied to the lead happened.
pub(crate) fn decide(
    lead: &mut Lead,
    fb: &Feedback,
    rules: &Rules,
    latest_status: Option<OffsetDateTime>,
    latest_owner: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Decision {
    let decision =
        |outcome, detail: Option<String>| Decision { outcome, changes: Vec::new(), detail, allowed: Vec::new() };
    let carries_status = fb.target.is_some();
    let carries_owner = fb.owner.is_some();
    if !carries_status && !carries_owner {
        return decision(FeedbackOutcome::Ignored, fb.ignored.clone().or_else(|| Some("nothing to act on".into())));
    }
    let newer = |latest: Option<OffsetDateTime>| latest.is_none_or(|l| fb.occurred_at >= l);
    let current =
        Current { status: carries_status && newer(latest_status), owner: carries_owner && newer(latest_owner) };
    if !current.status && !current.owner {
        return decision(FeedbackOutcome::Stale, Some("newer feedback was already applied to this lead".into()));
    }
    match feedback::apply(lead, fb, &rules.engagement, current, now) {
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

/// A CRM that sends one field per event (HubSpot) may send the reason after the status:
/// feedback carrying only a reason completes the lead's last disqualification (or loss)
/// from the same source that was refused for want of one.
pub(crate) fn only_reason(fb: &Feedback) -> bool {
    fb.target.is_none() && fb.owner.is_none() && fb.reason.as_deref().is_some_and(|r| !r.trim().is_empty())
}

/// The result of reason-only feedback, from what became of the feedback it completed.
pub(crate) fn completion(own: &Feedback, waiting: &Feedback, settled: &FeedbackResult) -> FeedbackResult {
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
pub(crate) fn erased(fb: &Feedback, lead: &Lead) -> FeedbackResult {
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

/// The columns a row does not have, as its JSON document.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Doc {
    #[serde(default)]
    pub identity: FeedbackIdentity,
    #[serde(default)]
    pub crm_status: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub ignored: Option<String>,
    #[serde(default)]
    pub payload: serde_json::Value,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub allowed: Vec<String>,
}

impl Doc {
    pub(crate) fn new(fb: &Feedback, result: &FeedbackResult) -> Self {
        Self {
            identity: fb.identity.clone(),
            crm_status: fb.crm_status.clone(),
            target: fb.target.clone(),
            reason: fb.reason.clone(),
            owner: fb.owner.clone(),
            ignored: fb.ignored.clone(),
            payload: fb.payload.clone(),
            stage: result.stage.clone(),
            detail: result.detail.clone(),
            allowed: result.allowed.clone(),
        }
    }
}

impl Doc {
    /// The row as kept once its lead is erased, or when it names an erased lead: what
    /// became of it, the status, reason and owner, and the lead and CRM record ids; not
    /// the email, the external id or anything else the CRM sent.
    pub(crate) fn erased(self) -> Self {
        let identity = FeedbackIdentity {
            lead_id: self.identity.lead_id,
            crm_id: self.identity.crm_id,
            crm_destination: self.identity.crm_destination,
            email: None,
            external_id: None,
        };
        Self { identity, payload: serde_json::Value::Null, ..self }
    }
}

/// A stored row, read back.
pub(crate) struct Row {
    pub id: leadflow_domain::FeedbackId,
    pub source: String,
    pub event_id: Option<String>,
    pub lead_id: Option<leadflow_domain::LeadId>,
    pub status: Option<String>,
    pub outcome: String,
    pub occurred_at: OffsetDateTime,
    pub received_at: OffsetDateTime,
    pub doc: Doc,
}

impl Row {
    pub(crate) fn into_stored(self) -> crate::StoredFeedback {
        let outcome = FeedbackOutcome::parse(&self.outcome).unwrap_or(FeedbackOutcome::Ignored);
        let d = self.doc;
        crate::StoredFeedback {
            result: FeedbackResult {
                id: self.id,
                outcome,
                lead_id: self.lead_id,
                stage: d.stage,
                detail: d.detail,
                allowed: d.allowed,
                replayed: false,
            },
            feedback: Feedback {
                id: self.id,
                source: self.source,
                event_id: self.event_id,
                identity: d.identity,
                status: self.status.as_deref().and_then(feedback::FeedbackStatus::parse),
                crm_status: d.crm_status,
                target: d.target,
                reason: d.reason,
                owner: d.owner,
                ignored: d.ignored,
                occurred_at: self.occurred_at,
                received_at: self.received_at,
                payload: d.payload,
            },
        }
    }
}
