//! The operator dashboard at `/ui`: server-rendered HTML over the same use cases as the
//! API, outside the OpenAPI document. Templates are minijinja, compiled into the binary
//! and rendered with HTML autoescaping on, so every value from a lead, a payload or a
//! configuration shows as text. Charts are inline SVG drawn here ([`charts`]); the one
//! stylesheet is vendored under `/ui/assets/`. No JavaScript: plain forms, each posting
//! with a CSRF token ([`session`]).
//!
//! A read key sees every page the API lets it read; acting (replays, decisions,
//! acknowledgements) needs an admin key. Dead letters are listed for admin keys only,
//! as `GET /v1/deliveries` is: their last errors and responses may echo personal data.

mod charts;
mod health;
mod leads;
mod reports;
pub mod session;
mod work;

use crate::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use leadflow_store::StoreError;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use session::Session;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

pub use session::CsrfKey;

const CSS: &str = include_str!("../../templates/ui/dashboard.css");

/// The stylesheet's URL carries a hash of its content, so it can be cached for a year and
/// a new build is still fetched at once.
static CSS_VERSION: LazyLock<String> = LazyLock::new(|| hex::encode(&Sha256::digest(CSS.as_bytes())[..6]));

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../templates/ui/", $name)))),*]
    };
}

static TEMPLATES: LazyLock<Result<Environment<'static>, minijinja::Error>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Every template is HTML, whatever its name: escaping is never left to a suffix.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    // Optional fields left out of a serialized value read as empty, not as errors.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    for (name, source) in templates!(
        "base.html",
        "macros.html",
        "login.html",
        "error.html",
        "overview.html",
        "integration.html",
        "deliveries.html",
        "quarantine.html",
        "reviews.html",
        "leads.html",
        "lead.html",
        "alerts.html",
        "reports.html",
    ) {
        env.add_template(name, source)?;
    }
    env.add_filter("when", when);
    env.add_filter("pct", pct);
    env.add_filter("ms", ms);
    env.add_global("css_version", CSS_VERSION.as_str());
    Ok(env)
});

/// An RFC 3339 time, as the serialized values carry it, to the minute: `2026-12-06 12:44`.
fn when(value: Value) -> String {
    let s = value.as_str().unwrap_or_default();
    match s.get(..16) {
        Some(minute) => format!("{} UTC", minute.replacen('T', " ", 1)),
        None => s.to_owned(),
    }
}

/// A fraction as a percentage; nothing for none.
fn pct(value: Value) -> String {
    match f64::try_from(value) {
        Ok(f) => format!("{:.1} %", f * 100.0),
        Err(_) => "–".into(),
    }
}

/// Milliseconds, in the unit that reads best.
fn ms(value: Value) -> String {
    let Ok(n) = u64::try_from(value) else { return "–".into() };
    match n {
        0..1_000 => format!("{n} ms"),
        1_000..60_000 => format!("{:.1} s", n as f64 / 1e3),
        60_000..3_600_000 => format!("{:.1} min", n as f64 / 6e4),
        _ => format!("{:.1} h", n as f64 / 3.6e6),
    }
}

/// Renders a template; a page for a session also gets who is logged in and the CSRF
/// token its forms carry.
fn render(name: &str, ctx: Value) -> Result<Html<String>, UiError> {
    let env = TEMPLATES.as_ref().map_err(|e| UiError::Internal(format!("templates: {e:#}")))?;
    let html =
        env.get_template(name).and_then(|t| t.render(ctx)).map_err(|e| UiError::Internal(format!("{name}: {e:#}")))?;
    Ok(Html(html))
}

/// A page for a logged-in operator; `nav` marks the current section.
fn session_page(session: &Session, nav: &str, name: &str, ctx: Value) -> Result<Html<String>, UiError> {
    let me = minijinja::context! {
        name => session.key.name.clone(),
        admin => session.is_admin(),
    };
    render(name, minijinja::context! { me, csrf => session.csrf.clone(), nav, ..ctx })
}

/// What goes wrong on a page, shown as an HTML page. Store failures are logged and shown
/// generically, as the API's 5xx problems are.
#[derive(Debug)]
pub enum UiError {
    BadRequest(String),
    Forbidden(String),
    NotFound(String),
    Internal(String),
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m),
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "dashboard page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong; the server log has the details.".to_owned())
            }
        };
        let ctx = minijinja::context! { status => status.as_u16(), title => status.canonical_reason(), message };
        match render("error.html", ctx) {
            Ok(html) => (status, html).into_response(),
            // Never the template's own error in a loop: a plain page.
            Err(_) => (
                status,
                [(CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!doctype html><title>Error</title><p>Error</p>",
            )
                .into_response(),
        }
    }
}

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
        ],
        CSS,
    )
        .into_response()
}

/// Pages hold personal data: never cached, never framed, and no script runs even if
/// something slipped through the escaping.
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: &'static str, value: &'static str| {
        h.entry(HeaderName::from_static(name)).or_insert(HeaderValue::from_static(value));
    };
    set(h, "cache-control", "no-store");
    set(
        h,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "same-origin");
    response
}

/// The dashboard's routes, merged beside the API's.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(health::overview))
        .route("/ui/", get(health::overview))
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/sources/{name}", get(health::source))
        .route("/ui/destinations/{name}", get(health::destination))
        .route("/ui/alerts", get(health::alerts))
        .route("/ui/alerts/{id}/acknowledge", post(health::acknowledge))
        .route("/ui/deliveries", get(work::deliveries))
        .route("/ui/deliveries/replay", post(work::replay_deliveries))
        .route("/ui/deliveries/{id}/replay", post(work::replay_delivery))
        .route("/ui/quarantine", get(work::quarantine))
        .route("/ui/quarantine/replay", post(work::replay_quarantine))
        .route("/ui/quarantine/{id}/replay", post(work::replay_quarantined))
        .route("/ui/reviews", get(work::reviews))
        .route("/ui/reviews/{id}", post(work::decide_review))
        .route("/ui/leads", get(leads::list))
        .route("/ui/leads/{id}", get(leads::show))
        .route("/ui/reports", get(reports::show))
        .layer(middleware::from_fn(headers))
        // After the layer: the stylesheet is cached, unlike the pages.
        .route("/ui/assets/dashboard.css", get(stylesheet))
}
