//! Dashboard sessions: an API key presented once on the login form, then kept in the
//! `leadflow_session` cookie (`HttpOnly; Secure; SameSite=Strict; Path=/ui`) and checked
//! on every request exactly as the API's `Caller` checks a bearer token: by its hash,
//! against the active keys. Revoking the key ends the session at the next request.
//!
//! Every form that acts carries a CSRF token: an HMAC of the session token's hash under
//! a key drawn at process start. It is the same for the whole session, needs no storage,
//! and cannot be computed without the key; a restart simply invalidates open forms. A
//! post without the right token, or from a key without the admin scope, is a 403.

use super::UiError;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Form, FromRequest, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use hmac::{Hmac, Mac};
use leadflow_core::audit::{Action, NewEntry};
use leadflow_core::keys::{ApiKey, ApiToken, TokenHash};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;
use std::net::IpAddr;

pub const COOKIE_NAME: &str = "leadflow_session";
const LOGIN: &str = "/ui/login";

/// The per-process key CSRF tokens are derived with.
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(Self(key))
    }

    fn mac(&self, session: &TokenHash) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(b"leadflow-ui-csrf\0");
        mac.update(&session.0);
        mac
    }

    fn token(&self, session: &TokenHash) -> String {
        hex::encode(self.mac(session).finalize().into_bytes())
    }

    /// Compared in constant time.
    fn verify(&self, session: &TokenHash, presented: &str) -> bool {
        hex::decode(presented).is_ok_and(|bytes| self.mac(session).verify_slice(&bytes).is_ok())
    }
}

/// A logged-in operator: the key behind the session cookie, and the CSRF token its forms
/// carry.
pub struct Session {
    pub key: ApiKey,
    pub csrf: String,
    hash: TokenHash,
    /// The request's `x-request-id`, for the audit log.
    request_id: Option<String>,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.key.is_admin()
    }

    /// An audit entry of this operator's action, under this request's id.
    pub fn audit(&self, action: Action, target: impl Into<String>) -> NewEntry {
        NewEntry::new(leadflow_app::audit::key_actor(self.key.id), action, target).request_id(self.request_id.clone())
    }
}

fn session_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE_NAME)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// The active key with this token, if it may at least read and is accepted now from
/// `client`. Read from the store on each page, so a revoked key's session ends at once.
async fn reader_key(
    app: &AppState,
    token: &str,
    client: Option<IpAddr>,
) -> Result<Option<(ApiKey, TokenHash)>, UiError> {
    let hash = ApiToken::presented(token).hash();
    let key = app.store.key_by_hash(hash).await?;
    let now = time::OffsetDateTime::now_utc();
    Ok(key.filter(|k| k.can_read() && k.admits(now, client).is_ok()).map(|k| (k, hash)))
}

/// Without a valid session, a page answers with a redirect to the login form.
impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = session_token(parts) else { return Err(Redirect::to(LOGIN).into_response()) };
        match reader_key(app, &token, crate::extract::ClientAddr::of(parts).0).await {
            Ok(Some((key, hash))) => {
                tracing::Span::current().record("key_id", tracing::field::display(key.id));
                let csrf = app.csrf.token(&hash);
                Ok(Self { key, csrf, hash, request_id: crate::extract::request_id(parts) })
            }
            Ok(None) => Err(Redirect::to(LOGIN).into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A posted form that acts: a valid session, the session's CSRF token in the `csrf`
/// field, and the admin scope, checked in that order before `T` reads the other fields
/// (so a form without its token is a 403 whatever else it lacks).
pub struct Act<T> {
    pub session: Session,
    pub form: T,
}

/// A form with nothing to read but its CSRF token.
#[derive(Deserialize)]
pub struct Nothing {}

/// The session, and the posted form's body once its CSRF token is checked.
async fn checked_post(req: Request, app: &AppState) -> Result<(Session, Request), Response> {
    let (mut parts, body) = req.into_parts();
    let session = Session::from_request_parts(&mut parts, app).await?;
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), app)
        .await
        .map_err(|e| UiError::BadRequest(e.body_text()).into_response())?;
    let token = form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
    if !token.is_some_and(|t| app.csrf.verify(&session.hash, &t)) {
        let why = "The form has expired or did not come from this dashboard. Reload the page and try again.";
        return Err(UiError::Forbidden(why.into()).into_response());
    }
    Ok((session, Request::from_parts(parts, Body::from(bytes))))
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Act<T> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Self::Rejection> {
        let (session, req) = checked_post(req, app).await?;
        if !session.is_admin() {
            let why = "This key may look but not act: acting needs a key with the admin scope.";
            return Err(UiError::Forbidden(why.into()).into_response());
        }
        // The token is one more field, which `T` ignores.
        let Form(form) =
            Form::<T>::from_request(req, app).await.map_err(|e| UiError::BadRequest(e.body_text()).into_response())?;
        Ok(Self { session, form })
    }
}

fn session_cookie(value: String, clear: bool) -> HeaderValue {
    let mut c =
        Cookie::build((COOKIE_NAME, value)).http_only(true).secure(true).same_site(SameSite::Strict).path("/ui");
    if clear {
        c = c.max_age(cookie::time::Duration::ZERO);
    }
    // Built from a checked token (hex) or nothing: always a valid header value.
    HeaderValue::from_str(&c.build().to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub async fn login_form() -> Result<Html<String>, UiError> {
    super::render("login.html", minijinja::context! {})
}

#[derive(Deserialize)]
pub struct LoginIn {
    #[serde(default)]
    token: String,
}

/// A key that is unknown, revoked or without the read scope leaves the operator on the
/// login form (401); a good one sets the session cookie and opens the overview.
pub async fn login(
    State(app): State<AppState>,
    crate::extract::ClientAddr(client): crate::extract::ClientAddr,
    headers: HeaderMap,
    Form(body): Form<LoginIn>,
) -> Result<Response, UiError> {
    let token = body.token.trim();
    // Tokens are `lf_` and hex: anything else cannot be a key, and would not fit a cookie.
    let plausible = !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if plausible { reader_key(&app, token, client).await? } else { None };
    if let Some((key, _)) = key {
        let actor = leadflow_app::audit::key_actor(key.id);
        let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let entry = NewEntry::new(actor.clone(), Action::UiLogin, actor).request_id(request_id);
        crate::routes::audit::note(&app, [entry]).await;
        let mut response = Redirect::to("/ui").into_response();
        response.headers_mut().insert(SET_COOKIE, session_cookie(token.to_owned(), false));
        return Ok(response);
    }
    let html =
        super::render("login.html", minijinja::context! { error => "That key is unknown, revoked, or may not read." })?;
    Ok((StatusCode::UNAUTHORIZED, html).into_response())
}

/// Logging out needs the CSRF token but not the admin scope.
pub async fn logout(State(app): State<AppState>, req: Request) -> Response {
    if let Err(refused) = checked_post(req, &app).await {
        return refused;
    }
    let mut response = Redirect::to(LOGIN).into_response();
    response.headers_mut().insert(SET_COOKIE, session_cookie(String::new(), true));
    response
}
