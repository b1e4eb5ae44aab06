//! Erasing a person over HTTP: the receipt, the tombstone's 410 everywhere it is named,
//! idempotency, bodies and scopes, and the `lead.erased` delivery a webhook receives.

use crate::{TestApp, problem, spawn_app, spawn_app_with, spawn_on_with};
use leadflow_core::config::Config;
use serde_json::{Value, json};
use std::sync::Arc;

use crate::receiver::SECRET;

async fn capture(app: &TestApp, body: Value) -> String {
    let r = app.post("/v1/leads", &body).await;
    assert!(r.status().is_success(), "{}", r.status());
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// POST …/erase with no body at all (no content type either).
async fn erase(app: &TestApp, id: &str) -> reqwest::Response {
    app.http.post(app.url(&format!("/v1/leads/{id}/erase"))).bearer_auth(&app.admin).send().await.unwrap()
}

#[tokio::test]
async fn erase_answers_with_a_receipt_and_the_lead_answers_410_wherever_it_is_named() {
    let app = spawn_app().await;
    let id = capture(&app, json!({"email": "ada@acme.com", "first_name": "Ada", "utm_campaign": "spring"})).await;
    let merged_in = capture(&app, json!({"email": "ada@acme.com", "phone": "+44 20 7946 0958"})).await;
    assert_eq!(merged_in, id);

    let r = erase(&app, &id).await;
    assert_eq!(r.status(), 200);
    let receipt: Value = r.json().await.unwrap();
    assert_eq!((receipt["lead_id"].as_str(), receipt["already_erased"].as_bool()), (Some(id.as_str()), Some(false)));
    assert!(receipt["erased_at"].is_string());
    let tables = receipt["tables"].as_array().unwrap();
    let leads = tables.iter().find(|t| t["table"] == "leads").unwrap();
    assert_eq!((leads["scrubbed"].as_u64(), leads["deleted"].as_u64()), (Some(1), Some(0)));
    let submissions = tables.iter().find(|t| t["table"] == "submissions").unwrap();
    assert_eq!(submissions["scrubbed"], 2);
    assert_eq!(receipt["destinations"], json!([]));

    for path in ["", "/history", "/events", "/touchpoints", "/transitions"] {
        let body = problem(app.get(&format!("/v1/leads/{id}{path}")).await, 410).await;
        assert_eq!(body["code"], "erased", "GET /v1/leads/{{id}}{path}");
    }
    let moved = app.post(&format!("/v1/leads/{id}/transitions"), &json!({"to": "engaged"})).await;
    assert_eq!(problem(moved, 410).await["code"], "erased");
    let assigned = app.post(&format!("/v1/leads/{id}/assignment"), &json!({"owner": "rep-1"})).await;
    assert_eq!(problem(assigned, 410).await["code"], "erased");
    let event = app.post("/v1/events", &json!({"type": "page_view", "lead_id": id})).await;
    assert_eq!(problem(event, 410).await["code"], "erased");
    let batch: Value = app
        .post("/v1/events/batch", &json!({"events": [{"type": "page_view", "lead_id": id}]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((batch["results"][0]["status"].as_str(), batch["erased"].as_u64()), (Some("erased"), Some(1)));

    let found: Value = app.get("/v1/leads?email=ada@acme.com").await.json().await.unwrap();
    assert_eq!(found, json!([]));
    let listed: Value = app.get("/v1/leads").await.json().await.unwrap();
    assert_eq!(listed, json!([]), "nothing of the tombstone is left to list");

    // The same person again is suppressed; once the suppression is lifted, someone new.
    let r = app.post("/v1/leads", &json!({"email": "ada@acme.com", "first_name": "Ada"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["outcome"], "suppressed");
    let lift = json!({"email": "ada@acme.com", "reason": "asked to be contacted again"});
    let r = app.http.delete(app.url("/v1/suppressions")).bearer_auth(&app.admin).json(&lift).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.post("/v1/leads", &json!({"email": "ada@acme.com", "first_name": "Ada"})).await;
    assert_eq!(r.status(), 201);
    let again: Value = r.json().await.unwrap();
    assert_ne!(again["id"], id.as_str());
}

#[tokio::test]
async fn erase_is_idempotent_and_follows_merges_to_the_survivor() {
    let app = spawn_app().await;
    let id = capture(&app, json!({"email": "grace@navy.mil"})).await;
    let first: Value = erase(&app, &id).await.json().await.unwrap();
    let r = erase(&app, &id).await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["already_erased"], true);
    assert_eq!(second["erased_at"], first["erased_at"], "the first erasure's time");
    assert_eq!(second["tables"], json!([]));
    let history = app.store.lead_history(id.parse().unwrap()).await.unwrap();
    let erasures = history.iter().filter(|h| matches!(h.event, leadflow_core::pipeline::LeadEvent::Erased { .. }));
    assert_eq!(erasures.count(), 1, "nothing more was done");
}

#[tokio::test]
async fn erase_keeps_who_asked_and_why_and_refuses_bad_bodies() {
    let app = spawn_app().await;
    let id = capture(&app, json!({"email": "linus@example.org"})).await;
    let path = format!("/v1/leads/{id}/erase");

    let wrong_type = problem(app.post(&path, &json!({"reason": 42})).await, 422).await;
    assert_eq!(
        (wrong_type["code"].as_str(), wrong_type["errors"][0]["field"].as_str()),
        (Some("validation_failed"), Some("reason"))
    );
    let unknown =
        problem(app.post(&path, &json!({"reason": "ticket 7", "email": "linus@example.org"})).await, 422).await;
    assert_eq!(unknown["errors"][0]["field"], "email");
    let long = problem(app.post(&path, &json!({"actor": "x".repeat(201)})).await, 422).await;
    assert_eq!(long["errors"][0]["field"], "actor");
    problem(app.post(&path, &json!(["reason"])).await, 422).await;
    let send = |body: &'static str, content_type: &'static str| {
        app.http.post(app.url(&path)).bearer_auth(&app.admin).header("content-type", content_type).body(body).send()
    };
    assert_eq!(problem(send("{\"reason\":", "application/json").await.unwrap(), 400).await["code"], "malformed_json");
    assert_eq!(problem(send("reason=x", "text/plain").await.unwrap(), 415).await["code"], "unsupported_media_type");
    assert!(app.store.get_lead(id.parse().unwrap()).await.unwrap().unwrap().erased_at.is_none(), "nothing done yet");

    let r = app.post(&path, &json!({"reason": " request DSR-12 ", "actor": "privacy-team"})).await;
    assert_eq!(r.status(), 200);
    let history = app.store.lead_history(id.parse().unwrap()).await.unwrap();
    assert!(matches!(&history.last().unwrap().event,
        leadflow_core::pipeline::LeadEvent::Erased { actor: Some(a), reason: Some(r), .. }
            if a == "privacy-team" && r == "request DSR-12"));

    // Without a body, the actor is the key's name.
    let other = capture(&app, json!({"email": "ken@example.org"})).await;
    assert_eq!(erase(&app, &other).await.status(), 200);
    let history = app.store.lead_history(other.parse().unwrap()).await.unwrap();
    assert!(matches!(&history.last().unwrap().event,
        leadflow_core::pipeline::LeadEvent::Erased { actor: Some(a), reason: None, .. } if a.starts_with("admin-")));
}

#[tokio::test]
async fn an_oversized_erase_body_is_413() {
    let mut config = Config::default();
    config.server.body_limit_bytes = 1024;
    let app = spawn_app_with(config).await;
    let id = capture(&app, json!({"email": "big@example.com"})).await;
    let r = app.post(&format!("/v1/leads/{id}/erase"), &json!({"reason": "x".repeat(2048)})).await;
    assert_eq!(problem(r, 413).await["code"], "payload_too_large");
}

#[tokio::test]
async fn erase_needs_an_admin_key_and_a_lead() {
    let app = spawn_app().await;
    let id = capture(&app, json!({"email": "ada@acme.com"})).await;
    let path = format!("/v1/leads/{id}/erase");
    let anonymous = app.http.post(app.url(&path)).send().await.unwrap();
    assert_eq!(problem(anonymous, 401).await["code"], "unauthorized");
    for scopes in [&["read"][..], &["ingest"], &["feedback"]] {
        let token = app.key(&format!("k-{}", scopes[0]), scopes).await;
        let r = app.http.post(app.url(&path)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(problem(r, 403).await["code"], "forbidden", "{scopes:?}");
    }
    assert!(app.store.get_lead(id.parse().unwrap()).await.unwrap().unwrap().erased_at.is_none());
    let unknown = erase(&app, &leadflow_core::LeadId::new().to_string()).await;
    assert_eq!(problem(unknown, 404).await["code"], "not_found");
    assert_eq!(problem(erase(&app, "not-an-id").await, 404).await["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_webhook_hears_the_lead_is_erased_with_ids_only() {
    let (seen, addr) = crate::receiver::start().await;
    let config = leadflow_core::config::parse(&format!(
        r#"
[[destinations]]
name = "hook"
type = "webhook"
url = "http://{addr}/hook"
secret_env = "HOOK_SECRET"
events = ["created", "erased"]
"#
    ))
    .unwrap();
    let client = leadflow_app::deliveries::client(&config, |_| Some(SECRET.to_owned())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    let app = spawn_on_with(store, config, Some(Arc::new(client)), dir).await;

    let id = capture(&app, json!({"email": "ada@acme.com", "first_name": "Ada", "last_name": "Lovelace"})).await;
    seen.wait_for(1).await;
    let receipt: Value = erase(&app, &id).await.json().await.unwrap();
    assert_eq!(receipt["destinations"], json!(["hook"]));
    seen.wait_for(2).await;
    let erased = seen.all()[1].clone();
    assert_eq!(erased["type"], "lead.erased");
    assert_eq!(erased["data"]["id"], id.as_str());
    assert_eq!(erased["data"]["delivered_to"], json!(["hook"]));
    let text = erased.to_string();
    assert!(!text.contains("Lovelace") && !text.contains("ada@acme.com"), "{text}");
    // The delivery made before is kept for the audit, without what it carried.
    let delivered: Value = app.get("/v1/deliveries?status=delivered").await.json().await.unwrap();
    let created = delivered.as_array().unwrap().iter().find(|d| d["event_type"] == "lead.created").unwrap();
    assert!(!created.to_string().contains("Lovelace"), "{created}");
}
