//! `/v1/leads`: capture single leads and batches, read leads back and undo merges
//! (stages and assignment are in [`super::stages`], erasure in [`super::erasure`]). An
//! erased lead answers 410 Gone with the code `erased` wherever it is named: its tombstone
//! is kept for the reports only.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{ApiQuery, Caller, IdempotencyHeader, Sent, ValidatedJson, not_found, path_id};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use leadflow_app::ingest::{self, OnInvalid, Settled};
use leadflow_app::merges;
use leadflow_core::audit::Action;
use leadflow_core::capture::RawSubmission;
use leadflow_core::lead::{Consent, LeadFields};
use leadflow_core::pipeline::{HistoryEntry, Outcome};
use leadflow_core::{Email, FieldError, FieldErrorCode, Lead, LeadId, SourceName, SubmissionId};
use leadflow_store::Captured;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

pub const MAX_BATCH: usize = 1000;
const MAX_PAGE: usize = 1000;

/// A lead as submitted: the standard fields, `custom`, `consent` and the `source`.
/// Keys that are not standard fields are kept in `custom`.
// The pipeline maps the object as received (unknown keys go to `custom`, values are kept
// as sent, every field error is listed at once), so only `source` is judged here. The
// `serde` attributes shape the document; `Deserialize` is written by hand below so that a
// lead is read once, straight into its map.
#[derive(utoipa::ToSchema)]
pub struct LeadIn {
    /// A configured source name; `api` when left out.
    #[schema(value_type = Option<String>)]
    source: Sent,
    #[serde(flatten)]
    #[schema(value_type = LeadFields)]
    fields: Map<String, Value>,
    #[schema(value_type = Option<Object>)]
    custom: Sent,
    #[schema(value_type = Option<Consent>)]
    consent: Sent,
}

impl LeadIn {
    fn from_object(mut fields: Map<String, Value>) -> Self {
        let mut take = |key: &str| Sent::from(fields.remove(key));
        let (source, custom, consent) = (take("source"), take("custom"), take("consent"));
        Self { source, fields, custom, consent }
    }

    /// The configured source it names, or `api`; `prefix` locates errors in a batch.
    fn source(&self, app: &AppState, prefix: &str) -> Result<SourceName, FieldError> {
        source_of(app, self.source.given(), prefix)
    }

    /// The object as received, for the pipeline: it maps `custom` and `consent` itself and
    /// drops the `source` envelope.
    fn into_payload(self) -> Map<String, Value> {
        let Self { source, mut fields, custom, consent } = self;
        for (key, sent) in [("source", source), ("custom", custom), ("consent", consent)] {
            if let Some(value) = sent.into_given() {
                fields.insert(key.to_owned(), value);
            }
        }
        fields
    }

    /// The payload, its consent choices stamped with the API key that sent them (by id), so
    /// the ledger says who captured each; a value the client put there is replaced.
    fn into_payload_from(self, caller: &Caller) -> Map<String, Value> {
        let mut payload = self.into_payload();
        let key = Value::String(leadflow_app::audit::key_actor(caller.0.id));
        match payload.get_mut("consent") {
            Some(Value::Object(consent)) => {
                consent.insert("api_key".into(), key);
            }
            Some(Value::Array(choices)) => {
                for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
                    choice.insert("api_key".into(), key.clone());
                }
            }
            _ => {}
        }
        payload
    }
}

impl<'de> Deserialize<'de> for LeadIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::from_object)
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct BatchIn {
    /// Up to 1000 leads.
    // Each lead is read on its own, so one bad lead is rejected without failing the batch.
    #[serde(default)]
    #[schema(value_type = Vec<LeadIn>, required = true)]
    leads: Sent,
}

#[derive(Clone, Copy, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeOut {
    Created,
    Merged,
    /// Stored in the inbox and acknowledged, not settled yet.
    Pending,
    Rejected,
    /// The person is on the suppression list: nothing was stored and there is no id.
    Suppressed,
}

impl From<Outcome> for OutcomeOut {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Created => Self::Created,
            Outcome::Merged => Self::Merged,
        }
    }
}

