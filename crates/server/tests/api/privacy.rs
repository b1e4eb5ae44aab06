//! Privacy over HTTP: the suppression list on every channel, the consent ledger, and
//! deliveries held for consent.

use crate::{TestApp, problem, spawn_app, spawn_app_with, spawn_on_with};
use leadflow_core::config::{Adapter, Config, SourceConfig};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::receiver::SECRET;

async fn delete(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.http.delete(app.url(path)).bearer_auth(&app.admin).json(body).send().await.unwrap()
}

async fn capture(app: &TestApp, body: Value) -> Value {
    let r = app.post("/v1/leads", &body).await;
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

fn web_source(name: &str) -> SourceConfig {
    SourceConfig {
        allowed_origins: vec!["https://www.example.com".into()],
        min_submit_secs: Some(0),
        ..SourceConfig { name: crate::source(name), adapter: Adapter::WebForm, ..SourceConfig::api() }
    }
}

#[tokio::test]
async fn a_suppressed_person_is_not_captured_again_on_any_channel() {
    let mut config = Config::default();
    config.sources.push(web_source("site"));
    let app = spawn_app_with(config).await;
    let r = app
        .post(
            "/v1/suppressions",
            &json!({"email": "Jane.Doe@gmail.com", "phone": "+1 415 555 0100", "reason": "ticket 7"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"changed": 3, "suppressed": true}));

    // Case, spacing, Gmail dots and +tags, or the phone alone: all the same person.
    for body in [
        json!({"email": "jane.doe@gmail.com"}),
        json!({"email": "  JANEDOE+promo@googlemail.com "}),
        json!({"email": "someone.else@example.com", "phone": "(415) 555-0100", "country": "US"}),
    ] {
        let r = app.post("/v1/leads", &body).await;
        assert_eq!(r.status(), 200, "{body}");
        let out: Value = r.json().await.unwrap();
        assert_eq!(out["outcome"], "suppressed", "{body}");
        assert!(out.get("id").is_none(), "{out}");
    }
    let batch: Value = app
        .post(
            "/v1/leads/batch",
            &json!({"leads": [{"email": "j.a.n.e.d.o.e@gmail.com"}, {"email": "other@example.com"}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(batch["results"][0]["outcome"], "suppressed");
    assert_eq!(batch["results"][1]["outcome"], "created");
    assert_eq!(batch["suppressed"], 1);

    // A web form acknowledges like any other post and stores nothing.
    let form = form_urlencoded::Serializer::new(String::new()).extend_pairs([("email", "JaneDoe@gmail.com")]).finish();
    let r = app
        .http
        .post(app.url("/v1/hooks/site"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://www.example.com")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"received": 1}));

    // An import reports the row as suppressed.
    let r = app
        .http
        .post(app.url("/v1/imports?source=api"))
        .bearer_auth(&app.admin)
        .header("content-type", "text/csv")
        .body("email\njane.doe+x@gmail.com\nnew@example.com\n")
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let job = loop {
        let job: Value = app.get(&format!("/v1/imports/{id}")).await.json().await.unwrap();
        if job["status"] == "done" {
            break job;
        }
        assert!(Instant::now() < deadline, "{job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let report = app.get(job["report_url"].as_str().unwrap()).await.text().await.unwrap();
    assert!(report.lines().nth(1).unwrap().starts_with("1,,suppressed,,"), "{report}");
    assert!(report.lines().nth(2).unwrap().starts_with("2,,created,"), "{report}");

    // An event naming the email is dropped.
    let event: Value = app
        .post("/v1/events", &json!({"type": "page_view", "email": "jane.doe@gmail.com"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(event["status"], "dropped");

    assert_eq!(app.lead_count().await, 2, "only the two other people are leads");
    assert!(app.get("/v1/quarantine").await.json::<Value>().await.unwrap().as_array().unwrap().is_empty());

    // The list holds keyed hashes, never the address or the number.
    let (store, dir) = app.shutdown().await;
    store.close().await.unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("leadflow.db")).unwrap();
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT kind, hash FROM suppressions")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 3);
    for (_, hash) in &rows {
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("jane") && !hash.contains("4155550100"));
    }
}

#[tokio::test]
async fn lifting_a_suppression_needs_a_reason_and_lets_the_person_back() {
    let app = spawn_app().await;
    let body = problem(app.post("/v1/suppressions", &json!({"reason": "nobody"})).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "email");
    problem(app.post("/v1/suppressions", &json!({"email": "not an email"})).await, 422).await;
    problem(app.post("/v1/suppressions", &json!({"phone": "555-0100"})).await, 422).await;
    problem(app.post("/v1/suppressions", &json!({"email": "a@example.com", "name": "A"})).await, 422).await;
    let reader = app.key("reader", &["read"]).await;
    let r = app.http.post(app.url("/v1/suppressions")).bearer_auth(&reader).json(&json!({"email": "a@example.com"}));
    problem(r.send().await.unwrap(), 403).await;

    app.post("/v1/suppressions", &json!({"email": "ada@example.com"})).await;
    assert_eq!(capture(&app, json!({"email": "ada@example.com"})).await["outcome"], "suppressed");
    let body = problem(delete(&app, "/v1/suppressions", &json!({"email": "ada@example.com"})).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "reason");
    let r =
        delete(&app, "/v1/suppressions", &json!({"email": "ADA@example.com", "reason": "asked to be contacted"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["suppressed"], false);
    problem(delete(&app, "/v1/suppressions", &json!({"email": "ada@example.com", "reason": "again"})).await, 404).await;
    assert_eq!(capture(&app, json!({"email": "ada@example.com"})).await["outcome"], "created");

    // Both are audited, without the person's address.
    let audit: Value = app.get("/v1/audit?target=suppressions").await.json().await.unwrap();
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["suppression.lifted", "suppression.added"]);
    assert_eq!(audit["entries"][0]["detail"]["reason"], "asked to be contacted");
    assert!(!audit.to_string().contains("ada@"), "{audit}");
}

#[tokio::test]
async fn an_erased_person_is_suppressed() {
    let app = spawn_app().await;
    let id = capture(&app, json!({"email": "grace@navy.mil", "phone": "+1 202 555 0199"})).await["id"].clone();
    let r = app.http.post(app.url(&format!("/v1/leads/{}/erase", id.as_str().unwrap()))).bearer_auth(&app.admin);
    assert_eq!(r.send().await.unwrap().status(), 200);
    assert_eq!(capture(&app, json!({"email": "Grace@Navy.mil"})).await["outcome"], "suppressed");
    assert_eq!(
        capture(&app, json!({"email": "g@example.com", "phone": "+12025550199"})).await["outcome"],
        "suppressed"
    );
}

#[tokio::test]
async fn the_consent_ledger_keeps_every_choice_and_the_current_state_per_purpose() {
    let app = spawn_app().await;
    let lead = capture(
        &app,
        json!({"email": "ada@example.com", "landing_page_url": "https://example.com/demo",
               "consent": {"granted": true, "policy_version": "v3", "channels": {"sms": true}}}),
    )
    .await;
    let id = lead["id"].as_str().unwrap().to_owned();
    let consent: Value = app.get(&format!("/v1/leads/{id}/consent")).await.json().await.unwrap();
    assert_eq!(consent["current"]["marketing_email"]["status"], "granted");
    assert_eq!(consent["current"]["phone"]["status"], "granted");
    let history = consent["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    let email = history.iter().find(|e| e["purpose"] == "marketing_email").unwrap();
    assert_eq!(email["policy_version"], "v3");
    assert_eq!(email["page_url"], "https://example.com/demo");
    assert_eq!(email["source"], "api");
    assert_eq!(email["submission_id"], lead["submission_id"]);

    // An unsubscribe link withdraws one purpose; the other stays.
    let r = app
        .post(&format!("/v1/leads/{id}/consent"), &json!({"purpose": "marketing_email", "status": "withdrawn"}))
        .await;
    assert_eq!(r.status(), 201);
    let consent: Value = r.json().await.unwrap();
    assert_eq!(consent["current"]["marketing_email"]["status"], "withdrawn");
    assert_eq!(consent["current"]["phone"]["status"], "granted");
    let last = consent["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["captured_via"].as_str(), last["status"].as_str()), (Some("operator"), Some("withdrawn")));
    assert!(last["actor"].as_str().unwrap().starts_with("key:"));
    assert_eq!(email["api_key"], last["actor"], "the capture's entry names the key that sent it");
    let audit: Value = app.get(&format!("/v1/audit?action=consent.recorded&target={id}")).await.json().await.unwrap();
    assert_eq!(
        audit["entries"][0]["detail"]["choices"],
        json!([{"purpose": "marketing_email", "status": "withdrawn"}])
    );
    assert_eq!(audit["entries"][0]["actor"], last["actor"]);

    // A later submission about another purpose does not bring the withdrawn one back.
    capture(&app, json!({"email": "ada@example.com", "consent": {"purpose": "sales_contact", "status": "granted"}}))
        .await;
    let consent: Value = app.get(&format!("/v1/leads/{id}/consent")).await.json().await.unwrap();
    assert_eq!(consent["current"]["marketing_email"]["status"], "withdrawn");
    assert_eq!(consent["current"]["sales_contact"]["status"], "granted");
    assert_eq!(consent["history"].as_array().unwrap().len(), 4);
    // The lead shows the state too, and so does the person's export, which is audited.
    let shown: Value = app.get(&format!("/v1/leads/{id}")).await.json().await.unwrap();
    assert_eq!(shown["consent"]["purposes"]["marketing_email"]["status"], "withdrawn");
    let export: Value = app.get(&format!("/v1/leads/{id}/export")).await.json().await.unwrap();
    assert_eq!(export["consent"]["current"], consent["current"]);
    assert_eq!(export["consent"]["history"], consent["history"]);
    let audit: Value = app.get(&format!("/v1/audit?action=person.exported&target={id}")).await.json().await.unwrap();
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_consent_is_422_an_unknown_lead_404_and_an_erased_one_410() {
    let app = spawn_app().await;
    let id = capture(&app, json!({"email": "ada@example.com"})).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/leads/{id}/consent");
    let body = problem(app.post(&path, &json!({"purpose": "telepathy", "status": "granted"})).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "consent.purpose");
    let body = problem(app.post(&path, &json!({"purpose": "phone", "status": "maybe"})).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "consent.status");
    problem(app.post(&path, &json!({"status": "granted"})).await, 422).await;
    problem(app.post(&path, &json!({"purpose": "phone", "status": "granted", "note": "x"})).await, 422).await;
    let body = problem(
        app.post("/v1/leads", &json!({"email": "b@example.com", "consent": {"purposes": {"phone": "sure"}}})).await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "consent.purposes.phone");
    let unknown = leadflow_core::LeadId::new();
    problem(app.get(&format!("/v1/leads/{unknown}/consent")).await, 404).await;
    problem(
        app.post(&format!("/v1/leads/{unknown}/consent"), &json!({"purpose": "phone", "status": "granted"})).await,
        404,
    )
    .await;
    let r = app.http.post(app.url(&format!("/v1/leads/{id}/erase"))).bearer_auth(&app.admin);
    assert_eq!(r.send().await.unwrap().status(), 200);
    assert_eq!(problem(app.get(&path).await, 410).await["code"], "erased");
    assert_eq!(
        problem(app.post(&path, &json!({"purpose": "phone", "status": "granted"})).await, 410).await["code"],
        "erased"
    );
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < Duration::from_secs(30), "waited for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_without_the_required_consent_is_held_until_it_arrives() {
    let (seen, addr) = crate::receiver::start().await;
    let config = leadflow_core::config::parse(&format!(
        r#"
[[destinations]]
name = "crm"
type = "webhook"
url = "http://{addr}/hook"
secret_env = "HOOK_SECRET"
events = ["created", "consent_changed"]
consent = ["sales_contact"]
"#
    ))
    .unwrap();
    let client = leadflow_app::deliveries::client(&config, |_| Some(SECRET.to_owned())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    let app = spawn_on_with(store, config, Some(Arc::new(client)), dir).await;

    let id = capture(&app, json!({"email": "ada@example.com", "consent": {"granted": true}})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    until("the delivery to be held", async || {
        let held: Value = app.get("/v1/deliveries?status=blocked_consent").await.json().await.unwrap();
        held.as_array().is_some_and(|h| h.len() == 1)
    })
    .await;
    assert_eq!(seen.len(), 0, "nothing is sent without sales_contact");

    let r =
        app.post(&format!("/v1/leads/{id}/consent"), &json!({"purpose": "sales_contact", "status": "granted"})).await;
    assert_eq!(r.status(), 201);
    seen.wait_for(2).await;
    let types: Vec<String> = seen.all().iter().map(|d| d["type"].as_str().unwrap().to_owned()).collect();
    assert!(
        types.contains(&"lead.created".to_owned()) && types.contains(&"lead.consent_changed".to_owned()),
        "{types:?}"
    );
    let created = seen.all().into_iter().find(|d| d["type"] == "lead.created").unwrap();
    assert_eq!(created["data"]["consent"]["purposes"]["sales_contact"]["status"], "granted");

    // A withdrawal after delivery reaches the destination, though its consent is gone.
    app.post(&format!("/v1/leads/{id}/consent"), &json!({"purpose": "sales_contact", "status": "withdrawn"})).await;
    seen.wait_for(3).await;
    let last = seen.all().pop().unwrap();
    assert_eq!(last["type"], "lead.consent_changed");
    assert_eq!(last["data"]["consent"]["purposes"]["sales_contact"]["status"], "withdrawn");
}
