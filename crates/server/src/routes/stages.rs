//! `/v1/leads/{id}/transitions` and `/v1/leads/{id}/assignment`: where a lead stands in
//! the lifecycle, moving it, and giving it to a rep (by hand or by routing again).

use super::leads::live_lead;
use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{Caller, Sent, Strict, ValidatedJson, not_found, path_id};
use axum::Json;
use axum::extract::{Path, State};
use leadflow_app::routing::{self, Assign};
use leadflow_core::audit::Action;
use leadflow_core::pipeline::HistoryEntry;
use leadflow_core::{FieldError, FieldErrorCode, Lead, LeadId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, utoipa::ToSchema)]
pub struct StageTimeOut {
    pub stage: String,
    /// Seconds spent in the stage, over all visits, up to now for the current one.
    pub seconds: i64,
    pub visits: u32,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TransitionsOut {
    pub lifecycle_stage: String,
    /// Every stage change, oldest first.
    pub transitions: Vec<HistoryEntry>,
    pub time_in_stages: Vec<StageTimeOut>,
    /// Where a person may move the lead from here.
    pub allowed: Vec<String>,
}

/// The lead's stage changes, the time spent in each stage, and the moves allowed now.
#[utoipa::path(get, path = "/v1/leads/{id}/transitions", tag = "leads", operation_id = "get_lead_transitions",
    params(("id" = String, Path, description = "The lead id")),
    responses(
        (status = 200, description = "The stage changes, time in each stage and the moves allowed now", body = TransitionsOut),
        doc::KeyProblems,
        doc::NotFound,
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn transitions(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TransitionsOut>, ApiError> {
    caller.require_read()?;
    let lead = live_lead(&app, path_id(&id, "lead")?, &id).await?;
    let history = app.store.lead_history(lead.id).await?;
    Ok(Json(transitions_out(&app, &lead, history)))
}

fn transitions_out(app: &AppState, lead: &Lead, history: Vec<HistoryEntry>) -> TransitionsOut {
    let stages = routing::stages(lead, history, &app.config.engagement.contract, time::OffsetDateTime::now_utc());
    TransitionsOut {
        lifecycle_stage: lead.lifecycle_stage.clone(),
        transitions: stages.changes,
        time_in_stages: stages
            .time_in
            .into_iter()
            .map(|t| StageTimeOut { stage: t.stage, seconds: t.seconds, visits: t.visits })
            .collect(),
        allowed: stages.allowed,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TransitionIn {
    /// The stage to move to.
    #[serde(default)]
    #[schema(value_type = String, required = true)]
    to: Sent,
    /// Mandatory where the contract says so (e.g. `disqualified`, from its picklist).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    reason: Sent,
    /// Who moves it; default: the API key's name.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    actor: Sent,
}

struct Transition {
    to: String,
    reason: Option<String>,
    actor: Option<String>,
}

impl Strict<TransitionIn> {
    /// Every field error at once; empty `reason` and `actor` count as left out.
    fn check(self) -> Result<Transition, ApiError> {
        const EXPECTED: &str = "expected to, reason and actor as strings";
        let Strict { body: TransitionIn { to, reason, actor }, unknown } = self;
        let mut errors = Vec::new();
        for (field, sent, nullable) in [("to", &to, false), ("reason", &reason, true), ("actor", &actor, true)] {
            if sent.given().is_some_and(|v| !(v.is_string() || (nullable && v.is_null()))) {
                errors.push(FieldError::new(field, FieldErrorCode::Invalid, EXPECTED));
            }
        }
        for (field, _) in unknown {
            errors.push(FieldError::new(field, FieldErrorCode::Invalid, EXPECTED));
        }
        let Some(to) = text(&to) else {
            errors.push(FieldError::new("to", FieldErrorCode::Required, "the stage to move to"));
            return Err(ApiError::Validation(errors));
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(Transition { to, reason: text(&reason), actor: text(&actor) })
    }
}

/// A string field's trimmed text, unless it is empty or not a string.
fn text(sent: &Sent) -> Option<String> {
    sent.value().and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Move the lead in the lifecycle. An illegal move is refused (409) with the allowed ones.
#[utoipa::path(post, path = "/v1/leads/{id}/transitions", tag = "leads", operation_id = "create_lead_transition", request_body = TransitionIn,
    params(("id" = String, Path, description = "The lead id")),
    responses(
        (status = 200, description = "The lead in its new stage", body = Lead),
        doc::KeyProblems,
        doc::BodyProblems,
        doc::NotFound,
        (status = 409, description = "Not allowed by the lifecycle contract; `allowed` lists the stages that are", body = Problem, content_type = "application/problem+json"),
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn create_transition(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ValidatedJson(body): ValidatedJson<Strict<TransitionIn>>,
) -> Result<Json<Lead>, ApiError> {
    caller.require_admin()?;
    let lead_id: LeadId = path_id(&id, "lead")?;
    let Transition { to, reason, actor } = body.check()?;
    let actor = actor.unwrap_or_else(|| caller.key_name().to_owned());
    let moved = routing::transition(&app, lead_id, to, actor, reason).await?.ok_or_else(|| not_found(&id, "lead"))?;
    match moved {
        Ok(lead) => {
            let detail = json!({"stage": lead.lifecycle_stage});
            super::audit::note(&app, [caller.audit(Action::LeadStageMoved, lead_id.to_string()).detail(detail)]).await;
            Ok(Json(lead))
        }
        Err(refused) => Err(ApiError::IllegalTransition {
            code: refused.refusal.code(),
            detail: refused.to_string(),
            allowed: refused.allowed,
        }),
    }
}

/// `owner` assigns the lead to that person; `route: true` runs routing for it again.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AssignmentIn {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    owner: Sent,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    route: Sent,
    /// Who asks; default the API key's name.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    actor: Sent,
}

impl Strict<AssignmentIn> {
    /// How to assign, and who asks (when given); every field error at once.
    fn check(self) -> Result<(Assign, Option<String>), ApiError> {
        const EXPECTED: &str =
            "expected owner (a non-empty string of at most 320 characters) or route = true, and optionally actor";
        let Strict { body: AssignmentIn { owner, route, actor }, unknown } = self;
        let mut errors = Vec::new();
        let person =
            |sent: &Sent| sent.value().and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty() && s.len() <= 320);
        for (field, sent, fits) in [
            ("owner", &owner, person(&owner)),
            ("route", &route, route.value().and_then(Value::as_bool) == Some(true)),
            ("actor", &actor, person(&actor)),
        ] {
            if sent.given().is_some() && !fits {
                errors.push(FieldError::new(field, FieldErrorCode::Invalid, EXPECTED));
            }
        }
        for (field, _) in unknown {
            errors.push(FieldError::new(field, FieldErrorCode::Invalid, EXPECTED));
        }
        let owner = text(&owner);
        if owner.is_some() == route.given().is_some() {
            errors.push(FieldError::new("owner", FieldErrorCode::Required, "give either owner or route = true"));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok((owner.map_or(Assign::Route, Assign::To), text(&actor)))
    }
}

/// Assigns the lead by hand, or routes it again; either way the lead's history explains
/// it and destinations subscribed to `assigned` hear of it.
#[utoipa::path(post, path = "/v1/leads/{id}/assignment", tag = "leads", operation_id = "assign_lead", request_body = AssignmentIn,
    params(("id" = String, Path, description = "The lead id")),
    responses(
        (status = 200, description = "The lead with its owner", body = Lead),
        doc::KeyProblems,
        doc::BodyProblems,
        doc::NotFound,
        (status = 409, description = "Routing found nobody to give the lead to", body = Problem, content_type = "application/problem+json"),
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn assign(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ValidatedJson(body): ValidatedJson<Strict<AssignmentIn>>,
) -> Result<Json<Lead>, ApiError> {
    caller.require_admin()?;
    let lead_id: LeadId = path_id(&id, "lead")?;
    let (how, actor) = body.check()?;
    let actor = actor.unwrap_or_else(|| caller.key_name().to_owned());
    // The owner a person typed may be anyone's name or address: the lead's history keeps
    // it; the audit entry says only how the lead was assigned.
    let how_named = match &how {
        Assign::To(_) => "owner",
        Assign::Route => "route",
    };
    let (lead, assigned) = routing::assign(&app, lead_id, how, actor).await?.ok_or_else(|| not_found(&id, "lead"))?;
    if !assigned {
        return Err(ApiError::Conflict(
            "routing found nobody to give the lead to: no rule matched and no fallback owner is configured".into(),
        ));
    }
    let detail = json!({"how": how_named});
    super::audit::note(&app, [caller.audit(Action::LeadAssigned, lead_id.to_string()).detail(detail)]).await;
    Ok(Json(lead))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{field_errors, read_body_as};
    use FieldErrorCode::{Invalid, Required};
    use serde_json::json;

    #[test]
    fn a_transition_lists_every_field_error_and_trims_its_texts() {
        let refused = read_body_as::<Strict<TransitionIn>>(json!({"to": 5, "reason": null, "colour": "red"})).check();
        let expected = [("to", Invalid), ("colour", Invalid), ("to", Required)].map(|(f, c)| (f.to_owned(), c));
        assert_eq!(field_errors(refused.err().unwrap()), expected);
        let moved = read_body_as::<Strict<TransitionIn>>(json!({"to": " mql ", "reason": "", "actor": null})).check();
        let Transition { to, reason, actor } = moved.unwrap();
        assert_eq!((to.as_str(), reason, actor), ("mql", None, None));
    }

    #[test]
    fn an_assignment_takes_an_owner_or_route_true_and_lists_every_field_error() {
        let check = |body: Value| read_body_as::<Strict<AssignmentIn>>(body).check();
        let refused = check(json!({"route": false, "actor": " ", "colour": 1})).err().unwrap();
        let expected = [("route", Invalid), ("actor", Invalid), ("colour", Invalid)];
        assert_eq!(field_errors(refused), expected.map(|(f, c)| (f.to_owned(), c)));
        for neither_or_both in [json!({"actor": "boss"}), json!({"owner": "dan", "route": true})] {
            let refused = check(neither_or_both).err().unwrap();
            assert_eq!(field_errors(refused), [("owner".to_owned(), Required)]);
        }
        let too_long = check(json!({"owner": "x".repeat(321)})).err().unwrap();
        assert_eq!(field_errors(too_long), [("owner".to_owned(), Invalid)]);
        assert_eq!(check(json!({"owner": " dan "})).unwrap(), (Assign::To("dan".into()), None));
        assert_eq!(check(json!({"route": true, "actor": "boss"})).unwrap(), (Assign::Route, Some("boss".into())));
    }
}
