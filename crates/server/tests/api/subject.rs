//! Subject access and retention over HTTP: the export of everything held about a person
//! (merged records, raw submissions, thousands of events), its refusals, and retention
//! runs deleting exactly what is older than the cutoff, then listed.

use crate::{TestApp, problem, spawn_app, spawn_on};
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::{self, SourceConfig};
use leadflow_core::engagement::{Event, Identity};
use leadflow_core::pipeline::prepare;
use leadflow_core::{EventId, LeadId, SourceName};
use leadflow_store::{CaptureItem, Captured, NewEvent};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::OffsetDateTime;

async fn capture(app: &TestApp, body: Value) -> String {
    let r = app.post("/v1/leads", &body).await;
    assert!(r.status().is_success(), "{}", r.status());
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

fn event(lead: LeadId, at: OffsetDateTime) -> NewEvent {
    NewEvent {
        event: Event {
            id: EventId::new(),
            kind: "page_view".into(),
            occurred_at: at,
            url: Some("https://acme.com/pricing".into()),
            properties: Map::new(),
            lead_id: None,
            identity: Identity { lead_id: Some(lead), ..Identity::default() },
        },
        source: SourceName::api(),
        idempotency_key: None,
    }
}

#[tokio::test]
async fn an_export_holds_everything_about_the_person_and_a_merged_away_id_exports_its_survivor() {
    let app = spawn_app().await;
    let ada = capture(&app, json!({"email": "ada@acme.com", "first_name": "Ada", "utm_campaign": "spring"})).await;
    assert_eq!(capture(&app, json!({"email": "ada@acme.com", "phone": "+44 20 7946 0958"})).await, ada);
    let al = capture(&app, json!({"email": "a.lovelace@acme.com", "last_name": "Lovelace"})).await;
    let (ada_id, al_id): (LeadId, LeadId) = (ada.parse().unwrap(), al.parse().unwrap());
    let why = leadflow_core::resolve::Explanation {
        rule: leadflow_core::resolve::MatchRule::Reviewed,
        score: Some(0.9),
        evidence: Vec::new(),
    };
    assert!(app.store.merge_leads(ada_id, al_id, why).await.unwrap());
    // More events than one page of the store's reads.
    let now = OffsetDateTime::now_utc();
    let events: Vec<NewEvent> =
        (0..2500).map(|i| event(if i % 2 == 0 { ada_id } else { al_id }, now - time::Duration::seconds(i))).collect();
    app.store.record_events(events).await.unwrap();

    let r = app.get(&format!("/v1/leads/{al}/export")).await;
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!((doc["requested_id"].as_str(), doc["lead"]["id"].as_str()), (Some(al.as_str()), Some(ada.as_str())));
    assert_eq!(doc["format_version"], 1);
    assert!(doc["generated_at"].is_string());
    assert_eq!(doc["merged_records"].as_array().unwrap().len(), 1);
    assert_eq!(doc["merged_records"][0]["id"], al.as_str());
    let payloads: Vec<&Value> = doc["submissions"].as_array().unwrap().iter().map(|s| &s["payload"]).collect();
    assert_eq!(payloads.len(), 3, "both of Ada's submissions and Al's");
    assert_eq!(payloads[1]["phone"], "+44 20 7946 0958", "as received, not normalized");
    assert!(doc["submissions"].as_array().unwrap().iter().all(|s| s["status"] == "processed"));
    assert_eq!(doc["events"].as_array().unwrap().len(), 2500, "every event, across pages");
    assert!(!doc["history"].as_array().unwrap().is_empty());
    assert_eq!(doc["touchpoints"].as_array().unwrap().len(), 3);
    assert_eq!(doc["consent"], json!({"current": {}, "history": []}), "no choice was made");
    assert_eq!(doc["incomplete"], json!([]));
    for key in ["deliveries", "reviews", "feedback"] {
        assert!(doc[key].is_array(), "{key}");
    }
}

#[tokio::test]
async fn an_export_needs_an_admin_key_and_a_live_lead() {
    let app = spawn_app().await;
    let id = capture(&app, json!({"email": "ada@acme.com"})).await;
    let reader = app.key("reader", &["read"]).await;
    let r = app.http.get(app.url(&format!("/v1/leads/{id}/export"))).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(problem(r, 403).await["status"], 403);
    let unknown = LeadId::new();
    assert_eq!(problem(app.get(&format!("/v1/leads/{unknown}/export")).await, 404).await["code"], "not_found");
    let r = app.http.post(app.url(&format!("/v1/leads/{id}/erase"))).bearer_auth(&app.admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(problem(app.get(&format!("/v1/leads/{id}/export")).await, 410).await["code"], "erased");
}

#[tokio::test]
async fn a_retention_run_deletes_exactly_what_is_older_than_the_cutoff_and_is_listed() {
    let config = config::parse("[retention]\nraw_payloads = \"30d\"\nevents = \"30d\"\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = crate::open_store(&dir).await;
    let now = OffsetDateTime::now_utc();
    // Today's scheduled run is taken, so the server's worker leaves the data to this test.
    assert!(store.try_claim_period("retention", leadflow_core::privacy::retention::day_of(now)).await.unwrap());
    let old = now - time::Duration::days(40);
    let item = |email: &str, at: OffsetDateTime| {
        let payload = json!({ "email": email }).as_object().cloned().unwrap();
        let candidate = prepare(&payload, &SourceConfig::api(), &Default::default()).unwrap();
        let mut submission = RawSubmission::new(SourceName::api(), None, payload);
        submission.received_at = at;
        CaptureItem { submission, candidate }
    };
    let captured = store.capture(vec![item("ada@acme.com", old), item("bob@acme.com", now)]).await.unwrap();
    let [Captured::Settled { lead: ada, .. }, Captured::Settled { lead: bob, .. }] = &captured[..] else {
        panic!("{captured:?}")
    };
    let (ada, bob) = (ada.id, bob.id);
    store.record_events(vec![event(ada, old), event(ada, now), event(bob, old)]).await.unwrap();
    let app = spawn_on(store, config.clone(), dir).await;

    let runner = leadflow_app::App::new(app.store.clone(), Arc::new(config));
    use leadflow_app::retention::{Trigger, run};
    let dry = run(&runner, Trigger::Manual, true, OffsetDateTime::now_utc()).await.unwrap();
    let counts = |r: &leadflow_core::privacy::retention::Run| -> Vec<(String, u64)> {
        r.kinds.iter().map(|k| (k.kind.clone(), k.count)).collect()
    };
    let expected = [("raw_payloads".to_owned(), 1), ("events".to_owned(), 2), ("delivered_outbox".to_owned(), 0)];
    assert_eq!(counts(&dry), expected);
    let listed: Value = app.get("/v1/retention/runs").await.json().await.unwrap();
    assert_eq!(listed, json!([]), "a dry run changes and records nothing");

    let done = run(&runner, Trigger::Manual, false, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(counts(&done), expected);
    let ada_doc: Value = app.get(&format!("/v1/leads/{ada}/export")).await.json().await.unwrap();
    assert_eq!(ada_doc["submissions"][0]["payload"], json!({}), "the old payload is cleared");
    assert_eq!(ada_doc["submissions"][0]["status"], "processed", "the row and its outcome stay");
    assert_eq!(ada_doc["events"].as_array().unwrap().len(), 1, "the recent event stays");
    let bob_doc: Value = app.get(&format!("/v1/leads/{bob}/export")).await.json().await.unwrap();
    assert_eq!(bob_doc["submissions"][0]["payload"]["email"], "bob@acme.com");
    assert_eq!(bob_doc["events"], json!([]));

    let r = app.get("/v1/retention/runs").await;
    assert_eq!(r.status(), 200);
    let runs: Value = r.json().await.unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    let listed = &runs[0];
    assert_eq!((listed["id"].as_str(), listed["trigger"].as_str()), (Some(done.id.as_str()), Some("manual")));
    assert!(listed["finished_at"].is_string() && listed["error"].is_null());
    let kinds: Vec<(&str, u64)> = listed["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kind"].as_str().unwrap(), k["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("raw_payloads", 1), ("events", 2), ("delivered_outbox", 0)]);
    let reader = app.key("reader", &["read"]).await;
    let r = app.http.get(app.url("/v1/retention/runs")).bearer_auth(&reader).send().await.unwrap();
    problem(r, 403).await;
}
