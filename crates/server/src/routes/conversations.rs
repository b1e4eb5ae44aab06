//! Conversations: chat transcripts kept on the lead as `conversation.message` events.
//! `POST /v1/conversations` takes any chat tool's transcript in one generic shape (write
//! keys, like `POST /v1/events`); `GET /v1/leads/{id}/conversations` reads a lead's
//! conversations back, grouped by the core
//! ([`leadflow_core::engagement::conversation::conversations`]).

use crate::AppState;
use crate::error::{ApiError, doc};
use crate::extract::{Caller, ValidatedJson, path_id};
use crate::routes::leads::{live_lead, source_of};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadflow_core::engagement::conversation::{self, Conversation};
use leadflow_core::{FieldError, FieldErrorCode, LeadId};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// The conversations of a lead are read from its latest this many events.
pub const MAX_READ_EVENTS: usize = 5000;

/// A conversation with one person, in the generic shape any chat tool can post.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // the schema of the body, which is read by the core's parser
pub struct ConversationIn {
    /// Who the conversation was with; one of `email`, `lead_id` and `external_id`. The
    /// answers are applied only with an email.
    email: Option<String>,
    lead_id: Option<LeadId>,
    external_id: Option<String>,
    conversation: ConversationBodyIn,
    /// A chat bot's qualification answers, question → answer (string, number or
    /// boolean; at most 200). Mapped onto fields by the source's `qualification` table,
    /// then by the label table (`"Company size"` → `employee_count`); others stay custom
    /// fields under their question.
    #[schema(value_type = Option<Object>)]
    answers: Option<Value>,
    /// A configured source whose adapter is `json` (or `signed_json`); default `api`.
    source: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ConversationBodyIn {
    /// The chat tool's id for the conversation (a string or an integer), stable across
    /// posts: messages are keyed by it.
    #[schema(value_type = String)]
    id: Value,
    /// `chat` by default; letters, digits, `_`, `-`, `.`.
    channel: Option<String>,
    /// 1 to 1000 messages, in any order.
    messages: Vec<MessageIn>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct MessageIn {
    /// The message's id; without one its index in the list is its key.
    #[schema(value_type = Option<String>)]
    id: Option<Value>,
    /// RFC 3339.
    at: String,
    /// `visitor`, `agent` or `bot`.
    author: String,
    author_name: Option<String>,
    /// Plain text; kept up to 10,000 characters.
    text: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConversationOut {
    pub conversation: String,
    /// Messages recorded by this post.
    pub recorded: usize,
    /// Messages an earlier post recorded already (nothing is recorded twice).
    pub replayed: usize,
    /// Messages waiting for their person to become a lead.
    pub waiting: usize,
    /// Messages not recorded: they name a suppressed person.
    pub dropped: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<LeadId>,
    /// `none`, `skipped` (no email names the person), `created`, `merged`, `replayed`,
    /// `pending`, `quarantined` or `suppressed`.
    pub answers: &'static str,
}

/// Record a conversation: its messages as events of the person, its answers on the lead.
///
/// 200 when the messages found their lead, 202 when they wait for the person to become
/// one. A retry of the same post records nothing twice.
#[utoipa::path(post, path = "/v1/conversations", tag = "events", operation_id = "create_conversation", request_body = ConversationIn,
    responses(
        (status = 200, description = "Recorded on the lead", body = ConversationOut),
        (status = 202, description = "Recorded, waiting for the person to become a lead", body = ConversationOut),
        doc::KeyProblems,
        doc::BodyProblems,
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ValidatedJson(body): ValidatedJson<Value>,
) -> Result<Response, ApiError> {
    caller.require_any_ingest()?;
    let posted = conversation::parse_post(&body, OffsetDateTime::now_utc()).map_err(ApiError::Validation)?;
    let source = source_of(&app, posted.source.as_ref(), "").map_err(|e| ApiError::Validation(vec![e]))?;
    caller.require_ingest(&source)?;
    let config = app
        .config
        .source(&source)
        .ok_or_else(|| ApiError::Internal(format!("source {source} vanished from the configuration")))?;
    if !posted.answers.is_empty() && config.adapter.standardizes() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "source",
            FieldErrorCode::Invalid,
            "answers become standard fields: name a source whose adapter is json",
        )]));
    }
    let id = posted.conversation.clone();
    let recorded = leadflow_app::conversations::record(&app, config, posted).await?;
    if let Some(lead) = recorded.erased {
        return Err(ApiError::erased(lead));
    }
    let status = if recorded.lead_id.is_some() { StatusCode::OK } else { StatusCode::ACCEPTED };
    let out = ConversationOut {
        conversation: id,
        recorded: recorded.recorded,
        replayed: recorded.replayed,
        waiting: recorded.waiting,
        dropped: recorded.dropped,
        lead_id: recorded.lead_id,
        answers: recorded.answers.as_str(),
    };
    Ok((status, Json(out)).into_response())
}

/// The lead's conversations (and those of leads merged into it), newest first, each
/// with its messages oldest first.
#[utoipa::path(get, path = "/v1/leads/{id}/conversations", tag = "events", operation_id = "list_lead_conversations",
    params(("id" = String, Path, description = "The lead id")),
    responses(
        (status = 200, description = "The conversations, newest first", body = Vec<Conversation>),
        doc::KeyProblems,
        doc::NotFound,
        doc::Erased,
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<Conversation>>, ApiError> {
    caller.require_read()?;
    let lead = live_lead(&app, path_id(&id, "lead")?, &id).await?;
    let events = app.store.lead_events(lead.id, MAX_READ_EVENTS).await?;
    Ok(Json(conversation::conversations(&events)))
}
