//! `/v1/alerts`: alert episodes (firing and resolved), their notifications, and what an
//! operator does about them: acknowledge one (its reminders stop), silence a scope.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{ApiQuery, Caller, ValidatedJson};
use axum::Json;
use axum::extract::{Path, State};
use leadflow_core::config::parse_duration;
use leadflow_core::health::alerts::{Episode, State as EpisodeState};
use leadflow_core::{FieldError, FieldErrorCode};
use leadflow_store::StoredNotification;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::Validation(vec![FieldError::new(field, FieldErrorCode::Invalid, message)])
}

/// An alert episode: from the evaluation its rule first held for the scope until it
/// held false for keep-firing-for.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertOut {
    pub id: String,
    /// The rule's kind: error_rate, silence, latency, volume, backlog, pending_fetch.
    pub rule: String,
    /// Which configured rule (`error_rate#0`) or default (`silence#default-source`).
    pub rule_key: String,
    /// `source:NAME` or `destination:NAME`.
    pub scope: String,
    /// `firing` or `resolved`.
    pub state: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<OffsetDateTime>,
    /// The last evaluation its condition held.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_held_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledged_at: Option<OffsetDateTime>,
    pub acknowledged_by: Option<String>,
    /// The measured value when the condition last held: a fraction (error_rate, volume),
    /// seconds (latency, silence, pending_fetch) or a count (backlog).
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

impl From<Episode> for AlertOut {
    fn from(e: Episode) -> Self {
        Self {
            id: e.id,
            rule: e.kind.as_str().to_owned(),
            rule_key: e.rule.0,
            scope: e.scope,
            state: e.state.as_str().to_owned(),
            started_at: e.started_at,
            resolved_at: e.resolved_at,
            last_held_at: e.last_held_at,
            acknowledged_at: e.acknowledged_at,
            acknowledged_by: e.acknowledged_by,
            value: e.value,
            threshold: e.threshold,
            message: e.message,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// `firing` or `resolved`; default: both, newest first.
    state: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<usize>,
}

/// Alert episodes, newest first.
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", operation_id = "list_alerts", params(AlertsQuery),
    responses(
        (status = 200, description = "Episodes, newest first", body = Vec<AlertOut>),
        doc::KeyProblems,
        (status = 400, description = "`state` is neither firing nor resolved", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AlertsQuery>,
) -> Result<Json<Vec<AlertOut>>, ApiError> {
    caller.require_read()?;
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(
            EpisodeState::parse(s)
                .ok_or_else(|| ApiError::bad_request("invalid_query", "state must be firing or resolved"))?,
        ),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let episodes = app.store.list_episodes(state, limit).await?;
    Ok(Json(episodes.into_iter().map(AlertOut::from).collect()))
}

/// One notification of an episode to one channel.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NotificationOut {
    pub id: String,
    pub channel: String,
    /// `alert.firing`, `alert.resolved` or `alert.reminder`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `sent` or `dead`.
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl From<StoredNotification> for NotificationOut {
    fn from(n: StoredNotification) -> Self {
        let kind = n.body["type"].as_str().unwrap_or_default().to_owned();
        Self { id: n.id, channel: n.channel, kind, status: n.status, attempts: n.attempts, last_error: n.last_error }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertDetailOut {
    #[serde(flatten)]
    pub alert: AlertOut,
    pub notifications: Vec<NotificationOut>,
}

/// One episode and its notifications to each channel.
#[utoipa::path(get, path = "/v1/alerts/{id}", tag = "alerts", operation_id = "get_alert",
    params(("id" = String, Path, description = "The episode id")),
    responses(
        (status = 200, description = "The episode and its notifications", body = AlertDetailOut),
        doc::KeyProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn show(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertDetailOut>, ApiError> {
    caller.require_read()?;
    let episode = app.store.get_episode(&id).await?.ok_or_else(|| ApiError::not_found(format!("no alert {id:?}")))?;
    let notifications = app.store.episode_notifications(&id).await?;
    Ok(Json(AlertDetailOut {
        alert: episode.into(),
        notifications: notifications.into_iter().map(NotificationOut::from).collect(),
    }))
}

/// Acknowledge a firing episode: its reminders stop; it still resolves (and notifies)
/// when its condition clears. Acknowledging again changes nothing.
#[utoipa::path(post, path = "/v1/alerts/{id}/acknowledge", tag = "alerts", operation_id = "acknowledge_alert",
    params(("id" = String, Path, description = "The episode id")),
    responses(
        (status = 200, description = "The episode as it now stands", body = AlertOut),
        doc::KeyProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn acknowledge(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertOut>, ApiError> {
    caller.require_admin()?;
    let episode = app
        .store
        .acknowledge_episode(&id, caller.key_name(), OffsetDateTime::now_utc())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id:?}")))?;
    Ok(Json(episode.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceIn {
    /// `source:NAME`, `destination:NAME`, `source:*` or `destination:*`.
    pub scope: String,
    /// How long, e.g. `"2h"`; `"0s"` lifts a silence.
    #[serde(rename = "for")]
    pub duration: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SilenceOut {
    pub scope: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub until: OffsetDateTime,
}

/// Silence a scope for a while: its episodes still open and resolve, but no firing or
/// reminder goes out until the silence ends (a resolution whose firing went out still
/// does).
#[utoipa::path(post, path = "/v1/alerts/silences", tag = "alerts", operation_id = "silence_alerts", request_body = SilenceIn,
    responses(
        (status = 200, description = "The silence as set", body = SilenceOut),
        doc::KeyProblems,
        doc::BodyProblems,
        (status = 404, description = "The scope names no configured source or destination", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn silence(
    State(app): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<SilenceIn>,
) -> Result<Json<SilenceOut>, ApiError> {
    caller.require_admin()?;
    let duration =
        parse_duration(&body.duration).ok_or_else(|| invalid("for", "must be a duration such as \"30m\" or \"2h\""))?;
    let known = match body.scope.split_once(':') {
        Some(("source", "*")) | Some(("destination", "*")) => true,
        Some(("source", name)) => app.config.sources.iter().any(|s| s.name.as_str() == name),
        Some(("destination", name)) => app.config.destinations.iter().any(|d| d.name == name),
        _ => return Err(invalid("scope", "must be source:NAME, destination:NAME, source:* or destination:*")),
    };
    if !known {
        return Err(ApiError::not_found(format!("{:?} names no configured source or destination", body.scope)));
    }
    let until = OffsetDateTime::now_utc()
        + time::Duration::try_from(duration)
            .map_err(|_| invalid("for", "must be a duration such as \"30m\" or \"2h\""))?;
    app.store.silence(&body.scope, until, caller.key_name()).await?;
    Ok(Json(SilenceOut { scope: body.scope, until }))
}
