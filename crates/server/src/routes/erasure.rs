//! `POST /v1/leads/{id}/erase`: the right to be forgotten. The core decides what is left
//! of the person (`leadflow_core::erase`); this handler checks who asks and why.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{Caller, Sent, Strict, ValidatedJson, not_found, path_id};
use axum::Json;
use axum::extract::{Path, State};
use leadflow_app::erase as erasure;
use leadflow_core::audit::Action;
use leadflow_core::{FieldError, FieldErrorCode, LeadId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const MAX_ERASURE_REASON: usize = 500;
const MAX_ERASURE_ACTOR: usize = 200;

/// Who asks for an erasure, and why. Both optional: the actor defaults to the API key's
/// name. Never put personal data here: it is kept in the lead's history.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ErasureIn {
    /// Why, e.g. the request or ticket number (at most 500 characters).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    reason: Sent,
    /// Who asks (at most 200 characters); default: the API key's name.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    actor: Sent,
}

impl Strict<ErasureIn> {
    /// The reason and the actor, trimmed; every field error at once.
    fn check(self) -> Result<(Option<String>, Option<String>), ApiError> {
        let Strict { body: ErasureIn { reason, actor }, unknown } = self;
        let mut errors = Vec::new();
        let mut text = |field: &str, sent: &Sent, max: usize| -> Option<String> {
            match sent.value()? {
                Value::String(s) if !s.trim().is_empty() && s.chars().count() <= max => Some(s.trim().to_owned()),
                _ => {
                    errors.push(FieldError::new(
                        field,
                        FieldErrorCode::Invalid,
                        format!("{field} must be a non-empty string of at most {max} characters"),
                    ));
                    None
                }
            }
        };
        let reason = text("reason", &reason, MAX_ERASURE_REASON);
        let actor = text("actor", &actor, MAX_ERASURE_ACTOR);
        for (field, _) in unknown {
            errors.push(FieldError::new(field, FieldErrorCode::Invalid, "only reason and actor may be given"));
        }
        if errors.is_empty() { Ok((reason, actor)) } else { Err(ApiError::Validation(errors)) }
    }
}

/// What one table kept (scrubbed of personal data) and deleted.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TableErasureOut {
    pub table: &'static str,
    pub scrubbed: u64,
    pub deleted: u64,
}

/// The receipt of an erasure.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErasureOut {
    /// The lead erased: the surviving lead when the id named one merged into it.
    pub lead_id: LeadId,
    /// When it was erased (for an earlier erasure, when that was).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub erased_at: time::OffsetDateTime,
    /// The leads merged into it, erased with it.
    pub merged_ids: Vec<LeadId>,
    /// The lead was erased before; nothing was done this time.
    pub already_erased: bool,
    /// Per table, in a fixed order; empty when nothing was done.
    pub tables: Vec<TableErasureOut>,
    /// The destinations that get a `lead.erased` delivery (ids only) to erase their copy.
    pub destinations: Vec<String>,
}

impl From<leadflow_store::ErasureReceipt> for ErasureOut {
    fn from(r: leadflow_store::ErasureReceipt) -> Self {
        Self {
            lead_id: r.lead_id,
            erased_at: r.erased_at,
            merged_ids: r.merged_ids,
            already_erased: r.already_erased,
            tables: r
                .tables
                .into_iter()
                .map(|t| TableErasureOut { table: t.table, scrubbed: t.scrubbed, deleted: t.deleted })
                .collect(),
            destinations: r.destinations,
        }
    }
}

/// Erase the person behind a lead (the right to be forgotten).
///
/// In one transaction, the lead and every lead merged into it lose all personal data,
/// wherever it is stored (submissions, history, events, touchpoints, feedback,
/// deliveries, reviews, import reports, and what waits unattached under the person's
/// email); a tombstone keeps the id, dates, stage, score, owner and source for the
/// reports. Deliveries not made yet are cancelled, and each destination subscribed to
/// `erased` gets a `lead.erased` delivery with ids only. A new submission with the same
/// email becomes a new lead. Erasing again answers 200 with `already_erased` and does
/// nothing. Refused (409) while an import job is unfinished: its file may hold the
/// person's row.
#[utoipa::path(post, path = "/v1/leads/{id}/erase", tag = "leads", operation_id = "erase_lead", request_body(content = Option<ErasureIn>, description = "Optional: who asks and why"),
    params(("id" = String, Path, description = "The lead id (a merged-away id erases its survivor)")),
    responses(
        (status = 200, description = "The receipt of the erasure (or of the earlier one)", body = ErasureOut),
        doc::KeyProblems,
        doc::BodyProblems,
        doc::NotFound,
        (status = 409, description = "An import job is unfinished; erase once it has finished", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn erase(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<ValidatedJson<Strict<ErasureIn>>>,
) -> Result<Json<ErasureOut>, ApiError> {
    caller.require_admin()?;
    let lead_id: LeadId = path_id(&id, "lead")?;
    // No body asks as little as an empty one.
    let (reason, actor) = match body {
        Some(ValidatedJson(body)) => body.check()?,
        None => (None, None),
    };
    let actor = actor.unwrap_or_else(|| caller.key_name().to_owned());
    let request = erasure::Request { actor, reason: reason.clone() };
    let receipt = erasure::erase(&app, lead_id, request).await?.ok_or_else(|| not_found(&id, "lead"))?;
    let entry = caller
        .audit(Action::LeadErased, receipt.lead_id.to_string())
        .detail(leadflow_app::audit::erased(&receipt, reason));
    super::audit::note(&app, [entry]).await;
    Ok(Json(receipt.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{field_errors, read_body_as};
    use serde_json::json;

    fn check(body: Value) -> Result<(Option<String>, Option<String>), ApiError> {
        read_body_as::<Strict<ErasureIn>>(body).check()
    }

    #[test]
    fn an_erasure_request_lists_every_field_error() {
        let body = json!({"reason": 42, "actor": "x".repeat(201), "email": "linus@example.org"});
        let expected = [
            ("reason", FieldErrorCode::Invalid),
            ("actor", FieldErrorCode::Invalid),
            ("email", FieldErrorCode::Invalid),
        ];
        assert_eq!(field_errors(check(body).unwrap_err()), expected.map(|(f, c)| (f.to_owned(), c)));
        let (reason, actor) = check(json!({"reason": " DSR-12 ", "actor": null})).unwrap();
        assert_eq!((reason.as_deref(), actor), (Some("DSR-12"), None));
    }
}