/// The outcome of one submission.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CaptureOut {
    /// The lead's id; for a merge, the surviving lead's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<LeadId>,
    pub outcome: OutcomeOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<SubmissionId>,
    /// True when an earlier submission with the same idempotency key decided the outcome.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The lead as it stands now (single submissions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead: Option<Lead>,
}

impl CaptureOut {
    pub fn from_settled(s: Settled, with_lead: bool) -> Self {
        match s {
            Settled::Captured(Captured::Settled { submission_id, outcome, lead, replayed }) => Self {
                id: Some(lead.id),
                outcome: outcome.into(),
                submission_id: Some(submission_id),
                replayed,
                errors: Vec::new(),
                lead: with_lead.then_some(*lead),
            },
            Settled::Captured(Captured::Pending { submission_id }) => Self {
                id: None,
                outcome: OutcomeOut::Pending,
                submission_id: Some(submission_id),
                replayed: false,
                errors: Vec::new(),
                lead: None,
            },
            Settled::Captured(Captured::Rejected { submission_id, errors }) => Self {
                id: None,
                outcome: OutcomeOut::Rejected,
                submission_id: Some(submission_id),
                replayed: false,
                errors,
                lead: None,
            },
            Settled::Rejected(errors) => Self {
                id: None,
                outcome: OutcomeOut::Rejected,
                submission_id: None,
                replayed: false,
                errors,
                lead: None,
            },
            Settled::Captured(Captured::KeyReused { .. }) => Self {
                id: None,
                outcome: OutcomeOut::Rejected,
                submission_id: None,
                replayed: false,
                errors: vec![key_reused()],
                lead: None,
            },
            Settled::Suppressed => Self {
                id: None,
                outcome: OutcomeOut::Suppressed,
                submission_id: None,
                replayed: false,
                errors: Vec::new(),
                lead: None,
            },
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchOut {
    /// One result per submitted lead, in order.
    pub results: Vec<CaptureOut>,
    pub created: usize,
    pub merged: usize,
    pub rejected: usize,
    pub pending: usize,
    pub suppressed: usize,
}

fn key_reused() -> FieldError {
    FieldError::new(
        "Idempotency-Key",
        FieldErrorCode::IdempotencyKeyReused,
        "this Idempotency-Key was used before for another body; send a new key for a new request",
    )
}

/// The configured source a `source` value names, or `api` when there is none.
pub(crate) fn source_of(app: &AppState, source: Option<&Value>, prefix: &str) -> Result<SourceName, FieldError> {
    let unknown = |detail: String| FieldError::new(format!("{prefix}source"), FieldErrorCode::UnknownSource, detail);
    let name = match source {
        None | Some(Value::Null) => return Ok(SourceName::api()),
        Some(Value::String(s)) => SourceName::parse(s).map_err(|_| unknown(format!("no source is named {s:?}")))?,
        Some(_) => {
            return Err(FieldError::new(
                format!("{prefix}source"),
                FieldErrorCode::WrongType,
                "source must be a string",
            ));
        }
    };
    match app.config.source(&name) {
        Some(_) => Ok(name),
        None => Err(unknown(format!("no source is named {name:?}; configured sources are listed in leadflow.toml"))),
    }
}

/// Capture one lead.
///
/// The lead is durable when the answer arrives. A lead whose email matches an existing
/// lead is merged into it (200, `merged`).
#[utoipa::path(post, path = "/v1/leads", tag = "leads", operation_id = "create_lead", request_body = LeadIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a resubmission return the first outcome instead of a second lead")),
    responses(
        (status = 201, description = "A new lead", body = CaptureOut),
        (status = 200, description = "Merged into an existing lead", body = CaptureOut),
        (status = 202, description = "Stored, not settled yet", body = CaptureOut),
        doc::KeyProblems,
        doc::BodyProblems,
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    IdempotencyHeader(key): IdempotencyHeader,
    ValidatedJson(lead): ValidatedJson<LeadIn>,
) -> Result<Response, ApiError> {
    let source = lead.source(&app, "").map_err(|e| ApiError::Validation(vec![e]))?;
    caller.require_ingest(&source)?;
    let submission = RawSubmission::keyed_by_client(source, key, lead.into_payload_from(&caller));
    let settled = ingest::submit(&app, vec![submission], OnInvalid::Refuse)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("no result for the submission".into()))?;
    let out = match settled {
        Settled::Rejected(errors) => return Err(ApiError::Validation(errors)),
        Settled::Captured(Captured::KeyReused { .. }) => {
            return Err(ApiError::Unprocessable { code: "idempotency_key_reused", detail: key_reused().message });
        }
        other => CaptureOut::from_settled(other, true),
    };
    let status = match out.outcome {
        OutcomeOut::Created => StatusCode::CREATED,
        OutcomeOut::Pending => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    let mut response = (status, Json(&out)).into_response();
    if let Some(id) = out.id {
        set_header(&mut response, header::LOCATION, format!("/v1/leads/{id}"));
    }
    if out.replayed {
        response.headers_mut().insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Capture up to 1000 leads; one result per lead, in order.
///
/// Each lead succeeds or is rejected on its own. With an `Idempotency-Key`, each lead is
/// idempotent on its own (the key plus its position), so resending the batch creates
/// nothing twice.
#[utoipa::path(post, path = "/v1/leads/batch", tag = "leads", operation_id = "create_leads_batch", request_body = BatchIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a resent batch return the first outcomes")),
    responses(
        (status = 200, description = "One result per lead, in order", body = BatchOut),
        doc::KeyProblems,
        doc::BodyProblems,
    ),
    security(("bearer" = [])))]
pub async fn batch(
    State(app): State<AppState>,
    caller: Caller,
    IdempotencyHeader(key): IdempotencyHeader,
    ValidatedJson(body): ValidatedJson<BatchIn>,
) -> Result<Json<BatchOut>, ApiError> {
    let leads = match body.leads.into_given() {
        Some(Value::Array(leads)) => leads,
        _ => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "leads",
                FieldErrorCode::Required,
                "leads must be an array of lead objects",
            )]));
        }
    };
    if leads.len() > MAX_BATCH {
        return Err(ApiError::Validation(vec![FieldError::new(
            "leads",
            FieldErrorCode::TooMany,
            format!("at most {MAX_BATCH} leads per batch"),
        )]));
    }
    let mut items: Vec<Sourced> = Vec::with_capacity(leads.len());
    for (i, lead) in leads.into_iter().enumerate() {
        let lead = match lead {
            Value::Object(fields) => Ok(LeadIn::from_object(fields)),
            _ => Err(FieldError::new(format!("leads[{i}]"), FieldErrorCode::WrongType, "each lead must be an object")),
        };
        items.push(lead.and_then(|lead| Ok((lead.source(&app, &format!("leads[{i}]."))?, lead))));
    }
    // Authorization is all or nothing for a request.
    for (source, _) in items.iter().flatten() {
        caller.require_ingest(source)?;
    }
    let mut slots: Vec<Option<Settled>> = Vec::with_capacity(items.len());
    let mut submissions = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Ok((source, lead)) => {
                slots.push(None);
                let key = key.as_ref().map(|k| k.for_item(i));
                submissions.push(RawSubmission::keyed_by_client(source, key, lead.into_payload_from(&caller)));
            }
            Err(e) => slots.push(Some(Settled::Rejected(vec![e]))),
        }
    }
    let mut settled = ingest::submit(&app, submissions, OnInvalid::Refuse).await?.into_iter();
    let results: Vec<CaptureOut> = slots
        .into_iter()
        .map(|slot| slot.or_else(|| settled.next()).map(|s| CaptureOut::from_settled(s, false)))
        .collect::<Option<_>>()
        .ok_or_else(|| ApiError::Internal("a batch item has no result".into()))?;
    let count = |o: fn(&OutcomeOut) -> bool| results.iter().filter(|r| o(&r.outcome)).count();
    Ok(Json(BatchOut {
        created: count(|o| matches!(o, OutcomeOut::Created)),
        merged: count(|o| matches!(o, OutcomeOut::Merged)),
        rejected: count(|o| matches!(o, OutcomeOut::Rejected)),
        pending: count(|o| matches!(o, OutcomeOut::Pending)),
        suppressed: count(|o| matches!(o, OutcomeOut::Suppressed)),
        results,
    }))
}

