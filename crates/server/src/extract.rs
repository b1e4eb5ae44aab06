//! Extractors: authentication, JSON bodies and headers are parsed here, once, so handlers
//! receive checked values and their signatures tell the story.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use leadflow_core::capture::IdempotencyKey;
use leadflow_core::keys::{ApiKey, ApiToken};
use leadflow_core::{FieldError, FieldErrorCode, SourceName};
use serde_json::{Map, Value};

/// The authenticated caller: an active API key.
#[derive(Clone, Debug)]
pub struct Caller(pub ApiKey);

impl Caller {
    pub fn key_name(&self) -> &str {
        &self.0.name
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.is_admin() { Ok(()) } else { Err(ApiError::Forbidden("this key lacks the admin scope".into())) }
    }

    pub fn require_read(&self) -> Result<(), ApiError> {
        if self.0.can_read() { Ok(()) } else { Err(ApiError::Forbidden("this key lacks the read scope".into())) }
    }

    pub fn require_feedback(&self) -> Result<(), ApiError> {
        if self.0.can_send_feedback() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this key lacks the feedback scope".into()))
        }
    }

    pub fn require_any_ingest(&self) -> Result<(), ApiError> {
        if self.0.can_ingest_somewhere() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this key lacks an ingest scope".into()))
        }
    }

    pub fn require_ingest(&self, source: &SourceName) -> Result<(), ApiError> {
        if self.0.can_ingest(source) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("this key may not submit to the source {source:?}")))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let key = app.store.key_by_hash(ApiToken::presented(token).hash()).await?.ok_or(ApiError::Unauthorized)?;
        tracing::Span::current().record("key_id", tracing::field::display(key.id));
        Ok(Self(key))
    }
}

/// The `Idempotency-Key` header, if sent.
pub struct IdempotencyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get("idempotency-key") {
            None => Ok(Self(None)),
            Some(v) => {
                v.to_str().ok().and_then(|s| IdempotencyKey::parse(s).ok()).map(|k| Self(Some(k))).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    )
                })
            }
        }
    }
}

/// A JSON object body. Checks, in order: the content type (415), the size (413), the JSON
/// syntax (400) and that the top level is an object (422).
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::UnsupportedMediaType("send the body as application/json".into()));
        }
        object(&read_body(req, app).await?).map(Self)
    }
}

/// A JSON object body that may be left out: no body (or only whitespace) is `None`;
/// anything else is checked as [`JsonObject`] checks it, the size first.
pub struct OptionalJsonObject(pub Option<Map<String, Value>>);

impl FromRequest<AppState> for OptionalJsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Self::Rejection> {
        let json = is_json(&req);
        let bytes = read_body(req, app).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType("send the body as application/json".into()));
        }
        object(&bytes).map(|map| Self(Some(map)))
    }
}

/// A JSON body read into `T`, the same type the OpenAPI document shows. The body is
/// checked as [`JsonObject`] checks it (415, 413, 400, 422 for a non-object); a field that
/// does not fit `T` is a 422 naming the field, like any other invalid field.
pub struct ValidatedJson<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for ValidatedJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Self::Rejection> {
        let JsonObject(map) = JsonObject::from_request(req, app).await?;
        typed(map).map(Self)
    }
}

/// Reads an object into `T`; serde stops at the first misfit, which becomes the one field
/// error.
fn typed<T: serde::de::DeserializeOwned>(map: Map<String, Value>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let parent = if path == "." { String::new() } else { path };
        let message = e.inner().to_string();
        // serde names a missing or unknown field in the message, not in the path.
        let named = message.split('`').nth(1).unwrap_or_default();
        let (code, field) = if message.starts_with("missing field") {
            (FieldErrorCode::Required, join(&parent, named))
        } else if message.starts_with("unknown field") {
            (FieldErrorCode::UnknownField, join(&parent, named))
        } else if message.starts_with("invalid type") {
            (FieldErrorCode::WrongType, parent)
        } else {
            (FieldErrorCode::Invalid, parent)
        };
        ApiError::Validation(vec![FieldError::new(field, code, message)])
    })
}

fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() { field.to_owned() } else { format!("{parent}.{field}") }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The body, within the configured size limit.
async fn read_body(req: Request, app: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, app).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit: app.config.server.body_limit_bytes }
        } else {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        }
    })
}

fn object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::Validation(vec![leadflow_core::FieldError::new(
            "",
            leadflow_core::FieldErrorCode::WrongType,
            "the body must be a JSON object",
        )])),
        Err(e) => Err(ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))),
    }
}

/// Query parameters; a query that does not parse is a 400 problem, not the framework's
/// plain-text answer.
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(q)| Self(q))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// An id from the path; one that cannot be an id names nothing, so it is a 404 like an
/// unknown one.
pub fn path_id<T: std::str::FromStr>(raw: &str, resource: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| not_found(raw, resource))
}

pub fn not_found(raw: &str, resource: &str) -> ApiError {
    ApiError::not_found(format!("no {resource} has the id {raw:?}"))
}
