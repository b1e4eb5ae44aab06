//! Provider webhooks and web forms: a request the source's adapter verifies (each
//! provider's signature scheme, a web form's token and spam checks) and reads, then its
//! items stored.
//!
//! The provider's answer is due only once its items are durable in the inbox. Items are
//! keyed by the provider's own id, so a provider's retry is the same submission. Items
//! that must be read back from the provider's API (Facebook, LinkedIn), and those of batch
//! sources, are only enqueued here: they are settled in the background
//! ([`crate::ingest::settle_fetched`], [`crate::workers`]).

use crate::ingest::{self, OnInvalid, Settled};
use crate::{App, AppError, metrics as m};
use leadflow_core::capture::{IdempotencyKey, RawSubmission};
use leadflow_core::config::{Mode, SourceConfig};
use leadflow_core::engagement::{Event, Identity};
use leadflow_core::ids::EventId;
use leadflow_core::pipeline::Outcome;
use leadflow_core::{FieldError, FieldErrorCode};
use leadflow_integrations::channels::{self, Activity, Handled, HookError, HookRequest, Item, Secrets};
use leadflow_store::Captured;
use leadflow_store::{EventOutcome, NewEvent};
use sha2::{Digest, Sha256};

/// What became of a provider's request.
#[derive(Debug, PartialEq)]
pub enum Received {
    /// A verification handshake: answer with this status, content type and body.
    Challenge { status: u16, content_type: &'static str, body: String },
    /// A notification that carries no lead; acknowledged, nothing stored.
    Ignored { reason: String },
    /// A web-form post judged to be spam, kept in the quarantine with the reason. The
    /// answer must not differ from an accepted post's: a bot should learn nothing.
    Spam,
    /// The items, stored.
    Stored(Stored),
}

/// What became of a request's items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub received: usize,
    pub created: usize,
    pub merged: usize,
    /// Failed validation: in the quarantine, to be fixed and replayed.
    pub quarantined: usize,
    /// Stored, settled later (batch sources, or leads read back from the provider's API).
    pub pending: usize,
    /// Dropped: the person is suppressed. Not shown to the caller.
    pub suppressed: usize,
    /// What people did (a webinar joined), recorded as events of their leads; those of a
    /// person who is not a lead yet wait for the lead.
    pub recorded: usize,
}

/// Verifies and reads the request with the source's adapter (a provider's; a `json`
/// source's callers post the standard fields with an API key instead) and secrets, then
/// stores what it carries. A refusal (bad signature, stale timestamp, malformed) is
/// [`AppError::Provider`]; nothing is stored then.
pub async fn receive(app: &App, source: &SourceConfig, request: &HookRequest<'_>) -> Result<Received, AppError> {
    let runtime = app.providers.source(&source.name);
    let no_secrets = Secrets::default();
    let secrets = runtime.map_or(&no_secrets, |r| &r.secrets);
    let spam = runtime.map(|r| r.spam.clone()).unwrap_or_default();
    let handled = channels::handle_source(source, request, secrets, &spam).inspect_err(|e| match e {
        HookError::Unauthorized(_) | HookError::Stale(_) => {
            app.refusals.refused(source.name.as_str());
            m::hook_refused(source.name.as_str(), "refused");
        }
        HookError::Malformed(_) | HookError::Missing { .. } | HookError::Unsupported(_) => {
            app.refusals.rejected(source.name.as_str());
            m::hook_refused(source.name.as_str(), "rejected");
        }
    })?;
    match handled {
        Handled::Challenge { status, content_type, body } => Ok(Received::Challenge { status, content_type, body }),
        Handled::Ignored { reason } => Ok(Received::Ignored { reason }),
        Handled::Spam(reason) => {
            let form = channels::body::form(request.body, request.content_type).unwrap_or_default();
            let error = FieldError::new("", FieldErrorCode::Spam, format!("{}: {reason}", reason.code()));
            app.store.quarantine(vec![(RawSubmission::new(source.name.clone(), None, form), vec![error])]).await?;
            m::spam(source.name.as_str(), reason.code());
            tracing::info!(source = %source.name, reason = reason.code(), "web form judged to be spam");
            Ok(Received::Spam)
        }
        Handled::Items(items) => Ok(Received::Stored(store_items(app, source, items).await?)),
        Handled::Activity { items, activity } => {
            // The leads first: an event then finds its lead at once instead of waiting.
            let mut stored = if items.is_empty() { Stored::default() } else { store_items(app, source, items).await? };
            stored.recorded = record_activity(app, source, activity).await?;
            Ok(Received::Stored(stored))
        }
    }
}