/// A batch item with its source sorted out, or why it has none.
type Sourced = Result<(SourceName, LeadIn), FieldError>;

/// Header values built from ids and numbers are always valid; this keeps that assumption
/// out of the handlers.
fn set_header(response: &mut Response, name: HeaderName, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, value);
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only the lead with this email (normalized before matching).
    email: Option<String>,
    /// Page after this lead id (ids sort by creation time).
    after: Option<LeadId>,
    /// Page size, at most 1000; default 100.
    limit: Option<usize>,
}

/// List leads: by email, or all of them a page at a time (oldest first).
#[utoipa::path(get, path = "/v1/leads", tag = "leads", operation_id = "list_leads", params(ListQuery),
    responses(
        (status = 200, description = "The leads; a `Link` header names the next page", body = Vec<Lead>),
        doc::KeyProblems,
        doc::QueryProblems,
        (status = 422, description = "`email` is not an email address", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    if let Some(email) = q.email {
        let email = Email::parse(&email).map_err(|_| {
            ApiError::Validation(vec![FieldError::new(
                "email",
                FieldErrorCode::InvalidEmail,
                "not a valid email address",
            )])
        })?;
        return Ok(Json(app.store.find_leads_by_email(&email).await?).into_response());
    }
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let page = app.store.list_leads(q.after, limit).await?;
    let next = (page.len() == limit).then(|| page.last().map(|l| l.id)).flatten();
    let mut response = Json(page).into_response();
    if let Some(next) = next {
        set_header(&mut response, header::LINK, format!("</v1/leads?after={next}&limit={limit}>; rel=\"next\""));
    }
    Ok(response)
}

/// One lead, normalized, with attribution, stage, score and owner. An id that was merged
/// away answers with the surviving lead (see `Content-Location`).
#[utoipa::path(get, path = "/v1/leads/{id}", tag = "leads", operation_id = "get_lead", params(("id" = String, Path, description = "The lead id")),
    responses(
        (status = 200, description = "The lead, or the lead it was merged into", body = Lead),
        doc::KeyProblems,
        doc::NotFound,
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn get(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    caller.require_read()?;
    let lead_id: LeadId = path_id(&id, "lead")?;
    let lead = live_lead(&app, lead_id, &id).await?;
    let moved = lead.id != lead_id;
    let mut response = Json(&lead).into_response();
    if moved {
        set_header(&mut response, header::CONTENT_LOCATION, format!("/v1/leads/{}", lead.id));
    }
    Ok(response)
}

/// The lead's timeline: creation and every merge, oldest first.
#[utoipa::path(get, path = "/v1/leads/{id}/history", tag = "leads", operation_id = "get_lead_history", params(("id" = String, Path, description = "The lead id")),
    responses(
        (status = 200, description = "The lead's history, oldest first", body = Vec<HistoryEntry>),
        doc::KeyProblems,
        doc::NotFound,
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn history(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    caller.require_read()?;
    let lead_id: LeadId = path_id(&id, "lead")?;
    let lead = live_lead(&app, lead_id, &id).await?;
    Ok(Json(app.store.lead_history(lead.id).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UnmergeOut {
    /// The lead as it was before the merge.
    pub survivor: Lead,
    /// The lead that had been merged in, on its own again.
    pub restored: Lead,
}

/// Undo the merge of this lead into another (a review decision or `leadflow dedupe`).
#[utoipa::path(post, path = "/v1/leads/{id}/unmerge", tag = "leads", operation_id = "unmerge_lead", params(("id" = String, Path, description = "The merged-away lead's id")),
    responses(
        (status = 200, description = "Both leads as they stand now", body = UnmergeOut),
        doc::KeyProblems,
        (status = 404, description = "No such lead, or it is not merged", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The survivor changed after the merge", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The leads were erased: the state to restore is gone", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn unmerge(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<UnmergeOut>, ApiError> {
    caller.require_admin()?;
    let lead_id: LeadId = path_id(&id, "merged lead")?;
    let unmerged = merges::unmerge(&app, lead_id).await?.ok_or_else(|| not_found(&id, "merged lead"))?;
    let entry = caller
        .audit(Action::LeadUnmerged, lead_id.to_string())
        .detail(json!({"survivor": unmerged.survivor.id.to_string()}));
    super::audit::note(&app, [entry]).await;
    Ok(Json(UnmergeOut { survivor: unmerged.survivor, restored: unmerged.restored }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SplitIn {
    /// The submission whose merge into this lead is undone.
    pub submission_id: SubmissionId,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SplitOut {
    /// The lead as it was before the submission merged into it.
    pub lead: Lead,
    /// The lead the submission became.
    pub split: Lead,
}

/// Undo a merge made at capture: the lead returns to its state before the submission
/// merged into it, and the submission becomes a lead of its own.
#[utoipa::path(post, path = "/v1/leads/{id}/split", tag = "leads", operation_id = "split_lead", request_body = SplitIn,
    params(("id" = String, Path, description = "The lead the submission merged into")),
    responses(
        (status = 200, description = "The lead restored and the lead split off", body = SplitOut),
        doc::KeyProblems,
        doc::BodyProblems,
        (status = 404, description = "No such lead, or the submission did not merge into it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The lead changed after the merge, or the submission has the lead's own email", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The lead was erased", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn split(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ValidatedJson(SplitIn { submission_id }): ValidatedJson<SplitIn>,
) -> Result<Json<SplitOut>, ApiError> {
    caller.require_admin()?;
    let lead_id: LeadId = path_id(&id, "lead")?;
    let missing = || not_found(&id, "lead with that merged submission");
    let split = merges::split(&app, lead_id, submission_id).await?.ok_or_else(missing)?;
    let detail = json!({"submission_id": submission_id.to_string(), "split": split.split.id.to_string()});
    super::audit::note(&app, [caller.audit(Action::LeadSplit, lead_id.to_string()).detail(detail)]).await;
    Ok(Json(SplitOut { lead: split.lead, split: split.split }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// At most this many, newest first; at most 1000, default 100.
    limit: Option<usize>,
}

/// The lead's behavioural events (and those of leads merged into it), newest first.
#[utoipa::path(get, path = "/v1/leads/{id}/events", tag = "events", operation_id = "list_lead_events",
    params(("id" = String, Path, description = "The lead id"), EventsQuery),
    responses(
        (status = 200, description = "The events, newest first", body = Vec<leadflow_core::engagement::Event>),
        doc::KeyProblems,
        doc::QueryProblems,
        doc::NotFound,
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn events(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<Vec<leadflow_core::engagement::Event>>, ApiError> {
    caller.require_read()?;
    let lead = live_lead(&app, path_id(&id, "lead")?, &id).await?;
    Ok(Json(app.store.lead_events(lead.id, q.limit.unwrap_or(100).clamp(1, 1000)).await?))
}

/// Every touchpoint of the lead (each submission that settled into it, and into leads
/// merged into it), oldest first.
#[utoipa::path(get, path = "/v1/leads/{id}/touchpoints", tag = "leads", operation_id = "list_lead_touchpoints",
    params(("id" = String, Path, description = "The lead id")),
    responses(
        (status = 200, description = "The touchpoints, oldest first", body = Vec<leadflow_core::attribute::Touchpoint>),
        doc::KeyProblems,
        doc::NotFound,
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn touchpoints(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<leadflow_core::attribute::Touchpoint>>, ApiError> {
    caller.require_read()?;
    let lead = live_lead(&app, path_id(&id, "lead")?, &id).await?;
    Ok(Json(app.store.touchpoints(lead.id).await?))
}

/// The lead the path names (followed through merges), unless it was erased: 404 for no
/// such lead, 410 `erased` for a tombstone.
pub(crate) async fn live_lead(app: &AppState, lead_id: LeadId, raw: &str) -> Result<Lead, ApiError> {
    let lead = app.store.get_lead(lead_id).await?.ok_or_else(|| not_found(raw, "lead"))?;
    match lead.erased_at {
        Some(_) => Err(ApiError::erased(lead.id)),
        None => Ok(lead),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::read_body_as;
    use serde_json::json;

    #[test]
    fn a_lead_reaches_the_pipeline_as_received() {
        let body = json!({"email": "a@example.com", "source": "web", "custom": null, "consent": {"granted": true}, "Plan": [1]});
        let lead: LeadIn = read_body_as(body.clone());
        assert_eq!(lead.source.given(), Some(&json!("web")));
        assert_eq!(Value::Object(lead.into_payload()), body);
    }
}
