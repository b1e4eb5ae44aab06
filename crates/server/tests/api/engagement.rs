//! Events, scores, the lifecycle contract and the reports, over HTTP.

use crate::{problem, spawn_app_with};
use leadflow_core::config::Config;
use serde_json::{Value, json};

fn scored() -> Config {
    let text = r#"
[scoring]
mql_threshold = 20
gate = ["email", "company"]
[[scoring.rules]]
name = "pricing page"
when = { event = "page_view", url_matches = "*/pricing*" }
points = 10
cap = 30
[[scoring.rules]]
name = "free mail"
when = { derived = "free_mail", is = true }
points = -5
"#;
    leadflow_core::config::parse(text).unwrap()
}

#[tokio::test]
async fn events_score_leads_up_to_an_mql_and_the_contract_guards_manual_moves() {
    let app = spawn_app_with(scored()).await;
    let lead: Value = app
        .post("/v1/leads", &json!({"email": "ada@acme.com", "company": "Acme", "utm_campaign": "spring"}))
        .await
        .json()
        .await
        .unwrap();
    let id = lead["id"].as_str().unwrap().to_owned();

    // An anonymous visitor's event waits; a known email's event attaches and scores.
    let r: Value = app
        .post("/v1/events", &json!({"type": "page_view", "anonymous_id": "v1", "url": "https://acme.com/pricing"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "waiting");
    let batch = json!({"events": [
        {"type": "page_view", "email": "ADA@acme.com", "url": "https://acme.com/pricing", "idempotency_key": "pv-1"},
        {"type": "page_view", "lead_id": id, "url": "https://acme.com/pricing?x=1"},
        {"type": "bad type!", "email": "ada@acme.com"},
        {"type": "page_view"}
    ]});
    let out: Value = app.post("/v1/events/batch", &batch).await.json().await.unwrap();
    assert_eq!((out["attached"].as_u64(), out["rejected"].as_u64()), (Some(2), Some(2)), "{out}");
    assert_eq!(out["results"][1]["score"], 20);
    assert_eq!(out["results"][1]["lifecycle_stage"], "mql");
    assert_eq!(out["results"][2]["errors"][0]["field"], "events[2].type");

    let read: Value = app.get(&format!("/v1/leads/{id}")).await.json().await.unwrap();
    assert_eq!(read["score"], 20);
    assert_eq!(read["lifecycle_stage"], "mql");
    let rules: Vec<&str> =
        read["score_detail"]["breakdown"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, vec!["pricing page"]);
    let events: Value = app.get(&format!("/v1/leads/{id}/events")).await.json().await.unwrap();
    assert_eq!(events.as_array().unwrap().len(), 2);

    // The same key again: the first outcome, nothing recorded twice.
    let again = json!({"events": [{"type": "page_view", "email": "ada@acme.com", "url": "https://acme.com/pricing", "idempotency_key": "pv-1"}]});
    let out: Value = app.post("/v1/events/batch", &again).await.json().await.unwrap();
    assert_eq!(out["results"][0]["replayed"], true);
    let events: Value = app.get(&format!("/v1/leads/{id}/events")).await.json().await.unwrap();
    assert_eq!(events.as_array().unwrap().len(), 2);

    // Manual moves follow the contract.
    let refused =
        problem(app.post(&format!("/v1/leads/{id}/transitions"), &json!({"to": "customer"})).await, 409).await;
    assert_eq!(refused["code"], "transition_not_allowed");
    assert!(refused["allowed"].as_array().unwrap().iter().any(|s| s == "sal"), "{refused}");
    let no_reason =
        problem(app.post(&format!("/v1/leads/{id}/transitions"), &json!({"to": "disqualified"})).await, 409).await;
    assert_eq!(no_reason["code"], "reason_required");
    let moved: Value = app
        .post(&format!("/v1/leads/{id}/transitions"), &json!({"to": "sal", "actor": "rep@seller.example"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moved["lifecycle_stage"], "sal");
    let stages: Value = app.get(&format!("/v1/leads/{id}/transitions")).await.json().await.unwrap();
    let moves: Vec<(&str, &str)> = stages["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["from"].as_str().unwrap(), t["to"].as_str().unwrap()))
        .collect();
    assert_eq!(moves, vec![("new", "mql"), ("mql", "sal")], "the score passes engaged by");
    assert_eq!(stages["transitions"][1]["actor"], "rep@seller.example");
    assert!(stages["time_in_stages"].as_array().unwrap().iter().any(|s| s["stage"] == "sal"));
    problem(app.post(&format!("/v1/leads/{id}/transitions"), &json!({"reason": "x"})).await, 422).await;

    // The visitor converts with a form: their waiting event joins the new lead.
    let bo: Value = app
        .post("/v1/leads", &json!({"email": "bo@globex.com", "company": "Globex", "custom": {"anonymous_id": "v1"}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bo["lead"]["score"], 10);
    assert_eq!(bo["lead"]["lifecycle_stage"], "engaged");
    let touches: Value =
        app.get(&format!("/v1/leads/{}/touchpoints", bo["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(touches.as_array().unwrap().len(), 1);
    assert_eq!(touches[0]["channel"], "api", "the source's channel kind");

    let sources: Value = app.get("/v1/reports/sources").await.json().await.unwrap();
    let rows = sources["rows"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["leads"].as_u64().unwrap()).sum::<u64>(), 2);
    let funnel: Value = app.get("/v1/reports/funnel?by=original").await.json().await.unwrap();
    let spring = funnel["rows"].as_array().unwrap().iter().find(|r| r["campaign"] == "spring").unwrap();
    let reached: Vec<&str> =
        spring["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(reached, vec!["new", "mql", "sal"]);
    problem(app.get("/v1/reports/sources?from=yesterday").await, 400).await;
}

#[tokio::test]
async fn event_requests_are_checked() {
    let app = spawn_app_with(scored()).await;
    problem(app.post("/v1/events", &json!({"type": "page_view"})).await, 422).await;
    problem(app.post("/v1/events", &json!({"type": "page_view", "email": "not-an-email"})).await, 422).await;
    problem(
        app.post("/v1/events", &json!({"type": "x", "email": "a@b.com", "occurred_at": "2999-01-01T00:00:00Z"})).await,
        422,
    )
    .await;
    problem(app.post("/v1/events", &json!({"type": "x", "email": "a@b.com", "colour": "red"})).await, 422).await;
    problem(app.post("/v1/events/batch", &json!({"events": []})).await, 422).await;
    let reader = app.key("reader", &["read"]).await;
    let r = app
        .http
        .post(app.url("/v1/events"))
        .bearer_auth(&reader)
        .json(&json!({"type": "x", "email": "a@b.com"}))
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    let r = app.http.post(app.url("/v1/events")).json(&json!({"type": "x", "email": "a@b.com"})).send().await.unwrap();
    problem(r, 401).await;
    let r = app
        .http
        .post(app.url("/v1/events"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    problem(r, 400).await;
    problem(app.get(&format!("/v1/leads/{}/events", uuid::Uuid::now_v7())).await, 404).await;
}

#[tokio::test]
async fn a_nul_in_an_event_is_dropped_not_refused() {
    let app = spawn_app_with(Config::default()).await;
    let lead: Value = app.post("/v1/leads", &json!({"email": "nul@example.com"})).await.json().await.unwrap();
    let r = app
        .post(
            "/v1/events",
            &json!({"type": "page_view", "email": "nul@example.com", "url": "https://acme.com/pri\u{0}cing",
                    "properties": {"ti\u{0}tle": "Pri\u{0}cing"}}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let id: leadflow_core::LeadId = lead["id"].as_str().unwrap().parse().unwrap();
    let events = app.store.lead_events(id, 10).await.unwrap();
    assert_eq!(events[0].url.as_deref(), Some("https://acme.com/pricing"));
    assert_eq!(events[0].properties.get("title"), Some(&json!("Pricing")));
}
