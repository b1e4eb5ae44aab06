//! Conversations posted in the generic shape (`POST /v1/conversations`): each message is
//! recorded as a `conversation.message` event of its person, keyed by the source, the
//! conversation and the message's id (else its index) so a retry records nothing twice;
//! the qualification answers, when the person is named by email, update the lead
//! through the normal capture path first (so the messages then find the lead at once).
//! The answers are mapped by the source's qualification table and the label table
//! ([`leadflow_integrations::channels::answers_lead`]); answers that fail validation are
//! quarantined like a webhook's lead, never lost, and the messages are still recorded.

use crate::ingest::{self, OnInvalid, Settled};
use crate::{App, AppError};
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::SourceConfig;
use leadflow_core::engagement::Event;
use leadflow_core::engagement::conversation::{self, Posted};
use leadflow_core::ids::{EventId, LeadId};
use leadflow_core::pipeline::Outcome;
use leadflow_store::{Captured, EventOutcome, NewEvent};
use sha2::{Digest, Sha256};

/// What became of the answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answers {
    /// None were sent.
    None,
    /// Sent, but the person is not named by email: a lead is only made or updated from
    /// an email, so they were not applied.
    Skipped,
    Created,
    Merged,
    /// Already applied by an earlier post of the same answers.
    Replayed,
    /// Stored, settled later (a batch source).
    Pending,
    /// Failed validation; in the quarantine with the reasons.
    Quarantined,
    /// The person is suppressed: dropped.
    Suppressed,
}

impl Answers {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Skipped => "skipped",
            Self::Created => "created",
            Self::Merged => "merged",
            Self::Replayed => "replayed",
            Self::Pending => "pending",
            Self::Quarantined => "quarantined",
            Self::Suppressed => "suppressed",
        }
    }
}

/// What became of a posted conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// Messages recorded now (attached or waiting).
    pub recorded: usize,
    /// Messages an earlier post recorded already.
    pub replayed: usize,
    /// Of all messages, those waiting for their person to become a lead.
    pub waiting: usize,
    /// Dropped: the person is suppressed.
    pub dropped: usize,
    /// The lead the messages belong to, when they found it.
    pub lead_id: Option<LeadId>,
    pub answers: Answers,
    /// Set when the post names an erased lead: nothing was recorded.
    pub erased: Option<LeadId>,
}

pub async fn record(app: &App, source: &SourceConfig, posted: Posted) -> Result<Recorded, AppError> {
    let answers = apply_answers(app, source, &posted).await?;
    let events: Vec<NewEvent> = posted
        .messages
        .iter()
        .map(|(key, at, message)| NewEvent {
            idempotency_key: crate::hooks::key_for(&format!("conversation:{}:{key}", posted.conversation)),
            source: source.name.clone(),
            event: Event {
                id: EventId::new(),
                kind: conversation::KIND.to_owned(),
                occurred_at: *at,
                url: None,
                properties: conversation::properties(message),
                lead_id: None,
                identity: posted.who.clone(),
            },
        })
        .collect();
    let mut out = Recorded { recorded: 0, replayed: 0, waiting: 0, dropped: 0, lead_id: None, answers, erased: None };
    for outcome in crate::events::record(app, events).await? {
        match outcome {
            EventOutcome::Attached { lead_id, replayed, .. } => {
                out.lead_id = Some(lead_id);
                if replayed { out.replayed += 1 } else { out.recorded += 1 }
            }
            EventOutcome::Waiting { replayed, .. } => {
                out.waiting += 1;
                if replayed { out.replayed += 1 } else { out.recorded += 1 }
            }
            EventOutcome::Erased { lead_id } => out.erased = Some(lead_id),
            EventOutcome::Suppressed => out.dropped += 1,
        }
    }
    Ok(out)
}

/// Captures the answers as a submission of the source, keyed by the conversation and
/// the answers themselves: the same answers posted again are a replay, new answers a new
/// submission.
async fn apply_answers(app: &App, source: &SourceConfig, posted: &Posted) -> Result<Answers, AppError> {
    if posted.answers.is_empty() {
        return Ok(Answers::None);
    }
    let Some(email) = posted.who.email.as_deref() else { return Ok(Answers::Skipped) };
    let payload = leadflow_integrations::channels::answers_lead(email, &posted.answers, &source.qualification);
    let digest = Sha256::digest(serde_json::Value::Object(posted.answers.clone()).to_string().as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let key = crate::hooks::key_for(&format!("conversation:{}:answers:{hex}", posted.conversation));
    let settled =
        ingest::submit(app, vec![RawSubmission::new(source.name.clone(), key, payload)], OnInvalid::Quarantine)
            .await?
            .pop();
    Ok(match settled {
        Some(Settled::Captured(Captured::Settled { replayed: true, .. })) => Answers::Replayed,
        Some(Settled::Captured(Captured::Settled { outcome: Outcome::Created, .. })) => Answers::Created,
        Some(Settled::Captured(Captured::Settled { .. })) => Answers::Merged,
        Some(Settled::Captured(Captured::Pending { .. })) => Answers::Pending,
        Some(Settled::Suppressed) => Answers::Suppressed,
        Some(Settled::Captured(_) | Settled::Rejected(_)) | None => Answers::Quarantined,
    })
}
