//! Data residency over HTTP: two regions, each its own SQLite file; an EU lead and every
//! row about it stay in the EU file, while reads, reports and the audit log answer across
//! regions.

use crate::{TestApp, spawn_on};
use serde_json::{Value, json};
use std::path::Path;

const EMAIL: &str = "greta.schmidt@beispiel.de";
const FIRST: &str = "Gretchen";
const LAST: &str = "Schmidtbauer";
const PHONE_DIGITS: &str = "301234567";

async fn spawn_regions() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[[sources]]
name = "dach-events"
adapter = "json"

[[destinations]]
name = "crm-hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret_env = "TEST_SECRET"
events = ["created"]

[[regions]]
name = "eu"
database = "sqlite://{eu}"
countries = ["EU", "CH"]
sources = ["dach-events"]

[[regions]]
name = "us"
database = "sqlite://{us}"
countries = ["US", "CA"]
default = true
"#,
        eu = dir.path().join("eu.db").display(),
        us = dir.path().join("us.db").display(),
    );
    let config = leadflow_core::config::parse(&text).unwrap();
    let store = leadflow_store::connect_configured(&config).await.unwrap();
    spawn_on(store, config, dir).await
}

async fn capture(app: &TestApp, body: Value) -> Value {
    let r = app.post("/v1/leads", &body).await;
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

/// Every byte of the database's files: the main file, its WAL and shared memory.
fn bytes_of(dir: &Path, name: &str) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(name)) {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!all.is_empty(), "no files for {name}");
    all
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn an_eu_lead_lives_only_in_the_eu_database_and_reads_cross_regions() {
    let app = spawn_regions().await;
    let eu = capture(
        &app,
        json!({"email": EMAIL, "first_name": FIRST, "last_name": LAST, "phone": "+49 30 1234567",
               "country": "Germany", "consent": {"granted": true, "policy_version": "v3"}}),
    )
    .await;
    let us = capture(&app, json!({"email": "john.doe@example.com", "first_name": "John", "country": "US"})).await;
    let eu_id = eu["id"].as_str().unwrap().to_owned();
    let us_id = us["id"].as_str().unwrap().to_owned();

    // The EU lead gathers history, an event, a consent change and an audit entry.
    let r = app
        .post("/v1/events", &json!({"type": "page_view", "email": EMAIL, "url": "https://example.com/pricing"}))
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = app.post(&format!("/v1/leads/{eu_id}/consent"), &json!({"purpose": "phone", "status": "denied"})).await;
    assert_eq!(r.status(), 201);
    app.resolved().await;

    // Reads work across regions.
    assert_eq!(app.lead_count().await, 2);
    let listed: Value = app.get("/v1/leads").await.json().await.unwrap();
    let mut ids: Vec<&str> = listed.as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected = vec![eu_id.as_str(), us_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let lead: Value = app.get(&format!("/v1/leads/{eu_id}")).await.json().await.unwrap();
    assert_eq!(lead["last_name"], LAST);
    let found: Value = app.get(&format!("/v1/leads?email={EMAIL}")).await.json().await.unwrap();
    assert_eq!(found[0]["id"], eu_id.as_str());
    let history: Value = app.get(&format!("/v1/leads/{eu_id}/history")).await.json().await.unwrap();
    assert!(!history.as_array().unwrap().is_empty(), "{history}");
    let consent: Value = app.get(&format!("/v1/leads/{eu_id}/consent")).await.json().await.unwrap();
    assert_eq!(consent["current"]["phone"]["status"], "denied");
    let report: Value = app.get("/v1/reports/sources").await.json().await.unwrap();
    let total: u64 = report["rows"].as_array().unwrap().iter().map(|r| r["leads"].as_u64().unwrap()).sum();
    assert_eq!(total, 2, "{report}");
    // The health report (the dashboard's numbers) adds the regions up.
    let health: Value = app.get("/v1/health").await.json().await.unwrap();
    let api = health["sources"].as_array().unwrap().iter().find(|s| s["name"] == "api").unwrap().clone();
    assert_eq!(api["counts"]["day"]["created"], 2, "{api}");
    let deliveries = app.store.lead_deliveries(eu_id.parse().unwrap(), 10).await.unwrap();
    assert_eq!(deliveries.len(), 1, "the outbox row is read from the lead's region");
    let audit: Value = app.get(&format!("/v1/audit?target={eu_id}")).await.json().await.unwrap();
    assert_eq!(audit["entries"][0]["action"], "consent.recorded", "{audit}");
    let home: Value = app.get("/v1/audit?region=us").await.json().await.unwrap();
    assert!(home["entries"].as_array().unwrap().iter().all(|e| e["target"] != eu_id.as_str()), "{home}");
    let eu_chain: Value = app.get("/v1/audit?region=eu").await.json().await.unwrap();
    assert!(eu_chain["entries"].as_array().unwrap().iter().any(|e| e["target"] == eu_id.as_str()));
    let unknown = app.get("/v1/audit?region=mars").await;
    crate::problem(unknown, 400).await;

    // A submission naming another country stays one lead, in the region that holds the
    // person (the merge keeps the country first given, as it does with one database).
    let moved = capture(&app, json!({"email": EMAIL, "country": "US", "city": "Boston"})).await;
    assert_eq!(moved["id"], eu_id.as_str());
    let lead: Value = app.get(&format!("/v1/leads/{eu_id}")).await.json().await.unwrap();
    assert_eq!((lead["country"].as_str(), lead["city"].as_str()), (Some("DE"), Some("Boston")), "{lead}");
    assert_eq!(app.lead_count().await, 2);

    let (store, dir) = app.shutdown().await;
    store.close().await.unwrap();
    let us_bytes = bytes_of(dir.path(), "us.db");
    let eu_bytes = bytes_of(dir.path(), "eu.db");
    for needle in [EMAIL, FIRST, LAST, PHONE_DIGITS] {
        assert!(holds(&eu_bytes, needle), "the EU database holds {needle}: the search can find it");
        assert!(!holds(&us_bytes, needle), "the US database holds {needle}");
    }
    assert!(holds(&us_bytes, "john.doe@example.com"));
    assert!(!holds(&eu_bytes, "john.doe@example.com"));
}

/// The name of the region whose store holds the lead.
async fn region_of(app: &TestApp, id: &str) -> String {
    let id: leadflow_core::LeadId = id.parse().unwrap();
    let mut holding = Vec::new();
    for (name, store) in app.store.regions() {
        if store.get_lead(id).await.unwrap().is_some() {
            holding.push(name);
        }
    }
    assert_eq!(holding.len(), 1, "{holding:?}");
    holding.remove(0)
}

#[tokio::test]
async fn country_then_source_assigns_the_region_and_a_person_stays_where_they_live() {
    let app = spawn_regions().await;
    let spanish = capture(&app, json!({"email": "ana@example.org", "first_name": "Ana", "country": "ES"})).await;
    let id = spanish["id"].as_str().unwrap();
    assert_eq!(region_of(&app, id).await, "eu");
    // The same person without a country (the default region's) is found by email and
    // settles where they live.
    let again = capture(&app, json!({"email": "ana@example.org", "last_name": "Lopez"})).await;
    assert_eq!((again["id"].as_str(), again["outcome"].as_str()), (Some(id), Some("merged")));

    // A source pinned to a region takes the leads whose country names none.
    let pinned = capture(&app, json!({"email": "lukas@example.net", "source": "dach-events"})).await;
    assert_eq!(region_of(&app, pinned["id"].as_str().unwrap()).await, "eu");
    let american = capture(&app, json!({"email": "kim@example.com", "source": "dach-events", "country": "US"})).await;
    assert_eq!(region_of(&app, american["id"].as_str().unwrap()).await, "us", "the country comes first");
    let swiss = capture(&app, json!({"email": "noor@example.net", "source": "dach-events", "country": "JP"})).await;
    assert_eq!(region_of(&app, swiss["id"].as_str().unwrap()).await, "eu", "a country no region lists: the source");
    let unknown = capture(&app, json!({"email": "lee@example.com"})).await;
    assert_eq!(region_of(&app, unknown["id"].as_str().unwrap()).await, "us");

    // Leads in different regions are never merged, even when asked.
    let a: leadflow_core::LeadId = id.parse().unwrap();
    let b: leadflow_core::LeadId = unknown["id"].as_str().unwrap().parse().unwrap();
    let why = leadflow_core::resolve::Explanation {
        rule: leadflow_core::resolve::MatchRule::Reviewed,
        score: Some(0.9),
        evidence: Vec::new(),
    };
    let refused = app.store.merge_leads(a, b, why).await;
    assert!(matches!(refused, Err(leadflow_store::StoreError::Conflict(_))), "{refused:?}");
    assert_eq!(app.lead_count().await, 5);

    // Erasure reaches the region holding the person.
    let r = app.http.post(app.url(&format!("/v1/leads/{id}/erase"))).bearer_auth(&app.admin).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(app.get(&format!("/v1/leads/{id}")).await.status(), 410);
    let (eu, _) = app.store.regions().into_iter().find(|(n, _)| n == "eu").map(|(n, s)| (s, n)).unwrap();
    let tombstone = eu.get_lead(id.parse().unwrap()).await.unwrap().unwrap();
    assert!(tombstone.erased_at.is_some());
}
