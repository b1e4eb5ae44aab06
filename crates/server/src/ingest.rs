//! The ingest orchestrator: every submission, whatever its channel, goes through here.
//!
//! The pure stages run first, on the caller's task ([`pipeline::prepare`]); a rejected
//! submission stops there and nothing of it is stored. The store then commits the inbox
//! row and settles the lead (match, merge or create, history) in one group-committed
//! transaction, so an answer means the submission is durable.

use crate::metrics as m;
use leadflow_domain::capture::RawSubmission;
use leadflow_domain::config::{Config, SourceConfig};
use leadflow_domain::pipeline;
use leadflow_domain::{FieldError, SourceName};
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
    config: &Config,
    submissions: Vec<RawSubmission>,
) -> Result<Vec<Settled>, StoreError> {
    let fallback = SourceConfig::api();
    let mut tally = Tally::default();
    let mut slots: Vec<Option<Settled>> = Vec::with_capacity(submissions.len());
    let mut items = Vec::new();
    let mut sources = Vec::new();
    for submission in submissions {
        match pipeline::prepare(&submission.payload, config.source(&submission.source).unwrap_or(&fallback)) {
            Ok(candidate) => {
                slots.push(None);
                sources.push(submission.source.clone());
                items.push(CaptureItem { submission, candidate });
            }
            Err(errors) => {
                tally.add(&submission.source, "rejected");
                slots.push(Some(Settled::Rejected(errors)));
            }
        }
    }
    let mut captured = store.capture(items).await?.into_iter().zip(sources);
    let settled = slots
        .into_iter()
        .filter_map(|slot| {
            slot.or_else(|| {
                let (c, source) = captured.next()?;
                tally.add(&source, outcome_label(&c));
                Some(Settled::Captured(c))
            })
        })
        .collect();
    tally.record();
    Ok(settled)
}

/// Outcome counts of one request, recorded once: a batch of 1000 costs a handful of
/// counter updates, not 1000.
#[derive(Default)]
struct Tally(Vec<(SourceName, &'static str, u64)>);

impl Tally {
    fn add(&mut self, source: &SourceName, outcome: &'static str) {
        match self.0.iter_mut().find(|(s, o, _)| s == source && *o == outcome) {
            Some((_, _, n)) => *n += 1,
            None => self.0.push((source.clone(), outcome, 1)),
        }
    }

    fn record(self) {
        for (source, outcome, n) in self.0 {
            m::lead_outcomes(source.as_str(), outcome, n);
        }
    }
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
pub async fn recover_pending(store: &DynStore, config: &Config) -> Result<usize, StoreError> {
    // A source removed from the configuration since still settles, with no hints.
    let fallback = SourceConfig::api();
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
            match pipeline::prepare(&submission.payload, config.source(&submission.source).unwrap_or(&fallback)) {
                Ok(candidate) => items.push(CaptureItem { submission, candidate }),
                Err(errors) => {
                    m::lead_outcomes(submission.source.as_str(), "rejected", 1);
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
        tracing::info!(settled = progressed, of = count, "recovered pending submissions");
        if progressed == 0 {
            // What is left fails to settle every time; it stays pending for an operator
            // rather than spinning here.
            tracing::warn!(left = count, "pending submissions could not be settled");
            return Ok(done);
        }
    }
}
