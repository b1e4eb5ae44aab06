//! `/v1/hooks/{source}`: provider webhooks and web forms, and the `/embed.js` script.
//!
//! No API key here: each provider is authenticated by its own signature scheme (the
//! source's adapter), web forms by an optional `?token=` and their allowed origins. A
//! `json` source is refused on this path (400 `not_a_webhook_source`): its callers hold an
//! API key and post to `/v1/leads`, where the key's scope is checked.
//!
//! The provider's answer is sent only after its items are durable in the inbox
//! (`leadflow_app::hooks` verifies, reads and stores them).

use crate::AppState;
use crate::error::{ApiError, Problem, doc, hook_error};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use leadflow_app::AppError;
use leadflow_app::hooks::{self, Received, Stored};
use leadflow_core::SourceName;
use leadflow_core::config::{Adapter, SourceConfig, origin_of};
use leadflow_integrations::channels::HookRequest;
use serde::Serialize;
use std::net::SocketAddr;
use time::OffsetDateTime;

/// What was done with a provider's request.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct HookOut {
    /// Items received (leads the request carried).
    pub received: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub created: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub merged: usize,
    /// Kept in the quarantine (failed validation), to be fixed and replayed.
    #[serde(skip_serializing_if = "is_zero")]
    pub quarantined: usize,
    /// Stored, settled later (batch sources, or leads read back from the provider's API).
    #[serde(skip_serializing_if = "is_zero")]
    pub pending: usize,
    /// What people did (a webinar joined, a registration), recorded as events of their
    /// leads.
    #[serde(skip_serializing_if = "is_zero")]
    pub recorded: usize,
    /// Why a notification carried no lead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl From<Stored> for HookOut {
    fn from(s: Stored) -> Self {
        Self {
            received: s.received,
            created: s.created,
            merged: s.merged,
            quarantined: s.quarantined,
            pending: s.pending,
            recorded: s.recorded,
            ignored: None,
        }
    }
}

/// Receives a provider's webhook or a web-form post.
#[utoipa::path(post, path = "/v1/hooks/{source}", tag = "hooks", operation_id = "receive_hook",
    params(("source" = String, Path, description = "A configured source whose adapter is not json")),
    request_body(content = String, description = "The payload exactly as the provider sends it (JSON, form or multipart); an `email` source also takes a raw message (`message/rfc822`)", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored; settled unless the source is batch or the lead must be read from the provider (a provider's URL check answers the challenge instead)", body = HookOut),
        (status = 303, description = "A web form with an allowed retURL is redirected there"),
        (status = 400, description = "Malformed for the adapter (code `hook_malformed`: invalid JSON, a message that is not MIME, an unknown inbound-email post), a `json` source (code `not_a_webhook_source`), or a retURL outside the allowed origins", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Bad or missing signature, token or shared key (an `email` source with a secret refuses unsigned inbound-parse posts), or a stale timestamp", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No source has that name", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the source's limit (`body_limit_bytes`; the server's limit, or 10 MiB for an `email` source)", body = Problem, content_type = "application/problem+json"),
        doc::AddressLimited,
        doc::Unavailable,
    ))]
pub async fn receive(
    State(app): State<AppState>,
    Path(source): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    hook(app, &source, req).await
}

/// Answers a provider's verification handshake (Facebook `hub.challenge`, LinkedIn
/// `challengeCode`).
#[utoipa::path(get, path = "/v1/hooks/{source}", tag = "hooks", operation_id = "hook_handshake",
    params(("source" = String, Path, description = "A configured source")),
    responses(
        (status = 200, description = "The challenge, as the provider expects it", content(
            (String = "text/plain"),
            (Object = "application/json"),
        )),
        (status = 400, description = "A `json` source (code `not_a_webhook_source`), or a malformed handshake", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The verify token does not match", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No source has that name", body = Problem, content_type = "application/problem+json"),
        (status = 405, description = "The source's provider does no handshake", body = Problem, content_type = "application/problem+json"),
        doc::AddressLimited,
        doc::Unavailable,
    ))]
pub async fn handshake(
    State(app): State<AppState>,
    Path(source): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    hook(app, &source, req).await
}

/// CORS preflight for web forms posted by script from an allowed origin.
#[utoipa::path(options, path = "/v1/hooks/{source}", tag = "hooks", operation_id = "hook_preflight",
    params(("source" = String, Path, description = "A web_form source")),
    responses(
        (status = 204, description = "The origin may post"),
        (status = 403, description = "The request's origin is not one of the source's allowed origins", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No source has that name", body = Problem, content_type = "application/problem+json"),
        doc::AddressLimited,
    ))]
pub async fn preflight(
    State(app): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let source = configured(&app, &source)?;
    let Some(origin) = allowed_origin(source, &headers) else {
        return Err(ApiError::Forbidden("this origin may not post to this source".into()));
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    cors(h, origin);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type, accept"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    Ok(response)
}

/// The attribution script for web forms (see the README, "Connecting sources").
#[utoipa::path(get, path = "/embed.js", tag = "hooks", operation_id = "embed_js",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript", body = String), doc::AddressLimited))]
pub async fn embed_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Pages embed it on every view; an hour keeps fixes reaching visitors soon.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        leadflow_integrations::channels::EMBED_JS,
    )
}

