//! The ingest orchestrator: every submission, whatever its channel, goes through here.
//!
//! The pure stages run first, on the caller's task ([`pipeline::prepare`]); a rejected
//! submission stops there: refused with its errors (the API), or kept in the quarantine
//! (webhooks, imports). The store then commits the inbox row and settles the lead (match,
//! merge or create, history) in one group-committed transaction, so an answer means the
//! submission is durable.
//!
//! Provider payloads are stored as the provider sent them; the source's adapter maps them
//! onto the standard fields here, just before the pure stages, so a quarantine replay or
//! a restart reads the stored payload through the same adapter (an adapter fix applies
//! to what is already stored).

use crate::hooks::Hooks;
use crate::metrics as m;
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::{Config, SourceConfig};
use leadflow_core::normalize::Candidate;
use leadflow_core::pipeline;
use leadflow_core::{FieldError, FieldErrorCode, SourceName, SubmissionId};
use leadflow_store::{CaptureItem, Captured, DynStore, StoreError, SubmissionStatus};
use serde_json::{Map, Value};
use std::borrow::Cow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
    let mut tally = Tally::default();
    let mut slots = Vec::with_capacity(submissions.len());
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    for submission in submissions {
        match prepare(config, &submission) {
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
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(stored) = store.get_submission(*id).await?.filter(|s| s.status == SubmissionStatus::Rejected) else {
            out.push(None);
            continue;
        };
        let submission = stored.submission;
        let source = submission.source.clone();
        let settled = match prepare(config, &submission) {
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
        Captured::KeyReused { .. } => "rejected",
    }
}

/// Settles the submissions that were stored but not processed (for instance, accepted
/// just before a crash). Runs at start-up; returns how many it settled or rejected.
///
/// Items that wait for the provider's API are fetched first; one whose fetch fails stays
/// pending for the next start-up (or its batch) rather than being quarantined unread.
pub async fn recover_pending(store: &DynStore, config: &Config, hooks: &Hooks) -> Result<usize, StoreError> {
    settle_pending(store, config, hooks, |_| true).await
}

/// [`recover_pending`] for the submissions `wanted` picks (the periodic retry leaves batch
/// sources to their own schedule).
pub async fn settle_pending(
    store: &DynStore,
    config: &Config,
    hooks: &Hooks,
    wanted: impl Fn(&RawSubmission) -> bool,
) -> Result<usize, StoreError> {
    const PAGE: usize = 500;
    let mut done = 0;
    loop {
        let pending: Vec<RawSubmission> = store.pending_submissions(PAGE).await?.into_iter().filter(&wanted).collect();
        if pending.is_empty() {
            return Ok(done);
        }
        let count = pending.len();
        let mut progressed = 0;
        let mut items = Vec::new();
        for mut submission in pending {
            if let Err(e) = hooks.complete(config, &mut submission).await {
                tracing::warn!(submission_id = %submission.id, source = %submission.source, error = %e,
                    "provider fetch failed; the submission stays pending");
                continue;
            }
            match prepare(config, &submission) {
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

/// The source's adapter, then map → normalize → validate. A source removed from the
/// configuration since still settles, as JSON and with no hints.
pub fn prepare(config: &Config, submission: &RawSubmission) -> Result<Candidate, Vec<FieldError>> {
    let fallback = SourceConfig::api();
    let source = config.source(&submission.source).unwrap_or(&fallback);
    let payload = standard_payload(source, &submission.payload)?;
    pipeline::prepare(&payload, source, &config.picklists)
}

/// The payload the pipeline reads: a provider's item mapped by the source's adapter, or a
/// JSON source's payload as sent.
///
/// A provider marking a submission as a test (`is_test`) gives `custom.test = true`, so
/// test leads can be told apart and filtered; they are leads all the same, because a
/// provider's "send test lead" button is how people check that a connection works.
pub fn standard_payload<'a>(
    source: &SourceConfig,
    payload: &'a Map<String, Value>,
) -> Result<Cow<'a, Map<String, Value>>, Vec<FieldError>> {
    if !source.adapter.is_provider() {
        return Ok(Cow::Borrowed(payload));
    }
    let standard = leadflow_integrations::channels::standardize(source.adapter, payload)
        .map_err(|e| vec![FieldError::new("", FieldErrorCode::Unreadable, e.to_string())])?;
    let is_test = standard.is_test;
    let mut out = standard.into_payload();
    // Providers write consent times their own way (Facebook: `+0000`); one that is not
    // RFC 3339 is kept in custom rather than failing the whole lead.
    let rfc3339 = |v: &Value| v.is_null() || v.as_str().is_some_and(|s| OffsetDateTime::parse(s, &Rfc3339).is_ok());
    let odd_at = out.get("consent").and_then(|c| c.get("at")).filter(|at| !rfc3339(at)).cloned();
    if let Some(Value::Object(consent)) = out.get_mut("consent")
        && odd_at.is_some()
    {
        consent.remove("at");
    }
    if let Some(Value::Object(custom)) = out.get_mut("custom") {
        if let Some(at) = odd_at {
            custom.insert("consent_at".into(), at);
        }
        if is_test {
            custom.insert("test".into(), Value::Bool(true));
        }
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_core::config::Adapter;
    use serde_json::json;

    fn source(adapter: Adapter) -> SourceConfig {
        SourceConfig { adapter, ..SourceConfig::api() }
    }

    #[test]
    fn a_provider_test_lead_is_marked_in_custom() {
        let payload = json!({"lead_id": "L1", "is_test": true, "user_column_data": [
            {"column_id": "EMAIL", "string_value": "t@example.com"}]});
        let out = standard_payload(&source(Adapter::GoogleAdsLeadForm), payload.as_object().unwrap()).unwrap();
        assert_eq!(out["email"], "t@example.com");
        assert_eq!(out["custom"]["test"], true);
    }

    #[test]
    fn json_payloads_pass_as_sent_and_unreadable_ones_are_field_errors() {
        let payload = json!({"email": "a@example.com"});
        let out = standard_payload(&SourceConfig::api(), payload.as_object().unwrap()).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
        let errors = standard_payload(&source(Adapter::FacebookLeadAds), &Map::new()).unwrap_err();
        assert_eq!(errors[0].code, FieldErrorCode::Unreadable);
    }

    #[test]
    fn a_consent_time_that_is_not_rfc3339_moves_to_custom() {
        let payload = json!({"leadgen_id": "1", "fetched": {"id": "1", "created_time": "2024-03-01T10:00:00+0000",
            "field_data": [{"name": "email", "values": ["c@example.com"]}],
            "custom_disclaimer_responses": [{"checkbox_key": "optin", "is_checked": "1"}]}});
        let out = standard_payload(&source(Adapter::FacebookLeadAds), payload.as_object().unwrap()).unwrap();
        assert_eq!(out["consent"]["granted"], true);
        assert!(out["consent"].get("at").is_none());
        assert_eq!(out["custom"]["consent_at"], "2024-03-01T10:00:00+0000");
    }
}
