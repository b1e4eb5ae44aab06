//! CRM feedback end to end: the generic JSON form, HubSpot's signed webhooks, Salesforce
//! outbound messages, the audit list and the reports built on them.

use crate::{TEST_ENV, TestApp, problem, spawn_app_with, spawn_on_with};
use base64::Engine;
use hmac::{Hmac, Mac};
use leadflow_core::config::Config;
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "test-signing-secret";
const ORG: &str = "00D000000000062EAA";

/// Every lead with an email is handed off (MQL) at once; a HubSpot and a Salesforce
/// destination report back.
fn config(hubspot_base: &str) -> Config {
    leadflow_core::config::parse(&format!(
        r#"
[scoring]
mql_threshold = 0

[feedback]
reasons = {{ "Price" = "no_budget" }}

[[destinations]]
name = "hs"
type = "hubspot"
base_url = "{hubspot_base}"
token_env = "TEST_API_TOKEN"
events = ["mql"]
[destinations.feedback]
secret_env = "TEST_SECRET"
portal_id = 33
reason_field = "unqualified_reason"
[destinations.owners]
"ana@example.com" = "71234567"

[[destinations]]
name = "sf"
type = "salesforce"
base_url = "https://example.my.salesforce.com"
token_url = "https://login.salesforce.com/services/oauth2/token"
client_id = "id"
client_secret_env = "TEST_SECRET"
api_version = "62.0"
[destinations.feedback]
secret_env = "TEST_SECRET"
organization_id = "{ORG}"
reason_field = "Disqualification_Reason__c"
"#
    ))
    .unwrap()
}

async fn app() -> TestApp {
    spawn_app_with(config("http://127.0.0.1:9")).await
}

async fn lead(app: &TestApp, email: &str, campaign: &str) -> String {
    let lead: Value =
        app.post("/v1/leads", &json!({"email": email, "utm_campaign": campaign})).await.json().await.unwrap();
    assert_eq!(lead["lead"]["lifecycle_stage"], "mql", "{lead}");
    lead["id"].as_str().unwrap().to_owned()
}

async fn send(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.http.post(app.url("/v1/feedback/generic")).bearer_auth(token).json(body).send().await.unwrap()
}

