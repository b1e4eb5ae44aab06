//! The ingest orchestrator: every submission, whatever its channel, goes through here.
//! Read with [`leadflow_core::settle`], it is the whole story of a lead.
//!
//! 1. **Arrival.** A lead arrives as a [`RawSubmission`]: the payload as sent, its source
//!    and an idempotency key. `POST /v1/leads` and its batch, provider webhooks and web
//!    forms ([`crate::hooks`]), import rows ([`crate::import`]), LinkedIn pulls and batch
//!    sources ([`crate::workers`]) all make one and call [`submit`]. Providers that notify
//!    with an id only, and batch sources, are first [`enqueued`](leadflow_store::Store::enqueue)
//!    in the inbox and come here later through [`settle_fetched`] or [`settle_pending`].
//! 2. **Prepare**, on the caller's task, in parallel across requests ([`prepare`]): the
//!    source's adapter turns a provider's payload into the standard fields, then the pure
//!    stages map → normalize → validate ([`leadflow_core::pipeline::prepare`]). A
//!    submission that fails stops here: refused with its field errors when a caller is
//!    there to fix it (the API, [`OnInvalid::Refuse`]), otherwise kept in the quarantine
//!    with its reasons ([`OnInvalid::Quarantine`]) until the mapping or the data is fixed
//!    and it is [`replay`]ed. A valid submission whose person is on the suppression list
//!    ([`crate::privacy`]) stops here too: acknowledged, answered `suppressed`, never
//!    stored (a copy stored earlier, waiting for a provider fetch, is deleted).
//! 3. **Capture** ([`Store::capture`](leadflow_store::Store::capture)), in one
//!    transaction that SQLite group-commits with the concurrent submissions and
//!    PostgreSQL guards with locks. The raw payload goes into the inbox; then `settle`
//!    decides, over what the store loads for each of its steps (the leads holding the
//!    submission's matching keys, the lead it joins and the leads it bridges, the account,
//!    the person's waiting and earlier events), everything the submission changes: which
//!    lead it is (an exact or fuzzy match, or a new lead), the merged fields, the account,
//!    the touchpoint, the score and lifecycle stage, a possible-duplicate review, the
//!    routing-queue row and one outbox row per destination subscribed to what happened.
//!    The store applies those changes as they are, with no decision of its own. An
//!    idempotency key seen before answers with the first outcome instead. When [`submit`]
//!    returns, the submission is durable: a crash loses nothing, and [`recover_pending`]
//!    settles at start-up what was stored but not settled.
//! 4. **Wake** the workers: the routing worker gives the queued lead an owner (and starts
//!    its SLA timer), the delivery worker sends the outbox rows to webhooks and CRMs, with
//!    retries, until delivered or dead ([`crate::workers`]).
//! 5. **Afterwards**, the lead lives on through the other use cases: behavioural events
//!    rescore it ([`crate::events`]), the CRM reports what became of it
//!    ([`crate::feedback`]), people move it, assign it, merge or split it
//!    ([`crate::routing`], [`crate::merges`]), and the person may ask to be forgotten
//!    ([`crate::erase`]). Each is decided by the core and applied by the store the same way.
//!
//! Provider payloads are stored as the provider sent them; the source's adapter maps them
//! onto the standard fields just before the pure stages, so a quarantine replay or a
//! restart reads the stored payload through the same adapter (an adapter fix applies to
//! what is already stored).

use crate::{App, metrics as m};
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::{Adapter, Config, SourceConfig};
use leadflow_core::normalize::Candidate;
use leadflow_core::pipeline;
use leadflow_core::{FieldError, FieldErrorCode, SourceName, SubmissionId};
use leadflow_integrations::channels::HookError;
use leadflow_store::{CaptureItem, Captured, StoreError, SubmissionStatus};
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
    /// Its person is on the suppression list: acknowledged and dropped, nothing stored
    /// (and a copy stored earlier, waiting for a provider fetch, is deleted).
    Suppressed,
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

