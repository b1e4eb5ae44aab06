//! Connection hardening over real sockets: the header read timeout, the connection cap,
//! the per-address limit on routes without a key, and who may read `/metrics`.

use crate::{problem, spawn_app_with};
use leadflow_core::config::Config;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// The token the tests' environment holds under `TEST_METRICS_KEY`.
pub const METRICS_KEY: &str = "test-metrics-key";

/// Bounds every wait on the server; reaching it fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(15);

fn config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    edit(&mut config);
    config
}

/// Sends a complete `GET /healthz` on `stream` and reads its answer, leaving the
/// connection open (HTTP/1.1 keep-alive).
async fn healthz_over(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"\"ok\"}") {
        let n = timeout(PATIENCE, stream.read(&mut buf)).await.expect("no answer in time").unwrap();
        assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(answer).unwrap()
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let app = spawn_app_with(config(|c| c.server.header_read_timeout = Duration::from_secs(1))).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    // Headers without the blank line that ends them, then silence.
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = [0u8; 256];
    match timeout(PATIENCE, slow.read(&mut buf)).await.expect("the half-sent request was still open after 15 s") {
        Ok(n) => assert_eq!(n, 0, "closed without an answer, got {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    // A complete request on a connection of its own is answered as ever.
    let mut prompt = TcpStream::connect(app.addr).await.unwrap();
    assert!(healthz_over(&mut prompt).await.starts_with("HTTP/1.1 200"));
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_a_slot_frees() {
    let app = spawn_app_with(config(|c| {
        c.server.max_connections = 2;
        c.server.header_read_timeout = Duration::from_secs(60);
    }))
    .await;
    // Two connections answered once and kept open hold both slots.
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    healthz_over(&mut first).await;
    healthz_over(&mut second).await;

    let third = tokio::spawn({
        let (http, url) = (reqwest::Client::new(), app.url("/healthz"));
        async move { http.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    let mut third = third;
    assert!(
        timeout(Duration::from_millis(500), &mut third).await.is_err(),
        "a third connection was served while two held the only slots"
    );
    drop(first);
    let status = timeout(PATIENCE, third).await.expect("the waiting connection was never served").unwrap().unwrap();
    assert_eq!(status, 200);
    drop(second);
    app.shutdown().await;
}

#[tokio::test]
async fn routes_without_a_key_are_limited_per_address_with_retry_after() {
    let app = spawn_app_with(config(|c| c.server.unauthenticated_rate_per_minute = 3)).await;
    for _ in 0..3 {
        assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    }
    let refused = app.http.get(app.url("/healthz")).send().await.unwrap();
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry_after), "one request comes back every 20 s: {retry_after}");
    assert_eq!(problem(refused, 429).await["code"], "rate_limited");
    // The address's one bucket covers every route without a key, before the route's own
    // checks (no such source here) …
    let hook = app.http.post(app.url("/v1/hooks/nowhere")).body("{}").send().await.unwrap();
    problem(hook, 429).await;
    problem(app.http.get(app.url("/no/such/path")).send().await.unwrap(), 429).await;
    // … and not the routes that take a key.
    assert_eq!(app.get("/v1/leads?email=a@example.com").await.status(), 200);
    let created = app.post("/v1/leads", &json!({"email": "limited@example.com"})).await;
    assert_eq!(created.status(), 201);
}

#[tokio::test]
async fn the_address_limit_can_be_turned_off() {
    let app = spawn_app_with(config(|c| c.server.unauthenticated_rate_per_minute = 0)).await;
    for _ in 0..20 {
        assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn metrics_behind_a_key_need_that_bearer_token() {
    let app = spawn_app_with(config(|c| c.server.metrics_key_env = Some("TEST_METRICS_KEY".into()))).await;
    let anonymous = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    problem(anonymous, 401).await;
    let wrong = app.http.get(app.url("/metrics")).bearer_auth("not-the-key").send().await.unwrap();
    problem(wrong, 401).await;
    // An API key, even an admin one, is not the metrics key.
    problem(app.http.get(app.url("/metrics")).bearer_auth(&app.admin).send().await.unwrap(), 401).await;
    let text = app.http.get(app.url("/metrics")).bearer_auth(METRICS_KEY).send().await.unwrap();
    assert_eq!(text.status(), 200);
    assert!(text.text().await.unwrap().contains("leadflow_http_requests_total"));
}

#[tokio::test]
async fn a_metrics_key_that_is_not_set_stops_the_start() {
    let server = config(|c| c.server.metrics_key_env = Some("TEST_UNSET_METRICS_KEY".into())).server;
    let err = leadflow_server::metrics::MetricsEndpoint::from_config(&server, |_| None).await.unwrap_err();
    assert!(err.to_string().contains("TEST_UNSET_METRICS_KEY is not set"), "{err}");
}

#[tokio::test]
async fn metrics_on_their_own_address_leave_the_api_listener() {
    let app = spawn_app_with(config(|c| c.server.metrics_listen = Some("127.0.0.1:0".parse().unwrap()))).await;
    let metrics = app.metrics_addr.expect("the metrics listener is bound");
    assert_ne!(metrics, app.addr);
    problem(app.http.get(app.url("/metrics")).send().await.unwrap(), 404).await;
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    let text = app.http.get(format!("http://{metrics}/metrics")).send().await.unwrap();
    assert_eq!(text.status(), 200);
    assert!(text.text().await.unwrap().contains("leadflow_http_requests_total"));
    // Only the metrics are there.
    problem(app.http.get(format!("http://{metrics}/healthz")).send().await.unwrap(), 404).await;
    // Both listeners stop with the server.
    app.shutdown().await;
    assert!(TcpStream::connect(metrics).await.is_err(), "the metrics listener outlived the server");
}

#[tokio::test]
async fn control_characters_are_removed_from_a_lead_and_listed() {
    let app = spawn_app_with(Config::default()).await;
    let lead = json!({
        "email": "ctrl@example.com",
        "first_name": "Ann\u{7}a",
        "last_name": "Lo\u{0}ve",
        "company": "\u{202E}Acme\u{202C} Ltd",
        "custom": {"note": "a\u{2066}b"}
    });
    let created = app.post("/v1/leads", &lead).await;
    assert_eq!(created.status(), 201);
    let body: serde_json::Value = created.json().await.unwrap();
    let read: serde_json::Value =
        app.get(&format!("/v1/leads/{}", body["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(read["first_name"], "Anna");
    // NUL goes from what was received itself (PostgreSQL cannot store it): nothing to list.
    assert_eq!((read["last_name"].as_str(), read["raw"]["last_name"].as_str()), (Some("Love"), Some("Love")));
    assert_eq!(read["company"], "Acme Ltd");
    assert_eq!(read["custom"]["note"], "ab");
    let mut flagged: Vec<&str> = read["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["code"] == "control_characters_removed")
        .map(|i| i["field"].as_str().unwrap())
        .collect();
    flagged.sort_unstable();
    assert_eq!(flagged, ["company", "custom.note", "first_name"], "{read}");
}
