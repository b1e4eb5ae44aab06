//! Integration health and alerts over real HTTP: a destination on 127.0.0.1 that fails
//! and recovers, the health report that shows it, the alert that fires and resolves, and
//! its Standard Webhooks-signed notifications to a local receiver.

use crate::{TestApp, spawn_on_with};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use leadflow_integrations::delivery::SigningSecret;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The Standard Webhooks specification's published test secret; `TEST_ALERT_SECRET` in
/// the test environment.
pub const ALERT_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// A CRM that fails while `broken`, and an alert receiver that keeps what it verified.
#[derive(Default)]
struct Endpoint {
    broken: AtomicBool,
    /// (webhook-id, type, episode id, scope) of every signed call.
    alerts: Mutex<Vec<(String, String, String, String)>>,
}

async fn crm(State(e): State<Arc<Endpoint>>) -> Response {
    if e.broken.load(Ordering::SeqCst) { StatusCode::BAD_GATEWAY } else { StatusCode::NO_CONTENT }.into_response()
}

async fn alerts(State(e): State<Arc<Endpoint>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let secret = SigningSecret::parse(ALERT_SECRET).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let id = header("webhook-id");
    let checked = leadflow_integrations::delivery::verify(
        &secret,
        &id,
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &body,
        now,
        Duration::from_secs(300),
    );
    if checked.is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    let seen = (
        id,
        v["type"].as_str().unwrap().to_owned(),
        v["data"]["id"].as_str().unwrap().to_owned(),
        v["data"]["scope"].as_str().unwrap().to_owned(),
    );
    e.alerts.lock().unwrap().push(seen);
    StatusCode::NO_CONTENT.into_response()
}

