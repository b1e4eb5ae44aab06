//! The outbox against real HTTP destinations on 127.0.0.1: a flaky one (500s, hangs past
//! the client timeout, 429 with Retry-After on about 30% of calls) and a broken one.

use crate::{TestApp, spawn_on_with};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use leadflow_core::config::Config;
use leadflow_integrations::delivery::SigningSecret;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What a receiver saw: every call it accepted, as (webhook-id, lead id, event type).
#[derive(Default)]
struct Receiver {
    calls: AtomicUsize,
    accepted: Mutex<Vec<(String, String, String)>>,
    /// Fails every call while set.
    broken: AtomicBool,
    flaky: bool,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let n = r.calls.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let id = header("webhook-id");
    let secret = SigningSecret::parse(SECRET).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = leadflow_integrations::delivery::verify(
        &secret,
        &id,
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &body,
        now,
        Duration::from_secs(300),
    );
    if signed.is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if r.broken.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    let seen = (id, event["data"]["id"].as_str().unwrap().to_owned(), event["type"].as_str().unwrap().to_owned());
    if r.flaky {
        match n % 10 {
            1 => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            4 => return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response(),
            7 => {
                // Processed, but the answer comes after the client gave up: the retry is
                // a duplicate with the same webhook-id.
                r.accepted.lock().unwrap().push(seen);
                tokio::time::sleep(Duration::from_secs(2)).await;
                return StatusCode::OK.into_response();
            }
            _ => {}
        }
    }
    r.accepted.lock().unwrap().push(seen);
    StatusCode::NO_CONTENT.into_response()
}

