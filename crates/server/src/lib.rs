//! The leadflow HTTP server: routes per resource, authentication and bodies as
//! extractors, RFC 9457 errors, request ids, metrics and a generated OpenAPI document.
//! HTTP only: each handler parses and checks the request, calls the use case in
//! `leadflow_app`, and turns the outcome into a response.
//!
//! [`launch`] is the entry point for the binary and for tests: it takes a bound listener
//! and a shutdown signal, so a test can run the real server on `127.0.0.1:0`.
#![forbid(unsafe_code)]

pub mod error;
pub mod extract;
pub mod metrics;
pub mod rate_limit;
pub mod routes;
pub mod ui;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use error::ApiError;
use leadflow_app::App;
use leadflow_app::providers::Providers;
use leadflow_core::config::Config;
use leadflow_store::DynStore;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the handlers share: the application, the web-form rate limit (an HTTP concern:
/// it counts posts per client address), and the key the dashboard's CSRF tokens are
/// derived with.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub limiter: Arc<rate_limit::RateLimiter>,
    pub csrf: Arc<ui::CsrfKey>,
}

/// Handlers read the store and the configuration straight through the state.
impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "leadflow", description = "Capture, clean, deduplicate and hand off B2B leads."),
    modifiers(&BearerAuth),
    // Problem answers are documented through `error::doc`, which only refers to the schema.
    components(schemas(error::Problem)),
    tags((name = "leads", description = "Capture and read leads"), (name = "quarantine", description = "Submissions that failed validation, kept for replay"), (name = "imports", description = "CSV and XLSX files imported by background jobs"), (name = "reviews", description = "Possible duplicates for a person to decide"), (name = "accounts", description = "The companies leads belong to"), (name = "events", description = "Behavioural events that score leads"), (name = "reports", description = "Leads by source, and the funnel"), (name = "sources", description = "Configured sources, checked end to end"), (name = "hooks", description = "Provider webhooks and web forms; authenticated by each provider's signature"), (name = "deliveries", description = "Lead events on their way to destinations, and the dead letters"), (name = "feedback", description = "What the CRMs say became of the leads: status changes and disqualification reasons"), (name = "health", description = "Liveness, readiness, and the health of every source and destination"), (name = "alerts", description = "Alert episodes, acknowledgements and silences"), (name = "privacy", description = "Consent ledger and the suppression list"), (name = "audit", description = "The tamper-evident log of administrative actions"), (name = "retention", description = "What each retention run deleted"), (name = "meta"))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("lf_…").build()),
        );
    }
}

/// The routes and the OpenAPI document, both derived from the same handlers.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::leads::create, routes::leads::list))
        .routes(routes!(routes::leads::batch))
        .routes(routes!(routes::leads::get))
        .routes(routes!(routes::leads::history))
        .routes(routes!(routes::leads::unmerge))
        .routes(routes!(routes::leads::split))
        .routes(routes!(routes::erasure::erase))
        .routes(routes!(routes::privacy::get, routes::privacy::record))
        .routes(routes!(routes::privacy::suppress, routes::privacy::lift))
        .routes(routes!(routes::subject::export))
        .routes(routes!(routes::subject::runs))
        .routes(routes!(routes::imports::create))
        .routes(routes!(routes::imports::show))
        .routes(routes!(routes::imports::report))
        .routes(routes!(routes::reviews::list))
        .routes(routes!(routes::reviews::decide))
        .routes(routes!(routes::events::create))
        .routes(routes!(routes::events::batch))
        .routes(routes!(routes::leads::events))
        .routes(routes!(routes::leads::touchpoints))
        .routes(routes!(routes::stages::transitions, routes::stages::create_transition))
        .routes(routes!(routes::stages::assign))
        .routes(routes!(routes::reports::sources))
        .routes(routes!(routes::reports::funnel))
        .routes(routes!(routes::reports::disqualifications))
        .routes(routes!(routes::feedback::receive))
        .routes(routes!(routes::feedback::list))
        .routes(routes!(routes::accounts::list))
        .routes(routes!(routes::accounts::get, routes::accounts::update))
        .routes(routes!(routes::accounts::leads))
        .routes(routes!(routes::quarantine::list))
        .routes(routes!(routes::quarantine::replay_all))
        .routes(routes!(routes::quarantine::show))
        .routes(routes!(routes::quarantine::replay_one))
        .routes(routes!(routes::hooks::receive, routes::hooks::handshake, routes::hooks::preflight))
        .routes(routes!(routes::hooks::embed_js))
        .routes(routes!(routes::sources::test))
        .routes(routes!(routes::deliveries::list))
        .routes(routes!(routes::deliveries::replay_many))
        .routes(routes!(routes::deliveries::show))
        .routes(routes!(routes::deliveries::replay_one))
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::health::overview))
        .routes(routes!(routes::health::source))
        .routes(routes!(routes::health::pending))
        .routes(routes!(routes::health::destination))
        .routes(routes!(routes::alerts::list))
        .routes(routes!(routes::alerts::silence))
        .routes(routes!(routes::alerts::show))
        .routes(routes!(routes::alerts::acknowledge))
        .routes(routes!(routes::audit::list))
        .routes(routes!(routes::meta::metrics))
        .split_for_parts()
}

