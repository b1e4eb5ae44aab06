//! Privacy: the suppression list (`/v1/suppressions`) and a lead's consent ledger
//! (`/v1/leads/{id}/consent`). The core decides what a choice changes
//! (`leadflow_core::consent`) and what a hash is made of (`leadflow_core::suppress`).

use crate::AppState;
use crate::error::{ApiError, doc};
use crate::extract::{Caller, not_found, path_id};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use leadflow_app::privacy::{self, Person};
use leadflow_core::audit::Action;
use leadflow_core::consent::{Entry, State as ConsentState};
use leadflow_core::{Email, FieldError, FieldErrorCode, LeadId};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const MAX_REASON: usize = 500;

/// `POST /v1/suppressions` and `DELETE /v1/suppressions`: the person by email, phone or
/// both, and why.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SuppressionIn {
    /// Any case or spacing: it is normalized before it is hashed.
    email: Option<String>,
    /// In international format (`+` and the country code).
    phone: Option<String>,
    /// Why, e.g. a ticket number (at most 500 characters; never personal data). Required
    /// to lift a suppression.
    reason: Option<String>,
}

/// The person's hashes, as the list now holds them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SuppressionOut {
    /// How many keyed hashes (email, mailbox, phone) this request added or removed.
    pub changed: u64,
    /// Whether the person is on the list now.
    pub suppressed: bool,
}

/// The person and the reason of a suppression request; every field error at once.
fn person(body: &Map<String, Value>, reason_required: bool) -> Result<(Person, Option<String>), ApiError> {
    let mut errors = Vec::new();
    let mut person = Person::default();
    for key in body.keys().filter(|k| !matches!(k.as_str(), "email" | "phone" | "reason")) {
        errors.push(FieldError::new(key, FieldErrorCode::UnknownField, "only email, phone and reason may be given"));
    }
    match body.get("email") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => match Email::parse(s) {
            Ok(email) => person.email = Some(email),
            Err(_) => errors.push(FieldError::new("email", FieldErrorCode::InvalidEmail, "not a valid email address")),
        },
        Some(_) => errors.push(FieldError::new("email", FieldErrorCode::WrongType, "email must be a string")),
    }
    match body.get("phone") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => match leadflow_core::phone::normalize(s, None) {
            Ok(n) if leadflow_core::suppress::is_e164(&n.e164) => person.phone = Some(n.e164),
            _ => errors.push(FieldError::new(
                "phone",
                FieldErrorCode::Invalid,
                "phone must be a valid number in international format (+ and the country code)",
            )),
        },
        Some(_) => errors.push(FieldError::new("phone", FieldErrorCode::WrongType, "phone must be a string")),
    }
    let reason = match body.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_REASON => Some(s.trim().to_owned()),
        Some(_) => {
            errors.push(FieldError::new("reason", FieldErrorCode::Invalid, "reason must be 1 to 500 characters"));
            None
        }
    };
    if reason_required && reason.is_none() && !body.contains_key("reason") {
        errors.push(FieldError::new("reason", FieldErrorCode::Required, "say why the suppression is lifted"));
    }
    if person.email.is_none() && person.phone.is_none() && errors.is_empty() {
        errors.push(FieldError::new("email", FieldErrorCode::Required, "give an email, a phone or both"));
    }
    if errors.is_empty() { Ok((person, reason)) } else { Err(ApiError::Validation(errors)) }
}

fn object(body: Json<Value>) -> Result<Map<String, Value>, ApiError> {
    match body.0 {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::Validation(vec![FieldError::new(
            "",
            FieldErrorCode::WrongType,
            "the body must be an object",
        )])),
    }
}

/// Suppress a person: no channel captures them again.
///
/// The list keeps keyed hashes (HMAC-SHA-256) of the normalized email, its mailbox key
/// (so case, Gmail dots and `+tags` do not get around it) and the E.164 phone, never the
/// plaintext. From now on `POST /v1/leads` answers `"outcome": "suppressed"` without an
/// id, webhooks and forms acknowledge and drop, imports report `suppressed`, and events
/// naming the email are dropped. Existing leads are not touched: erase them to remove
/// their data.
#[utoipa::path(post, path = "/v1/suppressions", tag = "privacy", operation_id = "suppress",
    request_body = SuppressionIn,
    responses(
        (status = 201, description = "On the list (`changed` is 0 when it already was)", body = SuppressionOut),
        doc::KeyProblems,
        doc::BodyProblems,
    ),
    security(("bearer" = [])))]
pub async fn suppress(
    State(app): State<AppState>,
    caller: Caller,
    body: Json<Value>,
) -> Result<(StatusCode, Json<SuppressionOut>), ApiError> {
    caller.require_admin()?;
    let (person, reason) = person(&object(body)?, false)?;
    let changed = privacy::suppress(&app, &person, reason.as_deref(), caller.key_name()).await?;
    let entry = caller.audit(Action::SuppressionAdded, "suppressions").detail(json!({
        "email": person.email.is_some(), "phone": person.phone.is_some(), "changed": changed, "reason": reason,
    }));
    super::audit::note(&app, [entry]).await;
    Ok((StatusCode::CREATED, Json(SuppressionOut { changed, suppressed: true })))
}

