//! A webhook destination for the tests: a local server that checks the Standard Webhooks
//! signature as a real receiver would and keeps each body it accepted.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The signing secret the receiver checks; give it to the delivery client.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver was sent, once its signature checked out.
#[derive(Default)]
pub struct Seen(pub Mutex<Vec<Value>>);

impl Seen {
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn all(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (up to 30 s, as the other delivery tests) until `n` bodies arrived.
    pub async fn wait_for(&self, n: usize) {
        let start = Instant::now();
        while self.len() < n {
            assert!(start.elapsed() < Duration::from_secs(30), "waited for {n} deliveries");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let secret = leadflow_integrations::delivery::SigningSecret::parse(SECRET).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = leadflow_integrations::delivery::verify(
        &secret,
        &header("webhook-id"),
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &body,
        now,
        Duration::from_secs(300),
    );
    if signed.is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    seen.0.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    StatusCode::NO_CONTENT
}

/// Starts a receiver at `http://ADDR/hook`.
pub async fn start() -> (Arc<Seen>, SocketAddr) {
    let seen = Arc::new(Seen::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    (seen, addr)
}
