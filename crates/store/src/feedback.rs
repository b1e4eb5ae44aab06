//! The feedback row as both backends keep it for the audit: the columns, and the rest as
//! a JSON document. What feedback does is decided in [`leadflow_core::feedback::record`].

use leadflow_core::feedback::{self, Feedback, FeedbackIdentity, FeedbackOutcome, FeedbackResult};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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

/// A stored row, read back.
pub(crate) struct Row {
    pub id: leadflow_core::FeedbackId,
    pub source: String,
    pub event_id: Option<String>,
    pub lead_id: Option<leadflow_core::LeadId>,
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
