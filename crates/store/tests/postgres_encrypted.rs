//! The PostgreSQL store with personal data encrypted at rest: the whole conformance suite,
//! and what encryption itself promises there (nothing personal in any column of any
//! table, lookups and matching through blind indexes, rotation with re-encryption,
//! switching it on for a database that held data in clear). Each test on a fresh database
//! of the server `LEADFLOW_TEST_POSTGRES_URL` names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use leadflow_core::encryption::MasterKeys;
use leadflow_core::engagement::{Event, Identity};
use leadflow_core::pipeline::Rules;
use leadflow_core::{Email, SourceName};
use leadflow_store::postgres::{PgOptions, PgStore};
use leadflow_store::{Captured, DynStore, EventOutcome, ImportCounts, ImportJob, ImportStatus, NewEvent};
use leadflow_testkit::conformance::{Raw, TestStore};
use leadflow_testkit::encryption::{PLAIN, capture, lead_id, masters, person, reencrypt_all};
use leadflow_testkit::postgres::TestDatabase;
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;

fn fuzzy() -> Rules {
    Rules {
        matching: Arc::new(leadflow_core::resolve::Matching { fuzzy: true, ..Default::default() }),
        ..Rules::default()
    }
}

async fn open_with(url: &str, keys: Option<&MasterKeys>, rules: Rules) -> Result<DynStore, leadflow_store::StoreError> {
    Ok(Arc::new(PgStore::open_encrypted(url, &PgOptions::default(), rules, keys).await?))
}

async fn open(url: &str, keys: Option<&MasterKeys>) -> Result<DynStore, leadflow_store::StoreError> {
    open_with(url, keys, Rules::default()).await
}

async fn database() -> TestDatabase {
    TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"))
}

async fn fresh() -> TestStore {
    let db = database().await;
    let store = open(&db.url, Some(&masters(1, &[]))).await.expect("opens and migrates");
    let raw = Raw::Postgres(db.url.clone());
    TestStore { store, guard: Box::new(db), raw }
}

leadflow_testkit::conformance_suite!(fresh());

/// What must not be in any column of any table with encryption on: [`PLAIN`], and the
/// external id.
fn personal() -> impl Iterator<Item = &'static str> {
    PLAIN.into_iter().chain(["crm-zz-"])
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Every row of every table of the database, as text, lowercased.
async fn table_text(url: &str) -> String {
    let c = client(url).await;
    let tables: Vec<String> = c
        .query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut all = String::new();
    for table in tables {
        for row in c.query(&format!("SELECT t::text FROM {table} t"), &[]).await.unwrap() {
            all.push_str(row.get::<_, &str>(0));
            all.push('\n');
        }
    }
    // A file's bytes show as hex above: as text too, so a file in clear would show.
    for row in c
        .query(
            "SELECT encode(b, 'escape') FROM (SELECT file AS b FROM imports UNION ALL SELECT report FROM imports) x
             WHERE b IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
    {
        all.push_str(row.get::<_, &str>(0));
    }
    all.to_lowercase()
}

async fn found_in(url: &str) -> Vec<&'static str> {
    let text = table_text(url).await;
    personal().filter(|p| text.contains(p)).collect()
}

/// An event from someone not captured yet, an import's file and CRM feedback naming
/// person 1: what encryption must cover beside the lead.
async fn the_rest(store: &DynStore) {
    let who = Identity {
        email: Some("Wilhelmina.Zabrowski7@Quixotic-Example.com ".into()),
        external_id: Some("crm-zz-7".into()),
        ..Identity::default()
    };
    let event = NewEvent {
        event: Event {
            id: leadflow_core::EventId::new(),
            kind: "page_view".into(),
            occurred_at: OffsetDateTime::now_utc(),
            url: Some("https://quixotic-example.com/pricing".into()),
            properties: serde_json::Map::new(),
            lead_id: None,
            identity: who,
        },
        source: SourceName::api(),
        idempotency_key: None,
    };
    let outcome = store.record_events(vec![event]).await.unwrap();
    assert!(matches!(outcome[..], [EventOutcome::Waiting { .. }]), "{outcome:?}");
    let now = OffsetDateTime::now_utc();
    let job = ImportJob {
        id: leadflow_core::ImportId::new(),
        source: SourceName::api(),
        sheet: None,
        status: ImportStatus::Queued,
        counts: ImportCounts::default(),
        error: None,
        created_at: now,
        updated_at: now,
    };
    let file = b"email,first_name,last_name\nwilhelmina.zabrowski1@quixotic-example.com,Wilhelmina,Zabrowski1\n";
    store.create_import(job.clone(), file.to_vec()).await.unwrap();
    assert_eq!(store.import_file(job.id).await.unwrap().as_deref(), Some(&file[..]));
}

