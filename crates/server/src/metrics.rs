//! Prometheus metrics: the recorder, its text at `/metrics`, and the HTTP request counts
//! and latencies. The use cases count their own outcomes through the `metrics` facade
//! (`leadflow_app`). Names follow `leadflow_<stage>_<what>_total|_seconds`; labels are
//! bounded (route templates, status codes, configured source names, fixed outcomes).
//!
//! Who may read `/metrics` and where: `[server] metrics_key_env` names the variable that
//! holds a bearer token the route then requires (compared in constant time), and
//! `[server] metrics_listen` moves the route to a listener of its own, off the API's.

use crate::error::ApiError;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide recorder (metrics are global; several servers in one test process
/// share it).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
        })
        .as_ref()
}

pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// Counts requests and their latency per route template and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("leadflow_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("leadflow_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The bearer token `/metrics` requires. Kept as its digest, so comparing takes the same
/// time whatever the length of what is offered; `Debug` never prints it.
#[derive(Clone)]
pub struct MetricsKey([u8; 32]);

impl MetricsKey {
    pub fn new(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    fn admits(&self, headers: &HeaderMap) -> bool {
        let offered = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        offered.is_some_and(|token| bool::from(Sha256::digest(token.as_bytes()).ct_eq(&self.0)))
    }
}

impl fmt::Debug for MetricsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsKey(***)")
    }
}

/// `[server] metrics_listen` and `metrics_key_env` resolved at start-up: the listener
/// bound and the token read from the environment.
#[derive(Debug, Default)]
pub struct MetricsEndpoint {
    pub(crate) listener: Option<TcpListener>,
    pub(crate) key: Option<MetricsKey>,
}

impl MetricsEndpoint {
    /// Binds `metrics_listen` and reads the variable `metrics_key_env` names through `env`
    /// (the process environment in production). A named variable that is not set is an
    /// error: serving the metrics open when a key was asked for would be worse than not
    /// starting.
    pub async fn from_config(
        server: &leadflow_core::config::ServerConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> std::io::Result<Self> {
        let key = match &server.metrics_key_env {
            Some(name) => {
                let token = env(name).filter(|t| !t.trim().is_empty()).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("[server] metrics_key_env: the environment variable {name} is not set"),
                    )
                })?;
                Some(MetricsKey::new(token.trim()))
            }
            None => None,
        };
        let listener =
            match server.metrics_listen {
                Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot listen on {addr} for /metrics: {e}"))
                })?),
                None => None,
            };
        Ok(Self { listener, key })
    }

    /// Where `/metrics` is served when it has a listener of its own.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// Whether a request may read the metrics on the listener it came in on.
#[derive(Clone, Debug, Default)]
pub struct MetricsAccess {
    pub(crate) key: Option<Arc<MetricsKey>>,
    /// False on the API's listener when the metrics have a listener of their own.
    pub(crate) here: bool,
}

impl MetricsAccess {
    pub(crate) fn admit(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if !self.here {
            return Err(ApiError::not_found("the metrics are served on another address"));
        }
        match &self.key {
            Some(key) if !key.admits(headers) => Err(ApiError::Unauthorized),
            _ => Ok(()),
        }
    }
}