async fn start(e: Arc<Endpoint>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/crm", axum::routing::post(crm))
        .route("/alerts", axum::routing::post(alerts))
        .with_state(e);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn spawn(addr: SocketAddr) -> TestApp {
    let config = leadflow_core::config::parse(&format!(
        r#"
[[sources]]
name = "calendly"
adapter = "calendly"
secret_env = "TEST_SECRET"

[[destinations]]
name = "crm"
type = "webhook"
url = "http://{addr}/crm"
secret_env = "CRM_SECRET"
events = ["created"]
retry = ["0s"]
rate_limit = {{ per_second = 1000.0, burst = 1000 }}
circuit_breaker = {{ failure_threshold = 1000, cool_down = "100ms" }}

[alerts]
evaluate_every = "100ms"
keep_firing_for = "0s"

[[alerts.rules]]
kind = "error_rate"
scope = "destination:crm"
threshold = 0.5
window = "1h"
min_events = 3

[[alerts.channels]]
name = "ops"
type = "webhook"
url = "http://{addr}/alerts"
secret_env = "TEST_ALERT_SECRET"
"#
    ))
    .unwrap();
    let client = leadflow_app::deliveries::client(&config, |_| Some(ALERT_SECRET.to_owned())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    spawn_on_with(store, config, Some(Arc::new(client)), dir).await
}

/// A server whose CRM fails every try, under the error-rate rule these tests use (the
/// dashboard's tests too).
pub async fn spawn_with_failing_crm() -> TestApp {
    let endpoint = Arc::new(Endpoint { broken: AtomicBool::new(true), ..Endpoint::default() });
    spawn(start(endpoint).await).await
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn health(app: &TestApp) -> Value {
    let r = app.get("/v1/health").await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|x| x["name"] == name).unwrap_or_else(|| panic!("{name} in {list}"))
}

#[tokio::test]
async fn a_failing_destination_shows_in_health_fires_one_alert_and_resolves_it_once() {
    let endpoint = Arc::new(Endpoint { broken: AtomicBool::new(true), ..Endpoint::default() });
    let addr = start(endpoint.clone()).await;
    let app = spawn(addr).await;

    // Before anything: every configured integration is listed; the sources are silent.
    let before = health(&app).await;
    assert_eq!(named(&before["sources"], "calendly")["status"], "silent");
    assert_eq!(named(&before["destinations"], "crm")["status"], "ok");
    assert_eq!(before["alerts"], json!([]));

    for i in 0..3 {
        let r = app.post("/v1/leads", &json!({"email": format!("lead{i}@example.com")})).await;
        assert_eq!(r.status(), 201);
    }
    // A refused provider call is counted for its source, though nothing was stored.
    let refused = app
        .http
        .post(app.url("/v1/hooks/calendly"))
        .header("content-type", "application/json")
        .header("calendly-webhook-signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // Three dead letters: the error rate passes the rule's threshold and its alert fires.
    wait_for("the alert to fire", async || {
        let h = health(&app).await;
        h["alerts"].as_array().unwrap().len() == 1
    })
    .await;
    let h = health(&app).await;
    let crm = named(&h["destinations"], "crm");
    assert_eq!(crm["status"], "failing");
    assert_eq!(crm["counts"]["hour"]["failed"], 3, "{crm}");
    assert_eq!(crm["counts"]["hour"]["failed_by_class"]["server_error"], 3);
    assert_eq!(crm["backlog"]["dead"], 3);
    assert_eq!(h["alerts"][0]["rule"], "error_rate");
    assert_eq!(h["alerts"][0]["scope"], "destination:crm");
    let api = named(&h["sources"], "api");
    assert_eq!((api["status"].as_str(), api["counts"]["hour"]["created"].as_u64()), (Some("ok"), Some(3)));
    wait_for("the refusal to be counted", async || {
        let h = health(&app).await;
        named(&h["sources"], "calendly")["counts"]["hour"]["refused"] == 1
    })
    .await;

    let firing: Value = app.get("/v1/alerts?state=firing").await.json().await.unwrap();
    let episode = firing[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(firing[0]["state"], "firing");
    wait_for("the firing notification", async || endpoint.alerts.lock().unwrap().len() == 1).await;

    // Acknowledged by a person: kept with the episode.
    let acked: Value = app.post(&format!("/v1/alerts/{episode}/acknowledge"), &json!({})).await.json().await.unwrap();
    assert!(acked["acknowledged_at"].is_string(), "{acked}");

    // The CRM recovers and the dead letters are replayed: the rate falls to the
    // threshold, the episode resolves and the channel hears it once.
    endpoint.broken.store(false, Ordering::SeqCst);
    let replayed: Value = app.post("/v1/deliveries/replay", &json!({"destination": "crm"})).await.json().await.unwrap();
    assert_eq!(replayed["replayed"], 3);
    wait_for("the resolved notification", async || endpoint.alerts.lock().unwrap().len() == 2).await;
    let seen = endpoint.alerts.lock().unwrap().clone();
    let events: Vec<(&str, &str, &str)> =
        seen.iter().map(|(_, t, e, s)| (t.as_str(), e.as_str(), s.as_str())).collect();
    assert_eq!(
        events,
        [
            ("alert.firing", episode.as_str(), "destination:crm"),
            ("alert.resolved", episode.as_str(), "destination:crm")
        ]
    );
    assert_ne!(seen[0].0, seen[1].0, "each notification has its own webhook-id");

    let detail: Value = app.get(&format!("/v1/alerts/{episode}")).await.json().await.unwrap();
    assert_eq!(detail["state"], "resolved");
    assert!(detail["resolved_at"].is_string());
    let sent: Vec<&str> =
        detail["notifications"].as_array().unwrap().iter().map(|n| n["status"].as_str().unwrap()).collect();
    assert_eq!(sent, ["sent", "sent"]);
    let resolved: Value = app.get("/v1/alerts?state=resolved").await.json().await.unwrap();
    assert_eq!(resolved.as_array().unwrap().len(), 1);
    assert_eq!(health(&app).await["alerts"], json!([]));

    // The destination's series: today's tries and deliveries.
    let series: Value = app.get("/v1/health/destinations/crm").await.json().await.unwrap();
    let today = |m: &str| series["series"][m]["daily"].as_array().unwrap().last().unwrap()["value"].as_u64().unwrap();
    assert_eq!((today("attempts"), today("failed"), today("delivered")), (6, 3, 3), "{series}");
    assert_eq!(series["series"]["attempts"]["daily"].as_array().unwrap().len(), 90);
    assert_eq!(series["series"]["attempts"]["hourly"].as_array().unwrap().len(), 24);
}

#[tokio::test]
async fn health_and_alerts_answer_unknown_names_and_bad_input_with_problems() {
    let endpoint = Arc::new(Endpoint::default());
    let app = spawn(start(endpoint).await).await;
    for path in ["/v1/health/sources/nope", "/v1/health/destinations/nope", "/v1/alerts/ep_nope"] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(app.get("/v1/health/sources/api").await.status(), 200);
    assert_eq!(app.get("/v1/alerts?state=maybe").await.status(), 400);
    let unknown = app.post("/v1/alerts/silences", &json!({"scope": "source:nope", "for": "1h"})).await;
    assert_eq!(unknown.status(), 404);
    let bad = app.post("/v1/alerts/silences", &json!({"scope": "everything", "for": "soon"})).await;
    assert_eq!(bad.status(), 422);
    let set: Value =
        app.post("/v1/alerts/silences", &json!({"scope": "destination:crm", "for": "2h"})).await.json().await.unwrap();
    assert_eq!(set["scope"], "destination:crm");
    // A read key sees, and may not act.
    let reader = app.key("reader", &["read"]).await;
    let read = app.http.get(app.url("/v1/health")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let act = app
        .http
        .post(app.url("/v1/alerts/silences"))
        .bearer_auth(&reader)
        .json(&json!({"scope": "destination:crm", "for": "2h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(act.status(), 403);
    assert_eq!(app.http.get(app.url("/v1/health")).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn a_silenced_scope_opens_its_episode_without_notifying() {
    let endpoint = Arc::new(Endpoint { broken: AtomicBool::new(true), ..Endpoint::default() });
    let app = spawn(start(endpoint.clone()).await).await;
    let r = app.post("/v1/alerts/silences", &json!({"scope": "destination:*", "for": "1h"})).await;
    assert_eq!(r.status(), 200);
    for i in 0..3 {
        app.post("/v1/leads", &json!({"email": format!("quiet{i}@example.com")})).await;
    }
    wait_for("the alert to fire", async || {
        let firing: Value = app.get("/v1/alerts?state=firing").await.json().await.unwrap();
        firing.as_array().unwrap().len() == 1
    })
    .await;
    let firing: Value = app.get("/v1/alerts?state=firing").await.json().await.unwrap();
    let detail: Value =
        app.get(&format!("/v1/alerts/{}", firing[0]["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(detail["notifications"], json!([]), "held back by the silence");
    assert!(endpoint.alerts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_destination_that_keeps_failing_is_paused_and_keeps_queueing() {
    let endpoint = Arc::new(Endpoint { broken: AtomicBool::new(true), ..Endpoint::default() });
    let addr = start(endpoint.clone()).await;
    let config = leadflow_core::config::parse(&format!(
        r#"
[[destinations]]
name = "crm"
type = "webhook"
url = "http://{addr}/crm"
secret_env = "CRM_SECRET"
events = ["created"]
retry = ["0s", "10ms", "10ms", "10ms", "10ms", "10ms"]
rate_limit = {{ per_second = 1000.0, burst = 1000 }}
circuit_breaker = {{ failure_threshold = 2, cool_down = "1h" }}
"#
    ))
    .unwrap();
    let client = leadflow_app::deliveries::client(&config, |_| Some(ALERT_SECRET.to_owned())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    let app = spawn_on_with(store, config, Some(Arc::new(client)), dir).await;
    for i in 0..4 {
        app.post("/v1/leads", &json!({"email": format!("held{i}@example.com")})).await;
    }
    wait_for("the destination to be paused", async || {
        named(&health(&app).await["destinations"], "crm")["status"] == "paused"
    })
    .await;
    // Held, not dropped: every delivery waits in the outbox. Tries already under way when
    // the breaker opened still count, but no delivery used up its schedule.
    let crm = named(&health(&app).await["destinations"], "crm").clone();
    assert_eq!(crm["backlog"]["pending"], 4, "{crm}");
    assert_eq!(crm["backlog"]["dead"], 0);
    let tries = crm["counts"]["hour"]["attempts"].as_u64().unwrap();
    assert!((2..=4).contains(&tries), "{crm}");
}

#[tokio::test]
async fn a_sources_pending_submissions_are_counted_and_listed() {
    use hmac::{Hmac, Mac};
    // A Graph API that is down: the lead Facebook announced stays pending, its fetch
    // retried, whatever the background workers do meanwhile.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let graph = listener.local_addr().unwrap();
    let down = axum::Router::new().fallback(|| async { StatusCode::SERVICE_UNAVAILABLE });
    tokio::spawn(async move { axum::serve(listener, down).await });
    let config = leadflow_core::config::parse(&format!(
        r#"
[[sources]]
name = "facebook"
adapter = "facebook_lead_ads"
secret_env = "TEST_SECRET"
verify_token_env = "TEST_VERIFY_TOKEN"
token_env = "TEST_API_TOKEN"
api_base_url = "http://{graph}"
"#
    ))
    .unwrap();
    let app = crate::spawn_app_with(config).await;
    let body = json!({"object": "page", "entry": [{"id": "p1", "time": 1, "changes": [{"field": "leadgen",
        "value": {"leadgen_id": "777", "page_id": "p1", "form_id": "f1", "created_time": 1}}]}]})
    .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"test-signing-secret").unwrap();
    mac.update(body.as_bytes());
    let r = app
        .http
        .post(app.url("/v1/hooks/facebook"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", format!("sha256={}", hex::encode(mac.finalize().into_bytes())))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let facebook = named(&health(&app).await["sources"], "facebook").clone();
    assert_eq!(facebook["pending"], 1, "{facebook}");
    assert!(facebook["oldest_pending_at"].is_string());
    assert_eq!(facebook["counts"]["hour"]["received"], 1, "counted when it entered the inbox");
    assert_eq!(facebook["counts"]["hour"]["created"], 0);
    let pending: Value = app.get("/v1/health/sources/facebook/pending").await.json().await.unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    assert!(pending[0]["submission_id"].is_string());
    assert_eq!(app.get("/v1/health/sources/nope/pending").await.status(), 404);
}