#[tokio::test]
async fn no_personal_data_reaches_any_table_and_lookups_still_work() {
    let db = database().await;
    let store = open_with(&db.url, Some(&masters(1, &[])), fuzzy()).await.unwrap();
    let first = lead_id(&capture(&store, person(1)).await);
    // The same person again, their address written differently: matched through the
    // blind mailbox index, not created twice.
    let mut again = person(1);
    again["email"] = json!("Wilhelmina.Zabrowski1@Quixotic-Example.com");
    match capture(&store, again).await {
        Captured::Settled { lead, outcome, .. } => {
            assert_eq!(lead.id, first);
            assert_eq!(outcome, leadflow_core::pipeline::Outcome::Merged);
        }
        other => panic!("{other:?}"),
    }
    capture(&store, person(2)).await;
    the_rest(&store).await;
    // The event waiting for person 7 is found through the blind email index.
    let seventh = lead_id(&capture(&store, person(7)).await);
    assert_eq!(store.lead_events(seventh, 10).await.unwrap().len(), 1, "the waiting event joined its lead");
    // The resolver indexes the leads under blind matching keys; a person without an email
    // is found through them.
    while store.resolve_queued(100, OffsetDateTime::now_utc()).await.unwrap().taken > 0 {}
    let mut no_email = person(2);
    no_email.as_object_mut().unwrap().remove("email");
    no_email.as_object_mut().unwrap().remove("external_id");
    let unnamed = lead_id(&capture(&store, no_email).await);
    let resolved = store.resolve_queued(100, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(resolved.taken, 1);
    let merged = store.get_lead(unnamed).await.unwrap().unwrap();
    let second = Email::parse("wilhelmina.zabrowski2@quixotic-example.com").unwrap();
    assert_eq!(Some(merged.id), store.find_leads_by_email(&second).await.unwrap().first().map(|l| l.id));

    let email = Email::parse("wilhelmina.zabrowski1@quixotic-example.com").unwrap();
    let found = store.find_leads_by_email(&email).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].fields.first_name.as_deref(), Some("Wilhelmina"));
    assert_eq!(store.known_emails(vec![email.clone()]).await.unwrap(), vec![email]);
    assert_eq!(store.lead_history(first).await.unwrap().len(), 2);
    assert!(!store.list_leads(None, 10).await.unwrap().is_empty());
    assert_eq!(found_in(&db.url).await, Vec::<&str>::new());

    // The search is able to find what it looks for: in clear, the same data shows.
    let clear = database().await;
    let plain = open(&clear.url, None).await.unwrap();
    capture(&plain, person(1)).await;
    the_rest(&plain).await;
    assert_eq!(found_in(&clear.url).await.len(), personal().count(), "{:?}", found_in(&clear.url).await);
}

#[tokio::test]
async fn a_database_with_keys_refuses_to_open_without_them() {
    let db = database().await;
    let store = open(&db.url, Some(&masters(1, &[]))).await.unwrap();
    capture(&store, person(1)).await;
    store.close().await.unwrap();
    drop(store);
    let refused = open(&db.url, None).await.err().expect("refused").to_string();
    assert!(refused.contains("key_env"), "{refused}");
    let refused = open(&db.url, Some(&masters(2, &[]))).await.err().expect("refused").to_string();
    assert!(refused.contains("previous_key_envs"), "{refused}");
}