/// Stores the items: settled now, or enqueued when they wait for their batch or for the
/// provider's API (fetched in the background once the provider has its answer).
async fn store_items(app: &App, source: &SourceConfig, items: Vec<Item>) -> Result<Stored, AppError> {
    let received = items.len();
    // A provider that only sometimes needs its API (Intercom) is read back only with a
    // token; without one the item settles now, and its quarantine entry says why.
    let can_fetch = source.adapter.fetches() || app.providers.has_token(&source.name);
    let later = source.mode == Mode::Batch || (can_fetch && items.iter().any(|i| i.fetch.is_some()));
    let submissions: Vec<RawSubmission> =
        items.into_iter().map(|i| RawSubmission::new(source.name.clone(), key_of(&i), i.payload)).collect();
    if later {
        app.store.enqueue(submissions.clone()).await?;
        if source.mode == Mode::Realtime {
            let app = app.clone();
            tokio::spawn(async move {
                if let Err(e) = ingest::settle_fetched(&app, submissions).await {
                    tracing::error!(error = %e, "settling fetched leads failed; they stay pending");
                }
            });
        }
        return Ok(Stored { received, pending: received, ..Stored::default() });
    }
    let settled = ingest::submit(app, submissions, OnInvalid::Quarantine).await?;
    let mut out = Stored { received, ..Stored::default() };
    for s in settled {
        match s {
            Settled::Captured(Captured::Settled { outcome: Outcome::Created, .. }) => out.created += 1,
            Settled::Captured(Captured::Settled { outcome: Outcome::Merged, .. }) => out.merged += 1,
            Settled::Captured(Captured::Pending { .. }) => out.pending += 1,
            Settled::Captured(Captured::Rejected { .. } | Captured::KeyReused { .. }) | Settled::Rejected(_) => {
                out.quarantined += 1
            }
            // Acknowledged like any other: the answer does not tell a form's visitor who
            // is suppressed.
            Settled::Suppressed => out.suppressed += 1,
        }
    }
    Ok(out)
}

/// Records what people did as events of their leads, keyed by the provider's ids so a
/// provider's retry records nothing twice. Counts what was recorded now: not a retry's
/// events, nor those of suppressed or erased people (dropped, see [`crate::events::record`]).
async fn record_activity(app: &App, source: &SourceConfig, activity: Vec<Activity>) -> Result<usize, AppError> {
    let events: Vec<NewEvent> = activity
        .into_iter()
        .map(|a| NewEvent {
            idempotency_key: key_from(&a.idempotency_key),
            source: source.name.clone(),
            event: Event {
                id: EventId::new(),
                kind: a.kind,
                occurred_at: a.occurred_at,
                url: None,
                properties: a.properties,
                lead_id: None,
                identity: Identity { email: a.email, anonymous_id: a.visitor, ..Identity::default() },
            },
        })
        .collect();
    let outcomes = crate::events::record(app, events).await?;
    let fresh = |o: &&EventOutcome| {
        matches!(o, EventOutcome::Attached { replayed: false, .. } | EventOutcome::Waiting { replayed: false, .. })
    };
    Ok(outcomes.iter().filter(fresh).count())
}

/// The provider's id as idempotency key; one that is not a valid key (too long, spaces)
/// is hashed, which keeps it stable across retries.
pub fn key_of(item: &Item) -> Option<IdempotencyKey> {
    key_from(&item.idempotency_key)
}

/// [`key_from`] for other recorders of provider-style ids (conversations).
pub(crate) fn key_for(id: &str) -> Option<IdempotencyKey> {
    key_from(id)
}

fn key_from(id: &str) -> Option<IdempotencyKey> {
    IdempotencyKey::parse(id).ok().or_else(|| {
        let digest = Sha256::digest(id.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        IdempotencyKey::parse(&format!("sha256:{hex}")).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn item(key: &str) -> Item {
        Item { idempotency_key: key.to_owned(), payload: Map::new(), fetch: None, is_test: false }
    }

    #[test]
    fn a_provider_id_is_the_key_and_an_unusable_one_is_hashed_the_same_way_each_time() {
        assert_eq!(key_of(&item("fb:leadgen:123")).unwrap().as_str(), "fb:leadgen:123");
        let odd = "typeform:a form response id with spaces";
        let hashed = key_of(&item(odd)).unwrap();
        assert!(hashed.as_str().starts_with("sha256:"), "{}", hashed.as_str());
        assert_eq!(key_of(&item(odd)), Some(hashed));
    }
}
