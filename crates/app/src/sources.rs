//! Testing a source end to end: a synthetic lead (or a payload the operator gives) goes
//! through the source's adapter, the pure stages and capture, and every stage reports
//! what it did. Used by `POST /v1/sources/{name}/test` and `leadflow sources test NAME`.
//!
//! The lead is real, so the check covers the store too, and marked `custom.test = true`
//! like a provider's test lead. The synthetic lead is in the standard shape: it cannot be
//! in every provider's shape, so for a provider adapter the adapter stage is skipped unless
//! a payload in that provider's shape is given.

use crate::{App, ingest};
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::Adapter;
use leadflow_core::pipeline::{self, Outcome};
use leadflow_core::{FieldError, LeadId, SourceName};
use leadflow_store::{CaptureItem, Captured, StoreError};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// What each stage made of the test lead.
#[derive(Debug, Serialize)]
pub struct SourceTest {
    pub source: String,
    pub adapter: String,
    /// `adapter`, `prepare` (map, normalize, validate) and `capture`, in order; a stage
    /// that fails ends the run.
    pub stages: Vec<StageReport>,
    /// The test lead, when capture ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<LeadId>,
}

#[derive(Debug, Serialize)]
pub struct StageReport {
    pub stage: &'static str,
    /// `ok`, `skipped` or `failed`.
    pub status: &'static str,
    pub detail: Value,
}

impl StageReport {
    fn new(stage: &'static str, status: &'static str, detail: Value) -> Self {
        Self { stage, status, detail }
    }
}

/// A lead that is recognisably a test, unique per run so it never merges into a person.
pub fn synthetic_lead() -> Map<String, Value> {
    let n = uuid::Uuid::now_v7().simple().to_string();
    let lead = json!({
        "first_name": "Test", "last_name": "Lead", "email": format!("leadflow-test+{n}@example.com"),
        "company": "leadflow source test", "job_title": "Tester", "country": "US",
        "utm_source": "leadflow", "utm_campaign": "source-test",
    });
    lead.as_object().cloned().unwrap_or_default()
}

/// Sends a test lead (the payload given, or a synthetic one) through the source. `None`
/// when no source has this name.
pub async fn test(
    app: &App,
    name: &SourceName,
    payload: Option<Map<String, Value>>,
) -> Result<Option<SourceTest>, StoreError> {
    let Some(source) = app.config.source(name) else { return Ok(None) };
    let mut out = SourceTest {
        source: name.to_string(),
        adapter: source.adapter.as_str().to_owned(),
        stages: Vec::new(),
        lead_id: None,
    };
    let given = payload.is_some();
    let payload = payload.unwrap_or_else(synthetic_lead);
    let adapts = source.adapter != Adapter::Json && (given || source.adapter == Adapter::WebForm);
    let mut standard = if adapts {
        match ingest::standard_payload(source, &payload) {
            Ok(p) => {
                let p = p.into_owned();
                out.stages.push(StageReport::new("adapter", "ok", Value::Object(p.clone())));
                p
            }
            Err(errors) => {
                out.stages.push(StageReport::new("adapter", "failed", errors_json(&errors)));
                return Ok(Some(out));
            }
        }
    } else {
        let why = if source.adapter == Adapter::Json {
            "json sources take the standard fields"
        } else {
            "the synthetic lead is already in the standard shape; send a payload in the provider's shape to test the adapter"
        };
        out.stages.push(StageReport::new("adapter", "skipped", json!({"reason": why})));
        payload
    };
    if let Value::Object(custom) = standard.entry("custom").or_insert_with(|| json!({})) {
        custom.insert("test".into(), Value::Bool(true));
    }
    let candidate = match pipeline::prepare(&standard, source, &app.config.picklists) {
        Ok(c) => c,
        Err(errors) => {
            out.stages.push(StageReport::new("prepare", "failed", errors_json(&errors)));
            return Ok(Some(out));
        }
    };
    out.stages.push(StageReport::new(
        "prepare",
        "ok",
        json!({"fields": candidate.fields, "custom": candidate.custom, "issues": candidate.issues}),
    ));
    // Straight to the store, not through ingest: the inbox keeps the standard payload,
    // which the source's adapter could not read again.
    let submission = RawSubmission::new(name.clone(), None, standard);
    let captured = app.store.capture(vec![CaptureItem { submission, candidate }]).await?.pop();
    app.wake.written();
    match captured {
        Some(Captured::Settled { outcome, lead, .. }) => {
            let outcome = match outcome {
                Outcome::Created => "created",
                Outcome::Merged => "merged",
            };
            out.lead_id = Some(lead.id);
            out.stages.push(StageReport::new("capture", "ok", json!({"outcome": outcome, "lead_id": lead.id})));
        }
        Some(Captured::Pending { submission_id }) => {
            out.stages.push(StageReport::new(
                "capture",
                "ok",
                json!({"outcome": "pending", "submission_id": submission_id}),
            ));
        }
        Some(Captured::Rejected { errors, .. }) => {
            out.stages.push(StageReport::new("capture", "failed", errors_json(&errors)));
        }
        // A test submission carries no idempotency key.
        Some(Captured::KeyReused { submission_id }) => {
            out.stages.push(StageReport::new("capture", "failed", json!({"key_reused_by": submission_id})));
        }
        None => return Err(StoreError::Internal("no result for the test submission".into())),
    }
    Ok(Some(out))
}

fn errors_json(errors: &[FieldError]) -> Value {
    json!({ "errors": errors })
}
