//! `/v1/deliveries`: lead events on their way to destinations. Operators look here for
//! what is stuck (pending, needs data) or gave up (dead letters), inspect a delivery's
//! request, last response and every try, and replay dead letters one by one or in bulk.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{ApiQuery, Caller, ValidatedJson, not_found};
use axum::Json;
use axum::extract::{Path, State};
use leadflow_app::deliveries;
use leadflow_core::LeadId;
use leadflow_core::audit::Action;
use leadflow_store::{AttemptRecord, DeliveryStatus, OutboxDelivery, ReplayFilter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

const MAX_PAGE: usize = 1000;

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    /// Also the idempotency key (`webhook-id`) sent with every try.
    pub id: String,
    pub destination: String,
    #[schema(value_type = String)]
    pub lead_id: LeadId,
    pub event_type: String,
    /// pending, delivered, dead, needs_data or blocked_consent.
    pub status: String,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: OffsetDateTime,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_response: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl From<OutboxDelivery> for DeliveryOut {
    fn from(d: OutboxDelivery) -> Self {
        Self {
            id: d.id,
            destination: d.destination,
            lead_id: d.lead_id,
            event_type: d.event_type,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            last_response: d.last_response,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    /// 1 for the first try.
    pub attempt: u32,
    /// delivered, retry, dead or needs_data.
    pub outcome: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The request as sent, bounded, without credentials.
    pub request: Option<String>,
    pub response: Option<String>,
    pub duration_ms: u64,
}

impl From<AttemptRecord> for AttemptOut {
    fn from(a: AttemptRecord) -> Self {
        Self {
            attempt: a.attempt,
            outcome: a.outcome,
            at: a.at,
            status: a.status,
            error: a.error,
            request: a.request,
            response: a.response,
            duration_ms: a.duration_ms,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryDetailOut {
    #[serde(flatten)]
    pub delivery: DeliveryOut,
    /// The lead as sent.
    #[schema(value_type = Object)]
    pub payload: Value,
    pub attempts_made: Vec<AttemptOut>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// dead (default), needs_data, blocked_consent, pending or delivered.
    status: Option<String>,
    /// Only this destination's deliveries.
    destination: Option<String>,
    /// Page after this delivery id.
    after: Option<String>,
    /// Page size, at most 1000; default 100.
    limit: Option<usize>,
}

/// List deliveries in a status, oldest first: by default the dead letters.
#[utoipa::path(get, path = "/v1/deliveries", tag = "deliveries", operation_id = "list_deliveries", params(DeliveriesQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = Vec<DeliveryOut>),
        doc::KeyProblems,
        (status = 400, description = "A query parameter does not parse, or `status` is unknown", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Vec<DeliveryOut>>, ApiError> {
    caller.require_admin()?;
    let status = match q.status.as_deref() {
        None => DeliveryStatus::Dead,
        Some(s) => DeliveryStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                "status must be dead, needs_data, blocked_consent, pending or delivered",
            )
        })?,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let page = app.store.list_deliveries(status, q.destination, q.after, limit).await?;
    Ok(Json(page.into_iter().map(DeliveryOut::from).collect()))
}

/// One delivery with its payload and every try: request, response, timing.
#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "deliveries", operation_id = "get_delivery", params(("id" = String, Path, description = "The delivery id")),
    responses(
        (status = 200, description = "The delivery, its payload and every try", body = DeliveryDetailOut),
        doc::KeyProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn show(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetailOut>, ApiError> {
    caller.require_admin()?;
    let (delivery, attempts) = app.store.get_delivery(&id).await?.ok_or_else(|| not_found(&id, "delivery"))?;
    let payload = delivery.payload.clone();
    Ok(Json(DeliveryDetailOut {
        delivery: delivery.into(),
        payload,
        attempts_made: attempts.into_iter().map(AttemptOut::from).collect(),
    }))
}

/// Send a dead (or needs-data) delivery again, with a fresh retry schedule and the same
/// idempotency key.
#[utoipa::path(post, path = "/v1/deliveries/{id}/replay", tag = "deliveries", operation_id = "replay_delivery", params(("id" = String, Path, description = "The delivery id")),
    responses(
        (status = 200, description = "The delivery, pending again", body = DeliveryOut),
        doc::KeyProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn replay_one(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryOut>, ApiError> {
    caller.require_admin()?;
    let replayed = deliveries::replay_one(&app, &id).await?.ok_or_else(|| not_found(&id, "delivery"))?;
    super::audit::note(
        &app,
        [leadflow_app::audit::replayed_one(caller.audit(Action::DeliveryReplayed, &id), &replayed)],
    )
    .await;
    Ok(Json(replayed.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReplayDeliveriesIn {
    /// Only this destination's dead letters.
    pub destination: Option<String>,
    /// Created at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Created before this time (RFC 3339).
    pub to: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReplayDeliveriesOut {
    pub replayed: u64,
}

fn time_field(value: Option<&str>, key: &str) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .map(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339))
        .transpose()
        .map_err(|_| ApiError::bad_request("invalid_body", format!("{key} must be an RFC 3339 time")))
}

/// Replay the dead letters, optionally of one destination and a time range.
#[utoipa::path(post, path = "/v1/deliveries/replay", tag = "deliveries", operation_id = "replay_deliveries", request_body = ReplayDeliveriesIn,
    responses(
        (status = 200, description = "How many dead letters are pending again", body = ReplayDeliveriesOut),
        doc::KeyProblems,
        doc::BodyProblems,
        (status = 400, description = "The body is not valid JSON, or `from` or `to` is not an RFC 3339 time", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn replay_many(
    State(app): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<ReplayDeliveriesIn>,
) -> Result<Json<ReplayDeliveriesOut>, ApiError> {
    caller.require_admin()?;
    let filter = ReplayFilter {
        from: time_field(body.from.as_deref(), "from")?,
        to: time_field(body.to.as_deref(), "to")?,
        destination: body.destination,
    };
    let replayed = deliveries::replay_many(&app, filter.clone()).await?;
    let entry = leadflow_app::audit::replayed_many(caller.audit(Action::DeliveriesReplayed, ""), &filter, replayed);
    super::audit::note(&app, [entry]).await;
    Ok(Json(ReplayDeliveriesOut { replayed }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct BackfillIn {
    /// The destination to send to, as configured.
    pub destination: String,
    /// Leads created at or after this time (RFC 3339); default: from the first lead.
    pub from: Option<String>,
    /// Leads created before this time (RFC 3339); default: up to now.
    pub to: Option<String>,
    /// Queue every lead again, even those queued before and unchanged since (a
    /// destination that lost data); default: only leads not yet sent as they now stand.
    #[serde(default)]
    pub resend: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BackfillOut {
    /// Deliveries queued, one per lead.
    pub queued: u64,
}

/// Send every lead created in a time range to a destination, as it stands now.
///
/// Each lead becomes a `lead.backfilled` delivery in the outbox: signed, retried and
/// dead-lettered like any other, its consent checked when it is tried. Erased leads and
/// leads merged away are not sent; Slack destinations are refused. Run again, it queues
/// only the leads that changed since (a delivery's id is derived from the destination, the
/// lead and its version), unless `resend` is set.
#[utoipa::path(post, path = "/v1/deliveries/backfill", tag = "deliveries", operation_id = "backfill_deliveries", request_body = BackfillIn,
    responses(
        (status = 200, description = "How many deliveries were queued", body = BackfillOut),
        doc::KeyProblems,
        doc::BodyProblems,
        (status = 400, description = "The body is not valid JSON, or `from` or `to` is not an RFC 3339 time", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The destination is not configured, or is a Slack channel", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn backfill(
    State(app): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<BackfillIn>,
) -> Result<Json<BackfillOut>, ApiError> {
    caller.require_admin()?;
    let from = time_field(body.from.as_deref(), "from")?;
    let to = time_field(body.to.as_deref(), "to")?;
    let queued = deliveries::backfill(&app.store, &app.config, &body.destination, from, to, body.resend).await?;
    app.wake.delivery();
    let detail = serde_json::json!({"destination": body.destination, "from": body.from, "to": body.to,
        "resend": body.resend, "queued": queued});
    super::audit::note(&app, [caller.audit(Action::DeliveriesBackfilled, &body.destination).detail(detail)]).await;
    Ok(Json(BackfillOut { queued }))
}
