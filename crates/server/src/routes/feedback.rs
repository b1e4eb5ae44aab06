//! `/v1/feedback`: what the CRMs say became of the leads, and its audit trail.
//!
//! `POST /v1/feedback/generic` takes leadflow's own JSON (one item, or `{"events": […]}`)
//! from a key with the `feedback` (or admin) scope. `POST /v1/feedback/{destination}`
//! takes a configured HubSpot or Salesforce destination's own webhook, authenticated by
//! that CRM's scheme (see `leadflow_integrations::channels::feedback`), read through the destination's
//! `[destinations.feedback]` mapping.
//!
//! Nothing acknowledged is lost: every item is stored before the answer, whatever became
//! of it (applied, unchanged, stale, no such lead, refused). A CRM's batch is answered as
//! a whole once stored; each item's outcome is in the body and in `GET /v1/feedback`.
//! One generic item is answered by its outcome: 422 `reason_required` for a
//! disqualification without its reason, 409 when no chain of allowed moves leads to the
//! target stage, 202 when no lead matches (kept), 410 when the lead was erased (kept
//! without what the CRM sent).

use crate::AppState;
use crate::error::hook_error;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{ApiQuery, Caller, IdempotencyHeader, Sent, Strict, ValidatedJson, batch_item, path_id};
use crate::routes::hooks::{called_url, read_body};
use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use leadflow_app::AppError;
use leadflow_app::feedback::{self, GenericFeedback};
use leadflow_core::config::Config;
use leadflow_core::feedback::{CrmKind, FeedbackIdentity, FeedbackOutcome, FeedbackResult, FeedbackStatus, GENERIC};
use leadflow_core::{Email, FeedbackId, FieldError, FieldErrorCode, LeadId};
use leadflow_integrations::channels::HookRequest;
use leadflow_integrations::channels::feedback::salesforce;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The most items one generic request may carry.
pub const MAX_BATCH: usize = 1000;
const MAX_PAGE: usize = 1000;
/// Longest accepted text value (ids, reasons, owners).
const MAX_TEXT: usize = 1024;

/// One piece of feedback in leadflow's own form. At least one of `lead_id`, `email`,
/// `external_id` or `crm_id` (with `destination`), and a `status` or an `owner`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct FeedbackIn {
    /// The CRM's event id; a resend with the same id is a replay. Default: the
    /// `Idempotency-Key` header (single items).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    event_id: Sent,
    #[serde(default)]
    #[schema(value_type = Option<LeadId>)]
    lead_id: Sent,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    email: Sent,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    external_id: Sent,
    /// The CRM's own id of the record, as learnt when leadflow delivered the lead to
    /// `destination`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    crm_id: Sent,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    destination: Sent,
    #[serde(default)]
    #[schema(value_type = Option<FeedbackStatus>)]
    status: Sent,
    /// Mandatory for `disqualified` (and for `lost` under the default contract): one of
    /// the contract's `disqualify_reasons`, or a text `[feedback.reasons]` maps to one.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    reason: Sent,
    /// The lead's new owner in the CRM.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    owner: Sent,
    /// RFC 3339; default: now. An older event never undoes a newer one.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    occurred_at: Sent,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct FeedbackBatchIn {
    /// Up to 1000 items.
    // Each item is read on its own, so one bad item is rejected without failing the batch.
    #[schema(value_type = Vec<FeedbackIn>)]
    events: Sent,
}

/// leadflow's own feedback: a batch when the body has `events`, else one item.
#[derive(Deserialize)]
#[serde(untagged)]
enum GenericIn {
    // `events` is required here, so a body without it is read as one item.
    Batch(Strict<FeedbackBatchIn>),
    One(Box<Strict<FeedbackIn>>),
}

/// What became of one piece of feedback.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedbackOut {
    /// The stored feedback; absent for a batch item that could not be read (see `errors`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<FeedbackId>,
    /// Absent for a batch item that could not be read (see `errors`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<FeedbackOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<LeadId>,
    /// The lead's stage after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage: Option<String>,
    /// An earlier item with the same event id decided the outcome; nothing happened again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For refusals: where the lead may move from its stage.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
    /// Field errors of an item the batch could not read (nothing was stored for it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl From<FeedbackResult> for FeedbackOut {
    fn from(r: FeedbackResult) -> Self {
        Self {
            id: Some(r.id),
            outcome: Some(r.outcome),
            lead_id: r.lead_id,
            lifecycle_stage: r.stage,
            replayed: r.replayed,
            detail: r.detail,
            allowed: r.allowed,
            errors: Vec::new(),
        }
    }
}

