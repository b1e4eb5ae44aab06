//! Behavioural events (page views, downloads, webinars, meetings, sign-ups, custom
//! types). Each is attached to its lead by lead id, email, external id or the visitor id
//! the lead converted from, and rescores it in the same transaction
//! (`leadflow_core::engagement` decides); an event of someone who is not a lead yet waits
//! and joins the lead when they convert. A rescore may move the lead's stage, which may
//! queue it for routing and deliveries: the workers are woken.

use crate::{App, metrics as m};
use leadflow_store::{EventOutcome, NewEvent, StoreError};

/// Records the events in order; one outcome per event. An event naming an erased lead is
/// not recorded ([`EventOutcome::Erased`]).
pub async fn record(app: &App, events: Vec<NewEvent>) -> Result<Vec<EventOutcome>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let outcomes = app.store.record_events(events).await?;
    app.wake.written();
    m::events(outcomes.iter().filter(|o| !matches!(o, EventOutcome::Erased { .. })).count());
    Ok(outcomes)
}
