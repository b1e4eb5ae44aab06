//! What the worker hands in ([`Delivery`]) and what it gets back ([`Attempt`]): one try
//! at one destination, classified so the outbox knows what to do next.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use time::OffsetDateTime;

/// One event for one destination, as the outbox row holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    /// Stable for the delivery's whole life: the idempotency key sent with every try,
    /// and the Standard Webhooks `webhook-id`. Must not contain `.`.
    pub id: String,
    /// The destination's configured name.
    pub destination: String,
    /// e.g. `lead.created`, `lead.assigned`.
    pub event_type: String,
    pub lead_id: String,
    /// The lead JSON as the API shows it.
    pub payload: Value,
    /// When the event happened; part of the webhook body, so every retry sends the
    /// same body.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// Tries made before this one (0 for the first).
    pub attempt: u32,
}

/// The result of one try.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attempt {
    pub outcome: Outcome,
    /// The request as sent, bounded, without credentials (absent when nothing was sent).
    pub request_excerpt: Option<String>,
    pub duration: Duration,
}

/// What the outbox does next.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Delivered { status: u16, response_excerpt: String },
    /// Try again after `after` (counts as a try: the next one has `attempt + 1`).
    Retry {
        after: Duration,
        /// None when no response came (timeout, connection error).
        status: Option<u16>,
        error: String,
        response_excerpt: Option<String>,
    },
    /// Not sent because the destination is throttled (rate limit) or its circuit is
    /// open. Try again after `after`; this was not a try, so `attempt` stays.
    Deferred { after: Duration, reason: DeferReason },
    /// Retrying cannot help: a 4xx other than 408/425/429, a refused credential, or
    /// the schedule is used up. Kept with the response for a person to look at.
    DeadLetter { status: Option<u16>, response_excerpt: Option<String>, reason: String },
    /// The lead lacks fields this destination needs; not sent. Waits until completed.
    NeedsData { missing: Vec<String> },
    /// The lead lacks consent purposes this destination requires; not sent. Held until
    /// the consent arrives.
    BlockedConsent { missing: Vec<String> },
    /// Nothing to send, and nothing left to do: done without a call (an erasure for a
    /// CRM the lead never reached).
    Skipped { reason: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeferReason {
    RateLimited,
    CircuitOpen,
}

impl Outcome {
    /// A stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Delivered { .. } => "delivered",
            Self::Retry { .. } => "retry",
            Self::Deferred { .. } => "deferred",
            Self::DeadLetter { .. } => "dead_letter",
            Self::NeedsData { .. } => "needs_data",
            Self::BlockedConsent { .. } => "blocked_consent",
            Self::Skipped { .. } => "skipped",
        }
    }
}
