//! `/v1/audit`: the audit log of administrative actions, newest first, for admin keys.
//! Handlers that act record their entry with [`note`] once the action succeeded.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use leadflow_app::App;
use leadflow_core::audit::{Entry, NewEntry};
use leadflow_store::AuditFilter;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const MAX_PAGE: usize = 500;

/// Records an action that already succeeded. The action is committed: a failure to record
/// it is logged (with ids only) rather than turned into an error the caller would take
/// for the action's.
pub async fn note(app: &App, entries: impl IntoIterator<Item = NewEntry>) {
    let entries: Vec<NewEntry> = entries.into_iter().collect();
    let actions: Vec<String> = entries.iter().map(|e| format!("{} {}", e.action, e.target)).collect();
    if let Err(e) = leadflow_app::audit::record_all(app, entries).await {
        tracing::error!(error = %e, ?actions, "the action succeeded but its audit entry was not written");
    }
}

/// One administrative action.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEntryOut {
    /// Its place in the chain, from 1; the cursor for `before`.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// `key:<key id>`, `cli` or `system`.
    pub actor: String,
    /// e.g. `lead.erased`, `key.created`, `deliveries.replayed`.
    pub action: String,
    /// What was acted on: a lead, review, delivery or key id, a destination, `config`.
    pub target: String,
    /// The `x-request-id` of the request that acted, if it came over HTTP.
    pub request_id: Option<String>,
    /// Ids, counts and names of configured things; never personal data.
    #[schema(value_type = Object)]
    pub detail: Value,
    /// SHA-256 (hex) of the entry before; 64 zeros for entry 1.
    pub prev_hash: String,
    /// SHA-256 (hex) of this entry, its `prev_hash` included.
    pub hash: String,
}

impl From<Entry> for AuditEntryOut {
    fn from(e: Entry) -> Self {
        Self {
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            request_id: e.request_id,
            detail: e.detail,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPageOut {
    pub entries: Vec<AuditEntryOut>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next: Option<u64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this actor's entries (`key:<key id>`, `cli`, `system`).
    actor: Option<String>,
    /// Only this action (e.g. `lead.erased`).
    action: Option<String>,
    /// Only entries about this target (e.g. a lead id).
    target: Option<String>,
    /// At or after this time (RFC 3339).
    since: Option<String>,
    /// Before this time (RFC 3339).
    until: Option<String>,
    /// Entries older than this seq: the previous page's `next`.
    before: Option<u64>,
    /// Page size, 1 to 500; default 100.
    limit: Option<usize>,
    /// With `[[regions]]`, whose chain to read (each region numbers its own entries);
    /// default: the region of the lead named by `target`, else the default region.
    region: Option<String>,
}

fn time_param(value: Option<&str>, name: &str) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .map(|s| OffsetDateTime::parse(s, &Rfc3339))
        .transpose()
        .map_err(|_| ApiError::bad_request("invalid_query", format!("{name} must be an RFC 3339 time")))
}

/// The audit log, newest first, optionally filtered.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", operation_id = "list_audit", params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries, newest first", body = AuditPageOut),
        doc::KeyProblems,
        (status = 400, description = "A query parameter does not parse, a time is not RFC 3339, `limit` is outside 1 to 500, or `region` names no configured region (code `invalid_query`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPageOut>, ApiError> {
    caller.require_admin()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to {MAX_PAGE}")));
    }
    if let Some(region) = &q.region
        && !app.config.regions.is_empty()
        && app.config.regions.list().iter().all(|r| &r.name != region)
    {
        return Err(ApiError::bad_request("invalid_query", format!("no region is named {region:?}")));
    }
    let filter = AuditFilter {
        region: q.region,
        since: time_param(q.since.as_deref(), "since")?,
        until: time_param(q.until.as_deref(), "until")?,
        actor: q.actor,
        action: q.action,
        target: q.target,
        before: q.before,
        limit,
    };
    let entries = app.store.list_audit(filter).await?;
    let next = (entries.len() == limit).then(|| entries.last().map(|e| e.seq)).flatten();
    Ok(Json(AuditPageOut { entries: entries.into_iter().map(AuditEntryOut::from).collect(), next }))
}
