//! The accept loop. `axum::serve` gives no hold on a connection's timing, so each
//! connection is served here by hyper's HTTP/1 connection with a header read timeout, and
//! at most `max_connections` are open at once:
//!
//! * A connection that has not sent a request's complete headers within
//!   `header_read_timeout` is closed, and so is one idle that long between requests (hyper
//!   starts the timer whenever it waits for a request head). Half-sent requests cannot
//!   hold sockets open.
//! * Past the cap, the loop stops accepting: new connections wait in the kernel's listen
//!   backlog until an open one closes, rather than being refused. The header read timeout
//!   bounds how long a slow or idle client holds its slot.
//! * On shutdown the listener closes, idle connections close, and requests in flight
//!   finish before [`serve`] returns.
//!
//! The peer address is put in each request as [`ConnectInfo`], as
//! `into_make_service_with_connect_info` would.
//!
//! With TLS ([`crate::tls`]) each connection's handshake runs in its own task, bounded by
//! the header read timeout; a client speaking plain HTTP to the TLS port fails the
//! handshake and is closed without an answer.

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How long a client may take to send its headers, and how many connections are open at
/// once (`[server] header_read_timeout`, `max_connections`).
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl ConnectionLimits {
    pub fn of(server: &leadflow_core::config::ServerConfig) -> Self {
        Self { header_read_timeout: server.header_read_timeout, max_connections: server.max_connections }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the open
/// connections to finish their requests.
pub async fn serve(
    mut listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        // Errors are retried inside (a connection reset before it was accepted is skipped,
        // running out of file descriptors waits a second), as axum::serve does.
        let (stream, peer) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        let service = router.clone().map_request(move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let service = TowerToHyperService::new(service);
        let (watcher, http, tls) = (graceful.watcher(), http.clone(), tls.clone());
        metrics::gauge!("leadflow_http_open_connections").increment(1.0);
        tokio::spawn(async move {
            let served = match tls {
                None => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake not finished within the header read timeout");
                            Ok(())
                        }
                    }
                }
            };
            // Header timeouts, resets and malformed requests end here; none is the server's fault.
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            metrics::gauge!("leadflow_http_open_connections").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
