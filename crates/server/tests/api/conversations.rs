//! Conversations: chat transcripts reach the lead as its conversations, from Intercom's
//! and Drift's webhooks and from the generic `POST /v1/conversations`; retries record
//! nothing twice; bots' answers land in the fields a source's qualification table names.

use crate::{TestApp, problem, spawn_app, spawn_app_with};
use hmac::{Hmac, Mac};
use leadflow_core::config::{Adapter, Config, SourceConfig};
use leadflow_core::source::qualification::Qualification;
use serde_json::{Value, json};

const SECRET: &str = "test-signing-secret";

/// A published example from the integrations crate's fixtures (see their README).
fn fixture(name: &str) -> Value {
    let path = format!("{}/../integrations/tests/channels/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn provider(name: &str, adapter: Adapter, qualification: Qualification) -> SourceConfig {
    SourceConfig {
        name: crate::source(name),
        adapter,
        secret_env: Some("TEST_SECRET".into()),
        qualification,
        ..SourceConfig::api()
    }
}

async fn post_intercom(app: &TestApp, body: &Value) -> Value {
    let body = body.to_string();
    let mut m = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(body.as_bytes());
    let r = app
        .http
        .post(app.url("/v1/hooks/intercom"))
        .header("content-type", "application/json")
        .header("x-hub-signature", format!("sha1={}", hex::encode(m.finalize().into_bytes())))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn post_drift(app: &TestApp, body: &Value, token: &str) -> reqwest::Response {
    let mut body = body.clone();
    body["token"] = json!(token);
    app.http.post(app.url("/v1/hooks/drift")).json(&body).send().await.unwrap()
}

async fn lead_id_by_email(app: &TestApp, email: &str) -> String {
    let leads: Value = app.get(&format!("/v1/leads?email={email}")).await.json().await.unwrap();
    leads[0]["id"].as_str().unwrap_or_else(|| panic!("no lead for {email}: {leads}")).to_owned()
}

async fn conversations(app: &TestApp, lead: &str) -> Value {
    let r = app.get(&format!("/v1/leads/{lead}/conversations")).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn message_events(app: &TestApp, lead: &str) -> usize {
    let events: Value = app.get(&format!("/v1/leads/{lead}/events?limit=1000")).await.json().await.unwrap();
    events.as_array().unwrap().iter().filter(|e| e["type"] == "conversation.message").count()
}

fn texts(conversation: &Value) -> Vec<(String, String)> {
    conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["author"].as_str().unwrap().to_owned(), m["text"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn an_intercom_conversation_created_then_replied_reaches_the_lead_in_order_once() {
    let app = spawn_app_with(Config {
        sources: vec![SourceConfig::api(), provider("intercom", Adapter::Intercom, Qualification::default())],
        ..Config::default()
    })
    .await;
    let created = post_intercom(&app, &fixture("intercom_conversation_user_created_2x.json")).await;
    assert_eq!((created["created"].as_u64(), created["recorded"].as_u64()), (Some(1), Some(1)), "{created}");
    let reply = fixture("intercom_conversation_admin_replied.json");
    let first = post_intercom(&app, &reply).await;
    assert_eq!(first["recorded"], 1, "{first}");
    // Intercom retries; the same reply again records nothing, and says so.
    let retried = post_intercom(&app, &reply).await;
    assert_eq!(retried.get("recorded"), None, "a replay records nothing new: {retried}");

    let lead = lead_id_by_email(&app, "joe@example.com").await;
    let got = conversations(&app, &lead).await;
    let [c] = got.as_array().unwrap().as_slice() else { panic!("{got:#}") };
    assert_eq!((c["id"].as_str(), c["channel"].as_str()), (Some("intercom:367"), Some("intercom")));
    assert_eq!(
        texts(c),
        [
            ("visitor".to_owned(), "Hi, can I get a demo for my team?".to_owned()),
            ("agent".to_owned(), "Happy to help!\n\nHow many people are on your team?".to_owned()),
        ]
    );
    assert_eq!(c["messages"][1]["author_name"], "Ciaran Lee");
    assert_eq!(message_events(&app, &lead).await, 2, "nothing recorded twice");
}

#[tokio::test]
async fn drift_messages_before_the_email_join_the_lead_its_contact_identified_makes() {
    let table = Qualification::new([("What's your timeline?", "custom.timeline")]).unwrap();
    let app = spawn_app_with(Config {
        sources: vec![SourceConfig::api(), provider("drift", Adapter::Drift, table)],
        ..Config::default()
    })
    .await;
    // The visitor writes before giving an email: the message waits under Drift's id.
    let r = post_drift(&app, &fixture("drift_new_message.json"), SECRET).await;
    assert_eq!(r.status(), 200);
    let r = post_drift(&app, &fixture("drift_contact_identified.json"), "wrong-token").await;
    let refused = problem(r, 401).await;
    assert_eq!(refused["code"], "hook_unauthorized");
    let r = post_drift(&app, &fixture("drift_contact_identified.json"), SECRET).await;
    assert_eq!(r.status(), 200);

    let leads: Value = app.get("/v1/leads?email=ada@acme.example").await.json().await.unwrap();
    let lead = &leads[0];
    assert_eq!(lead["custom"]["timeline"], "This quarter", "the qualification table: {lead:#}");
    assert!(!lead["employee_count"].is_null(), "Company size by the label table: {lead:#}");
    let id = lead["id"].as_str().unwrap();
    let got = conversations(&app, id).await;
    assert_eq!(got[0]["id"], "drift:1865424318", "{got:#}");
    assert_eq!(texts(&got[0]), [("visitor".to_owned(), "Hi! Do you integrate with Salesforce & HubSpot?".to_owned())]);
}

fn chat_source() -> SourceConfig {
    SourceConfig {
        name: crate::source("chat"),
        qualification: Qualification::new([("What's your team size?", "employee_count"), ("Budget", "custom.budget")])
            .unwrap(),
        ..SourceConfig::api()
    }
}

fn generic_post() -> Value {
    json!({"email": "Grace@Example.com", "source": "chat",
        "conversation": {"id": "c-77", "channel": "crisp", "messages": [
            {"at": "2026-06-01T16:01:00Z", "author": "bot", "author_name": "Qualibot", "text": "What's your team size?"},
            {"id": "m1", "at": "2026-06-01T16:00:00Z", "author": "visitor", "text": "Hi, we need routing"},
            {"id": "m2", "at": "2026-06-01T16:02:00Z", "author": "visitor", "text": "About 120"}
        ]},
        "answers": {"What's your team size?": "120", "Budget": "10k", "Favourite colour": "green"}})
}

#[tokio::test]
async fn a_generic_conversation_records_its_messages_and_maps_its_answers_and_a_retry_records_nothing_twice() {
    let app = spawn_app_with(Config { sources: vec![SourceConfig::api(), chat_source()], ..Config::default() }).await;
    let r = app.post("/v1/conversations", &generic_post()).await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!((out["recorded"].as_u64(), out["replayed"].as_u64()), (Some(3), Some(0)), "{out}");
    assert_eq!(out["answers"], "created");
    let id = out["lead_id"].as_str().unwrap().to_owned();

    let lead: Value = app.get(&format!("/v1/leads/{id}")).await.json().await.unwrap();
    assert_eq!(lead["email"], "grace@example.com");
    assert!(!lead["employee_count"].is_null(), "the configured question fills employee_count: {lead:#}");
    assert_eq!(lead["custom"]["budget"], "10k");
    assert_eq!(lead["custom"]["Favourite colour"], "green", "unmapped answers stay custom under their question");

    let got = conversations(&app, &id).await;
    assert_eq!((got[0]["id"].as_str(), got[0]["channel"].as_str()), (Some("c-77"), Some("crisp")));
    let authors: Vec<_> = texts(&got[0]).into_iter().map(|(a, _)| a).collect();
    assert_eq!(authors, ["visitor", "bot", "visitor"], "in time order");

    let again: Value = app.post("/v1/conversations", &generic_post()).await.json().await.unwrap();
    assert_eq!((again["recorded"].as_u64(), again["replayed"].as_u64()), (Some(0), Some(3)), "{again}");
    assert_eq!(again["answers"], "replayed");
    assert_eq!(message_events(&app, &id).await, 3);
    assert_eq!(app.lead_count().await, 1);
}

#[tokio::test]
async fn a_conversation_of_someone_not_yet_a_lead_waits_with_202() {
    let app = spawn_app().await;
    let body = json!({"external_id": "crm-9", "conversation": {"id": 5, "messages": [
        {"at": "2026-06-01T16:00:00Z", "author": "visitor", "text": "hello"}]},
        "answers": {"Team size": "5"}});
    let r = app.post("/v1/conversations", &body).await;
    assert_eq!(r.status(), 202);
    let out: Value = r.json().await.unwrap();
    assert_eq!((out["waiting"].as_u64(), out["answers"].as_str()), (Some(1), Some("skipped")), "{out}");
}

#[tokio::test]
async fn malformed_conversations_are_answered_with_problems() {
    let app = spawn_app_with(Config {
        sources: vec![SourceConfig::api(), provider("intercom", Adapter::Intercom, Qualification::default())],
        ..Config::default()
    })
    .await;
    let r = app
        .http
        .post(app.url("/v1/conversations"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r, 400).await["code"], "malformed_json");

    let bad =
        json!({"conversation": {"id": "", "messages": [{"at": "soon", "author": "ghost", "text": ""}]}, "colour": 1});
    let body = problem(app.post("/v1/conversations", &bad).await, 422).await;
    let mut fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "colour",
            "conversation.id",
            "conversation.messages[0].at",
            "conversation.messages[0].author",
            "conversation.messages[0].text",
            "email"
        ]
    );
    // Answers are captured as standard fields: a provider's source cannot take them.
    let mut to_provider = generic_post();
    to_provider["source"] = json!("intercom");
    let body = problem(app.post("/v1/conversations", &to_provider).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "source");
    let mut unknown = generic_post();
    unknown["source"] = json!("nowhere");
    assert_eq!(
        problem(app.post("/v1/conversations", &unknown).await, 422).await["errors"][0]["code"],
        "unknown_source"
    );
    // A read key cannot write; an unknown lead has no conversations.
    let reader = app.key("reader", &["read"]).await;
    let r =
        app.http.post(app.url("/v1/conversations")).bearer_auth(&reader).json(&generic_post()).send().await.unwrap();
    assert_eq!(r.status(), 403);
    problem(app.get(&format!("/v1/leads/{}/conversations", leadflow_core::LeadId::new())).await, 404).await;
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn an_erased_leads_conversations_are_gone_and_answer_410() {
    let app = spawn_app_with(Config { sources: vec![SourceConfig::api(), chat_source()], ..Config::default() }).await;
    let out: Value = app.post("/v1/conversations", &generic_post()).await.json().await.unwrap();
    let id = out["lead_id"].as_str().unwrap().to_owned();
    let r = app.http.post(app.url(&format!("/v1/leads/{id}/erase"))).bearer_auth(&app.admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let lead_id: leadflow_core::LeadId = id.parse().unwrap();
    assert!(app.store.lead_events(lead_id, 100).await.unwrap().is_empty(), "erasure deleted the messages");
    assert_eq!(problem(app.get(&format!("/v1/leads/{id}/conversations")).await, 410).await["code"], "erased");
    let by_id = json!({"lead_id": id, "conversation": {"id": "c-78", "messages": [
        {"at": "2026-06-01T16:00:00Z", "author": "visitor", "text": "still there?"}]}});
    problem(app.post("/v1/conversations", &by_id).await, 410).await;
}
