//! Errors on the request path, and how they become RFC 9457 problem documents.
//!
//! Policy: every handler returns `Result<_, ApiError>`; nothing else reaches the client.
//! Each variant has a stable snake_case `code` clients can match on. A 5xx body is
//! generic; its detail goes to the log with the request id. The request id is added to
//! every problem body by [`finish_problems`], which sees the request.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use leadflow_core::FieldError;
use leadflow_store::StoreError;
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The lead was erased at the person's request: 410 Gone, code `erased`.
    #[error("{0}")]
    Erased(String),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the submission has invalid fields")]
    Validation(Vec<FieldError>),
    /// The lifecycle contract refuses the move; `allowed` lists where the lead may go.
    #[error("{detail}")]
    IllegalTransition { code: &'static str, detail: String, allowed: Vec<String> },
    /// Well-formed but refused by a business rule (e.g. a disqualification without its
    /// reason).
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    #[error("the request took too long")]
    Timeout,
    /// A provider request refused by its adapter (bad signature, stale, malformed, …).
    #[error("{detail}")]
    Hook { status: StatusCode, code: &'static str, detail: String },
    #[error("too many requests; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("the service is not ready")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest { code, detail: detail.into() }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound(detail.into())
    }

    pub fn erased(lead: leadflow_core::LeadId) -> Self {
        Self::Erased(format!("lead {lead} was erased at the person's request; only its tombstone is kept"))
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::IllegalTransition { .. } => StatusCode::CONFLICT,
            Self::Erased(_) => StatusCode::GONE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Hook { status, .. } => *status,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } => code,
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Erased(_) => "erased",
            Self::IllegalTransition { code, .. } => code,
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::Unprocessable { code, .. } => code,
            Self::Hook { code, .. } => code,
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Timeout => "timeout",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Closed => Self::Unavailable(e.to_string()),
            StoreError::Conflict(detail) => Self::Conflict(detail),
            StoreError::Erased(id) => Self::erased(id),
            StoreError::UnknownCursor(detail) => Self::bad_request("unknown_cursor", detail),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<leadflow_app::AppError> for ApiError {
    fn from(e: leadflow_app::AppError) -> Self {
        match e {
            leadflow_app::AppError::Store(e) => e.into(),
            leadflow_app::AppError::Invalid(errors) => Self::Validation(errors),
            leadflow_app::AppError::Provider(e) => hook_error(e, &axum::http::Method::POST),
        }
    }
}

/// A provider's request refused by its adapter; an unsupported request is 405 on a
/// method other than POST (a handshake the provider does not do).
pub fn hook_error(e: leadflow_integrations::channels::HookError, method: &axum::http::Method) -> ApiError {
    use leadflow_integrations::channels::HookError;
    let status = match &e {
        HookError::Unauthorized(_) | HookError::Stale(_) => StatusCode::UNAUTHORIZED,
        HookError::Malformed(_) | HookError::Missing { .. } => StatusCode::BAD_REQUEST,
        HookError::Unsupported(_) if method != axum::http::Method::POST => StatusCode::METHOD_NOT_ALLOWED,
        HookError::Unsupported(_) => StatusCode::BAD_REQUEST,
    };
    ApiError::Hook { status, code: e.code(), detail: e.to_string() }
}

/// An RFC 9457 problem document.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `about:blank`: the HTTP status says what kind of problem this is, `code` refines it.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A stable, machine-readable code, e.g. `validation_failed`.
    pub code: &'static str,
    /// The `x-request-id` of the request, for support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Every field error, for `validation_failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The stages a lead may move to instead, for `illegal_transition`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(detail) | Self::Unavailable(detail) = &self {
            tracing::error!(code = self.code(), detail = %detail, "request failed");
        }
        // Only API keys use the Bearer scheme; providers authenticate by signature.
        let bearer = matches!(self, Self::Unauthorized);
        let retry_after = match &self {
            Self::TooManyRequests { retry_after } => Some(*retry_after),
            _ => None,
        };
        // 5xx variants display a generic sentence; their detail stays in the log.
        let problem = Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: Some(self.to_string()),
            code: self.code(),
            request_id: None,
            allowed: match &self {
                Self::IllegalTransition { allowed, .. } => allowed.clone(),
                _ => Vec::new(),
            },
            errors: match self {
                Self::Validation(errors) => errors,
                _ => Vec::new(),
            },
        };
        let mut response = problem_response(&problem);
        if bearer {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(problem);
        response
    }
}

fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))], body).into_response()
}

