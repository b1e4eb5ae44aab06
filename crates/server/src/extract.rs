//! Extractors: authentication, JSON bodies and headers are parsed here, once, so handlers
//! receive checked values and their signatures tell the story.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::header;
use axum::http::request::Parts;
use leadflow_core::audit::{Action, NewEntry};
use leadflow_core::capture::IdempotencyKey;
use leadflow_core::keys::{ApiKey, ApiToken};
use leadflow_core::{FieldError, FieldErrorCode, SourceName};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// The authenticated caller: an active API key, and the request's `x-request-id` (which
/// the server sets on every request that came without one) for the audit log.
#[derive(Clone, Debug)]
pub struct Caller(pub ApiKey, Option<String>);

impl Caller {
    pub fn key_name(&self) -> &str {
        &self.0.name
    }

    /// An audit entry of this caller's action, under this request's id.
    pub fn audit(&self, action: Action, target: impl Into<String>) -> NewEntry {
        NewEntry::new(leadflow_app::audit::key_actor(self.0.id), action, target).request_id(self.1.clone())
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
        let key = app.keys.admit(&app.store, ApiToken::presented(token).hash(), ClientAddr::of(parts).0).await?;
        tracing::Span::current().record("key_id", tracing::field::display(key.id));
        Ok(Self(key, request_id(parts)))
    }
}

/// The client's address as the connection gives it (`None` when the server was not
/// started with peer addresses, e.g. a router called in-process).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl ClientAddr {
    pub fn of(parts: &Parts) -> Self {
        Self(parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts))
    }
}

/// The request's `x-request-id`.
pub fn request_id(parts: &Parts) -> Option<String> {
    parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
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

/// A JSON body read into `T`, the type the OpenAPI document shows. Checks, in order: the
/// content type (415), the size (413), the JSON syntax (400) and that the top level is an
/// object (422); then serde reads the object straight into `T`, with no intermediate
/// `Value`, so the capture path parses each body once.
///
/// A type whose every field error is listed at once declares its fields as [`Sent`], so
/// that no value makes serde fail, and judges them in a `check` method the handler calls
/// once the caller is authorized (read as [`Strict`] when unknown keys are refused). Any
/// other type is typed outright: the first field that does not fit it is a 422 naming
/// the field.
pub struct ValidatedJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ValidatedJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(unsupported_media_type());
        }
        typed(&read_body(req, app).await?).map(Self)
    }
}

/// A body that may be left out: no body (or only whitespace) is `None`; anything else is
/// checked as [`ValidatedJson`] checks it, the size first.
impl<T: DeserializeOwned> OptionalFromRequest<AppState> for ValidatedJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Option<Self>, Self::Rejection> {
        let json = is_json(&req);
        let bytes = read_body(req, app).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if !json {
            return Err(unsupported_media_type());
        }
        typed(&bytes).map(|t| Some(Self(t)))
    }
}

/// A body field as sent: absent, or the JSON value given (`null` included). No value makes
/// serde fail on it, so a body type can read all its fields and list every error at once.
/// Declare it `#[serde(default)]`, with its documented type in `#[schema(value_type = …)]`.
#[derive(Default)]
pub struct Sent(Option<Value>);

impl<'de> Deserialize<'de> for Sent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(|v| Self(Some(v)))
    }
}

impl From<Option<Value>> for Sent {
    fn from(given: Option<Value>) -> Self {
        Self(given)
    }
}

impl Sent {
    /// The value given, `null` included; `None` when the field was left out.
    pub fn given(&self) -> Option<&Value> {
        self.0.as_ref()
    }

    /// The value given, unless it is `null`.
    pub fn value(&self) -> Option<&Value> {
        self.given().filter(|v| !v.is_null())
    }

    pub fn into_given(self) -> Option<Value> {
        self.0
    }
}

/// A body of type `T` with the keys `T` does not declare, kept so that the body's check can
/// refuse each by name: `deny_unknown_fields` would stop at the first, and a field of `T`
/// holding them would show in the OpenAPI document.
#[derive(Deserialize)]
pub struct Strict<T> {
    #[serde(flatten)]
    pub body: T,
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// One item of a batch body read as `T` on its own, so that a bad item is refused without
/// failing the batch. `at` names the item in errors (`events[3]`); `not_an_object` is what
/// is said when it is not an object.
pub fn batch_item<T: DeserializeOwned>(item: Value, at: &str, not_an_object: &str) -> Result<T, FieldError> {
    if !item.is_object() {
        return Err(FieldError::new(at, FieldErrorCode::WrongType, not_an_object));
    }
    // Only a body type that is not all `Sent` fields can fail here.
    serde_json::from_value(item).map_err(|e| FieldError::new(at, FieldErrorCode::Invalid, e.to_string()))
}

/// Reads a body into `T`: a JSON object, or the problem it is.
fn typed<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde reads a struct from an array too, so only an object takes the direct way.
    let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if object && let Ok(t) = serde_json::from_slice(bytes) {
        return Ok(t);
    }
    // Anything else is read again through a `Value`, which tells the problem as the client
    // should hear it: not JSON (400) before a misfit (422), whichever comes first in the
    // body, and a misfit as a type error where serde_json reading bytes would call it a
    // syntax error. A key sent twice also ends here, and the last one is kept.
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => from_object(map),
        Ok(_) => Err(ApiError::Validation(vec![FieldError::new(
            "",
            FieldErrorCode::WrongType,
            "the body must be a JSON object",
        )])),
        Err(e) => Err(ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))),
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::UnsupportedMediaType("send the body as application/json".into())
}