async fn start_receiver(r: Arc<Receiver>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(r);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn config(flaky: SocketAddr, broken: SocketAddr) -> Config {
    leadflow_core::config::parse(&format!(
        r#"
[delivery]
timeout = "500ms"
concurrency = 32

[[destinations]]
name = "flaky"
type = "webhook"
url = "http://{flaky}/hook"
secret_env = "FLAKY_SECRET"
events = ["created"]
retry = ["0s", "20ms", "50ms", "100ms", "100ms", "100ms", "100ms", "100ms"]
rate_limit = {{ per_second = 1000.0, burst = 1000 }}
circuit_breaker = {{ failure_threshold = 1000, cool_down = "100ms" }}

[[destinations]]
name = "broken"
type = "webhook"
url = "http://{broken}/hook"
secret_env = "BROKEN_SECRET"
events = ["created"]
retry = ["0s", "10ms", "10ms"]
rate_limit = {{ per_second = 1000.0, burst = 1000 }}
circuit_breaker = {{ failure_threshold = 1000, cool_down = "100ms" }}
"#
    ))
    .unwrap()
}

async fn spawn_with_destinations(config: Config) -> TestApp {
    let client = leadflow_app::deliveries::client(&config, |_| Some(SECRET.to_owned())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    spawn_on_with(store, config, Some(Arc::new(client)), dir).await
}

async fn wait_for(what: &str, deadline: Duration, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn count(app: &TestApp, status: &str, destination: &str) -> usize {
    let page: Value = app
        .get(&format!("/v1/deliveries?status={status}&destination={destination}&limit=1000"))
        .await
        .json()
        .await
        .unwrap();
    page.as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_a_flaky_destination_and_dead_letters_replay() {
    let flaky = Arc::new(Receiver { flaky: true, ..Receiver::default() });
    let broken = Arc::new(Receiver { broken: AtomicBool::new(true), ..Receiver::default() });
    let app =
        spawn_with_destinations(config(start_receiver(flaky.clone()).await, start_receiver(broken.clone()).await))
            .await;
    let leads = 60;
    let mut ids = HashSet::new();
    for i in 0..leads {
        let created: Value =
            app.post("/v1/leads", &json!({"email": format!("lead{i}@example.com")})).await.json().await.unwrap();
        ids.insert(created["lead"]["id"].as_str().or(created["id"].as_str()).unwrap().to_owned());
    }
    assert_eq!(ids.len(), leads);

    // The flaky destination: every delivery ends delivered or, rarely, with its schedule
    // spent; the broken one: every delivery ends in the dead letters.
    wait_for("the deliveries to settle", Duration::from_secs(60), async || {
        count(&app, "pending", "flaky").await == 0 && count(&app, "dead", "broken").await == leads
    })
    .await;
    let spent = count(&app, "dead", "flaky").await;
    if spent > 0 {
        let replayed: Value =
            app.post("/v1/deliveries/replay", &json!({"destination": "flaky"})).await.json().await.unwrap();
        assert_eq!(replayed["replayed"], spent);
        wait_for("the replayed flaky deliveries", Duration::from_secs(60), async || {
            count(&app, "pending", "flaky").await == 0 && count(&app, "dead", "flaky").await == 0
        })
        .await;
    }
    assert!(flaky.calls.load(Ordering::SeqCst) > leads, "some calls failed and were retried");

    // Nothing lost; duplicates only as repeats of one webhook-id.
    let accepted = flaky.accepted.lock().unwrap().clone();
    let mut by_id: HashMap<&str, (&str, &str)> = HashMap::new();
    for (id, lead, kind) in &accepted {
        assert_eq!(kind, "lead.created");
        let first = by_id.entry(id).or_insert((lead, kind));
        assert_eq!(*first, (lead.as_str(), kind.as_str()), "a repeated webhook-id carries the same event");
    }
    let delivered_leads: HashSet<&str> = by_id.values().map(|(lead, _)| *lead).collect();
    assert_eq!(by_id.len(), leads, "one webhook-id per event");
    assert_eq!(delivered_leads, ids.iter().map(String::as_str).collect());

    // The broken destination: dead letters with their tries, delivered after replay.
    let dead: Value = app.get("/v1/deliveries?status=dead&destination=broken").await.json().await.unwrap();
    let first = dead[0]["id"].as_str().unwrap();
    let detail: Value = app.get(&format!("/v1/deliveries/{first}")).await.json().await.unwrap();
    assert_eq!(detail["status"], "dead");
    let tries = detail["attempts_made"].as_array().unwrap();
    assert_eq!(tries.len(), 3, "the whole schedule: {detail}");
    assert!(tries.iter().all(|t| t["status"] == 503));
    assert_eq!(detail["last_status"], 503);
    assert!(!detail["last_error"].as_str().unwrap().is_empty());

    broken.broken.store(false, Ordering::SeqCst);
    let one: Value = app.post(&format!("/v1/deliveries/{first}/replay"), &json!({})).await.json().await.unwrap();
    assert_eq!(one["status"], "pending");
    let replayed: Value =
        app.post("/v1/deliveries/replay", &json!({"destination": "broken"})).await.json().await.unwrap();
    assert_eq!(replayed["replayed"], leads - 1);
    wait_for("the replayed dead letters", Duration::from_secs(30), async || {
        count(&app, "delivered", "broken").await == leads
    })
    .await;
    let received: HashSet<String> = broken.accepted.lock().unwrap().iter().map(|(_, lead, _)| lead.clone()).collect();
    assert_eq!(received, ids);
    app.shutdown().await;
}

#[tokio::test]
async fn deliveries_need_an_admin_key_and_answer_problems() {
    let app = crate::spawn_app().await;
    let reader = app.key("reader", &["read"]).await;
    let denied = app.http.get(app.url("/v1/deliveries")).bearer_auth(&reader).send().await.unwrap();
    crate::problem(denied, 403).await;
    crate::problem(app.get("/v1/deliveries/dlv_missing").await, 404).await;
    crate::problem(app.get("/v1/deliveries?status=lost").await, 400).await;
    crate::problem(app.post("/v1/deliveries/replay", &json!({"from": "yesterday"})).await, 400).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_sends_what_came_before_to_a_destination_added_later() {
    let warehouse = Arc::new(Receiver::default());
    let addr = start_receiver(warehouse.clone()).await;
    let config = leadflow_core::config::parse(&format!(
        r#"
[[destinations]]
name = "warehouse"
type = "webhook"
url = "http://{addr}/hook"
secret_env = "WAREHOUSE_SECRET"
events = ["erased"]

[[destinations]]
name = "sales-channel"
type = "slack"
url_env = "SLACK_URL"
events = ["erased"]
"#
    ))
    .unwrap();
    let env = |name: &str| Some(if name == "SLACK_URL" { "http://127.0.0.1:9/slack" } else { SECRET }.to_owned());
    let client = leadflow_app::deliveries::client(&config, env).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    let app = spawn_on_with(store, config, Some(Arc::new(client)), dir).await;
    let mut leads = Vec::new();
    for email in ["ada@acme.com", "grace@navy.mil"] {
        let r = app.post("/v1/leads", &json!({ "email": email })).await;
        leads.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    let r = app.post("/v1/deliveries/backfill", &json!({"destination": "warehouse"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"queued": 2}));
    wait_for("the backfill to arrive", Duration::from_secs(20), async || warehouse.accepted.lock().unwrap().len() >= 2)
        .await;
    let mut got: Vec<(String, String)> =
        warehouse.accepted.lock().unwrap().iter().map(|(_, lead, kind)| (lead.clone(), kind.clone())).collect();
    got.sort();
    leads.sort();
    assert_eq!(got, leads.iter().map(|l| (l.clone(), "lead.backfilled".to_owned())).collect::<Vec<_>>());
    let again = app.post("/v1/deliveries/backfill", &json!({"destination": "warehouse"})).await;
    assert_eq!(again.json::<Value>().await.unwrap(), json!({"queued": 0}), "no lead changed since");
    let resend = app.post("/v1/deliveries/backfill", &json!({"destination": "warehouse", "resend": true})).await;
    assert_eq!(resend.json::<Value>().await.unwrap(), json!({"queued": 2}), "a resend queues every lead anew");

    let later = time::OffsetDateTime::now_utc() + Duration::from_secs(3600);
    let from = later.format(&time::format_description::well_known::Rfc3339).unwrap();
    let none = app.post("/v1/deliveries/backfill", &json!({"destination": "warehouse", "from": from})).await;
    assert_eq!(none.json::<Value>().await.unwrap(), json!({"queued": 0}), "nothing created in the range");
    for (body, status) in [
        (json!({"destination": "nowhere"}), 422),
        (json!({"destination": "sales-channel"}), 422),
        (json!({"destination": "warehouse", "to": "tomorrow"}), 400),
        (json!({}), 422),
    ] {
        crate::problem(app.post("/v1/deliveries/backfill", &body).await, status).await;
    }
    let reader = app.key("reader", &["read"]).await;
    let denied = app
        .http
        .post(app.url("/v1/deliveries/backfill"))
        .bearer_auth(&reader)
        .json(&json!({"destination": "warehouse"}))
        .send()
        .await
        .unwrap();
    crate::problem(denied, 403).await;
    app.shutdown().await;
}