async fn stage(app: &TestApp, id: &str) -> String {
    let lead: Value = app.get(&format!("/v1/leads/{id}")).await.json().await.unwrap();
    lead["lifecycle_stage"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn generic_feedback_walks_the_lead_and_a_resend_is_a_replay() {
    let app = app().await;
    let id = lead(&app, "ada@acme.com", "spring").await;
    let crm = app.key("crm", &["feedback"]).await;

    let item = json!({"email": "ADA@acme.com", "status": "accepted", "event_id": "e-1"});
    let r = send(&app, &crm, &item).await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!((out["outcome"].as_str(), out["lifecycle_stage"].as_str()), (Some("applied"), Some("sal")), "{out}");
    assert_eq!(out["lead_id"], id.as_str());

    let again: Value = send(&app, &crm, &item).await.json().await.unwrap();
    assert_eq!((again["replayed"].as_bool(), again["id"].clone()), (Some(true), out["id"].clone()));
    // The Idempotency-Key header names the event when the body does not.
    let keyed = || {
        app.http
            .post(app.url("/v1/feedback/generic"))
            .bearer_auth(&crm)
            .header("idempotency-key", "won-1")
            .json(&json!({"lead_id": id, "status": "won"}))
            .send()
    };
    let won: Value = keyed().await.unwrap().json().await.unwrap();
    assert_eq!(won["lifecycle_stage"], "customer");
    assert_eq!(keyed().await.unwrap().json::<Value>().await.unwrap()["replayed"], true);

    let history: Value = app.get(&format!("/v1/leads/{id}/transitions")).await.json().await.unwrap();
    let moves: Vec<(&str, &str)> = history["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["actor"] == "feedback:generic")
        .map(|t| (t["from"].as_str().unwrap(), t["to"].as_str().unwrap()))
        .collect();
    assert_eq!(moves, [("mql", "sal"), ("sal", "sql"), ("sql", "opportunity"), ("opportunity", "customer")]);

    // Only keys with the feedback (or admin) scope may post.
    let reader = app.key("reader", &["read"]).await;
    problem(send(&app, &reader, &item).await, 403).await;
    let anonymous = app.http.post(app.url("/v1/feedback/generic")).json(&item).send().await.unwrap();
    problem(anonymous, 401).await;
}

#[tokio::test]
async fn a_disqualification_without_its_reason_is_refused_and_the_corrected_resend_applies() {
    let app = app().await;
    let id = lead(&app, "bob@acme.com", "spring").await;
    let item =
        |reason: Option<&str>| json!({"lead_id": id, "status": "disqualified", "event_id": "dq-1", "reason": reason});

    let body = problem(app.post("/v1/feedback/generic", &item(None)).await, 422).await;
    assert_eq!(body["code"], "reason_required");
    assert!(body["detail"].as_str().unwrap().contains("no_budget"), "the picklist is named: {body}");
    let body = problem(app.post("/v1/feedback/generic", &item(Some("the moon is wrong"))).await, 422).await;
    assert_eq!(body["code"], "reason_not_in_picklist");
    assert_eq!(stage(&app, &id).await, "mql");

    // "Price" maps to no_budget through [feedback.reasons].
    let out: Value = app.post("/v1/feedback/generic", &item(Some("Price"))).await.json().await.unwrap();
    assert_eq!((out["outcome"].as_str(), out["lifecycle_stage"].as_str()), (Some("applied"), Some("disqualified")));
    let history: Value = app.get(&format!("/v1/leads/{id}/transitions")).await.json().await.unwrap();
    let last = history["transitions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["reason"].as_str(), last["actor"].as_str()), (Some("no_budget"), Some("feedback:generic")));

    // Every attempt is in the audit trail.
    let audit: Value = app.get("/v1/feedback?source=generic").await.json().await.unwrap();
    let outcomes: Vec<&str> =
        audit["items"].as_array().unwrap().iter().map(|i| i["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["reason_required", "reason_not_in_picklist", "applied"]);
    assert_eq!(audit["items"][2]["reason"], "no_budget");
}

#[tokio::test]
async fn unknown_leads_are_kept_impossible_moves_are_409_and_batches_answer_per_item() {
    let app = app().await;
    let id = lead(&app, "cy@acme.com", "fall").await;

    let r = app.post("/v1/feedback/generic", &json!({"email": "nobody@acme.com", "status": "won"})).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["outcome"], "unmatched");

    app.post("/v1/feedback/generic", &json!({"lead_id": id, "status": "disqualified", "reason": "spam"})).await;
    let body =
        problem(app.post("/v1/feedback/generic", &json!({"lead_id": id, "status": "accepted"})).await, 409).await;
    assert_eq!(body["code"], "transition_not_allowed");
    assert_eq!(body["allowed"], json!(["recycled"]));

    let batch = json!({"events": [
        {"email": "nobody@acme.com", "status": "accepted", "event_id": "b-1"},
        {"lead_id": id, "status": "maybe"},
        {"lead_id": id, "owner": "rep-7", "event_id": "b-3"},
        {"lead_id": id, "status": "disqualified"}
    ]});
    let out: Value = app.post("/v1/feedback/generic", &batch).await.json().await.unwrap();
    let results = out["results"].as_array().unwrap();
    assert_eq!(out["received"], 4);
    assert_eq!(results[0]["outcome"], "unmatched");
    assert_eq!(results[1]["errors"][0]["field"], "events[1].status");
    assert!(results[1].get("outcome").is_none() && results[1].get("id").is_none(), "not stored");
    assert_eq!(results[2]["outcome"], "applied");
    assert_eq!(results[3]["outcome"], "reason_required");
    let read: Value = app.get(&format!("/v1/leads/{id}")).await.json().await.unwrap();
    assert_eq!(read["owner"], "rep-7");

    // Hostile and malformed input: problem documents, never a 500.
    let bad = app.post("/v1/feedback/generic", &json!({"status": "won"})).await;
    assert_eq!(problem(bad, 422).await["errors"][0]["field"], "lead_id");
    let bad = app
        .post("/v1/feedback/generic", &json!({"lead_id": id, "status": "won", "occurred_at": "yesterday", "x": 1}))
        .await;
    assert_eq!(problem(bad, 422).await["errors"].as_array().unwrap().len(), 2);
    let raw = app
        .http
        .post(app.url("/v1/feedback/generic"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json");
    assert_eq!(problem(raw.body("{\"lead_id\":").send().await.unwrap(), 400).await["code"], "malformed_json");
    let huge = json!({"lead_id": id, "status": "won", "reason": "x".repeat(2 * 1024 * 1024)});
    problem(app.post("/v1/feedback/generic", &huge).await, 413).await;
    let too_many = json!({"events": vec![json!({"lead_id": id, "owner": "x"}); 1001]});
    problem(app.post("/v1/feedback/generic", &too_many).await, 422).await;
    problem(app.post("/v1/feedback/nowhere", &json!({})).await, 404).await;
}

fn hubspot_signature(method: &str, url: &str, body: &[u8], timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    for part in [method.as_bytes(), url.as_bytes(), body, timestamp.as_bytes()] {
        mac.update(part);
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn hubspot(app: &TestApp, body: &str, age: Duration) -> reqwest::Response {
    let url = app.url("/v1/feedback/hs");
    let ts = (time::OffsetDateTime::now_utc() - age).unix_timestamp() * 1000;
    let ts = ts.to_string();
    app.http
        .post(&url)
        .header("content-type", "application/json")
        .header("x-hubspot-request-timestamp", &ts)
        .header("x-hubspot-signature-v3", hubspot_signature("POST", &url, body.as_bytes(), &ts))
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

fn hubspot_events(object: u64, events: &[(&str, &str, u64)]) -> String {
    let now_ms = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap() * 1000;
    let events: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, (property, value, event_id))| {
            json!({"objectId": object, "propertyName": property, "propertyValue": value, "changeSource": "CRM_UI",
                   "eventId": event_id, "subscriptionId": 25, "portalId": 33, "appId": 1160452,
                   "occurredAt": now_ms + i as u64, "subscriptionType": "contact.propertyChange", "attemptNumber": 0})
        })
        .collect();
    Value::Array(events).to_string()
}

#[tokio::test]
async fn hubspot_feedback_is_signed_and_finds_leads_by_their_crm_record_id() {
    let app = app().await;
    let id = lead(&app, "dee@acme.com", "spring").await;
    app.store.link_crm_record("hs", "1246965", id.parse().unwrap()).await.unwrap();

    // The status and the reason arrive as two events of one request.
    let body = hubspot_events(1246965, &[("unqualified_reason", "Price", 1), ("hs_lead_status", "UNQUALIFIED", 2)]);
    let r = hubspot(&app, &body, Duration::ZERO).await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    let outcomes: Vec<&str> =
        out["results"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["ignored", "applied"], "{out}");
    assert_eq!(stage(&app, &id).await, "disqualified");
    let history: Value = app.get(&format!("/v1/leads/{id}/transitions")).await.json().await.unwrap();
    let last = history["transitions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["reason"].as_str(), last["actor"].as_str()), (Some("no_budget"), Some("feedback:hs")));

    // HubSpot retries the same events: nothing happens again.
    let again: Value = hubspot(&app, &body, Duration::from_secs(60)).await.json().await.unwrap();
    assert!(again["results"].as_array().unwrap().iter().all(|r| r["replayed"] == true), "{again}");

    // A rep sets the status first and the reason a minute later: two requests.
    let other = lead(&app, "dan@acme.com", "fall").await;
    app.store.link_crm_record("hs", "1246966", other.parse().unwrap()).await.unwrap();
    let status = hubspot_events(1246966, &[("hs_lead_status", "UNQUALIFIED", 11)]);
    let out: Value = hubspot(&app, &status, Duration::ZERO).await.json().await.unwrap();
    assert_eq!(out["results"][0]["outcome"], "reason_required", "{out}");
    assert_eq!(stage(&app, &other).await, "mql");
    let reason = hubspot_events(1246966, &[("unqualified_reason", "Competitor", 12)]);
    let out: Value = hubspot(&app, &reason, Duration::ZERO).await.json().await.unwrap();
    assert_eq!(out["results"][0]["outcome"], "applied", "{out}");
    assert_eq!(stage(&app, &other).await, "disqualified");

    // An owner change for a contact leadflow never delivered is kept, unmatched.
    let unknown = hubspot_events(777, &[("hubspot_owner_id", "42", 9)]);
    let out: Value = hubspot(&app, &unknown, Duration::ZERO).await.json().await.unwrap();
    assert_eq!(out["results"][0]["outcome"], "unmatched");

    // Tampered, stale, unsigned, and another app's secret: 401 problems.
    let url = app.url("/v1/feedback/hs");
    let ts = (time::OffsetDateTime::now_utc().unix_timestamp() * 1000).to_string();
    let forged = app
        .http
        .post(&url)
        .header("x-hubspot-request-timestamp", &ts)
        .header("x-hubspot-signature-v3", hubspot_signature("POST", &url, body.as_bytes(), &ts))
        .body(body.replace("UNQUALIFIED", "OPEN_DEAL"))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(forged, 401).await["code"], "hook_unauthorized");
    assert_eq!(problem(hubspot(&app, &body, Duration::from_secs(600)).await, 401).await["code"], "hook_stale");
    let unsigned = app.http.post(&url).body(body.clone()).send().await.unwrap();
    problem(unsigned, 401).await;
    let signed_garbage = hubspot(&app, "{\"not\": \"an array\"}", Duration::ZERO).await;
    assert_eq!(problem(signed_garbage, 400).await["code"], "hook_malformed");
    assert!(TEST_ENV.iter().any(|(k, v)| *k == "TEST_SECRET" && *v == SECRET));
}

#[tokio::test]
async fn a_crm_owner_that_the_owners_map_knows_becomes_its_rep_again() {
    let app = app().await;
    let id = lead(&app, "eve@acme.com", "spring").await;
    app.store.link_crm_record("hs", "1246970", id.parse().unwrap()).await.unwrap();
    async fn owner(app: &TestApp, id: &str) -> Value {
        app.get(&format!("/v1/leads/{id}")).await.json::<Value>().await.unwrap()["owner"].clone()
    }

    let known = hubspot_events(1246970, &[("hubspot_owner_id", "71234567", 21)]);
    let out: Value = hubspot(&app, &known, Duration::ZERO).await.json().await.unwrap();
    assert_eq!(out["results"][0]["outcome"], "applied", "{out}");
    assert_eq!(owner(&app, &id).await, "ana@example.com");

    // An owner the map does not know is kept as the CRM's id.
    let unknown = hubspot_events(1246970, &[("hubspot_owner_id", "42", 22)]);
    let out: Value = hubspot(&app, &unknown, Duration::ZERO).await.json().await.unwrap();
    assert_eq!(out["results"][0]["outcome"], "applied", "{out}");
    assert_eq!(owner(&app, &id).await, "42");
}

fn outbound_message(org: &str, notifications: &[(&str, &str, &str, &str)]) -> String {
    let items: String = notifications
        .iter()
        .map(|(id, email, status, reason)| {
            format!(
                r#"<Notification><Id>{id}</Id><sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
<sf:Id>00Q{id}</sf:Id><sf:Email>{email}</sf:Email><sf:Status>{status}</sf:Status>
<sf:Disqualification_Reason__c>{reason}</sf:Disqualification_Reason__c></sObject></Notification>"#
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">
<OrganizationId>{org}</OrganizationId><ActionId>04k000000000001AAA</ActionId><SessionId xsi:nil="true"/>
<EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0</EnterpriseUrl>
<PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0</PartnerUrl>
{items}</notifications></soapenv:Body></soapenv:Envelope>"#
    )
}

async fn salesforce(app: &TestApp, token: &str, body: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/v1/feedback/sf?token={token}")))
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", "\"\"")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn salesforce_outbound_messages_are_acknowledged_once_stored() {
    let app = app().await;
    let eve = lead(&app, "eve@acme.com", "fall").await;
    let fay = lead(&app, "fay@acme.com", "fall").await;
    let body = outbound_message(
        ORG,
        &[
            ("04l000000000001AAA", "eve@acme.com", "Working - Contacted", ""),
            ("04l000000000002AAA", "fay@acme.com", "Closed - Not Converted", "Competitor"),
            ("04l000000000003AAA", "gus@acme.com", "Closed - Converted", ""),
        ],
    );
    let r = salesforce(&app, SECRET, &body).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/xml"));
    let ack = r.text().await.unwrap();
    assert!(ack.contains("<notificationsResponse") && ack.contains("<Ack>true</Ack>"), "{ack}");
    assert_eq!(stage(&app, &eve).await, "sal");
    assert_eq!(stage(&app, &fay).await, "disqualified");
    let audit: Value = app.get("/v1/feedback?source=sf").await.json().await.unwrap();
    let outcomes: Vec<&str> =
        audit["items"].as_array().unwrap().iter().map(|i| i["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["applied", "applied", "unmatched"]);
    assert_eq!(audit["items"][1]["crm_status"], "Closed - Not Converted");
    assert_eq!(audit["items"][1]["reason"], "competitor");
    // Salesforce resends until acknowledged: the same notifications replay.
    assert_eq!(salesforce(&app, SECRET, &body).await.status(), 200);
    let audit: Value = app.get("/v1/feedback?source=sf").await.json().await.unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 3);

    assert_eq!(problem(salesforce(&app, "wrong", &body).await, 401).await["code"], "hook_unauthorized");
    let foreign =
        outbound_message("00D000000000099EAA", &[("04l000000000009AAA", "eve@acme.com", "Closed - Converted", "")]);
    problem(salesforce(&app, SECRET, &foreign).await, 401).await;
    let entity_bomb =
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>"#;
    assert_eq!(problem(salesforce(&app, SECRET, entity_bomb).await, 400).await["code"], "hook_malformed");
    problem(salesforce(&app, SECRET, "<Envelope><Body>").await, 400).await;
}

#[tokio::test]
async fn reports_show_disqualifications_by_campaign_and_the_funnel_from_the_handoff() {
    let app = app().await;
    let a = lead(&app, "a@acme.com", "spring").await;
    let b = lead(&app, "b@acme.com", "spring").await;
    let c = lead(&app, "c@acme.com", "fall").await;
    let d = lead(&app, "d@acme.com", "fall").await;
    let events = json!({"events": [
        {"lead_id": a, "status": "disqualified", "reason": "no_budget"},
        {"lead_id": b, "status": "disqualified", "reason": "Price"},
        {"lead_id": c, "status": "disqualified", "reason": "competitor"},
        {"lead_id": d, "status": "won"}
    ]});
    let out: Value = app.post("/v1/feedback/generic", &events).await.json().await.unwrap();
    assert!(out["results"].as_array().unwrap().iter().all(|r| r["outcome"] == "applied"), "{out}");

    let report: Value = app.get("/v1/reports/disqualifications").await.json().await.unwrap();
    assert_eq!(report["total"], 3);
    assert_eq!(report["rows"][0], json!({"source": "api", "campaign": "spring", "reason": "no_budget", "leads": 2}));
    assert_eq!(report["rows"][1], json!({"source": "api", "campaign": "fall", "reason": "competitor", "leads": 1}));
    assert_eq!(report["by_reason"][0], json!({"reason": "no_budget", "leads": 2}));

    let funnel: Value = app.get("/v1/reports/funnel?group=source").await.json().await.unwrap();
    assert_eq!((funnel["group"].as_str(), funnel["handoff"].as_str()), (Some("source"), Some("mql")));
    let row = &funnel["rows"][0];
    assert_eq!((row["source"].as_str(), row["campaign"].clone()), (Some("api"), Value::Null));
    let at = |stage: &str| row["stages"].as_array().unwrap().iter().find(|s| s["stage"] == stage).unwrap().clone();
    assert_eq!(at("mql")["leads"], 4);
    assert_eq!((at("customer")["leads"].as_u64(), at("customer")["from_handoff"].as_f64()), (Some(1), Some(0.25)));
    assert_eq!(at("disqualified")["from_handoff"].as_f64(), Some(0.75));
    assert!(at("mql").get("from_handoff").is_none());
    let by_campaign: Value = app.get("/v1/reports/funnel").await.json().await.unwrap();
    assert_eq!(by_campaign["rows"].as_array().unwrap().len(), 2);
    problem(app.get("/v1/reports/funnel?group=planet").await, 400).await;
    let writer = app.key("crm", &["feedback"]).await;
    let r = app.http.get(app.url("/v1/reports/disqualifications")).bearer_auth(writer).send().await.unwrap();
    problem(r, 403).await;
}

/// A fake HubSpot that answers the batch upsert with the contact's id, once the test
/// lets it (one permit per answer).
async fn fake_hubspot(gate: Arc<tokio::sync::Semaphore>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/crm/v3/objects/contacts/batch/upsert",
        axum::routing::post(move || {
            let gate = gate.clone();
            async move {
                gate.acquire().await.unwrap().forget();
                axum::Json(json!({"status": "COMPLETE", "results": [{"id": "512", "new": true, "properties": {}}]}))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_that_came_before_the_delivery_waits_for_the_crm_record_id() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let config = config(&format!("http://{}", fake_hubspot(gate.clone()).await));
    let client = leadflow_app::deliveries::client(&config, |_| Some(SECRET.to_owned())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    let app = spawn_on_with(store, config, Some(Arc::new(client)), dir).await;
    let id = lead(&app, "hal@acme.com", "spring").await;

    // HubSpot is quicker than its own API answer: the contact is not known yet.
    let body = hubspot_events(512, &[("hs_lead_status", "OPEN", 1)]);
    let out: Value = hubspot(&app, &body, Duration::ZERO).await.json().await.unwrap();
    assert_eq!(out["results"][0]["outcome"], "unmatched", "{out}");
    assert_eq!(stage(&app, &id).await, "mql");

    // The upsert answers with the contact's id: the waiting feedback applies.
    gate.add_permits(1);
    let start = Instant::now();
    while stage(&app, &id).await != "sal" {
        assert!(start.elapsed() < Duration::from_secs(10), "the waiting feedback was never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let audit: Value = app.get("/v1/feedback?source=hs").await.json().await.unwrap();
    assert_eq!(audit["items"][0]["outcome"], "applied");
    assert_eq!(audit["items"][0]["lead_id"], id.as_str());
    // Later feedback names the contact directly.
    gate.add_permits(100);
    let body = hubspot_events(512, &[("lifecyclestage", "customer", 2)]);
    let out: Value = hubspot(&app, &body, Duration::ZERO).await.json().await.unwrap();
    assert_eq!(
        (out["results"][0]["outcome"].as_str(), out["results"][0]["lifecycle_stage"].as_str()),
        (Some("applied"), Some("customer"))
    );
}
