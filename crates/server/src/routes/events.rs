//! `/v1/events`: behavioural events (page views, downloads, webinars, meetings, sign-ups,
//! custom types). Each is attached to its lead by lead id, email, external id or the
//! visitor id the lead converted from, and rescores it in the same transaction; an event
//! of someone who is not a lead yet waits and joins the lead when they convert.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{Caller, IdempotencyHeader, Sent, Strict, ValidatedJson, batch_item};
use crate::routes::leads::source_of;
use axum::Json;
use axum::extract::State;
use leadflow_app::events;
use leadflow_core::capture::IdempotencyKey;
use leadflow_core::engagement::{Event, Identity};
use leadflow_core::{EventId, FieldError, FieldErrorCode, LeadId};
use leadflow_store::{EventOutcome, NewEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const MAX_BATCH: usize = 1000;
const MAX_URL: usize = 2048;
const MAX_IDENTITY: usize = 320;

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<EventId>,
    /// `attached` (to `lead_id`, rescored), `waiting` (nobody is a lead with that identity
    /// yet), `erased` (batch only: it names an erased lead and was not recorded),
    /// `dropped` (it names a suppressed person; not recorded) or `rejected` (batch only,
    /// with `errors`).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<LeadId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl From<EventOutcome> for EventOut {
    fn from(o: EventOutcome) -> Self {
        match o {
            EventOutcome::Attached { event_id, lead_id, score, stage, replayed } => Self {
                id: Some(event_id),
                status: "attached",
                lead_id: Some(lead_id),
                score,
                lifecycle_stage: Some(stage),
                replayed,
                errors: Vec::new(),
            },
            EventOutcome::Waiting { event_id, replayed } => Self {
                id: Some(event_id),
                status: "waiting",
                lead_id: None,
                score: None,
                lifecycle_stage: None,
                replayed,
                errors: Vec::new(),
            },
            EventOutcome::Suppressed => Self {
                id: None,
                status: "dropped",
                lead_id: None,
                score: None,
                lifecycle_stage: None,
                replayed: false,
                errors: Vec::new(),
            },
            EventOutcome::Erased { lead_id } => Self {
                id: None,
                status: "erased",
                lead_id: Some(lead_id),
                score: None,
                lifecycle_stage: None,
                replayed: false,
                errors: Vec::new(),
            },
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EventIn {
    /// `page_view`, `content_download`, `webinar_registered`, `webinar_attended`,
    /// `webinar_no_show`, `email_click`, `demo_request`, `meeting_booked`,
    /// `product_signup`, or a custom type (letters, digits, `_`, `.`, `-`).
    #[serde(rename = "type", default)]
    #[schema(value_type = String, required = true)]
    kind: Sent,
    #[serde(default)]
    #[schema(value_type = Option<LeadId>)]
    lead_id: Sent,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    email: Sent,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    external_id: Sent,
    /// The browser's first-party visitor id, for events before the person converts.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    anonymous_id: Sent,
    /// RFC 3339; default: when received.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    occurred_at: Sent,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    url: Sent,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    properties: Sent,
    /// A configured source name; default `api`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    source: Sent,
    /// Batch items only: makes a resend return the first outcome.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    idempotency_key: Sent,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EventBatchIn {
    /// Up to 1000 events.
    // Each event is read on its own, so one bad event is rejected without failing the batch.
    #[serde(default)]
    #[schema(value_type = Vec<EventIn>, required = true)]
    events: Sent,
}

impl Strict<EventIn> {
    /// The event to record, or every field error at once; `prefix` locates errors inside
    /// a batch, and `key` is the request's `Idempotency-Key` (per item in a batch).
    fn check(
        self,
        app: &AppState,
        caller: &Caller,
        prefix: &str,
        key: Option<IdempotencyKey>,
        now: OffsetDateTime,
    ) -> Result<NewEvent, Vec<FieldError>> {
        let Strict { body, unknown } = self;
        let mut errors = Vec::new();
        let at = |f: &str| format!("{prefix}{f}");
        let text = |errors: &mut Vec<FieldError>, field: &str, sent: &Sent, max: usize| -> Option<String> {
            match sent.value()? {
                Value::String(s) if s.trim().is_empty() => None,
                // NUL is not stored (PostgreSQL refuses it): as in a lead's payload, it goes.
                Value::String(s) if s.len() <= max => {
                    Some(s.replace('\0', "").trim().to_owned()).filter(|s| !s.is_empty())
                }
                Value::String(_) => {
                    errors.push(FieldError::new(at(field), FieldErrorCode::TooLong, format!("at most {max} bytes")));
                    None
                }
                _ => {
                    errors.push(FieldError::new(
                        at(field),
                        FieldErrorCode::WrongType,
                        format!("{field} must be a string"),
                    ));
                    None
                }
            }
        };
        let kind = text(&mut errors, "type", &body.kind, 64);
        let valid_kind =
            kind.as_deref().is_some_and(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
        if !valid_kind && !errors.iter().any(|e| e.field == at("type")) {
            errors.push(FieldError::new(
                at("type"),
                FieldErrorCode::Required,
                "type is required: letters, digits, '_', '.' and '-'",
            ));
        }
        let lead_id = match text(&mut errors, "lead_id", &body.lead_id, 64).map(|s| s.parse::<LeadId>()) {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => {
                errors.push(FieldError::new(at("lead_id"), FieldErrorCode::Invalid, "lead_id must be a lead's id"));
                None
            }
        };
        let email = text(&mut errors, "email", &body.email, MAX_IDENTITY).map(|e| e.to_lowercase());
        if let Some(e) = &email
            && leadflow_core::Email::parse(e).is_err()
        {
            errors.push(FieldError::new(at("email"), FieldErrorCode::InvalidEmail, "not an email address"));
        }
        let identity = Identity {
            lead_id,
            email,
            external_id: text(&mut errors, "external_id", &body.external_id, MAX_IDENTITY),
            anonymous_id: text(&mut errors, "anonymous_id", &body.anonymous_id, MAX_IDENTITY),
        };
        if identity.is_empty() && errors.is_empty() {
            errors.push(FieldError::new(
                at("email"),
                FieldErrorCode::Required,
                "an event names its person: lead_id, email, external_id or anonymous_id",
            ));
        }
        let occurred_at = match text(&mut errors, "occurred_at", &body.occurred_at, 64)
            .map(|s| OffsetDateTime::parse(&s, &Rfc3339))
        {
            None => now,
            Some(Ok(t)) if t <= now + time::Duration::days(1) => t,
            Some(Ok(_)) => {
                errors.push(FieldError::new(at("occurred_at"), FieldErrorCode::InvalidTimestamp, "in the future"));
                now
            }
            Some(Err(_)) => {
                errors.push(FieldError::new(at("occurred_at"), FieldErrorCode::InvalidTimestamp, "must be RFC 3339"));
                now
            }
        };
        let url = text(&mut errors, "url", &body.url, MAX_URL);
        let properties = match body.properties.into_given() {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => leadflow_core::capture::without_nul(m),
            Some(_) => {
                errors.push(FieldError::new(
                    at("properties"),
                    FieldErrorCode::WrongType,
                    "properties must be an object",
                ));
                Map::new()
            }
        };
        let source = match source_of(app, body.source.given(), prefix) {
            Ok(source) => Some(source),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        for field in unknown.keys() {
            errors.push(FieldError::new(at(field), FieldErrorCode::UnknownField, "put custom data in properties"));
        }
        let key = match (key, text(&mut errors, "idempotency_key", &body.idempotency_key, IdempotencyKey::MAX_LEN)) {
            (Some(k), _) => Some(k),
            (None, Some(k)) => match IdempotencyKey::parse(&k) {
                Ok(k) => Some(k),
                Err(e) => {
                    errors.push(FieldError::new(at("idempotency_key"), FieldErrorCode::Invalid, e.to_string()));
                    None
                }
            },
            (None, None) => None,
        };
        if let Some(source) = &source
            && let Err(e) = caller.require_ingest(source)
        {
            errors.push(FieldError::new(at("source"), FieldErrorCode::Invalid, e.to_string()));
        }
        match (errors.is_empty(), kind, source) {
            (true, Some(kind), Some(source)) => Ok(NewEvent {
                event: Event { id: EventId::new(), kind, occurred_at, url, properties, lead_id: None, identity },
                source,
                idempotency_key: key,
            }),
            _ => Err(errors),
        }
    }
}

/// Record one event.
#[utoipa::path(post, path = "/v1/events", tag = "events", operation_id = "create_event", request_body = EventIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a resend return the first outcome")),
    responses(
        (status = 200, description = "Attached to its lead, or waiting for one", body = EventOut),
        doc::KeyProblems,
        doc::BodyProblems,
        (status = 410, description = "The event names an erased lead; it was not recorded", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    IdempotencyHeader(key): IdempotencyHeader,
    ValidatedJson(event): ValidatedJson<Strict<EventIn>>,
) -> Result<Json<EventOut>, ApiError> {
    caller.require_any_ingest()?;
    let event = event.check(&app, &caller, "", key, OffsetDateTime::now_utc()).map_err(ApiError::Validation)?;
    let outcome = events::record(&app, vec![event])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("no result for the event".into()))?;
    if let EventOutcome::Erased { lead_id } = outcome {
        return Err(ApiError::erased(lead_id));
    }
    Ok(Json(outcome.into()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventBatchOut {
    /// One result per event, in order.
    pub results: Vec<EventOut>,
    pub attached: usize,
    pub waiting: usize,
    /// Not recorded: they name an erased lead.
    pub erased: usize,
    pub rejected: usize,
}

/// Record up to 1000 events; one result per event, in order. Invalid events are refused
/// one by one; the others are recorded.
#[utoipa::path(post, path = "/v1/events/batch", tag = "events", operation_id = "create_events_batch", request_body = EventBatchIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Applies per event as KEY#index")),
    responses(
        (status = 200, description = "One result per event, in order", body = EventBatchOut),
        doc::KeyProblems,
        doc::BodyProblems,
    ),
    security(("bearer" = [])))]
pub async fn batch(
    State(app): State<AppState>,
    caller: Caller,
    IdempotencyHeader(key): IdempotencyHeader,
    ValidatedJson(body): ValidatedJson<EventBatchIn>,
) -> Result<Json<EventBatchOut>, ApiError> {
    caller.require_any_ingest()?;
    let items = match body.events.into_given() {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_BATCH => items,
        _ => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "events",
                FieldErrorCode::Required,
                format!("events must be a list of 1 to {MAX_BATCH} events"),
            )]));
        }
    };
    let now = OffsetDateTime::now_utc();
    let mut results: Vec<Option<EventOut>> = Vec::with_capacity(items.len());
    let mut valid = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let parsed = batch_item::<Strict<EventIn>>(item, &format!("events[{i}]"), "must be an object")
            .map_err(|e| vec![e])
            .and_then(|event| {
                event.check(&app, &caller, &format!("events[{i}]."), key.as_ref().map(|k| k.for_item(i)), now)
            });
        match parsed {
            Ok(event) => {
                results.push(None);
                valid.push(event);
            }
            Err(errors) => results.push(Some(EventOut {
                id: None,
                status: "rejected",
                lead_id: None,
                score: None,
                lifecycle_stage: None,
                replayed: false,
                errors,
            })),
        }
    }
    let mut outcomes = events::record(&app, valid).await?.into_iter();
    let results: Vec<EventOut> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| outcomes.next().map_or_else(missing, EventOut::from)))
        .collect();
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    Ok(Json(EventBatchOut {
        attached: count("attached"),
        waiting: count("waiting"),
        erased: count("erased"),
        rejected: count("rejected"),
        results,
    }))
}

fn missing() -> EventOut {
    EventOut {
        id: None,
        status: "rejected",
        lead_id: None,
        score: None,
        lifecycle_stage: None,
        replayed: false,
        errors: vec![FieldError::new("", FieldErrorCode::Invalid, "no result from the store")],
    }
}
