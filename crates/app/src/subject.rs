//! Subject access: everything held about the person behind a lead, as one document
//! (`leadflow_core::privacy::export` decides its shape). The lead and every lead merged
//! into it are read a page at a time, each section up to
//! [`export::MAX_SECTION_ROWS`]; a section cut there is named in the document.

use crate::App;
use leadflow_core::LeadId;
use leadflow_core::privacy::export::{self, Document, Loaded, Refused, Section};
use leadflow_store::{AttemptRecord, OutboxDelivery, StoreError, StoredSubmission};
use std::future::Future;
use time::OffsetDateTime;

/// Rows per read.
const PAGE: usize = 1000;

/// The document for the person behind `id` (a merged-away id exports its survivor).
pub async fn export(app: &App, id: LeadId) -> Result<Result<Document, Refused>, StoreError> {
    let store = &app.store;
    let Some(lead) = store.get_lead(id).await? else {
        return Ok(Err(Refused::NotFound));
    };
    if lead.erased_at.is_some() {
        return Ok(Err(Refused::Erased(lead.id)));
    }
    let merged_records = store.merged_records(lead.id).await?;
    let family: Vec<LeadId> = std::iter::once(lead.id).chain(merged_records.iter().map(|m| m.id)).collect();
    let mut loaded = Loaded { requested_id: Some(id), ..Loaded::default() };

    let (submissions, capped) =
        pages(|after, n| store.lead_submissions(family.clone(), after, n), |s| s.submission.id).await?;
    loaded.submissions = submissions.into_iter().map(submission).collect();
    mark(&mut loaded, Section::Submissions, capped);
    let (events, capped) = pages(|after, n| store.events_of(family.clone(), after, n), |e| e.id).await?;
    loaded.events = events;
    mark(&mut loaded, Section::Events, capped);
    let (deliveries, capped) =
        pages(|after, n| store.deliveries_of(family.clone(), after, n), |(d, _)| d.id.clone()).await?;
    loaded.deliveries = deliveries.into_iter().map(delivery).collect();
    mark(&mut loaded, Section::Deliveries, capped);
    let (feedback, capped) = pages(|after, n| store.feedback_of(family.clone(), after, n), |f| f.feedback.id).await?;
    loaded.feedback = feedback.into_iter().map(|f| (f.feedback, f.result)).collect();
    mark(&mut loaded, Section::Feedback, capped);

    for member in &family {
        loaded.history.extend(store.lead_history(*member).await?);
    }
    loaded.touchpoints = store.touchpoints(lead.id).await?;
    loaded.reviews = store.reviews_naming(family).await?;
    loaded.consent = store.consent_ledger(lead.id).await?;
    loaded.merged_records = merged_records;
    loaded.lead = Some(lead);
    Ok(export::assemble(loaded, OffsetDateTime::now_utc()))
}

fn mark(loaded: &mut Loaded, section: Section, capped: bool) {
    if capped {
        loaded.capped.insert(section);
    }
}

/// Every row `read` gives, a page at a time after the last row's key, up to the section
/// limit; `true` when there was more than the limit.
async fn pages<T, K, F, Fut>(mut read: F, key: impl Fn(&T) -> K) -> Result<(Vec<T>, bool), StoreError>
where
    F: FnMut(Option<K>, usize) -> Fut,
    Fut: Future<Output = Result<Vec<T>, StoreError>>,
{
    let mut all: Vec<T> = Vec::new();
    let mut after = None;
    loop {
        // One row past the limit tells a cut section from one exactly at the limit.
        let n = PAGE.min(export::MAX_SECTION_ROWS + 1 - all.len());
        let page = read(after.take(), n).await?;
        let full = page.len() == n;
        after = page.last().map(&key);
        all.extend(page);
        if all.len() > export::MAX_SECTION_ROWS {
            all.truncate(export::MAX_SECTION_ROWS);
            return Ok((all, true));
        }
        if !full {
            return Ok((all, false));
        }
    }
}

fn submission(s: StoredSubmission) -> export::Submission {
    export::Submission {
        id: s.submission.id,
        source: s.submission.source.as_str().to_owned(),
        received_at: s.submission.received_at,
        status: s.status.as_str().to_owned(),
        lead_id: s.lead_id,
        errors: s.errors,
        payload: s.submission.payload,
    }
}

fn delivery((d, tries): (OutboxDelivery, Vec<AttemptRecord>)) -> export::Delivery {
    export::Delivery {
        id: d.id,
        destination: d.destination,
        lead_id: d.lead_id,
        event_type: d.event_type,
        status: d.status.as_str().to_owned(),
        payload: d.payload,
        created_at: d.created_at,
        attempts: tries
            .into_iter()
            .map(|t| export::Attempt {
                attempt: t.attempt,
                outcome: t.outcome,
                at: t.at,
                status: t.status,
                error: t.error,
                request: t.request,
                response: t.response,
            })
            .collect(),
    }
}