/// Adds the request id to problem bodies, and turns the framework's own plain-text errors
/// (unknown route, wrong method) into problem documents too.
pub async fn finish_problems(request: Request, next: Next) -> Response {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut response = next.run(request).await;
    let problem = match response.extensions_mut().remove::<Problem>() {
        Some(p) => Some(p),
        None if is_bare_error(&response) => {
            let status = response.status();
            Some(Problem {
                kind: "about:blank",
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail: None,
                code: match status {
                    StatusCode::NOT_FOUND => "not_found",
                    StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
                    _ => "error",
                },
                request_id: None,
                errors: Vec::new(),
                allowed: Vec::new(),
            })
        }
        None => None,
    };
    match problem {
        Some(mut problem) => {
            problem.request_id = request_id;
            let mut fresh = problem_response(&problem);
            for (name, value) in response.headers() {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    fresh.headers_mut().insert(name.clone(), value.clone());
                }
            }
            fresh
        }
        None => response,
    }
}

fn is_bare_error(response: &Response) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error())
        && response.headers().get(header::CONTENT_TYPE).is_none_or(|ct| ct.as_bytes().starts_with(b"text/plain"))
}

/// A panic in a handler becomes a generic 500 problem; the detail goes to the log.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::Internal(format!("handler panicked: {detail}")).into_response()
}

/// The problem answers handlers document: each type is one family of statuses, listed in
/// a handler's `responses(...)` beside its own answers, so a status is described once and
/// no handler forgets the ones its extractors give.
pub mod doc {
    use super::PROBLEM_JSON;
    use std::collections::BTreeMap;
    use utoipa::IntoResponses;
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::Ref;
    use utoipa::openapi::{ContentBuilder, Object, RefOr, Response, ResponseBuilder, Type};

    fn problems(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
        list.iter()
            .map(|(status, description)| {
                let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
                let response = ResponseBuilder::new().description(*description).content(PROBLEM_JSON, content).build();
                (status.to_string(), RefOr::T(response))
            })
            .collect()
    }

    /// A route behind an API key: no key or an unknown, revoked or expired one (401), a key
    /// without the scope or off its addresses (403), a key over its rate (429), and the
    /// store out of reach or a request over its time (503).
    pub struct KeyProblems;

    impl IntoResponses for KeyProblems {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            let mut responses = problems(&[
                (401, "Missing, unknown, revoked or expired API key (code `unauthorized`)"),
                (
                    403,
                    "The key lacks the scope this route needs, or is not accepted from the client's address \
                     (code `forbidden`)",
                ),
                (503, "The store is out of reach, or the request took too long"),
            ]);
            responses.insert(
                "429".to_owned(),
                RefOr::T(too_many(
                    "The key is over its `rate_limit_per_minute` (code `rate_limited`)",
                    "Seconds until the key is accepted again",
                )),
            );
            responses
        }
    }

    /// A 429 problem with its `Retry-After` header.
    fn too_many(description: &str, retry: &str) -> Response {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
        let retry_after =
            HeaderBuilder::new().schema(Some(Object::with_type(Type::Integer))).description(Some(retry)).build();
        ResponseBuilder::new()
            .description(description)
            .content(PROBLEM_JSON, content)
            .header("Retry-After", retry_after)
            .build()
    }

    /// A route that takes no API key: a client address over `[server]
    /// unauthenticated_rate_per_minute` is answered 429 with `Retry-After`.
    pub struct AddressLimited;

    impl IntoResponses for AddressLimited {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            let response = too_many(
                "Too many requests from this address: over `[server] unauthenticated_rate_per_minute`, or, for a web \
                 form, the source's `rate_limit_per_minute` (code `rate_limited`)",
                "Seconds until a request from this address is accepted again",
            );
            BTreeMap::from([("429".to_owned(), RefOr::T(response))])
        }
    }

    /// A route without an API key still answers 503 when the store is out of reach.
    pub struct Unavailable;

    impl IntoResponses for Unavailable {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[(503, "The store is out of reach, or the request took too long")])
        }
    }

    /// A JSON body: unreadable or not JSON (400), over the body limit (413), another
    /// content type (415), not an object or with invalid fields (422, `errors` lists them).
    pub struct BodyProblems;

    impl IntoResponses for BodyProblems {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[
                (400, "The body is not valid JSON, or a header is invalid (e.g. `Idempotency-Key`)"),
                (413, "The body is larger than the configured limit (code `payload_too_large`)"),
                (415, "The body is not `application/json` (code `unsupported_media_type`)"),
                (422, "The body is not an object, or has invalid fields (code `validation_failed`, see `errors`)"),
            ])
        }
    }

    /// Query parameters that do not parse.
    pub struct QueryProblems;

    impl IntoResponses for QueryProblems {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[(400, "A query parameter does not parse (code `invalid_query`)")])
        }
    }

    /// The id in the path names nothing (an id that cannot be one included).
    pub struct NotFound;

    impl IntoResponses for NotFound {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[(404, "Nothing has that id (code `not_found`)")])
        }
    }

    /// A route that names a lead answers 410 for an erased one.
    pub struct Erased;

    impl IntoResponses for Erased {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[(410, "The lead was erased at the person's request (code `erased`)")])
        }
    }
}
