//! The leadflow HTTP server: routes per resource, authentication and bodies as
//! extractors, RFC 9457 errors, request ids, metrics and a generated OpenAPI document.
//! HTTP only: each handler parses and checks the request, calls the use case in
//! `leadflow_app`, and turns the outcome into a response.
//!
//! [`launch`] is the entry point for the binary and for tests: it takes a bound listener
//! and a shutdown signal, so a test can run the real server on `127.0.0.1:0`. [`serve`]
//! holds the connections to their limits; the routes that take no API key are held to a
//! rate per client address here, in [`router`].
#![forbid(unsafe_code)]

pub mod error;
pub mod extract;
pub mod keys;
pub mod metrics;
pub mod rate_limit;
pub mod routes;
pub mod serve;
pub mod tls;
pub mod ui;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use error::ApiError;
use leadflow_app::App;
use leadflow_app::providers::Providers;
use leadflow_core::config::Config;
use leadflow_store::DynStore;
use metrics::{MetricsAccess, MetricsEndpoint};
use rate_limit::AddressLimiter;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};
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
/// it counts posts per client address), the key the dashboard's CSRF tokens are derived
/// with, and who may read `/metrics` on this listener.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    /// The API keys requests present, cached, checked and held to their rates.
    pub keys: Arc<keys::Keys>,
    pub limiter: Arc<rate_limit::RateLimiter>,
    pub csrf: Arc<ui::CsrfKey>,
    pub metrics: MetricsAccess,
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
    tags((name = "leads", description = "Capture and read leads"), (name = "quarantine", description = "Submissions that failed validation, kept for replay"), (name = "imports", description = "CSV and XLSX files imported by background jobs"), (name = "reviews", description = "Possible duplicates for a person to decide"), (name = "accounts", description = "The companies leads belong to"), (name = "events", description = "Behavioural events that score leads"), (name = "reports", description = "Leads by source, and the funnel"), (name = "sources", description = "Configured sources, checked end to end"), (name = "hooks", description = "Provider webhooks and web forms; authenticated by each provider's signature"), (name = "deliveries", description = "Lead events on their way to destinations, and the dead letters"), (name = "feedback", description = "What the CRMs say became of the leads: status changes and disqualification reasons"), (name = "health", description = "Liveness, readiness, and the health of every source and destination"), (name = "alerts", description = "Alert episodes, acknowledgements and silences"), (name = "privacy", description = "Consent ledger and the suppression list"), (name = "audit", description = "The tamper-evident log of administrative actions"), (name = "changes", description = "The change feed: every change in commit order, for analytics and warehouses"), (name = "retention", description = "What each retention run deleted"), (name = "meta"))
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
        .routes(routes!(routes::conversations::create))
        .routes(routes!(routes::conversations::list))
        .routes(routes!(routes::leads::touchpoints))
        .routes(routes!(routes::stages::transitions, routes::stages::create_transition))
        .routes(routes!(routes::stages::assign))
        .routes(routes!(routes::reports::sources))
        .routes(routes!(routes::reports::funnel))
        .routes(routes!(routes::reports::disqualifications))
        .routes(routes!(routes::reports::attendance))
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
        .routes(routes!(routes::deliveries::backfill))
        .routes(routes!(routes::deliveries::show))
        .routes(routes!(routes::deliveries::replay_one))
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::health::overview))
        .routes(routes!(routes::health::source))
        .routes(routes!(routes::health::pending))
        .routes(routes!(routes::health::destination))
        .routes(routes!(routes::changes::list))
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
    let open = Arc::new(unauthenticated_routes(&openapi));
    let openapi = Arc::new(openapi);
    let timeout = state.config.server.request_timeout;
    let addresses = Arc::new(AddressLimiter::new(state.config.server.unauthenticated_rate_per_minute));
    let routes = routes
        // The dashboard is HTML for people, not part of the API's document.
        .merge(ui::router())
        .route("/openapi.json", axum::routing::get(move || async move { axum::Json(openapi.as_ref().clone()) }))
        .layer(DefaultBodyLimit::max(state.config.server.body_limit_bytes))
        .layer(middleware::from_fn(move |req: Request, next: Next| with_timeout(timeout, req, next)))
        // Inside the common layers, so a 429 has its request id and is counted; before
        // the handler, so a refused request costs no body read and no store query.
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            limit_unauthenticated(open.clone(), addresses.clone(), req, next)
        }));
    with_common_layers(routes).with_state(state)
}

/// Request ids, tracing, metrics, problem bodies and panics: around every route, on the
/// API's listener and the metrics' own.
fn with_common_layers<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    let x_request_id = HeaderName::from_static("x-request-id");
    routes.layer(
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
}