/// Lift a suppression (with a reason): the person may be captured again.
#[utoipa::path(delete, path = "/v1/suppressions", tag = "privacy", operation_id = "lift_suppression",
    request_body = SuppressionIn,
    responses(
        (status = 200, description = "Off the list", body = SuppressionOut),
        doc::KeyProblems,
        doc::BodyProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn lift(
    State(app): State<AppState>,
    caller: Caller,
    body: Json<Value>,
) -> Result<Json<SuppressionOut>, ApiError> {
    caller.require_admin()?;
    let (person, reason) = person(&object(body)?, true)?;
    let changed = privacy::lift(&app, &person).await?;
    if changed == 0 {
        return Err(ApiError::not_found("that person is not on the suppression list".to_owned()));
    }
    let entry = caller.audit(Action::SuppressionLifted, "suppressions").detail(json!({
        "email": person.email.is_some(), "phone": person.phone.is_some(), "changed": changed, "reason": reason,
    }));
    super::audit::note(&app, [entry]).await;
    Ok(Json(SuppressionOut { changed, suppressed: false }))
}

/// A lead's consent: the current state per purpose, and the ledger.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConsentOut {
    pub lead_id: LeadId,
    /// Per purpose, the choice that decides it now (across merged records the least
    /// permissive).
    pub current: BTreeMap<String, ConsentState>,
    /// Every choice recorded about the person, oldest first, each with the record it was
    /// made on.
    pub history: Vec<LedgerEntryOut>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LedgerEntryOut {
    /// The lead (or merged record) the choice was recorded on.
    pub lead_id: LeadId,
    #[serde(flatten)]
    pub entry: Entry,
}

fn consent_out(lead: &leadflow_core::Lead, ledger: Vec<(LeadId, Entry)>) -> ConsentOut {
    ConsentOut {
        lead_id: lead.id,
        current: lead.consent.as_ref().map(|c| c.purposes.clone()).unwrap_or_default(),
        history: ledger.into_iter().map(|(lead_id, entry)| LedgerEntryOut { lead_id, entry }).collect(),
    }
}

/// A lead's consent: current state per purpose and the full ledger.
#[utoipa::path(get, path = "/v1/leads/{id}/consent", tag = "privacy", operation_id = "lead_consent",
    params(("id" = String, Path, description = "The lead id (a merged-away id answers for its survivor)")),
    responses(
        (status = 200, description = "The current state and the history", body = ConsentOut),
        doc::KeyProblems,
        doc::NotFound,
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConsentOut>, ApiError> {
    caller.require_read()?;
    let lead_id: LeadId = path_id(&id, "lead")?;
    let (lead, ledger) = privacy::consent(&app, lead_id).await?.ok_or_else(|| not_found(&id, "lead"))?;
    Ok(Json(consent_out(&lead, ledger)))
}

/// `POST /v1/leads/{id}/consent`: one choice (`purpose` and `status`), or several
/// (`purposes`: purpose → status), with optional particulars.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ConsentIn {
    /// A configured purpose (default: marketing_email, sales_contact, phone, profiling).
    purpose: Option<String>,
    /// granted, denied or withdrawn.
    status: Option<String>,
    /// Several at once: purpose → status.
    #[schema(value_type = Option<Object>)]
    purposes: Option<Value>,
    /// When the person chose (RFC 3339); default now.
    at: Option<String>,
    /// `email`, `phone`, `sms`, ...
    channel: Option<String>,
    policy_version: Option<String>,
    lawful_basis: Option<String>,
    /// Double opt-in confirmation time (RFC 3339).
    confirmed_at: Option<String>,
    page_url: Option<String>,
}

const CONSENT_KEYS: [&str; 9] =
    ["purpose", "status", "purposes", "at", "channel", "policy_version", "lawful_basis", "confirmed_at", "page_url"];

/// Record a consent choice (e.g. a withdrawal from an unsubscribe link).
///
/// Appended to the ledger. When it is the most recent choice for its purpose the lead's
/// state changes: destinations subscribed to `consent_changed` get a
/// `lead.consent_changed` delivery, deliveries held for missing consent go again, and
/// deliveries not sent yet are checked against the new state before they are.
#[utoipa::path(post, path = "/v1/leads/{id}/consent", tag = "privacy", operation_id = "record_consent",
    params(("id" = String, Path, description = "The lead id (a merged-away id records on its survivor)")),
    request_body = ConsentIn,
    responses(
        (status = 201, description = "Recorded; the lead's consent as it now stands", body = ConsentOut),
        doc::KeyProblems,
        doc::BodyProblems,
        doc::NotFound,
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn record(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Json<Value>,
) -> Result<(StatusCode, Json<ConsentOut>), ApiError> {
    if !caller.0.is_admin() {
        caller.require_any_ingest()?;
    }
    let lead_id: LeadId = path_id(&id, "lead")?;
    let body = object(body)?;
    let mut errors: Vec<FieldError> = body
        .keys()
        .filter(|k| !CONSENT_KEYS.contains(&k.as_str()))
        .map(|k| FieldError::new(k, FieldErrorCode::UnknownField, "not a consent field"))
        .collect();
    if !body.contains_key("purpose") && !body.contains_key("purposes") {
        errors.push(FieldError::new("purpose", FieldErrorCode::Required, "give a purpose and a status"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let consent = leadflow_core::normalize::consent(&Value::Object(body), &app.config.privacy.purposes)
        .map_err(ApiError::Validation)?;
    let actor = Some(leadflow_app::audit::key_actor(caller.0.id));
    let mut lead = None;
    let mut recorded = Vec::new();
    for (purpose, state) in consent.purposes {
        let status = state.status;
        lead = privacy::record_consent(&app, lead_id, purpose.clone(), state, actor.clone()).await?;
        if lead.is_none() {
            return Err(not_found(&id, "lead"));
        }
        recorded.push(json!({"purpose": purpose, "status": status}));
    }
    let lead = lead.ok_or_else(|| not_found(&id, "lead"))?;
    let entry = caller.audit(Action::ConsentRecorded, lead.id.to_string()).detail(json!({"choices": recorded}));
    super::audit::note(&app, [entry]).await;
    let ledger = app.store.consent_ledger(lead.id).await?;
    Ok((StatusCode::CREATED, Json(consent_out(&lead, ledger))))
}
