//! Personal data encrypted at rest, over HTTP: a lead, its events, history, consent and
//! outbox row leave no plaintext name, email or phone in any byte of the SQLite files or
//! the WAL, while lookups by email, matching and reads work as before.

use crate::{TestApp, spawn_on};
use leadflow_core::encryption::{MasterKey, MasterKeys};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

const EMAIL: &str = "ottoline.vasquez-brandt@quibble-partners.com";
const FIRST: &str = "Ottoline";
const LAST: &str = "Vasquez-Brandt";
const PHONE_DIGITS: &str = "6175550199";

async fn spawn(keys: Option<MasterKeys>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[encryption]
key_env = "LEADFLOW_TEST_ENCRYPTION_KEY"

[[destinations]]
name = "crm-hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret_env = "TEST_SECRET"
events = ["created"]

[database]
url = "sqlite://{}"
"#,
        dir.path().join("leadflow.db").display()
    );
    let mut config = leadflow_core::config::parse(&text).unwrap();
    config.master_keys = keys.map(Arc::new);
    let store = leadflow_store::connect_configured(&config).await.unwrap();
    spawn_on(store, config, dir).await
}

fn bytes_of(path: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(bytes) = std::fs::read(format!("{}{suffix}", path.display())) {
            all.extend(bytes);
        }
    }
    assert!(!all.is_empty());
    all
}

/// Which of the person's values any byte of the files holds, case-insensitively.
fn plaintext(path: &Path) -> Vec<&'static str> {
    let bytes = String::from_utf8_lossy(&bytes_of(path)).to_lowercase();
    [EMAIL, FIRST, LAST, PHONE_DIGITS, "ottoline.vasquez"]
        .into_iter()
        .filter(|needle| bytes.contains(&needle.to_lowercase()))
        .collect()
}

async fn exercise(app: &TestApp) -> String {
    let body = json!({"email": EMAIL, "first_name": FIRST, "last_name": LAST, "phone": "+1 617 555 0199",
                      "consent": {"granted": true, "policy_version": "v3"}});
    let r = app.post("/v1/leads", &body).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["lead"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post("/v1/events", &json!({"type": "page_view", "email": EMAIL, "url": "https://example.com/pricing"}))
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    // The same person, spelled otherwise: found through the blind mailbox index.
    let again = app.post("/v1/leads", &json!({"email": EMAIL.to_uppercase(), "company": "Quibble"})).await;
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["lead"]["id"], id.as_str());
    assert_eq!(again["outcome"], "merged");
    let found: Value = app.get(&format!("/v1/leads?email={EMAIL}")).await.json().await.unwrap();
    assert_eq!(found[0]["id"], id.as_str(), "{found}");
    let lead: Value = app.get(&format!("/v1/leads/{id}")).await.json().await.unwrap();
    assert_eq!(lead["first_name"], FIRST, "{lead}");
    let history: Value = app.get(&format!("/v1/leads/{id}/history")).await.json().await.unwrap();
    assert!(history.to_string().contains(LAST), "{history}");
    id
}

#[tokio::test]
async fn with_a_key_no_personal_data_lies_in_the_files_or_the_wal() {
    let key = MasterKey::new([7; 32]);
    let app = spawn(Some(MasterKeys { active: key, previous: vec![] })).await;
    exercise(&app).await;
    let path = app.dir.path().join("leadflow.db");
    // While the server runs, recent pages are in the WAL.
    assert_eq!(plaintext(&path), Vec::<&str>::new());
    let (store, dir) = app.shutdown().await;
    store.close().await.unwrap();
    assert_eq!(plaintext(&dir.path().join("leadflow.db")), Vec::<&str>::new());
}

#[tokio::test]
async fn without_a_key_the_same_search_finds_the_person() {
    let app = spawn(None).await;
    exercise(&app).await;
    let (store, dir) = app.shutdown().await;
    store.close().await.unwrap();
    assert_eq!(plaintext(&dir.path().join("leadflow.db")).len(), 5);
}