/// The routes that take no API key, by path template: every operation of the document
/// whose security does not require the bearer key (provider webhooks and forms, health,
/// metrics, CRM feedback), the document itself and the dashboard's login form, where a
/// key is typed in.
fn unauthenticated_routes(doc: &utoipa::openapi::OpenApi) -> HashMap<String, Vec<Method>> {
    let mut open: HashMap<String, Vec<Method>> = HashMap::new();
    let doc = serde_json::to_value(doc).unwrap_or_default();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let keyed =
                op["security"].as_array().is_some_and(|s| !s.is_empty() && s.iter().all(|r| r.get("bearer").is_some()));
            if let (false, Ok(method)) = (keyed, method.to_ascii_uppercase().parse::<Method>()) {
                open.entry(path.clone()).or_default().push(method);
            }
        }
    }
    open.insert("/openapi.json".into(), vec![Method::GET]);
    open.insert("/ui/login".into(), vec![Method::GET, Method::POST]);
    open
}

/// Holds the routes that take no API key, and paths that match no route, to
/// `[server] unauthenticated_rate_per_minute` per client address.
async fn limit_unauthenticated(
    open: Arc<HashMap<String, Vec<Method>>>,
    limiter: Arc<AddressLimiter>,
    req: Request,
    next: Next,
) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let counted = route.is_none_or(|route| open.get(route).is_some_and(|methods| methods.contains(req.method())));
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let (true, Some(ip)) = (counted && !limiter.is_off(), peer)
        && let Err(retry_after) = limiter.check(ip, Instant::now())
    {
        return ApiError::TooManyRequests { retry_after }.into_response();
    }
    next.run(req).await
}

async fn with_timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Runs the server on `listener` until `shutdown` resolves, then finishes in-flight
/// requests and deliveries and flushes the store. Destination secrets, and the metrics
/// key, come from the process environment; `[server] metrics_listen` is bound here.
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
    let metrics = MetricsEndpoint::from_config(&config.server, |name| std::env::var(name).ok()).await?;
    if let Some(addr) = metrics.local_addr() {
        tracing::info!(%addr, "metrics listening");
    }
    launch_with(App::with_providers(store, config, providers), client, listener, metrics, shutdown).await
}

/// [`launch`] with the application (its providers' secrets included), the delivery
/// client and where the metrics are served given (tests pass their own). Without a
/// client, nothing is delivered and outbox rows wait.
pub async fn launch_with(
    app: App,
    client: Option<Arc<leadflow_integrations::delivery::Client>>,
    listener: TcpListener,
    metrics: MetricsEndpoint,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    metrics::handle();
    let app = app.with_suppression_key(|name| std::env::var(name).ok()).await.map_err(std::io::Error::other)?;
    let workers = leadflow_app::workers::start(&app, client).await;
    let store = app.store.clone();
    let csrf = ui::CsrfKey::generate().map_err(std::io::Error::other)?;
    let limits = serve::ConnectionLimits::of(&app.config.server);
    let access = MetricsAccess { key: metrics.key.map(Arc::new), here: metrics.listener.is_none() };
    let keys = Arc::new(keys::Keys::new(app.config.server.key_cache_ttl));
    let state = AppState { app, keys, limiter: Arc::default(), csrf: Arc::new(csrf), metrics: access.clone() };
    // The metrics' own listener stops once the API's has.
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_server = metrics.listener.map(|listener| {
        let state = AppState { metrics: MetricsAccess { here: true, ..access }, ..state.clone() };
        let router = with_common_layers(Router::new().route("/metrics", axum::routing::get(routes::meta::metrics)))
            .with_state(state);
        tokio::spawn(serve::serve(listener, router, limits, None, async move {
            let _ = metrics_stopped.await;
        }))
    });
    let (tls, watching) = match (&state.config.server.tls_cert, &state.config.server.tls_key) {
        (Some(cert), Some(key)) => {
            let certificates = tls::Certificates::load(cert, key)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let acceptor =
                certificates.acceptor().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            (Some(acceptor), Some(certificates.watch()))
        }
        _ => (None, None),
    };
    serve::serve(listener, router(state), limits, tls, shutdown).await;
    if let Some(watching) = watching {
        watching.abort();
    }
    let _ = stop_metrics.send(());
    if let Some(server) = metrics_server
        && let Err(e) = server.await
    {
        tracing::error!(error = %e, "the metrics listener failed");
    }
    // The background work stops once the server has stopped taking requests.
    workers.stop().await;
    if let Err(e) = store.close().await {
        tracing::error!(error = %e, "closing the store failed");
    }
    Ok(())
}