/// The answer to a batch (generic or a CRM's).
#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedbackBatchOut {
    /// Items received.
    pub received: usize,
    /// Events of the CRM's request that are not feedback (another subscription type or
    /// portal); nothing is stored for them.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// One per item, in order.
    pub results: Vec<FeedbackOut>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Receives a CRM's feedback.
#[utoipa::path(post, path = "/v1/feedback/{source}", tag = "feedback", operation_id = "receive_feedback",
    params(("source" = String, Path, description = "`generic`, or a hubspot or salesforce destination that has [destinations.feedback]")),
    request_body(content = FeedbackIn, description = "generic: one item or {\"events\": [...]} (FeedbackBatchIn); a HubSpot destination: the webhooks API's JSON array of events, signed (X-HubSpot-Signature-v3); a Salesforce destination: an outbound message (SOAP, text/xml) on a URL with ?token="),
    responses(
        (status = 200, description = "Stored and decided; a batch or CRM request answers FeedbackBatchOut (Salesforce: the notificationsResponse Ack)", content(
            (FeedbackOut = "application/json"),
            (String = "text/xml"),
        )),
        (status = 202, description = "Stored; no lead matches (yet)", body = FeedbackOut),
        doc::BodyProblems,
        (status = 401, description = "Missing API key, bad signature or token, or a stale timestamp", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the feedback scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No destination of that name takes feedback", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No chain of allowed moves leads to the target stage; `allowed` lists the moves", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The lead was erased: nothing is applied, and nothing the CRM sent is kept", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or `reason_required` / `reason_not_in_picklist`", body = Problem, content_type = "application/problem+json"),
        doc::AddressLimited,
        doc::Unavailable,
    ),
    security((), ("bearer" = [])))]
pub async fn receive(
    State(app): State<AppState>,
    Path(source): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    if source == GENERIC {
        return generic(app, req).await;
    }
    let unknown = || {
        ApiError::not_found(format!(
            "no destination named {source:?} takes feedback (a hubspot or salesforce destination with [destinations.feedback])"
        ))
    };
    // Before the body is read: an unknown destination is 404 whatever its size.
    if app.config.feedback_destination(&source).is_none() {
        return Err(unknown());
    }
    let (parts, body) = req.into_parts();
    let body = read_body(body, &parts.headers, app.config.server.body_limit_bytes).await?;
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let url = called_url(&headers, &parts.uri);
    let content_type = headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str());
    let hook = HookRequest {
        method: parts.method.as_str(),
        url: &url,
        query: parts.uri.query().unwrap_or_default(),
        headers: &headers,
        content_type,
        body: &body,
        now: OffsetDateTime::now_utc(),
    };
    let received = match feedback::receive_crm(&app, &source, &hook).await {
        Ok(received) => received.ok_or_else(unknown)?,
        Err(AppError::Provider(e)) => return Err(hook_error(e, &parts.method)),
        Err(e) => return Err(e.into()),
    };
    match received.kind {
        CrmKind::Salesforce => {
            Ok(([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], salesforce::ACK).into_response())
        }
        CrmKind::HubSpot => Ok(Json(FeedbackBatchOut {
            received: received.received,
            skipped: received.skipped,
            results: received.results.into_iter().map(FeedbackOut::from).collect(),
        })
        .into_response()),
    }
}