/// The OpenAPI document the server serves at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

pub fn router(state: AppState) -> Router {
    let (routes, openapi) = api();
    let openapi = Arc::new(openapi);
    let timeout = state.config.server.request_timeout;
    let x_request_id = HeaderName::from_static("x-request-id");
    routes
        // The dashboard is HTML for people, not part of the API's document.
        .merge(ui::router())
        .route("/openapi.json", axum::routing::get(move || async move { axum::Json(openapi.as_ref().clone()) }))
        .layer(DefaultBodyLimit::max(state.config.server.body_limit_bytes))
        .layer(middleware::from_fn(move |req: Request, next: Next| with_timeout(timeout, req, next)))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(x_request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    // The path only: a query string can hold personal data (?email=).
                    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id, key_id = tracing::field::Empty)
                }))
                .layer(PropagateRequestIdLayer::new(x_request_id))
                .layer(middleware::from_fn(metrics::track))
                .layer(middleware::from_fn(error::finish_problems))
                .layer(CatchPanicLayer::custom(error::panic_response)),
        )
        .with_state(state)
}

async fn with_timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Runs the server on `listener` until `shutdown` resolves, then finishes in-flight
/// requests and deliveries and flushes the store. Destination secrets come from the
/// process environment.
pub async fn launch(
    store: DynStore,
    config: Arc<Config>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let client = if config.destinations.is_empty() {
        None
    } else {
        let client = leadflow_app::deliveries::client(&config, |name| std::env::var(name).ok())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Some(Arc::new(client))
    };
    let providers = Providers::from_env(&config);
    launch_with(App::with_providers(store, config, providers), client, listener, shutdown).await
}

/// [`launch`] with the application (its providers' secrets included) and the delivery
/// client given (tests pass their own). Without a client, nothing is delivered and outbox
/// rows wait.
pub async fn launch_with(
    app: App,
    client: Option<Arc<leadflow_integrations::delivery::Client>>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    metrics::handle();
    let app = app.with_suppression_key(|name| std::env::var(name).ok()).await.map_err(std::io::Error::other)?;
    let workers = leadflow_app::workers::start(&app, client).await;
    let store = app.store.clone();
    let csrf = ui::CsrfKey::generate().map_err(std::io::Error::other)?;
    let router = router(AppState { app, limiter: Arc::default(), csrf: Arc::new(csrf) });
    // The peer address keys the web-form rate limit.
    let router = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
    // The background work stops once the server has stopped taking requests.
    workers.stop().await;
    if let Err(e) = store.close().await {
        tracing::error!(error = %e, "closing the store failed");
    }
    served
}