async fn data_keys(url: &str) -> Vec<String> {
    client(url)
        .await
        .query("SELECT id FROM encryption_keys WHERE purpose = 'data' ORDER BY created_at, id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// How many lead documents are sealed under the data key `key`: a sealed document is
/// the JSON string of the sealed value in base64, whose header names the key.
async fn docs_under(url: &str, key: &str) -> usize {
    use base64::Engine;
    let docs: Vec<String> = client(url)
        .await
        .query("SELECT doc #>> '{}' FROM leads", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let prefix = format!("lf2t{key}").into_bytes();
    docs.iter()
        .filter_map(|d| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(d).ok())
        .filter(|d| d.starts_with(&prefix))
        .count()
}

#[tokio::test]
async fn a_new_master_key_writes_at_once_and_reencryption_retires_the_old_one() {
    let db = database().await;
    let store = open(&db.url, Some(&masters(1, &[]))).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(lead_id(&capture(&store, person(n)).await));
    }
    store.close().await.unwrap();
    drop(store);
    let old = data_keys(&db.url).await;
    assert_eq!(old.len(), 1);

    // Rotated: the new master key is active, the old one readable.
    let store = open(&db.url, Some(&masters(2, &[1]))).await.unwrap();
    let keys = data_keys(&db.url).await;
    assert_eq!(keys.len(), 2);
    let new = keys.iter().find(|k| !old.contains(k)).unwrap().clone();
    assert_eq!(store.get_lead(ids[0]).await.unwrap().unwrap().fields.first_name.as_deref(), Some("Wilhelmina"));
    let late = lead_id(&capture(&store, person(99)).await);
    assert_eq!(docs_under(&db.url, &new).await, 1, "the new lead is sealed under the new key at once");
    assert_eq!(docs_under(&db.url, &old[0]).await, 30);

    // Re-encryption, in small steps, resumable: a store reopened halfway goes on.
    let step = store.reencrypt(7).await.unwrap();
    assert!(!step.done && step.rows > 0);
    store.close().await.unwrap();
    drop(store);
    let store = open(&db.url, Some(&masters(2, &[1]))).await.unwrap();
    let rows = step.rows + reencrypt_all(&store, 7).await;
    assert!(rows >= 31, "{rows}");
    assert_eq!(docs_under(&db.url, &old[0]).await, 0);
    assert_eq!(docs_under(&db.url, &new).await, 31);
    assert_eq!(data_keys(&db.url).await, vec![new.clone()], "the old data key is dropped");
    store.close().await.unwrap();
    drop(store);

    // The old master key is no longer needed; everything reads, lookups still work.
    let store = open(&db.url, Some(&masters(2, &[]))).await.unwrap();
    for id in ids.iter().chain([&late]) {
        assert!(store.get_lead(*id).await.unwrap().is_some());
    }
    let email = Email::parse("wilhelmina.zabrowski3@quixotic-example.com").unwrap();
    assert_eq!(store.find_leads_by_email(&email).await.unwrap().len(), 1);
    assert!(store.reencrypt(100).await.unwrap().done);
}

#[tokio::test]
async fn switching_encryption_on_converts_what_was_stored_in_clear() {
    let db = database().await;
    let store = open_with(&db.url, None, fuzzy()).await.unwrap();
    let first = lead_id(&capture(&store, person(1)).await);
    capture(&store, person(2)).await;
    the_rest(&store).await;
    while store.resolve_queued(100, OffsetDateTime::now_utc()).await.unwrap().taken > 0 {}
    store.close().await.unwrap();
    drop(store);
    assert!(!found_in(&db.url).await.is_empty());

    let store = open_with(&db.url, Some(&masters(1, &[])), fuzzy()).await.unwrap();
    assert!(store.reencrypt(100).await.unwrap().done, "the conversion finished before the store served");
    assert_eq!(found_in(&db.url).await, Vec::<&str>::new());
    let email = Email::parse("wilhelmina.zabrowski1@quixotic-example.com").unwrap();
    assert_eq!(store.find_leads_by_email(&email).await.unwrap()[0].id, first);
    // Matching finds the converted lead: the same person merges into it by email, and a
    // person without one through the converted matching keys.
    match capture(&store, person(1)).await {
        Captured::Settled { lead, .. } => assert_eq!(lead.id, first),
        other => panic!("{other:?}"),
    }
    let mut no_email = person(1);
    no_email.as_object_mut().unwrap().remove("email");
    no_email.as_object_mut().unwrap().remove("external_id");
    let unnamed = lead_id(&capture(&store, no_email).await);
    store.resolve_queued(100, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(store.get_lead(unnamed).await.unwrap().unwrap().id, first);
    // The waiting event converted too: person 7 arrives and it joins them.
    let seventh = lead_id(&capture(&store, person(7)).await);
    assert_eq!(store.lead_events(seventh, 10).await.unwrap().len(), 1);
}