/// Reads an object into `T`; serde stops at the first misfit, which becomes the one field
/// error.
fn from_object<T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, ApiError> {
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

/// Query parameters; a query that does not parse is a 400 problem, not the framework's
/// plain-text answer.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
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

/// A JSON value read as a body of type `T`, the way [`ValidatedJson`] reads it.
#[cfg(test)]
pub(crate) fn read_body_as<T: DeserializeOwned>(body: Value) -> T {
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    match typed(&bytes) {
        Ok(t) => t,
        Err(e) => panic!("{body} was refused: {e:?}"),
    }
}

/// The field errors a body was refused with, as (field, code).
#[cfg(test)]
pub(crate) fn field_errors(refusal: ApiError) -> Vec<(String, FieldErrorCode)> {
    match refusal {
        ApiError::Validation(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
        other => panic!("not a field error: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Choice {
        Merge,
        Distinct,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Typed {
        n: u8,
        choice: Option<Choice>,
    }

    /// The status and the first field error (or problem code) a body is refused with.
    fn refusal(body: &str) -> (u16, String) {
        match typed::<Typed>(body.as_bytes()) {
            Ok(t) => panic!("{body} was read as {t:?}"),
            Err(ApiError::Validation(errors)) => {
                let code = serde_json::to_value(errors[0].code).unwrap_or_default();
                (422, format!("{}: {}", errors[0].field, code.as_str().unwrap_or_default()))
            }
            Err(ApiError::BadRequest { code, .. }) => (400, code.to_owned()),
            Err(other) => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn an_object_is_read_into_its_type() {
        let read: Typed = typed(b" {\"n\": 7, \"choice\": \"merge\", \"other\": [1]} ").unwrap();
        assert_eq!(read, Typed { n: 7, choice: Some(Choice::Merge) });
    }

    #[test]
    fn a_body_that_is_not_json_is_400_whatever_misfits_before_the_error() {
        assert_eq!(refusal("{\"n\": \"seven\", \"choice\": }"), (400, "malformed_json".into()));
        assert_eq!(refusal("{\"n\": 7} trailing"), (400, "malformed_json".into()));
        assert_eq!(refusal(""), (400, "malformed_json".into()));
        assert_eq!(refusal("[1, "), (400, "malformed_json".into()));
    }

    #[test]
    fn json_that_is_not_an_object_is_422_even_where_serde_would_read_a_struct_from_it() {
        assert_eq!(refusal("[7, null]"), (422, ": wrong_type".into()));
        assert_eq!(refusal("\"n\""), (422, ": wrong_type".into()));
    }

    #[test]
    fn a_misfit_names_its_field_and_says_what_is_wrong() {
        assert_eq!(refusal("{\"n\": \"seven\"}"), (422, "n: wrong_type".into()));
        assert_eq!(refusal("{\"n\": 300}"), (422, "n: invalid".into()));
        assert_eq!(refusal("{}"), (422, "n: required".into()));
        // serde_json reading bytes calls this a syntax error; the client hears a type error.
        assert_eq!(refusal("{\"n\": 7, \"choice\": 2}"), (422, "choice: wrong_type".into()));
        assert_eq!(refusal("{\"n\": 7, \"choice\": \"maybe\"}"), (422, "choice: invalid".into()));
    }

    #[test]
    fn a_key_sent_twice_keeps_the_last_value() {
        let read: Typed = typed(b"{\"n\": 1, \"n\": 2}").unwrap();
        assert_eq!(read.n, 2);
    }

    #[derive(Deserialize)]
    struct Fields {
        #[serde(default)]
        given: Sent,
        #[serde(default)]
        null: Sent,
        #[serde(default)]
        absent: Sent,
    }

    #[test]
    fn sent_fields_never_fail_and_tell_null_from_absent_while_strict_keeps_the_other_keys() {
        let read: Strict<Fields> =
            typed(b"{\"given\": [1, \"x\"], \"null\": null, \"b\": 2, \"a\": {\"c\": 3}}").unwrap();
        assert_eq!(read.body.given.value(), Some(&json!([1, "x"])));
        assert_eq!((read.body.null.given(), read.body.null.value()), (Some(&Value::Null), None));
        assert!(read.body.absent.given().is_none());
        assert_eq!(Value::Object(read.unknown), json!({"a": {"c": 3}, "b": 2}));
    }

    #[test]
    fn a_batch_item_that_is_not_an_object_is_refused_on_its_own() {
        let e = batch_item::<Strict<Fields>>(json!("x"), "events[3]", "must be an object").err().unwrap();
        assert_eq!((e.field.as_str(), e.code), ("events[3]", FieldErrorCode::WrongType));
        let item = batch_item::<Strict<Fields>>(json!({"given": 1, "other": 2}), "events[4]", "").ok().unwrap();
        assert_eq!((item.body.given.value(), item.unknown.len()), (Some(&json!(1)), 1));
    }
}