fn configured<'a>(app: &'a AppState, raw: &str) -> Result<&'a SourceConfig, ApiError> {
    SourceName::parse(raw)
        .ok()
        .and_then(|name| app.config.source(&name))
        .ok_or_else(|| ApiError::not_found(format!("no source is named {raw:?}")))
}

/// The request's `Origin` when the source allows it.
fn allowed_origin<'h>(source: &SourceConfig, headers: &'h HeaderMap) -> Option<&'h str> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    let normal = origin_of(origin)?;
    source.allowed_origins.contains(&normal).then_some(origin)
}

fn cors(headers: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

async fn hook(app: AppState, raw_source: &str, req: Request) -> Result<Response, ApiError> {
    let source = configured(&app, raw_source)?.clone();
    if !source.adapter.is_provider() {
        return Err(ApiError::bad_request(
            "not_a_webhook_source",
            format!("the source {raw_source:?} takes the standard JSON: POST /v1/leads with an ingest key"),
        ));
    }
    let web_form = source.adapter == Adapter::WebForm;
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if web_form
        && req.method() == Method::POST
        && let Some(ip) = peer
    {
        app.limiter
            .check(&source.name, ip, source.rate_limit_per_minute)
            .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
    }
    let (parts, body) = req.into_parts();
    // An email source takes more than the API's limit (10 MiB by default): a forwarded
    // inquiry can carry a logo or a signature image.
    let limit = source.body_limit(app.config.server.body_limit_bytes);
    let body = read_body(body, &parts.headers, limit).await?;
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let first = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let url = called_url(&headers, &parts.uri);
    let content_type = first("content-type");
    let hook_req = HookRequest {
        method: parts.method.as_str(),
        url: &url,
        query: parts.uri.query().unwrap_or_default(),
        headers: &headers,
        content_type,
        body: &body,
        now: OffsetDateTime::now_utc(),
    };
    // A web form's answer is decided before anything is stored: a retURL elsewhere than
    // the allowed origins would make leadflow an open redirect.
    let web = if web_form && parts.method == Method::POST {
        let form = leadflow_integrations::channels::body::form(&body, content_type).ok();
        let ret_url = form.as_ref().and_then(|f| f.get("retURL")).and_then(|v| v.as_str()).map(str::to_owned);
        if let Some(ret) = &ret_url
            && !origin_of(ret).is_some_and(|o| source.allowed_origins.contains(&o))
        {
            return Err(ApiError::bad_request(
                "return_url_not_allowed",
                "retURL must be on one of the source's allowed_origins",
            ));
        }
        let wants_json = first("accept").is_some_and(|a| a.contains("application/json"));
        let origin = allowed_origin(&source, &parts.headers).map(str::to_owned);
        Some(WebAnswer { ret_url: ret_url.filter(|_| !wants_json), origin })
    } else {
        None
    };

    let received = match hooks::receive(&app, &source, &hook_req).await {
        Ok(received) => received,
        Err(AppError::Provider(e)) => return Err(hook_error(e, &parts.method)),
        Err(e) => return Err(e.into()),
    };
    match received {
        Received::Challenge { status, content_type, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            Ok((status, [(header::CONTENT_TYPE, content_type)], body).into_response())
        }
        Received::Ignored { reason } => {
            Ok(axum::Json(HookOut { ignored: Some(reason), ..HookOut::default() }).into_response())
        }
        // The bot gets what a person gets: nothing tells it that it was caught.
        Received::Spam => Ok(web.map_or_else(
            || axum::Json(HookOut { received: 1, ..HookOut::default() }).into_response(),
            WebAnswer::into_response,
        )),
        Received::Stored(stored) => match web {
            Some(web) => Ok(web.into_response()),
            None => Ok(axum::Json(HookOut::from(stored)).into_response()),
        },
    }
}

/// The answer to a web form, the same whatever became of the post.
struct WebAnswer {
    ret_url: Option<String>,
    origin: Option<String>,
}

impl WebAnswer {
    fn into_response(self) -> Response {
        let mut response = match self.ret_url.as_deref().and_then(|u| HeaderValue::from_str(u).ok()) {
            Some(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
            None => axum::Json(HookOut { received: 1, ..HookOut::default() }).into_response(),
        };
        if let Some(origin) = &self.origin {
            cors(response.headers_mut(), origin);
        }
        response
    }
}

pub(crate) async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    // The only way reading a body fails once it is under way is the limit, or a client
    // that went away (whose answer nobody reads).
    axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::PayloadTooLarge { limit })
}

/// The URL the provider called (and signed, for HubSpot): behind a proxy it is rebuilt
/// from the forwarded scheme and the Host header.
pub(crate) fn called_url(headers: &[(String, String)], uri: &axum::http::Uri) -> String {
    let first = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let scheme = first("x-forwarded-proto").and_then(|p| p.split(',').next()).map(str::trim).unwrap_or("http");
    let host = first("host").unwrap_or_default();
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{scheme}://{host}{path_and_query}")
}
