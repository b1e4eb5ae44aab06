//! Merges people decide or undo: a review of a possible duplicate decided, a merge undone
//! (unmerge), a submission split off the lead it merged into at capture, and the batch
//! search for duplicates among the stored leads (`leadflow dedupe`).
//! `leadflow_core::merges` decides each; the store applies it in one transaction.

use crate::{App, AppError, ingest};
use leadflow_core::resolve::{self, FoundPair, Record, Verdict};
use leadflow_core::{Lead, LeadId, ReviewId, SubmissionId};
use leadflow_store::{Review, ReviewStatus, StoreError};

/// Records a person's decision on an open review (`Merged` merges the newer lead into the
/// other). `None` when there is no such open review.
pub async fn decide_review(app: &App, id: ReviewId, decision: ReviewStatus) -> Result<Option<Review>, StoreError> {
    let decided = app.store.decide_review(id, decision).await?;
    if decided.is_some() {
        app.wake.written();
    }
    Ok(decided)
}

/// Both leads once a merge is undone.
#[derive(Clone, Debug, PartialEq)]
pub struct Unmerged {
    /// The lead as it was before the merge.
    pub survivor: Lead,
    /// The lead that had been merged in, on its own again.
    pub restored: Lead,
}

/// Undoes the merge of `absorbed` into another lead. `None` when it is not merged; a
/// conflict when the survivor changed since.
pub async fn unmerge(app: &App, absorbed: LeadId) -> Result<Option<Unmerged>, StoreError> {
    let Some(survivor) = app.store.unmerge(absorbed).await? else { return Ok(None) };
    app.wake.written();
    let (survivor, restored) = (app.store.get_lead(survivor).await?, app.store.get_lead(absorbed).await?);
    Ok(survivor.zip(restored).map(|(survivor, restored)| Unmerged { survivor, restored }))
}

/// The lead and the submission split off it.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// The lead as it was before the submission merged into it.
    pub lead: Lead,
    /// The lead the submission became.
    pub split: Lead,
}

/// Undoes the merge of `submission` into `lead` made at capture: the stored submission is
/// prepared again (with the configuration as it is now) and becomes a lead of its own.
/// `None` when the submission did not merge into the lead; [`AppError::Invalid`] when it
/// no longer passes the pipeline.
pub async fn split(app: &App, lead: LeadId, submission: SubmissionId) -> Result<Option<Split>, AppError> {
    let Some(stored) = app.store.get_submission(submission).await? else { return Ok(None) };
    let candidate = ingest::prepare(&app.config, &stored.submission).map_err(AppError::Invalid)?;
    let Some(split) = app.store.split_submission(lead, submission, candidate).await? else {
        return Ok(None);
    };
    app.wake.written();
    Ok(app.store.get_lead(lead).await?.map(|lead| Split { lead, split }))
}

/// Leads read per page while loading them for the search.
const PAGE: usize = 1000;

/// Searches every stored lead for duplicates (fuzzy matching, whatever the capture
/// setting), then, unless `dry_run`, merges the confident pairs and queues the uncertain
/// ones for review. `on_pair` hears of each pair merged or queued (in a dry run, of each
/// pair found) as it is handled; pairs already one lead, decided or queued are passed
/// over. Returns how many leads were searched.
pub async fn dedupe(app: &App, dry_run: bool, mut on_pair: impl FnMut(FoundPair)) -> Result<usize, StoreError> {
    let mut leads: Vec<(LeadId, Record)> = Vec::new();
    let mut after = None;
    loop {
        let page = app.store.list_leads(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        leads.extend(page.iter().map(|l| (l.id, resolve::match_record(&l.fields, &l.derived))));
    }
    for pair in resolve::find_duplicates(&leads, &app.config.matching) {
        let handled = match (pair.verdict, dry_run) {
            (_, true) => true,
            (Verdict::Merge, false) => app.store.merge_leads(pair.older, pair.newer, pair.explanation.clone()).await?,
            (_, false) => {
                let (score, evidence) = (pair.explanation.score.unwrap_or_default(), pair.explanation.evidence.clone());
                app.store.add_review(pair.newer, pair.older, score, evidence).await?
            }
        };
        if handled {
            on_pair(pair);
        }
    }
    if !dry_run {
        app.wake.written();
    }
    Ok(leads.len())
}