/// Prepares each submission, then captures the valid ones (and quarantines the invalid
/// ones, unless refused) in one group commit, and wakes the workers. The answer has one
/// entry per submission, in order.
pub async fn submit(
    app: &App,
    submissions: Vec<RawSubmission>,
    on_invalid: OnInvalid,
) -> Result<Vec<Settled>, StoreError> {
    enum Slot {
        Valid(SourceName),
        Quarantined(SourceName),
        Refused(Vec<FieldError>),
        Suppressed,
    }
    let mut tally = Tally::default();
    let mut slots = Vec::with_capacity(submissions.len());
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    for submission in submissions {
        match prepare(&app.config, &submission) {
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
                app.refusals.rejected(submission.source.as_str());
                slots.push(Slot::Refused(errors));
            }
        }
    }
    let places: Vec<usize> = (0..slots.len()).filter(|&i| matches!(slots[i], Slot::Valid(_))).collect();
    let valid = drop_suppressed(app, valid, |item| {
        if let Some(slot) = places.get(item).and_then(|&i| slots.get_mut(i)) {
            *slot = Slot::Suppressed;
        }
    })
    .await?;
    let captures = !valid.is_empty();
    // Both writes join the same group commit.
    let (captured, quarantined) = tokio::join!(app.store.capture(valid), app.store.quarantine(invalid));
    let (mut captured, mut quarantined) = (captured?.into_iter(), quarantined?.into_iter());
    if captures {
        app.wake.written();
    }
    let mut settled = Vec::with_capacity(slots.len());
    for slot in slots {
        let (source, c) = match slot {
            Slot::Refused(errors) => {
                settled.push(Settled::Rejected(errors));
                continue;
            }
            Slot::Suppressed => {
                settled.push(Settled::Suppressed);
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

/// The items whose person is not suppressed, in order. `dropped(i)` hears of each
/// suppressed one by its place among `items` (before any was dropped); its stored copy,
/// if any, is deleted.
async fn drop_suppressed(
    app: &App,
    items: Vec<CaptureItem>,
    mut dropped: impl FnMut(usize),
) -> Result<Vec<CaptureItem>, StoreError> {
    let candidates: Vec<&Candidate> = items.iter().map(|i| &i.candidate).collect();
    let flags = crate::privacy::suppressed(app, &candidates).await?;
    if !flags.contains(&true) {
        return Ok(items);
    }
    let (mut kept, mut gone) = (Vec::with_capacity(items.len()), Vec::new());
    for (i, (item, suppressed)) in items.into_iter().zip(flags).enumerate() {
        if suppressed {
            dropped(i);
            m::lead_outcomes(item.submission.source.as_str(), "suppressed", 1);
            gone.push(item.submission.id);
        } else {
            kept.push(item);
        }
    }
    app.store.discard_submissions(gone).await?;
    Ok(kept)
}

/// Runs quarantined submissions through the pipeline again, with the configuration as it
/// is now. Each either settles (and leaves the quarantine) or stays, with fresh reasons.
/// Ids that are not in the quarantine answer `None`.
pub async fn replay(app: &App, ids: &[SubmissionId]) -> Result<Vec<Option<Settled>>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let stored = app.store.get_submission(*id).await?;
        let Some(stored) = stored.filter(|s| s.status == SubmissionStatus::Rejected) else {
            out.push(None);
            continue;
        };
        let submission = stored.submission;
        let source = submission.source.clone();
        let settled = match prepare(&app.config, &submission) {
            Ok(candidate) => {
                let items = drop_suppressed(app, vec![CaptureItem { submission, candidate }], |_| {}).await?;
                if items.is_empty() {
                    out.push(Some(Settled::Suppressed));
                    continue;
                }
                let c = app.store.capture(items).await?.pop();
                app.wake.written();
                c.ok_or_else(|| StoreError::Internal("no result for the replayed submission".into()))?
            }
            Err(errors) => {
                app.store.reject_submission(submission.id, errors.clone()).await?;
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
pub async fn replay_all(app: &App, source: Option<SourceName>) -> Result<(usize, usize), StoreError> {
    const PAGE: usize = 500;
    let (mut settled, mut stayed) = (0, 0);
    let mut after = None;
    loop {
        let page = app.store.list_quarantine(source.clone(), after, PAGE).await?;
        let Some(last) = page.last() else { return Ok((settled, stayed)) };
        after = Some(last.submission.id);
        let ids: Vec<SubmissionId> = page.iter().map(|q| q.submission.id).collect();
        for result in replay(app, &ids).await?.into_iter().flatten() {
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

/// Settles submissions that waited in the inbox for the provider's API: each is fetched
/// first ([`crate::providers::Providers::complete`]); one whose fetch fails stays pending.
/// The rest go through [`submit`], the invalid to the quarantine. Returns how many were
/// submitted.
pub async fn settle_fetched(app: &App, submissions: Vec<RawSubmission>) -> Result<usize, StoreError> {
    let mut ready = Vec::with_capacity(submissions.len());
    for mut sub in submissions {
        match app.providers.complete(&app.config, &mut sub).await {
            Ok(()) => ready.push(sub),
            Err(e) => tracing::warn!(submission_id = %sub.id, source = %sub.source, error = %e,
                "provider fetch failed; the submission stays pending"),
        }
    }
    let n = ready.len();
    if n > 0 {
        submit(app, ready, OnInvalid::Quarantine).await?;
    }
    Ok(n)
}

/// Settles the submissions that were stored but not processed (for instance, accepted
/// just before a crash). Runs at start-up; returns how many it settled or rejected.
///
/// Items that wait for the provider's API are fetched first; one whose fetch fails stays
/// pending for the next start-up (or its batch) rather than being quarantined unread.
pub async fn recover_pending(app: &App) -> Result<usize, StoreError> {
    settle_pending(app, |_| true).await
}

/// [`recover_pending`] for the submissions `wanted` picks (the periodic retry leaves batch
/// sources to their own schedule).
pub async fn settle_pending(app: &App, wanted: impl Fn(&RawSubmission) -> bool) -> Result<usize, StoreError> {
    const PAGE: usize = 500;
    let mut done = 0;
    loop {
        let pending: Vec<RawSubmission> =
            app.store.pending_submissions(PAGE).await?.into_iter().filter(&wanted).collect();
        if pending.is_empty() {
            return Ok(done);
        }
        let count = pending.len();
        let mut progressed = 0;
        let mut items = Vec::new();
        for mut submission in pending {
            if let Err(e) = app.providers.complete(&app.config, &mut submission).await {
                tracing::warn!(submission_id = %submission.id, source = %submission.source, error = %e,
                    "provider fetch failed; the submission stays pending");
                continue;
            }
            match prepare(&app.config, &submission) {
                Ok(candidate) => items.push(CaptureItem { submission, candidate }),
                Err(errors) => {
                    m::lead_outcomes(submission.source.as_str(), "rejected", 1);
                    app.store.reject_submission(submission.id, errors).await?;
                    progressed += 1;
                }
            }
        }
        let before = items.len();
        let items = drop_suppressed(app, items, |_| {}).await?;
        progressed += before - items.len();
        for c in app.store.capture(items).await? {
            if matches!(c, Captured::Settled { .. }) {
                progressed += 1;
            }
        }
        app.wake.written();
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
/// JSON or signed-JSON source's payload as sent (the generic mapper reads those).
///
/// A provider marking a submission as a test (`is_test`) gives `custom.test = true`, so
/// test leads can be told apart and filtered; they are leads all the same, because a
/// provider's "send test lead" button is how people check that a connection works.
pub fn standard_payload<'a>(
    source: &SourceConfig,
    payload: &'a Map<String, Value>,
) -> Result<Cow<'a, Map<String, Value>>, Vec<FieldError>> {
    if !source.adapter.standardizes() {
        return Ok(Cow::Borrowed(payload));
    }
    let standard = leadflow_integrations::channels::standardize_source(source, payload)
        .map_err(|e| vec![unreadable(source.adapter, e)])?;
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

/// A provider payload the source's adapter could not read, as a quarantine reason: the
/// field is the path in the provider's payload that was missing (when the adapter knows
/// it), and the adapter's version is named, so an operator can tell which parser to fix
/// and whether a replay ran a newer one.
fn unreadable(adapter: Adapter, e: HookError) -> FieldError {
    let version = leadflow_integrations::channels::adapter_version(adapter);
    let (field, message) = match &e {
        HookError::Missing { path, reason } => (path.clone(), format!("{version} could not read {path}: {reason}")),
        other => (String::new(), format!("{version} could not read the payload: {other}")),
    };
    FieldError::new(field, FieldErrorCode::Unreadable, message).from_adapter(version)
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
        assert_eq!(errors[0].field, "fetched");
        assert_eq!(errors[0].adapter.as_deref(), Some("facebook_lead_ads/2"));
        assert!(errors[0].message.starts_with("facebook_lead_ads/2 could not read fetched"), "{}", errors[0].message);
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
