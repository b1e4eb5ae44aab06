//! `/v1/changes`: the change feed, for analytics and warehouses: every lead created,
//! updated, merged, unmerged and erased, every stage change, event and delivery, in
//! commit order, read page by page from a cursor.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use leadflow_core::feed::{Cursor, FeedChange};
use serde::{Deserialize, Serialize};

/// The most changes one page holds.
pub const MAX_LIMIT: usize = 10_000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The `next` of the page before, or a change's `cursor`; omitted or `0`: from the
    /// first change.
    after: Option<String>,
    /// At most this many changes (default 1000, at most 10000).
    limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChangesOut {
    /// In commit order.
    pub changes: Vec<FeedChange>,
    /// Where to read on from: pass it as `after`. The same cursor when nothing followed.
    pub next: String,
}

/// Changes after a cursor, in commit order.
///
/// A reader keeps `next` and asks again with it: it sees every change once, in order,
/// across restarts and instances. An empty page means it is at the head; ask again later.
/// Entries name ids and states, not the person: read the lead for its fields.
#[utoipa::path(get, path = "/v1/changes", tag = "changes", operation_id = "list_changes", params(ChangesQuery),
    responses(
        (status = 200, description = "A page of changes and the cursor to read on from", body = ChangesOut),
        doc::KeyProblems,
        (status = 400, description = "`after` is not a cursor (`invalid_query`), or not one this deployment gave out (`unknown_cursor`); `limit` out of range", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> Result<Json<ChangesOut>, ApiError> {
    caller.require_read()?;
    let after = match q.after.as_deref() {
        None | Some("") => Cursor::default(),
        Some(text) => Cursor::parse(text).ok_or_else(|| {
            ApiError::bad_request("invalid_query", "after must be a cursor from this feed: numbers separated by dots")
        })?,
    };
    let limit = q.limit.unwrap_or(1000);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let page = app.store.changes(&after, limit).await?;
    Ok(Json(ChangesOut { changes: page.changes, next: page.next.to_string() }))
}
