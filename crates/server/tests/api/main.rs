//! Integration tests: the real server on 127.0.0.1:0 over real HTTP, against a fresh
//! SQLite file per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod attendance;
mod audit;
mod bad_input;
mod capture;
mod changes;
mod channels;
mod conversations;
mod delivery;
mod encryption;
mod engagement;
mod erasure;
mod feedback;
mod hardening;
mod hooks;
mod imports;
mod keys;
mod operations;
mod privacy;
mod receiver;
mod residency;
mod routing;
mod service;
mod subject;
mod tls;
mod ui;

use leadflow_core::config::Config;
use leadflow_core::keys::{ApiKey, ApiToken, Scope};
use leadflow_core::{KeyId, SourceName};
use leadflow_store::DynStore;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The environment the test servers read their sources' secrets from.
pub const TEST_ENV: &[(&str, &str)] = &[
    ("TEST_SECRET", "test-signing-secret"),
    ("TEST_VERIFY_TOKEN", "test-verify-token"),
    ("TEST_API_TOKEN", "test-api-token"),
    ("TEST_ALERT_SECRET", operations::ALERT_SECRET),
    ("TEST_METRICS_KEY", hardening::METRICS_KEY),
];

pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `[server] metrics_listen` gives it an address.
    pub metrics_addr: Option<SocketAddr>,
    pub http: reqwest::Client,
    pub store: DynStore,
    /// A key with every scope.
    pub admin: String,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Config::default()).await
}

pub async fn spawn_app_with(config: Config) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    spawn_on(store, config, dir).await
}

/// A store in `dir`, for a test to fill before [`spawn_on`] serves it (the server then
/// settles under its own configuration's rules).
pub async fn open_store(dir: &tempfile::TempDir) -> DynStore {
    leadflow_store::open(&format!("sqlite://{}", dir.path().join("leadflow.db").display()), Default::default())
        .await
        .unwrap()
}

pub async fn spawn_on(store: DynStore, config: Config, dir: tempfile::TempDir) -> TestApp {
    spawn_on_with(store, config, None, dir).await
}

pub async fn spawn_on_with(
    store: DynStore,
    config: Config,
    client: Option<Arc<leadflow_integrations::delivery::Client>>,
    dir: tempfile::TempDir,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let env = |var: &str| TEST_ENV.iter().find(|(k, _)| *k == var).map(|(_, v)| (*v).to_owned());
    let providers = leadflow_app::providers::Providers::from_lookup(&config, &env);
    let metrics = leadflow_server::metrics::MetricsEndpoint::from_config(&config.server, env).await.unwrap();
    let metrics_addr = metrics.local_addr();
    // The suppression key is read before serving, as `launch_with` would: a test that
    // closes the store at once must not race the server's start.
    let app = leadflow_app::App::with_providers(store, Arc::new(config), providers)
        .with_suppression_key(|_| None)
        .await
        .unwrap();
    // The application's handle, which settles under the test's configuration.
    let store = app.store.clone();
    let server = tokio::spawn(leadflow_server::launch_with(app, client, listener, metrics, async {
        let _ = stopped.await;
    }));
    let mut app = TestApp {
        addr,
        metrics_addr,
        http: leadflow_integrations::delivery::http_client().build().unwrap(),
        store,
        admin: String::new(),
        dir,
        stop: Some(stop),
        server: Some(server),
    };
    // Named apart, so a server restarted on the same store gets a key of its own.
    app.admin = app.key(&format!("admin-{}", KeyId::new()), &["admin"]).await;
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Creates a key with these scopes and returns its token.
    pub async fn key(&self, name: &str, scopes: &[&str]) -> String {
        let token = ApiToken::generate().unwrap();
        let scopes = scopes.iter().map(|s| s.parse::<Scope>().unwrap()).collect();
        let key = ApiKey::new(name, &token, scopes, time::OffsetDateTime::now_utc());
        self.store.create_key(key, token.hash()).await.unwrap();
        token.reveal().to_owned()
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(&self.admin).json(body).send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(&self.admin).send().await.unwrap()
    }

    /// Runs the resolver until its queue is empty. The server's own resolver may be in
    /// the middle of a batch: SQLite's one writer runs that batch before this one, so
    /// when this returns, everything queued so far is resolved.
    pub async fn resolved(&self) {
        while self.store.resolve_queued(256, time::OffsetDateTime::now_utc()).await.unwrap().taken > 0 {}
        assert_eq!(self.store.resolve_backlog().await.unwrap(), 0);
    }

    pub async fn lead_count(&self) -> u64 {
        self.store.count_leads().await.unwrap()
    }

    /// Stops the server the way SIGTERM does and waits until it has flushed.
    pub async fn shutdown(mut self) -> (DynStore, tempfile::TempDir) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        (self.store.clone(), self.dir)
    }
}

/// Reads a problem document and checks the RFC 9457 essentials.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let request_id = response.headers().get("x-request-id").unwrap().to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(body["request_id"], request_id.as_str(), "the problem names the request");
    assert!(body["title"].is_string() && body["code"].is_string());
    body
}

pub fn source(name: &str) -> SourceName {
    SourceName::parse(name).unwrap()
}
