//! The ingest orchestrator: every submission, whatever its channel, goes through here.
//!
//! The pure stages run first, on the caller's task ([`pipeline::prepare`]); a rejected
//! submission stops there and nothing of it is stored. The store then commits the inbox
//! row and settles the lead (match, merge or create, history) in one group-committed
//! transaction, so an answer means the submission is durable.

use crate::metrics as m;
use leadflow_domain::FieldError;
use leadflow_domain::capture::RawSubmission;
use leadflow_domain::pipeline;
use leadflow_store::{CaptureItem, Captured, DynStore, StoreError};

/// What became of one submission.
#[derive(Debug)]
pub enum Settled {
    Captured(Captured),
    Rejected(Vec<FieldError>),
}

/// Runs the pipeline on submissions; the answer has one entry per submission, in order.
pub async fn submit(
    store: &DynStore,
    submissions: Vec<RawSubmission>,
) -> Result<Vec<Settled>, StoreError> {
    let mut slots: Vec<Option<Settled>> = Vec::with_capacity(submissions.len());
    let mut items = Vec::new();
    for submission in submissions {
        match pipeline::prepare(&submission.payload) {
            Ok(candidate) => {
                slots.push(None);
                items.push(CaptureItem {
                    submission,
                    candidate,
                });
            }
            Err(errors) => {
                m::lead_outcome(submission.source.as_str(), "rejected");
                slots.push(Some(Settled::Rejected(errors)));
            }
        }
    }
    let sources: Vec<String> = items
        .iter()
        .map(|i| i.submission.source.to_string())
        .collect();
    let mut captured = store.capture(items).await?.into_iter();
    let mut sources = sources.into_iter();
    Ok(slots
        .into_iter()
        .filter_map(|slot| match slot {
            Some(rejected) => Some(rejected),
            None => {
                let c = captured.next()?;
                if let Some(source) = sources.next() {
                    m::lead_outcome(&source, outcome_label(&c));
                }
                Some(Settled::Captured(c))
            }
        })
        .collect())
}

fn outcome_label(c: &Captured) -> &'static str {
    match c {
        Captured::Settled { replayed: true, .. } => "replayed",
        Captured::Settled { outcome, .. } => outcome.as_str(),
        Captured::Pending { .. } => "pending",
    }
}

/// Settles the submissions that were stored but not processed (for instance, accepted
/// just before a crash). Runs at start-up; returns how many it settled or rejected.
pub async fn recover_pending(store: &DynStore) -> Result<usize, StoreError> {
    const PAGE: usize = 500;
    let mut done = 0;
    loop {
        let pending = store.pending_submissions(PAGE).await?;
        if pending.is_empty() {
            return Ok(done);
        }
        let count = pending.len();
        let mut progressed = 0;
        let mut items = Vec::new();
        for submission in pending {
            match pipeline::prepare(&submission.payload) {
                Ok(candidate) => items.push(CaptureItem {
                    submission,
                    candidate,
                }),
                Err(errors) => {
                    store.reject_submission(submission.id, errors).await?;
                    progressed += 1;
                }
            }
        }
        for c in store.capture(items).await? {
            if matches!(c, Captured::Settled { .. }) {
                progressed += 1;
            }
        }
        done += progressed;
        tracing::info!(
            settled = progressed,
            of = count,
            "recovered pending submissions"
        );
        if progressed == 0 {
            // What is left fails to settle every time; it stays pending for an operator
            // rather than spinning here.
            tracing::warn!(left = count, "pending submissions could not be settled");
            return Ok(done);
        }
    }
}