async fn generic(app: AppState, req: Request) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = Caller::from_request_parts(&mut parts, &app).await?;
    caller.require_feedback()?;
    let IdempotencyHeader(key) = IdempotencyHeader::from_request_parts(&mut parts, &app).await?;
    let ValidatedJson(body) = ValidatedJson::from_request(Request::from_parts(parts, body), &app).await?;
    let batch = match body {
        GenericIn::One(item) => {
            let item = item.check(&app.config, "", key.map(|k| k.as_str().to_owned())).map_err(ApiError::Validation)?;
            let result = feedback::record_generic(&app, vec![item])
                .await?
                .pop()
                .ok_or_else(|| ApiError::Internal("no result for the feedback".into()))?;
            return single_answer(result);
        }
        GenericIn::Batch(batch) => batch,
    };
    if let Some(extra) = batch.unknown.keys().next() {
        return Err(ApiError::Validation(vec![FieldError::new(
            extra.clone(),
            FieldErrorCode::Invalid,
            "a batch holds only events",
        )]));
    }
    let events = match batch.body.events.into_given() {
        Some(Value::Array(events)) if !events.is_empty() && events.len() <= MAX_BATCH => events,
        _ => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "events",
                FieldErrorCode::Invalid,
                format!("must be a list of 1 to {MAX_BATCH} items"),
            )]));
        }
    };
    let received = events.len();
    let mut slots: Vec<Result<usize, Vec<FieldError>>> = Vec::with_capacity(received);
    let mut items = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let read = batch_item::<Strict<FeedbackIn>>(event, &format!("events[{i}]"), "must be an object")
            .map_err(|e| vec![e])
            .and_then(|item| item.check(&app.config, &format!("events[{i}]."), None));
        slots.push(read.map(|item| {
            items.push(item);
            items.len() - 1
        }));
    }
    let mut results = feedback::record_generic(&app, items).await?.into_iter().map(Some).collect::<Vec<_>>();
    let results = slots
        .into_iter()
        .map(|slot| match slot {
            Ok(i) => results.get_mut(i).and_then(Option::take).map(FeedbackOut::from),
            Err(errors) => Some(FeedbackOut {
                id: None,
                outcome: None,
                lead_id: None,
                lifecycle_stage: None,
                replayed: false,
                detail: Some("not stored: the item has invalid fields".into()),
                allowed: Vec::new(),
                errors,
            }),
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::Internal("the store answered fewer items than it was given".into()))?;
    Ok(Json(FeedbackBatchOut { received, skipped: 0, results }).into_response())
}

fn single_answer(result: FeedbackResult) -> Result<Response, ApiError> {
    let detail = result.detail.clone().unwrap_or_default();
    match result.outcome {
        FeedbackOutcome::ReasonRequired => Err(ApiError::Unprocessable { code: "reason_required", detail }),
        FeedbackOutcome::ReasonNotInPicklist => Err(ApiError::Unprocessable { code: "reason_not_in_picklist", detail }),
        FeedbackOutcome::Refused => {
            Err(ApiError::IllegalTransition { code: "transition_not_allowed", detail, allowed: result.allowed })
        }
        FeedbackOutcome::Unmatched => Ok((StatusCode::ACCEPTED, Json(FeedbackOut::from(result))).into_response()),
        FeedbackOutcome::Erased => Err(ApiError::Erased(detail)),
        _ => Ok(Json(FeedbackOut::from(result)).into_response()),
    }
}

