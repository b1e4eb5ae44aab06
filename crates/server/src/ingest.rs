//! The ingest orchestrator: every submission, whatever its channel, goes through here.
//!
//! The pure stages run first, on the caller's task ([`pipeline::prepare`]); a rejected
//! submission stops there: refused with its errors (the API), or kept in the quarantine
//! (webhooks, imports). The store then commits the inbox row and settles the lead (match,
//! merge or create, history) in one group-committed transaction, so an answer means the
//! submission is durable.

use crate::metrics as m;
use leadflow_domain::capture::RawSubmission;
use leadflow_domain::config::{Config, SourceConfig};
use leadflow_domain::normalize::Candidate;
use leadflow_domain::pipeline;
use leadflow_domain::{FieldError, SourceName, SubmissionId};
use leadflow_store::{CaptureItem, Captured, DynStore, StoreError, SubmissionStatus};

/// What became of one submission.
#[derive(Debug)]
pub enum Settled {
    Captured(Captured),
    /// Refused and not stored (API callers correct and resend).
    Rejected(Vec<FieldError>),
}

/// What to do with a submission that fails validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInvalid {
    /// Answer with the errors and store nothing: the caller is there to fix it (the API).
    Refuse,
    /// Keep it in the quarantine with its reasons: nobody is waiting for an answer to fix
    /// it (webhooks, imports), so it must not be lost.
    Quarantine,
}

/// The pure stages for one stored submission, under its source's configuration (a
/// source no longer configured is read as the `api` source).
pub fn prepare(config: &Config, submission: &RawSubmission) -> Result<Candidate, Vec<FieldError>> {
    prepare_with(config, &SourceConfig::api(), submission)
}

fn prepare_with(
    config: &Config,
    fallback: &SourceConfig,
    submission: &RawSubmission,
) -> Result<Candidate, Vec<FieldError>> {
    pipeline::prepare(&submission.payload, config.source(&submission.source).unwrap_or(fallback), &config.picklists)
}

/// Runs the pipeline on submissions; the answer has one entry per submission, in order.
pub async fn submit(
    store: &DynStore,
    config: &Config,
    submissions: Vec<RawSubmission>,
    on_invalid: OnInvalid,
) -> Result<Vec<Settled>, StoreError> {
    enum Slot {
        Valid(SourceName),
        Quarantined(SourceName),
        Refused(Vec<FieldError>),
    }
    let fallback = SourceConfig::api();
    let mut tally = Tally::default();
    let mut slots = Vec::with_capacity(submissions.len());
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    for submission in submissions {
        match prepare_with(config, &fallback, &submission) {
            Ok(candidate) => {
                slots.push(Slot::Valid(submission.source.clone()));
                valid.push(CaptureItem { submission, candidate });
            }
            Err(errors) if on_invalid == OnInvalid::Quarantine => {
                slots.push(Slot::Quarantined(submission.source.clone()));
                invalid.push((submission, errors));
            }
            Err(errors) => {
                tally.add(&submission.source, "rejected");
                slots.push(Slot::Refused(errors));
            }
        }
    }
    // Both writes join the same group commit.
    let rules = config.rules();
    let (captured, quarantined) = tokio::join!(store.capture(valid, &rules), store.quarantine(invalid));
    let (mut captured, mut quarantined) = (captured?.into_iter(), quarantined?.into_iter());
    let mut settled = Vec::with_capacity(slots.len());
    for slot in slots {
        let (source, c) = match slot {
            Slot::Refused(errors) => {
                settled.push(Settled::Rejected(errors));
                continue;
            }
            Slot::Valid(source) => (source, captured.next()),
            Slot::Quarantined(source) => (source, quarantined.next()),
        };
        let c = c.ok_or_else(|| StoreError::Internal("the store answered fewer items than it was given".into()))?;
        tally.add(&source, outcome_label(&c));
        settled.push(Settled::Captured(c));
    }
    tally.record();
    Ok(settled)
}

/// Runs quarantined submissions through the pipeline again, with the configuration as it
/// is now. Each either settles (and leaves the quarantine) or stays, with fresh reasons.
/// Ids that are not in the quarantine answer `None`.
pub async fn replay(
    store: &DynStore,
    config: &Config,
    ids: &[SubmissionId],
) -> Result<Vec<Option<Settled>>, StoreError> {
    let fallback = SourceConfig::api();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(stored) = store.get_submission(*id).await?.filter(|s| s.status == SubmissionStatus::Rejected) else {
            out.push(None);
            continue;
        };
        let submission = stored.submission;
        let source = submission.source.clone();
        let settled = match pipeline::prepare(
            &submission.payload,
            config.source(&source).unwrap_or(&fallback),
            &config.picklists,
        ) {
            Ok(candidate) => {
                let c = store.capture(vec![CaptureItem { submission, candidate }], &config.rules()).await?.pop();
                c.ok_or_else(|| StoreError::Internal("no result for the replayed submission".into()))?
            }
            Err(errors) => {
                store.reject_submission(submission.id, errors.clone()).await?;
                Captured::Rejected { submission_id: submission.id, errors }
            }
        };
        m::lead_outcomes(source.as_str(), outcome_label(&settled), 1);
        out.push(Some(Settled::Captured(settled)));
    }
    Ok(out)
}

/// Replays every quarantined submission (of one source, if given); returns how many
/// settled and how many stay quarantined.
pub async fn replay_all(
    store: &DynStore,
    config: &Config,
    source: Option<SourceName>,
) -> Result<(usize, usize), StoreError> {
    const PAGE: usize = 500;
    let (mut settled, mut stayed) = (0, 0);
    let mut after = None;
    loop {
        let page = store.list_quarantine(source.clone(), after, PAGE).await?;
        let Some(last) = page.last() else { return Ok((settled, stayed)) };
        after = Some(last.submission.id);
        let ids: Vec<SubmissionId> = page.iter().map(|q| q.submission.id).collect();
        for result in replay(store, config, &ids).await?.into_iter().flatten() {
            match result {
                Settled::Captured(Captured::Settled { .. }) => settled += 1,
                _ => stayed += 1,
            }
        }
    }
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
        Captured::Rejected { .. } => "quarantined",
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
            match pipeline::prepare(
                &submission.payload,
                config.source(&submission.source).unwrap_or(&fallback),
                &config.picklists,
            ) {
                Ok(candidate) => items.push(CaptureItem { submission, candidate }),
                Err(errors) => {
                    m::lead_outcomes(submission.source.as_str(), "rejected", 1);
                    store.reject_submission(submission.id, errors).await?;
                    progressed += 1;
                }
            }
        }
        for c in store.capture(items, &config.rules()).await? {
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
