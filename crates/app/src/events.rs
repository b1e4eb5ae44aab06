//! Behavioural events (page views, downloads, webinars, meetings, sign-ups, custom
//! types). Each is attached to its lead by lead id, email, external id or the visitor id
//! the lead converted from, and rescores it in the same transaction
//! (`leadflow_core::engagement` decides); an event of someone who is not a lead yet waits
//! and joins the lead when they convert. A rescore may move the lead's stage, which may
//! queue it for routing and deliveries: the workers are woken.

use crate::{App, metrics as m};
use leadflow_store::{EventOutcome, NewEvent, StoreError};

/// Records the events in order; one outcome per event. An event naming an erased lead is
/// not recorded ([`EventOutcome::Erased`]), nor one naming a suppressed person by email
/// ([`EventOutcome::Suppressed`]).
pub async fn record(app: &App, events: Vec<NewEvent>) -> Result<Vec<EventOutcome>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let emails: Vec<Option<&str>> = events.iter().map(|e| e.event.identity.email.as_deref()).collect();
    let dropped = crate::privacy::emails_suppressed(app, &emails).await?;
    let kept: Vec<NewEvent> = events.into_iter().zip(&dropped).filter(|(_, d)| !**d).map(|(e, _)| e).collect();
    let mut recorded = if kept.is_empty() { Vec::new() } else { app.store.record_events(kept).await? }.into_iter();
    let outcomes: Vec<EventOutcome> = dropped
        .iter()
        .map(|d| if *d { Some(EventOutcome::Suppressed) } else { recorded.next() })
        .collect::<Option<_>>()
        .ok_or_else(|| StoreError::Internal("the store answered fewer events than it was given".into()))?;
    app.wake.written();
    m::events(outcomes.iter().filter(|o| !matches!(o, EventOutcome::Erased { .. })).count());
    Ok(outcomes)
}
