//! Routing through the real server: a priority source's lead is routed at once and its
//! owner notified over a Slack-compatible webhook; the round-robin position survives a
//! restart; an SLA reassigns a lead nobody accepted.

use crate::{TestApp, spawn_on, spawn_on_with};
use axum::extract::State;
use leadflow_core::config::Config;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROUTING: &str = r#"
[[sources]]
name = "demo"

[routing]
fallback_owner = "queue"
priority_sources = ["demo"]

[[routing.reps]]
id = "ana"

[[routing.reps]]
id = "ben"

[[routing.reps]]
id = "cai"

[[routing.rules]]
name = "team"
strategy = "round_robin"
reps = ["ana", "ben", "cai"]
"#;

fn config(extra: &str) -> Config {
    leadflow_core::config::parse(&format!("{ROUTING}{extra}")).unwrap_or_else(|e| panic!("{e:?}"))
}

async fn spawn(config: Config) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    spawn_on(store, config, dir).await
}

async fn capture(app: &TestApp, email: &str) -> String {
    let r = app.post("/v1/leads", &json!({"source": "demo", "email": email, "first_name": "Ada"})).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// Waits until the lead has an owner other than `not`, and returns it.
async fn owner(app: &TestApp, id: &str, not: Option<&str>) -> String {
    let start = Instant::now();
    loop {
        let lead: Value = app.get(&format!("/v1/leads/{id}")).await.json().await.unwrap();
        if let Some(owner) = lead["owner"].as_str()
            && Some(owner) != not
        {
            return owner.to_owned();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "lead {id} was not routed: {lead}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assignments(app: &TestApp, id: &str) -> Vec<Value> {
    let history: Vec<Value> = app.get(&format!("/v1/leads/{id}/history")).await.json().await.unwrap();
    history.into_iter().filter(|h| h["kind"] == "assigned").collect()
}

/// The routing configuration with `destination` added, served with a local Slack that keeps
/// every message it is sent.
async fn with_slack(destination: &str) -> (TestApp, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slack = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/services/T0/B0/x",
            axum::routing::post(|State(seen): State<Arc<Mutex<Vec<Value>>>>, body: axum::Json<Value>| async move {
                seen.lock().unwrap().push(body.0);
                "ok"
            }),
        )
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = config(destination);
    let url = format!("http://{slack}/services/T0/B0/x");
    let client = leadflow_app::deliveries::client(&config, |_| Some(url.clone())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    let app = spawn_on_with(store, config, Some(Arc::new(client)), dir).await;
    (app, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_lead_is_routed_at_once_and_its_owner_notified() {
    let (app, seen) = with_slack(
        "\n[[destinations]]\nname = \"rep-alerts\"\ntype = \"slack\"\nurl_env = \"SLACK_URL\"\nevents = [\"assigned\"]\n",
    )
    .await;

    let id = capture(&app, "ada@acme.com").await;
    assert_eq!(owner(&app, &id, None).await, "ana");
    let assigned = assignments(&app, &id).await;
    assert_eq!(assigned.len(), 1);
    assert_eq!(
        (assigned[0]["trigger"].as_str(), assigned[0]["via"].as_str()),
        (Some("priority_source"), Some("round_robin"))
    );
    assert_eq!(assigned[0]["rule"], "team");
    let steps: Vec<&str> = assigned[0]["steps"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(steps, ["rule \"team\" matched", "round_robin: ana (turn 1 of 3)"]);

    let start = Instant::now();
    while seen.lock().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "the rep was not notified");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let message = seen.lock().unwrap()[0]["text"].as_str().unwrap().to_owned();
    assert!(message.contains("assigned to ana"), "{message}");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("leadflow_routing_assignments_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_lead_reaches_its_owner_on_slack_by_mention() {
    let (app, seen) = with_slack(
        "\n[[destinations]]\nname = \"rep-alerts\"\ntype = \"slack\"\nurl_env = \"SLACK_URL\"\n\
         events = [\"returned\"]\nowners = { ana = \"U0ANA1234\" }\n",
    )
    .await;

    let id = capture(&app, "ada@acme.com").await;
    assert_eq!(owner(&app, &id, None).await, "ana");
    // Coming back through the API: merged into ana's lead, and ana hears of it.
    let again = app.post("/v1/leads", &json!({"email": "ada@acme.com", "company": "Acme"})).await;
    assert_eq!(again.status(), 200);
    let start = Instant::now();
    while seen.lock().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "the owner was not told");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let messages = seen.lock().unwrap().clone();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        messages[0]["text"],
        "Returning lead: Ada from Acme (ada@acme.com) submitted api again — owner <@U0ANA1234>."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_robin_position_survives_a_restart() {
    let app = spawn(config("")).await;
    let first = capture(&app, "one@a.com").await;
    assert_eq!(owner(&app, &first, None).await, "ana");
    let second = capture(&app, "two@b.com").await;
    assert_eq!(owner(&app, &second, None).await, "ben");
    let (_closed, dir) = app.shutdown().await;
    let store = crate::open_store(&dir).await;
    let app = spawn_on(store, config(""), dir).await;
    let third = capture(&app, "three@c.com").await;
    assert_eq!(owner(&app, &third, None).await, "cai", "the turn goes on where it stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sla_reassigns_a_lead_nobody_accepted() {
    // 0.01 minutes: the timer runs out within a second.
    let app = spawn(config("sla_minutes = 0.01\n")).await;
    let id = capture(&app, "slow@a.com").await;
    let first = owner(&app, &id, None).await;
    let second = owner(&app, &id, Some(&first)).await;
    assert_ne!(first, second);
    let assigned = assignments(&app, &id).await;
    assert_eq!(assigned[1]["trigger"], "sla");
    assert_eq!(assigned[1]["previous"], first.as_str());
    let note = assigned[1]["steps"][0].as_str().unwrap();
    assert!(note.starts_with(&format!("{first} did not accept within 0.01 minutes")), "{note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_is_assigned_by_hand_or_routed_again() {
    let app = spawn(config("")).await;
    let r = app.post("/v1/leads", &json!({"email": "hand@a.com"})).await;
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/leads/{id}/assignment");

    let r = app.post(&path, &json!({"owner": "dan@seller.com", "actor": "boss"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["owner"], "dan@seller.com");
    let r = app.post(&path, &json!({"route": true})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["owner"], "ana");
    let assigned = assignments(&app, &id).await;
    let how: Vec<(&str, &str)> =
        assigned.iter().map(|a| (a["via"].as_str().unwrap(), a["trigger"].as_str().unwrap())).collect();
    assert_eq!(how, [("manual", "manual"), ("round_robin", "manual")]);
    assert_eq!(assigned[0]["steps"][0], "assigned to dan@seller.com by boss");
    assert_eq!(assigned[1]["previous"], "dan@seller.com");

    for bad in [
        json!({}),
        json!({"owner": ""}),
        json!({"owner": "x", "route": true}),
        json!({"route": false}),
        json!({"owner": 7}),
        json!({"colour": "red"}),
    ] {
        let body = crate::problem(app.post(&path, &bad).await, 422).await;
        assert!(body["errors"].is_array(), "{bad}: {body}");
    }
    crate::problem(
        app.post("/v1/leads/0190f3a4-0000-7000-8000-000000000001/assignment", &json!({"route": true})).await,
        404,
    )
    .await;
    crate::problem(app.post("/v1/leads/nope/assignment", &json!({"route": true})).await, 404).await;
    let reader = app.key("reader", &["read"]).await;
    let r = app.http.post(app.url(&path)).bearer_auth(reader).json(&json!({"route": true})).send().await.unwrap();
    crate::problem(r, 403).await;
    let r = app.http.post(app.url(&path)).json(&json!({"route": true})).send().await.unwrap();
    crate::problem(r, 401).await;
    let r = app
        .http
        .post(app.url(&path))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    crate::problem(r, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_without_anyone_to_route_to_is_a_conflict() {
    let config = leadflow_core::config::parse(
        "[[routing.reps]]\nid = \"ana\"\n[[routing.rules]]\nname = \"fr\"\nwhen = { field = \"country\", is = \"FR\" }\nstrategy = \"round_robin\"\nreps = [\"ana\"]\n",
    )
    .unwrap();
    let app = spawn(config).await;
    let r = app.post("/v1/leads", &json!({"email": "nobody@a.com", "country": "DE"})).await;
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let body =
        crate::problem(app.post(&format!("/v1/leads/{id}/assignment"), &json!({"route": true})).await, 409).await;
    assert!(body["detail"].as_str().unwrap().contains("nobody"), "{body}");
}