impl Strict<FeedbackIn> {
    /// The feedback to record, or every field error at once; `prefix` locates errors inside
    /// a batch (`events[3].`), and `header_key` is the `Idempotency-Key` of a single item.
    fn check(
        self,
        config: &Config,
        prefix: &str,
        header_key: Option<String>,
    ) -> Result<GenericFeedback, Vec<FieldError>> {
        let Strict { body, unknown } = self;
        let mut errors = Vec::new();
        let at = |field: &str| format!("{prefix}{field}");
        let text = |field: &str, sent: &Sent, errors: &mut Vec<FieldError>| -> Option<String> {
            match sent.value()? {
                Value::String(s) if s.trim().is_empty() => None,
                Value::String(s) if s.len() <= MAX_TEXT && !s.chars().any(char::is_control) => {
                    Some(s.trim().to_owned())
                }
                Value::String(_) => {
                    errors.push(FieldError::new(
                        at(field),
                        FieldErrorCode::Invalid,
                        "too long or has control characters",
                    ));
                    None
                }
                _ => {
                    errors.push(FieldError::new(at(field), FieldErrorCode::WrongType, "must be a string"));
                    None
                }
            }
        };
        for field in unknown.keys() {
            errors.push(FieldError::new(at(field), FieldErrorCode::Invalid, "not a feedback field"));
        }
        let event_id = text("event_id", &body.event_id, &mut errors).or(header_key);
        let lead_id = text("lead_id", &body.lead_id, &mut errors).and_then(|s| match s.parse::<LeadId>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError::new(at("lead_id"), FieldErrorCode::Invalid, "not a lead id"));
                None
            }
        });
        let email = text("email", &body.email, &mut errors).and_then(|s| match Email::parse(&s) {
            Ok(e) => Some(e),
            Err(_) => {
                errors.push(FieldError::new(at("email"), FieldErrorCode::Invalid, "not an email address"));
                None
            }
        });
        let external_id = text("external_id", &body.external_id, &mut errors);
        let crm_id = text("crm_id", &body.crm_id, &mut errors);
        let destination = text("destination", &body.destination, &mut errors);
        if crm_id.is_some() && destination.as_deref().is_none_or(|d| config.destinations.iter().all(|c| c.name != d)) {
            errors.push(FieldError::new(
                at("destination"),
                FieldErrorCode::Required,
                "crm_id needs the configured destination whose record id it is",
            ));
        }
        let status = text("status", &body.status, &mut errors).and_then(|s| match FeedbackStatus::parse(&s) {
            Some(status) => Some(status),
            None => {
                let names: Vec<&str> = FeedbackStatus::ALL.iter().map(FeedbackStatus::as_str).collect();
                errors.push(FieldError::new(
                    at("status"),
                    FieldErrorCode::Invalid,
                    format!("must be one of {}", names.join(", ")),
                ));
                None
            }
        });
        let reason = text("reason", &body.reason, &mut errors);
        let owner = text("owner", &body.owner, &mut errors);
        let occurred_at =
            text("occurred_at", &body.occurred_at, &mut errors).and_then(|s| {
                match OffsetDateTime::parse(&s, &Rfc3339) {
                    Ok(t) => Some(t),
                    Err(_) => {
                        errors.push(FieldError::new(
                            at("occurred_at"),
                            FieldErrorCode::Invalid,
                            "must be an RFC 3339 time",
                        ));
                        None
                    }
                }
            });
        if lead_id.is_none() && email.is_none() && external_id.is_none() && crm_id.is_none() && errors.is_empty() {
            errors.push(FieldError::new(
                at("lead_id"),
                FieldErrorCode::Required,
                "name the lead: lead_id, email, external_id or crm_id with destination",
            ));
        }
        if status.is_none() && owner.is_none() && errors.is_empty() {
            errors.push(FieldError::new(at("status"), FieldErrorCode::Required, "a status, an owner, or both"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(GenericFeedback {
            event_id,
            identity: FeedbackIdentity { lead_id, crm_id, crm_destination: destination, email, external_id },
            status,
            reason,
            owner,
            occurred_at,
            payload: Value::Object(body.into_payload()),
        })
    }
}

impl FeedbackIn {
    /// The item as received (its declared keys: it has no other), kept with the feedback.
    fn into_payload(self) -> Map<String, Value> {
        // Listed without `..`, so that a field added to the type cannot be forgotten here.
        let Self { event_id, lead_id, email, external_id, crm_id, destination, status, reason, owner, occurred_at } =
            self;
        let declared = [
            ("event_id", event_id),
            ("lead_id", lead_id),
            ("email", email),
            ("external_id", external_id),
            ("crm_id", crm_id),
            ("destination", destination),
            ("status", status),
            ("reason", reason),
            ("owner", owner),
            ("occurred_at", occurred_at),
        ];
        declared.into_iter().filter_map(|(key, sent)| Some((key.to_owned(), sent.into_given()?))).collect()
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `generic` or a destination name.
    source: Option<String>,
    /// The last id of the previous page.
    after: Option<String>,
    /// Default and maximum 1000.
    limit: Option<usize>,
}

/// One stored piece of feedback, with what became of it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StoredFeedbackOut {
    pub id: FeedbackId,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub outcome: FeedbackOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<LeadId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<FeedbackStatus>,
    /// The value as the CRM sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crm_status: Option<String>,
    /// The stage the status means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The lead's stage after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: OffsetDateTime,
    /// The item as received.
    #[schema(value_type = Object)]
    pub payload: Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedbackListOut {
    pub items: Vec<StoredFeedbackOut>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<FeedbackId>,
}

/// Stored feedback, oldest first: the audit trail of what the CRMs reported.
#[utoipa::path(get, path = "/v1/feedback", tag = "feedback", operation_id = "list_feedback", params(ListQuery),
    responses(
        (status = 200, description = "A page of stored feedback", body = FeedbackListOut),
        doc::KeyProblems,
        (status = 400, description = "A query parameter does not parse, or `after` is not a feedback id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<FeedbackListOut>, ApiError> {
    caller.require_read()?;
    let after =
        match q.after.as_deref() {
            Some(raw) => Some(path_id::<FeedbackId>(raw, "feedback").map_err(|_| {
                ApiError::bad_request("invalid_query", "after must be a feedback id from a previous page")
            })?),
            None => None,
        };
    let limit = q.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let stored = app.store.list_feedback(q.source, after, limit).await?;
    let next = (stored.len() == limit).then(|| stored.last().map(|s| s.result.id)).flatten();
    let items = stored
        .into_iter()
        .map(|s| StoredFeedbackOut {
            id: s.result.id,
            source: s.feedback.source,
            event_id: s.feedback.event_id,
            outcome: s.result.outcome,
            lead_id: s.result.lead_id,
            status: s.feedback.status,
            crm_status: s.feedback.crm_status,
            target_stage: s.feedback.target,
            reason: s.feedback.reason,
            owner: s.feedback.owner,
            lifecycle_stage: s.result.stage,
            detail: s.result.detail.or(s.feedback.ignored),
            occurred_at: s.feedback.occurred_at,
            received_at: s.feedback.received_at,
            payload: s.feedback.payload,
        })
        .collect();
    Ok(Json(FeedbackListOut { items, next }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::read_body_as;
    use serde_json::json;

    fn check(body: Value, prefix: &str) -> Result<GenericFeedback, Vec<FieldError>> {
        read_body_as::<Strict<FeedbackIn>>(body).check(&Config::default(), prefix, None)
    }

    #[test]
    fn an_item_is_kept_as_received_with_every_field_it_declares() {
        let body = json!({
            "event_id": "e-1", "lead_id": null, "email": "Ada@Example.com", "external_id": "x-1",
            "crm_id": null, "destination": "crm", "status": "won", "reason": " ", "owner": "rep-7",
            "occurred_at": "2024-05-01T10:00:00Z"
        });
        let item = check(body.clone(), "").unwrap();
        assert_eq!((item.status, item.reason, item.owner.as_deref()), (Some(FeedbackStatus::Won), None, Some("rep-7")));
        assert_eq!(item.payload, body);
    }

    #[test]
    fn an_item_lists_every_field_error_under_its_prefix() {
        let body = json!({"lead_id": "nope", "status": "maybe", "occurred_at": "yesterday", "x": 1, "owner": 7});
        let errors: Vec<(String, FieldErrorCode)> =
            check(body, "events[2].").unwrap_err().into_iter().map(|e| (e.field, e.code)).collect();
        let expected = [
            ("x", FieldErrorCode::Invalid),
            ("lead_id", FieldErrorCode::Invalid),
            ("status", FieldErrorCode::Invalid),
            ("owner", FieldErrorCode::WrongType),
            ("occurred_at", FieldErrorCode::Invalid),
        ];
        assert_eq!(errors, expected.map(|(f, c)| (format!("events[2].{f}"), c)));
    }

    #[test]
    fn a_body_with_events_is_a_batch_and_any_other_is_one_item() {
        let batch = |body: Value| match read_body_as::<GenericIn>(body) {
            GenericIn::Batch(batch) => Some(batch.unknown.into_iter().map(|(k, _)| k).collect::<Vec<_>>()),
            GenericIn::One(_) => None,
        };
        assert_eq!(batch(json!({"events": null})), Some(vec![]));
        assert_eq!(batch(json!({"events": [], "lead_id": "x"})), Some(vec!["lead_id".to_owned()]));
        assert_eq!(batch(json!({"lead_id": "x", "eventz": []})), None);
    }
}
