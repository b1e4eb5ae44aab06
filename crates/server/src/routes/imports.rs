//! `/v1/imports`: upload a CSV or XLSX file; it is imported by a background job whose
//! status, progress and per-row report can be read back.

use crate::AppState;
use crate::error::{ApiError, Problem, doc};
use crate::extract::{ApiQuery, Caller, not_found, path_id};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use leadflow_app::import;
use leadflow_core::{ImportId, SourceName};
use leadflow_store::{ImportCounts, ImportJob, ImportStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportOut {
    pub id: ImportId,
    pub source: SourceName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// `queued`, `running`, `done` or `failed`.
    pub status: &'static str,
    /// Rows processed so far, and what became of them.
    pub rows: u64,
    pub created: u64,
    pub merged: u64,
    /// Rows that failed validation; they are in the quarantine.
    pub rejected: u64,
    pub pending: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Where the per-row report is, once the job is done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
}

impl From<ImportJob> for ImportOut {
    fn from(j: ImportJob) -> Self {
        let ImportCounts { rows, created, merged, rejected, pending } = j.counts;
        Self {
            report_url: (j.status == ImportStatus::Done).then(|| format!("/v1/imports/{}/report", j.id)),
            id: j.id,
            source: j.source,
            sheet: j.sheet,
            status: j.status.as_str(),
            rows,
            created,
            merged,
            rejected,
            pending,
            error: j.error,
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The configured source the rows come from.
    source: String,
    /// The worksheet of an XLSX file (default: the first).
    sheet: Option<String>,
}

const ACCEPTED_TYPES: &[&str] = &[
    "text/csv",
    "application/csv",
    "text/plain",
    "text/tab-separated-values",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/octet-stream",
];

/// The uploaded file: a CSV or XLSX body within the import size limit.
pub struct Upload(Bytes);

impl FromRequest<AppState> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Self::Rejection> {
        let mime = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        if !mime.as_deref().is_some_and(|m| ACCEPTED_TYPES.contains(&m)) {
            return Err(ApiError::UnsupportedMediaType("send the file as text/csv or an XLSX spreadsheet type".into()));
        }
        // Read against the import limit rather than the JSON body limit that applies to
        // every other route.
        let limit = app.config.server.import_limit_bytes;
        let too_large = ApiError::PayloadTooLarge { limit };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large);
        }
        let mut body = req.into_body();
        let mut buf = Vec::with_capacity(declared.unwrap_or(0));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ApiError::bad_request("unreadable_body", "the file could not be read"))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(too_large);
                }
                buf.extend_from_slice(&data);
            }
        }
        let bytes = Bytes::from(buf);
        if bytes.is_empty() {
            return Err(ApiError::bad_request("empty_file", "the file is empty"));
        }
        Ok(Self(bytes))
    }
}

/// Upload a file to import; answers at once with the job.
#[utoipa::path(post, path = "/v1/imports", tag = "imports", operation_id = "create_import", params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "The CSV file (an XLSX file goes with its own content type)"),
    responses(
        (status = 202, description = "The job is queued", body = ImportOut),
        doc::KeyProblems,
        (status = 400, description = "The query does not parse (`source` is required), or the file is empty or unreadable", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than the import limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a CSV or spreadsheet content type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No source has that name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ImportQuery>,
    Upload(file): Upload,
) -> Result<Response, ApiError> {
    let source = SourceName::parse(&q.source).ok().filter(|s| app.config.source(s).is_some()).ok_or_else(|| {
        ApiError::Validation(vec![leadflow_core::FieldError::new(
            "source",
            leadflow_core::FieldErrorCode::UnknownSource,
            format!("no source is named {:?}", q.source),
        )])
    })?;
    caller.require_ingest(&source)?;
    let job = import::start(&app, source, q.sheet, file.to_vec()).await?;
    let mut response = (StatusCode::ACCEPTED, Json(ImportOut::from(job.clone()))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/imports/{}", job.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// An import job: status and progress.
#[utoipa::path(get, path = "/v1/imports/{id}", tag = "imports", operation_id = "get_import", params(("id" = String, Path, description = "The import id")),
    responses(
        (status = 200, description = "The job's status and progress", body = ImportOut),
        doc::KeyProblems,
        doc::NotFound,
    ),
    security(("bearer" = [])))]
pub async fn show(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ImportOut>, ApiError> {
    caller.require_read()?;
    let missing = || not_found(&id, "import");
    let id: ImportId = path_id(&id, "import")?;
    Ok(Json(app.store.get_import(id).await?.ok_or_else(missing)?.into()))
}

/// The per-row report of a finished import: `row,external_id,outcome,lead_id,errors`.
#[utoipa::path(get, path = "/v1/imports/{id}/report", tag = "imports", operation_id = "get_import_report", params(("id" = String, Path, description = "The import id")),
    responses(
        (status = 200, description = "The report, one line per row", content_type = "text/csv", body = String),
        doc::KeyProblems,
        (status = 404, description = "No such import, or not finished yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn report(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    caller.require_read()?;
    let missing = || not_found(&id, "finished import");
    let id: ImportId = path_id(&id, "finished import")?;
    let report = app.store.import_report(id).await?.ok_or_else(missing)?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], report).into_response())
}
